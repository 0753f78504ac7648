//! Crash safety: `kill -9` at a random moment while clients are changing
//! things, then a restart, and a check of the store against what the
//! clients were told. Every acknowledged change must be there; a change sent
//! but not yet acknowledged may or may not be, but nothing else may appear.
//!
//! The kill moments (after how many acknowledgements) come from a seed
//! printed at the start, so a failure can be replayed with `CRASH_SEED=<seed>`.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// What a writer sent and what the server acknowledged.
#[derive(Default, Debug)]
struct Ledger {
    sent: Vec<String>,
    acked: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

/// Acknowledgements seen by all writers together; the kill waits on it.
#[derive(Default)]
struct Progress {
    acked: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Progress {
    fn ack(&self) {
        self.acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Resolves once `n` changes have been acknowledged.
    async fn reached(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if self.acked.load(std::sync::atomic::Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

/// A small deterministic generator (xorshift): the test needs only
/// reproducible delays, not a dependency.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Alice adds contacts with up to 16 ADDs in flight.
async fn add_contacts(mut alice: Client, round: usize, ledger: Shared, progress: Arc<Progress>) {
    let mut next = 0usize;
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        while in_flight.len() < 16 && next < CONTACTS {
            let handle = format!("c{next}@example.com");
            alice.send(&format!("ADD {} FL {handle} c{next}", next + 1)).await;
            ledger.lock().unwrap().sent.push(handle.clone());
            in_flight.push_back(handle);
            next += 1;
        }
        let Some(line) = alice.next_line().await else { return };
        assert!(line.text.starts_with("ADD "), "round {round}: {}", line.text);
        let handle = in_flight.pop_front().expect("an ADD in flight");
        ledger.lock().unwrap().acked.push(handle);
        progress.ack();
        if in_flight.is_empty() && next == CONTACTS {
            return;
        }
    }
}

/// Bob changes his name, privacy mode and prompt setting, one at a time.
async fn change_settings(mut bob: Client, round: usize, ledger: Shared, progress: Arc<Progress>) {
    for i in 0.. {
        let flip = (i / 3) % 2 == 0;
        let (command, value) = match i % 3 {
            0 => ("REA", format!("bob@example.com Bob-{round}-{i}")),
            1 => ("BLP", if flip { "BL" } else { "AL" }.to_string()),
            _ => ("GTC", if flip { "N" } else { "A" }.to_string()),
        };
        let record = format!("{command} {value}");
        bob.send(&format!("{command} {} {value}", i + 1)).await;
        ledger.lock().unwrap().sent.push(record.clone());
        let Some(line) = bob.next_line().await else { return };
        // 218: the setting already had that value, which is as good an
        // acknowledgement of the state as an echo.
        assert!(line.text.starts_with(command) || line.text.starts_with("218 "), "round {round}: {}", line.text);
        ledger.lock().unwrap().acked.push(record);
        progress.ack();
    }
}

/// Carol stores offline messages for Olivia through the web service.
async fn store_messages(
    server_http: std::net::SocketAddr,
    carol_auth: String,
    round: usize,
    ledger: Shared,
    progress: Arc<Progress>,
) {
    let _ = round;
    for i in 0.. {
        let text = format!("r{round}-m{i}");
        ledger.lock().unwrap().sent.push(text.clone());
        let stored =
            try_store_offline(server_http, &carol_auth, "carol@example.com", "olivia@example.com", &text).await;
        if stored != Some(200) {
            return;
        }
        ledger.lock().unwrap().acked.push(text);
        progress.ack();
    }
}

const CONTACTS: usize = 150;

#[tokio::test]
async fn acknowledged_changes_survive_kill_9_at_random_moments() {
    let seed = std::env::var("CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("CRASH_SEED={seed}");
    let mut random = Seeded(seed);
    let mut server = TestServer::start_with(&[
        "--rate-list-changes",
        "100000/100000",
        "--rate-state-changes",
        "100000/100000",
        "--rate-messages",
        "100000/100000",
        "--offline-quota",
        "100000",
    ]);
    let contacts: Vec<String> = (0..CONTACTS).map(|i| format!("c{i}")).collect();
    let mut names: Vec<&str> = contacts.iter().map(String::as_str).collect();
    names.extend(["alice", "bob", "carol", "olivia"]);
    users(&server, &names);

    let mut olivia_has = BTreeSet::new();
    let mut checked = [0usize; 3];
    for round in 0..3 {
        // Alice starts each round with an empty forward list.
        let mut alice = login(&server, "alice@example.com", "pw-alice").await;
        for c in &contacts {
            alice.send(&format!("REM 1 FL {c}@example.com")).await;
            alice.recv().await;
        }
        let bob = login(&server, "bob@example.com", "pw-bob").await;
        let carol = login_as_dialect(&server, 11, "carol@example.com", "pw-carol").await;
        let ledgers: [Shared; 3] = Default::default();
        let progress = Arc::new(Progress::default());
        let writers = [
            tokio::spawn(add_contacts(alice, round, ledgers[0].clone(), progress.clone())),
            tokio::spawn(change_settings(bob, round, ledgers[1].clone(), progress.clone())),
            tokio::spawn(store_messages(
                server.http.unwrap(),
                carol.mspauth(),
                round,
                ledgers[2].clone(),
                progress.clone(),
            )),
        ];
        // The kill comes after a random number of acknowledgements, while
        // all three writers still have changes in flight.
        let target = 10 + (random.next() % 120) as usize;
        tokio::time::timeout(Duration::from_secs(60), progress.reached(target))
            .await
            .expect("the writers make progress");
        server.kill9();
        for w in writers {
            w.await.expect("a writer ends cleanly when the server dies");
        }
        server.restart();
        let [adds, settings, messages] = ledgers.map(|l| Arc::try_unwrap(l).unwrap().into_inner().unwrap());
        for (n, ledger) in checked.iter_mut().zip([&adds, &settings, &messages]) {
            *n += ledger.acked.len();
        }
        println!(
            "round {round}: killed after {target} acknowledgements; acknowledged {} adds, {} settings, {} messages",
            adds.acked.len(),
            settings.acked.len(),
            messages.acked.len()
        );

        // Alice's forward list holds every acknowledged ADD and nothing unsent.
        let mut alice = login(&server, "alice@example.com", "pw-alice").await;
        alice.send("LST 1 FL").await;
        let mut listed = BTreeSet::new();
        loop {
            let line = alice.recv().await;
            let args = line.args();
            // LST trid FL serial index count handle name (or one empty line).
            if args.len() < 7 {
                break;
            }
            listed.insert(args[6].to_string());
            if args[4] == args[5] {
                break;
            }
        }
        let sent: BTreeSet<_> = adds.sent.iter().cloned().collect();
        for handle in &adds.acked {
            assert!(listed.contains(handle), "round {round}: acknowledged ADD of {handle} lost (seed {seed})");
        }
        assert!(listed.is_subset(&sent), "round {round}: contacts nobody added (seed {seed})");

        // Bob's settings are the last acknowledged value of each, or the one
        // in flight at the kill.
        let mut bob = login(&server, "bob@example.com", "pw-bob").await;
        bob.send("SYN 1 0").await;
        let mut gtc = None;
        let mut blp = None;
        loop {
            let line = bob.recv().await;
            match line.args().first().map(|_| line.text.split(' ').next().unwrap()) {
                Some("GTC") => gtc = Some(format!("GTC {}", line.args()[3])),
                Some("BLP") => blp = Some(format!("BLP {}", line.args()[3])),
                Some("LST") if line.text.contains(" RL ") => break,
                _ => {}
            }
        }
        let name = bob.friendly.clone();
        for (what, found) in [("GTC", gtc), ("BLP", blp), ("REA", name.map(|n| format!("REA bob@example.com {n}")))] {
            let acked = settings.acked.iter().rev().find(|s| s.starts_with(what));
            let in_flight =
                settings.sent.last().filter(|s| s.starts_with(what) && settings.sent.len() > settings.acked.len());
            let Some(found) = found else { continue };
            if let Some(acked) = acked {
                assert!(
                    found == *acked || in_flight == Some(&found),
                    "round {round}: {what} is {found}, acknowledged {acked} (seed {seed})"
                );
            }
        }

        // Olivia's offline messages hold every acknowledged one.
        let mut olivia = sign_in_plain(&server, "olivia").await;
        if !messages.acked.is_empty() {
            let (_sb, shown) = answer_offline(&mut olivia, "olivia@example.com", "carol@example.com").await;
            olivia_has.extend(shown.iter().map(|m| m.rsplit("\r\n").next().unwrap_or("").to_string()));
        }
        for text in &messages.acked {
            assert!(olivia_has.contains(text), "round {round}: acknowledged offline message {text} lost (seed {seed})");
        }
    }
    // The kills must have come while work was being acknowledged, or the
    // checks above proved nothing.
    assert!(checked.iter().all(|&n| n > 0), "nothing of some kind was acknowledged before a kill: {checked:?}");
}

/// PostgreSQL ends every connection of msnd's (as a restart or failover
/// does) again and again while a client adds contacts one after another:
/// every change acknowledged is stored, every other one was answered with
/// an error, and msnd goes on serving once the database is back.
#[tokio::test]
async fn acknowledged_changes_survive_postgresql_dropping_every_connection() {
    let test = "crash::postgres_drops_connections";
    let Some(url) = backend::testing::postgres_schema_url(test).await else { return };
    // msnd's connections carry a name of their own, so only they are cut.
    let app = format!("mrp_{}_{}", std::process::id(), rand::random::<u32>());
    let server = TestServer::start_with(&["--database", &format!("{url}&application_name={app}")]);
    const N: usize = 60;
    let input: String =
        (0..N).map(|i| format!("c{i}@example.com\tpw\n")).collect::<String>() + "alice@example.com\tpw-alice\n";
    let mut import = msnd()
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["--database", &url, "user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), input.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    let mut alice = login(&server, "alice@example.com", "pw-alice").await;
    alice.sync_point().await;

    let (admin, connection) = tokio_postgres::connect(&backend::testing::postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("the test reaches PostgreSQL");
    tokio::spawn(connection);
    let cut = || async {
        let rows = admin
            .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", &[&app])
            .await
            .unwrap();
        rows.len()
    };
    let (mut acked, mut refused, mut cuts) = (Vec::new(), 0, 0);
    for i in 0..N {
        // Every fifth change, the database drops msnd's connections first
        // (and, every tenth, again while the change is on its way).
        if i % 5 == 0 {
            cuts += cut().await;
        }
        alice.send(&format!("ADD {} FL c{i}@example.com c{i}", i + 1)).await;
        if i % 10 == 5 {
            cuts += cut().await;
        }
        let answer = alice.recv().await;
        if answer.text.starts_with(&format!("ADD {} FL ", i + 1)) {
            acked.push(format!("c{i}@example.com"));
        } else {
            assert!(
                answer.text.starts_with(|c: char| c.is_ascii_digit()),
                "neither an ADD nor an error: {}",
                answer.text
            );
            refused += 1;
        }
    }
    eprintln!("{} acknowledged, {refused} refused, {cuts} connections cut", acked.len());
    assert!(cuts > 0, "no connection of msnd's was ever cut");
    assert!(acked.len() >= N / 2, "msnd did not recover: {} of {N} acknowledged, {refused} refused", acked.len());
    // What a fresh sign-in reads from the store.
    let mut again = login(&server, "alice@example.com", "pw-alice").await;
    again.send("LST 1 FL").await;
    let stored: BTreeSet<String> = again
        .sync_point_skipping()
        .await
        .into_iter()
        .filter(|l| l.text.starts_with("LST 1 FL"))
        .filter_map(|l| l.args().get(6).map(|h| h.to_string()))
        .collect();
    for handle in &acked {
        assert!(stored.contains(handle), "{handle} was acknowledged and is not stored");
    }
}
