//! MSNP13-15: single sign-on through RST, the login blob, the list
//! documents and the address book services, and users of older dialects
//! on the same lists.

mod common;

use common::*;
use msnp::addressbook::{self, Role};
use msnp::passport::{RstFailure, parse_rst_response, rst_request};

/// Up to the `USR ... SSO S` challenge on a notification server: the nonce.
async fn challenged(server: &TestServer, email: &str) -> (Client, String) {
    let mut c = Client::connect(server.ns).await;
    c.send("VER 1 MSNP15 CVR0").await;
    c.expect("VER 1 MSNP15").await;
    c.send(&format!("USR 2 SSO I {email}")).await;
    let gcf = c.expect_prefix("GCF 0 ").await;
    assert!(String::from_utf8_lossy(gcf.payload.as_deref().unwrap()).starts_with("<Policies>"));
    let usr = c.expect_prefix("USR 2 SSO S MBI_KEY_OLD ").await;
    let nonce = usr.args()[5].to_string();
    assert_eq!(nonce.len(), 64, "48 random bytes in base64");
    (c, nonce)
}

#[tokio::test]
async fn rst_numbers_tokens_as_asked_and_keys_only_the_messenger_one() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let services = [
        ("messengerclear.live.com", "MBI_KEY_OLD"),
        ("contacts.msn.com", "MBI"),
        ("messengersecure.live.com", "MBI_SSL"),
        ("storage.msn.com", "MBI_SSL"),
    ];
    for path in ["/RST.srf", "/RST2.srf"] {
        let body = rst_request("alice@example.com", "pw-alice", &services);
        let answer = soap_post(&server, path, "", &body).await;
        assert_eq!(answer.status, 200);
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        let tokens = parse_rst_response(&text).unwrap();
        let got: Vec<(&str, &str)> = tokens.iter().map(|t| (t.id.as_str(), t.address.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Compact1", "messengerclear.live.com"),
                ("Compact2", "contacts.msn.com"),
                ("Compact3", "messengersecure.live.com"),
                ("Compact4", "storage.msn.com")
            ],
            "numbered by RST index, as bitlbee and Pidgin read them"
        );
        assert_eq!(tokens[0].secret.as_ref().map(Vec::len), Some(24), "messengerclear carries its session key");
        assert!(tokens[1..].iter().all(|t| t.secret.is_none()));
        let lifetime = if path == "/RST2.srf" { "<wst:Lifetime>" } else { "<wst:LifeTime>" };
        assert!(text.contains(lifetime), "{path}");
        let tickets: std::collections::HashSet<&str> = tokens.iter().map(|t| t.ticket.as_str()).collect();
        assert_eq!(tickets.len(), 4, "a ticket of its own per token");
    }
    let wrong = soap_post(&server, "/RST.srf", "", &rst_request("alice@example.com", "nope", &services)).await;
    assert_eq!(wrong.status, 500);
    assert_eq!(parse_rst_response(&String::from_utf8_lossy(&wrong.body)), Err(RstFailure::FailedAuthentication));
    let junk = soap_post(&server, "/RST.srf", "", "<Envelope><x").await;
    assert_eq!(parse_rst_response(&String::from_utf8_lossy(&junk.body)), Err(RstFailure::FailedAuthentication));
}

#[tokio::test]
async fn the_login_blob_is_checked_and_a_ticket_signs_in_once() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", "MBI_KEY_OLD").await.unwrap();
    let (messenger, contacts) = (&tokens[0], &tokens[1]);
    let secret = messenger.secret.clone().unwrap();

    // A blob made with another key, or over another nonce: 911.
    let (mut c, nonce) = challenged(&server, "alice@example.com").await;
    let forged = msnp::sso::login_blob(&[0u8; 24], &nonce, [1; 8]);
    c.send(&format!("USR 3 SSO S {} {forged}", messenger.ticket)).await;
    c.expect("911 3").await;
    let (mut c, _) = challenged(&server, "alice@example.com").await;
    let stale = msnp::sso::login_blob(&secret, &msnp::sso::nonce(&[1; 48]), [1; 8]);
    c.send(&format!("USR 3 SSO S {} {stale}", messenger.ticket)).await;
    c.expect("911 3").await;

    // The ticket was spent by the first attempt: a right blob now is too late.
    let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", "MBI_KEY_OLD").await.unwrap();
    let (messenger, secret) = (&tokens[0], tokens[0].secret.clone().unwrap());
    // Another account's ticket, and the address book's ticket, sign nobody in.
    let (mut c, nonce) = challenged(&server, "bob@example.com").await;
    let blob = msnp::sso::login_blob(&secret, &nonce, [1; 8]);
    c.send(&format!("USR 3 SSO S {} {blob}", messenger.ticket)).await;
    c.expect("911 3").await;
    let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", "MBI_KEY_OLD").await.unwrap();
    let (messenger, secret) = (&tokens[0], tokens[0].secret.clone().unwrap());
    let (mut c, nonce) = challenged(&server, "alice@example.com").await;
    let blob = msnp::sso::login_blob(&secret, &nonce, [1; 8]);
    c.send(&format!("USR 3 SSO S {} {blob}", contacts.ticket)).await;
    c.expect("911 3").await;

    // The right ticket and blob: signed in, once.
    let (mut c, nonce) = challenged(&server, "alice@example.com").await;
    let blob = msnp::sso::login_blob(&secret, &nonce, [2; 8]);
    c.send(&format!("USR 3 SSO S {} {blob}", messenger.ticket)).await;
    c.expect("USR 3 OK alice@example.com 1 0").await;
    c.expect("SBS 0 null").await;
    let profile = c.expect_prefix("MSG Hotmail Hotmail ").await;
    assert!(String::from_utf8_lossy(profile.payload.as_deref().unwrap()).contains("ABCHMigrated: 1"));
    let (mut again, nonce) = challenged(&server, "alice@example.com").await;
    let blob = msnp::sso::login_blob(&secret, &nonce, [2; 8]);
    again.send(&format!("USR 3 SSO S {} {blob}", messenger.ticket)).await;
    again.expect("911 3").await;
    // Lists come from the address book now: SYN is not a command any more.
    c.send("SYN 4 0 0").await;
    c.expect("502 4").await;
}

async fn soap(server: &TestServer, service: &str, body: &str) -> (u16, String) {
    let answer = soap_post(server, &format!("/abservice/{service}"), "", body).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

#[tokio::test]
async fn users_of_four_dialects_share_lists_presence_and_the_address_book() {
    // Challenges are tested elsewhere; here they would interleave.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol", "dave"]);
    // Alice on MSNP15, Bob on MSNP11, Carol on MSNP8, Dave on MSNP2.
    let mut alice = login_as_dialect(&server, 15, "alice@example.com", "pw-alice").await;
    alice.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    alice.expect("ADL 5 OK").await;
    alice.send("CHG 6 NLN 0").await;
    alice.expect("CHG 6 NLN 0").await;
    let mut bob = as_dialect(&server, 11, "bob").await;
    bob.send("CHG 6 NLN 0").await;
    bob.expect("CHG 6 NLN 0").await;
    let mut carol = as_dialect(&server, 8, "carol").await;
    carol.send("CHG 6 NLN 0").await;
    carol.expect("CHG 6 NLN 0").await;
    let mut dave = as_dialect(&server, 2, "dave").await;
    dave.send("CHG 6 NLN").await;
    dave.expect("CHG 6 NLN").await;

    // Bob (MSNP11) adds Alice: she is told with an `ADL 0` document.
    bob.send("ADC 7 FL N=alice@example.com F=Alice").await;
    bob.expect_prefix("ADC 7 FL N=alice@example.com F=Alice C=").await;
    bob.expect_prefix("ILN 7 NLN alice@example.com").await;
    let told = alice.expect_prefix("ADL 0 ").await;
    let doc = msnp::adl::ListDocument::parse(told.payload.as_deref().unwrap()).unwrap();
    assert_eq!(doc.contacts[0].handle, "bob@example.com");
    assert_eq!(doc.contacts[0].lists, 8);
    // ... and the address book's notice, to fetch the memberships again.
    alice.expect_prefix("NOT ").await;
    // Alice adds Bob, Carol and Dave with one ADL and sees them online.
    let adl = br#"<ml><d n="example.com"><c n="bob" l="3" t="1"/><c n="carol" l="1" t="1"/><c n="dave" l="1" t="1"/></d></ml>"#;
    alice.send_payload("ADL 8", adl).await;
    alice.expect("ADL 8 OK").await;
    for name in ["bob", "carol", "dave"] {
        let iln = alice.expect_prefix("ILN 8 NLN ").await;
        assert!(iln.text.contains(&format!("{name}@example.com")), "{}", iln.text);
    }
    bob.expect("ADC 0 RL N=alice@example.com F=Alice").await;
    carol.expect_prefix("ADD 0 RL ").await;
    dave.expect_prefix("ADD 0 RL ").await;

    // The address book and membership lists say the same, through the
    // address book's ticket.
    let ticket = alice.contacts_ticket.clone().expect("an address book ticket");
    let (status, xml) = soap(&server, "SharingService.asmx", &addressbook::find_membership_request(&ticket)).await;
    assert_eq!(status, 200, "{xml}");
    let roles = addressbook::parse_find_membership_response(&xml).unwrap();
    let members = |role: Role| -> Vec<String> {
        roles.iter().find(|(r, _)| *r == role).map(|(_, m)| m.iter().map(|m| m.handle.clone()).collect()).unwrap()
    };
    assert_eq!(members(Role::Allow), ["bob@example.com"]);
    assert_eq!(members(Role::Reverse), ["bob@example.com"]);
    let (status, xml) = soap(&server, "abservice.asmx", &addressbook::ab_find_all_request(&ticket)).await;
    assert_eq!(status, 200, "{xml}");
    let book = addressbook::parse_ab_find_all_response(&xml).unwrap();
    assert!(book.contacts[0].is_me && book.contacts[0].handle == "alice@example.com");
    let handles: Vec<&str> = book.contacts[1..].iter().map(|c| c.handle.as_str()).collect();
    assert_eq!(handles, ["bob@example.com", "carol@example.com", "dave@example.com"]);
    assert!(book.contacts[1..].iter().all(|c| c.messenger_user && c.guid.len() == 36));

    // Presence across dialects, both ways.
    alice.send("CHG 9 BSY 0").await;
    alice.expect("CHG 9 BSY 0").await;
    bob.expect_prefix("NLN BSY alice@example.com").await;
    carol.send("CHG 9 AWY 0").await;
    carol.expect("CHG 9 AWY 0").await;
    alice.expect("NLN AWY carol@example.com 1 Carol 0").await;
    // Alice takes Dave off her list: Dave (MSNP2) is told the old way.
    alice.send_payload("RML 10", br#"<ml><d n="example.com"><c n="dave" l="1" t="1"/></d></ml>"#).await;
    alice.expect("RML 10 OK").await;
    dave.expect_prefix("REM 0 RL ").await;

    // And all four chat in one conversation the MSNP15 user starts.
    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.sync_point_skipping().await;
    }
    let mut sb = open_session(&server, &mut alice, "alice@example.com", "Alice").await;
    let mut joined = Vec::new();
    for (trid, (ns, handle)) in
        [(&mut bob, "bob@example.com"), (&mut carol, "carol@example.com"), (&mut dave, "dave@example.com")]
            .into_iter()
            .enumerate()
    {
        let (other, _) = invite(&mut sb, 20 + trid as u32, ns, handle).await;
        sb.expect_prefix(&format!("JOI {handle}")).await;
        joined.push(other);
    }
    sb.send_payload("MSG 30 N", &text_message("hello from 2007")).await;
    for other in &mut joined {
        // Those who joined first hear of the later ones first.
        let m = loop {
            let l = other.recv().await;
            if !l.text.starts_with("JOI ") {
                break l;
            }
        };
        assert!(m.text.starts_with("MSG alice@example.com"), "{}", m.text);
        assert!(String::from_utf8_lossy(m.payload.as_deref().unwrap()).ends_with("hello from 2007"));
    }
    // Dave answers from 1999; Alice (and the others) read him.
    let dave_sb = joined.last_mut().unwrap();
    dave_sb.send_payload("MSG 9 N", &text_message("hello from 1999")).await;
    let m = sb.expect_prefix("MSG dave@example.com").await;
    assert!(String::from_utf8_lossy(m.payload.as_deref().unwrap()).ends_with("hello from 1999"));
}

#[tokio::test]
async fn bad_list_documents_and_soap_requests_change_nothing() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut alice = login_as_dialect(&server, 15, "alice@example.com", "pw-alice").await;
    for (payload, code) in [
        (&b"<ml><d n=\"example.com\"></d></ml>"[..], 240),
        (b"not xml", 240),
        (b"<!DOCTYPE ml [<!ENTITY a \"x\">]><ml/>", 240),
        (b"<ml><d n=\"example.com\"><c n=\"bob\" l=\"8\" t=\"1\"/></d></ml>", 241),
        (b"<ml><d n=\"example.com\"><c n=\"bob\" l=\"1\" t=\"1\"/></d><d n=\"example.com\"><c n=\"x\" l=\"1\"/></d></ml>", 241),
        (b"<ml><d n=\"example.com\"><c n=\"nobody\" l=\"1\" t=\"1\"/></d></ml>", 208),
    ] {
        alice.send_payload("ADL 5", payload).await;
        alice.expect(&format!("{code} 5")).await;
    }
    let ticket = alice.contacts_ticket.clone().unwrap();
    let (_, xml) = soap(&server, "abservice.asmx", &addressbook::ab_find_all_request(&ticket)).await;
    assert_eq!(addressbook::parse_ab_find_all_response(&xml).unwrap().contacts.len(), 1, "only Alice herself");
    // Malformed, a bomb, another namespace, a forged ticket: faults, and
    // nothing read.
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><s>&b;</s>"#;
    let other_ns = addressbook::ab_find_all_request(&ticket).replace(addressbook::NS, "urn:elsewhere");
    for body in
        ["<soap:Envelope".to_string(), bomb.to_string(), other_ns, addressbook::ab_find_all_request("t=forged&p=x")]
    {
        let (status, xml) = soap(&server, "abservice.asmx", &body).await;
        assert_eq!(status, 500, "{body:.60}");
        assert!(xml.contains("<soap:Fault>") && !xml.contains("alice@example.com"), "{xml}");
    }
    let huge = format!("<x>{}</x>", "a".repeat(100 * 1024));
    let (status, _) = soap(&server, "abservice.asmx", &huge).await;
    assert_eq!(status, 413, "a body over the limit is refused before it is read");
}

#[tokio::test]
async fn amsn_0_99_signs_in_and_goes_online_as_it_does() {
    // The lines aMSN 0.99 (MSNP15 by default) sent this server when it was
    // signed in with it: VER, CVR and USR in one write, then the SSO
    // answer, the initial ADL, its name, a personal message with its
    // machine GUID, and a CHG with MSNP16's `caps:capsEx` and an MSN object.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice"]);
    let mut ns = Client::connect(server.ns).await;
    ns.send_raw(
        b"VER 1 MSNP15 CVR0\r\nCVR 2 0x0409 winnt 5.1 i386 MSNMSGR 8.0.0812 msmsgs alice@example.com\r\nUSR 3 SSO I alice@example.com\r\n",
    )
    .await;
    ns.expect("VER 1 MSNP15").await;
    ns.expect_prefix("CVR 2 ").await;
    ns.expect_prefix("GCF 0 ").await;
    let nonce = ns.expect_prefix("USR 3 SSO S MBI_KEY_OLD ").await.args()[5].to_string();
    let tokens = sso_tokens(&server, "alice@example.com", "pw-alice", "MBI_KEY_OLD").await.unwrap();
    let blob = msnp::sso::login_blob(tokens[0].secret.as_deref().unwrap(), &nonce, [3; 8]);
    ns.send(&format!("USR 4 SSO S {} {blob}", tokens[0].ticket)).await;
    ns.expect("USR 4 OK alice@example.com 1 0").await;
    ns.expect("SBS 0 null").await;
    ns.expect_prefix("MSG Hotmail Hotmail ").await;
    ns.send_payload("ADL 8", br#"<ml l="1"></ml>"#).await;
    ns.expect("ADL 8 OK").await;
    ns.send("PRP 9 MFN Alice").await;
    ns.expect("PRP 9 MFN Alice").await;
    let uux = b"<Data><PSM></PSM><CurrentMedia></CurrentMedia><MachineGuid>{c6b9127f-7c64-a017-a98c-b57a2f61fd0b}</MachineGuid></Data>";
    ns.send_payload("UUX 10", uux).await;
    ns.expect("UUX 10 0").await;
    let msnobj = "%3Cmsnobj%20Creator%3D%22alice%40example%2Ecom%22%20Size%3D%2215045%22%20Type%3D%223%22%20Location%3D%22amsn%2Etmp%22%20Friendly%3D%22AAA%3D%22%2F%3E";
    ns.send(&format!("CHG 11 NLN 2147778596:0 {msnobj}")).await;
    ns.expect(&format!("CHG 11 NLN 2147778596 {msnobj}")).await;
}
