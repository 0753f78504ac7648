//! What an accepted byte stream becomes: the admission of a connection
//! (the server's and its address's share of the sockets), the role its port
//! or first command gives it, and the session that then serves it. Shared by
//! the MSNP listeners and the HTTP gateway, whose sessions are the same
//! sessions over another transport.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::Either;
use msnp::{Frame, Limits};
use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;

use crate::config::ServerConfig;
use crate::connection::{Connection, Timeouts};
use crate::notification;
use crate::shared::{Role, Shared};
use crate::switchboard;

/// Counts a connection under its role until dropped.
pub(crate) struct InRole(Arc<Shared>, Role);

impl InRole {
    fn new(shared: &Arc<Shared>, role: Role) -> InRole {
        shared.by_role[role as usize].fetch_add(1, Ordering::Relaxed);
        InRole(shared.clone(), role)
    }
}

impl Drop for InRole {
    fn drop(&mut self) {
        self.0.by_role[self.1 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// Takes a place for a new connection from `peer`: one of `permits` and one
/// of its address's; `None` (counted, the socket dropped) when either is
/// used up, so that no one address can take the sockets everyone needs.
pub fn admit(
    shared: &Arc<Shared>,
    permits: &Arc<Semaphore>,
    peer: std::net::SocketAddr,
) -> Option<(AddressSlot, tokio::sync::OwnedSemaphorePermit)> {
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        shared.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %peer,
            "connection refused: this listener's connections are all in use \
             (--max-connections for MSNP and XMPP, 4,096 for the web listeners)"
        );
        return None;
    };
    let Some(slot) = AddressSlot::take(shared, peer.ip()) else {
        shared.counters.refused_connections.fetch_add(1, Ordering::Relaxed);
        let limit = shared.config.max_connections_per_address;
        tracing::warn!(
            %peer,
            limit,
            "connection refused: {limit} connections from this address are open \
             (--max-connections-per-address; a load generator on one machine needs it raised)"
        );
        return None;
    };
    Some((slot, permit))
}

/// One connection's place in the per-address count; given back on drop.
pub struct AddressSlot {
    shared: Arc<Shared>,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    fn take(shared: &Arc<Shared>, ip: std::net::IpAddr) -> Option<AddressSlot> {
        let mut counts = shared.per_address.lock();
        let n = counts.entry(ip).or_insert(0);
        if *n >= shared.config.max_connections_per_address {
            return None;
        }
        *n += 1;
        Some(AddressSlot { shared: shared.clone(), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.shared.per_address.lock();
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[derive(Clone)]
pub enum Port {
    /// Dispatch and switchboard.
    Main,
    Notification,
    /// Notification (without referral) and switchboard, over TLS.
    Tls(tokio_rustls::TlsAcceptor),
    /// Notification (without referral) and switchboard, over a stream that
    /// came from elsewhere.
    Unreferred,
}

pub fn timeouts(config: &ServerConfig) -> Timeouts {
    Timeouts { partial_line: config.partial_line_timeout, write: config.write_timeout }
}

/// A connection whose role is known, with the frame that told it.
pub enum Session {
    Notification { conn: Connection, first: Option<Frame>, role: Role },
    Switchboard { conn: Connection, first: Frame },
}

impl Session {
    /// The session's future, holding `guards` (and the connection's place
    /// in the role gauges) until it ends.
    pub fn run(
        self,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
        guards: impl Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        match self {
            Session::Notification { conn, first, role } => {
                let counted = InRole::new(&shared, role);
                Either::Left(
                    // It hears of the node stopping through `Shared::lifecycle`.
                    notification::serve(conn, first, role, shared).map(move |()| drop((counted, guards))),
                )
            }
            Session::Switchboard { conn, first } => {
                let counted = InRole::new(&shared, Role::Switchboard);
                // Boxed: switchboard sessions are few and brief, and the
                // notification sessions that idle for hours should not be
                // as large as the larger of the two.
                Either::Right(
                    Box::pin(switchboard::serve(conn, first, shared, shutdown)).map(move |()| drop((counted, guards))),
                )
            }
        }
    }
}

/// Serves a connection that did not come through a listener, until it ends.
pub async fn serve_connection(conn: Connection, port: Port, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let Some(session) = decide_role(conn, port, &shared).await else { return };
    session.run(shared, shutdown, ()).await
}

/// The role of a connection: the notification port's, or on the MSNP port
/// what its first command says (`VER` opens a dispatch or, without referral,
/// a notification session; `USR` or `ANS` a switchboard one). `None` when
/// the client said nothing in time or this node does not serve the role.
pub async fn decide_role(mut conn: Connection, port: Port, shared: &Shared) -> Option<Session> {
    let config = &shared.config;
    let ns_limits = Limits { max_line: config.max_line, max_payload: 4096 };
    let sb_limits = Limits { max_line: config.max_line, max_payload: config.max_message_size };
    let first_limits =
        Limits { max_line: config.max_line, max_payload: ns_limits.max_payload.max(sb_limits.max_payload) };
    if let Port::Notification = port {
        conn.reader.set_limits(ns_limits);
        return Some(Session::Notification { conn, first: None, role: Role::Notification });
    }
    conn.reader.set_limits(first_limits);
    let first = match timeout(config.login_timeout, conn.reader.next()).await {
        Ok(Ok(Some(frame))) => frame,
        _ => return None,
    };
    if matches!(first.verb(), "USR" | "ANS") {
        conn.reader.set_limits(sb_limits);
        return Some(Session::Switchboard { conn, first });
    }
    conn.reader.set_limits(ns_limits);
    let roles = config.roles;
    let role = match port {
        Port::Main if config.referral && roles.dispatch => Role::Dispatch,
        Port::Main if config.referral => return None, // a switchboard-only port
        _ if roles.notification => Role::Notification,
        _ => return None,
    };
    Some(Session::Notification { conn, first: Some(first), role })
}

/// The next connection, or `None` once shutdown begins. A failed accept (out
/// of file descriptors and the like) is logged and retried after a short
/// back-off rather than ending the listener.
pub async fn accept_or_stop(
    listener: &tokio::net::TcpListener,
    shutdown: &mut watch::Receiver<bool>,
    what: &str,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => return Some(a),
                Err(e) => {
                    tracing::warn!("{what} accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}
