//! The stateful target: whole notification and switchboard sessions through
//! the real server's command handling.
//!
//! One server runs for the life of the process (its store a SQLite file in a
//! temp dir), with three accounts. For each input the harness signs Bob in
//! (MSNP7, online), signs Alice in (in the dialect the input's first byte
//! picks; Passport dialects with a ticket straight from the backend, so no
//! password hash is spent), takes a switchboard cookie and opens the
//! switchboard session; then it sends the rest of the input to Alice's
//! notification connection (up to the first 0xFF byte) and to her
//! switchboard connection (after it), ends both, and checks:
//! - every line the server sent frames correctly;
//! - the server closes each connection after the client ends it (nothing
//!   hangs on a half-finished command);
//! - the server still answers Bob afterwards (nobody else was hurt);
//! - every session of the iteration has ended before the next begins (a
//!   session that outlives its closed connection is a leak, and one left
//!   running would also blur libFuzzer's per-input leak check).
//!
//! Sessions run over in-memory pipes (`RunningServer::serve_stream`): the
//! same session code as TCP, without sockets or ports per iteration.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use backend::limits::Rate;
use bytes::BytesMut;
use msnp::request::{NsRequest, SbRequest};
use msnp::signin::{Action, SignIn};
use msnp::{Decoder, Dialect, Direction, Frame, Limits, OnlineState, Reply, TrId};
use server::RunningServer;
use server::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

/// How long the server may take for anything in one iteration. Far above
/// what a healthy server needs; reaching it is a finding (a hang).
const PATIENCE: Duration = Duration::from_secs(20);

/// More output than any input of the fuzzer's sizes can honestly cause.
const MAX_OUTPUT: u64 = 16 << 20;

const ACCOUNTS: [&str; 3] = ["alice@example.com", "bob@example.com", "carol@example.com"];

struct Harness {
    runtime: Runtime,
    server: RunningServer,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut config = ServerConfig::new(dir.path().to_path_buf());
        config.listen = "127.0.0.1:0".parse().expect("address");
        config.ns_listen = "127.0.0.1:0".parse().expect("address");
        // The per-account buckets outlive an iteration: at the fuzzer's pace
        // they would empty within a second and every later input would meet
        // only refusals. Per-connection limits (fresh each iteration) and the
        // abuse disconnect stay as configured.
        let plenty = Rate::new(1_000_000, 1_000_000.0);
        let rates = &mut config.backend.rate_limits;
        (rates.messages, rates.data, rates.invitations) = (plenty, plenty, plenty);
        (rates.list_changes, rates.state_changes) = (plenty, plenty);
        let server = runtime.block_on(async {
            let server = server::Server::start(config).await.expect("the server starts");
            for handle in ACCOUNTS {
                let name = handle.split('@').next().unwrap_or(handle);
                server.backend().create_account(handle, Some(name), &format!("pw-{name}")).await.expect("account");
            }
            server
        });
        Harness { runtime, server, _dir: dir }
    })
}

/// The client end of one in-memory connection.
struct Peer {
    stream: DuplexStream,
    buf: BytesMut,
    decoder: Decoder,
    /// The server's session for this connection.
    served: tokio::task::JoinHandle<()>,
}

impl Peer {
    /// Opens a connection that the server serves as if it came from `peer`.
    fn open(h: &'static Harness, peer: SocketAddr) -> Peer {
        let (client, server_end) = tokio::io::duplex(64 * 1024);
        let served = h.runtime.spawn(h.server.serve_stream(server_end, peer));
        Peer { stream: client, buf: BytesMut::new(), decoder: client_decoder(), served }
    }

    async fn send(&mut self, frame: &Frame) {
        let _ = self.stream.write_all(&frame.to_bytes()).await;
    }

    /// The next frame, or `None` when the server closed or went quiet.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(frame)) => return Some(frame),
                Ok(None) => {}
                Err(e) => panic!("the server sent a malformed frame: {e}"),
            }
            match tokio::time::timeout(PATIENCE, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Reads until the reply to `trid` (or an error) arrives; `None` if the
    /// server closed first or refused.
    async fn reply(&mut self, trid: TrId, dialect: Dialect, switchboard: bool) -> Option<Reply> {
        while let Some(frame) = self.next().await {
            let reply = if switchboard {
                Reply::parse_from_switchboard(&frame, dialect)
            } else {
                Reply::parse(&frame, dialect)
            };
            match reply {
                Ok(Reply::Error { .. }) => return None,
                Ok(reply) if reply.trid() == Some(trid) => return Some(reply),
                _ => {}
            }
        }
        None
    }

    /// A notification request and its reply.
    async fn request(&mut self, request: NsRequest, dialect: Dialect) -> Option<Reply> {
        self.send(&request.to_frame(dialect)).await;
        self.reply(request.trid()?, dialect, false).await
    }

    /// Sends the rest of an input, ends the stream, and reads everything
    /// until the server closes. Panics if the server sends a malformed frame,
    /// too much, or never closes.
    async fn finish(self, input: Vec<u8>) {
        let Peer { stream, mut buf, mut decoder, served } = self;
        let (mut read, mut write) = tokio::io::split(stream);
        let writer = async move {
            let _ = write.write_all(&input).await;
            let _ = write.shutdown().await;
        };
        let reader = async move {
            let mut rest = Vec::new();
            let mut limited = (&mut read).take(MAX_OUTPUT);
            let _ = limited.read_to_end(&mut rest).await;
            rest
        };
        let (_, rest) = tokio::time::timeout(PATIENCE, async { tokio::join!(writer, reader) })
            .await
            .expect("the server closes a connection whose client has ended it");
        assert!((rest.len() as u64) < MAX_OUTPUT, "the server sent {} bytes", rest.len());
        buf.extend_from_slice(&rest);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("the server sent a malformed frame: {e}"),
            }
        }
        session_ended(served).await;
    }

    /// Hangs up and waits until the server's session has ended.
    async fn close(self) {
        let Peer { stream, served, .. } = self;
        drop(stream);
        session_ended(served).await;
    }
}

/// Waits for a session whose client has gone; panics if it never ends.
async fn session_ended(served: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(PATIENCE, served)
        .await
        .expect("the server ends a session whose client has gone")
        .expect("the session task");
}

fn client_decoder() -> Decoder {
    Decoder::new(Direction::ToClient, Limits { max_line: 64 * 1024, max_payload: 1 << 20 })
}

/// Signs `handle` in on a new connection; `None` if the server refused
/// (flood control from an earlier input, say): the iteration then does less.
async fn sign_in(h: &'static Harness, handle: &str, dialect: Dialect, peer: SocketAddr) -> Option<Peer> {
    let mut p = Peer::open(h, peer);
    if signed_in(h, &mut p, handle, dialect).await.is_some() {
        Some(p)
    } else {
        p.close().await;
        None
    }
}

/// Signs in on `p`; `None` if the server refused or went quiet.
async fn signed_in(h: &'static Harness, p: &mut Peer, handle: &str, dialect: Dialect) -> Option<()> {
    let name = handle.split('@').next().unwrap_or(handle);
    let mut signing = SignIn::new(dialect, handle, &format!("pw-{name}"), &["0x0409", "winnt", "5.1", "i386", "FUZZ"])
        .on_machine(msnp::endpoint::MachineGuid::from_random([7; 16]));
    let mut action = signing.start();
    loop {
        action = match action {
            Action::Send(request) => {
                p.send(&request.to_frame(dialect)).await;
                signing.receive(&p.next().await?).ok()?
            }
            Action::Receive => signing.receive(&p.next().await?).ok()?,
            // This harness talks to the notification server directly.
            Action::Connect(_) => return None,
            // A ticket straight from the backend: no password hash spent.
            Action::FetchTicket(_) => signing.ticket(h.server.backend().issue_ticket(handle).await.ok()?),
            Action::FetchSsoToken { .. } => {
                let (ticket, secret) = h.server.backend().issue_sso_ticket(handle).await.ok()?;
                signing.sso_token(ticket, &secret, [1; 8])
            }
            Action::Done(_) => return Some(()),
        };
    }
}

/// `CHG` to online, answered.
async fn go_online(p: &mut Peer, dialect: Dialect) -> Option<Reply> {
    let client_id = dialect.presence_has_client_id().then_some(0);
    p.request(
        NsRequest::Chg { trid: 10, state: OnlineState::Online, client_id, extended_caps: 0, msn_object: None },
        dialect,
    )
    .await
}

/// Reads Bob's events until `done`, then whether he is still answered
/// (`PNG`, `QNG`).
async fn answers_after(bob: &mut Peer, done: &mut tokio::sync::oneshot::Receiver<()>) -> bool {
    loop {
        tokio::select! {
            frame = bob.next() => if frame.is_none() { return false },
            _ = &mut *done => break,
        }
    }
    bob.send(&NsRequest::Png.to_frame(Dialect::Msnp7)).await;
    while let Some(frame) = bob.next().await {
        if let Ok(Reply::Qng { .. }) = Reply::parse(&frame, Dialect::Msnp7) {
            return true;
        }
    }
    false
}

/// How far an iteration got before the input took over: a harness that
/// never signs in would fuzz only the login, so the corpus test checks this.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    pub signed_in: bool,
    pub switchboard: bool,
}

/// Feeds one input through a notification and a switchboard session.
pub fn session(data: &[u8]) -> Reached {
    let Some((&first, rest)) = data.split_first() else { return Reached::default() };
    let dialect = Dialect::ALL[usize::from(first) % Dialect::ALL.len()];
    let (ns_input, sb_input) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (rest[..i].to_vec(), rest[i + 1..].to_vec()),
        None => (rest.to_vec(), Vec::new()),
    };
    let h = harness();
    let peer: SocketAddr = "127.0.0.2:40000".parse().expect("address");
    h.runtime.block_on(async move {
        let Some(mut bob) = sign_in(h, ACCOUNTS[1], Dialect::Msnp7, peer).await else { return Reached::default() };
        go_online(&mut bob, Dialect::Msnp7).await;
        let Some(mut alice) = sign_in(h, ACCOUNTS[0], dialect, peer).await else {
            bob.close().await;
            return Reached::default();
        };
        go_online(&mut alice, dialect).await;
        let switchboard = match alice.request(NsRequest::XfrSb { trid: 11 }, dialect).await {
            Some(Reply::XfrSb { cookie, .. }) => {
                let mut sb = Peer::open(h, peer);
                sb.send(
                    &SbRequest::Usr { trid: 1, handle: msnp::endpoint::Address::user(ACCOUNTS[0]), cookie }.to_frame(),
                )
                .await;
                if sb.reply(1, dialect, true).await.is_some() {
                    Some(sb)
                } else {
                    sb.close().await;
                    None
                }
            }
            _ => None,
        };
        // Bob keeps reading (his events must not pile up while Alice's input
        // runs); once she is done, he must still be answered.
        let (alice_done, mut done) = tokio::sync::oneshot::channel::<()>();
        let bob_still_served = tokio::spawn(async move {
            let answered = answers_after(&mut bob, &mut done).await;
            bob.close().await;
            answered
        });
        let reached = Reached { signed_in: true, switchboard: switchboard.is_some() };
        match switchboard {
            Some(sb) => tokio::join!(alice.finish(ns_input), sb.finish(sb_input)).0,
            None => alice.finish(ns_input).await,
        };
        let _ = alice_done.send(());
        assert!(bob_still_served.await.expect("Bob's reader"), "Bob is still served after Alice's session");
        reached
    })
}
