//! msn-load on a small scale against a real msnd: it reports what happened,
//! and it must not report success when the server refuses or drops.

use std::time::Duration;

use load::link::Target;
use load::{Config, launch};
use msnp::Dialect;

/// msnd is built into the same target directory; skip (loudly) without it.
fn msnd() -> Option<std::path::PathBuf> {
    let path = launch::find_msnd();
    if path.exists() {
        Some(path)
    } else {
        eprintln!("SKIPPED: no msnd binary beside the test (build the workspace: cargo test --workspace)");
        None
    }
}

fn config(l: &launch::Launched, users: usize, dialect: Dialect) -> Config {
    Config {
        target: Target {
            server: l.dispatch.clone(),
            dialect,
            login_url: Some(l.nexus.clone()),
            trust_ca: None,
            timeout: Duration::from_secs(20),
            gateway: None,
        },
        users,
        accounts: load::Accounts::numbered("u", "secret"),
        contacts: 4,
        mutual: 0.5,
        login_rate: 500.0,
        login_concurrency: 64,
        churn_duration: Duration::ZERO,
        background: None,
        presence_rate: 50.0,
        presence_duration: Duration::from_millis(400),
        sessions: 4,
        message_rate: 100.0,
        message_duration: Duration::from_millis(500),
        message_size: 150,
        server_pid: Some(l.child.id()),
        lists_made: None,
    }
}

fn start(users: usize, open_limits: bool) -> Option<(tempfile::TempDir, launch::Launched)> {
    let msnd = msnd()?;
    let dir = tempfile::tempdir().unwrap();
    launch::import_accounts(&msnd, dir.path(), users, "u", "secret").unwrap();
    let l = launch::serve(&msnd, dir.path(), open_limits).unwrap();
    Some((dir, l))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_in_both_login_schemes_sees_every_login_change_and_message() {
    let Some((_dir, l)) = start(12, true) else { return };
    for dialect in [Dialect::Msnp2, Dialect::Msnp11] {
        let r = load::run(&config(&l, 12, dialect)).await.unwrap();
        assert!(r.success, "{}", r.table());
        assert_eq!((r.logins.succeeded, r.logins.failed), (12, 0));
        assert_eq!(r.presence.changes, 20);
        assert_eq!(r.presence.complete, 20);
        // Each user has 4 contacts, so 4 watchers on average; all are online.
        assert!(r.presence.notifications >= 20, "{}", r.table());
        assert_eq!(r.switchboard.sessions, 4);
        assert_eq!(r.switchboard.sent, 48);
        assert_eq!(r.switchboard.received, 48);
        assert_eq!(r.held.answered_ping, 12);
        assert!(r.server.as_ref().is_some_and(|s| s.rss_logged_in_bytes > 0));
        // What msnd allocated, apart from its executable's resident pages.
        assert!(
            r.server.as_ref().is_some_and(|s| s.anon_logged_in_bytes > 0
                && s.anon_logged_in_bytes <= s.rss_logged_in_bytes
                && s.anon_before_bytes <= s.rss_before_bytes),
            "{}",
            r.table()
        );
        assert!(r.table().contains("success"));
    }
}

/// MSNP13-18 take their lists from the address book and send them in one
/// ADL; MSNP15 and up sign in through the RST service (single sign-on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_in_the_address_book_dialects_sees_every_login_change_and_message() {
    let Some((_dir, l)) = start(12, true) else { return };
    for dialect in [Dialect::Msnp13, Dialect::Msnp15, Dialect::Msnp18] {
        let mut cfg = config(&l, 12, dialect);
        cfg.churn_duration = Duration::from_millis(300);
        // Fewer at once than accounts: the server refuses a third check of
        // one account's password while two are running (a guessing defence).
        cfg.login_concurrency = 4;
        let r = load::run(&cfg).await.unwrap();
        assert!(r.success, "{dialect}: {}", r.table());
        let churn = r.churn.as_ref().unwrap();
        assert!(churn.succeeded > 0 && churn.failed == 0, "{dialect}: {}", r.table());
        assert_eq!((r.logins.succeeded, r.logins.failed), (12, 0), "{dialect}");
        assert_eq!(r.presence.changes, 20, "{dialect}");
        assert_eq!(r.presence.complete, 20, "{dialect}: {}", r.table());
        assert!(r.presence.notifications >= 20, "{dialect}: {}", r.table());
        assert_eq!((r.switchboard.sent, r.switchboard.received), (48, 48), "{dialect}: {}", r.table());
        assert_eq!(r.held.answered_ping, 12, "{dialect}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_run_through_the_http_gateway_sees_every_login_change_and_message() {
    let Some((_dir, l)) = start(8, true) else { return };
    let mut cfg = config(&l, 8, Dialect::Msnp11);
    cfg.target.gateway = client::http::origin(&l.nexus).map(str::to_string);
    let r = load::run(&cfg).await.unwrap();
    assert!(r.success, "{}", r.table());
    assert_eq!((r.logins.succeeded, r.logins.failed), (8, 0));
    assert_eq!(r.presence.complete, r.presence.changes);
    assert_eq!(r.switchboard.sent, r.switchboard.received);
    assert!(r.switchboard.received > 0, "{}", r.table());
    assert_eq!(r.held.answered_ping, 8);
}

/// A server whose login service is HTTPS with a certificate of its own
/// (Escargot behind its TLS proxy, msnd with its generated CA): msn-load
/// signs in when told to trust that CA, and reports every login failed, not
/// success, when it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passport_over_https_signs_in_with_the_servers_ca_and_fails_without_it() {
    let Some(msnd) = msnd() else { return };
    let dir = tempfile::tempdir().unwrap();
    launch::import_accounts(&msnd, dir.path(), 6, "u", "secret").unwrap();
    let l = launch::serve_with_https(&msnd, dir.path(), true).unwrap();
    let mut cfg = config(&l, 6, Dialect::Msnp11);
    cfg.sessions = 0;
    cfg.presence_rate = 0.0;
    cfg.target.timeout = Duration::from_secs(5);
    cfg.target.trust_ca = Some(dir.path().join("tls/ca.pem"));
    let r = load::run(&cfg).await.unwrap();
    assert!(r.success, "{}", r.table());
    assert_eq!((r.logins.succeeded, r.logins.failed), (6, 0));
    cfg.target.trust_ca = None;
    let r = load::run(&cfg).await.unwrap();
    assert!(!r.success, "{}", r.table());
    assert_eq!(r.logins.succeeded, 0, "{}", r.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_the_lists_once_and_reuses_them() {
    let Some((_dir, l)) = start(6, true) else { return };
    let first = load::run(&config(&l, 6, Dialect::Msnp2)).await.unwrap();
    assert_eq!(first.lists.as_ref().map(|x| x.changes), Some(6 * 4 * 2));
    let second = load::run(&config(&l, 6, Dialect::Msnp2)).await.unwrap();
    assert!(second.lists.is_none(), "the graph was already there");
    assert!(second.success, "{}", second.table());
}

/// An MSNP2 run of `users` with half a second of sustained logins at
/// `rate` before the usual phases; `None` without an msnd to run.
async fn churned(users: usize, rate: f64) -> Option<load::Report> {
    let (_dir, l) = start(users, true)?;
    let mut cfg = config(&l, users, Dialect::Msnp2);
    cfg.churn_duration = Duration::from_millis(500);
    cfg.login_rate = rate;
    let r = load::run(&cfg).await.unwrap();
    assert!(r.success, "{}", r.table());
    Some(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_logins_sign_in_and_out_and_leave_the_held_users_alone() {
    let Some(r) = churned(12, 100.0).await else { return };
    let churn = r.churn.as_ref().expect("a sustained-login report");
    // 100/s for half a second: about 50 (fewer on a busy machine), every one
    // complete, each account signed in more than once (12 accounts).
    assert!(churn.attempted > 12, "{}", r.table());
    assert_eq!((churn.succeeded, churn.failed), (churn.attempted, 0));
    // Afterwards the users sign in to stay as usual, none told OUT OTH.
    assert_eq!(r.logins.succeeded, 12);
    assert_eq!(r.held.dropped, 0);
    assert!(r.table().contains("sustained logins"));
}

/// More logins offered at once than there are users: the tool never signs
/// an account in while its last sign-in is still under way (the server
/// would rightly sign the first one out, a failure of the tool's making).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_logins_never_overlap_one_account_with_itself() {
    let Some(r) = churned(2, 2000.0).await else { return };
    let churn = r.churn.as_ref().expect("a sustained-login report");
    assert!(churn.attempted > 4, "{}", r.table());
    assert_eq!((churn.succeeded, churn.failed), (churn.attempted, 0), "{}", r.table());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_logins_run_beside_the_measured_traffic() {
    let Some(msnd) = msnd() else { return };
    let dir = tempfile::tempdir().unwrap();
    launch::import_accounts(&msnd, dir.path(), 8, "u", "secret").unwrap();
    // Each background account signs in every 0.8 s: the server lets an
    // account have two password checks in flight, so a busy machine (CI runs
    // tests side by side) may take up to 1.6 s per check before a login is
    // refused as a parallel guess.
    launch::import_accounts(&msnd, dir.path(), 8, "bg", "secret").unwrap();
    let l = launch::serve(&msnd, dir.path(), true).unwrap();
    let mut cfg = config(&l, 8, Dialect::Msnp2);
    cfg.background = Some(load::BackgroundLogins {
        dialect: Dialect::Msnp11,
        prefix: "bg".into(),
        password: "secret".into(),
        users: 8,
        rate: 10.0,
    });
    let r = load::run(&cfg).await.unwrap();
    assert!(r.success, "{}", r.table());
    let b = r.background_logins.as_ref().expect("a background report");
    assert!(b.succeeded > 0 && b.failed == 0, "{}", r.table());
    assert_eq!(r.switchboard.lost, 0);
    assert!(r.table().contains("background logins"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_are_a_failure() {
    let Some((_dir, l)) = start(4, true) else { return };
    let mut cfg = config(&l, 4, Dialect::Msnp2);
    cfg.contacts = 0;
    cfg.accounts = load::Accounts::numbered("u", "not-the-password");
    cfg.churn_duration = Duration::from_millis(200);
    cfg.login_rate = 50.0;
    let r = load::run(&cfg).await.unwrap();
    assert!(!r.success);
    assert!(r.churn.as_ref().is_some_and(|c| c.failed > 0 && c.succeeded == 0), "{}", r.table());
    assert!(r.problems.iter().any(|p| p.contains("sustained logins failed")), "{:?}", r.problems);
    assert_eq!(r.logins.failed, 4);
    assert!(r.problems.iter().any(|p| p.contains("logins failed")), "{:?}", r.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_server_drops_are_a_failure() {
    // msnd's default flood control: 20 messages at once per connection, then
    // 4 a second. 100 a second through one session loses most of them.
    let Some((_dir, l)) = start(2, false) else { return };
    let mut cfg = config(&l, 2, Dialect::Msnp2);
    cfg.contacts = 1;
    cfg.sessions = 1;
    cfg.message_rate = 100.0;
    cfg.message_duration = Duration::from_secs(1);
    let r = load::run(&cfg).await.unwrap();
    assert!(!r.success, "{}", r.table());
    assert!(r.switchboard.lost > 0, "{}", r.table());
    assert!(r.problems.iter().any(|p| p.contains("were lost")), "{:?}", r.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_xmpp_run_signs_everyone_in_and_delivers_every_message() {
    let Some((_dir, l)) = start(8, true) else { return };
    let cfg = load::xmpp::XmppConfig {
        server: l.xmpp.clone().expect("msnd's XMPP listener"),
        domain: "example.com".into(),
        users: 8,
        accounts: load::Accounts::numbered("u", "secret"),
        login_rate: 500.0,
        login_concurrency: 8,
        contacts: 3,
        presence_rate: 40.0,
        presence_duration: Duration::from_millis(400),
        pairs: 4,
        message_rate: 100.0,
        message_duration: Duration::from_millis(500),
        message_size: 150,
        server_pid: Some(l.child.id()),
        timeout: Duration::from_secs(20),
    };
    let r = load::xmpp::run(&cfg).await.unwrap();
    assert!(r.success, "{}", r.table());
    assert_eq!((r.logins_succeeded, r.logins_failed), (8, 0));
    assert!(r.messages_sent > 0 && r.messages_sent == r.messages_received, "{}", r.table());
    assert_eq!(r.message_latency.count as u64, r.messages_received);
    // Every change reached its three watchers.
    assert!(r.presence_changes > 0 && r.presence_expected == 3 * r.presence_changes, "{}", r.table());
    assert_eq!(r.presence_received, r.presence_expected, "{}", r.table());
    // A wrong password is a failed login and a failed run.
    let accounts = load::Accounts::numbered("u", "wrong");
    let wrong = load::xmpp::XmppConfig { accounts, users: 2, pairs: 0, contacts: 0, ..cfg };
    let r = load::xmpp::run(&wrong).await.unwrap();
    assert!(!r.success);
    assert_eq!(r.logins_failed, 2);
}

/// The command line against a server msn-load did not start, with its
/// accounts from a file (each its own password): nothing imported, every
/// user signed in, presence and messages measured, and a wrong password in
/// the file makes the run fail.
#[test]
fn the_command_drives_a_running_server_with_accounts_from_a_file() {
    let Some(msnd) = msnd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let accounts: Vec<(String, String)> =
        (0..6).map(|i| (format!("friend{i}@example.net"), format!("own password {i}"))).collect();
    let mut import = std::process::Command::new(&msnd)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines: String = accounts.iter().map(|(h, p)| format!("{h}\t{p}\n")).collect();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), lines.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    let l = launch::serve(&msnd, dir.path(), true).unwrap();
    let file = dir.path().join("accounts.txt");
    let listed: String = accounts.iter().map(|(h, p)| format!("{h} {p}\n")).collect();
    std::fs::write(&file, format!("# handle password\n{listed}")).unwrap();
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_msn-load"))
            .args(["--server", &l.dispatch, "--login-url", &l.nexus, "--dialect", "11"])
            .arg("--server-pid")
            .arg(l.child.id().to_string())
            .arg("--accounts")
            .arg(file)
            .args(["--contacts", "2", "--presence-secs", "0.3", "--sessions", "2", "--message-rate", "50"])
            .args(["--message-secs", "0.3", "--login-rate", "100"])
            .output()
            .unwrap()
    };
    let out = run(&file);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("6 / MSNP11"), "{table}");
    assert!(table.contains("logins") && table.contains("6 of 6"), "{table}");
    assert!(table.contains("machine reference"), "{table}");

    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, listed.replacen("own password 3", "not it", 1)).unwrap();
    assert!(!run(&wrong).status.success(), "a refused login fails the run");
}

/// The report of a run by several processes (`--workers`), read from its JSON.
fn run_command(args: &[&str]) -> (bool, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_msn-load"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read(&json).map(|b| serde_json::from_slice(&b).unwrap()).unwrap_or_default();
    (out.status.success(), report, text)
}

/// What every run by several processes must show: every user signed in
/// once, every change heard by every watcher across the processes, no
/// message lost, every connection answering at the end.
fn assert_whole(report: &serde_json::Value, users: u64, text: &str) {
    assert_eq!(report["workers"], 3, "{text}");
    assert_eq!(report["logins"]["succeeded"], users, "{text}");
    let presence = &report["presence"];
    assert!(presence["changes"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(presence["complete"], presence["changes"], "{text}");
    assert!(presence["notifications"].as_u64().unwrap() >= presence["changes"].as_u64().unwrap(), "{text}");
    let sb = &report["switchboard"];
    assert!(sb["sent"].as_u64().unwrap() > 0, "{text}");
    assert_eq!((sb["lost"].as_u64(), sb["received"].as_u64()), (Some(0), sb["sent"].as_u64()), "{text}");
    assert_eq!(report["held"]["answered_ping"], users, "{text}");
    assert_eq!(report["success"], true, "{text}");
}

const SMALL: [&str; 16] = [
    "--contacts",
    "4",
    "--presence-rate",
    "60",
    "--presence-secs",
    "0.5",
    "--sessions",
    "6",
    "--message-rate",
    "300",
    "--message-secs",
    "0.5",
    "--login-rate",
    "300",
    "--timeout-secs",
    "20",
];

/// Three processes drive one msnd (started by the coordinator) and report
/// as one run: presence changes made in one process are heard in others.
#[test]
fn three_processes_drive_one_server_and_report_as_one_run() {
    let Some(msnd) = msnd() else { return };
    let data = tempfile::tempdir().unwrap();
    let mut args = vec!["--workers", "3", "--users", "45", "--msnd", msnd.to_str().unwrap()];
    args.extend(["--data-dir", data.path().to_str().unwrap()]);
    args.extend(SMALL);
    let (ok, report, text) = run_command(&args);
    assert!(ok, "{text}");
    assert_whole(&report, 45, &text);
    // The server's own connections: the 45 users (and their switchboards, closed by then).
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{text}");
    assert!(nodes[0]["connections"].as_u64().unwrap() >= 45, "{text}");
    // The data dir remembers that its lists are made: the next run does not
    // make them again (an interrupted one would be resumed).
    assert!(report["lists"]["changes"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(std::fs::read_to_string(data.path().join("msn-load-lists")).unwrap(), "made\n");
    let (ok, again, text) = run_command(&args);
    assert!(ok, "{text}");
    assert!(again["lists"].is_null(), "{text}");
    assert_whole(&again, 45, &text);
}

/// The cluster of docs/DEPLOYMENT.md, started by msn-load on the local
/// PostgreSQL and NATS: users spread over two notification nodes, sessions
/// on two switchboard nodes, each node measured on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_drive_a_cluster_of_five_nodes() {
    let Some(msnd) = msnd() else { return };
    let test = "load::three_processes_drive_a_cluster";
    let Some(database) = backend::testing::postgres_schema_url(test).await else { return };
    let Some(nats) = backend::testing::nats(test).await else { return };
    let before = load_directories(&nats).await;
    let data = tempfile::tempdir().unwrap();
    let msnd = msnd.to_str().unwrap().to_string();
    let dir = data.path().to_str().unwrap().to_string();
    let mut args = vec!["--workers", "3", "--users", "45", "--msnd", &msnd, "--data-dir", &dir];
    args.extend(["--notification-nodes", "2", "--switchboard-nodes", "2", "--database", &database, "--nats", &nats]);
    args.extend(["--dialect", "11", "--database-connections", "20"]);
    args.extend(SMALL);
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    let (ok, report, text) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_command(&args)
    })
    .await
    .unwrap();
    assert!(ok, "{text}");
    assert_whole(&report, 45, &text);
    let nodes = report["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ds", "ns1", "ns2", "sb1", "sb2"], "{text}");
    let held: u64 = nodes[1..3].iter().map(|n| n["connections"].as_u64().unwrap()).sum();
    assert!(held >= 45, "the notification nodes hold every user: {text}");
    assert!(nodes[1..3].iter().all(|n| n["connections"].as_u64().unwrap() > 0), "both are used: {text}");
    let services: Vec<&str> =
        report["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(services, ["postgres", "nats-server"], "{text}");
    let bus = &report["bus"];
    for trouble in ["frames_refused", "messages_dropped", "reconnections", "nodes_declared_silent"] {
        assert_eq!(bus[trouble], 0, "{trouble}, every node's count read from the dispatch node: {text}");
    }
    // The run's session directory went from NATS with its cluster.
    let left: Vec<String> = load_directories(&nats).await.difference(&before).cloned().collect();
    assert!(left.is_empty(), "left in NATS after the run: {left:?}");
}

/// The session directories of msn-load's clusters in NATS's JetStream.
async fn load_directories(nats: &str) -> std::collections::BTreeSet<String> {
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats).await.unwrap());
    let mut names = jetstream.stream_names();
    let mut found = std::collections::BTreeSet::new();
    while let Some(name) = futures::StreamExt::next(&mut names).await {
        let name = name.unwrap();
        if name.starts_with("KV_load") {
            found.insert(name);
        }
    }
    found
}
