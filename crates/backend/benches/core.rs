//! The domain's hot paths, without sockets: one state change fanned out to
//! 1,000 online watchers, and one message relayed in a two-party switchboard.

use futures::FutureExt;
use std::sync::Arc;

use backend::outbox::Outbox;
use backend::store::{SqliteStore, Store};
use backend::{Backend, BackendConfig, ImportedAccount};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msnp::{Dialect, ListKind, OnlineState};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const WATCHERS: usize = 1000;

struct World {
    backend: Arc<Backend>,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

fn world(rt: &Runtime, users: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    let key = backend::secrets::ServerKey::load_or_create(dir.path()).unwrap();
    let backend = Backend::new(store.clone(), key, BackendConfig::default());
    let accounts = (0..users)
        .map(|i| ImportedAccount { handle: format!("u{i}@example.com"), password: "pw".into(), friendly: None })
        .collect();
    rt.block_on(backend.import_accounts(accounts)).unwrap();
    World { backend: Arc::new(backend), store, _dir: dir }
}

fn fan_out(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let w = world(&rt, WATCHERS + 1);
    let b = &w.backend;
    let online = |i: usize, rt: &Runtime| {
        let rx = Outbox::new(4096);
        let tx = rx.clone();
        let account = rt.block_on(w.store.account(&format!("u{i}@example.com"))).unwrap().unwrap();
        let user = rt.block_on(b.sign_in(&account, Dialect::Msnp11, None, format!("t{i}"), None, tx)).unwrap().0;
        (user, rx)
    };
    let (star, _star_rx) = online(0, &rt);
    b.change_state(&star, OnlineState::Online, None, None)
        .now_or_never()
        .expect("no remote nodes to wait for")
        .unwrap();
    let mut watchers = Vec::new();
    for i in 1..=WATCHERS {
        let (user, rx) = online(i, &rt);
        rt.block_on(b.add_to_list(&user, ListKind::Forward, "u0@example.com", backend::lists::OppositeList::Refuse))
            .unwrap();
        b.change_state(&user, OnlineState::Online, None, None)
            .now_or_never()
            .expect("no remote nodes to wait for")
            .unwrap();
        watchers.push((user, rx));
    }
    for (_, rx) in watchers.iter_mut() {
        while rx.pop().is_some() {}
    }
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(WATCHERS as u64));
    let mut away = false;
    g.bench_function("state change to 1000 watchers", |bench| {
        bench.iter(|| {
            away = !away;
            let state = if away { OnlineState::Away } else { OnlineState::Online };
            b.change_state(&star, state, None, None).now_or_never().expect("no remote nodes to wait for").unwrap();
            for (_, rx) in watchers.iter_mut() {
                assert!(rx.pop().is_some(), "every watcher is told");
            }
        })
    });
    g.finish();
}

fn relay(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let w = world(&rt, 2);
    let b = &w.backend;
    let mut users = Vec::new();
    for i in 0..2 {
        let rx = Outbox::new(64);
        let tx = rx.clone();
        let account = rt.block_on(w.store.account(&format!("u{i}@example.com"))).unwrap().unwrap();
        let user = rt.block_on(b.sign_in(&account, Dialect::Msnp11, None, format!("t{i}"), None, tx)).unwrap().0;
        b.change_state(&user, OnlineState::Online, None, None)
            .now_or_never()
            .expect("no remote nodes to wait for")
            .unwrap();
        users.push((user, rx));
    }
    let (cookie, _) = rt.block_on(b.request_switchboard(&users[0].0)).unwrap();
    let (a_tx, _a_rx) = mpsc::channel(64);
    let (session, alice) =
        b.open_switchboard(&msnp::endpoint::Address::user("u0@example.com"), &cookie, 1, a_tx).unwrap();
    rt.block_on(b.invite(&session, &alice, "u1@example.com")).unwrap();
    let ring = users[1].1.pop().unwrap();
    let backend::NsEvent::Ring { session_id, cookie, .. } = ring else { panic!("a ring: {ring:?}") };
    let (b_tx, mut b_rx) = mpsc::channel(4096);
    b.join_switchboard(&msnp::endpoint::Address::user("u1@example.com"), &cookie, session_id, 2, b_tx).unwrap();
    while b_rx.try_recv().is_ok() {}
    let payload = Bytes::from(vec![b'x'; 150]);
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("switchboard relay (150 B, two parties)", |bench| {
        bench.iter(|| {
            // Room is always there, so the relay never waits: poll it once.
            let relayed = session.relay(&alice, payload.clone(), std::time::Duration::from_secs(1)).now_or_never();
            assert_eq!(relayed, Some(true));
            assert!(b_rx.try_recv().is_ok());
        })
    });
    g.finish();
}

/// What flood control adds to every message of a user within the limits:
/// one per-account bucket and one per-connection bucket.
fn flood_control(c: &mut Criterion) {
    use backend::limits::{Action, KeyedBuckets, Rate, TokenBucket};
    let accounts = KeyedBuckets::default();
    for i in 0..10_000 {
        accounts.take(&format!("u{i}@example.com"), Action::Message, Rate::new(30, 5.0));
    }
    let wide = Rate::new(u32::MAX, 1e12);
    let mut connection = TokenBucket::new(wide);
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    g.bench_function("flood control per message (account + connection bucket)", |bench| {
        bench.iter(|| {
            let now = std::time::Instant::now();
            assert!(accounts.take("u4242@example.com", Action::Message, wide));
            assert!(connection.take(wide, now));
        })
    });
    g.finish();
}

/// One Passport password check with the parameters accounts are hashed
/// with: what sets the pace of MSNP8+ logins. A login's server CPU less
/// this is what the rest of the login costs (docs/PERFORMANCE.md).
fn password_check(c: &mut Criterion) {
    let hash = backend::secrets::hash_password("load-password").unwrap();
    let mut memory = Vec::new();
    let mut g = c.benchmark_group("core");
    g.sample_size(20);
    g.bench_function("argon2id password check (account parameters, one core)", |bench| {
        bench.iter(|| assert!(backend::hashing::verify_with(&mut memory, "load-password", &hash)))
    });
    g.finish();
}

/// The rate the hash parameters allow on every core: checks on one
/// hashing thread per core, each reusing its memory, as msnd's pool runs
/// them. The Passport login rate is measured against this bound.
fn password_checks_on_every_core(c: &mut Criterion) {
    let hash = backend::secrets::hash_password("load-password").unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = c.benchmark_group("core");
    g.sample_size(10);
    g.throughput(Throughput::Elements(cores as u64));
    // One iteration is a check on every core at once; each thread keeps its
    // memory for all of a sample's checks, as a busy pool does.
    g.bench_function(format!("argon2id password checks (one on each of {cores} cores)"), |bench| {
        bench.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|scope| {
                for _ in 0..cores {
                    scope.spawn(|| {
                        let mut memory = Vec::new();
                        for _ in 0..iters {
                            assert!(backend::hashing::verify_with(&mut memory, "load-password", &hash));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// An offline message from a sender the recipient allows and from one the
/// recipient blocks: the two must cost the same, or the answer's timing
/// tells a blocked sender that he is blocked (issue 15). The mailbox is
/// emptied between iterations, outside the timing.
fn offline_privacy(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    let key = backend::secrets::ServerKey::load_or_create(dir.path()).unwrap();
    let mut config = BackendConfig::default();
    config.rate_limits.offline_messages = backend::limits::Rate::new(u32::MAX, 1e12);
    let b = Arc::new(Backend::new(store.clone(), key, config));
    let accounts = ["friend", "blocked", "recipient"].map(|n| ImportedAccount {
        handle: format!("{n}@example.com"),
        password: "pw".into(),
        friendly: None,
    });
    rt.block_on(b.import_accounts(accounts.to_vec())).unwrap();
    let account = |n: &str| rt.block_on(store.account(&format!("{n}@example.com"))).unwrap().unwrap();
    let recipient = account("recipient").id;
    let blocked = account("blocked").id;
    rt.block_on(store.set_list_membership(recipient, blocked, ListKind::Block, true, "g")).unwrap();
    let mut g = c.benchmark_group("core");
    for who in ["friend", "blocked"] {
        let sender = rt
            .block_on(b.sign_in(&account(who), Dialect::Msnp11, None, format!("t-{who}"), None, Outbox::new(8)))
            .unwrap()
            .0;
        let payload = vec![b'x'; 300];
        g.bench_function(format!("offline message from a {who} sender (SQLite)"), |bench| {
            bench.iter_batched(
                || {
                    let waiting = rt.block_on(store.offline_messages(recipient)).unwrap();
                    let ids: Vec<i64> = waiting.iter().map(|m| m.id).collect();
                    rt.block_on(store.delete_offline_messages(recipient, &ids)).unwrap();
                },
                |()| rt.block_on(b.send_offline_message(&sender, "recipient@example.com", &payload)).unwrap(),
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    fan_out,
    relay,
    flood_control,
    password_check,
    password_checks_on_every_core,
    offline_privacy
);
criterion_main!(benches);
