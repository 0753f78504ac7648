//! MSNP16+ points of presence: one account signed in from several machines
//! at once, over real sockets against a real msnd.

mod common;

use common::*;
use msnp::endpoint::MachineGuid;

fn machine(n: u8) -> MachineGuid {
    MachineGuid::parse(&format!("{{{n:02x}{n:02x}{n:02x}{n:02x}-0000-4000-8000-0000000000{n:02x}}}")).unwrap()
}

/// `name@example.com` on `machine` with MSNPn, lists sent and online.
async fn endpoint(server: &TestServer, dialect: u8, name: &str, m: MachineGuid, contacts: &[&str]) -> Client {
    let mut c = login_from_machine(server, dialect, &format!("{name}@example.com"), &format!("pw-{name}"), m).await;
    go_online(&mut c, contacts).await;
    c
}

/// A server whose clients are not challenged, so that each test reads
/// exactly the lines it is about.
fn server() -> TestServer {
    TestServer::start_with(&["--challenges", "off"])
}

/// The next line starting with `prefix`, past presence news (`UBX`, `NLN`)
/// that endpoints coming and going bring.
async fn until(c: &mut Client, prefix: &str) -> Line {
    loop {
        let l = c.recv().await;
        if l.text.starts_with(prefix) {
            return l;
        }
        assert!(l.text.starts_with("UBX ") || l.text.starts_with("NLN "), "waiting for {prefix}, got {}", l.text);
    }
}

/// Answers an `RNG` as `name` on `m`: the switchboard connection, past
/// the roster.
async fn answer(ring: Line, name: &str, m: MachineGuid) -> Client {
    let r = ring.args();
    let mut sb = Client::connect_str(r[2]).await;
    sb.send(&format!("ANS 1 {name}@example.com;{m} {} {}", r[4], r[1])).await;
    until_any(&mut sb, "ANS 1 OK").await;
    sb
}

/// The next line starting with `prefix`, whatever comes before it.
async fn until_any(c: &mut Client, prefix: &str) {
    while !c.recv().await.text.starts_with(prefix) {}
}

/// The first ADL and CHG, then `contacts` on the forward and allow lists.
async fn go_online(c: &mut Client, contacts: &[&str]) {
    c.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    c.expect("ADL 5 OK").await;
    let caps = if c.dialect.capabilities_with_extended() { "2788999228:48" } else { "0" };
    c.send(&format!("CHG 6 NLN {caps}")).await;
    c.expect_prefix("CHG 6 NLN").await;
    if !contacts.is_empty() {
        let entries: String = contacts.iter().map(|n| format!(r#"<c n="{n}" l="3" t="1"/>"#)).collect();
        let adl = format!(r#"<ml><d n="example.com">{entries}</d></ml>"#);
        c.send_payload("ADL 7", adl.as_bytes()).await;
        c.sync_point_skipping().await;
    }
}

#[tokio::test]
async fn two_endpoints_share_presence_and_each_sees_the_conversation() {
    let server = server();
    users(&server, &["alice", "bob"]);
    // Bob (MSNP15, no endpoints of his own) watches Alice.
    let mut bob = endpoint(&server, 15, "bob", machine(9), &["alice"]).await;

    let mut home = endpoint(&server, 18, "alice", machine(1), &["bob"]).await;
    home.sync_point_skipping().await;
    bob.expect_prefix("NLN NLN alice@example.com 1").await;
    bob.sync_point_skipping().await;

    // The second machine signs in beside the first: nobody is signed out,
    // Bob sees no second NLN, the first machine learns of the second.
    let mut work = login_from_machine(&server, 18, "alice@example.com", "pw-alice", machine(2)).await;
    work.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    work.expect("ADL 5 OK").await;
    work.send("CHG 6 NLN 2788999228:48").await;
    work.expect("CHG 6 NLN 2788999228:48").await;
    // Its first state brings the contacts the account's lists hold.
    until(&mut work, "NLN NLN 1:bob@example.com").await;
    let told = home.expect_prefix("UBX 1:alice@example.com").await;
    let doc = String::from_utf8(told.payload.unwrap().to_vec()).unwrap();
    for m in [machine(1), machine(2)] {
        assert!(doc.contains(&format!(r#"<EndpointData id="{m}">"#)), "{doc}");
        assert!(doc.contains(&format!(r#"<PrivateEndpointData id="{m}">"#)), "{doc}");
    }
    let bob_saw = bob.sync_point_skipping().await;
    assert!(!bob_saw.iter().any(|l| l.text.starts_with("NLN") || l.text.starts_with("OUT")), "{bob_saw:?}");

    // Bob calls Alice: both machines ring, both answer.
    let mut bob_sb = open_session(&server, &mut bob, "bob@example.com", "Bob").await;
    bob_sb.send("CAL 2 alice@example.com").await;
    bob_sb.expect_prefix("CAL 2 RINGING").await;
    let mut joined = Vec::new();
    for (ns, m) in [(&mut home, machine(1)), (&mut work, machine(2))] {
        let ring = until(ns, "RNG ").await;
        joined.push(answer(ring, "alice", m).await);
    }
    // MSNP15 Bob sees Alice join once.
    bob_sb.expect("JOI alice@example.com Alice 2788999228").await;
    bob_sb.expect_silence().await;
    // The second machine sees the first as an endpoint of its own account.
    joined[0].expect(&format!("JOI alice@example.com;{} Alice 2788999228:48", machine(2))).await;

    // Bob's message reaches both machines; one machine's reaches the other.
    bob_sb.send_payload("MSG 3 N", &text_message("hi both")).await;
    for sb in joined.iter_mut() {
        let m = sb.expect_prefix("MSG bob@example.com").await;
        assert!(m.payload.unwrap().ends_with(b"hi both"));
    }
    joined[0].send_payload("MSG 2 N", &text_message("from home")).await;
    bob_sb.expect_prefix("MSG alice@example.com").await;
    joined[1].expect_prefix("MSG alice@example.com").await;

    // One machine leaves: Bob still sees Alice online and in the chat.
    let home_sb = joined.remove(0);
    drop(home_sb);
    joined[0].expect(&format!("BYE alice@example.com;{}", machine(1))).await;
    bob_sb.expect_silence().await;
    home.send("OUT").await;
    home.expect_closed().await;
    let told = work.expect_prefix("UBX 1:alice@example.com").await;
    let doc = String::from_utf8(told.payload.unwrap().to_vec()).unwrap();
    assert!(!doc.contains(&machine(1).to_string()) && doc.contains(&machine(2).to_string()), "{doc}");
    let bob_saw = bob.sync_point_skipping().await;
    assert!(!bob_saw.iter().any(|l| l.text.starts_with("FLN")), "{bob_saw:?}");

    // The last one leaves: now Alice is offline.
    work.send("OUT").await;
    work.expect_closed().await;
    bob.expect("FLN alice@example.com 1 0").await;
}

#[tokio::test]
async fn the_same_machine_replaces_itself_and_an_older_dialect_replaces_every_endpoint() {
    let server = server();
    users(&server, &["alice"]);
    let mut first = endpoint(&server, 16, "alice", machine(1), &[]).await;
    let mut other = endpoint(&server, 18, "alice", machine(2), &[]).await;
    let mut again = endpoint(&server, 18, "alice", machine(1), &[]).await;
    until(&mut first, "OUT OTH").await;
    first.expect_closed().await;
    other.sync_point_skipping().await;

    // MSNP15 has no endpoints: one sign-in for the account, the others end.
    let mut old = login_as_dialect(&server, 15, "alice@example.com", "pw-alice").await;
    for ended in [&mut other, &mut again] {
        let lines = ended.expect_closed().await;
        assert!(lines.iter().any(|l| l.text == "OUT OTH"), "{lines:?}");
    }
    // And an endpoint after it replaces it in turn.
    let _new = endpoint(&server, 18, "alice", machine(3), &[]).await;
    let lines = old.expect_closed().await;
    assert!(lines.iter().any(|l| l.text == "OUT OTH"), "{lines:?}");
}

#[tokio::test]
async fn one_account_has_at_most_the_configured_endpoints() {
    let server = TestServer::start_with(&["--challenges", "off", "--max-endpoints-per-account", "2"]);
    users(&server, &["alice"]);
    let mut one = endpoint(&server, 18, "alice", machine(1), &[]).await;
    let mut two = endpoint(&server, 18, "alice", machine(2), &[]).await;
    // A third machine is refused with 734; the two stay.
    let third = try_login_from_machine(&server, 18, "alice@example.com", "pw-alice", machine(3)).await;
    let refused = third.err().expect("refused");
    assert_eq!(refused, msnp::signin::SignInError::Refused(msnp::ErrorCode::TooManyEndpoints));
    for still in [&mut one, &mut two] {
        still.sync_point_skipping().await;
    }
}

#[tokio::test]
async fn an_endpoint_signs_out_another_of_its_own_account_and_no_one_else() {
    let server = server();
    users(&server, &["alice", "bob"]);
    let mut home = endpoint(&server, 18, "alice", machine(1), &["bob"]).await;
    let mut work = endpoint(&server, 18, "alice", machine(2), &["bob"]).await;
    let mut bob = endpoint(&server, 18, "bob", machine(9), &["alice"]).await;
    for c in [&mut home, &mut work, &mut bob] {
        c.sync_point_skipping().await;
    }
    // Endpoint control to someone else's machine: refused, Bob untouched.
    home.send_payload(&format!("UUN 20 bob@example.com;{} 4", machine(9)), b"goawyplzthxbye").await;
    until(&mut home, "217 20").await;
    let bob_saw = bob.sync_point_skipping().await;
    assert!(bob_saw.iter().all(|l| !l.text.starts_with("UBN") && !l.text.starts_with("OUT")), "{bob_saw:?}");
    // A machine the account is not signed in from: refused.
    home.send_payload(&format!("UUN 21 alice@example.com;{} 4", machine(7)), b"goawyplzthxbye").await;
    until(&mut home, "217 21").await;
    // A notice to Bob's machine reaches that machine, from Alice's.
    home.send_payload(&format!("UUN 22 bob@example.com;{} 1", machine(9)), b"<x/>").await;
    until(&mut home, "UUN 22 OK").await;
    until(&mut bob, &format!("UBN alice@example.com;{} 1 4", machine(1))).await;
    // The sign-out notice ends the other machine: it reads why, then OUT.
    home.send_payload(&format!("UUN 23 alice@example.com;{} 4", machine(2)), b"goawyplzthxbye").await;
    until(&mut home, "UUN 23 OK").await;
    let lines = work.expect_closed().await;
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let ubn = texts.iter().position(|t| t.starts_with(&format!("UBN alice@example.com;{} 4", machine(1))));
    let out = texts.iter().position(|t| *t == "OUT OTH");
    assert!(matches!((ubn, out), (Some(u), Some(o)) if u < o), "{texts:?}");
    home.sync_point_skipping().await;
}

#[tokio::test]
async fn a_missing_or_malformed_machine_guid_is_refused() {
    let server = server();
    users(&server, &["alice"]);
    for tail in ["", " {not-a-guid}"] {
        let mut c = Client::connect(server.dispatch).await;
        c.send("VER 1 MSNP18 CVR0").await;
        c.expect("VER 1 MSNP18").await;
        c.send("USR 2 SSO I alice@example.com").await;
        let xfr = c.expect_prefix("XFR 2 NS").await;
        let mut ns = Client::connect_str(xfr.args()[3]).await;
        ns.send("VER 3 MSNP18 CVR0").await;
        ns.expect("VER 3 MSNP18").await;
        ns.send("USR 4 SSO I alice@example.com").await;
        ns.expect_prefix("GCF 0").await;
        let challenge = ns.expect_prefix("USR 4 SSO S").await;
        let (policy, nonce) = (challenge.args()[3].to_string(), challenge.args()[4].to_string());
        let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", &policy).await.unwrap();
        let t = tokens.iter().find(|t| t.id == "Compact1").unwrap();
        let blob = msnp::sso::login_blob(t.secret.as_deref().unwrap(), &nonce, [1; 8]);
        ns.send(&format!("USR 5 SSO S {} {blob}{tail}", t.ticket)).await;
        ns.expect("911 5").await;
    }
}

#[tokio::test]
async fn a_machine_that_answers_late_sees_what_was_said_before_it_came() {
    let server = server();
    users(&server, &["alice", "bob"]);
    let mut bob = endpoint(&server, 15, "bob", machine(9), &["alice"]).await;
    let mut home = endpoint(&server, 18, "alice", machine(1), &["bob"]).await;
    let mut work = endpoint(&server, 18, "alice", machine(2), &["bob"]).await;
    bob.sync_point_skipping().await;
    let mut bob_sb = open_session(&server, &mut bob, "bob@example.com", "Bob").await;
    bob_sb.send("CAL 2 alice@example.com").await;
    bob_sb.expect_prefix("CAL 2 RINGING").await;
    let home_ring = until(&mut home, "RNG ").await;
    let work_ring = until(&mut work, "RNG ").await;
    let mut home_sb = answer(home_ring, "alice", machine(1)).await;
    bob_sb.expect_prefix("JOI alice@example.com").await;
    // Bob speaks as soon as Alice is there, before her second machine is.
    bob_sb.send_payload("MSG 3 N", &text_message("early words")).await;
    home_sb.expect_prefix("MSG bob@example.com").await;
    let mut work_sb = answer(work_ring, "alice", machine(2)).await;
    let early = work_sb.expect_prefix("MSG bob@example.com").await;
    assert!(early.payload.unwrap().ends_with(b"early words"));
    // Said once: the first machine is not given it again.
    home_sb.expect(&format!("JOI alice@example.com;{} Alice 2788999228:48", machine(2))).await;
    home_sb.expect_silence().await;
}

/// Signs `name` in with the lines bitlbee 3.2.2 sent this server (MSNP18,
/// its machine GUID derived from host and account), up to its first state.
async fn as_bitlbee(server: &TestServer, name: &str, guid: &str, contact: &str) -> Client {
    let email = format!("{name}@example.com");
    let mut c = Client::connect(server.ns).await;
    c.dialect = msnp::Dialect::Msnp18;
    c.send("VER 1 MSNP18 CVR0").await;
    c.expect("VER 1 MSNP18").await;
    c.send(&format!("CVR 2 0x0409 mac 10.2.0 ppc macmsgs 3.5.1 macmsgs {email}")).await;
    c.expect_prefix("CVR 2 ").await;
    c.send(&format!("USR 3 SSO I {email}")).await;
    c.expect_prefix("GCF 0 ").await;
    let nonce = c.expect_prefix("USR 3 SSO S MBI_KEY_OLD ").await.args()[5].to_string();
    let tokens = sso_tokens(server, &email, &format!("pw-{name}"), "MBI_KEY_OLD").await.unwrap();
    let blob = msnp::sso::login_blob(tokens[0].secret.as_deref().unwrap(), &nonce, [3; 8]);
    c.send(&format!("USR 4 SSO S {} {blob} {{{guid}}}", tokens[0].ticket)).await;
    c.expect(&format!("USR 4 OK {email} 1 0")).await;
    c.expect("SBS 0 null").await;
    c.expect_prefix("MSG Hotmail Hotmail ").await;
    c.expect(&format!("UBX 1:{email} 0")).await;
    c.send("BLP 8 BL").await;
    c.expect("BLP 8 BL").await;
    let adl = format!(r#"<ml l="1"><d n="example.com"><c n="{contact}" l="3" t="1"/></d></ml>"#);
    c.send_payload("ADL 9", adl.as_bytes()).await;
    c.expect("ADL 9 OK").await;
    c.send(&format!("PRP 10 MFN {}", capitalise(name))).await;
    c.expect(&format!("PRP 10 MFN {}", capitalise(name))).await;
    // Its capabilities printed with `%02d`, then three UUX in one go.
    c.send("CHG 11 NLN 49152:00").await;
    c.expect("CHG 11 NLN 49152:0").await;
    c.send_payload("UUX 12", b"<EndpointData><Capabilities>49152:00</Capabilities></EndpointData>").await;
    c.send_payload(
        "UUX 13",
        format!("<PrivateEndpointData><EpName>{guid}</EpName><Idle>false</Idle><ClientType>1</ClientType><State>NLN</State></PrivateEndpointData>").as_bytes(),
    )
    .await;
    c.send_payload(
        "UUX 14",
        format!("<Data><DDP></DDP><PSM></PSM><CurrentMedia></CurrentMedia><MachineGuid>{guid}</MachineGuid></Data>")
            .as_bytes(),
    )
    .await;
    for trid in [12, 13, 14] {
        until(&mut c, &format!("UUX {trid} 0")).await;
    }
    c
}

#[tokio::test]
async fn bitlbee_3_2_2_signs_in_sees_its_contact_and_is_replaced_by_itself() {
    // What bitlbee taught: it drops the connection on an `NLN` of fewer
    // than six words (MSNP18 names an MSN object, `0` for none), and two
    // bitlbees of one account on one host are one machine.
    let server = server();
    users(&server, &["alice", "bob"]);
    // Their lists, made earlier (bitlbee adds through the address book).
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let mut c = endpoint(&server, 15, me, machine(5), &[other]).await;
        c.send("OUT").await;
        c.expect_closed().await;
    }
    let mut alice = as_bitlbee(&server, "alice", "b171be3e-1402-4fbc-b017-36f5a52d2c11", "bob").await;
    let mut bob = as_bitlbee(&server, "bob", "b171be3e-8986-4009-a075-3f228de3c9cf", "alice").await;
    let nln = until(&mut alice, "NLN NLN 1:bob@example.com").await;
    assert_eq!(nln.text, "NLN NLN 1:bob@example.com Bob 49152:0 0");
    assert!(nln.text.split(' ').count() >= 6);
    bob.sync_point_skipping().await;
    let _again = as_bitlbee(&server, "alice", "b171be3e-1402-4fbc-b017-36f5a52d2c11", "bob").await;
    until(&mut alice, "OUT OTH").await;
}

#[tokio::test]
async fn a_machine_s_name_and_idleness_are_its_own_account_s_business() {
    let server = server();
    users(&server, &["alice", "bob"]);
    let mut home = endpoint(&server, 18, "alice", machine(1), &["bob"]).await;
    let mut work = endpoint(&server, 18, "alice", machine(2), &["bob"]).await;
    let mut bob = endpoint(&server, 18, "bob", machine(9), &["alice"]).await;
    for c in [&mut home, &mut work, &mut bob] {
        c.sync_point_skipping().await;
    }
    let private = b"<PrivateEndpointData><EpName>Den</EpName><Idle>true</Idle><ClientType>1</ClientType><State>IDL</State></PrivateEndpointData>";
    home.send_payload("UUX 30", private).await;
    until(&mut home, "UUX 30 0").await;
    let told = until(&mut work, "UBX 1:alice@example.com").await;
    let doc = String::from_utf8(told.payload.unwrap().to_vec()).unwrap();
    assert!(doc.contains("<EpName>Den</EpName><Idle>true</Idle>"), "{doc}");
    let bob_saw = bob.sync_point_skipping().await;
    assert!(bob_saw.is_empty(), "a watcher sees nothing of it: {bob_saw:?}");
}

#[tokio::test]
async fn p2p_data_for_one_machine_goes_to_that_machine_only() {
    let server = server();
    users(&server, &["alice", "bob"]);
    let mut bob = endpoint(&server, 18, "bob", machine(9), &["alice"]).await;
    let mut home = endpoint(&server, 18, "alice", machine(1), &["bob"]).await;
    let mut work = endpoint(&server, 18, "alice", machine(2), &["bob"]).await;
    bob.sync_point_skipping().await;
    let mut bob_sb = open_session(&server, &mut bob, "bob@example.com", "Bob").await;
    bob_sb.send("CAL 2 alice@example.com").await;
    until_any(&mut bob_sb, "CAL 2 RINGING").await;
    let home_ring = until(&mut home, "RNG ").await;
    let work_ring = until(&mut work, "RNG ").await;
    let mut home_sb = answer(home_ring, "alice", machine(1)).await;
    let mut work_sb = answer(work_ring, "alice", machine(2)).await;
    until_any(&mut home_sb, &format!("JOI alice@example.com;{}", machine(2))).await;
    let p2p = |dest: String| {
        format!(
            "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: {dest}\r\nP2P-Src: bob@example.com;{}\r\n\r\n\x08\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00",
            machine(9)
        )
    };
    bob_sb.send_payload("MSG 3 D", p2p(format!("alice@example.com;{}", machine(2))).as_bytes()).await;
    until_any(&mut bob_sb, "ACK 3").await;
    let got = work_sb.expect_prefix("MSG bob@example.com").await;
    assert!(String::from_utf8_lossy(got.payload.as_deref().unwrap()).contains(&machine(2).to_string()));
    // The other machine is not part of that transfer; a typed message still
    // reaches both.
    bob_sb.send_payload("MSG 4 N", &text_message("both")).await;
    home_sb.expect_prefix("MSG bob@example.com").await;
    work_sb.expect_prefix("MSG bob@example.com").await;
    home_sb.expect_silence().await;
}
