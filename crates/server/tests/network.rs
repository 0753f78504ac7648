//! The network around msnd: a real non-loopback peer (a network namespace
//! joined by a veth pair the test makes), one address flooding the TLS
//! listeners, the legacy listener's renegotiation, and IPv6 listeners.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;

/// A network namespace joined to ours by a veth pair: a peer with a real,
/// non-loopback address. Removed on drop.
struct PeerNamespace {
    name: String,
    host_addr: Ipv4Addr,
}

impl PeerNamespace {
    /// `None` (the test skipped, with the reason) where namespaces cannot be
    /// made: no `ip`, no CAP_NET_ADMIN.
    fn create(test: &str) -> Option<PeerNamespace> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = (std::process::id() % 200) * 16 + NEXT.fetch_add(1, Ordering::Relaxed) % 16;
        let name = format!("mrp{n}");
        // 10.231.x.y/30 per namespace: host .1, peer .2.
        let base = n * 4;
        let (x, y) = ((base >> 8) as u8, (base & 0xff) as u8);
        let host_addr = Ipv4Addr::new(10, 231, x, y + 1);
        let peer_addr = Ipv4Addr::new(10, 231, x, y + 2);
        let (host_if, peer_if) = (format!("{name}a"), format!("{name}b"));
        let ns = PeerNamespace { name: name.clone(), host_addr };
        let steps: Vec<Vec<String>> = [
            vec!["netns", "add", &name],
            vec!["link", "add", &host_if, "type", "veth", "peer", "name", &peer_if],
            vec!["link", "set", &peer_if, "netns", &name],
            vec!["addr", "add", &format!("{host_addr}/30"), "dev", &host_if],
            vec!["link", "set", &host_if, "up"],
            vec!["-n", &name, "addr", "add", &format!("{peer_addr}/30"), "dev", &peer_if],
            vec!["-n", &name, "link", "set", &peer_if, "up"],
        ]
        .iter()
        .map(|s| s.iter().map(|a| a.to_string()).collect())
        .collect();
        for step in steps {
            let out = std::process::Command::new("ip").args(&step).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
                    backend::testing::skip(
                        test,
                        &format!("cannot make a network namespace (ip {}): {why}", step.join(" ")),
                    );
                    return None;
                }
                Err(e) => {
                    backend::testing::skip(test, &format!("cannot run ip: {e}"));
                    return None;
                }
            }
        }
        Some(ns)
    }

    /// A TCP connection from inside the namespace (a thread joins it just
    /// for the `connect`; the socket stays in the namespace).
    fn connect(&self, to: SocketAddr) -> std::net::TcpStream {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("the namespace file");
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace descriptor changes only
            // this thread's network namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            std::net::TcpStream::connect_timeout(&to, Duration::from_secs(5)).expect("connect from the namespace")
        })
        .join()
        .unwrap()
    }

    /// One HTTP request from the peer: the status code.
    fn http(&self, to: SocketAddr, request: &str) -> u16 {
        let mut s = self.connect(to);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
    }
}

impl Drop for PeerNamespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it ours.
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

#[test]
fn a_real_non_loopback_peer_cannot_reach_the_password_pages_over_plain_http_by_any_target() {
    let Some(peer) = PeerNamespace::create("network::non_loopback_peer") else { return };
    let listen = format!("{}:0", peer.host_addr);
    let server = TestServer::start_with(&["--http-listen", &listen, "--registration", "open"]);
    let http = server.http.unwrap();
    let get = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: {http}\r\n\r\n");
    let form = "email=eve%40example.com&password=secret-1&password2=secret-1";
    let post = |target: &str| {
        format!(
            "POST {target} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
    };
    // The peer reaches the server: the nexus (no password) answers.
    assert_eq!(peer.http(http, &get("/rdr/pprdr.asp")), 200);
    for target in [
        "/signup",
        "/signup#x",
        "/signup?x=1",
        "http://127.0.0.1/signup",
        "http://localhost/admin/login",
        "//signup",
        "/./signup",
        "/admin/../signup",
        "/%73ignup",
    ] {
        let status = peer.http(http, &post(target));
        assert!(status == 403 || status == 400, "{target} from a non-loopback peer: {status}");
        let status = peer.http(http, &get(&target.replace("signup", "login2.srf")));
        assert!(status == 403 || status == 400, "{target} (login) from a non-loopback peer: {status}");
    }
    // Nothing was created.
    let list = msnd().arg("--data-dir").arg(server.data_dir()).args(["user", "list"]).output().unwrap();
    assert!(list.status.success());
    assert!(!String::from_utf8_lossy(&list.stdout).contains("eve"), "an account was made from the network");
}

/// Silent connections from 127.0.0.2 (a stalled TLS handshake each).
async fn silent_from(addr: SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        held.push(socket.connect(addr).await.unwrap());
    }
    held
}

/// How many of `held` the server has closed: a refused connection is
/// closed at once, a held one stays silent.
async fn closed(held: &mut [tokio::net::TcpStream]) -> usize {
    use tokio::io::AsyncReadExt;
    let reads = held.iter_mut().map(|s| async move {
        let mut b = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await, Ok(Ok(0)))
    });
    futures::future::join_all(reads).await.into_iter().filter(|c| *c).count()
}

#[tokio::test]
async fn one_address_stalling_tls_handshakes_gets_its_share_and_others_are_served() {
    let server = TestServer::start_with(&[
        "--https-listen",
        "127.0.0.1:0",
        "--legacy-https-listen",
        "127.0.0.1:0",
        "--max-connections-per-address",
        "20",
    ]);
    users(&server, &["alice"]);
    let mut https = silent_from(server.https.unwrap(), 15).await;
    let mut legacy = silent_from(server.legacy_https.unwrap(), 15).await;
    // 30 from one address, 20 allowed: the last 10 are refused, and closed.
    let refused = || async {
        let status = http_get(server.http.unwrap(), "/status.json", &[]).await;
        serde_json::from_slice::<serde_json::Value>(&status.body).unwrap()["refused_connections"].as_u64().unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while refused().await < 10 {
        assert!(tokio::time::Instant::now() < deadline, "the flood was not refused");
        tokio::task::yield_now().await;
    }
    assert_eq!(closed(&mut https).await + closed(&mut legacy).await, 10);
    // Someone else signs in over HTTPS and MSNP meanwhile.
    let nexus = https_get(&server, "/rdr/pprdr.asp", &[]).await;
    assert_eq!(nexus.status, 200);
    let mut alice = login(&server, "alice@example.com", "pw-alice").await;
    alice.sync_point().await;
    assert_eq!(refused().await, 10);
}

#[test]
fn the_legacy_listener_refuses_renegotiation() {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        backend::testing::skip("network::legacy_renegotiation", "the openssl command is not installed");
        return;
    }
    let server = TestServer::start_with(&["--legacy-https-listen", "127.0.0.1:0"]);
    let mut s_client = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &server.legacy_https.unwrap().to_string(), "-tls1_2"])
        .args(["-cipher", "AES128-SHA:@SECLEVEL=0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // `R` asks s_client to renegotiate; then it waits for the server.
    let mut stdin = s_client.stdin.take().unwrap();
    stdin.write_all(b"R\n").unwrap();
    let out = s_client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    drop(stdin);
    assert!(text.contains("RENEGOTIATING"), "{text}");
    assert!(text.contains("no renegotiation"), "the server renegotiated: {text}");
}

#[tokio::test]
async fn ipv6_listeners_serve_passport_sign_in_and_a_chat() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        backend::testing::skip("network::ipv6", "this machine has no IPv6 loopback");
        return;
    }
    let server = TestServer::start_with(&["--listen", "[::1]:0", "--http-listen", "[::1]:0"]);
    users(&server, &["alice", "bob"]);
    assert!(server.dispatch.is_ipv6());
    let mut alice = as_dialect(&server, 11, "alice").await;
    let mut bob = as_dialect(&server, 11, "bob").await;
    for c in [&mut alice, &mut bob] {
        c.send("CHG 1 NLN 0").await;
        c.expect("CHG 1 NLN 0").await;
        // The challenge that follows is not this test's business.
        c.sync_point_skipping().await;
    }
    // Referrals name the IPv6 address in brackets.
    let mut sb = open_session(&server, &mut alice, "alice@example.com", "Alice").await;
    let (mut bob_sb, _) = invite(&mut sb, 2, &mut bob, "bob@example.com").await;
    sb.expect_prefix("JOI bob@example.com ").await;
    sb.send_payload("MSG 3 A", &text_message("over v6")).await;
    sb.expect("ACK 3").await;
    let m = bob_sb.expect_prefix("MSG alice@example.com ").await;
    assert!(String::from_utf8(m.payload.unwrap()).unwrap().ends_with("over v6"));
}
