//! A real third-party client against the real server: `msnp11-sdk`, the Rust
//! MSNP11 client SDK (used by the meowsn messenger). It follows the dispatch
//! referral, fetches a Passport ticket from our nexus and login service,
//! syncs, sets presence and a personal message, and chats.

mod common;

use std::time::Duration;

use common::*;
use msnp11_sdk::{Client, Event, MsnpList, MsnpStatus, PersonalMessage, PlainText};
use tokio::sync::mpsc;
use tokio::time::timeout;

async fn sdk_login(server: &TestServer, email: &str, password: &str) -> (Client, mpsc::UnboundedReceiver<Event>) {
    let nexus = format!("http://{}/rdr/pprdr.asp", server.http.unwrap());
    let first = Client::new("127.0.0.1", server.dispatch.port()).await.expect("connects");
    let event = first.login(email.into(), password, &nexus, "msnp11-sdk", "0.13.0").await.expect("dispatch answers");
    let Event::RedirectedTo { server: host, port } = event else { panic!("expected a referral, got {event:?}") };
    assert_eq!(port, server.ns.port());
    let client = Client::new(&host, port).await.expect("connects to the notification server");
    let (tx, rx) = mpsc::unbounded_channel();
    client.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    let event = client.login(email.into(), password, &nexus, "msnp11-sdk", "0.13.0").await.expect("logs in");
    assert!(matches!(event, Event::Authenticated), "{event:?}");
    (client, rx)
}

/// Waits for the first event that `pick` accepts.
async fn wait_for<T>(rx: &mut mpsc::UnboundedReceiver<Event>, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("event stream open");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("the event in time")
}

fn text(s: &str) -> PlainText {
    PlainText {
        bold: false,
        italic: false,
        underline: false,
        strikethrough: false,
        color: "000000".into(),
        text: s.into(),
    }
}

#[tokio::test]
async fn msnp11_sdk_logs_in_sees_presence_and_chats() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (alice, mut alice_events) = sdk_login(&server, "alice@example.com", "pw-alice").await;
    let (bob, mut bob_events) = sdk_login(&server, "bob@example.com", "pw-bob").await;

    alice.add_contact("bob@example.com", "Bob", MsnpList::ForwardList).await.expect("ADC FL");
    wait_for(&mut bob_events, |e| {
        matches!(e, Event::AddedBy { email, .. } if email == "alice@example.com").then_some(())
    })
    .await;
    alice.set_presence(MsnpStatus::Online).await.expect("CHG");
    bob.set_presence(MsnpStatus::Busy).await.expect("CHG");
    wait_for(&mut alice_events, |e| match e {
        Event::PresenceUpdate { email, presence, .. } if email == "bob@example.com" => {
            assert_eq!(presence.status, MsnpStatus::Busy);
            Some(())
        }
        _ => None,
    })
    .await;
    bob.set_personal_message(&PersonalMessage { psm: "Out & about".into(), current_media: String::new() })
        .await
        .expect("UUX");
    wait_for(&mut alice_events, |e| match e {
        Event::PersonalMessageUpdate { email, personal_message } if email == "bob@example.com" => {
            assert_eq!(personal_message.psm, "Out & about");
            Some(())
        }
        _ => None,
    })
    .await;

    // Alice opens a conversation; Bob's SDK answers the RNG by itself.
    let alice_sb = alice.create_session("bob@example.com").await.expect("XFR SB, USR, CAL");
    let bob_sb = wait_for(&mut bob_events, |e| match e {
        Event::SessionAnswered(sb) => Some(sb.clone()),
        _ => None,
    })
    .await;
    let (tx, mut bob_sb_events) = mpsc::unbounded_channel();
    bob_sb.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    let (tx, mut alice_sb_events) = mpsc::unbounded_channel();
    alice_sb.add_event_handler_closure(move |e| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(e);
        }
    });
    wait_for(&mut alice_sb_events, |e| {
        matches!(e, Event::ParticipantInSwitchboard { email } if email == "bob@example.com").then_some(())
    })
    .await;
    alice_sb.send_text_message(&text("Hello from the SDK")).await.expect("MSG A is acknowledged");
    let got = wait_for(&mut bob_sb_events, |e| match e {
        Event::TextMessage { email, message } if email == "alice@example.com" => Some(message.text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, "Hello from the SDK");
    bob_sb.send_nudge().await.expect("nudge acknowledged");
    wait_for(&mut alice_sb_events, |e| matches!(e, Event::Nudge { email } if email == "bob@example.com").then_some(()))
        .await;

    // A second sign-in elsewhere: the SDK reports it.
    let (_bob_again, _) = sdk_login(&server, "bob@example.com", "pw-bob").await;
    wait_for(&mut bob_events, |e| matches!(e, Event::LoggedInAnotherDevice).then_some(())).await;
}
