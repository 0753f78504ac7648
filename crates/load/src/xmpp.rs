//! `msn-load --xmpp`: simulated Jabber users against an XMPP server (msnd's
//! XMPP front, or another server such as Prosody, for comparison). Users
//! sign in (STARTTLS, SASL PLAIN, bind, first presence) at the target rate
//! and stay; the server's memory is read between the two halves of the
//! logins; each subscribes to a few others, who approve; then users change
//! their presence at the target rate and every watcher notes each change's
//! latency; then pairs of users send each other messages at the target
//! rate and each receiver notes each message's latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use xmpp::stream::{Incoming, StreamReader};
use xmpp::{Element, NS_BIND, NS_CLIENT, NS_SASL, NS_TLS};

use crate::process::{self, Usage};
use crate::stats::{Samples, Summary};

/// What to run.
#[derive(Debug, Clone)]
pub struct XmppConfig {
    /// The server's XMPP address (`host:port`).
    pub server: String,
    /// The domain of the users' JIDs.
    pub domain: String,
    pub users: usize,
    /// Who the users are: their JIDs are the handles (numbered accounts in
    /// `domain`), the SASL identity each one's local part.
    pub accounts: crate::Accounts,
    pub login_rate: f64,
    pub login_concurrency: usize,
    /// Each user subscribes to the presence of this many others (the next
    /// in turn), who approve.
    pub contacts: usize,
    pub presence_rate: f64,
    pub presence_duration: Duration,
    /// Pairs of users that message each other.
    pub pairs: usize,
    pub message_rate: f64,
    pub message_duration: Duration,
    pub message_size: usize,
    pub server_pid: Option<u32>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct XmppReport {
    pub users: usize,
    /// This machine's time for the fixed reference work.
    pub machine_reference_ms: f64,
    pub logins_succeeded: usize,
    pub logins_failed: usize,
    pub logins_per_second: f64,
    pub login_latency: Summary,
    /// The server's memory before, halfway and after the logins.
    pub server_before: Option<Usage>,
    pub server_halfway: Option<Usage>,
    pub server_logged_in: Option<Usage>,
    /// RSS growth per user of the second half of the logins, KiB.
    pub rss_per_added_user_kib: f64,
    pub presence_changes: u64,
    /// Deliveries to watchers: expected (changes × watchers) and received.
    pub presence_expected: u64,
    pub presence_received: u64,
    pub presence_latency: Summary,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub message_latency: Summary,
    pub success: bool,
}

impl XmppReport {
    pub fn table(&self) -> String {
        let mib = |u: Option<Usage>| u.map_or("-".into(), |u| format!("{:.1}", u.rss_bytes as f64 / 1048576.0));
        let s = |x: &Summary| format!("{:.2} / {:.2} / {:.2} (n={})", x.p50_ms, x.p99_ms, x.max_ms, x.count);
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("{k:<34} {v}\n"));
        row("xmpp users", self.users.to_string());
        row("machine reference (fixed work) ms", format!("{:.1}", self.machine_reference_ms));
        row("logins", format!("{} of {} at {:.0}/s", self.logins_succeeded, self.users, self.logins_per_second));
        row("login latency p50/p99/max ms", s(&self.login_latency));
        row(
            "server RSS before/half/logged in",
            format!("{} / {} / {} MiB", mib(self.server_before), mib(self.server_halfway), mib(self.server_logged_in)),
        );
        row("server RSS per added user", format!("{:.2} KiB", self.rss_per_added_user_kib));
        row(
            "presence changes / deliveries",
            format!("{} / {} of {}", self.presence_changes, self.presence_received, self.presence_expected),
        );
        row("presence delivery p50/p99/max ms", s(&self.presence_latency));
        row("messages sent/received", format!("{}/{}", self.messages_sent, self.messages_received));
        row("message latency p50/p99/max ms", s(&self.message_latency));
        row("result", if self.success { "success".into() } else { "FAILURE".into() });
        out
    }
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// One signed-in user: its stream's halves and what was read ahead.
struct Session {
    reader: Reader<ReadHalf<Tls>>,
    writer: WriteHalf<Tls>,
}

pub async fn run(cfg: &XmppConfig) -> anyhow::Result<XmppReport> {
    let machine_reference_ms = crate::reference::milliseconds();
    let mut report = XmppReport { users: cfg.users, machine_reference_ms, ..Default::default() };
    report.server_before = cfg.server_pid.and_then(process::usage);
    let connector = connector();
    let half = cfg.users / 2;
    let started = Instant::now();
    let (mut sessions, mut latency, mut failed) = sign_in_range(cfg, &connector, 0..half).await;
    report.server_halfway = cfg.server_pid.and_then(process::usage);
    let (second, second_latency, second_failed) = sign_in_range(cfg, &connector, half..cfg.users).await;
    let busy = started.elapsed();
    report.server_logged_in = cfg.server_pid.and_then(process::usage);
    let added = second.iter().filter(|s| s.is_some()).count();
    sessions.extend(second);
    latency.extend(second_latency);
    failed += second_failed;
    report.logins_succeeded = latency.len();
    report.logins_failed = failed;
    report.logins_per_second = latency.len() as f64 / busy.as_secs_f64().max(1e-6);
    report.login_latency = latency.summary();
    if let (Some(h), Some(l)) = (report.server_halfway, report.server_logged_in) {
        report.rss_per_added_user_kib = (l.rss_bytes as f64 - h.rss_bytes as f64) / 1024.0 / added.max(1) as f64;
    }
    after_logins(cfg, sessions, &mut report).await?;
    report.success = failed == 0
        && report.messages_sent == report.messages_received
        && report.presence_received == report.presence_expected;
    Ok(report)
}

/// Signs in the users of `range` at the target rate; their sessions (by
/// index from the range's start), the login latencies and the failures.
async fn sign_in_range(
    cfg: &XmppConfig,
    connector: &tokio_rustls::TlsConnector,
    range: std::ops::Range<usize>,
) -> (Vec<Option<Session>>, Samples, usize) {
    let gate = Arc::new(Semaphore::new(cfg.login_concurrency.max(1)));
    let interval = Duration::from_secs_f64(1.0 / cfg.login_rate.max(0.001));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (n, i) in range.enumerate() {
        tokio::time::sleep_until((start + interval * n as u32).into()).await;
        let permit = gate.clone().acquire_owned().await.expect("the gate stays open");
        let (cfg, connector) = (cfg.clone(), connector.clone());
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let jid = cfg.accounts.handle(i);
            let user = jid.split('@').next().unwrap_or_default().to_string();
            let password = cfg.accounts.password(i);
            let signed = tokio::time::timeout(cfg.timeout, sign_in(&cfg, &connector, &user, &password)).await;
            drop(permit);
            match signed {
                Ok(Ok(s)) => Ok((s, began.elapsed())),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(anyhow::anyhow!("timed out")),
            }
        }));
    }
    let (mut sessions, mut latency, mut failed) = (Vec::new(), Samples::default(), 0);
    for task in tasks {
        match task.await {
            Ok(Ok((s, took))) => {
                latency.push(took);
                sessions.push(Some(s));
            }
            Ok(Err(e)) => {
                if failed == 0 {
                    eprintln!("msn-load: an XMPP login failed: {e:#}");
                }
                failed += 1;
                sessions.push(None);
            }
            Err(_) => {
                failed += 1;
                sessions.push(None);
            }
        }
    }
    (sessions, latency, failed)
}

/// STARTTLS, PLAIN, bind and the first presence.
async fn sign_in(
    cfg: &XmppConfig,
    connector: &tokio_rustls::TlsConnector,
    user: &str,
    password: &str,
) -> anyhow::Result<Session> {
    let mut tcp = TcpStream::connect(&cfg.server).await.context("connecting")?;
    tcp.set_nodelay(true)?;
    {
        let mut plain = Reader::new(&mut tcp);
        plain.open(&cfg.domain).await?;
        plain.inner.write_all(xmpp::write::starttls().as_bytes()).await?;
        if !plain.element().await?.is("proceed", NS_TLS) {
            bail!("STARTTLS refused");
        }
    }
    let name = rustls::pki_types::ServerName::try_from(cfg.domain.clone())?;
    let tls = connector.connect(name, tcp).await.context("TLS")?;
    let mut reader = Reader::new(tls);
    reader.open(&cfg.domain).await?;
    let plain = xmpp::sasl::Plain { authzid: None, authcid: user.to_string(), password: password.to_string() };
    reader.inner.write_all(xmpp::write::sasl_auth("PLAIN", &plain.encode()).as_bytes()).await?;
    reader.inner.flush().await?;
    if !reader.element().await?.is("success", NS_SASL) {
        bail!("{user}: authentication refused");
    }
    reader.restart();
    reader.open(&cfg.domain).await?;
    let bind =
        format!("<iq type='set' id='b'><bind xmlns='{NS_BIND}'><resource>load</resource></bind></iq><presence/>");
    reader.inner.write_all(bind.as_bytes()).await?;
    reader.inner.flush().await?;
    loop {
        let e = reader.element().await?;
        if e.name() == "iq" && e.attr("id") == Some("b") {
            if e.attr("type") != Some("result") {
                bail!("{user}: bind refused");
            }
            break;
        }
    }
    let (read, writer) = tokio::io::split(reader.inner);
    Ok(Session { reader: Reader { inner: read, stream: reader.stream, ready: reader.ready }, writer })
}

/// What every signed-in user's reader notes: the latency of each stamped
/// message and presence it receives.
#[derive(Default)]
struct Heard {
    /// Answers to the ping each user sends after its subscriptions.
    settled: AtomicU64,
    messages: AtomicU64,
    presences: AtomicU64,
    message_latency: std::sync::Mutex<Samples>,
    presence_latency: std::sync::Mutex<Samples>,
}

/// A signed-in user, its reader listening.
struct Online {
    /// Its bare JID.
    jid: String,
    writer: WriteHalf<Tls>,
}

/// The phases after the logins: subscriptions, presence, messages.
async fn after_logins(cfg: &XmppConfig, sessions: Vec<Option<Session>>, report: &mut XmppReport) -> anyhow::Result<()> {
    let base = Instant::now();
    let heard = Arc::new(Heard::default());
    let mut readers = Vec::new();
    let mut online: Vec<Online> = Vec::new();
    for (i, session) in sessions.into_iter().enumerate() {
        let Some(Session { reader, writer }) = session else { continue };
        readers.push(tokio::spawn(listen(reader, base, heard.clone())));
        online.push(Online { jid: cfg.accounts.handle(i), writer });
    }
    let n = online.len();
    let contacts = cfg.contacts.min(n.saturating_sub(1));
    // Each user asks for the presence of the next `contacts` users, who
    // approve: subscribe, then subscribed (RFC 6121 section 3.1).
    for kind in ["subscribe", "subscribed"] {
        for i in 0..n {
            for k in 1..=contacts {
                let j = (i + k) % n;
                let (from, to) = if kind == "subscribe" { (i, j) } else { (j, i) };
                let to = online[to].jid.clone();
                online[from].writer.write_all(format!("<presence type='{kind}' to='{to}'/>").as_bytes()).await?;
            }
        }
    }
    // A server answers a user's stanzas in order: the answer to a ping sent
    // after its subscriptions means they are done.
    for user in online.iter_mut() {
        user.writer.write_all(b"<iq type='get' id='settled'><ping xmlns='urn:xmpp:ping'/></iq>").await?;
        // TLS keeps what was written until flushed.
        user.writer.flush().await?;
    }
    wait_for(&heard.settled, n as u64, Duration::from_secs(120)).await;
    // State changes, each stamped in its status; every watcher notes it.
    let expected_per_change = contacts as u64;
    let mut changes = 0u64;
    if n > 0 && !cfg.presence_duration.is_zero() && contacts > 0 {
        let interval = Duration::from_secs_f64(1.0 / cfg.presence_rate.max(0.001));
        let start = Instant::now();
        while start.elapsed() < cfg.presence_duration {
            let user = &mut online[changes as usize % n];
            let show = if changes.is_multiple_of(2) { "away" } else { "dnd" };
            let stamp = base.elapsed().as_micros();
            let p = format!("<presence><show>{show}</show><status>t={stamp}</status></presence>");
            user.writer.write_all(p.as_bytes()).await?;
            user.writer.flush().await?;
            changes += 1;
            tokio::time::sleep_until((start + interval * changes as u32).into()).await;
        }
        wait_for(&heard.presences, changes * expected_per_change, cfg.timeout).await;
    }
    report.presence_changes = changes;
    report.presence_expected = changes * expected_per_change;
    report.presence_received = heard.presences.load(Ordering::Relaxed);
    report.presence_latency = heard.presence_latency.lock().expect("the samples' lock").summary();
    // Pairs (user 2k and 2k+1) message each other at the total rate.
    let pairs = cfg.pairs.min(n / 2);
    let mut sent = 0u64;
    if pairs > 0 && !cfg.message_duration.is_zero() {
        let interval = Duration::from_secs_f64(1.0 / cfg.message_rate.max(0.001));
        let padding = "x".repeat(cfg.message_size.saturating_sub(24));
        let start = Instant::now();
        while start.elapsed() < cfg.message_duration {
            let from = sent as usize % (2 * pairs);
            let to = online[from ^ 1].jid.clone();
            let stamp = base.elapsed().as_micros();
            let m = format!("<message to='{to}' type='chat'><body>t={stamp};{padding}</body></message>");
            online[from].writer.write_all(m.as_bytes()).await?;
            online[from].writer.flush().await?;
            sent += 1;
            tokio::time::sleep_until((start + interval * sent as u32).into()).await;
        }
        wait_for(&heard.messages, sent, cfg.timeout).await;
    }
    report.messages_sent = sent;
    report.messages_received = heard.messages.load(Ordering::Relaxed);
    report.message_latency = heard.message_latency.lock().expect("the samples' lock").summary();
    for mut user in online {
        let _ = user.writer.write_all(xmpp::write::stream_close().as_bytes()).await;
        let _ = user.writer.flush().await;
    }
    for r in readers {
        r.abort();
    }
    Ok(())
}

/// Waits until `count` reaches `target`, or `timeout` (then it is short).
async fn wait_for(count: &AtomicU64, target: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while count.load(Ordering::Relaxed) < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Notes the latency of every message with a body `t=<micros>;...` and of
/// every presence with a status `t=<micros>`.
async fn listen(mut reader: Reader<ReadHalf<Tls>>, base: Instant, heard: Arc<Heard>) {
    let stamp_of = |text: String| text.strip_prefix("t=").and_then(|b| b.split(';').next()?.parse::<u64>().ok());
    while let Ok(e) = reader.element().await {
        let now = base.elapsed().as_micros() as u64;
        if e.name() == "iq" && e.attr("id") == Some("settled") {
            heard.settled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (counter, samples, text) = match e.name() {
            "message" => (&heard.messages, &heard.message_latency, e.get_child("body", NS_CLIENT).map(|b| b.text())),
            "presence" => {
                (&heard.presences, &heard.presence_latency, e.get_child("status", NS_CLIENT).map(|b| b.text()))
            }
            _ => continue,
        };
        let Some(stamp) = text.and_then(stamp_of) else { continue };
        samples.lock().expect("the samples' lock").push(Duration::from_micros(now.saturating_sub(stamp)));
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A stream being read, over any byte stream.
struct Reader<S> {
    inner: S,
    stream: StreamReader,
    ready: std::collections::VecDeque<Incoming>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reader<S> {
    fn new(inner: S) -> Reader<S> {
        Reader { inner, stream: StreamReader::new(), ready: Default::default() }
    }

    fn restart(&mut self) {
        self.stream = StreamReader::new();
        self.ready.clear();
    }

    /// Opens a stream and reads the header and the features.
    async fn open(&mut self, domain: &str) -> anyhow::Result<Element> {
        self.inner.write_all(xmpp::write::client_header(domain).as_bytes()).await?;
        self.inner.flush().await?;
        match self.next().await? {
            Incoming::Header(_) => self.element().await,
            other => bail!("expected a stream header, got {other:?}"),
        }
    }
}

impl<S: AsyncRead + Unpin> Reader<S> {
    async fn next(&mut self) -> anyhow::Result<Incoming> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(item);
            }
            let mut buf = Vec::with_capacity(8192);
            if self.inner.read_buf(&mut buf).await? == 0 {
                bail!("the server closed the connection");
            }
            let mut items = Vec::new();
            self.stream.feed(&buf, &mut items).map_err(|e| anyhow::anyhow!("stream error: {e}"))?;
            self.ready.extend(items);
        }
    }

    async fn element(&mut self) -> anyhow::Result<Element> {
        loop {
            match self.next().await? {
                Incoming::Element(e) if e.name() == "error" && e.ns() == xmpp::NS_STREAMS => {
                    bail!("stream error: {}", String::from(&e))
                }
                Incoming::Element(e) => return Ok(e),
                Incoming::Close => bail!("the server closed its stream"),
                Incoming::Header(_) => {}
            }
        }
    }
}

/// A TLS client that takes any certificate: the load tool measures
/// servers on loopback with certificates of their own making.
fn connector() -> tokio_rustls::TlsConnector {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    #[derive(Debug)]
    struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &rustls::pki_types::CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}
