//! The XMPP front: Jabber clients sign in with their MSN account over
//! STARTTLS and SASL, see their MSN lists as a roster, and chat and share
//! presence with MSN users of every dialect; hostile streams end with the
//! right stream error and touch no one else.

mod common;

use common::cluster::until;
use common::jabber::*;
use common::*;
use xmpp::NS_CLIENT;

#[tokio::test]
async fn a_jabber_user_signs_in_with_scram_or_plain_and_nothing_else() {
    let server = server_with_xmpp();
    users(&server, &["alice"]);
    // SCRAM-SHA-1 (the client checks the server's proof too) and PLAIN.
    let scram = Jabber::sign_in(&server, "alice", "laptop", Mechanism::Scram).await;
    assert_eq!(scram.jid, "alice@example.com/laptop");
    let plain = Jabber::sign_in(&server, "alice", "phone", Mechanism::Plain).await;
    assert_eq!(plain.jid, "alice@example.com/phone");
    // A wrong password, either way: not-authorized.
    for mechanism in [Mechanism::Plain, Mechanism::Scram] {
        let mut s = secure(&server, "example.com").await;
        let refused = authenticate(&mut s, "example.com", "alice", "wrong", mechanism).await;
        assert_eq!(refused, Err("not-authorized".to_string()), "{mechanism:?}");
    }
    // No password before TLS: only STARTTLS is offered, SASL is answered
    // `encryption-required` (as Prosody does) and a stanza ends the stream.
    let mut plain = connect(&server).await;
    let features = plain.open("example.com").await;
    assert!(!features.has_child("mechanisms", xmpp::NS_SASL));
    plain.send(&xmpp::write::sasl_auth("PLAIN", b"\0alice\0pw-alice")).await;
    let refused = plain.element().await;
    assert!(refused.has_child("encryption-required", xmpp::NS_SASL), "{}", String::from(&refused));
    plain.send("<message to='bob@example.com'><body>hi</body></message>").await;
    assert_eq!(plain.stream_error().await, "not-authorized");
    // A stanza before binding: not-authorized.
    let mut early = secure(&server, "example.com").await;
    authenticate(&mut early, "example.com", "alice", "pw-alice", Mechanism::Plain).await.unwrap();
    early.restart();
    early.open("example.com").await;
    early.send("<message to='bob@example.com'><body>hi</body></message>").await;
    assert_eq!(early.stream_error().await, "not-authorized");
    // No domain: improper-addressing (as Prosody answers).
    let mut nowhere = connect(&server).await;
    nowhere.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>").await;
    assert_eq!(nowhere.stream_error().await, "improper-addressing");
}

#[tokio::test]
async fn the_roster_is_the_forward_list_and_presence_flows_both_ways() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob"]);
    let (mut alice, roster) = Jabber::online(&server, "alice", "home").await;
    assert_eq!(roster.get_child("query", "jabber:iq:roster").map(|q| q.children().count()), Some(0));
    // Alice adds Bob with a group: answered, and pushed to her.
    let set = "<query xmlns='jabber:iq:roster'><item jid='bob@example.com' name='Bobby'><group>Friends</group></item></query>";
    let answer = alice.query("set", set).await;
    assert_eq!(answer.attr("type"), Some("result"));
    let push = alice.stream.until(|e| e.name() == "iq" && e.attr("type") == Some("set")).await;
    let item = push.get_child("query", "jabber:iq:roster").unwrap().children().next().unwrap().clone();
    assert_eq!((item.attr("jid"), item.attr("subscription")), (Some("bob@example.com"), Some("to")));
    // Bob, on MSNP2, sees her add him and adds her back.
    let (mut bob, _) = online_as(&server, "bob").await;
    bob.send("ADD 20 FL alice@example.com Alice").await;
    until(&mut bob, "ADD 20 FL").await;
    // He is online: she sees him, and he sees her.
    bob.send("CHG 21 BSY").await;
    let online = alice.presence_of("bob@example.com").await;
    assert!(online.attr("type").is_none() && !online.has_child("show", NS_CLIENT), "{}", String::from(&online));
    let busy = alice.presence_of("bob@example.com").await;
    assert_eq!(busy.get_child("show", NS_CLIENT).map(|s| s.text()).as_deref(), Some("dnd"));
    // Her nickname (XEP-0172) is her friendly name.
    let nick = "<nick xmlns='http://jabber.org/protocol/nick'>Alice A.</nick>";
    alice.send(&format!("<presence><show>away</show><status>at lunch</status>{nick}</presence>")).await;
    until(&mut bob, "NLN AWY alice@example.com Alice%20A.").await;
    // Her roster now says both, in the group.
    let roster = alice.query("get", "<query xmlns='jabber:iq:roster'/>").await;
    let item = roster.get_child("query", "jabber:iq:roster").unwrap().children().next().unwrap().clone();
    assert_eq!((item.attr("subscription"), item.attr("name")), (Some("both"), Some("Bobby")));
    assert_eq!(item.get_child("group", "jabber:iq:roster").map(|g| g.text()).as_deref(), Some("Friends"));
    // He goes: she sees him leave.
    drop(bob);
    let gone = alice.presence_of("bob@example.com").await;
    assert_eq!(gone.attr("type"), Some("unavailable"));
}

#[tokio::test]
async fn jabber_and_msn_users_of_old_and_new_dialects_chat() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob", "carol"]);
    let (mut alice, _) = Jabber::online(&server, "alice", "desk").await;
    // Bob (MSNP2, switchboards only) is rung by her first word.
    let (mut bob, _) = online_as(&server, "bob").await;
    alice.send(&chat("bob@example.com", "héllo bob ☕")).await;
    let mut sb = answer_ring(&mut bob, "bob@example.com").await;
    let said = until(&mut sb, "MSG alice@example.com").await;
    assert!(String::from_utf8_lossy(said.payload.as_deref().unwrap()).ends_with("héllo bob ☕"));
    sb.send_payload("MSG 2 N", &text_message("hi alice")).await;
    assert_eq!(alice.next_said().await, ("bob@example.com".to_string(), "hi alice".to_string()));
    // Typing reaches her as a chat state.
    let typing = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: bob@example.com\r\n\r\n\r\n";
    sb.send_payload("MSG 3 U", typing.as_bytes()).await;
    let composing = alice.stream.until(|e| e.name() == "message").await;
    assert!(composing.has_child("composing", "http://jabber.org/protocol/chatstates"));
    // Carol (MSNP21) reads SDG: no switchboard either way.
    let (mut carol, _) = common::msnp21::online21(&server, "carol").await;
    alice.send(&chat("carol@example.com", "hello carol")).await;
    let sdg = until(&mut carol, "SDG ").await;
    assert!(sdg.payload.as_deref().unwrap().ends_with(b"hello carol"));
    carol.send_payload("SDG 9", &common::msnp21::sdg("carol", "alice", "Text", "hello alice")).await;
    assert_eq!(alice.next_said().await, ("carol@example.com".to_string(), "hello alice".to_string()));
}

#[tokio::test]
async fn hostile_streams_end_with_their_error_and_touch_no_one_else() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob", "carol"]);
    let (mut bob, _) = Jabber::online(&server, "bob", "r").await;
    let cases: [(&str, String); 5] = [
        ("not-well-formed", "<message><body>x</wrong></message>".to_string()),
        ("not-well-formed", "<!DOCTYPE lol [<!ENTITY a 'aaaaaaaa'>]>".to_string()),
        ("restricted-xml", "<message to='bob@example.com'><body>&lol;&lol;</body></message>".to_string()),
        ("policy-violation", format!("<message to='bob@example.com'><body>{}</body></message>", "x".repeat(70_000))),
        ("unsupported-stanza-type", "<foo/>".to_string()),
    ];
    for (want, bad) in cases {
        let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
        alice.send(&bad).await;
        assert_eq!(alice.stream.stream_error().await, want, "{}", &bad[..bad.len().min(60)]);
    }
    // A forged sender is replaced by the real one.
    let (mut carol, _) = Jabber::online(&server, "carol", "r").await;
    carol
        .send("<message from='admin@example.com' to='bob@example.com' type='chat'><body>trust me</body></message>")
        .await;
    assert_eq!(bob.next_said().await, ("carol@example.com".to_string(), "trust me".to_string()));
    // Bob was never disturbed: he still answers.
    let pong = bob.query("get", "<ping xmlns='urn:xmpp:ping'/>").await;
    assert_eq!(pong.attr("type"), Some("result"));
    // An unknown request is service-unavailable; a malformed one bad-request.
    let unknown = bob.query("get", "<query xmlns='urn:example:nothing'/>").await;
    assert!(String::from(&unknown).contains("service-unavailable"));
    let malformed = bob.query("set", "<query xmlns='jabber:iq:roster'/>").await;
    assert!(String::from(&malformed).contains("bad-request"));
}

#[tokio::test]
async fn blocking_hides_one_from_the_blocked_on_either_protocol() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob"]);
    let (mut bob, _) = online_as(&server, "bob").await;
    bob.send("ADD 20 FL alice@example.com Alice").await;
    until(&mut bob, "ADD 20 FL").await;
    let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
    until(&mut bob, "NLN NLN alice@example.com").await;
    let blocked = alice.query("set", "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></block>").await;
    assert_eq!(blocked.attr("type"), Some("result"));
    // The resource that blocked is pushed the change too (XEP-0191 3.3):
    // clients keep their block list from the pushes (profanity does).
    let push = alice.stream.until(|e| e.name() == "iq" && e.attr("type") == Some("set")).await;
    assert!(push.has_child("block", "urn:xmpp:blocking"), "{}", String::from(&push));
    until(&mut bob, "FLN alice@example.com").await;
    let list = alice.query("get", "<blocklist xmlns='urn:xmpp:blocking'/>").await;
    assert!(String::from(&list).contains("bob@example.com"));
    alice.query("set", "<unblock xmlns='urn:xmpp:blocking'/>").await;
    until(&mut bob, "NLN NLN alice@example.com").await;
}

#[tokio::test]
async fn offline_messages_reach_a_jabber_user_once_and_carbons_reach_the_other_resource() {
    let server = server_with_xmpp();
    users(&server, &["alice", "carol"]);
    // Carol (MSNP21) writes while Alice is away: kept.
    let (mut carol, _) = common::msnp21::online21(&server, "carol").await;
    carol.send_payload("SDG 9", &common::msnp21::sdg("carol", "alice", "Text", "while you were out")).await;
    carol.send("PNG").await;
    until(&mut carol, "QNG").await;
    let (mut alice, _) = Jabber::online(&server, "alice", "one").await;
    let kept = alice.stream.until(|e| e.name() == "message").await;
    assert_eq!(kept.get_child("body", NS_CLIENT).map(|b| b.text()).as_deref(), Some("while you were out"));
    assert!(kept.has_child("delay", "urn:xmpp:delay"));
    // Once: her second resource is not shown it again.
    let (mut other, _) = Jabber::online(&server, "alice", "two").await;
    let answer = other.query("set", "<enable xmlns='urn:xmpp:carbons:2'/>").await;
    assert_eq!(answer.attr("type"), Some("result"));
    // What the first resource says, the second sees as a sent carbon.
    alice.send(&chat("carol@example.com", "thanks")).await;
    until(&mut carol, "SDG ").await;
    let carbon = other.stream.until(|e| e.name() == "message").await;
    let sent = carbon.get_child("sent", "urn:xmpp:carbons:2").expect("a sent carbon");
    let inner = sent.get_child("forwarded", "urn:xmpp:forward:0").unwrap().get_child("message", NS_CLIENT).unwrap();
    assert_eq!(inner.attr("to"), Some("carol@example.com"));
    assert_eq!(inner.get_child("body", NS_CLIENT).unwrap().text(), "thanks");
}

#[tokio::test]
async fn discovery_lists_what_is_served_and_vcards_carry_names() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob"]);
    let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
    alice.query("set", "<query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query>").await;
    let info =
        alice.query_to(Some("example.com"), "get", "<query xmlns='http://jabber.org/protocol/disco#info'/>").await;
    // Answered from the address asked (profanity crashed on an answer
    // without one).
    assert_eq!(info.attr("from"), Some("example.com"));
    let text = String::from(&info);
    for feature in ["urn:xmpp:ping", "urn:xmpp:blocking", "urn:xmpp:carbons:2", "vcard-temp"] {
        assert!(text.contains(feature), "{feature} in {text}");
    }
    let card = alice.query_to(Some("bob@example.com"), "get", "<vCard xmlns='vcard-temp'/>").await;
    assert!(String::from(&card).contains("<FN>Bob</FN>"), "{}", String::from(&card));
    let mine = alice.query("get", "<vCard xmlns='vcard-temp'/>").await;
    assert!(String::from(&mine).contains("<NICKNAME>Alice</NICKNAME>"), "{}", String::from(&mine));
}

/// An `SDG` of text from `name` to a group.
fn said_to_group(name: &str, at: &str, text: &str) -> Vec<u8> {
    format!(
        "Routing: 1.0\r\nTo: {at};path=IM\r\nFrom: 1:{name}@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    )
    .into_bytes()
}

const MUC: &str = "http://jabber.org/protocol/muc";
const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

/// The status codes of a room presence.
fn codes(p: &xmpp::Element) -> Vec<String> {
    p.get_child("x", MUC_USER)
        .map(|x| {
            x.children().filter(|c| c.name() == "status").filter_map(|c| c.attr("code").map(str::to_string)).collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_group_chat_is_a_room_with_msn_users_of_both_kinds_in_it() {
    use common::msnp21::{next_routed, online21, roster, routed_to};
    use msnp::multiparty::GroupId;
    let server = server_with_xmpp();
    users(&server, &["alice", "bob", "carol"]);
    let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
    let (mut carol, _) = online21(&server, "carol").await;
    let (mut bob, _) = online_as(&server, "bob").await;
    // The server lists its room service.
    let items =
        alice.query_to(Some("example.com"), "get", "<query xmlns='http://jabber.org/protocol/disco#items'/>").await;
    assert!(String::from(&items).contains("conference.example.com"));
    // Alice makes a room by joining it; her nickname is her handle (210).
    let room = "party@conference.example.com";
    alice.send(&format!("<presence to='{room}/Alicia'><x xmlns='{MUC}'/></presence>")).await;
    let me = alice.presence_of(&format!("{room}/alice@example.com")).await;
    assert_eq!(codes(&me), ["110", "210"]);
    // She invites Carol (MSNP21), who joins as a 10: group.
    alice
        .send(&format!("<message to='{room}'><x xmlns='{MUC_USER}'><invite to='carol@example.com'/></x></message>"))
        .await;
    let invited = next_routed(&mut carol, "NFY PUT").await;
    let group = GroupId::of_address(&invited.from().unwrap()).expect("a group");
    let at = group.address();
    carol
        .send_payload("PUT 80", &routed_to("carol", &at, "/circle", "application/circles+xml", &roster(&["carol"])))
        .await;
    carol.expect_prefix("PUT 80 OK").await;
    alice.presence_of(&format!("{room}/carol@example.com")).await;
    // Words both ways; Alice's own come back to her, as a room reflects them.
    carol.send_payload("SDG 81", &said_to_group("carol", &at, "hi room")).await;
    let heard = alice.stream.until(|e| e.name() == "message" && e.attr("type") == Some("groupchat")).await;
    assert_eq!(heard.attr("from"), Some(&*format!("{room}/carol@example.com")));
    assert_eq!(heard.get_child("body", NS_CLIENT).unwrap().text(), "hi room");
    alice.send(&format!("<message to='{room}' type='groupchat'><body>hi carol</body></message>")).await;
    let sdg = until(&mut carol, "SDG ").await;
    assert!(sdg.payload.as_deref().unwrap().ends_with(b"hi carol"));
    let echo = alice.stream.until(|e| e.name() == "message" && e.attr("type") == Some("groupchat")).await;
    assert_eq!(echo.attr("from"), Some(&*format!("{room}/alice@example.com")));
    // Bob has only switchboards: invited, he is rung into the room's session.
    alice
        .send(&format!("<message to='{room}'><x xmlns='{MUC_USER}'><invite to='bob@example.com'/></x></message>"))
        .await;
    let mut sb = answer_ring(&mut bob, "bob@example.com").await;
    until(&mut sb, "ANS 1 OK").await;
    sb.send_payload("MSG 2 N", &text_message("hello room")).await;
    let from_bob = alice
        .stream
        .until(|e| {
            e.name() == "message"
                && e.has_child("body", NS_CLIENT)
                && e.attr("from") == Some(&*format!("{room}/bob@example.com"))
        })
        .await;
    assert_eq!(from_bob.get_child("body", NS_CLIENT).unwrap().text(), "hello room");
    // She leaves: told with 110, and Carol sees her go.
    alice.send(&format!("<presence to='{room}/alice@example.com' type='unavailable'/>")).await;
    let out = alice.stream.until(|e| e.name() == "presence" && e.attr("type") == Some("unavailable")).await;
    assert!(codes(&out).contains(&"110".to_string()));
    loop {
        let line = until(&mut carol, "NFY DEL").await;
        let gone = msnp::routed::RoutedMessage::parse(line.payload.as_deref().unwrap()).unwrap();
        if msnp::circle::left_member(&gone).as_deref() == Some("alice@example.com") {
            break;
        }
    }
}

#[tokio::test]
async fn a_jabber_user_is_invited_into_an_msnp21_group_and_joins_its_room() {
    use common::msnp21::{invite_into, make_group, next_routed, online21};
    let server = server_with_xmpp();
    users(&server, &["alice", "carol"]);
    let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
    let (mut carol, _) = online21(&server, "carol").await;
    let group = make_group(&mut carol, "carol").await;
    invite_into(&mut carol, "carol", &group, "alice").await;
    // A mediated invitation from the room named by the group.
    let room = format!("{}@conference.example.com", group.guid());
    let invitation = alice.stream.until(|e| e.name() == "message" && e.has_child("x", MUC_USER)).await;
    assert_eq!(invitation.attr("from"), Some(room.as_str()));
    alice.send(&format!("<presence to='{room}/alice@example.com'><x xmlns='{MUC}'/></presence>")).await;
    alice.presence_of(&format!("{room}/carol@example.com")).await;
    let me = alice.presence_of(&format!("{room}/alice@example.com")).await;
    assert_eq!(codes(&me), ["110"]);
    let joined = next_routed(&mut carol, "NFY PUT").await;
    assert_eq!(msnp::multiparty::roster_of(&joined).map(|r| r.len()), Some(2));
    // A room that is not there.
    alice.send("<message to='nothing@conference.example.com' type='groupchat'><body>x</body></message>").await;
    let error = alice.stream.until(|e| e.name() == "message" && e.attr("type") == Some("error")).await;
    assert!(String::from(&error).contains("item-not-found"));
}

#[tokio::test]
async fn a_change_on_one_resource_is_pushed_to_the_others() {
    let server = server_with_xmpp();
    users(&server, &["alice", "bob"]);
    let (mut laptop, _) = Jabber::online(&server, "alice", "laptop").await;
    let (mut phone, _) = Jabber::online(&server, "alice", "phone").await;
    laptop.query("set", "<query xmlns='jabber:iq:roster'><item jid='bob@example.com'/></query>").await;
    let push = phone.stream.until(|e| e.name() == "iq" && e.attr("type") == Some("set")).await;
    let item = push.get_child("query", "jabber:iq:roster").and_then(|q| q.children().next()).expect("a roster item");
    assert_eq!(item.attr("jid"), Some("bob@example.com"));
    laptop.query("set", "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></block>").await;
    let blocked = phone.stream.until(|e| e.name() == "iq" && e.has_child("block", "urn:xmpp:blocking")).await;
    assert!(String::from(&blocked).contains("bob@example.com"));
    laptop
        .query("set", "<query xmlns='jabber:iq:roster'><item jid='bob@example.com' subscription='remove'/></query>")
        .await;
    let removed = phone
        .stream
        .until(|e| {
            e.name() == "iq" && String::from(e).contains("subscription=\"remove\"")
                || String::from(e).contains("subscription='remove'")
        })
        .await;
    assert_eq!(removed.attr("type"), Some("set"));
}

#[tokio::test]
async fn floods_meet_the_account_s_flood_control_and_offline_words_wait_for_a_jabber_user() {
    let server = server_with_xmpp();
    users(&server, &["alice", "dave"]);
    let (mut alice, _) = Jabber::online(&server, "alice", "r").await;
    // State changes past the account's rate: policy-violation, as an MSN
    // client's CHG gets 800.
    for n in 0..40 {
        let show = if n % 2 == 0 { "away" } else { "dnd" };
        alice.send(&format!("<presence><show>{show}</show></presence>")).await;
    }
    let refused = alice.stream.until(|e| e.name() == "presence" && e.attr("type") == Some("error")).await;
    assert!(String::from(&refused).contains("policy-violation"), "{}", String::from(&refused));
    // Words for a Jabber user who is away are kept, and shown to them once.
    alice.send(&chat("dave@example.com", "see you tomorrow")).await;
    alice.query("get", "<ping xmlns='urn:xmpp:ping'/>").await;
    let (mut dave, _) = Jabber::online(&server, "dave", "r").await;
    let (from, text) = dave.next_said().await;
    assert_eq!((from.as_str(), text.as_str()), ("alice@example.com", "see you tomorrow"));
    drop(dave);
    // The second sign-in is shown nothing again: everything before the
    // answer to a ping sent after its first presence is not a message.
    let (mut again, _) = Jabber::online(&server, "dave", "r2").await;
    again.send("<iq type='get' id='last'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    loop {
        let e = again.stream.element().await;
        assert!(!(e.name() == "message" && e.has_child("body", NS_CLIENT)), "shown twice: {}", String::from(&e));
        if e.name() == "iq" && e.attr("id") == Some("last") {
            break;
        }
    }
}
