//! Test harness: starts the real `msnd` binary on loopback with a temporary
//! data dir, and speaks MSNP to it over real TCP.
//!
//! Over 700 lines on purpose: one harness every test file includes (the server
//! process, the raw MSNP client, the HTTP and SOAP helpers); a test file
//! includes it whole either way.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod jabber;
pub mod msnp21;
pub mod web_page;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use md5::{Digest, Md5};
use msnp::reply::PresenceLine;
use msnp::request::{NsRequest, SbRequest, SyncVersion, UsrStep};
use msnp::signin::{Action, SignIn};
use msnp::{Decoder, Dialect, Direction, Frame, Limits, ListKind, OnlineState, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// What the test clients' `CVR` says before the account.
pub const CLIENT_VERSION: [&str; 7] = ["0x0409", "winnt", "5.1", "i386", "MSNMSGR", "7.0.0813", "msmsgs"];

/// How long a test waits for a line it expects.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running `msnd serve`.
pub struct TestServer {
    child: Option<Child>,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub dispatch: SocketAddr,
    pub ns: SocketAddr,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub legacy_https: Option<SocketAddr>,
    pub msnp_tls: Option<SocketAddr>,
    pub xmpp: Option<SocketAddr>,
    extra: Vec<String>,
}

pub fn msnd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_msnd"))
}

impl TestServer {
    /// Starts a server on a fresh data dir.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server on a fresh data dir with extra `serve` arguments.
    pub fn start_with(extra: &[&str]) -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().to_path_buf();
        let mut s = Self::spawn(&dir, extra.iter().map(|s| s.to_string()).collect());
        s._temp = Some(temp);
        s
    }

    /// Stands for a server the caller started and owns (to use the helpers).
    pub fn attach(dir: &Path, dispatch: SocketAddr, ns: SocketAddr, http: SocketAddr) -> TestServer {
        TestServer {
            child: None,
            dir: dir.to_path_buf(),
            _temp: None,
            dispatch,
            ns,
            http: Some(http),
            https: None,
            legacy_https: None,
            msnp_tls: None,
            xmpp: None,
            extra: Vec::new(),
        }
    }

    /// Starts a server on a data dir the caller owns (cluster nodes share a
    /// server key, copied into each one's dir).
    pub fn start_in(dir: &Path, extra: &[&str]) -> TestServer {
        Self::spawn(dir, extra.iter().map(|s| s.to_string()).collect())
    }

    fn spawn(dir: &Path, extra: Vec<String>) -> TestServer {
        // Loopback listeners on free ports, unless the test names its own.
        let mut defaults = Vec::new();
        for flag in ["--listen", "--http-listen"] {
            if !extra.iter().any(|a| a == flag) {
                defaults.extend([flag, "127.0.0.1:0"]);
            }
        }
        let mut child = msnd()
            .arg("--data-dir")
            .arg(dir)
            .arg("serve")
            .args(&defaults)
            .args(&extra)
            .env("MSND_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("msnd starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut dispatch, mut ns, mut http, mut https, mut legacy_https, mut msnp_tls) =
            (None, None, None, None, None, None);
        let mut xmpp = None;
        for line in lines.by_ref() {
            let line = line.expect("msnd stdout");
            let addr = || line.rsplit(' ').next().unwrap().parse::<SocketAddr>().unwrap();
            if line.starts_with("msnd: dispatch") {
                dispatch = Some(addr());
            } else if line.starts_with("msnd: notification") {
                ns = Some(addr());
            } else if line.starts_with("msnd: msnp-tls") {
                msnp_tls = Some(addr());
            } else if line.starts_with("msnd: xmpp") {
                xmpp = Some(addr());
            } else if line.starts_with("msnd: legacy-https") {
                legacy_https = Some(addr());
            } else if line.starts_with("msnd: https") {
                https = Some(addr());
            } else if line.starts_with("msnd: http") {
                http = Some(addr());
            } else if line == "msnd: ready" {
                break;
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TestServer {
            child: Some(child),
            dir: dir.to_path_buf(),
            _temp: None,
            dispatch: dispatch.expect("msnd printed its dispatch address"),
            ns: ns.expect("msnd printed its notification address"),
            http,
            https,
            legacy_https,
            msnp_tls,
            xmpp,
            extra,
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Creates an account with `msnd user add`.
    pub fn add_user(&self, email: &str, password: &str) {
        self.add_user_named(email, password, None)
    }

    pub fn add_user_named(&self, email: &str, password: &str, name: Option<&str>) {
        let mut cmd = msnd();
        cmd.arg("--data-dir").arg(&self.dir).args(["user", "add", email, "--password-stdin"]);
        if let Some(n) = name {
            cmd.args(["--name", n]);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::null()).env("MSND_LOG", "warn").spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        assert!(child.wait().unwrap().success(), "user add {email} failed");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.take().unwrap().wait().unwrap()
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts the server again on the same data dir (new ports).
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.kill9();
        }
        let temp = self._temp.take();
        let mut s = Self::spawn(&self.dir.clone(), self.extra.clone());
        s._temp = temp;
        std::mem::swap(self, &mut s);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One received command.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    pub payload: Option<Vec<u8>>,
}

impl Line {
    pub fn args(&self) -> Vec<&str> {
        self.text.split(' ').collect()
    }
}

/// What a test client's bytes travel over: a TCP socket, or the pipe of
/// an HTTP gateway session (the client library's gateway transport).
pub enum Transport {
    Tcp(TcpStream),
    Gateway(tokio::io::DuplexStream),
}

impl Transport {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Tcp(s) => s.write_all(bytes).await,
            Transport::Gateway(s) => s.write_all(bytes).await,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.read(buf).await,
            Transport::Gateway(s) => s.read(buf).await,
        }
    }
}

/// A raw MSNP client connection.
pub struct Client {
    stream: Transport,
    buf: BytesMut,
    decoder: Decoder,
    /// The login profile message, once signed in.
    pub profile: Option<String>,
    /// The friendly name `USR ... OK` gave, once signed in (URL-encoded).
    pub friendly: Option<String>,
    /// The Passport ticket this connection signed in with (MSNP8+).
    pub ticket: Option<String>,
    /// The address book's ticket from RST (single sign-on, MSNP15+).
    pub contacts_ticket: Option<String>,
    /// The dialect typed requests and replies are spoken in.
    pub dialect: Dialect,
    /// A switchboard connection (its `USR` answer has that shape).
    pub switchboard: bool,
    /// The HTTP gateway this connection goes through, if any; connections
    /// it leads to (referrals, switchboards) go the same way.
    pub gateway: Option<String>,
}

impl Client {
    /// The `MSPAuth` token of the login profile: the web-service credential.
    pub fn mspauth(&self) -> String {
        let profile = self.profile.as_deref().expect("signed in");
        let line = profile.lines().find(|l| l.starts_with("MSPAuth: ")).expect("MSPAuth in the profile");
        line.trim_start_matches("MSPAuth: ").trim_end_matches("$$").to_string()
    }
}

pub fn md5_hex(challenge: &str, password: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(password.as_bytes());
    hex::encode(h.finalize())
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        Client::over(Transport::Tcp(stream))
    }

    /// A connection through the server's HTTP gateway to a server of `kind`
    /// (`address` is what the client would have connected to).
    pub fn through_gateway(server: &TestServer, address: &str, kind: client::conn::ServerKind) -> Client {
        let url = format!("http://{}", server.http.expect("an HTTP listener"));
        let mut c = Client::over(Transport::Gateway(client::gateway::open(&url, address, kind, None)));
        c.gateway = Some(url);
        c
    }

    /// A connection to `address`, a server of `kind`, made the way this one
    /// was: directly, or through the same gateway.
    pub async fn next_to(&self, address: &str, kind: client::conn::ServerKind) -> Client {
        let mut c = match &self.gateway {
            Some(url) => {
                let mut c = Client::over(Transport::Gateway(client::gateway::open(url, address, kind, None)));
                c.gateway = Some(url.clone());
                c
            }
            None => Client::connect_str(address).await,
        };
        c.dialect = self.dialect;
        c.switchboard = kind == client::conn::ServerKind::Switchboard;
        c
    }

    fn over(stream: Transport) -> Client {
        Client {
            stream,
            buf: BytesMut::new(),
            decoder: Decoder::new(Direction::ToClient, Limits { max_line: 1 << 16, max_payload: 1 << 20 }),
            profile: None,
            friendly: None,
            ticket: None,
            contacts_ticket: None,
            dialect: Dialect::Msnp2,
            switchboard: false,
            gateway: None,
        }
    }

    /// A connection to a switchboard, speaking `dialect`.
    pub async fn connect_switchboard(addr: &str, dialect: Dialect) -> Client {
        let mut c = Self::connect_str(addr).await;
        (c.dialect, c.switchboard) = (dialect, true);
        c
    }

    /// Sends a typed request in the connection's dialect.
    pub async fn request(&mut self, request: &NsRequest) {
        let frame = request.to_frame(self.dialect);
        self.send_frame(&frame).await;
    }

    /// Sends a typed request to a switchboard.
    pub async fn sb_request(&mut self, request: &SbRequest) {
        self.send_frame(&request.to_frame()).await;
    }

    /// The next reply, read in the connection's dialect.
    pub async fn reply(&mut self) -> Reply {
        let frame = self.recv_frame().await;
        self.read(&frame)
    }

    fn read(&self, frame: &Frame) -> Reply {
        let reply = if self.switchboard {
            Reply::parse_from_switchboard(frame, self.dialect)
        } else {
            Reply::parse(frame, self.dialect)
        };
        reply.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Receives and checks one reply.
    pub async fn expect_reply(&mut self, expected: Reply) {
        assert_eq!(self.reply().await, expected);
    }

    pub async fn connect_str(addr: &str) -> Client {
        Self::connect(addr.parse().expect("host:port")).await
    }

    /// Ends the connection with a TCP reset, as the kernel ends that of a
    /// client killed with data still unread.
    pub fn reset(self) {
        let Transport::Tcp(stream) = &self.stream else { panic!("only a TCP connection can be reset") };
        socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
        drop(self);
    }

    /// Sends a frame (a typed request's `to_frame`).
    pub async fn send_frame(&mut self, frame: &Frame) {
        self.send_raw(&frame.to_bytes()).await;
    }

    /// The next frame; panics on timeout or close.
    pub async fn recv_frame(&mut self) -> Frame {
        timeout(WAIT, self.next_frame()).await.expect("a line in time").expect("connection open")
    }

    /// Sends one command line (CRLF added).
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends a payload command: `line` gets the payload length appended.
    pub async fn send_payload(&mut self, line: &str, payload: &[u8]) {
        let mut bytes = format!("{line} {}\r\n", payload.len()).into_bytes();
        bytes.extend_from_slice(payload);
        self.send_raw(&bytes).await;
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        // A server that already closed may reset the connection; tests check
        // for the close itself.
        let _ = self.stream.write_all(bytes).await;
    }

    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).expect("server framing") {
                return Some(f);
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next command, or `None` once the server has closed (or gone
    /// quiet past the usual wait): for tasks that outlive a killed server.
    pub async fn next_line(&mut self) -> Option<Line> {
        let f = timeout(WAIT, self.next_frame()).await.ok().flatten()?;
        Some(Line { text: f.line, payload: f.payload.map(|p| p.to_vec()) })
    }

    /// The next command from the server; panics on timeout or close.
    pub async fn recv(&mut self) -> Line {
        let f = timeout(WAIT, self.next_frame()).await.expect("a line in time").expect("connection open");
        Line { text: f.line, payload: f.payload.map(|p| p.to_vec()) }
    }

    /// The next command if one arrives within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Line> {
        match timeout(wait, self.next_frame()).await {
            Ok(Some(f)) => Some(Line { text: f.line, payload: f.payload.map(|p| p.to_vec()) }),
            Ok(None) => panic!("connection closed"),
            Err(_) => None,
        }
    }

    /// Receives and checks several lines, in order.
    pub async fn expect_all(&mut self, lines: &[&str]) {
        for line in lines {
            self.expect(line).await;
        }
    }

    /// Receives and checks one line.
    pub async fn expect(&mut self, expected: &str) -> Line {
        let l = self.recv().await;
        assert_eq!(l.text, expected);
        l
    }

    /// Receives a line and checks that it starts with `prefix`.
    pub async fn expect_prefix(&mut self, prefix: &str) -> Line {
        let l = self.recv().await;
        assert!(l.text.starts_with(prefix), "expected `{prefix}...`, got `{}`", l.text);
        l
    }

    /// Checks that the server closes the connection (after any lines it sends first, returned).
    pub async fn expect_closed(&mut self) -> Vec<Line> {
        let mut seen = Vec::new();
        loop {
            match timeout(WAIT, self.next_frame()).await.expect("close in time") {
                Some(f) => seen.push(Line { text: f.line, payload: f.payload.map(|p| p.to_vec()) }),
                None => return seen,
            }
        }
    }

    /// Checks that nothing arrives for a while (used sparingly: only where
    /// the protocol says the server stays silent).
    pub async fn expect_silence(&mut self) {
        let r = timeout(Duration::from_millis(300), self.next_frame()).await;
        if let Ok(Some(f)) = r {
            panic!("expected silence, got `{}`", f.line);
        }
    }

    /// A round trip that proves every earlier reply has arrived: PNG → QNG.
    pub async fn sync_point(&mut self) {
        self.request(&NsRequest::Png).await;
        assert!(matches!(self.reply().await, Reply::Qng { .. }));
    }

    /// Pings and skips whatever arrives before the answer (the replies to
    /// earlier commands whose content the test does not check).
    pub async fn sync_point_skipping(&mut self) -> Vec<Line> {
        self.request(&NsRequest::Png).await;
        let mut skipped = Vec::new();
        loop {
            let frame = self.recv_frame().await;
            if let Ok(Reply::Qng { .. }) = Reply::parse(&frame, self.dialect) {
                return skipped;
            }
            skipped.push(Line { text: frame.line, payload: frame.payload.map(|p| p.to_vec()) });
        }
    }
}

/// Logs in with MSNP2 through the dispatch server's `XFR NS` referral;
/// returns the notification connection after `USR ... OK` and the profile.
pub async fn login(server: &TestServer, email: &str, password: &str) -> Client {
    login_as_dialect(server, 2, email, password).await
}

/// Logs in, syncs from an empty cache and goes online (`NLN`), consuming
/// everything those commands return. ILN lines are returned.
pub async fn online(server: &TestServer, email: &str, password: &str) -> (Client, Vec<String>) {
    let mut c = login(server, email, password).await;
    c.request(&NsRequest::Syn { trid: 100, version: SyncVersion::Serial(0) }).await;
    // An empty cache always gets the whole batch, a fresh account's too.
    assert!(matches!(c.reply().await, Reply::Syn { trid: 100, .. }));
    assert!(matches!(c.reply().await, Reply::Gtc { trid: 100, .. }));
    assert!(matches!(c.reply().await, Reply::Blp { trid: 100, .. }));
    for list in [ListKind::Forward, ListKind::Allow, ListKind::Block, ListKind::Reverse] {
        loop {
            match c.reply().await {
                Reply::Lst { trid: 100, list: l, index, total, .. } if l == list => {
                    if index == total {
                        break;
                    }
                }
                other => panic!("expected the {list} list, got {other:?}"),
            }
        }
    }
    let online = OnlineState::Online;
    c.request(&NsRequest::Chg { trid: 101, state: online, client_id: None, extended_caps: 0, msn_object: None }).await;
    c.expect_reply(Reply::Chg { trid: 101, state: online, client_id: None, extended_caps: 0, msn_object: None }).await;
    c.request(&NsRequest::Png).await;
    let mut ilns = Vec::new();
    loop {
        let frame = c.recv_frame().await;
        match c.read(&frame) {
            Reply::Qng { .. } => break,
            Reply::Iln { trid: 101, .. } => ilns.push(frame.line),
            other => panic!("unexpected {other:?}"),
        }
    }
    (c, ilns)
}

/// Creates accounts `names[i]@example.com` with password `pw-<name>` and
/// friendly name = capitalised name.
pub fn users(server: &TestServer, names: &[&str]) {
    // One `msnd user import` hashes the passwords in parallel: much faster
    // than an `msnd user add` per account.
    let input: String = names.iter().map(|n| format!("{n}@example.com\tpw-{n}\t{}\n", capitalise(n))).collect();
    let (ok, _, err) = import(server, &input);
    assert!(ok, "user import failed: {err}");
}

/// Runs `msnd user import` on the server's data dir with `input`.
pub fn import(server: &TestServer, input: &str) -> (bool, String, String) {
    let mut child = msnd()
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Alice and Bob online (MSNP2), Bob on Alice's forward list and Alice
/// already told he is online. Returns their notification connections.
pub async fn alice_watching_bob(server: &TestServer) -> (Client, Client) {
    users(server, &["alice", "bob"]);
    let (mut a, _) = online_as(server, "alice").await;
    let bob = "bob@example.com".to_string();
    let add =
        NsRequest::Add { trid: 1, list: ListKind::Forward, handle: bob.clone(), friendly: "Bob".into(), group: None };
    a.request(&add).await;
    assert!(matches!(a.reply().await, Reply::Add { trid: 1, list: ListKind::Forward, .. }));
    let (b, _) = online_as(server, "bob").await;
    let presence = PresenceLine {
        state: OnlineState::Online,
        handle: bob,
        friendly: "Bob".into(),
        client_id: 0,
        extended_caps: 0,
        msn_object: None,
    };
    a.expect_reply(Reply::Nln { presence }).await;
    (a, b)
}

/// Alice and Bob online (MSNP2) and in a switchboard session Alice opened
/// (Bob joined with `ANS`, Alice saw his `JOI`). Returns both notification
/// connections, then both switchboard connections.
pub async fn alice_and_bob_in_a_session(server: &TestServer) -> (Client, Client, Client, Client) {
    users(server, &["alice", "bob"]);
    let (mut a_ns, _) = online_as(server, "alice").await;
    let (mut b_ns, _) = online_as(server, "bob").await;
    let mut a = open_session(server, &mut a_ns, "alice@example.com", "Alice").await;
    let (b, _) = invite(&mut a, 2, &mut b_ns, "bob@example.com").await;
    a.expect_reply(Reply::Joi {
        handle: "bob@example.com".into(),
        friendly: "Bob".into(),
        client_id: 0,
        extended_caps: 0,
    })
    .await;
    (a_ns, b_ns, a, b)
}

pub fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// `online` for a user created by [`users`].
pub async fn online_as(server: &TestServer, name: &str) -> (Client, Vec<String>) {
    online(server, &format!("{name}@example.com"), &format!("pw-{name}")).await
}

/// Waits for an `RNG` on `ns` (skipping other lines) and answers it as
/// `handle`: the switchboard connection, its `ANS` sent.
pub async fn answer_ring(ns: &mut Client, handle: &str) -> Client {
    let ring = cluster::until(ns, "RNG ").await;
    let r = ring.args();
    let mut sb = Client::connect_str(r[2]).await;
    sb.send(&format!("ANS 1 {handle} {} {}", r[4], r[1])).await;
    sb
}

/// A plain-text instant message payload.
pub fn text_message(body: &str) -> Vec<u8> {
    format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{body}").into_bytes()
}

/// Opens a switchboard session with `XFR SB` + `USR`.
pub async fn open_session(server: &TestServer, ns: &mut Client, handle: &str, friendly: &str) -> Client {
    ns.request(&NsRequest::XfrSb { trid: 50 }).await;
    let answer = ns.reply().await;
    let Reply::XfrSb { trid: 50, address, cookie } = answer else { panic!("XFR SB answered with {answer:?}") };
    assert_eq!(address, server.dispatch.to_string());
    let mut sb = ns.next_to(&address, client::conn::ServerKind::Switchboard).await;
    sb.sb_request(&SbRequest::Usr { trid: 1, handle: handle.into(), cookie }).await;
    sb.expect_reply(Reply::SbUsrOk { trid: 1, handle: handle.into(), friendly: friendly.into() }).await;
    sb
}

/// `CAL` from `sb`; the invitee's notification connection gets `RNG`; the
/// invitee answers; returns the invitee's switchboard connection and the IRO lines.
pub async fn invite(sb: &mut Client, trid: u32, invitee_ns: &mut Client, invitee: &str) -> (Client, Vec<String>) {
    sb.sb_request(&SbRequest::Cal { trid, handle: invitee.into() }).await;
    let Reply::CalRinging { session_id, .. } = sb.reply().await else { panic!("CAL answered otherwise") };
    let Reply::Rng { session_id: rung, address, cookie, .. } = invitee_ns.reply().await else {
        panic!("the invitee was not rung")
    };
    assert_eq!(rung, session_id);
    let mut joined = invitee_ns.next_to(&address, client::conn::ServerKind::Switchboard).await;
    joined.sb_request(&SbRequest::Ans { trid: 7, handle: invitee.into(), cookie, session_id }).await;
    let mut iro = Vec::new();
    loop {
        let frame = joined.recv_frame().await;
        match joined.read(&frame) {
            Reply::AnsOk { trid: 7 } => break,
            Reply::Iro { trid: 7, .. } => iro.push(frame.line),
            other => panic!("unexpected {other:?}"),
        }
    }
    (joined, iro)
}

/// Sends `VER`, `USR MD5 I` and `USR MD5 S` straight to `addr` (no dispatch
/// step, no `INF`: the server must not need them) and returns the
/// connection and the server's answer to the `USR S` (`USR 3 OK ...` or an
/// error), as a line.
pub async fn direct_login(addr: SocketAddr, handle: &str, password: &str) -> (Client, String) {
    let mut c = Client::connect(addr).await;
    c.request(&NsRequest::Ver { trid: 1, dialects: vec!["MSNP2".into()] }).await;
    c.expect_reply(Reply::Ver { trid: 1, dialect: Some(Dialect::Msnp2) }).await;
    c.request(&NsRequest::Usr { trid: 2, step: UsrStep::Md5Initiate { handle: handle.into() } }).await;
    let Reply::UsrChallenge { challenge, .. } = c.reply().await else { panic!("no MD5 challenge") };
    let response = md5_hex(&challenge, password);
    c.request(&NsRequest::Usr { trid: 3, step: UsrStep::Md5Response { response } }).await;
    let answer = c.recv().await.text;
    (c, answer)
}

/// An HTTP answer: status, headers (names as sent), body.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// A header by exact (case-sensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends raw request bytes over any stream and reads the answer to the end.
pub async fn http_exchange<S>(mut stream: S, request: &[u8]) -> HttpAnswer
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    let _ = timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("answer in time");
    // The body as bytes: a picture is not text.
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete answer");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(": ")).map(|(n, v)| (n.to_string(), v.to_string())).collect();
    HttpAnswer { status, headers, body: raw[end + 4..].to_vec() }
}

/// The server's `/status.json`.
pub async fn status(server: &TestServer) -> serde_json::Value {
    let answer = http_get(server.http.unwrap(), "/status.json", &[]).await;
    serde_json::from_slice(&answer.body).unwrap()
}

/// A GET over plain HTTP with extra header lines.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let stream = TcpStream::connect(addr).await.unwrap();
    http_exchange(stream, request_bytes(path, headers).as_bytes()).await
}

fn request_bytes(path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// A GET over HTTPS, trusting only the CA the server generated.
pub async fn https_get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let stream = TcpStream::connect(server.https.expect("https listener")).await.unwrap();
    let tls = tls_connector(server).connect("localhost".try_into().unwrap(), stream).await.expect("TLS handshake");
    http_exchange(tls, request_bytes(path, headers).as_bytes()).await
}

pub fn tls_connector(server: &TestServer) -> tokio_rustls::TlsConnector {
    let ca = std::fs::read(server.data_dir().join("tls/ca.pem")).expect("generated CA");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// The Passport 1.4 Authorization header a client sends.
pub fn passport_authorization(email: &str, password: &str, challenge: &str) -> String {
    let enc = |s: &str| s.replace('%', "%25").replace('@', "%40").replace(',', "%2C");
    format!(
        "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in={},pwd={},{challenge}",
        enc(email),
        enc(password)
    )
}

/// Fetches a ticket the way a client does: nexus, then the login URL it names.
pub async fn passport_ticket(server: &TestServer, email: &str, password: &str, challenge: &str) -> Result<String, u16> {
    // Named as a client names the server it reached: `localhost`, or the
    // address itself where localhost is not that address's family.
    let http = server.http.unwrap();
    let host = if http.is_ipv6() { http.to_string() } else { "localhost".to_string() };
    let request = format!("GET /rdr/pprdr.asp HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let nexus = http_exchange(TcpStream::connect(http).await.unwrap(), request.as_bytes()).await;
    let urls = nexus.header("PassportURLs").expect("PassportURLs header");
    // As gtmess reads it: the value after `DALogin=` up to the next comma.
    let url = urls.split("DALogin=").nth(1).and_then(|v| v.split(',').next()).expect("a DALogin field");
    let (authority, path) = url.strip_prefix("http://").expect("plain http login url").split_once('/').unwrap();
    // The first address of the login host's family (localhost has both).
    let v6 = server.http.is_some_and(|h| h.is_ipv6());
    let addr =
        tokio::net::lookup_host(authority).await.unwrap().find(|a| a.is_ipv6() == v6).expect("the login host resolves");
    let auth = passport_authorization(email, password, challenge);
    let answer = http_get(addr, &format!("/{path}"), &[("Authorization", &auth)]).await;
    if answer.status != 200 {
        return Err(answer.status);
    }
    let info = answer.header("Authentication-Info").expect("Authentication-Info");
    let ticket = info.split("from-PP='").nth(1).unwrap().trim_end_matches('\'');
    Ok(ticket.to_string())
}

/// Asks the RST service for the messenger token (under `policy`) and the
/// address book's, as an MSNP15 client does.
pub async fn sso_tokens(
    server: &TestServer,
    email: &str,
    password: &str,
    policy: &str,
) -> Result<Vec<msnp::passport::IssuedToken>, msnp::passport::RstFailure> {
    let services = [(msnp::sso::MESSENGER_SERVICE, policy), ("contacts.msn.com", "MBI")];
    let body = msnp::passport::rst_request(email, password, &services);
    let answer = soap_post(server, "/RST.srf", "", &body).await;
    msnp::passport::parse_rst_response(&String::from_utf8_lossy(&answer.body))
}

/// `name@example.com` (password `pw-name`) signed in with `MSNPn`.
pub async fn as_dialect(server: &TestServer, dialect: u8, name: &str) -> Client {
    login_as_dialect(server, dialect, &format!("{name}@example.com"), &format!("pw-{name}")).await
}

/// `name@example.com` signed in with `MSNPn` (13+) as Windows Live
/// Messenger does it: its initial list shown (`ADL` of `<ml l="1">`), and
/// the address book's ticket.
pub async fn with_address_book(server: &TestServer, dialect: u8, name: &str) -> (Client, String) {
    let mut c = as_dialect(server, dialect, name).await;
    c.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    c.expect("ADL 5 OK").await;
    let ticket = c.contacts_ticket.clone().expect("an address book ticket");
    (c, ticket)
}

/// Logs in with `MSNPn` through the dispatch referral with `msnp::signin`,
/// the sign-in the client and the load tool use; returns the notification
/// connection after the profile message. (The shapes of each step are
/// checked by `dialects.rs` and the golden transcripts.)
pub async fn login_as_dialect(server: &TestServer, dialect: u8, email: &str, password: &str) -> Client {
    let machine = msnp::endpoint::MachineGuid::from_random(rand::random());
    login_from_machine(server, dialect, email, password, machine).await
}

/// [`login_as_dialect`] from a named machine: MSNP16+ sign in as that
/// endpoint (older dialects have none). The empty `UBX` that follows an
/// MSNP16+ sign-in is read.
pub async fn login_from_machine(
    server: &TestServer,
    dialect: u8,
    email: &str,
    password: &str,
    machine: msnp::endpoint::MachineGuid,
) -> Client {
    try_login_from_machine(server, dialect, email, password, machine).await.expect("signing in")
}

/// [`login_from_machine`], or what the server refused it with.
pub async fn try_login_from_machine(
    server: &TestServer,
    dialect: u8,
    email: &str,
    password: &str,
    machine: msnp::endpoint::MachineGuid,
) -> Result<Client, msnp::signin::SignInError> {
    let first = Client::connect(server.dispatch).await;
    sign_in_on(server, first, dialect, email, password, machine).await
}

/// `name@example.com` signed in with `MSNPn` through the HTTP gateway.
pub async fn through_gateway_as(server: &TestServer, dialect: u8, name: &str) -> Client {
    let first = Client::through_gateway(server, &server.dispatch.to_string(), client::conn::ServerKind::Notification);
    let machine = msnp::endpoint::MachineGuid::from_random(rand::random());
    let (email, password) = (format!("{name}@example.com"), format!("pw-{name}"));
    sign_in_on(server, first, dialect, &email, &password, machine).await.expect("signing in through the gateway")
}

/// The sign-in of [`try_login_from_machine`] on a connection already made.
pub async fn sign_in_on(
    server: &TestServer,
    mut c: Client,
    dialect: u8,
    email: &str,
    password: &str,
    machine: msnp::endpoint::MachineGuid,
) -> Result<Client, msnp::signin::SignInError> {
    let d = Dialect::ALL.into_iter().find(|d| d.number() == dialect).expect("a dialect msnp knows");
    let mut signing = SignIn::new(d, email, password, &CLIENT_VERSION).on_machine(machine);
    let mut ticket = None;
    let mut contacts_ticket = None;
    let mut action = signing.start();
    let signed = loop {
        action = match action {
            Action::Send(request) => {
                c.send_frame(&request.to_frame(d)).await;
                signing.receive(&c.recv_frame().await)?
            }
            Action::Receive => signing.receive(&c.recv_frame().await)?,
            Action::Connect(address) => {
                // The client hangs up on the dispatch server, as real ones do
                // (notification.rs checks what the server does otherwise).
                c = c.next_to(&address, client::conn::ServerKind::Notification).await;
                signing.connected()
            }
            Action::FetchTicket(challenge) => {
                let t = passport_ticket(server, email, password, &challenge).await.expect("a ticket");
                ticket = Some(t.clone());
                signing.ticket(t)
            }
            Action::FetchSsoToken { policy } => {
                let tokens = sso_tokens(server, email, password, &policy).await.expect("RST tokens");
                let messenger = tokens.iter().find(|t| t.id == "Compact1").expect("the messenger token");
                contacts_ticket = tokens.iter().find(|t| t.id == "Compact2").map(|t| t.ticket.clone());
                ticket = Some(messenger.ticket.clone());
                let secret = messenger.secret.clone().expect("a session key");
                signing.sso_token(messenger.ticket.clone(), &secret, [7; 8])
            }
            Action::Done(signed) => break signed,
        };
    };
    let profile = String::from_utf8(signed.profile.to_vec()).expect("a UTF-8 profile");
    assert!(profile.contains("Content-Type: text/x-msmsgsprofile"), "{profile}");
    c.profile = Some(profile);
    c.friendly = signed.friendly.map(|f| msnp::urlencode::encode(&f));
    c.ticket = ticket;
    c.contacts_ticket = contacts_ticket;
    c.dialect = d;
    if d.shows_endpoints_in_ubx() {
        let own = c.expect_prefix("UBX ").await;
        assert_eq!(own.payload.as_deref().map(<[u8]>::len), Some(0), "{}", own.text);
    }
    Ok(c)
}

/// The product id the tests' OIM requests name (MSN 7.5's, whose key the
/// lock key is computed with).
const OIM_PRODUCT: &str = "PROD0090YUAUV{2B";

/// An OIM store request as `from`, with the ticket token `auth`.
fn oim_store_request(auth: &str, from: &str, to: &str, text: &str, lock_key: &str) -> String {
    msnp::oim::StoreRequest {
        from: from.to_string(),
        from_friendly: Some(msnp::oim::encoded_word("A")),
        to: to.to_string(),
        ticket: format!("t={auth}&p=x"),
        app_id: OIM_PRODUCT.to_string(),
        lock_key: lock_key.to_string(),
        sequence: 1,
        content: String::from_utf8(text_message(text)).unwrap(),
    }
    .to_xml()
}

/// The lock key an OIM fault's challenge asks for, if it asks.
fn lock_key_asked(answer: &HttpAnswer) -> Option<String> {
    let (_, challenge) = msnp::oim::parse_store_fault(&String::from_utf8_lossy(&answer.body))?;
    msnp::oim::lock_key(&challenge?, OIM_PRODUCT)
}

/// Leaves an offline message through the OIM web service, as `from` (who
/// must be signed in on `sender`, a connection with an MSPAuth token), as a
/// client does: the first attempt is answered with the lock-key challenge,
/// the second carries the key.
pub async fn store_offline(server: &TestServer, sender: &Client, from: &str, to: &str, text: &str) -> HttpAnswer {
    let auth = sender.mspauth();
    let body = oim_store_request(&auth, from, to, text, "");
    let first = soap_post(server, "/OimWS/oim.asmx", msnp::oim::STORE2_ACTION, &body).await;
    match lock_key_asked(&first) {
        Some(key) => {
            let body = oim_store_request(&auth, from, to, text, &key);
            soap_post(server, "/OimWS/oim.asmx", msnp::oim::STORE2_ACTION, &body).await
        }
        None => first,
    }
}

/// The same, for a caller that expects the server may be gone: the HTTP
/// status, or `None` if there was no answer.
pub async fn try_store_offline(http: SocketAddr, auth: &str, from: &str, to: &str, text: &str) -> Option<u16> {
    let post = |body: String| async move {
        let mut stream = TcpStream::connect(http).await.ok()?;
        stream.write_all(soap_request("/OimWS/oim.asmx", msnp::oim::STORE2_ACTION, &body).as_bytes()).await.ok()?;
        let mut raw = Vec::new();
        timeout(WAIT, stream.read_to_end(&mut raw)).await.ok()?.ok()?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default();
        Some(HttpAnswer { status, headers: Vec::new(), body })
    };
    let first = post(oim_store_request(auth, from, to, text, "")).await?;
    match lock_key_asked(&first) {
        Some(key) => Some(post(oim_store_request(auth, from, to, text, &key)).await?.status),
        None => Some(first.status),
    }
}

fn soap_request(path: &str, action: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"{action}\"\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub async fn soap_post(server: &TestServer, path: &str, action: &str, body: &str) -> HttpAnswer {
    let stream = TcpStream::connect(server.http.unwrap()).await.unwrap();
    http_exchange(stream, soap_request(path, action, body).as_bytes()).await
}

/// Signs in with MSNP2 and goes online without the helpers' expectations
/// about what follows the CHG.
pub async fn sign_in_plain(server: &TestServer, name: &str) -> Client {
    let mut c = login(server, &format!("{name}@example.com"), &format!("pw-{name}")).await;
    let online = OnlineState::Online;
    c.request(&NsRequest::Chg { trid: 50, state: online, client_id: None, extended_caps: 0, msn_object: None }).await;
    c.expect_reply(Reply::Chg { trid: 50, state: online, client_id: None, extended_caps: 0, msn_object: None }).await;
    c
}

/// Answers the RNG of an offline-message invitation; returns the
/// switchboard connection and the messages shown.
pub async fn answer_offline(ns: &mut Client, me: &str, sender: &str) -> (Client, Vec<String>) {
    let Reply::Rng { session_id, address, cookie, caller, .. } = ns.reply().await else { panic!("no RNG") };
    assert_eq!(caller, sender);
    let mut sb = Client::connect_switchboard(&address, ns.dialect).await;
    sb.sb_request(&SbRequest::Ans { trid: 1, handle: me.into(), cookie, session_id }).await;
    assert!(
        matches!(sb.reply().await, Reply::Iro { trid: 1, index: 1, total: 1, ref handle, .. } if handle == sender),
        "the stand-in is the roster"
    );
    sb.expect_reply(Reply::AnsOk { trid: 1 }).await;
    let mut shown = Vec::new();
    while let Some(l) = sb.try_recv(std::time::Duration::from_millis(300)).await {
        let frame = Frame { line: l.text, payload: l.payload.map(Into::into) };
        match sb.read(&frame) {
            Reply::Msg { handle, payload, .. } if handle == sender => {
                shown.push(String::from_utf8(payload.to_vec()).unwrap())
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    (sb, shown)
}

/// Posts a form (`application/x-www-form-urlencoded`), with a cookie if given.
pub async fn post_form(server: &TestServer, path: &str, fields: &[(&str, &str)], cookie: Option<&str>) -> HttpAnswer {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", msnp::urlencode::encode(v))).collect();
    let body = body.join("&");
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n{cookie}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
    http_exchange(stream, request.as_bytes()).await
}

/// `USR TWN S ticket` (MSNP8) on a fresh notification connection: the answer line.
pub async fn present_ticket(ns: SocketAddr, handle: &str, ticket: &str) -> String {
    let mut c = Client::connect(ns).await;
    c.dialect = Dialect::Msnp8;
    c.request(&NsRequest::Ver { trid: 1, dialects: vec!["MSNP8".into(), "CVR0".into()] }).await;
    c.expect_reply(Reply::Ver { trid: 1, dialect: Some(Dialect::Msnp8) }).await;
    c.request(&NsRequest::Usr { trid: 2, step: UsrStep::TwnInitiate { handle: handle.into() } }).await;
    let Reply::UsrChallenge { challenge, .. } = c.reply().await else { panic!("no Passport challenge") };
    assert!(challenge.starts_with("lc=1033,id=507,"), "{challenge}");
    c.request(&NsRequest::Usr { trid: 3, step: UsrStep::TwnResponse { ticket: ticket.into() } }).await;
    c.recv().await.text
}

/// The client library's settings for `name@example.com` on `dialect`.
pub fn library_config(server: &TestServer, name: &str, dialect: Dialect) -> client::ClientConfig {
    let mut c =
        client::ClientConfig::new(&server.dispatch.to_string(), &format!("{name}@example.com"), &format!("pw-{name}"));
    c.dialect = dialect;
    c.login_url = Some(format!("http://{}/rdr/pprdr.asp", server.http.unwrap()));
    c.timeout = Duration::from_secs(10);
    c
}

/// `name` signed in with the client library.
pub async fn library_sign_in(
    server: &TestServer,
    name: &str,
    dialect: Dialect,
) -> (client::Client, tokio::sync::mpsc::UnboundedReceiver<client::Event>) {
    client::Client::sign_in(library_config(server, name, dialect)).await.expect("signs in")
}

/// Waits for the first event `pick` accepts, skipping others.
pub async fn wait_event<T>(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<client::Event>,
    mut pick: impl FnMut(&client::Event) -> Option<T>,
) -> T {
    timeout(Duration::from_secs(60), async {
        loop {
            let e = events.recv().await.expect("event stream open");
            if let Some(t) = pick(&e) {
                return t;
            }
        }
    })
    .await
    .expect("the event in time")
}
