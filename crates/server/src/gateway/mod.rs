//! The HTTP polling gateway (`/gateway/gateway.dll`): MSNP for clients that
//! cannot reach port 1863, carried in HTTP requests.
//!
//! `Action=open&Server=NS|SB` starts a session: the ordinary notification or
//! switchboard session, over an in-memory [`pipe`] instead of a socket, so
//! every dialect, limit and flood control is the TCP one. Later requests
//! name it by `SessionID=`; their bodies are the client's bytes, and each
//! answer carries what the session wrote since the last. `Action=poll`
//! only collects; with `Lifespan=` it waits for something to say.
//!
//! A gateway session takes the same share of the server's and its
//! address's sockets as a TCP connection, answers only the address that
//! opened it, and ends with its MSNP session: sign-out, the session's
//! limits, or no request within the gateway idle limit.

pub mod pipe;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msnp::Limits;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::connection::Connection;
use crate::roles::{Port, admit, decide_role, timeouts};
use crate::shared::Shared;
use pipe::{Pipe, PostError, Wait};

/// The header that numbers answers with bytes, in the session's order.
pub const SEQUENCE_HEADER: &str = "X-Mariposa-Sequence";
/// The longest a poll with `Lifespan=` is held.
const MAX_HOLD: Duration = Duration::from_secs(30);
/// The longest a request waits for the session to answer what it posted
/// (a password check on a busy server takes a while; anything later comes
/// with the next poll).
const MAX_ANSWER_WAIT: Duration = Duration::from_secs(10);
/// Written bytes a session may have waiting for the client's next request.
const MAX_UNSENT: usize = 512 * 1024;

/// The open gateway sessions of this server.
pub struct Gateways {
    sessions: Mutex<HashMap<String, Arc<GatewaySession>>>,
    tracker: TaskTracker,
    shutdown: watch::Receiver<bool>,
    /// The MSNP sockets' permits: a gateway session is counted as one.
    permits: Arc<Semaphore>,
}

struct GatewaySession {
    /// The address that opened it; no other may use it.
    owner: IpAddr,
    pipe: Arc<Pipe>,
    last_request: Mutex<Instant>,
    /// Requests being answered (a held poll is the client still there).
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Counts a request in flight until dropped, and notes when it ended.
struct InFlight(Arc<GatewaySession>);

impl InFlight {
    fn new(session: Arc<GatewaySession>) -> InFlight {
        session.in_flight.fetch_add(1, Ordering::Relaxed);
        *session.last_request.lock() = Instant::now();
        InFlight(session)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_request.lock() = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request to the gateway, as the HTTP side read it.
pub struct GatewayRequest<'a> {
    pub query: &'a str,
    pub body: &'a [u8],
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    /// How the client should name this gateway (`GW-IP`).
    pub gateway_host: String,
}

/// The gateway's answer.
#[derive(Debug)]
pub enum GatewayAnswer {
    /// 200 with the session's bytes, its `X-MSN-Messenger` value, and the
    /// bytes' place in the session's output (see [`pipe::Taken`]).
    Bytes { session_header: String, body: Bytes, sequence: Option<u64> },
    /// An HTTP error: unknown or foreign session, bad parameters, too much.
    Refused { status: u16, reason: &'static str },
}

impl GatewayAnswer {
    fn refused(status: u16, reason: &'static str) -> GatewayAnswer {
        GatewayAnswer::Refused { status, reason }
    }
}

/// The query parameters the gateway reads.
#[derive(Debug, Default, PartialEq)]
pub struct Parameters<'a> {
    pub action: Option<&'a str>,
    pub server: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub lifespan: Option<u64>,
}

impl<'a> Parameters<'a> {
    /// Reads a query string; unknown or malformed parameters are ignored.
    pub fn parse(query: &'a str) -> Parameters<'a> {
        let mut p = Parameters::default();
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "Action" => p.action = Some(value),
                "Server" => p.server = Some(value),
                // bitlbee opens with an empty `SessionID=`.
                "SessionID" if !value.is_empty() => p.session_id = Some(value),
                "Lifespan" => p.lifespan = value.parse().ok(),
                _ => {}
            }
        }
        p
    }
}

impl Gateways {
    pub fn new(tracker: TaskTracker, shutdown: watch::Receiver<bool>, permits: Arc<Semaphore>) -> Gateways {
        Gateways { sessions: Mutex::default(), tracker, shutdown, permits }
    }

    /// Answers one gateway request.
    pub async fn handle(&self, shared: &Arc<Shared>, request: GatewayRequest<'_>) -> GatewayAnswer {
        let params = Parameters::parse(request.query);
        let limits = session_limits(shared);
        if request.body.len() > limits {
            return GatewayAnswer::refused(413, "Payload Too Large");
        }
        let (id, session) = match params.session_id {
            Some(id) => match self.sessions.lock().get(id) {
                // Another address's session is as unknown as a made-up one.
                Some(s) if s.owner == request.peer.ip() => (id.to_string(), s.clone()),
                _ => return GatewayAnswer::refused(400, "Bad Request"),
            },
            None if params.action == Some("open") => match params.server {
                Some("NS" | "SB") => match self.open(shared, &request, limits) {
                    Some(opened) => opened,
                    None => return GatewayAnswer::refused(503, "Service Unavailable"),
                },
                _ => return GatewayAnswer::refused(400, "Bad Request"),
            },
            None => return GatewayAnswer::refused(400, "Bad Request"),
        };
        let _counted = InFlight::new(session.clone());
        let n = session.pipe.begin_request();
        let wait = match session.pipe.post(request.body) {
            Err(PostError::Full) => return GatewayAnswer::refused(503, "Service Unavailable"),
            // Whatever it said last still goes out, with `Session=close`.
            Err(PostError::Closed) => Wait::Nothing,
            Ok(()) if !request.body.is_empty() => Wait::Answered,
            Ok(()) if params.action == Some("poll") && params.lifespan.is_some() => {
                Wait::Output { superseded_after: n }
            }
            Ok(()) => Wait::Nothing,
        };
        let limit = match wait {
            Wait::Output { .. } => Duration::from_secs(params.lifespan.unwrap_or(0)).min(MAX_HOLD),
            _ => MAX_ANSWER_WAIT,
        };
        let taken = session.pipe.answer(wait, limit).await;
        let mut header = format!("SessionID={id}; GW-IP={}", request.gateway_host);
        if taken.closed {
            header.push_str("; Session=close");
            self.sessions.lock().remove(&id);
        }
        GatewayAnswer::Bytes { session_header: header, body: taken.bytes, sequence: taken.sequence }
    }

    /// Starts a session for `request`'s client, or `None` when the server or
    /// its address has no socket to spare.
    fn open(
        &self,
        shared: &Arc<Shared>,
        request: &GatewayRequest<'_>,
        limits: usize,
    ) -> Option<(String, Arc<GatewaySession>)> {
        let guards = admit(shared, &self.permits, request.peer)?;
        let (pipe, end) = Pipe::new(limits * 2, MAX_UNSENT);
        let mut conn =
            Connection::stream(end, request.peer, request.local, Limits::default(), timeouts(&shared.config));
        conn.secure = request.tls;
        let (shared, shutdown) = (shared.clone(), self.shutdown.clone());
        self.tracker.spawn(async move {
            let Some(session) = decide_role(conn, Port::Unreferred, &shared).await else { return };
            session.run(shared, shutdown, guards).await
        });
        let id = new_session_id();
        let session = Arc::new(GatewaySession {
            owner: request.peer.ip(),
            pipe,
            last_request: Mutex::new(Instant::now()),
            in_flight: Default::default(),
        });
        self.sessions.lock().insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// Ends sessions whose client stopped asking, and forgets those that
    /// ended without a request to say so. Runs until shutdown.
    pub async fn sweep(self: Arc<Self>, idle: Duration) {
        let mut shutdown = self.shutdown.clone();
        let mut tick = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = Instant::now();
            self.sessions.lock().retain(|_, s| {
                let quiet = now.duration_since(*s.last_request.lock());
                if quiet < idle || s.in_flight.load(Ordering::Relaxed) > 0 {
                    return true;
                }
                s.pipe.close();
                false
            });
        }
    }
}

/// The most one request may post: a whole frame at the session's limits.
fn session_limits(shared: &Shared) -> usize {
    let config = &shared.config;
    config.max_line + config.max_message_size.max(4096)
}

/// A fresh session id: 128 random bits, then `.` and a number, because
/// clients split the id at the dot (`major.minor`) and one crashes without.
fn new_session_id() -> String {
    let random: [u8; 16] = rand::random();
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.{}", rand::random::<u16>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_as_clients_send_them() {
        let p = Parameters::parse("Action=open&Server=NS&IP=messenger.hotmail.com");
        assert_eq!((p.action, p.server, p.session_id), (Some("open"), Some("NS"), None));
        let p = Parameters::parse("SessionID=&Action=open&Server=NS");
        assert_eq!(p.session_id, None);
        let p = Parameters::parse("Action=poll&SessionID=ab.1&Lifespan=60");
        assert_eq!((p.action, p.session_id, p.lifespan), (Some("poll"), Some("ab.1"), Some(60)));
        assert_eq!(Parameters::parse("Lifespan=x&&=&SessionID"), Parameters::default());
    }

    #[test]
    fn session_ids_have_a_dot_and_do_not_repeat() {
        let a = new_session_id();
        assert!(a.contains('.') && a.len() > 32);
        assert_ne!(a, new_session_id());
    }
}
