//! The `msn` commands as a script would run them, against a real `msnd`.
//!
//! `msnd` is the server crate's binary; `cargo test --workspace` builds it
//! next to `msn` before any test runs. Run alone (`cargo test -p msn`) these
//! tests say so and skip.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn msnd_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_msn")).with_file_name("msnd");
    p.exists().then_some(p)
}

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    dispatch: SocketAddr,
    http: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(msnd: &Path, users: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    for u in users {
        let mut add = Command::new(msnd)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["user", "add", &format!("{u}@example.com"), "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .env("MSND_LOG", "warn")
            .spawn()
            .unwrap();
        writeln!(add.stdin.take().unwrap(), "pw-{u}").unwrap();
        assert!(add.wait().unwrap().success());
    }
    let mut child = Command::new(msnd)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .env("MSND_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut dispatch, mut http) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        let addr = || line.rsplit(' ').next().unwrap().parse::<SocketAddr>().unwrap();
        if line.starts_with("msnd: dispatch") {
            dispatch = Some(addr());
        } else if line.starts_with("msnd: http") {
            http = Some(addr());
        } else if line == "msnd: ready" {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server { child, dir, dispatch: dispatch.unwrap(), http: http.unwrap() }
}

/// `msn` as `name`, with the server from the environment and the password
/// from MSN_PASSWORD, its data in its own directory.
fn msn(server: &Server, name: &str, data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_msn"));
    c.env("MSN_SERVER", server.dispatch.to_string())
        .env("MSN_ACCOUNT", format!("{name}@example.com"))
        .env("MSN_PASSWORD", format!("pw-{name}"))
        .env("MSN_LOGIN_URL", format!("http://{}/rdr/pprdr.asp", server.http))
        .env("XDG_CONFIG_HOME", data.join("no-config"))
        .arg("--data-dir")
        .arg(data.join(name));
    c
}

fn run(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

macro_rules! need_msnd {
    () => {
        match msnd_path() {
            Some(p) => p,
            None => {
                eprintln!("SKIPPED: msnd is not built next to msn; run `cargo test --workspace`");
                return;
            }
        }
    };
}

#[test]
fn send_listen_contacts_and_offline_messages() {
    let msnd = need_msnd!();
    let server = start(&msnd, &["alice", "bob"]);
    let data = tempfile::tempdir().unwrap();
    // Bob listens for three events; Alice sends him a message.
    let mut listen = msn(&server, "bob", data.path());
    let mut bob = listen.args(["listen", "--count", "4"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut bob_out = BufReader::new(bob.stdout.take().unwrap()).lines();
    let first = bob_out.next().unwrap().unwrap();
    assert!(first.contains("\"event\":\"signed_in\""), "{first}");
    let out = run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["send", "bob@example.com", "hello from a script"]);
        c
    });
    assert!(out.contains("sent to bob@example.com"), "{out}");
    let mut seen = Vec::new();
    for line in bob_out.by_ref().take(3) {
        seen.push(line.unwrap());
    }
    let _ = bob.wait();
    let message = seen.iter().find(|l| l.contains("\"event\":\"message\"")).expect("a message event");
    let json: serde_json::Value = serde_json::from_str(message).unwrap();
    assert_eq!(json["text"], "hello from a script");
    assert_eq!(json["from"], "alice@example.com");

    // Contacts: add, block, list as JSON.
    run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["add", "bob@example.com", "--name", "Bob"]);
        c
    });
    let listed = run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["contacts", "--json"]);
        c
    });
    let contact: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(contact["handle"], "bob@example.com");
    run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["block", "bob@example.com"]);
        c
    });

    // Bob is offline now: Alice's message is left for him.
    let out = run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["send", "bob@example.com", "see you tomorrow"]);
        c
    });
    assert!(out.contains("left an offline message"), "{out}");
    let mut listen = msn(&server, "bob", data.path());
    let mut bob = listen.arg("listen").stdout(Stdio::piped()).spawn().unwrap();
    let offline = BufReader::new(bob.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .find(|l| l.contains("see you tomorrow"))
        .expect("the offline message");
    let _ = bob.kill();
    let _ = bob.wait();
    assert!(offline.contains("offline_sent"));

    // History is searchable.
    let found = run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["history", "tomorrow"]);
        c
    });
    assert!(found.contains("see you tomorrow"), "{found}");
}

#[test]
fn send_file_arrives_at_a_listener_that_accepts_files() {
    let msnd = need_msnd!();
    let server = start(&msnd, &["alice", "bob"]);
    let data = tempfile::tempdir().unwrap();
    let inbox = data.path().join("inbox");
    let mut listen = msn(&server, "bob", data.path());
    let mut bob = listen.args(["listen", "--accept-files"]).arg(&inbox).stdout(Stdio::piped()).spawn().unwrap();
    let mut bob_out = BufReader::new(bob.stdout.take().unwrap()).lines();
    assert!(bob_out.next().unwrap().unwrap().contains("signed_in"));
    let file = data.path().join("report.pdf");
    std::fs::write(&file, vec![7u8; 300_000]).unwrap();
    let out = run({
        let mut c = msn(&server, "alice", data.path());
        c.args(["send-file", "bob@example.com"]).arg(&file);
        c
    });
    assert!(out.contains("sent"), "{out}");
    let done = bob_out.find(|l| l.as_ref().is_ok_and(|l| l.contains("file_done"))).expect("file_done").unwrap();
    assert!(done.contains("\"verified\":true"), "{done}");
    let _ = bob.kill();
    let _ = bob.wait();
    assert_eq!(std::fs::read(inbox.join("report.pdf")).unwrap(), std::fs::read(&file).unwrap());
    let _ = server.dir.path();
}

#[test]
fn a_config_file_supplies_what_flags_and_environment_do_not() {
    let msnd = need_msnd!();
    let server = start(&msnd, &["alice"]);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("msn.toml");
    std::fs::write(
        &config,
        format!("server = \"{}\"\naccount = \"alice@example.com\"\ndialect = 7\n", server.dispatch),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_msn"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--password-stdin", "status", "away", "--for", "0"])
        .env_remove("MSN_SERVER")
        .env_remove("MSN_ACCOUNT")
        .env_remove("MSN_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            writeln!(c.stdin.take().unwrap(), "pw-alice")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("alice@example.com is away"));
    // A flag wins over the file: the wrong server is refused quickly.
    let bad = Command::new(env!("CARGO_BIN_EXE_msn"))
        .arg("--config")
        .arg(&config)
        .args(["--server", "127.0.0.1:1", "--password-stdin", "contacts"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
