//! What an operator sees: the Prometheus metrics after a scripted session.

mod common;

use std::collections::HashMap;

use common::*;

async fn metrics(server: &TestServer) -> HashMap<String, f64> {
    let answer = http_get(server.http.unwrap(), "/metrics", &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").or(answer.header("Content-Type")).unwrap_or("").starts_with("text/plain"));
    String::from_utf8(answer.body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_a_scripted_session() {
    let server = TestServer::start();
    let (_a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    for i in 0..2 {
        a.send_payload(&format!("MSG {} N", 10 + i), &text_message("counted")).await;
        b.expect_prefix("MSG alice@example.com").await;
    }
    // One failed login, and one offline message stored for someone offline.
    users(&server, &["carol", "dave"]);
    let mut x = Client::connect(server.ns).await;
    x.send("VER 1 MSNP7 CVR0").await;
    x.expect("VER 1 MSNP7").await;
    x.send("USR 2 MD5 I carol@example.com").await;
    x.expect_prefix("USR 2 MD5 S ").await;
    x.send("USR 3 MD5 S 00000000000000000000000000000000").await;
    x.expect("911 3").await;
    let carol = login_as_dialect(&server, 11, "carol@example.com", "pw-carol").await;
    assert_eq!(store_offline(&server, &carol, "carol@example.com", "dave@example.com", "later").await.status, 200);

    let m = metrics(&server).await;
    let get = |name: &str| *m.get(name).unwrap_or_else(|| panic!("{name} missing from /metrics"));
    assert_eq!(get("msnd_users_online{state=\"NLN\"}"), 2.0, "Alice and Bob");
    assert_eq!(get("msnd_users_online{state=\"FLN\"}"), 1.0, "Carol never sent CHG");
    assert_eq!(get("msnd_connections{role=\"switchboard\"}"), 2.0);
    assert_eq!(get("msnd_connections{role=\"notification\"}"), 4.0, "Alice, Bob, Carol and the failed login");
    assert_eq!(get("msnd_switchboard_sessions"), 1.0);
    assert_eq!(get("msnd_messages_relayed_total"), 2.0);
    assert_eq!(get("msnd_logins_total{result=\"succeeded\"}"), 3.0);
    assert_eq!(get("msnd_logins_total{result=\"failed\"}"), 1.0);
    assert_eq!(get("msnd_offline_messages_stored_total"), 1.0);
    assert!(get("msnd_store_seconds_count") >= 5.0, "sign-ins and list reads went through the store");
    assert_eq!(get("msnd_store_seconds_bucket{le=\"+Inf\"}"), get("msnd_store_seconds_count"));
    assert!(get("msnd_uptime_seconds") >= 0.0);

    let health = http_get(server.http.unwrap(), "/health", &[]).await;
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
}

fn msnd_in(server: &TestServer, args: &[&str]) -> std::process::Output {
    msnd().arg("--data-dir").arg(server.data_dir()).args(args).env("MSND_LOG", "warn").output().unwrap()
}

#[tokio::test]
async fn backup_while_clients_are_connected_then_restore() {
    let mut server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (mut a, _) = online_as(&server, "alice").await;
    a.send("ADD 1 FL bob@example.com Bob").await;
    a.expect_prefix("ADD 1 FL ").await;

    // A backup while Alice is connected holds what was acknowledged before it.
    let backup = server.data_dir().parent().unwrap().join(format!("backup-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&backup);
    let out = msnd_in(&server, &["backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    a.send("ADD 2 FL carol@example.com Carol").await;
    a.expect_prefix("ADD 2 FL ").await;

    // Restoring under a running server is refused.
    let out = msnd_in(&server, &["restore", backup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop it first"));
    // A file that is not a backup is refused too.
    let junk = backup.with_extension("junk");
    std::fs::write(&junk, b"not a database").unwrap();

    server.terminate();
    let out = msnd_in(&server, &["restore", junk.to_str().unwrap()]);
    assert!(!out.status.success(), "junk restored");
    let out = msnd_in(&server, &["restore", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.restart();
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("LST 3 FL").await;
    let l = a.expect_prefix("LST 3 FL ").await;
    assert!(l.text.ends_with("1 1 bob@example.com Bob"), "only what the backup held: {}", l.text);
    a.sync_point().await;
    let _ = std::fs::remove_file(&backup);
    let _ = std::fs::remove_file(&junk);
}

#[test]
fn logs_are_json_lines_on_request() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let mut child = msnd()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MSND_LOG", "info")
        .env("MSND_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap() == "msnd: ready" {
            break;
        }
    }
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(child.wait().unwrap().success());
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}"))).collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO"
                && l["fields"]["message"].as_str().is_some_and(|m| m.contains("shutting down"))),
        "{stderr}"
    );
}

/// `msnd check-config` in `dir` with extra arguments and environment.
fn check_config(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = msnd()
        .arg("--data-dir")
        .arg(dir)
        .arg("check-config")
        .args(args)
        .envs(env.iter().copied())
        .env("MSND_LOG", "warn")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn config_file_environment_and_flags_in_that_order_of_strength() {
    let dir = tempfile::tempdir().unwrap();
    // init writes the commented file, and will not overwrite it.
    let init = msnd().arg("--data-dir").arg(dir.path()).arg("init").output().unwrap();
    assert!(init.status.success());
    let template = std::fs::read_to_string(dir.path().join("msnd.toml")).unwrap();
    assert!(template.contains("#max_message_size = 1664"), "{template}");
    assert!(!msnd().arg("--data-dir").arg(dir.path()).arg("init").output().unwrap().status.success());
    // The untouched template is all defaults.
    let (ok, out, err) = check_config(dir.path(), &[], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("max_message_size = 1664"), "{out}");

    std::fs::write(dir.path().join("msnd.toml"), "max_message_size = 1000\noffline_quota = 7\n").unwrap();
    let (_, out, _) = check_config(dir.path(), &[], &[]);
    assert!(out.contains("max_message_size = 1000") && out.contains("offline_quota = 7"), "{out}");
    let (_, out, _) = check_config(dir.path(), &[], &[("MSND_MAX_MESSAGE_SIZE", "1200")]);
    assert!(out.contains("max_message_size = 1200") && out.contains("offline_quota = 7"), "{out}");
    let (_, out, _) = check_config(dir.path(), &["--max-message-size", "1400"], &[("MSND_MAX_MESSAGE_SIZE", "1200")]);
    assert!(out.contains("max_message_size = 1400"), "{out}");
}

#[test]
fn config_mistakes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("msnd.toml");
    let cases: &[(&str, &str)] = &[
        ("listen = \"0.0.0.0:1863\"\nmax_mesage_size = 10\n", "unknown field `max_mesage_size`"),
        ("max_message_size = \"big\"\n", "max_message_size"),
        ("rate_messages = \"fast\"\n", "BURST/PER_SECOND"),
        ("role = \"dispatcher\"\n", "unknown role"),
        ("listen = \"nowhere\"\n", "listen"),
        ("tls_cert = \"/x.pem\"\n", "tls_cert and tls_key go together"),
        ("nats = \"nats://127.0.0.1:4222\"\n", "needs the shared store"),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let (ok, _, err) = check_config(dir.path(), &[], &[]);
        assert!(!ok, "{text:?} was accepted");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
    // A missing --config file is an error; a missing default one is not.
    let (ok, _, err) = check_config(dir.path(), &["--config", "/nonexistent/msnd.toml"], &[]);
    assert!(!ok && err.contains("/nonexistent/msnd.toml"), "{err}");
    std::fs::remove_file(&file).unwrap();
    assert!(check_config(dir.path(), &[], &[]).0);
}

#[tokio::test]
async fn one_account_can_be_traced_at_run_time_with_secrets_masked() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let data = dir.path().join("data");
    let mut child = msnd()
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("MSND_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // A TestServer view of it, for the helpers (it does not own the process).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut addrs = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "msnd: ready" {
            break;
        }
        addrs.push(line);
    }
    std::thread::spawn(move || for _ in lines {});
    let addr = |prefix: &str| -> std::net::SocketAddr {
        addrs.iter().find(|l| l.starts_with(prefix)).unwrap().rsplit(' ').next().unwrap().parse().unwrap()
    };
    let server = TestServer::attach(&data, addr("msnd: dispatch"), addr("msnd: notification"), addr("msnd: http"));
    let (mut a_ns, mut b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    let log = || std::fs::read_to_string(&log_path).unwrap();
    assert!(!log().contains("msnp::trace"), "nobody is traced yet");

    let trace = |args: &[&str]| {
        let out = msnd().arg("--data-dir").arg(&data).arg("trace").args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    trace(&["alice@example.com"]);
    // The running server picks the list up on SIGHUP; ping until it shows.
    let started = std::time::Instant::now();
    while !log().contains("from=\"C\" line=PNG") {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "trace never started: {}", log());
        a_ns.sync_point().await;
    }
    a_ns.send("XFR 40 SB").await;
    let xfr = a_ns.expect_prefix("XFR 40 SB ").await;
    let cookie = xfr.args()[5].to_string();
    a.send_payload("MSG 41 N", &text_message("traced words")).await;
    // Relayed, so read (and traced) by the switchboard.
    b.expect_prefix("MSG alice@example.com").await;
    b_ns.sync_point().await;
    a_ns.sync_point().await;
    let text = log();
    assert!(text.contains("account=alice@example.com"), "{text}");
    assert!(text.contains("CKI ***"), "the cookie is masked: {text}");
    assert!(!text.contains(&cookie), "the cookie never appears: {text}");
    assert!(text.contains("traced words"), "switchboard traffic of the account is traced too: {text}");
    assert!(!text.contains("account=bob@example.com"), "only the account asked for");

    trace(&["alice@example.com", "--off"]);
    let started = std::time::Instant::now();
    loop {
        // Once a ping goes by untraced, tracing is off.
        let before = log().len();
        a_ns.sync_point().await;
        if !log()[before..].contains("line=PNG") {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "trace never stopped");
    }
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    child.wait().unwrap();
}

/// How many of the process's threads are named `name...`, once `expected`
/// are (or after 10 s, whatever the count is then): a new thread names
/// itself when it first runs, which on a loaded machine can be after the
/// server already listens.
fn threads_named(pid: u32, name: &str, expected: usize) -> usize {
    let count = || {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("a /proc");
        tasks
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(name)))
            .count()
    };
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = count();
        if n == expected || std::time::Instant::now() > give_up {
            return n;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_password_hashing_threads_are_as_many_as_the_operator_says() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc to count threads in");
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let default = TestServer::start();
    assert_eq!(threads_named(default.pid(), "argon2-", cores), cores, "one per core by default");
    let one = TestServer::start_with(&["--password-hash-threads", "1"]);
    assert_eq!(threads_named(one.pid(), "argon2-", 1), 1);
    // And a Passport login is checked on it.
    one.add_user("alice@example.com", "pw-alice");
    let mut alice = login_as_dialect(&one, 11, "alice@example.com", "pw-alice").await;
    alice.send("PNG").await;
    alice.expect_prefix("QNG").await;
}
