//! Listeners, the role of each accepted socket, and graceful shutdown.
//!
//! The MSNP port carries dispatch connections (which start with `VER`) and
//! switchboard connections (which start with `USR` or `ANS`); the
//! notification server has a port of its own, which dispatch refers clients
//! to. On shutdown every connection is told `OUT SSD` before it closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;
use backend::Backend;
use backend::secrets::ServerKey;
use backend::store::{PostgresStore, SqliteStore};
use msnp::Limits;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::connection::Connection;
use crate::roles::{Port, accept_or_stop, admit, decide_role, serve_connection, timeouts};
use crate::shared::{Counters, Shared, read_trace_list};

/// Opens the store (the data dir's SQLite file, or PostgreSQL) and the
/// server key, as `serve` and the admin commands do.
pub async fn open_backend(config: &ServerConfig) -> anyhow::Result<Backend> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let key = ServerKey::load_or_create(&config.data_dir)?;
    let store: Arc<dyn backend::store::Store> = match &config.database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Arc::new(
            PostgresStore::connect(url, config.database_connections)
                .await
                .with_context(|| format!("cannot open the store at {url}"))?,
        ),
        Some(other) => anyhow::bail!("--database must be a postgres:// URL (got {other:?}); leave it out for SQLite"),
        None => Arc::new(SqliteStore::open(&config.data_dir.join("mariposa.db"))?),
    };
    Ok(Backend::new(store, key, config.backend.clone()))
}

/// The server entry point.
pub struct Server;

/// A started server: its bound addresses and the means to stop it.
pub struct RunningServer {
    pub dispatch_addr: SocketAddr,
    pub ns_addr: SocketAddr,
    pub http_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    pub legacy_https_addr: Option<SocketAddr>,
    pub msnp_tls_addr: Option<SocketAddr>,
    pub xmpp_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tracker: TaskTracker,
}

impl Server {
    /// Binds every listener and starts serving.
    pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
        let backend = Arc::new(open_backend(&config).await?);
        let main =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let dispatch_addr = main.local_addr()?;
        let ns = if config.referral && config.roles.notification {
            Some(
                TcpListener::bind(config.ns_listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.ns_listen))?,
            )
        } else {
            None
        };
        let ns_addr = match &ns {
            Some(l) => l.local_addr()?,
            None => dispatch_addr,
        };
        let http = match config.http_listen.filter(|_| config.roles.http) {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?),
            None => None,
        };
        let http_addr = http.as_ref().map(|l| l.local_addr()).transpose()?;
        let https = match config.https_listen.filter(|_| config.roles.http) {
            Some(addr) => {
                let tls = crate::tls::server_config(
                    &config.data_dir,
                    config.tls_cert.as_deref(),
                    config.tls_key.as_deref(),
                    config.public_host.as_deref(),
                )?;
                let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
                Some((listener, tokio_rustls::TlsAcceptor::from(tls)))
            }
            None => None,
        };
        let https_addr = https.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        let legacy = match config.legacy_https_listen {
            Some(addr) => Some(legacy_listener(&config, addr).await?),
            None => None,
        };
        let legacy_https_addr = legacy.as_ref().map(|l| l.local_addr()).transpose()?;
        let msnp_tls = match config.msnp_tls_listen {
            Some(addr) => Some(tls_listener(&config, addr).await?),
            None => None,
        };
        let msnp_tls_addr = msnp_tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
        // Jabber users are signed-in users: a notification node's.
        let xmpp = match config.xmpp_listen.filter(|_| config.roles.notification) {
            Some(addr) => Some(tls_listener(&config, addr).await?),
            None => None,
        };
        let xmpp_addr = xmpp.as_ref().map(|(l, _)| l.local_addr()).transpose()?;

        let by_role: Arc<[AtomicU64; 3]> = Arc::default();
        let config_data_dir = config.data_dir.clone();
        let cluster = match &config.cluster {
            Some(settings) => {
                let host = config.public_host.clone().unwrap_or_else(|| dispatch_addr.ip().to_string());
                let me = crate::cluster::NodeInfo {
                    node: settings.node_id.clone(),
                    roles: config.roles,
                    notification_address: config.roles.notification.then(|| format!("{host}:{}", ns_addr.port())),
                    switchboard_address: Some(format!("{host}:{}", dispatch_addr.port())),
                    load: 0,
                    draining: false,
                    leaving: false,
                    declared_by: None,
                    rejected_frames: 0,
                    dropped_messages: 0,
                    reconnections: 0,
                    declared_silent: 0,
                    slowest_heartbeat_ms: 0,
                };
                let cluster =
                    crate::cluster::NatsCluster::join(settings.clone(), me, by_role.clone(), backend.clone()).await?;
                backend.join_cluster(cluster.clone());
                Some(cluster)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            backend,
            ns_port: ns_addr.port(),
            sb_port: dispatch_addr.port(),
            config,
            counters: Counters::default(),
            per_address: Default::default(),
            http_port: http_addr.map(|a| a.port()),
            https_port: https_addr.map(|a| a.port()),
            msnp_tls_port: msnp_tls_addr.map(|a| a.port()),
            cluster,
            by_role,
            lifecycle: Arc::default(),
            traced: crate::shared::TraceList::new(read_trace_list(&config_data_dir)),
        });
        let (shutdown, _) = watch::channel(false);
        let tracker = TaskTracker::new();
        let permits = Arc::new(Semaphore::new(shared.config.max_connections));
        // Web requests are short: a budget of their own, so that a flood of
        // them (or of TLS handshakes) cannot take the sockets MSNP needs.
        let web_permits = Arc::new(Semaphore::new(MAX_WEB_CONNECTIONS));

        let listeners = [Some((main, Port::Main)), ns.map(|l| (l, Port::Notification))];
        for (listener, port) in listeners.into_iter().flatten() {
            tracker.spawn(accept_loop(
                listener,
                port,
                shared.clone(),
                shutdown.subscribe(),
                tracker.clone(),
                permits.clone(),
            ));
        }
        if let Some((listener, acceptor)) = msnp_tls {
            tracker.spawn(accept_loop(
                listener,
                Port::Tls(acceptor),
                shared.clone(),
                shutdown.subscribe(),
                tracker.clone(),
                permits.clone(),
            ));
        }
        if let Some((listener, acceptor)) = xmpp {
            tracker.spawn(crate::xmpp::accept_loop(
                listener,
                acceptor,
                shared.clone(),
                shutdown.subscribe(),
                tracker.clone(),
                permits.clone(),
            ));
        }
        let gateways = Arc::new(crate::gateway::Gateways::new(tracker.clone(), shutdown.subscribe(), permits.clone()));
        tracker.spawn(gateways.clone().sweep(shared.config.gateway_idle_timeout));
        let pages = Arc::new(crate::messenger::Pages::new(tracker.clone(), shutdown.subscribe()));
        let router = crate::http::router(shared.clone(), pages.clone());
        let web = crate::http::Web { router, gateways, pages };
        if let Some(http) = http {
            tracker.spawn(http_accept_loop(
                http,
                None,
                shared.clone(),
                web.clone(),
                shutdown.subscribe(),
                tracker.clone(),
                web_permits.clone(),
            ));
        }
        if let Some(listener) = legacy {
            tracker.spawn(legacy_accept_loop(
                listener,
                shared.clone(),
                web.clone(),
                shutdown.subscribe(),
                tracker.clone(),
                web_permits.clone(),
            ));
        }
        if let Some((https, acceptor)) = https {
            tracker.spawn(http_accept_loop(
                https,
                Some(acceptor),
                shared.clone(),
                web,
                shutdown.subscribe(),
                tracker.clone(),
                web_permits,
            ));
        }
        Ok(RunningServer {
            dispatch_addr,
            ns_addr,
            http_addr,
            https_addr,
            legacy_https_addr,
            msnp_tls_addr,
            xmpp_addr,
            shared,
            shutdown,
            tracker,
        })
    }
}

impl RunningServer {
    /// The node's place in a cluster, if any.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::NatsCluster>> {
        self.shared.cluster.as_ref()
    }

    /// Re-reads `DATA_DIR/trace`: the accounts whose protocol is logged.
    pub fn reload_trace_list(&self) -> usize {
        let list = read_trace_list(&self.shared.config.data_dir);
        let n = list.len();
        self.shared.traced.set(list);
        n
    }

    /// Drains this node: the cluster stops sending users here, and every
    /// notification client is referred to another node (`XFR 0 NS`).
    /// Switchboard sessions carry on until they end. Returns false when the
    /// node is not in a cluster.
    pub fn drain(&self) -> bool {
        let Some(cluster) = &self.shared.cluster else { return false };
        cluster.set_draining();
        self.shared.lifecycle.drain();
        true
    }

    /// The domain the server runs on (for harnesses that set up accounts or
    /// tickets without a network round trip).
    pub fn backend(&self) -> &Arc<Backend> {
        &self.shared.backend
    }

    /// Serves a byte stream that did not come through a listener (an
    /// in-memory pipe in a fuzzer or test) as if it had arrived on the MSNP
    /// port with referral off: `VER` opens a notification session, `USR` or
    /// `ANS` a switchboard one. Returns when the session ends.
    pub async fn serve_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let local = self.dispatch_addr;
        let conn = Connection::stream(stream, peer, local, Limits::default(), timeouts(&self.shared.config));
        let task = serve_connection(conn, Port::Unreferred, self.shared.clone(), self.shutdown.subscribe());
        self.tracker.track_future(task).await
    }

    /// Stops accepting, tells every client `OUT SSD`, and waits (a bounded
    /// time) for the connections to close.
    pub async fn shutdown(self) {
        if let Some(cluster) = &self.shared.cluster {
            cluster.leave().await;
        }
        let _ = self.shutdown.send(true);
        self.shared.lifecycle.stop();
        self.tracker.close();
        if timeout(std::time::Duration::from_secs(10), self.tracker.wait()).await.is_err() {
            tracing::warn!("some connections did not close within 10 s");
        }
    }
}

/// The legacy TLS listener, with its context built up front so that a bad
/// certificate stops the start rather than the first client.
#[cfg(feature = "legacy-tls")]
struct LegacyListener {
    listener: TcpListener,
    context: openssl::ssl::SslContext,
}

#[cfg(feature = "legacy-tls")]
impl LegacyListener {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[cfg(feature = "legacy-tls")]
async fn legacy_listener(config: &ServerConfig, addr: SocketAddr) -> anyhow::Result<LegacyListener> {
    let context = crate::legacy_tls::context(
        &config.data_dir,
        config.legacy_tls_cert.as_deref(),
        config.legacy_tls_key.as_deref(),
        config.public_host.as_deref(),
    )?;
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    Ok(LegacyListener { listener, context })
}

#[cfg(not(feature = "legacy-tls"))]
struct LegacyListener;

#[cfg(not(feature = "legacy-tls"))]
impl LegacyListener {
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        unreachable!("never constructed without the legacy-tls feature")
    }
}

#[cfg(not(feature = "legacy-tls"))]
async fn legacy_listener(_config: &ServerConfig, _addr: SocketAddr) -> anyhow::Result<LegacyListener> {
    anyhow::bail!("this msnd was built without the legacy-tls feature")
}

#[cfg(feature = "legacy-tls")]
async fn legacy_accept_loop(
    legacy: LegacyListener,
    shared: Arc<Shared>,
    web: crate::http::Web,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
) {
    loop {
        let Some((stream, peer)) = accept_or_stop(&legacy.listener, &mut shutdown, "legacy https").await else {
            return;
        };
        let Some(admitted) = admit(&shared, &permits, peer) else { continue };
        let Ok(local) = stream.local_addr() else { continue };
        let (shared, web) = (shared.clone(), web.clone());
        let Ok(ssl) = openssl::ssl::Ssl::new(&legacy.context) else { continue };
        tracker.spawn(async move {
            let _admitted = admitted;
            let Ok(mut tls) = tokio_openssl::SslStream::new(ssl, stream) else { return };
            let handshake = timeout(TLS_HANDSHAKE_TIMEOUT, std::pin::Pin::new(&mut tls).accept()).await;
            match handshake {
                Ok(Ok(())) => crate::http::serve(tls, peer, local, true, shared, web).await,
                _ => tracing::debug!(%peer, "legacy TLS handshake failed"),
            }
        });
    }
}

#[cfg(not(feature = "legacy-tls"))]
async fn legacy_accept_loop(
    _legacy: LegacyListener,
    _shared: Arc<Shared>,
    _web: crate::http::Web,
    _shutdown: watch::Receiver<bool>,
    _tracker: TaskTracker,
    _permits: Arc<Semaphore>,
) {
}

/// Accepts HTTP (or, with an acceptor, HTTPS) connections.
async fn http_accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    web: crate::http::Web,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
) {
    loop {
        let Some((stream, peer)) = accept_or_stop(&listener, &mut shutdown, "http").await else { return };
        let Some(admitted) = admit(&shared, &permits, peer) else { continue };
        let Ok(local) = stream.local_addr() else { continue };
        let (shared, web, tls) = (shared.clone(), web.clone(), tls.clone());
        tracker.spawn(async move {
            let _admitted = admitted;
            match tls {
                None => crate::http::serve(stream, peer, local, false, shared, web).await,
                Some(acceptor) => match timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => crate::http::serve(tls_stream, peer, local, true, shared, web).await,
                    _ => tracing::debug!(%peer, "TLS handshake failed"),
                },
            }
        });
    }
}

/// Web connections (HTTP, HTTPS and legacy HTTPS together) open at once.
const MAX_WEB_CONNECTIONS: usize = 4096;

/// A TLS handshake takes a client milliseconds, an XP machine on a slow
/// link a second or two; one still unfinished after this is an attack.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn accept_loop(
    listener: TcpListener,
    port: Port,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
) {
    loop {
        let Some((stream, peer)) = accept_or_stop(&listener, &mut shutdown, "msnp").await else { return };
        let Some((slot, permit)) = admit(&shared, &permits, peer) else { continue };
        let (shared, shutdown, port, sessions) = (shared.clone(), shutdown.clone(), port.clone(), tracker.clone());
        tracker.spawn(async move {
            let Some(conn) = open_socket(stream, &port, &shared).await else { return };
            let Some(session) = decide_role(conn, port, &shared).await else { return };
            // The session runs as a task of its own, made of the session's
            // future alone: this task (the handshake, the wait for the first
            // command) ends here, and none of its state is carried through
            // the hours a connection idles.
            sessions.spawn(session.run(shared, shutdown, (slot, permit)));
        });
    }
}

/// A listener for a protocol over TLS other than HTTP (MSNP, XMPP's
/// STARTTLS), with the `--tls-cert` pair or the generated one.
async fn tls_listener(config: &ServerConfig, addr: SocketAddr) -> anyhow::Result<(TcpListener, TlsAcceptor)> {
    let mut tls = (*crate::tls::server_config(
        &config.data_dir,
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
        config.public_host.as_deref(),
    )?)
    .clone();
    // The HTTP side's ALPN would refuse a client that offers some other
    // protocol name; MSNP has none, and XMPP clients name their own.
    tls.alpn_protocols.clear();
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    Ok((listener, TlsAcceptor::from(Arc::new(tls))))
}

/// Wraps an accepted socket, completing the TLS handshake on the TLS port.
async fn open_socket(stream: TcpStream, port: &Port, shared: &Shared) -> Option<Connection> {
    let config = &shared.config;
    let keepalive = (config.keepalive_time, config.keepalive_interval);
    if let Port::Tls(acceptor) = port {
        let (Ok(peer), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else { return None };
        crate::connection::tune_tcp(&stream, keepalive);
        let tls = match timeout(config.login_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            _ => {
                tracing::debug!(%peer, "MSNP TLS handshake failed");
                return None;
            }
        };
        let mut conn = Connection::stream(tls, peer, local, Limits::default(), timeouts(config));
        conn.secure = true;
        Some(conn)
    } else {
        Connection::tcp(stream, Limits::default(), timeouts(config), keepalive).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Session;
    use crate::shared::Role;

    /// An idle signed-in user's biggest single cost is its session task:
    /// the notification session's future, which tokio allocates as one
    /// block with the task's header. Its size is fixed at compile time; this
    /// keeps it from creeping back (docs/PERFORMANCE.md, where the memory goes).
    #[tokio::test]
    async fn a_notification_session_future_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::new(dir.path().to_path_buf());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.ns_listen = "127.0.0.1:0".parse().unwrap();
        config.http_listen = None;
        let running = Server::start(config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let shared = running.shared.clone();
        let keepalive = (std::time::Duration::from_secs(60), std::time::Duration::from_secs(10));
        let conn = Connection::tcp(stream, Limits::default(), timeouts(&shared.config), keepalive).unwrap();
        let session = Session::Notification { conn, first: None, role: Role::Notification };
        let future = session.run(shared, running.shutdown.subscribe(), ());
        let size = std::mem::size_of_val(&future);
        eprintln!("notification session future: {size} bytes");
        drop((future, client));
        // 1,408 bytes before the node's signals became one channel and the
        // answering, the first frame and the circles were boxed; 1,064
        // before the timer, the writes and the linger were boxed, the event
        // queue's wait became a reference, the node's state came through the
        // event queue and the deadlines were no longer kept across the wait.
        // With the listener's guards, the task tracker and tokio's header
        // this is an 896-byte task, jemalloc's 896 class; past 736 it takes
        // 1,024 (`-Zprint-type-sizes` shows each part).
        assert!(size <= 736, "{size} bytes");
    }
}
