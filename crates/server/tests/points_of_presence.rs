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
        let r = ring.args();
        let mut sb = Client::connect_str(r[2]).await;
        sb.send(&format!("ANS 1 alice@example.com;{m} {} {}", r[4], r[1])).await;
        loop {
            if sb.recv().await.text.starts_with("ANS 1 OK") {
                break;
            }
        }
        joined.push(sb);
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
    let mut c = Client::connect(server.dispatch).await;
    let d = msnp::Dialect::Msnp18;
    let mut signing = msnp::signin::SignIn::new(
        d,
        "alice@example.com",
        "pw-alice",
        &["0x0409", "winnt", "6.1", "i386", "MSNMSGR", "14.0.8117", "msmsgs"],
    )
    .on_machine(machine(3));
    let mut action = signing.start();
    let refused = loop {
        action = match action {
            msnp::signin::Action::Send(r) => {
                c.send_frame(&r.to_frame(d)).await;
                match signing.receive(&c.recv_frame().await) {
                    Ok(a) => a,
                    Err(e) => break e,
                }
            }
            msnp::signin::Action::Receive => match signing.receive(&c.recv_frame().await) {
                Ok(a) => a,
                Err(e) => break e,
            },
            msnp::signin::Action::Connect(address) => {
                c = Client::connect_str(&address).await;
                signing.connected()
            }
            msnp::signin::Action::FetchSsoToken { policy } => {
                let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", &policy).await.unwrap();
                let t = tokens.iter().find(|t| t.id == "Compact1").unwrap();
                signing.sso_token(t.ticket.clone(), t.secret.as_deref().unwrap(), [3; 8])
            }
            other => panic!("{other:?}"),
        };
    };
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
