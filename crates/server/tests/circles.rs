//! Circles (MSNP18's persistent group chats) over real sockets to a real
//! msnd: made and joined through the address book, admitted with `USR SHA
//! A`, joined with `ADL`, spoken in with `SDG`; what a member missed while
//! away is given once when they come back; non-members are refused.

mod common;

use common::*;
use msnp::addressbook::{self, Invitee, Operation, parse_circle_result, parse_create_circle_response};
use msnp::circle::{self, CircleDocument, CircleId, CircleRole, CircleState, Said};
use msnp::routed::RoutedMessage;

async fn call(server: &TestServer, ticket: &str, op: &Operation) -> (u16, String) {
    let body = addressbook::request(ticket, &op.to_xml());
    let answer = soap_post(server, op.path(), &op.action(), &body).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

async fn ok(server: &TestServer, ticket: &str, op: Operation) -> String {
    let (status, xml) = call(server, ticket, &op).await;
    assert_eq!(status, 200, "{} answered {xml}", op.name());
    xml
}

async fn denied(server: &TestServer, ticket: &str, op: Operation) -> addressbook::Fault {
    let (status, xml) = call(server, ticket, &op).await;
    assert_eq!(status, 500, "{} answered {xml}", op.name());
    addressbook::Fault::parse(&xml).unwrap()
}

/// The circles of the caller's book and the `USR SHA A` argument.
async fn circles_and_ticket(server: &TestServer, ticket: &str) -> (Vec<addressbook::CircleEntry>, String) {
    let xml = ok(server, ticket, Operation::FindContactsPaged { deltas_since: None }).await;
    let (circles, signed) = parse_circle_result(&xml).unwrap_or_else(|| panic!("no CircleResult in {xml}"));
    (circles, msnp::base64::encode(signed.as_bytes()))
}

/// Signs the endpoint into the circle the way WLM 2009 does at sign-in:
/// the ticket, then `ADL` of the circle. Returns the roster it is given and what it
/// missed.
async fn join(server: &TestServer, c: &mut Client, ticket: &str, circle: &CircleId) -> (Vec<String>, Vec<String>) {
    let (_, argument) = circles_and_ticket(server, ticket).await;
    c.send(&format!("USR 20 SHA A {argument}")).await;
    c.expect_prefix("USR 20 OK ").await;
    let adl = format!(r#"<ml><d n="live.com"><c n="{}" l="1" t="9"/></d></ml>"#, circle.guid());
    c.send_payload("ADL 21", adl.as_bytes()).await;
    c.expect("ADL 21 OK").await;
    let roster = roster_of(&c.expect_prefix("NFY PUT ").await);
    let mut missed = Vec::new();
    while let Some(line) = c.try_recv(std::time::Duration::from_millis(300)).await {
        assert!(line.text.starts_with("SDG 0 "), "{}", line.text);
        missed.push(text_of(&line));
    }
    (roster, missed)
}

fn roster_of(line: &Line) -> Vec<String> {
    let m = RoutedMessage::parse(line.payload.as_deref().unwrap()).unwrap();
    CircleDocument::parse(&m.body).unwrap().roster
}

fn text_of(line: &Line) -> String {
    let m = RoutedMessage::parse(line.payload.as_deref().unwrap()).unwrap();
    match Said::of(&m) {
        Some(Said::Text { text, .. }) => text,
        other => panic!("not text: {other:?}"),
    }
}

fn say(from: &str, circle: &CircleId, text: &str) -> (String, Vec<u8>) {
    let said = Said::Text { text: text.into(), format: None };
    let m = circle::circle_message(circle, from, None, &said);
    ("SDG 30".to_string(), m.to_bytes().to_vec())
}

#[tokio::test]
async fn a_circle_is_made_joined_spoken_in_and_caught_up_on() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (mut alice, alice_ticket) = with_address_book(&server, 18, "alice").await;
    let (mut bob, bob_ticket) = with_address_book(&server, 18, "bob").await;

    // Alice makes a circle: her book shows it, with her as its administrator.
    let xml = ok(&server, &alice_ticket, Operation::CreateCircle { name: "Book club".into() }).await;
    let id = parse_create_circle_response(&xml).unwrap();
    alice.expect_prefix("NOT ").await;
    let (circles, _) = circles_and_ticket(&server, &alice_ticket).await;
    assert_eq!(circles.len(), 1);
    assert_eq!(
        (circles[0].role, circles[0].state, circles[0].name.as_str()),
        (CircleRole::Admin, CircleState::Accepted, "Book club")
    );
    let (roster, missed) = join(&server, &mut alice, &alice_ticket, &id).await;
    assert_eq!((roster, missed), (vec!["alice@example.com".to_string()], vec![]));

    // She invites Bob: he is told to read his book, sees the invitation,
    // and accepts.
    let invite = Operation::InviteToCircle {
        circle: id.clone(),
        invitee: Invitee::Handle("bob@example.com".into()),
        message: None,
    };
    ok(&server, &alice_ticket, invite).await;
    bob.expect_prefix("NOT ").await;
    let (circles, _) = circles_and_ticket(&server, &bob_ticket).await;
    assert_eq!(
        (circles[0].state, circles[0].inviter.as_deref()),
        (CircleState::WaitingResponse, Some("alice@example.com"))
    );
    ok(&server, &bob_ticket, Operation::AnswerCircle { circle: id.clone(), accept: true }).await;
    bob.expect_prefix("NOT ").await;
    alice.expect_prefix("NOT ").await;
    let (roster, _) = join(&server, &mut bob, &bob_ticket, &id).await;
    assert_eq!(roster, ["alice@example.com", "bob@example.com"]);
    assert_eq!(roster_of(&alice.expect_prefix("NFY PUT ").await), ["alice@example.com", "bob@example.com"]);

    // Bob speaks: Alice hears it, from Bob; Bob's own endpoint is not echoed.
    let (line, payload) = say("bob@example.com", &id, "hello, book club");
    bob.send_payload(&line, &payload).await;
    let heard = alice.expect_prefix("SDG 0 ").await;
    assert_eq!(text_of(&heard), "hello, book club");
    let from = RoutedMessage::parse(heard.payload.as_deref().unwrap()).unwrap().from().unwrap();
    assert_eq!(from.name, "bob@example.com");
    bob.expect_silence().await;

    // Bob leaves; Alice speaks while he is away; he is given it once when
    // he comes back, and not again after that.
    bob.send("OUT").await;
    bob.expect_closed().await;
    assert_eq!(roster_of(&alice.expect_prefix("NFY PUT ").await), ["alice@example.com"]);
    let (line, payload) = say("alice@example.com", &id, "while you were away");
    alice.send_payload(&line, &payload).await;
    alice.expect_silence().await;
    let (mut bob, bob_ticket) = with_address_book(&server, 18, "bob").await;
    let (_, missed) = join(&server, &mut bob, &bob_ticket, &id).await;
    assert_eq!(missed, ["while you were away"]);
    bob.send("OUT").await;
    bob.expect_closed().await;
    let (mut bob, bob_ticket) = with_address_book(&server, 18, "bob").await;
    let (_, missed) = join(&server, &mut bob, &bob_ticket, &id).await;
    assert!(missed.is_empty(), "given again: {missed:?}");

    // Alice saw Bob come and go each time.
    let seen: Vec<String> = alice.sync_point_skipping().await.into_iter().map(|l| l.text).collect();
    assert!(seen.iter().all(|l| l.starts_with("NFY PUT ")), "{seen:?}");

    // Bob leaves the circle for good: Alice sees him go.
    ok(&server, &bob_ticket, Operation::LeaveCircle { circle: id.clone() }).await;
    let gone = alice.expect_prefix("NFY DEL ").await;
    let gone = RoutedMessage::parse(gone.payload.as_deref().unwrap()).unwrap();
    assert_eq!(circle::left_member(&gone).as_deref(), Some("bob@example.com"));
}

#[tokio::test]
async fn non_members_are_refused_and_nothing_changes() {
    let server = TestServer::start();
    users(&server, &["alice", "carol"]);
    let (mut alice, alice_ticket) = with_address_book(&server, 18, "alice").await;
    let (mut carol, carol_ticket) = with_address_book(&server, 18, "carol").await;
    let xml = ok(&server, &alice_ticket, Operation::CreateCircle { name: "Private".into() }).await;
    let id = parse_create_circle_response(&xml).unwrap();
    alice.expect_prefix("NOT ").await;

    // Carol is no member: she cannot read its book, invite into it, accept
    // an invitation she never had, or leave it.
    assert_eq!(
        denied(&server, &carol_ticket, Operation::FindCircle { circle: id.clone() }).await,
        addressbook::Fault::AccessDenied
    );
    let invite = Operation::InviteToCircle {
        circle: id.clone(),
        invitee: Invitee::Handle("carol@example.com".into()),
        message: None,
    };
    assert_eq!(denied(&server, &carol_ticket, invite).await, addressbook::Fault::AccessDenied);
    assert_eq!(
        denied(&server, &carol_ticket, Operation::AnswerCircle { circle: id.clone(), accept: true }).await,
        addressbook::Fault::AccessDenied
    );
    assert_eq!(
        denied(&server, &carol_ticket, Operation::LeaveCircle { circle: id.clone() }).await,
        addressbook::Fault::AccessDenied
    );

    // Joining without a ticket, with Alice's ticket, or saying something
    // in a circle she did not join.
    let adl = format!(r#"<ml><d n="live.com"><c n="{}" l="1" t="9"/></d></ml>"#, id.guid());
    carol.send_payload("ADL 7", adl.as_bytes()).await;
    carol.expect("933 7").await;
    let (_, alices) = circles_and_ticket(&server, &alice_ticket).await;
    carol.send(&format!("USR 8 SHA A {alices}")).await;
    carol.expect("911 8").await;
    carol.send("USR 9 SHA A bm90IGEgdGlja2V0").await;
    carol.expect("911 9").await;
    let (line, payload) = say("carol@example.com", &id, "let me in");
    carol.send_payload(&line, &payload).await;
    carol.expect("933 30").await;
    // Her own ticket admits her to nothing of Alice's.
    let (_, own) = circles_and_ticket(&server, &carol_ticket).await;
    carol.send(&format!("USR 10 SHA A {own}")).await;
    carol.expect_prefix("USR 10 OK ").await;
    carol.send_payload("ADL 11", adl.as_bytes()).await;
    carol.expect("933 11").await;

    // A message claiming to be someone else's, and one to no circle.
    let (_, argument) = circles_and_ticket(&server, &alice_ticket).await;
    alice.send(&format!("USR 12 SHA A {argument}")).await;
    alice.expect_prefix("USR 12 OK ").await;

    alice.send_payload("ADL 13", adl.as_bytes()).await;
    alice.expect("ADL 13 OK").await;
    alice.expect_prefix("NFY PUT ").await;
    let forged = circle::circle_message(&id, "carol@example.com", None, &Said::Text { text: "x".into(), format: None });
    alice.send_payload("SDG 14", &forged.to_bytes()).await;
    alice.expect("201 14").await;
    alice.send_payload("SDG 15", b"not a routed message").await;
    alice.expect("201 15").await;
    // Text past what a message may carry is refused; a payload past the
    // notification server's limit ends the connection, and only it.
    let long = Said::Text { text: "x".repeat(circle::MAX_TEXT + 1), format: None };
    let long = circle::circle_message(&id, "alice@example.com", None, &long);
    alice.send_payload("SDG 16", &long.to_bytes()).await;
    alice.expect("201 16").await;
    // Nobody else heard anything; the circle still has one member.
    carol.expect_silence().await;
    let (circles, _) = circles_and_ticket(&server, &alice_ticket).await;
    assert_eq!(circles.len(), 1);
    alice.send_raw(b"PUT 17 100000\r\n").await;
    assert!(alice.expect_closed().await.is_empty());
    carol.sync_point().await;
}

#[tokio::test]
async fn circles_per_account_are_limited() {
    let server = TestServer::start_with(&["--max-circles-per-account", "2"]);
    users(&server, &["alice"]);
    let (_alice, ticket) = with_address_book(&server, 18, "alice").await;
    for name in ["one", "two"] {
        ok(&server, &ticket, Operation::CreateCircle { name: name.into() }).await;
    }
    let fault = denied(&server, &ticket, Operation::CreateCircle { name: "three".into() }).await;
    assert_eq!(fault, addressbook::Fault::QuotaLimitReached);
    let (circles, _) = circles_and_ticket(&server, &ticket).await;
    assert_eq!(circles.len(), 2);
}

#[tokio::test]
async fn a_later_ticket_announces_only_the_circles_it_adds() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let (mut alice, ticket) = with_address_book(&server, 18, "alice").await;
    let xml = ok(&server, &ticket, Operation::CreateCircle { name: "First".into() }).await;
    let first = parse_create_circle_response(&xml).unwrap();
    alice.expect_prefix("NOT ").await;
    let (roster, _) = join(&server, &mut alice, &ticket, &first).await;
    assert_eq!(roster, ["alice@example.com"]);

    // A second circle: the client reads its book again and shows the new
    // ticket; the server names the new circle (only) for it to join.
    let xml = ok(&server, &ticket, Operation::CreateCircle { name: "Second".into() }).await;
    let second = parse_create_circle_response(&xml).unwrap();
    alice.expect_prefix("NOT ").await;
    let (_, argument) = circles_and_ticket(&server, &ticket).await;
    alice.send(&format!("USR 30 SHA A {argument}")).await;
    alice.expect_prefix("USR 30 OK ").await;
    let ready = alice.expect_prefix("NFY PUT ").await;
    let ready = RoutedMessage::parse(ready.payload.as_deref().unwrap()).unwrap();
    assert_eq!(CircleId::of_address(&ready.from().unwrap()), Some(second));
    assert_eq!(ready.content.get("NotifType"), Some("Full"));
    alice.expect_silence().await;
}
