//! Windows Live Messenger 2011/2012 (MSNP21): presence as user documents
//! (`PUT /user`, `NFY PUT`, `NFY DEL`) seen across dialects, and chat
//! without a switchboard (`SDG`) between MSNP21 endpoints.

mod common;

use common::*;
use msnp::user::UserDocument;
use msnp::{OnlineState, routed::RoutedMessage};

/// A `PUT` of `document` to `name`'s own presence, from `machine`.
fn user_put(name: &str, machine: &str, document: &str) -> Vec<u8> {
    let me = format!("{name}@example.com");
    format!(
        "Routing: 1.0\r\nTo: 1:{me}\r\nFrom: 1:{me};epid={machine}\r\n\r\nReliability: 1.0\r\n\r\n\
         Publication: 1.0\r\nUri: /user\r\nContent-Type: application/user+xml\r\nContent-Length: {}\r\n\r\n{document}",
        document.len()
    )
    .into_bytes()
}

/// An `SDG` of `kind` from `from` (as `claimed` says) to `to`.
fn sdg(claimed: &str, to: &str, kind: &str, body: &str) -> Vec<u8> {
    format!(
        "Routing: 1.0\r\nTo: 1:{to}@example.com\r\nFrom: 1:{claimed}@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: {kind}\r\nContent-Length: {}\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `name` signed in with MSNP21, its initial `ADL` sent and online, as
/// bitlbee 3.4 does it (challenges are off in these servers).
async fn online21(server: &TestServer, name: &str) -> (Client, String) {
    let machine = msnp::endpoint::MachineGuid::from_random(rand::random());
    let email = format!("{name}@example.com");
    let mut c = login_from_machine(server, 21, &email, &format!("pw-{name}"), machine.clone()).await;
    c.send_payload("ADL 50", br#"<ml l="1"></ml>"#).await;
    c.expect("ADL 50 OK").await;
    let online = "<user><s n=\"IM\"><Status>NLN</Status><CurrentMedia></CurrentMedia></s></user>";
    c.send_payload("PUT 51", &user_put(name, machine.as_str(), online)).await;
    c.expect_prefix("PUT 51 OK").await;
    (c, machine.as_str().to_string())
}

/// The next `NFY` (`PUT` or `DEL`, as `verb`), skipping pings; who it is
/// from and the document it carries.
async fn next_nfy(c: &mut Client, verb: &str) -> (String, UserDocument, RoutedMessage) {
    loop {
        let line = c.recv().await;
        if line.text.starts_with("QNG") {
            continue;
        }
        assert!(line.text.starts_with(&format!("NFY {verb} ")), "{}", line.text);
        let message = RoutedMessage::parse(line.payload.as_deref().unwrap()).expect("a routed message");
        let from = message.from().expect("a sender").name;
        let doc = msnp::user::published(&message).expect("a user document");
        return (from, doc, message);
    }
}

#[tokio::test]
async fn msnp21_and_msnp11_users_see_each_other_s_presence() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    // Bob (MSNP11) lists Alice; Alice (MSNP21) lists Bob.
    let mut bob = login_as_dialect(&server, 11, "bob@example.com", "pw-bob").await;
    bob.send("SYN 1 0 0").await;
    bob.sync_point_skipping().await;
    bob.send("ADC 2 FL N=alice@example.com F=Alice").await;
    bob.expect_prefix("ADC 2 FL").await;
    bob.send("CHG 3 NLN 0").await;
    bob.expect_prefix("CHG 3 NLN").await;

    let (mut alice, machine) = online21(&server, "alice").await;
    // Bob sees her as any contact: NLN.
    bob.expect_prefix("NLN NLN alice@example.com").await;
    // She lists him and is told his presence as a whole document.
    let bob_entry = br#"<ml><d n="example.com"><c n="bob" t="1"><s n="IM" l="3"/></c></d></ml>"#;
    alice.send_payload("ADL 60", bob_entry).await;
    alice.expect("ADL 60 OK").await;
    bob.expect_prefix("ADC 0 RL N=alice@example.com").await;
    let (from, doc, message) = next_nfy(&mut alice, "PUT").await;
    assert_eq!((from.as_str(), doc.status), ("bob@example.com", Some(OnlineState::Online)));
    assert_eq!(message.content.get("NotifType"), Some("Full"));
    assert_eq!(message.to().unwrap().name, "alice@example.com");

    // His changes reach her as partial documents.
    bob.send("CHG 4 BSY 0").await;
    bob.expect_prefix("CHG 4 BSY").await;
    let (_, doc, message) = next_nfy(&mut alice, "PUT").await;
    assert_eq!((doc.status, message.content.get("NotifType")), (Some(OnlineState::Busy), Some("Partial")));
    bob.send_payload("UUX 5", b"<Data><PSM>at lunch</PSM><CurrentMedia></CurrentMedia></Data>").await;
    bob.expect("UUX 5 0").await;
    let (_, doc, _) = next_nfy(&mut alice, "PUT").await;
    assert_eq!(doc.personal_message.as_deref(), Some("at lunch"));

    // Hers reach him as NLN and UBX, her name as published.
    let away = "<user><s n=\"IM\"><Status>AWY</Status></s><s n=\"PE\"><FriendlyName>Alice A.</FriendlyName><PSM>out</PSM></s></user>";
    alice.send_payload("PUT 61", &user_put("alice", &machine, away)).await;
    alice.expect_prefix("PUT 61 OK").await;
    bob.expect("NLN NLN alice@example.com Alice%20A. 0").await;
    let ubx = bob.expect_prefix("UBX alice@example.com").await;
    assert!(String::from_utf8_lossy(ubx.payload.as_deref().unwrap()).contains("<PSM>out</PSM>"));
    bob.expect_prefix("NLN AWY alice@example.com Alice%20A.").await;

    // He signs out: she is told with NFY DEL.
    bob.send("OUT").await;
    let (from, _, _) = next_nfy(&mut alice, "DEL").await;
    assert_eq!(from, "bob@example.com");
}

#[tokio::test]
async fn msnp21_users_chat_without_a_switchboard_on_every_machine() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (mut alice, _) = online21(&server, "alice").await;
    let (mut alice_phone, _) = online21(&server, "alice").await;
    let (mut bob, _) = online21(&server, "bob").await;
    alice.send_payload("SDG 70", &sdg("alice", "bob", "Text", "hello, Bob")).await;
    let got = bob.expect_prefix("SDG 0 ").await;
    let message = RoutedMessage::parse(got.payload.as_deref().unwrap()).unwrap();
    assert_eq!(message.content.get("Message-Type"), Some("Text"));
    assert_eq!(&message.body[..], b"hello, Bob");
    assert_eq!(message.from().unwrap().name, "alice@example.com");
    // Her other machine shows what she said; the one that said it is not told.
    let copy = alice_phone.expect_prefix("SDG 0 ").await;
    assert_eq!(RoutedMessage::parse(copy.payload.as_deref().unwrap()).unwrap().to().unwrap().name, "bob@example.com");
    alice.send("PNG").await;
    alice.expect_prefix("QNG").await;
    // Typing and the answer reach both of her machines.
    bob.send_payload("SDG 71", &sdg("bob", "alice", "Control/Typing", "")).await;
    bob.send_payload("SDG 72", &sdg("bob", "alice", "Text", "hi!")).await;
    for c in [&mut alice, &mut alice_phone] {
        let typing = c.expect_prefix("SDG 0 ").await;
        let m = RoutedMessage::parse(typing.payload.as_deref().unwrap()).unwrap();
        assert_eq!(m.content.get("Message-Type"), Some("Control/Typing"));
        let text = c.expect_prefix("SDG 0 ").await;
        assert!(text.payload.as_deref().unwrap().ends_with(b"hi!"));
    }
}

#[tokio::test]
async fn sdg_that_cannot_be_delivered_or_is_forged_is_refused() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol", "dave"]);
    let (mut alice, _) = online21(&server, "alice").await;
    // Offline, unknown: 217.
    alice.send_payload("SDG 80", &sdg("alice", "carol", "Text", "anyone?")).await;
    eprintln!("GOT {:?}", alice.recv().await.text);
    alice.send_payload("SDG 81", &sdg("alice", "nobody", "Text", "anyone?")).await;
    alice.expect("217 81").await;
    // Someone who blocks her: the same answer, and nothing reaches him.
    let (mut bob, _) = online21(&server, "bob").await;
    bob.send("BLP 1 BL").await;
    bob.expect_prefix("BLP 1 BL").await;
    alice.send_payload("SDG 82", &sdg("alice", "bob", "Text", "hi")).await;
    alice.expect("217 82").await;
    // A message that claims another sender, or says nothing a chat carries.
    let (mut dave, _) = online21(&server, "dave").await;
    alice.send_payload("SDG 83", &sdg("dave", "dave", "Text", "I am Dave")).await;
    alice.expect_prefix("201 83").await;
    alice.send_payload("SDG 84", &sdg("alice", "dave", "Unheard/Of", "x")).await;
    alice.expect_prefix("201 84").await;
    alice.send_payload("SDG 85", b"not a routed message").await;
    alice.expect_prefix("201 85").await;
    // None of it reached Dave or Bob.
    dave.send("PNG").await;
    dave.expect_prefix("QNG").await;
    bob.send("PNG").await;
    bob.expect_prefix("QNG").await;
    // A contact on a switchboard dialect cannot take SDG yet: 217, and a
    // CAL to an MSNP21 user is 217 too, rather than a ring never answered.
    let mut carol = login_as_dialect(&server, 11, "carol@example.com", "pw-carol").await;
    carol.send("SYN 1 0 0").await;
    carol.sync_point_skipping().await;
    carol.send("CHG 2 NLN 0").await;
    carol.expect_prefix("CHG 2 NLN").await;
    alice.send_payload("SDG 86", &sdg("alice", "carol", "Text", "hi Carol")).await;
    alice.expect("217 86").await;
    let mut sb = open_session(&server, &mut carol, "carol@example.com", "Carol").await;
    sb.send("CAL 2 alice@example.com").await;
    sb.expect("217 2").await;
}
