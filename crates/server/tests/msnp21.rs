//! Windows Live Messenger 2011/2012 (MSNP21): presence as user documents
//! (`PUT /user`, `NFY PUT`, `NFY DEL`) seen across dialects, and chat
//! without a switchboard (`SDG`) between MSNP21 endpoints and, through a
//! bridge, with switchboard users of every older dialect.

mod common;

use common::msnp21::*;
use common::*;
use msnp::{OnlineState, routed::RoutedMessage};

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
    // Text for someone offline (or unknown) is kept for them, as any
    // offline message; typing for them is 217.
    alice.send_payload("SDG 80", &sdg("alice", "carol", "Text", "anyone?")).await;
    alice.send_payload("SDG 81", &sdg("alice", "nobody", "Text", "anyone?")).await;
    alice.send_payload("SDG 82", &sdg("alice", "carol", "Control/Typing", "")).await;
    alice.expect("217 82").await;
    // Someone who blocks her: her text is answered as any, and nothing
    // reaches him, now or later.
    let (mut bob, _) = online21(&server, "bob").await;
    bob.send("BLP 1 BL").await;
    bob.expect_prefix("BLP 1 BL").await;
    alice.send_payload("SDG 83", &sdg("alice", "bob", "Text", "hi")).await;
    // A message that claims another sender, or says nothing a chat carries.
    let (mut dave, _) = online21(&server, "dave").await;
    alice.send_payload("SDG 84", &sdg("dave", "dave", "Text", "I am Dave")).await;
    alice.expect_prefix("201 84").await;
    alice.send_payload("SDG 85", &sdg("alice", "dave", "Unheard/Of", "x")).await;
    alice.expect_prefix("201 85").await;
    alice.send_payload("SDG 86", b"not a routed message").await;
    alice.expect_prefix("201 86").await;
    // None of it reached Dave or Bob.
    dave.send("PNG").await;
    dave.expect_prefix("QNG").await;
    bob.send("PNG").await;
    bob.expect_prefix("QNG").await;
    // Carol signs in and is told of the one message left for her.
    let carol = login_as_dialect(&server, 21, "carol@example.com", "pw-carol").await;
    let mut carol = carol;
    carol.send_payload("ADL 1", br#"<ml l="1"></ml>"#).await;
    carol.expect("ADL 1 OK").await;
    let online = "<user><s n=\"IM\"><Status>NLN</Status></s></user>";
    carol.send_payload("PUT 2", &user_put("carol", "{00000000-0000-0000-0000-0000000000c0}", online)).await;
    carol.expect_prefix("PUT 2 OK").await;
    let notice = carol.expect_prefix("MSG Hotmail Hotmail").await;
    let notice = String::from_utf8_lossy(notice.payload.as_deref().unwrap()).into_owned();
    assert_eq!(notice.matches("<M>").count(), 1, "{notice}");
    assert!(notice.contains("alice@example.com"), "{notice}");
}

/// `name` online on a switchboard dialect (`n`), its lists synced.
async fn online_on(server: &TestServer, n: u8, name: &str) -> Client {
    let mut c = login_as_dialect(server, n, &format!("{name}@example.com"), &format!("pw-{name}")).await;
    let sync = if c.dialect.uses_guids() { "SYN 1 0 0" } else { "SYN 1 0" };
    c.send(sync).await;
    c.sync_point_skipping().await;
    let chg = if c.dialect.presence_has_client_id() { "CHG 2 NLN 0" } else { "CHG 2 NLN" };
    c.send(chg).await;
    c.expect_prefix("CHG 2 NLN").await;
    c
}

/// The text an SDG carries, skipping pings and presence.
async fn next_said(c: &mut Client) -> (String, String, String) {
    loop {
        let line = c.recv().await;
        if !line.text.starts_with("SDG 0 ") {
            continue;
        }
        let m = RoutedMessage::parse(line.payload.as_deref().unwrap()).unwrap();
        let kind = m.content.get("Message-Type").unwrap_or("").to_string();
        return (m.from().unwrap().name, kind, String::from_utf8_lossy(&m.body).into_owned());
    }
}

/// The text of the next MSG from `from`, skipping the rest.
async fn next_msg(sb: &mut Client, from: &str) -> String {
    let payload = next_msg_payload(sb, from).await;
    payload.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn an_msnp21_user_and_switchboard_users_chat_both_ways_and_in_a_group() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "carol", "dave"]);
    let (mut alice, _) = online21(&server, "alice").await;
    let mut carol = online_on(&server, 11, "carol").await;

    // Alice's first word rings Carol from a session opened for her, and
    // waits there until Carol answers.
    alice.send_payload("SDG 90", &sdg("alice", "carol", "Text", "hello from 2011")).await;
    let ring = carol.expect_prefix("RNG ").await;
    let r = ring.args();
    assert_eq!(r[5], "alice@example.com");
    let mut carol_sb = carol.next_to(r[2], client::conn::ServerKind::Switchboard).await;
    carol_sb.send(&format!("ANS 1 carol@example.com {} {}", r[4], r[1])).await;
    carol_sb.expect_prefix("IRO 1 1 1 alice@example.com").await;
    carol_sb.expect("ANS 1 OK").await;
    assert_eq!(next_msg(&mut carol_sb, "alice@example.com").await, "hello from 2011");
    // Carol answers and types; Alice reads both as SDG from Carol.
    carol_sb
        .send_payload(
            "MSG 2 U",
            b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: carol@example.com\r\n\r\n\r\n",
        )
        .await;
    carol_sb.send_payload("MSG 3 N", &text_message("hi Alice")).await;
    assert_eq!(next_said(&mut alice).await, ("carol@example.com".into(), "Control/Typing".into(), "\r\n".into()));
    assert_eq!(next_said(&mut alice).await, ("carol@example.com".into(), "Text".into(), "hi Alice".into()));
    // Her reply goes into the same conversation.
    alice.send_payload("SDG 91", &sdg("alice", "carol", "Text", "how are you?")).await;
    assert_eq!(next_msg(&mut carol_sb, "alice@example.com").await, "how are you?");

    // Carol brings Dave (MSNP2) in: three dialects in one conversation.
    let mut dave = online_on(&server, 2, "dave").await;
    let (mut dave_sb, iro) = invite(&mut carol_sb, 4, &mut dave, "dave@example.com").await;
    assert!(iro.iter().any(|l| l.contains("alice@example.com")), "{iro:?}");
    // With three others in it, Alice is shown it as a group conversation.
    let invited = next_routed(&mut alice, "NFY PUT").await;
    let group = msnp::multiparty::GroupId::of_address(&invited.from().unwrap()).expect("a group");
    let shown = msnp::multiparty::roster_of(&next_routed(&mut alice, "NFY PUT").await).unwrap();
    assert_eq!(shown, ["alice@example.com", "carol@example.com", "dave@example.com"]);
    // What she says to the group reaches both.
    let to_group = format!(
        "Routing: 1.0\r\nTo: {};path=IM\r\nFrom: 1:alice@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: 9\r\n\r\nhi, both!",
        group.address()
    );
    alice.send_payload("SDG 95", to_group.as_bytes()).await;
    assert_eq!(next_msg(&mut carol_sb, "alice@example.com").await, "hi, both!");
    assert_eq!(next_msg(&mut dave_sb, "alice@example.com").await, "hi, both!");
    dave_sb.send_payload("MSG 8 N", &text_message("hello all")).await;
    let heard = next_routed(&mut alice, "SDG 0").await;
    assert_eq!(msnp::multiparty::GroupId::of_address(&heard.to().unwrap()), Some(group.clone()));
    assert_eq!((heard.from().unwrap().name.as_str(), &heard.body[..]), ("dave@example.com", &b"hello all"[..]));
    assert_eq!(next_msg(&mut carol_sb, "dave@example.com").await, "hello all");
    alice.send_payload("SDG 92", &sdg("alice", "carol", "Text", "hi Dave")).await;
    assert_eq!(next_msg(&mut dave_sb, "alice@example.com").await, "hi Dave");
    assert_eq!(next_msg(&mut carol_sb, "alice@example.com").await, "hi Dave");

    // Everyone else leaves: the bridge leaves with them. Carol's CAL then
    // finds Alice at once, without a ring she could not answer.
    carol_sb.send("OUT").await;
    dave_sb.send("OUT").await;
    let mut sb = open_session(&server, &mut carol, "carol@example.com", "Carol").await;
    sb.send("CAL 2 alice@example.com").await;
    sb.expect_prefix("CAL 2 RINGING").await;
    sb.expect_prefix("JOI alice@example.com").await;
    sb.send_payload("MSG 3 N", &text_message("me again")).await;
    assert_eq!(next_said(&mut alice).await, ("carol@example.com".into(), "Text".into(), "me again".into()));
    alice.send_payload("SDG 93", &sdg("alice", "carol", "Nudge", "ID: 1\r\n\r\n")).await;
    let nudge = next_msg_payload(&mut sb, "alice@example.com").await;
    assert!(nudge.contains("text/x-msnmsgr-datacast") && nudge.contains("ID: 1"), "{nudge}");
    // Alice signs out: she leaves the conversation.
    alice.send("OUT").await;
    sb.expect_prefix("BYE alice@example.com").await;
}

async fn next_msg_payload(sb: &mut Client, from: &str) -> String {
    loop {
        let line = sb.recv().await;
        if line.text.starts_with(&format!("MSG {from}")) {
            return String::from_utf8_lossy(line.payload.as_deref().unwrap()).into_owned();
        }
    }
}

#[tokio::test]
async fn our_client_speaks_msnp21_with_an_msnp21_and_an_msnp11_client() {
    use client::Event;
    use msnp::Dialect;
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    // Lists made on an older client; MSNP21 reads them from the address book.
    for (who, other) in [("alice", "bob"), ("alice", "carol"), ("bob", "alice"), ("carol", "alice")] {
        let (c, _) = library_sign_in(&server, who, Dialect::Msnp11).await;
        c.add_contact(&format!("{other}@example.com"), other).await.unwrap();
        c.sign_out().await;
    }
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp21).await;
    alice.set_state(OnlineState::Online).await.unwrap();
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp21).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    let (carol, mut c) = library_sign_in(&server, "carol", Dialect::Msnp11).await;
    carol.set_state(OnlineState::Online).await.unwrap();
    // Presence both ways, from NFY documents and from NLN alike.
    for who in ["bob@example.com", "carol@example.com"] {
        wait_event(&mut a, |e| matches!(e, Event::Presence { handle, .. } if handle == who).then_some(())).await;
    }
    wait_event(&mut c, |e| matches!(e, Event::Presence { handle, .. } if handle == "alice@example.com").then_some(()))
        .await;
    alice.set_personal_message("on 2011").await.unwrap();
    let seen = |e: &Event| match e {
        Event::PersonalMessage { handle, text } if handle == "alice@example.com" => Some(text.clone()),
        _ => None,
    };
    assert_eq!(wait_event(&mut b, seen).await, "on 2011");
    assert_eq!(wait_event(&mut c, seen).await, "on 2011");
    alice.set_state(OnlineState::Busy).await.unwrap();
    let busy = |e: &Event| matches!(e, Event::Presence { handle, state, .. } if handle == "alice@example.com" && state == "BSY");
    wait_event(&mut b, |e| busy(e).then_some(())).await;
    wait_event(&mut c, |e| busy(e).then_some(())).await;

    // A chat without a switchboard, and one through the bridge.
    for (peer, events) in [("bob@example.com", &mut b), ("carol@example.com", &mut c)] {
        let chat = alice.start_conversation(peer).await.unwrap();
        chat.send_text(&format!("hi {peer}")).await.unwrap();
        let (conversation, from) = wait_event(events, |e| match e {
            Event::Message { conversation, from, text, .. } if text == &format!("hi {peer}") => {
                Some((*conversation, from.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!(from, "alice@example.com");
        let answer =
            if peer.starts_with("bob") { bob.conversation(conversation) } else { carol.conversation(conversation) };
        answer.expect("the conversation").send_text(&format!("hello back from {peer}")).await.unwrap();
        let expected = format!("hello back from {peer}");
        let (in_chat, from) = wait_event(&mut a, |e| match e {
            Event::Message { conversation, from, text, .. } if *text == expected => Some((*conversation, from.clone())),
            _ => None,
        })
        .await;
        assert_eq!((in_chat, from.as_str()), (chat.id, peer));
    }
    alice.sign_out().await;
    wait_event(&mut b, |e| matches!(e, Event::Offline { handle } if handle == "alice@example.com").then_some(())).await;
}

#[tokio::test]
async fn an_answer_to_an_msnp21_user_s_offline_message_reaches_them() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "carol"]);
    let (mut alice, _) = online21(&server, "alice").await;
    alice.send_payload("SDG 90", &sdg("alice", "carol", "Text", "call me when you are back")).await;
    // Carol (MSNP11) comes online and is offered it by a stand-in for Alice
    // (after the mail-data notice MSNP11 also gets).
    let mut carol = online_on(&server, 11, "carol").await;
    let ring = loop {
        let line = carol.recv().await;
        if line.text.starts_with("RNG ") {
            break line;
        }
    };
    let r = ring.args();
    let mut carol_sb = carol.next_to(r[2], client::conn::ServerKind::Switchboard).await;
    carol_sb.send(&format!("ANS 1 carol@example.com {} {}", r[4], r[1])).await;
    let offered = next_msg(&mut carol_sb, "alice@example.com").await;
    assert!(offered.ends_with("call me when you are back"), "{offered}");
    // Her answer brings Alice into the conversation through the bridge.
    carol_sb.send_payload("MSG 2 N", &text_message("I am back")).await;
    assert_eq!(next_said(&mut alice).await, ("carol@example.com".into(), "Text".into(), "I am back".into()));
    alice.send_payload("SDG 91", &sdg("alice", "carol", "Text", "great")).await;
    assert_eq!(next_msg(&mut carol_sb, "alice@example.com").await, "great");
}

#[tokio::test]
async fn the_directory_and_whatsup_answer_what_the_caller_may_see() {
    use msnp::directory::{CORE_PROFILE, DISPLAY_NAME, GetMany, parse_get_many_response};
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol"]);
    let (mut alice, ticket) = with_address_book(&server, 21, "alice").await;
    let bob = br#"<ml><d n="example.com"><c n="bob" t="1"><s n="IM" l="1"/></c></d></ml>"#;
    alice.send_payload("ADL 60", bob).await;
    alice.expect("ADL 60 OK").await;
    // CIDs are account numbers: alice 1, bob 2, carol 3 (not on her lists).
    let ask = GetMany { ticket: Some(ticket.clone()), view: CORE_PROFILE.into(), cids: vec![1, 2, 3] };
    let answer = soap_post(&server, "/profile/profile.asmx", "http://profile.live.com/GetMany", &ask.to_xml()).await;
    assert_eq!(answer.status, 200);
    let profiles = parse_get_many_response(&String::from_utf8_lossy(&answer.body)).expect("a GetMany answer");
    let names: Vec<(u64, &str)> = profiles
        .iter()
        .map(|p| (p.cid, p.attributes.iter().find(|(n, _)| n == DISPLAY_NAME).map(|(_, v)| v.as_str()).unwrap()))
        .collect();
    assert_eq!(names, [(1, "Alice"), (2, "Bob")]);
    // Without a current ticket: a fault, nothing else.
    let stranger = GetMany { ticket: Some("t=forged".into()), ..ask };
    let refused =
        soap_post(&server, "/profile/profile.asmx", "http://profile.live.com/GetMany", &stranger.to_xml()).await;
    assert_eq!(refused.status, 500);
    let whatsup = |ticket: &str| {
        msnp::soap::envelope(
            &format!(
                r#"<ABAuthHeader xmlns="{}"><TicketToken>{}</TicketToken></ABAuthHeader>"#,
                msnp::directory::WHATSUP_NS,
                msnp::soap::escape_xml(ticket)
            ),
            &format!(
                r#"<GetContactsRecentActivity xmlns="{}"><count>50</count></GetContactsRecentActivity>"#,
                msnp::directory::WHATSUP_NS
            ),
        )
    };
    let action = "http://www.msn.com/webservices/AddressBook/GetContactsRecentActivity";
    let answer = soap_post(&server, "/whatsnew/whatsnewservice.asmx", action, &whatsup(&ticket)).await;
    assert_eq!(answer.status, 200);
    assert!(String::from_utf8_lossy(&answer.body).contains("<Activities />"));
    assert_eq!(soap_post(&server, "/whatsnew/whatsnewservice.asmx", action, &whatsup("t=no")).await.status, 500);
}

#[tokio::test]
async fn a_group_conversation_is_made_joined_spoken_in_and_left() {
    use msnp::multiparty::{GroupId, NEW_GROUP, roster_of};
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "dave"]);
    let (mut alice, _) = online21(&server, "alice").await;
    let (mut bob, _) = online21(&server, "bob").await;
    let (mut dave, _) = online21(&server, "dave").await;
    // Made at the empty group: the answer names the new one.
    let multiparty = "application/multiparty+xml";
    alice.send_payload("PUT 70", &routed_to("alice", &format!("10:{NEW_GROUP}"), "/circle", multiparty, "")).await;
    let made = alice.expect_prefix("PUT 70 OK").await;
    let made = RoutedMessage::parse(made.payload.as_deref().unwrap()).unwrap();
    let group = GroupId::of_address(&made.from().unwrap()).expect("a group address");
    let at = group.address();
    // She joins it and invites Bob.
    let circles = "application/circles+xml";
    alice.send_payload("PUT 71", &routed_to("alice", &at, "/circle", circles, &roster(&["alice"]))).await;
    alice.expect_prefix("PUT 71 OK").await;
    assert_eq!(roster_of(&next_routed(&mut alice, "NFY PUT").await), Some(vec!["alice@example.com".to_string()]));
    let invite_to = format!("{at};path=IM");
    alice.send_payload("PUT 72", &routed_to("alice", &invite_to, "/circle", multiparty, &roster(&["bob"]))).await;
    alice.expect_prefix("PUT 72 OK").await;
    let invited = next_routed(&mut bob, "NFY PUT").await;
    assert_eq!(GroupId::of_address(&invited.from().unwrap()), Some(group.clone()));
    assert_eq!(invited.content.get("NotifType"), Some("Full"));
    // Bob joins: both are told the roster.
    bob.send_payload("PUT 80", &routed_to("bob", &at, "/circle", circles, &roster(&["bob"]))).await;
    bob.expect_prefix("PUT 80 OK").await;
    let both = Some(vec!["alice@example.com".to_string(), "bob@example.com".to_string()]);
    assert_eq!(roster_of(&next_routed(&mut alice, "NFY PUT").await), both);
    assert_eq!(roster_of(&next_routed(&mut bob, "NFY PUT").await), both);
    // What Alice says reaches Bob from her, in the group.
    let said = format!(
        "Routing: 1.0\r\nTo: {invite_to}\r\nFrom: 1:alice@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: 11\r\n\r\nhello group"
    );
    alice.send_payload("SDG 73", said.as_bytes()).await;
    let heard = next_routed(&mut bob, "SDG 0").await;
    assert_eq!((heard.from().unwrap().name.as_str(), &heard.body[..]), ("alice@example.com", &b"hello group"[..]));
    assert_eq!(GroupId::of_address(&heard.to().unwrap()), Some(group.clone()));
    // Dave was not invited: he can neither join nor speak there (933).
    dave.send_payload("PUT 90", &routed_to("dave", &at, "/circle", circles, &roster(&["dave"]))).await;
    dave.expect_prefix("933 90").await;
    dave.send_payload("SDG 91", said.replace("1:alice@", "1:dave@").as_bytes()).await;
    dave.expect_prefix("933 91").await;
    // Bob leaves; Alice is told.
    let me = "/circle/roster(IM)/user(1:bob@example.com)";
    bob.send_payload("DEL 81", &routed_to("bob", &at, me, circles, "")).await;
    bob.expect_prefix("DEL 81 OK").await;
    let gone = next_routed(&mut alice, "NFY DEL").await;
    assert_eq!(msnp::circle::left_member(&gone).as_deref(), Some("bob@example.com"));
    // Nothing of it reached Dave.
    dave.send("PNG").await;
    dave.expect_prefix("QNG").await;
}

#[tokio::test]
async fn one_machine_signs_another_of_its_account_out_and_no_one_else() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let (mut laptop, _) = online21(&server, "alice").await;
    let (mut phone, phone_machine) = online21(&server, "alice").await;
    let (mut bob, bob_machine) = online21(&server, "bob").await;
    let body = |machine: &str| format!("<user><sep n=\"IM\" epid=\"{machine}\"/></user>");
    // Bob cannot sign out Alice's phone: not his account.
    let to_alice = routed_to("bob", "1:alice@example.com", "/user", "application/user+xml", &body(&phone_machine));
    bob.send_payload("DEL 1", &to_alice).await;
    bob.expect_prefix("201 1").await;
    // Nor a machine that is not signed in.
    let none = routed_to("alice", "1:alice@example.com", "/user", "application/user+xml", &body(&bob_machine));
    laptop.send_payload("DEL 2", &none).await;
    laptop.expect_prefix("217 2").await;
    let phone_out = routed_to("alice", "1:alice@example.com", "/user", "application/user+xml", &body(&phone_machine));
    laptop.send_payload("DEL 3", &phone_out).await;
    laptop.expect_prefix("DEL 3 OK").await;
    phone.expect("OUT OTH").await;
    laptop.send("PNG").await;
    laptop.expect_prefix("QNG").await;
}

#[tokio::test]
async fn our_msnp21_client_takes_part_in_a_group_of_three_dialects() {
    use client::Event;
    use msnp::Dialect;
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "carol", "dave"]);
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp21).await;
    alice.set_state(OnlineState::Online).await.unwrap();
    let mut carol = online_on(&server, 11, "carol").await;
    let mut dave = online_on(&server, 2, "dave").await;
    // Carol calls Alice (bridged at once), then Dave.
    let mut sb = open_session(&server, &mut carol, "carol@example.com", "Carol").await;
    sb.send("CAL 2 alice@example.com").await;
    sb.expect_prefix("CAL 2 RINGING").await;
    sb.expect_prefix("JOI alice@example.com").await;
    let (mut dave_sb, _) = invite(&mut sb, 3, &mut dave, "dave@example.com").await;
    // Alice's client shows one group conversation with both.
    let group = wait_event(&mut a, |e| match e {
        Event::Joined { conversation, handle, .. } if handle == "dave@example.com" => Some(*conversation),
        _ => None,
    })
    .await;
    let chat = alice.conversation(group).expect("the group conversation");
    let mut with = chat.participants();
    with.sort();
    assert_eq!(with, ["carol@example.com", "dave@example.com"]);
    dave_sb.send_payload("MSG 8 N", &text_message("hello all")).await;
    let in_group = wait_event(&mut a, |e| match e {
        Event::Message { conversation, from, text, .. } if text == "hello all" => Some((*conversation, from.clone())),
        _ => None,
    })
    .await;
    assert_eq!(in_group, (group, "dave@example.com".to_string()));
    chat.send_text("hi, both").await.unwrap();
    assert_eq!(next_msg(&mut sb, "alice@example.com").await, "hi, both");
    assert_eq!(next_msg(&mut dave_sb, "alice@example.com").await, "hi, both");
}

#[tokio::test]
async fn a_group_made_on_msnp21_takes_in_a_switchboard_user() {
    use msnp::multiparty::{GroupId, NEW_GROUP};
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol"]);
    let (mut alice, _) = online21(&server, "alice").await;
    let (mut bob, _) = online21(&server, "bob").await;
    let mut carol = online_on(&server, 11, "carol").await;
    let (multiparty, circles) = ("application/multiparty+xml", "application/circles+xml");
    alice.send_payload("PUT 70", &routed_to("alice", &format!("10:{NEW_GROUP}"), "/circle", multiparty, "")).await;
    let made = alice.expect_prefix("PUT 70 OK").await;
    let group = GroupId::of_address(&RoutedMessage::parse(made.payload.as_deref().unwrap()).unwrap().from().unwrap());
    let at = group.expect("a group").address();
    alice.send_payload("PUT 71", &routed_to("alice", &at, "/circle", circles, &roster(&["alice"]))).await;
    alice.expect_prefix("PUT 71 OK").await;
    next_routed(&mut alice, "NFY PUT").await;
    alice
        .send_payload("PUT 72", &routed_to("alice", &format!("{at};path=IM"), "/circle", multiparty, &roster(&["bob"])))
        .await;
    alice.expect_prefix("PUT 72 OK").await;
    next_routed(&mut bob, "NFY PUT").await;
    bob.send_payload("PUT 80", &routed_to("bob", &at, "/circle", circles, &roster(&["bob"]))).await;
    bob.expect_prefix("PUT 80 OK").await;
    // Carol has only a switchboard: she is rung into the group's session.
    alice
        .send_payload(
            "PUT 73",
            &routed_to("alice", &format!("{at};path=IM"), "/circle", multiparty, &roster(&["carol"])),
        )
        .await;
    until_prefix(&mut alice, "PUT 73 OK").await;
    let ring = until_prefix(&mut carol, "RNG ").await;
    let r = ring.args();
    let mut sb = carol.next_to(r[2], client::conn::ServerKind::Switchboard).await;
    sb.send(&format!("ANS 1 carol@example.com {} {}", r[4], r[1])).await;
    let mut roster_seen = Vec::new();
    loop {
        let line = sb.recv().await;
        if line.text.starts_with("IRO") {
            roster_seen.push(line.args()[4].to_string());
        }
        if line.text == "ANS 1 OK" {
            break;
        }
    }
    roster_seen.sort();
    assert_eq!(roster_seen, ["alice@example.com", "bob@example.com"]);
    // Each hears everyone else once.
    sb.send_payload("MSG 2 N", &text_message("hi from a switchboard")).await;
    for c in [&mut alice, &mut bob] {
        let heard = routed(until_prefix(c, "SDG 0").await);
        assert_eq!(
            (heard.from().unwrap().name.as_str(), &heard.body[..]),
            ("carol@example.com", &b"hi from a switchboard"[..])
        );
    }
    let said = |from: &str, text: &str| {
        format!(
            "Routing: 1.0\r\nTo: {at};path=IM\r\nFrom: 1:{from}@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
             Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
    };
    alice.send_payload("SDG 74", said("alice", "from alice").as_bytes()).await;
    assert_eq!(next_msg(&mut sb, "alice@example.com").await, "from alice");
    assert_eq!(&routed(until_prefix(&mut bob, "SDG 0").await).body[..], b"from alice");
    bob.send_payload("SDG 81", said("bob", "from bob").as_bytes()).await;
    assert_eq!(next_msg(&mut sb, "bob@example.com").await, "from bob");
    assert_eq!(&routed(until_prefix(&mut alice, "SDG 0").await).body[..], b"from bob");
    // Nothing twice: the next thing each hears is the next thing said.
    sb.send_payload("MSG 3 N", &text_message("last")).await;
    for c in [&mut alice, &mut bob] {
        assert_eq!(&routed(until_prefix(c, "SDG 0").await).body[..], b"last");
    }
}

fn routed(line: common::Line) -> RoutedMessage {
    RoutedMessage::parse(line.payload.as_deref().unwrap()).expect("a routed message")
}

async fn until_prefix(c: &mut Client, prefix: &str) -> common::Line {
    loop {
        let line = c.recv().await;
        if line.text.starts_with(prefix) {
            return line;
        }
    }
}
