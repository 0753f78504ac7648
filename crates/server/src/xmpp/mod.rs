//! The XMPP front (RFC 6120/6121): Jabber clients sign in with their MSN
//! account and password, see the same contacts and chat with MSN users of
//! every dialect. A thin translation to the same domain calls the MSNP
//! front makes; the wire is the `xmpp` crate.
//!
//! An account's JID is its handle (`alice@example.com`, a valid bare JID),
//! so a client names its server by the handle's domain and authenticates
//! with the handle's local part. Each bound resource is one endpoint of
//! the account, like a Windows Live Messenger machine, and reads chat
//! without a switchboard, like MSNP21 (the domain bridges it to
//! switchboard users).

mod negotiation;
mod room_list;
mod rooms;
mod session;
mod translate;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use xmpp::StreamErrorCondition;
use xmpp::stream::{Incoming, StreamReader};

use crate::roles::admit;
use crate::shared::Shared;

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 4096;

/// Accepts XMPP client connections until shutdown.
pub async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
) {
    loop {
        let Some((stream, peer)) = crate::roles::accept_or_stop(&listener, &mut shutdown, "xmpp").await else {
            return;
        };
        let Some(admitted) = admit(&shared, &permits, peer) else { continue };
        let (shared, shutdown, acceptor) = (shared.clone(), shutdown.clone(), acceptor.clone());
        tracker.spawn(async move {
            let _admitted = admitted;
            crate::connection::tune_tcp(&stream, (shared.config.keepalive_time, shared.config.keepalive_interval));
            let login_timeout = shared.config.login_timeout;
            let negotiated =
                tokio::time::timeout(login_timeout, negotiation::negotiate(stream, peer, &acceptor, &shared)).await;
            match negotiated {
                Ok(Some(signed_in)) => session::run(signed_in, &shared, shutdown).await,
                Ok(None) => {}
                Err(_) => tracing::debug!(%peer, "xmpp: no sign-in within the login timeout"),
            }
        });
    }
}

/// Why reading the stream stopped.
#[derive(Debug)]
enum End {
    /// The client closed its stream (or the socket).
    Closed,
    /// The client broke the protocol: the stream error to close with.
    Fault(StreamErrorCondition),
}

/// One stream over a socket: what has been read of it, and writing.
struct Wire<S> {
    io: S,
    reader: StreamReader,
    /// Read and not yet taken.
    ready: std::collections::VecDeque<Incoming>,
    /// Why the stream broke, once what came before is taken.
    fault: Option<StreamErrorCondition>,
    peer: SocketAddr,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(io: S, peer: SocketAddr) -> Wire<S> {
        Wire { io, reader: StreamReader::new(), ready: Default::default(), fault: None, peer }
    }

    /// A new stream on the same socket (after SASL success).
    fn restart(&mut self) {
        self.reader = StreamReader::new();
        self.ready.clear();
        self.fault = None;
    }

    /// The next thing the client sent. What was complete before a fault
    /// is served first.
    async fn next(&mut self) -> Result<Incoming, End> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(item);
            }
            if let Some(condition) = self.fault.take() {
                tracing::debug!(peer = %self.peer, "xmpp: {condition}");
                return Err(End::Fault(condition));
            }
            let mut buf = Vec::with_capacity(READ_CHUNK);
            match self.io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return Err(End::Closed),
                Ok(_) => {}
            }
            let mut items = Vec::new();
            if let Err(condition) = self.reader.feed(&buf, &mut items) {
                self.fault = Some(condition);
            }
            self.ready.extend(items);
        }
    }

    async fn send(&mut self, text: &str) -> bool {
        self.io.write_all(text.as_bytes()).await.is_ok() && self.io.flush().await.is_ok()
    }

    /// Ends the stream with an error.
    async fn fail(&mut self, condition: StreamErrorCondition) {
        let _ = self.send(&xmpp::write::stream_error(condition)).await;
        let _ = self.io.shutdown().await;
    }
}

/// A socket that is plain TCP, then TLS.
type Tls = tokio_rustls::server::TlsStream<TcpStream>;
