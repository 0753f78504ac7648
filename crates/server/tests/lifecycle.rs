//! The server's life: shutdown with OUT SSD, restarts, kill -9 durability,
//! and the account commands.

mod common;

use common::*;

#[tokio::test]
async fn sigterm_tells_every_client_out_ssd() {
    let mut server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    a_ns.send("XFR 1 SB").await;
    let xfr = a_ns.expect_prefix("XFR 1 SB ").await;
    let mut sb = Client::connect_str(xfr.args()[3]).await;
    sb.send(&format!("USR 1 alice@example.com {}", xfr.args()[5])).await;
    sb.expect_prefix("USR 1 OK ").await;
    let mut idle = Client::connect(server.ns).await;
    idle.send("VER 1 MSNP2").await;
    idle.expect("VER 1 MSNP2").await;

    let status = server.terminate();
    assert!(status.success(), "msnd exits cleanly on SIGTERM: {status}");
    for c in [&mut a_ns, &mut b_ns, &mut sb, &mut idle] {
        let rest = c.expect_closed().await;
        assert_eq!(rest.last().map(|l| l.text.as_str()), Some("OUT SSD"), "{rest:?}");
    }
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    for cmd in [
        "ADD 1 FL bob@example.com Bob",
        "ADD 2 AL bob@example.com bob@example.com",
        "ADD 3 BL carol@example.com carol@example.com",
        "GTC 4 N",
        "BLP 5 BL",
        "REA 6 alice@example.com Alice%20Liddell",
    ] {
        a.send(cmd).await;
        a.recv().await;
    }
    a.send("OUT").await;
    a.expect_closed().await;
    server.terminate();
    server.restart();

    let (mut a, answer) = direct_login(server.ns, "alice@example.com", "pw-alice").await;
    assert_eq!(answer, "USR 3 OK alice@example.com Alice%20Liddell");
    a.expect_prefix("MSG Hotmail Hotmail ").await;
    a.send("SYN 4 0").await;
    for line in [
        "SYN 4 6",
        "GTC 4 6 N",
        "BLP 4 6 BL",
        "LST 4 FL 6 1 1 bob@example.com Bob",
        "LST 4 AL 6 1 1 bob@example.com Bob",
        "LST 4 BL 6 1 1 carol@example.com Carol",
        "LST 4 RL 6 0 0",
    ] {
        a.expect(line).await;
    }
    // Bob's reverse list survived too.
    let mut b = login(&server, "bob@example.com", "pw-bob").await;
    b.send("LST 1 RL").await;
    b.expect("LST 1 RL 1 1 1 alice@example.com Alice%20Liddell").await;
}

#[tokio::test]
async fn acknowledged_changes_survive_kill_9() {
    let mut server = TestServer::start();
    let names: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("alice");
    users(&server, &all);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    // Pipeline every ADD, then kill the server the moment the last is acknowledged.
    for (i, n) in names.iter().enumerate() {
        a.send(&format!("ADD {} FL {n}@example.com {n}", i + 1)).await;
    }
    let mut acked = 0;
    while acked < names.len() {
        let l = a.recv().await;
        assert!(l.text.starts_with("ADD "), "{}", l.text);
        acked += 1;
    }
    server.kill9();
    server.restart();
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    a.send("LST 1 FL").await;
    let mut listed = Vec::new();
    for _ in 0..names.len() {
        let l = a.expect_prefix(&format!("LST 1 FL {} ", names.len())).await;
        listed.push(l.args()[6].to_string());
    }
    let mut expected: Vec<String> = names.iter().map(|n| format!("{n}@example.com")).collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected);
}

fn run(server: &TestServer, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = msnd()
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(args)
        .env("MSND_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        writeln!(input, "{s}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn user_commands_manage_accounts() {
    let server = TestServer::start();
    assert!(
        run(&server, &["user", "add", "dora@example.com", "--name", "Dora E", "--password-stdin"], Some("first")).0
    );
    let (ok, out) = run(&server, &["user", "add", "DORA@example.com", "--password-stdin"], Some("x"));
    assert!(!ok, "duplicate handles are refused: {out}");
    let (ok, out) = run(&server, &["user", "add", "not-an-address", "--password-stdin"], Some("x"));
    assert!(!ok, "{out}");
    let (ok, out) = run(&server, &["user", "add", "empty@example.com", "--password-stdin"], Some(""));
    assert!(!ok, "{out}");
    let (ok, out) = run(&server, &["user", "list"], None);
    assert!(ok);
    assert!(out.contains("dora@example.com\tDora E\t0 contacts"), "{out}");
    login(&server, "dora@example.com", "first").await;

    assert!(run(&server, &["user", "passwd", "dora@example.com", "--password-stdin"], Some("second")).0);
    assert_eq!(direct_login(server.ns, "dora@example.com", "first").await.1, "911 3");
    login(&server, "dora@example.com", "second").await;

    assert!(run(&server, &["user", "del", "dora@example.com"], None).0);
    assert!(!run(&server, &["user", "del", "dora@example.com"], None).0);
    let (_, out) = run(&server, &["user", "list"], None);
    assert!(!out.contains("dora"));
}

#[tokio::test]
async fn secrets_are_not_stored_in_plain_text() {
    let server = TestServer::start();
    server.add_user("eve@example.com", "correct horse battery staple");
    let db = std::fs::read(server.data_dir().join("mariposa.db")).unwrap();
    let wal = std::fs::read(server.data_dir().join("mariposa.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(12).any(|w| w == b"horse batter"), "password found in the store");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir().join("server.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn user_import_creates_accounts_in_bulk_and_keeps_existing_ones() {
    let server = TestServer::start();
    server.add_user("old@example.com", "old-password");
    let (ok, out, _) = import(
        &server,
        "# handle, password, name\nnew1@example.com\tpw-one\tNew One\nnew2@example.com\tpw-two\nold@example.com\tchanged\n\n",
    );
    assert!(ok);
    assert_eq!(out.trim(), "created 2 of 3 accounts (1 existed)");
    // The imported accounts sign in (MD5 needs the sealed secret, so this
    // checks both halves of the credentials), with the given name.
    let mut c = login(&server, "new1@example.com", "pw-one").await;
    c.send("SYN 10 0").await;
    c.expect_prefix("SYN 10 ").await;
    let (_, reply) = direct_login(server.ns, "new2@example.com", "pw-two").await;
    assert!(reply.starts_with("USR 3 OK new2@example.com new2@example.com"), "{reply}");
    // The existing account kept its password.
    let (_, reply) = direct_login(server.ns, "old@example.com", "old-password").await;
    assert!(reply.starts_with("USR 3 OK"), "{reply}");
    let (_, reply) = direct_login(server.ns, "new1@example.com", "wrong").await;
    assert!(reply.starts_with("911"), "{reply}");

    // A malformed line fails the whole import, naming the line.
    let (ok, _, err) = import(&server, "a@example.com\tpw\nno-tab-here\n");
    assert!(!ok);
    assert!(err.contains("line 2"), "{err}");
    let (_, reply) = direct_login(server.ns, "a@example.com", "pw").await;
    assert!(reply.starts_with("911"), "nothing was imported: {reply}");
}
