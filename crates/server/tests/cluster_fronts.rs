//! The cluster with the newer fronts: MSNP21 users (no switchboard) and
//! Jabber users on one notification node, chatting with users on another,
//! in pairs and in group conversations, through the bus.

mod common;

use common::cluster::*;
use common::*;

#[tokio::test]
async fn an_msnp21_user_and_a_switchboard_user_on_different_nodes_chat() {
    let Some(c) = cluster("msnp21_bridge", STEADY_NODE_TIMEOUT_MS).await else { return };
    // u0 signs in with MSNP21 wherever the dispatch node sends her; u1, on
    // MSNP7, on the other notification node.
    let (_, u0_ns) = refer(&c, "u0").await;
    let other = c.notification.iter().map(|n| n.ns.to_string()).find(|ns| *ns != u0_ns).unwrap();
    let stand_in = TestServer::attach(c._dir.path(), c.dispatch.dispatch, c.dispatch.ns, c.dispatch.http.unwrap());
    let machine = msnp::endpoint::MachineGuid::from_random([7; 16]);
    let mut alice = login_from_machine(&stand_in, 21, "u0@example.com", "pw-u0", machine.clone()).await;
    alice.send_payload("ADL 50", br#"<ml l="1"></ml>"#).await;
    alice.expect("ADL 50 OK").await;
    let publish = |body: &str| {
        format!(
            "Routing: 1.0\r\nTo: 1:u0@example.com\r\nFrom: 1:u0@example.com;epid={}\r\n\r\nReliability: 1.0\r\n\r\n\
             Publication: 1.0\r\nUri: /user\r\nContent-Type: application/user+xml\r\nContent-Length: {}\r\n\r\n{body}",
            machine.as_str(),
            body.len()
        )
    };
    alice.send_payload("PUT 51", publish("<user><s n=\"IM\"><Status>NLN</Status></s></user>").as_bytes()).await;
    alice.expect_prefix("PUT 51 OK").await;
    let mut bob = direct(&other, "u1").await;
    bob.send("CHG 5 NLN").await;
    bob.expect("CHG 5 NLN").await;
    // Her word rings him from her node's switchboard, through the bus.
    let sdg = format!(
        "Routing: 1.0\r\nTo: 1:u1@example.com\r\nFrom: 1:u0@example.com;epid={}\r\n\r\nReliability: 1.0\r\n\r\n\
         Messaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: 17\r\n\r\nhello across town",
        machine.as_str()
    );
    alice.send_payload("SDG 52", sdg.as_bytes()).await;
    let mut sb = answer_ring(&mut bob, "u1@example.com").await;
    let said = until(&mut sb, "MSG u0@example.com").await;
    assert!(String::from_utf8_lossy(said.payload.as_deref().unwrap()).ends_with("hello across town"));
    sb.send_payload("MSG 2 N", &text_message("hello back")).await;
    let back = until(&mut alice, "SDG 0 ").await;
    assert!(back.payload.as_deref().unwrap().ends_with(b"hello back"));
    // He calls her from a session on a switchboard node: she is bridged
    // in there (she cannot answer a ring), and her words reach that
    // session, not a new one.
    bob.send("XFR 9 SB").await;
    let xfr = until(&mut bob, "XFR 9 SB").await;
    let (address, cookie) = (xfr.args()[3].to_string(), xfr.args()[5].to_string());
    let mut own = Client::connect_str(&address).await;
    own.send(&format!("USR 1 u1@example.com {cookie}")).await;
    own.expect_prefix("USR 1 OK").await;
    own.send("CAL 2 u0@example.com").await;
    own.expect_prefix("CAL 2 RINGING").await;
    until(&mut own, "JOI u0@example.com").await;
    own.send_payload("MSG 3 N", &text_message("from the switchboard node")).await;
    let heard = until(&mut alice, "SDG 0 ").await;
    assert!(heard.payload.as_deref().unwrap().ends_with(b"from the switchboard node"));
    alice.send_payload("SDG 53", sdg.replace("hello across town", "answered in place").as_bytes()).await;
    let answer = until(&mut own, "MSG u0@example.com").await;
    assert!(answer.payload.as_deref().unwrap().ends_with(b"answered in place"));
    // She signs out: the session on the other node sees her leave.
    drop(alice);
    until(&mut own, "BYE u0@example.com").await;
}

/// Two users signed in with MSNP21 on different notification nodes.
async fn msnp21_users_on_two_nodes(c: &Cluster) -> ((Client, String), (Client, String)) {
    let stand_in = TestServer::attach(c._dir.path(), c.dispatch.dispatch, c.dispatch.ns, c.dispatch.http.unwrap());
    let (_, first_ns) = refer(c, "u2").await;
    let mut second = None;
    for i in 3..12 {
        let name = format!("u{i}");
        if refer(c, &name).await.1 != first_ns {
            second = Some(name);
            break;
        }
    }
    let second = second.expect("the dispatch node uses both notification nodes");
    let (first, _) = common::msnp21::online21(&stand_in, "u2").await;
    let (other, _) = common::msnp21::online21(&stand_in, &second).await;
    ((first, "u2".to_string()), (other, second))
}

#[tokio::test]
async fn a_group_conversation_spans_nodes() {
    use common::msnp21::{CIRCLES, MULTIPARTY, invite_into, make_group, next_routed, roster, routed_to};
    use msnp::multiparty::{GroupId, roster_of};
    let Some(c) = cluster("msnp21_group", STEADY_NODE_TIMEOUT_MS).await else { return };
    let ((mut alice, a), (mut bob, b)) = msnp21_users_on_two_nodes(&c).await;
    // Alice makes a group on her node and invites Bob, who is on the other.
    let group = make_group(&mut alice, &a).await;
    let at = group.address();
    next_routed(&mut alice, "NFY PUT").await;
    let invite_to = format!("{at};path=IM");
    invite_into(&mut alice, &a, &group, &b).await;
    let invited = next_routed(&mut bob, "NFY PUT").await;
    assert_eq!(GroupId::of_address(&invited.from().unwrap()), Some(group.clone()));
    // He joins from his node: both are told the roster.
    bob.send_payload("PUT 80", &routed_to(&b, &at, "/circle", CIRCLES, &roster(&[&b]))).await;
    bob.expect_prefix("PUT 80 OK").await;
    let both = Some(vec![format!("{a}@example.com"), format!("{b}@example.com")]);
    assert_eq!(roster_of(&next_routed(&mut alice, "NFY PUT").await), both);
    assert_eq!(roster_of(&next_routed(&mut bob, "NFY PUT").await), both);
    // What he says there reaches her.
    let said = format!(
        "Routing: 1.0\r\nTo: {invite_to}\r\nFrom: 1:{b}@example.com;epid={{00000000-0000-0000-0000-000000000001}}\r\n\r\n\
         Reliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: 10\r\n\r\nfrom afar!"
    );
    bob.send_payload("SDG 81", said.as_bytes()).await;
    let heard = next_routed(&mut alice, "SDG 0").await;
    assert_eq!(&heard.body[..], b"from afar!");
    assert_eq!(heard.from().unwrap().name, format!("{b}@example.com"));
    // He invites a switchboard user: rung into the group's session, who
    // then speaks to both.
    let (mut carol, _) = sign_in(&c, "u11").await;
    carol.send("CHG 5 NLN").await;
    carol.expect("CHG 5 NLN").await;
    bob.send_payload("PUT 82", &routed_to(&b, &invite_to, "/circle", MULTIPARTY, &roster(&["u11"]))).await;
    bob.expect_prefix("PUT 82 OK").await;
    let mut sb = answer_ring(&mut carol, "u11@example.com").await;
    until(&mut sb, "ANS 1 OK").await;
    sb.send_payload("MSG 2 N", &text_message("hello both")).await;
    for member in [&mut alice, &mut bob] {
        let heard = next_said_in_group(member).await;
        assert_eq!(&heard.body[..], b"hello both");
    }
    // He signs out: Alice sees him leave the group.
    drop(bob);
    loop {
        let gone = next_routed(&mut alice, "NFY").await;
        if msnp::circle::left_member(&gone).is_some_and(|m| m.eq_ignore_ascii_case(&format!("{b}@example.com"))) {
            break;
        }
    }
}

/// The next thing said in a group (skipping roster news and pings).
async fn next_said_in_group(c: &mut Client) -> msnp::routed::RoutedMessage {
    loop {
        let line = until(c, "").await;
        if line.text.starts_with("SDG 0") {
            return msnp::routed::RoutedMessage::parse(line.payload.as_deref().unwrap()).unwrap();
        }
    }
}

#[tokio::test]
async fn a_jabber_user_and_an_msn_user_on_different_nodes_chat() {
    use common::jabber::{Jabber, chat};
    let Some(c) = cluster("xmpp", STEADY_NODE_TIMEOUT_MS).await else { return };
    // Alice signs in with XMPP on the first notification node, Bob (MSNP7)
    // on the second.
    let (mut alice, _) = Jabber::online(&c.notification[0], "u0", "desk").await;
    let other = c.notification[1].ns.to_string();
    let mut bob = direct(&other, "u1").await;
    bob.send("ADD 4 FL u0@example.com u0").await;
    until(&mut bob, "ADD 4 FL").await;
    bob.send("CHG 5 NLN").await;
    until(&mut bob, "CHG 5 NLN").await;
    alice.query("set", "<query xmlns='jabber:iq:roster'><item jid='u1@example.com'/></query>").await;
    // Each sees the other across the bus.
    let seen = alice.presence_of("u1@example.com").await;
    assert!(seen.attr("type").is_none(), "{}", String::from(&seen));
    alice.send("<presence><show>dnd</show></presence>").await;
    until(&mut bob, "NLN BSY u0@example.com").await;
    // Her word rings him into a session; his answer reaches her.
    alice.send(&chat("u1@example.com", "across the bus")).await;
    let mut sb = answer_ring(&mut bob, "u1@example.com").await;
    let said = until(&mut sb, "MSG u0@example.com").await;
    assert!(said.payload.as_deref().unwrap().ends_with(b"across the bus"));
    sb.send_payload("MSG 2 N", &text_message("and back")).await;
    assert_eq!(alice.next_said().await, ("u1@example.com".to_string(), "and back".to_string()));
}

#[tokio::test]
async fn a_browser_user_and_an_msn_user_on_different_nodes_chat() {
    use common::web_page::{Page, session_cookie};
    use webchat::{ClientFrame, ServerFrame};
    let Some(c) = cluster("messenger", STEADY_NODE_TIMEOUT_MS).await else { return };
    // Alice's page is served by the HTTP node, Bob (MSNP7) is on a
    // notification node.
    let cookie = session_cookie(&c.dispatch, "u0").await;
    let mut alice = Page::open(&c.dispatch, &cookie).await;
    let mut bob = direct(&c.notification[1].ns.to_string(), "u1").await;
    bob.send("ADD 4 FL u0@example.com u0").await;
    until(&mut bob, "ADD 4 FL").await;
    bob.send("CHG 5 NLN").await;
    until(&mut bob, "CHG 5 NLN").await;
    alice.send(ClientFrame::AddContact { handle: "u1@example.com".into() }).await;
    let online = |f: &ServerFrame| match f {
        ServerFrame::Contact { contact } if contact.handle == "u1@example.com" => contact.state,
        _ => None,
    };
    assert_eq!(alice.until(online).await, webchat::State::Online);
    alice.send(ClientFrame::SetState { state: webchat::State::Busy }).await;
    until(&mut bob, "NLN BSY u0@example.com").await;
    // Her word rings him into a session; his answer reaches her page.
    alice.send(ClientFrame::Send { id: "1".into(), to: "u1@example.com".into(), text: "across the bus".into() }).await;
    let mut sb = answer_ring(&mut bob, "u1@example.com").await;
    let said = until(&mut sb, "MSG u0@example.com").await;
    assert!(said.payload.as_deref().unwrap().ends_with(b"across the bus"));
    sb.send_payload("MSG 2 N", &text_message("and back")).await;
    let heard = alice
        .until(|f| match f {
            ServerFrame::Message { from, text, .. } if from == "u1@example.com" => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(heard, "and back");
}
