//! The client library against the real server: two or three `client::Client`s
//! on loopback, signing in through the dispatch referral, syncing, presence,
//! privacy, a three-party chat, typing, and file transfers.

mod common;

use std::path::Path;
use std::time::Duration;

use client::transfer::Method;
use client::{Client, ClientConfig, Event};
use common::*;
use msnp::{Dialect, OnlineState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

#[tokio::test]
async fn signs_in_through_the_referral_in_both_login_schemes_and_syncs_from_the_cache() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    for dialect in [Dialect::Msnp7, Dialect::Msnp11] {
        let mut cfg = library_config(&server, "alice", dialect);
        cfg.cache_dir = Some(dir.path().join(dialect.to_string()));
        let (alice, mut events) = Client::sign_in(cfg.clone()).await.unwrap();
        assert!(matches!(events.recv().await, Some(Event::SignedIn { .. })));
        assert!(!alice.state().from_cache, "nothing cached yet");
        if alice.contacts().is_empty() {
            alice.add_contact("bob@example.com", "Bob").await.unwrap();
        }
        alice.sign_out().await;
        // The change made the server's version move on: this sign-in syncs
        // for real and caches the new version.
        let (second, _) = Client::sign_in(cfg.clone()).await.unwrap();
        second.sign_out().await;
        // Nothing changed since: the server says so and the cache is used.
        let (again, _) = Client::sign_in(cfg.clone()).await.unwrap();
        assert!(again.state().from_cache, "{dialect}: lists from the cache");
        assert_eq!(again.contacts().iter().map(|c| c.handle.as_str()).collect::<Vec<_>>(), ["bob@example.com"]);
        again.sign_out().await;
    }
    // A change while away (Bob adds Alice) makes the next sign-in sync for real.
    let (bob, _) = library_sign_in(&server, "bob", Dialect::Msnp11).await;
    bob.add_contact("alice@example.com", "Alice").await.unwrap();
    let mut cfg = library_config(&server, "alice", Dialect::Msnp11);
    cfg.cache_dir = Some(dir.path().join("MSNP11"));
    let (alice, _) = Client::sign_in(cfg).await.unwrap();
    let state = alice.state();
    assert!(!state.from_cache);
    assert!(state.contact("bob@example.com").unwrap().on(msnp::ListKind::Reverse));
    // A wrong password is refused.
    let mut bad = library_config(&server, "alice", Dialect::Msnp7);
    bad.password = "nope".into();
    assert!(matches!(Client::sign_in(bad).await, Err(client::ClientError::AuthenticationFailed)));
}

#[tokio::test]
async fn presence_in_every_state_and_privacy_effects() {
    let server = TestServer::start_with(&["--rate-state-changes", "100/10"]);
    users(&server, &["alice", "bob"]);
    let (bob, mut b_events) = library_sign_in(&server, "bob", Dialect::Msnp7).await;
    let (alice, mut a_events) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.add_contact("bob@example.com", "Bob").await.unwrap();
    alice.set_state(OnlineState::Online).await.unwrap();
    // Bob is told, and his client should ask him (he has not answered yet).
    wait_event(&mut b_events, |e| matches!(e, Event::AddedBy { needs_answer: true, .. }).then_some(())).await;
    assert_eq!(bob.state().needs_answer().count(), 1);
    for state in ["NLN", "BSY", "IDL", "BRB", "AWY", "PHN", "LUN"] {
        bob.set_state(OnlineState::from_code(state).unwrap()).await.unwrap();
        let seen = wait_event(&mut a_events, |e| match e {
            Event::Presence { handle, state, .. } if handle == "bob@example.com" => Some(state.clone()),
            _ => None,
        })
        .await;
        assert_eq!(seen, state);
    }
    assert_eq!(alice.state().contact("bob@example.com").unwrap().state, OnlineState::OutToLunch);
    bob.set_state(OnlineState::Hidden).await.unwrap();
    wait_event(&mut a_events, |e| matches!(e, Event::Offline { handle } if handle == "bob@example.com").then_some(()))
        .await;
    bob.set_state(OnlineState::Online).await.unwrap();
    wait_event(&mut a_events, |e| {
        matches!(e, Event::Presence { handle, .. } if handle == "bob@example.com").then_some(())
    })
    .await;
    // Bob blocks Alice: she sees him go offline; allowing her again brings him back.
    bob.block("alice@example.com").await.unwrap();
    wait_event(&mut a_events, |e| matches!(e, Event::Offline { handle } if handle == "bob@example.com").then_some(()))
        .await;
    let err = alice.start_conversation("bob@example.com").await.err().expect("cannot call someone who blocks you");
    assert_eq!(err.code(), Some(217));
    bob.allow("alice@example.com").await.unwrap();
    wait_event(&mut a_events, |e| {
        matches!(e, Event::Presence { handle, .. } if handle == "bob@example.com").then_some(())
    })
    .await;
    let b = bob.state();
    let a_entry = b.contact("alice@example.com").unwrap();
    assert!(a_entry.on(msnp::ListKind::Allow) && !a_entry.on(msnp::ListKind::Block));
    // Names and personal messages.
    bob.set_name("Bobby").await.unwrap();
    wait_event(&mut a_events, |e| matches!(e, Event::Presence { friendly, .. } if friendly == "Bobby").then_some(()))
        .await;
    let (carol, _) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    let _ = carol; // Alice signs in again elsewhere: the first session is told.
    wait_event(&mut a_events, |e| matches!(e, Event::SignedOut { reason } if reason == "OTH").then_some(())).await;
}

#[tokio::test]
async fn a_three_party_chat_with_typing() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp7).await;
    let (carol, mut c) = library_sign_in(&server, "carol", Dialect::Msnp12).await;
    for client in [&alice, &bob, &carol] {
        client.set_state(OnlineState::Online).await.unwrap();
    }
    let chat = alice.start_conversation("bob@example.com").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Joined { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
    let bob_chat = wait_event(&mut b, |e| match e {
        Event::ConversationStarted { conversation, invited_by: Some(by), .. } if by == "alice@example.com" => {
            Some(*conversation)
        }
        _ => None,
    })
    .await;
    chat.invite("carol@example.com").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Joined { handle, .. } if handle == "carol@example.com").then_some(()))
        .await;
    let carol_chat = wait_event(&mut c, |e| match e {
        Event::ConversationStarted { conversation, with, .. } => {
            assert_eq!(with.len(), 2, "Carol's roster has Alice and Bob: {with:?}");
            Some(*conversation)
        }
        _ => None,
    })
    .await;
    chat.send_typing("alice@example.com").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Typing { from, .. } if from == "alice@example.com").then_some(())).await;
    chat.send_formatted("hello both", Some("FN=Arial; EF=B; CO=ff0000; CS=0; PF=22")).await.unwrap();
    for events in [&mut b, &mut c] {
        let (text, format) = wait_event(events, |e| match e {
            Event::Message { from, text, format, .. } if from == "alice@example.com" => {
                Some((text.clone(), format.clone()))
            }
            _ => None,
        })
        .await;
        assert_eq!(text, "hello both");
        assert_eq!(format.as_deref(), Some("FN=Arial; EF=B; CO=ff0000; CS=0; PF=22"));
    }
    bob.conversation(bob_chat).unwrap().send_text("hi from 2002").await.unwrap();
    wait_event(&mut c, |e| matches!(e, Event::Message { from, .. } if from == "bob@example.com").then_some(())).await;
    carol.conversation(carol_chat).unwrap().leave().await;
    wait_event(&mut a, |e| matches!(e, Event::Left { handle, .. } if handle == "carol@example.com").then_some(()))
        .await;
}

/// Five and a bit mebibytes of bytes that are not all alike.
fn big_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("holiday photos.bin");
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 12_345u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&path, data).unwrap();
    path
}

async fn chat_pair(
    server: &TestServer,
    dialect: Dialect,
) -> (Client, UnboundedReceiver<Event>, client::Conversation, Client, UnboundedReceiver<Event>, u64) {
    chat_pair_with(server, library_config(server, "alice", dialect), dialect).await
}

/// `chat_pair` with Alice signed in by the given configuration.
async fn chat_pair_with(
    server: &TestServer,
    alice_config: ClientConfig,
    dialect: Dialect,
) -> (Client, UnboundedReceiver<Event>, client::Conversation, Client, UnboundedReceiver<Event>, u64) {
    chat_pair_with_both(alice_config, library_config(server, "bob", dialect)).await
}

/// Alice and Bob signed in by the given configurations, online, with a
/// conversation Alice started.
async fn chat_pair_with_both(
    alice_config: ClientConfig,
    bob_config: ClientConfig,
) -> (Client, UnboundedReceiver<Event>, client::Conversation, Client, UnboundedReceiver<Event>, u64) {
    let (alice, mut a) = Client::sign_in(alice_config).await.expect("signs in");
    let (bob, mut b) = Client::sign_in(bob_config).await.expect("signs in");
    alice.set_state(OnlineState::Online).await.unwrap();
    bob.set_state(OnlineState::Online).await.unwrap();
    let chat = alice.start_conversation("bob@example.com").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Joined { .. }).then_some(())).await;
    let bob_chat = wait_event(&mut b, |e| match e {
        Event::ConversationStarted { conversation, .. } => Some(*conversation),
        _ => None,
    })
    .await;
    (alice, a, chat, bob, b, bob_chat)
}

async fn transfer_and_compare(dialect: Dialect, method: Method, expected_method: &str) {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let source = big_file(dir.path());
    let (_alice, mut a, chat, bob, mut b, bob_chat) = chat_pair(&server, dialect).await;
    let sent = chat.send_file_with(&source, Some(method)).await.unwrap();
    let (offer, name, size, how) = wait_event(&mut b, |e| match e {
        Event::FileOffer { transfer, name, size, method, .. } => Some((*transfer, name.clone(), *size, method.clone())),
        _ => None,
    })
    .await;
    assert_eq!((name.as_str(), size, how.as_str()), ("holiday photos.bin", 5 * 1024 * 1024 + 12_345, expected_method));
    let dest = dir.path().join("received.bin");
    bob.conversation(bob_chat).unwrap().accept_file(offer, &dest).await.unwrap();
    let mut progress = 0;
    let verified = wait_event(&mut b, |e| match e {
        Event::FileProgress { transfer, .. } if *transfer == offer => {
            progress += 1;
            None
        }
        Event::FileDone { transfer, verified, .. } if *transfer == offer => Some(*verified),
        Event::FileFailed { reason, .. } => panic!("transfer failed: {reason}"),
        _ => None,
    })
    .await;
    assert!(verified, "the checksum was checked");
    assert!(progress > 5, "progress was reported");
    wait_event(&mut a, |e| matches!(e, Event::FileDone { transfer, .. } if *transfer == sent).then_some(())).await;
    assert!(std::fs::read(&source).unwrap() == std::fs::read(&dest).unwrap(), "byte for byte");
}

#[tokio::test]
async fn a_5_mib_file_over_msnftp_arrives_byte_for_byte() {
    transfer_and_compare(Dialect::Msnp7, Method::Msnftp, "msnftp").await;
}

#[tokio::test]
async fn a_5_mib_file_over_msnslp_arrives_byte_for_byte() {
    transfer_and_compare(Dialect::Msnp11, Method::P2p, "p2p").await;
}

#[tokio::test]
async fn transfers_can_be_refused_and_cancelled() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let source = big_file(dir.path());
    let (_alice, mut a, chat, bob, mut b, bob_chat) = chat_pair(&server, Dialect::Msnp11).await;
    let bob_chat = bob.conversation(bob_chat).unwrap();
    for method in [Method::Msnftp, Method::P2p] {
        // Refused.
        let t = chat.send_file_with(&source, Some(method)).await.unwrap();
        let offer = wait_event(&mut b, |e| match e {
            Event::FileOffer { transfer, .. } => Some(*transfer),
            _ => None,
        })
        .await;
        bob_chat.decline_file(offer).await.unwrap();
        let reason = wait_event(&mut a, |e| match e {
            Event::FileFailed { transfer, reason } if *transfer == t => Some(reason.clone()),
            _ => None,
        })
        .await;
        assert!(reason.contains("declined"), "{method:?}: {reason}");
        // Cancelled by the receiver while it runs.
        let t = chat.send_file_with(&source, Some(method)).await.unwrap();
        let offer = wait_event(&mut b, |e| match e {
            Event::FileOffer { transfer, .. } => Some(*transfer),
            _ => None,
        })
        .await;
        bob_chat.accept_file(offer, &dir.path().join("partial.bin")).await.unwrap();
        wait_event(&mut b, |e| matches!(e, Event::FileProgress { transfer, .. } if *transfer == offer).then_some(()))
            .await;
        bob_chat.cancel_transfer(offer).await.unwrap();
        let reason = wait_event(&mut a, |e| match e {
            Event::FileFailed { transfer, reason } if *transfer == t => Some(reason.clone()),
            Event::FileDone { transfer, .. } if *transfer == t => Some("finished before the cancel arrived".into()),
            _ => None,
        })
        .await;
        assert!(reason.contains("cancel"), "{method:?}: {reason}");
    }
}

#[tokio::test]
async fn a_failed_direct_connection_falls_back_to_the_switchboard() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let source = big_file(dir.path());
    // Alice listens on 127.0.0.1 but tells Bob to connect to 127.0.0.2,
    // where nothing listens: the direct connection must fail.
    let mut cfg = library_config(&server, "alice", Dialect::Msnp11);
    cfg.transfer_address = Some("127.0.0.1".parse().unwrap());
    cfg.transfer_advertise = Some("127.0.0.2".parse().unwrap());
    let (_alice, mut a, chat, bob, mut b, bob_chat) = chat_pair_with(&server, cfg, Dialect::Msnp11).await;
    chat.send_file_with(&source, Some(Method::Msnftp)).await.unwrap();
    let offer = wait_event(&mut b, |e| match e {
        Event::FileOffer { transfer, .. } => Some(*transfer),
        _ => None,
    })
    .await;
    let dest = dir.path().join("via-switchboard.bin");
    bob.conversation(bob_chat).unwrap().accept_file(offer, &dest).await.unwrap();
    let reason = wait_event(&mut b, |e| match e {
        Event::FileFallback { transfer, reason } if *transfer == offer => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains("could not connect directly"), "{reason}");
    wait_event(&mut a, |e| matches!(e, Event::FileFallback { .. }).then_some(())).await;
    wait_event(&mut b, |e| match e {
        Event::FileDone { transfer, verified: true, .. } if *transfer == offer => Some(()),
        Event::FileFailed { reason, .. } => panic!("{reason}"),
        _ => None,
    })
    .await;
    assert!(std::fs::read(&source).unwrap() == std::fs::read(&dest).unwrap());
}

#[tokio::test]
async fn offline_messages_are_sent_and_shown() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (alice, _) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.send_offline_message("bob@example.com", "call me when you're back").await.unwrap();
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp7).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    let (text, sent) = wait_event(&mut b, |e| match e {
        Event::Message { from, text, offline_sent, .. } if from == "alice@example.com" => {
            Some((text.clone(), offline_sent.clone()))
        }
        _ => None,
    })
    .await;
    assert!(text.ends_with("call me when you're back"));
    assert!(sent.is_some(), "the original time comes with it");
}

/// What the other side's SB connection sent, as one string per `MSG` payload.
async fn payloads_for(sb: &mut common::Client, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(l) = sb.try_recv(wait).await {
        if let Some(p) = l.payload {
            out.push(String::from_utf8_lossy(&p).into_owned());
        }
    }
    out
}

#[tokio::test]
async fn invitations_the_client_cannot_serve_are_declined_not_shown_as_files() {
    // Bob is a raw connection that would have to answer CHL: challenges off.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let mut bob_ns = login_as_dialect(&server, 11, "bob@example.com", "pw-bob").await;
    bob_ns.send("CHG 20 NLN 0").await;
    bob_ns.expect_prefix("CHG 20 NLN").await;
    let (alice, mut events) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.set_state(OnlineState::Online).await.unwrap();
    let starting = tokio::spawn(async move { alice.start_conversation("bob@example.com").await.map(|c| (alice, c)) });
    let rng = bob_ns.expect_prefix("RNG ").await;
    let a = rng.args();
    let mut bob = common::Client::connect_str(a[2]).await;
    bob.send(&format!("ANS 1 bob@example.com {} {}", a[4], a[1])).await;
    loop {
        if bob.recv().await.text == "ANS 1 OK" {
            break;
        }
    }
    let (_alice, _chat) = starting.await.unwrap().unwrap();

    // A NetMeeting invitation (not a file): cancelled as not installed.
    let netmeeting = "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsinvite; charset=UTF-8\r\n\r\n\
        Application-Name: NetMeeting\r\nApplication-GUID: {44BBA842-CC51-11CF-AAFA-00AA00B6015C}\r\n\
        Session-Protocol: SM1\r\nInvitation-Command: INVITE\r\nInvitation-Cookie: 4242\r\n\r\n";
    bob.send_payload(&format!("MSG 2 N {}", netmeeting.len()), netmeeting.as_bytes()).await;
    let answers = payloads_for(&mut bob, Duration::from_secs(2)).await;
    assert!(
        answers.iter().any(|p| p.contains("Invitation-Command: CANCEL")
            && p.contains("Invitation-Cookie: 4242")
            && p.contains("Cancel-Code: REJECT_NOT_INSTALLED")),
        "{answers:?}"
    );

    // A display-picture request over MSNSLP: declined with 603.
    let invite = msnp::p2p::SlpMessage::request(
        "INVITE",
        "alice@example.com",
        "bob@example.com",
        "{11111111-2222-3333-4444-555555555555}",
        "{66666666-7777-8888-9999-000000000000}",
        "application/x-msnmsgr-sessionreqbody",
        "EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\nSessionID: 77\r\nAppID: 1\r\nContext: AAAA\r\n\r\n\0",
    );
    for packet in msnp::p2p::chunks(0, 9000, 0, 1, 0, &invite.to_bytes()) {
        let mut body =
            b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: alice@example.com\r\n\r\n"
                .to_vec();
        body.extend_from_slice(&packet.to_bytes());
        bob.send_payload(&format!("MSG 3 D {}", body.len()), &body).await;
    }
    let answers = payloads_for(&mut bob, Duration::from_secs(2)).await;
    assert!(answers.iter().any(|p| p.contains("MSNSLP/1.0 603 Decline") && p.contains("SessionID: 77")), "{answers:?}");

    // Neither reached the application as a file offer.
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, Event::FileOffer { .. }), "{e:?}");
    }
}

#[tokio::test]
async fn msnp_over_tls_carries_sign_in_referrals_and_a_chat() {
    let server = TestServer::start_with(&["--msnp-tls-listen", "127.0.0.1:0"]);
    users(&server, &["alice", "bob"]);
    let tls_config = |name: &str, dialect: Dialect| {
        let mut c = library_config(&server, name, dialect);
        c.server = server.msnp_tls.expect("msnp-tls listener").to_string();
        c.tls = true;
        c.trust_ca = Some(server.data_dir().join("tls/ca.pem"));
        c
    };
    // MD5 and Passport logins both work over TLS; the switchboard referral
    // (XFR SB for Alice, RNG for Bob) must name the TLS port, or the TLS
    // handshake would meet a plain-text port and the chat would fail.
    let (_alice, _a, chat, _bob, mut b, _) =
        chat_pair_with_both(tls_config("alice", Dialect::Msnp7), tls_config("bob", Dialect::Msnp11)).await;
    chat.send_text("over TLS").await.unwrap();
    let text = wait_event(&mut b, |e| match e {
        Event::Message { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "over TLS");

    // A plain-text client on the TLS port gets no MSNP answer, only a close.
    let mut plain = tokio::net::TcpStream::connect(server.msnp_tls.unwrap()).await.unwrap();
    plain.write_all(b"VER 1 MSNP7 CVR0\r\n").await.unwrap();
    let mut answer = Vec::new();
    timeout(Duration::from_secs(30), plain.read_to_end(&mut answer)).await.expect("closed in time").ok();
    assert!(!answer.windows(3).any(|w| w == b"VER"), "plain text answered: {answer:?}");
}

#[tokio::test]
async fn an_msnp15_client_reads_its_lists_from_the_address_book_and_chats_with_msnp8() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    // Alice listed Bob from an older client; MSNP15 finds him in the
    // address book.
    let (alice, _) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.add_contact("bob@example.com", "Bob").await.unwrap();
    alice.sign_out().await;
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp15).await;
    let bob_entry = alice.state().contact("bob@example.com").cloned().expect("Bob from the address book");
    assert!(bob_entry.on(msnp::ListKind::Forward) && bob_entry.guid.is_some());
    alice.set_state(OnlineState::Online).await.unwrap();
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp8).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Presence { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
    // Bob adds Alice: she is told through an ADL document.
    bob.add_contact("alice@example.com", "Alice").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::AddedBy { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
    let chat = alice.start_conversation("bob@example.com").await.unwrap();
    let bob_chat = wait_event(&mut b, |e| match e {
        Event::ConversationStarted { conversation, .. } => Some(*conversation),
        _ => None,
    })
    .await;
    chat.send_text("hello from 2007").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Message { text, .. } if text == "hello from 2007").then_some(())).await;
    bob.conversation(bob_chat).unwrap().send_text("hi from 2003").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Message { text, .. } if text == "hi from 2003").then_some(())).await;
    // Alice takes Bob out of her address book (ABContactDelete).
    alice.remove_contact("bob@example.com").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::RemovedBy { handle } if handle == "alice@example.com").then_some(()))
        .await;
}

#[tokio::test]
async fn an_msnp15_client_reads_offline_messages_from_the_inbox_once() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (alice, _) = library_sign_in(&server, "alice", Dialect::Msnp11).await;
    alice.send_offline_message("bob@example.com", "first, while you were out").await.unwrap();
    alice.send_offline_message("bob@example.com", "and a second").await.unwrap();
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp15).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    let mut shown = Vec::new();
    for _ in 0..2 {
        shown.push(
            wait_event(&mut b, |e| match e {
                Event::OfflineMessage { from, text, sent, .. } if from == "alice@example.com" => {
                    Some((text.clone(), sent.clone()))
                }
                _ => None,
            })
            .await,
        );
    }
    assert_eq!(shown[0].0, "first, while you were out");
    assert_eq!(shown[1].0, "and a second");
    assert!(shown[0].1.ends_with('Z'), "the time it was sent: {}", shown[0].1);
    bob.sign_out().await;
    // Read and deleted: the next sign-in shows nothing again.
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp15).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    alice.send_offline_message("bob@example.com", "a third, after").await.unwrap();
    let next = wait_event(&mut b, |e| match e {
        Event::OfflineMessage { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(next, "a third, after", "the first two were not shown again");
}

#[tokio::test]
async fn an_msnp15_client_adds_blocks_and_removes_through_the_address_book() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp11).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp15).await;
    alice.set_state(OnlineState::Online).await.unwrap();
    // ABContactAdd, then ADL: Bob's presence shows at once.
    alice.add_contact("bob@example.com", "Bob").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Presence { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
    wait_event(&mut b, |e| matches!(e, Event::AddedBy { handle, .. } if handle == "alice@example.com").then_some(()))
        .await;
    bob.add_contact("alice@example.com", "Alice").await.unwrap();
    // Blocking through the membership service: Bob sees her go offline.
    alice.block("bob@example.com").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Offline { handle } if handle == "alice@example.com").then_some(())).await;
    alice.allow("bob@example.com").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Presence { handle, .. } if handle == "alice@example.com").then_some(()))
        .await;
    // The next sign-in reads the same from the services.
    alice.sign_out().await;
    let (alice, _a) = library_sign_in(&server, "alice", Dialect::Msnp15).await;
    let entry = alice.state().contact("bob@example.com").cloned().expect("Bob in the address book");
    assert!(entry.on(msnp::ListKind::Forward) && entry.on(msnp::ListKind::Allow) && !entry.on(msnp::ListKind::Block));
    alice.remove_contact("bob@example.com").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::RemovedBy { handle } if handle == "alice@example.com").then_some(()))
        .await;
}

#[tokio::test]
async fn an_msnp15_client_sees_who_is_already_online_when_it_signs_in() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (bob, _b) = library_sign_in(&server, "bob", Dialect::Msnp11).await;
    bob.set_state(OnlineState::Online).await.unwrap();
    let (alice, _) = library_sign_in(&server, "alice", Dialect::Msnp15).await;
    alice.add_contact("bob@example.com", "Bob").await.unwrap();
    alice.sign_out().await;
    // Bob is online before Alice signs in again: the ILN after her CHG.
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp15).await;
    alice.set_state(OnlineState::Online).await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::Presence { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
}

#[tokio::test]
async fn an_msnp18_account_on_two_machines_sees_each_conversation_on_both() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (home, mut h) = library_sign_in(&server, "alice", Dialect::Msnp18).await;
    home.add_contact("bob@example.com", "Bob").await.unwrap();
    home.set_state(OnlineState::Online).await.unwrap();
    // The second machine: a client configuration makes its own GUID.
    let (work, mut w) = library_sign_in(&server, "alice", Dialect::Msnp18).await;
    work.set_state(OnlineState::Online).await.unwrap();
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp8).await;
    bob.add_contact("alice@example.com", "Alice").await.unwrap();
    bob.set_state(OnlineState::Online).await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Presence { handle, .. } if handle == "alice@example.com").then_some(()))
        .await;

    // Alice opens a chat from home: her work machine is rung into it too,
    // and sees Bob, not her own machines, in it.
    let chat = home.start_conversation("bob@example.com").await.unwrap();
    let (work_chat, with, invited_by) = wait_event(&mut w, |e| match e {
        Event::ConversationStarted { conversation, with, invited_by } => {
            Some((*conversation, with.clone(), invited_by.clone()))
        }
        _ => None,
    })
    .await;
    assert_eq!(invited_by, None, "rung by my own other machine: not an invitation from me");
    let bob_chat = wait_event(&mut b, |e| match e {
        Event::ConversationStarted { conversation, .. } => Some(*conversation),
        _ => None,
    })
    .await;
    chat.send_text("from home").await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::Message { text, .. } if text == "from home").then_some(())).await;
    bob.conversation(bob_chat).unwrap().send_text("hello, both").await.unwrap();
    for events in [&mut h, &mut w] {
        wait_event(events, |e| matches!(e, Event::Message { text, .. } if text == "hello, both").then_some(())).await;
    }
    assert!(
        with.is_empty() || with == ["bob@example.com"],
        "the work machine's roster names people, not machines: {with:?}"
    );
    let _ = work_chat;
    home.sign_out().await;
    work.sign_out().await;
}

#[tokio::test]
async fn a_5_mib_file_between_msnp18_clients_arrives_byte_for_byte() {
    // Both signed in as machines (MSNP16+): the P2P through the switchboard
    // is addressed to the handle and relayed like any other.
    transfer_and_compare(Dialect::Msnp18, Method::P2p, "p2p").await;
}

#[tokio::test]
async fn msnp18_clients_make_a_circle_and_speak_in_it_on_every_machine() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (alice, mut a) = library_sign_in(&server, "alice", Dialect::Msnp18).await;
    let (bob, mut b) = library_sign_in(&server, "bob", Dialect::Msnp18).await;

    // Alice makes a circle: she is in it at once.
    let circle = alice.create_circle("Book club").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::CircleJoined { name, .. } if name == "Book club").then_some(())).await;

    // She invites Bob; he is told, accepts, and is in it.
    alice.invite_to_circle(&circle, "bob@example.com").await.unwrap();
    let by = wait_event(&mut b, |e| match e {
        Event::CircleInvitation { circle: c, by, .. } if *c == circle => Some(by.clone()),
        _ => None,
    })
    .await;
    assert_eq!(by, "alice@example.com");
    bob.answer_circle(&circle, true).await.unwrap();
    wait_event(&mut b, |e| matches!(e, Event::CircleJoined { circle: c, .. } if *c == circle).then_some(())).await;
    let members = wait_event(&mut a, |e| match e {
        Event::CircleRoster { members, .. } if members.len() == 2 => Some(members.clone()),
        _ => None,
    })
    .await;
    assert_eq!(members, ["alice@example.com", "bob@example.com"]);

    // Bob's second machine joins the circle by itself at sign-in.
    let (work, mut w) = library_sign_in(&server, "bob", Dialect::Msnp18).await;
    wait_event(&mut w, |e| matches!(e, Event::CircleJoined { circle: c, .. } if *c == circle).then_some(())).await;
    assert_eq!(work.circles().len(), 1);

    // What Alice says reaches both of Bob's machines; what Bob says, Alice.
    alice.say_in_circle(&circle, "first chapter tonight").await.unwrap();
    for events in [&mut b, &mut w] {
        let from = wait_event(events, |e| match e {
            Event::CircleMessage { text, from, .. } if text == "first chapter tonight" => Some(from.clone()),
            _ => None,
        })
        .await;
        assert_eq!(from, "alice@example.com");
    }
    bob.say_in_circle(&circle, "I'll be there").await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::CircleMessage { text, .. } if text == "I'll be there").then_some(()))
        .await;

    // Bob leaves for good; Alice sees him go.
    bob.leave_circle(&circle).await.unwrap();
    wait_event(&mut a, |e| matches!(e, Event::CircleLeft { handle, .. } if handle == "bob@example.com").then_some(()))
        .await;
    assert!(bob.circles().is_empty());
    alice.sign_out().await;
    work.sign_out().await;
}
