//! The domain on its own: a `Backend` over a temporary SQLite store, driven
//! by the calls the fronts make, with no socket and no protocol strings.
//! Each test reads what a user's connection would be told from its queue.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use backend::outbox::Outbox;
use backend::store::{SqliteStore, Store};
use backend::{Backend, BackendConfig, Handle, NsEvent, OnlineUser};
use msnp::{Dialect, ErrorCode, ListKind, OnlineState};

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct World {
    backend: Arc<Backend>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(names: &[&str]) -> World {
        World::with(names, BackendConfig::default()).await
    }

    async fn with(names: &[&str], config: BackendConfig) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("domain.db")).unwrap());
        let key = backend::secrets::ServerKey::load_or_create(dir.path()).unwrap();
        let backend = Arc::new(Backend::new(store.clone(), key, config));
        for n in names {
            backend.create_account(&format!("{n}@example.com"), None, &format!("pw-{n}")).await.unwrap();
        }
        World { backend, store, _dir: dir }
    }

    /// `name` signed in (MSNP11) and online; the queue its connection reads.
    async fn online(&self, name: &str) -> (Arc<OnlineUser>, Outbox<NsEvent>) {
        let account = self.store.account(&format!("{name}@example.com")).await.unwrap().unwrap();
        let events = Outbox::new(64);
        let token = backend::passport::web_token();
        let (user, _) =
            self.backend.sign_in(&account, Dialect::Msnp11, None, token, None, events.clone()).await.unwrap();
        self.backend.change_state(&user, OnlineState::Online, None, None).await.unwrap();
        (user, events)
    }
}

fn drain(events: &Outbox<NsEvent>) -> Vec<NsEvent> {
    std::iter::from_fn(|| events.pop()).collect()
}

#[tokio::test]
async fn a_watcher_is_told_of_changes_until_blocked_and_then_sees_the_user_go_offline() {
    let w = World::new(&["alice", "bob"]).await;
    let (alice, alice_events) = w.online("alice").await;
    let (bob, _) = w.online("bob").await;
    let b = &w.backend;
    let added = b
        .add_to_list(&alice, ListKind::Forward, "bob@example.com", backend::lists::OppositeList::Refuse)
        .await
        .unwrap();
    assert_eq!(added.initial_presence.map(|p| p.line.state), Some(OnlineState::Online));
    drain(&alice_events);
    b.change_state(&bob, OnlineState::Busy, None, None).await.unwrap();
    assert!(matches!(&drain(&alice_events)[..], [NsEvent::Presence(line)] if line.state == OnlineState::Busy));
    b.add_to_list(&bob, ListKind::Block, "alice@example.com", backend::lists::OppositeList::Refuse).await.unwrap();
    assert!(matches!(&drain(&alice_events)[..], [NsEvent::Offline { handle }] if handle == "bob@example.com"));
    b.change_state(&bob, OnlineState::Away, None, None).await.unwrap();
    assert!(drain(&alice_events).is_empty(), "a blocked watcher heard a change");
}

#[tokio::test]
async fn a_blocked_senders_offline_message_is_accepted_like_any_and_never_offered() {
    let w = World::new(&["alice", "bob", "carol"]).await;
    let b = &w.backend;
    let (bob, _) = w.online("bob").await;
    b.add_to_list(&bob, ListKind::Block, "alice@example.com", backend::lists::OppositeList::Refuse).await.unwrap();
    b.sign_out(&bob);
    let (alice, _) = w.online("alice").await;
    let (carol, _) = w.online("carol").await;
    let text = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi";
    assert!(b.send_offline_message(&alice, "bob@example.com", text).await.is_ok());
    assert!(b.send_offline_message(&carol, "bob@example.com", text).await.is_ok());
    // An address without an account answers the same.
    assert!(b.send_offline_message(&carol, "nobody@example.com", text).await.is_ok());
    let (bob, _) = w.online("bob").await;
    let waiting = b.pending_offline(&bob).await;
    assert_eq!(waiting.iter().map(|m| m.sender.as_str()).collect::<Vec<_>>(), ["carol@example.com"]);
    // The withheld one was dropped by that read.
    let bob_id = w.store.account("bob@example.com").await.unwrap().unwrap().id;
    assert_eq!(w.store.offline_messages(bob_id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_password_change_voids_earlier_tickets_and_ends_the_sign_in() {
    let w = World::new(&["alice"]).await;
    let b = &w.backend;
    let (alice, events) = w.online("alice").await;
    let ticket = b.passport_login("alice@example.com", &["pw-alice"], HOME).await.unwrap();
    b.set_password("alice@example.com", "new-secret").await.unwrap();
    assert!(drain(&events).iter().any(|e| matches!(e, NsEvent::Kick(None))), "the sign-in was not ended");
    let handle = Handle::parse("alice@example.com").unwrap();
    assert_eq!(b.authenticate_ticket(&handle, &ticket, None).await.err(), Some(ErrorCode::AuthenticationFailed));
    assert!(b.web_user(&alice.web_token).await.is_none(), "the old web token still works");
    let fresh = b.passport_login("alice@example.com", &["new-secret"], HOME).await.unwrap();
    assert!(b.authenticate_ticket(&handle, &fresh, None).await.is_ok());
}

#[tokio::test]
async fn a_ticket_is_good_once_and_only_for_its_account() {
    let w = World::new(&["alice", "bob"]).await;
    let b = &w.backend;
    let ticket = b.passport_login("alice@example.com", &["pw-alice"], HOME).await.unwrap();
    let bob = Handle::parse("bob@example.com").unwrap();
    let alice = Handle::parse("alice@example.com").unwrap();
    assert!(b.authenticate_ticket(&bob, &ticket, None).await.is_err(), "another account's ticket");
    // Presenting it to the wrong account used it up, as a guess would.
    assert!(b.authenticate_ticket(&alice, &ticket, None).await.is_err());
    let ticket = b.passport_login("alice@example.com", &["pw-alice"], HOME).await.unwrap();
    assert!(b.authenticate_ticket(&alice, &ticket, None).await.is_ok());
    assert!(b.authenticate_ticket(&alice, &ticket, None).await.is_err(), "replayed");
    assert_eq!(
        b.passport_login("alice@example.com", &["wrong"], HOME).await.err(),
        Some(ErrorCode::AuthenticationFailed)
    );
}

#[tokio::test]
async fn one_sender_gets_a_fifth_of_a_mailbox_and_is_rate_limited() {
    let mut config = BackendConfig { offline_quota: 10, ..Default::default() };
    config.rate_limits.offline_messages = backend::limits::Rate::new(3, 0.001);
    let w = World::with(&["alice", "bob", "carol"], config).await;
    let b = &w.backend;
    let (alice, _) = w.online("alice").await;
    let text = b"MIME-Version: 1.0\r\n\r\nx";
    let answers: Vec<_> = [
        b.send_offline_message(&alice, "bob@example.com", text).await,
        b.send_offline_message(&alice, "bob@example.com", text).await,
        b.send_offline_message(&alice, "bob@example.com", text).await,
        b.send_offline_message(&alice, "carol@example.com", text).await,
    ]
    .into_iter()
    .map(|r| r.err().map(|e| e.to_string()))
    .collect();
    assert_eq!(answers[..2], [None, None]);
    assert!(answers[2].as_deref().is_some_and(|e| e.contains("too many offline messages waiting")), "{answers:?}");
    assert!(answers[3].as_deref().is_some_and(|e| e.contains("from this sender")), "{answers:?}");
}

#[tokio::test]
async fn a_web_session_is_good_until_ended_or_the_password_changes() {
    use std::time::Duration;
    let w = World::new(&["alice"]).await;
    let b = &w.backend;
    let hour = Duration::from_secs(3600);
    assert!(b.open_web_session("alice@example.com", "wrong", HOME, hour).await.is_err());
    let (token, account) = b.open_web_session("Alice@example.com", "pw-alice", HOME, hour).await.unwrap();
    assert_eq!(account.handle, "alice@example.com");
    assert_eq!(b.web_session(&token).await.unwrap().handle, "alice@example.com");

    // A token with any part changed is nobody's.
    let forged = token.replacen("alice", "alicf", 1);
    assert!(b.web_session(&forged).await.is_none());
    let (payload, _) = token.rsplit_once('.').unwrap();
    assert!(b.web_session(&format!("{payload}.{}", "0".repeat(64))).await.is_none());
    assert!(b.web_session("").await.is_none());
    assert!(b.web_session("....").await.is_none());

    b.end_web_session(&token);
    assert!(b.web_session(&token).await.is_none(), "an ended session stays ended");

    let (second, _) = b.open_web_session("alice@example.com", "pw-alice", HOME, hour).await.unwrap();
    b.set_password("alice@example.com", "new-password").await.unwrap();
    assert!(b.web_session(&second).await.is_none(), "a password change voids every session");

    let (expired, _) = b.open_web_session("alice@example.com", "new-password", HOME, Duration::ZERO).await.unwrap();
    assert!(b.web_session(&expired).await.is_none(), "an expired session is refused");
}
