//! MSNP21 payloads and steps the MSNP21 tests share: on one server and
//! across the nodes of a cluster.

use msnp::routed::RoutedMessage;
use msnp::user::UserDocument;

use super::*;

/// A `PUT` of `document` to `name`'s own presence, from `machine`.
pub fn user_put(name: &str, machine: &str, document: &str) -> Vec<u8> {
    let me = format!("{name}@example.com");
    format!(
        "Routing: 1.0\r\nTo: 1:{me}\r\nFrom: 1:{me};epid={machine}\r\n\r\nReliability: 1.0\r\n\r\n\
         Publication: 1.0\r\nUri: /user\r\nContent-Type: application/user+xml\r\nContent-Length: {}\r\n\r\n{document}",
        document.len()
    )
    .into_bytes()
}

/// An `SDG` of `kind` from `from` (as `claimed` says) to `to`.
pub fn sdg(claimed: &str, to: &str, kind: &str, body: &str) -> Vec<u8> {
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
pub async fn online21(server: &TestServer, name: &str) -> (Client, String) {
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
pub async fn next_nfy(c: &mut Client, verb: &str) -> (String, UserDocument, RoutedMessage) {
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

/// A routed `PUT`/`DEL` payload from `name` to `to` with `uri` and `body`.
pub fn routed_to(name: &str, to: &str, uri: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "Routing: 1.0\r\nTo: {to}\r\nFrom: 1:{name}@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nPublication: 1.0\r\nUri: {uri}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

pub fn roster(names: &[&str]) -> String {
    let users: String = names.iter().map(|n| format!("<user><id>1:{n}@example.com</id></user>")).collect();
    format!("<circle><roster><id>IM</id>{users}</roster></circle>")
}

/// The next `NFY` (skipping pings) as its routed message.
pub async fn next_routed(c: &mut Client, prefix: &str) -> RoutedMessage {
    loop {
        let line = c.recv().await;
        if line.text.starts_with(prefix) {
            return RoutedMessage::parse(line.payload.as_deref().unwrap()).expect("a routed message");
        }
        assert!(line.text.starts_with("QNG"), "{} while waiting for {prefix}", line.text);
    }
}

pub const MULTIPARTY: &str = "application/multiparty+xml";
pub const CIRCLES: &str = "application/circles+xml";

/// `name` (signed in on `c`) makes a group conversation and joins it; the
/// group. The roster that follows the join is left unread.
pub async fn make_group(c: &mut Client, name: &str) -> msnp::multiparty::GroupId {
    use msnp::multiparty::{GroupId, NEW_GROUP};
    c.send_payload("PUT 70", &routed_to(name, &format!("10:{NEW_GROUP}"), "/circle", MULTIPARTY, "")).await;
    let made = c.expect_prefix("PUT 70 OK").await;
    let made = RoutedMessage::parse(made.payload.as_deref().unwrap()).unwrap();
    let group = GroupId::of_address(&made.from().unwrap()).expect("a group address");
    c.send_payload("PUT 71", &routed_to(name, &group.address(), "/circle", CIRCLES, &roster(&[name]))).await;
    c.expect_prefix("PUT 71 OK").await;
    group
}

/// `name` invites `who` into `group`; waits for the answer (skipping what
/// comes before it).
pub async fn invite_into(c: &mut Client, name: &str, group: &msnp::multiparty::GroupId, who: &str) {
    let to = format!("{};path=IM", group.address());
    c.send_payload("PUT 72", &routed_to(name, &to, "/circle", MULTIPARTY, &roster(&[who]))).await;
    super::cluster::until(c, "PUT 72 OK").await;
}
