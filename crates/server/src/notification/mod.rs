//! The dispatch and notification roles (draft section 7).
//!
//! One state machine serves both: a dispatch connection negotiates the
//! dialect and refers the client to the notification server with `XFR NS`
//! at `USR ... I`; a notification connection carries on with the login, the
//! lists, presence and switchboard referrals. Each request becomes a backend
//! call; each backend event is encoded in the connection's dialect.
//!
//! - `mod.rs`: the connection loop, dispatch of requests, events, challenges.
//! - `login.rs`: `USR` for MD5 and Passport (TWN) logins.
//! - `lists.rs`: `SYN`, lists, groups and properties.

mod lists;
mod login;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use backend::Backend;
use backend::limits::{Action, Strikes};
use backend::outbox::Outbox;
use backend::presence::ContactPresence;
use backend::presence::{LoadedLists, NsEvent, OnlineUser};
use bytes::Bytes;
use msnp::challenge::{self, QryVerdict};
use msnp::dialect::negotiate;
use msnp::oim::OimEntry;
use msnp::request::NsRequest;
use msnp::{ErrorCode, Frame, Reply, TrId};
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::config::ChallengePolicy;
use crate::connection::{Answer, BATCH, Connection, Flow, Writer, answer_pipelined};
use crate::shared::Shared;

/// Which role a connection plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Negotiates, then refers the client to a notification server.
    Dispatch,
    Notification,
}

/// How far the login has come.
enum Login {
    Initial,
    /// Boxed: it lasts one round trip, and every signed-in session would
    /// otherwise keep its space.
    Challenged(Box<Challenged>),
    SignedIn(Arc<OnlineUser>),
}

/// A login between `USR ... I` and `USR ... S`.
struct Challenged {
    handle: backend::Handle,
    sent_handle: String,
    challenge: String,
}

/// A CHL sent and not yet answered.
struct PendingChallenge {
    challenge: String,
    sent: Instant,
}

struct NsSession {
    shared: Arc<Shared>,
    role: Role,
    negotiated: bool,
    login: Login,
    events: Outbox<NsEvent>,
    failed_logins: u8,
    peer: SocketAddr,
    local: SocketAddr,
    /// Arrived over TLS: switchboard referrals then name the TLS port.
    secure: bool,
    pending_challenge: Option<PendingChallenge>,
    /// When the next CHL is due, once challenges have started.
    next_challenge: Option<Instant>,
    /// Rate-limit refusals on this connection.
    strikes: Strikes,
    /// The lists the sign-in read, for the first `SYN`; dropped at the first
    /// request that could change what a `SYN` shows.
    loaded_lists: Option<Box<LoadedLists>>,
}

/// Serves one dispatch or notification connection until it ends.
/// `first` is a frame already read while the role was being decided.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see the body
pub fn serve(
    mut conn: Connection,
    first: Option<Frame>,
    role: Role,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    // An `async` block rather than an `async fn`: an `async fn` keeps a
    // second copy of its arguments (the connection, the first frame) in
    // its future, and this future is the bulk of every idle user's memory.
    async move {
        let events = Outbox::new(shared.backend.config().outbox_capacity);
        let login_deadline = tokio::time::Instant::now() + shared.config.login_timeout;
        let mut session = NsSession {
            shared,
            role,
            negotiated: false,
            login: Login::Initial,
            events: events.clone(),
            failed_logins: 0,
            peer: conn.peer,
            local: conn.local,
            secure: conn.secure,
            pending_challenge: None,
            next_challenge: None,
            strikes: Strikes::default(),
            loaded_lists: None,
        };

        let mut flow = match first {
            Some(frame) => session.answer(frame, &mut conn.writer).await,
            None => Flow::Continue,
        };
        let mut last_heard = tokio::time::Instant::now();
        let mut drain = session.shared.drain.subscribe();
        // One timer lives as long as the connection and is moved, not
        // recreated, on each turn: to the silence deadline or the next
        // challenge, whichever is first. Pushing a deadline later is a
        // compare-and-swap in tokio, not a timer-wheel insertion.
        let timer = sleep_until(login_deadline);
        tokio::pin!(timer);
        while flow == Flow::Continue {
            if conn.writer.flush().await.is_err() {
                break;
            }
            let user = session.user();
            // Before sign-in the login deadline applies; after it, silence past
            // the idle limit means the client is gone.
            let config = &session.shared.config;
            let idle_limit =
                if conn.writer.dialect.qng_has_interval() { config.idle_timeout } else { config.legacy_idle_timeout };
            let deadline = if user.is_none() { login_deadline } else { last_heard + idle_limit };
            let challenge_due = session.next_timer().map(tokio::time::Instant::from_std);
            let next = challenge_due.map_or(deadline, |c| c.min(deadline));
            if timer.deadline() != next {
                timer.as_mut().reset(next);
            }
            flow = tokio::select! {
                // Events queued before a request are answered first, so a
                // client sees the world in the order the server saw it.
                biased;
                event = events.recv() => match event {
                    Some(event) => session.events(event, &mut conn.writer),
                    None => {
                        tracing::info!(peer = %session.peer, "closing a connection that stopped reading");
                        break;
                    }
                },
                _ = shutdown.changed() => {
                    conn.writer.push(&Reply::Out { reason: Some(msnp::reply::OutReason::ServerShutdown) });
                    Flow::Close
                }
                _ = drain.changed() => session.move_elsewhere(&mut conn.writer),
                _ = &mut timer => {
                    if tokio::time::Instant::now() >= deadline {
                        tracing::info!(peer = %session.peer, signed_in = user.is_some(), "closing a silent connection");
                        break;
                    }
                    session.on_timer(&mut conn.writer)
                }
                frame = conn.reader.next() => match frame {
                    Ok(Some(frame)) => {
                        last_heard = tokio::time::Instant::now();
                        answer_pipelined(&mut session, frame, &mut conn, NsSession::answer, |s| s.events.is_empty()).await
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(peer = %session.peer, "closing: {e}");
                        break;
                    }
                },
            };
        }
        // Sign out first: once the client sees the connection close, its
        // presence and web token are already gone.
        if let Some(user) = session.user() {
            session.shared.backend.sign_out(&user);
        }
        conn.writer.close().await;
    }
}

impl NsSession {
    fn answer<'a>(&'a mut self, frame: Frame, w: &'a mut Writer) -> Answer<'a> {
        Box::pin(self.handle(frame, w))
    }

    /// Looked up for each command and event, so `msnd trace` takes effect
    /// at once.
    fn refresh_trace(&self, w: &mut Writer) {
        let key = match &self.login {
            Login::SignedIn(u) => Some(u.key.as_str()),
            _ => None,
        };
        w.trace = self.shared.trace_for(key);
    }

    fn user(&self) -> Option<Arc<OnlineUser>> {
        match &self.login {
            Login::SignedIn(u) => Some(u.clone()),
            _ => None,
        }
    }

    fn backend(&self) -> &Backend {
        &self.shared.backend
    }

    /// The host put into referrals: the configured public host, or the
    /// address this client reached us on.
    fn host(&self) -> String {
        match &self.shared.config.public_host {
            Some(h) => h.clone(),
            None if self.local.is_ipv6() => format!("[{}]", self.local.ip()),
            None => self.local.ip().to_string(),
        }
    }

    /// The node is draining: refer the client to another notification node
    /// with an asynchronous `XFR 0 NS` (draft 7.4) and close; it signs in
    /// there. Without another node, carry on.
    fn move_elsewhere(&mut self, w: &mut Writer) -> Flow {
        let Some(cluster) = &self.shared.cluster else { return Flow::Continue };
        let key = match &self.login {
            Login::SignedIn(u) => u.key.clone(),
            _ => String::new(),
        };
        match cluster.pick_notification(&key, Some(cluster.node_id())) {
            Some(address) => {
                let current = format!("{}:{}", self.host(), self.local.port());
                w.push(&Reply::XfrNs { trid: 0, address, current });
                Flow::Close
            }
            None => {
                tracing::warn!("draining, but no other notification node to move clients to");
                Flow::Continue
            }
        }
    }

    fn sb_address(&self) -> String {
        let port = match self.shared.msnp_tls_port {
            Some(port) if self.secure => port,
            _ => self.shared.sb_port,
        };
        format!("{}:{}", self.host(), port)
    }

    async fn handle(&mut self, frame: Frame, w: &mut Writer) -> Flow {
        self.refresh_trace(w);
        w.trace_in(&frame);
        let request = match NsRequest::parse(&frame, w.dialect) {
            Ok(r) => r,
            Err(e) => {
                w.push(&Reply::Error { code: e.code, trid: e.trid });
                return Flow::Continue;
            }
        };
        if !leaves_lists_as_they_were(&request) {
            self.loaded_lists = None;
        }
        // Offline messages written to one of this client's switchboard
        // connections are confirmed by its next word here (a PNG will do).
        if let Login::SignedIn(user) = &self.login {
            self.shared.backend.client_spoke(user).await;
        }
        match request {
            // A client may never send MSG to a notification server; the
            // official service closed the connection at once.
            NsRequest::Msg { .. } => return Flow::Close,
            // The official service answered a client's OUT by closing the
            // connection; a bare `OUT` back breaks strict parsers.
            NsRequest::Out => return Flow::Close,
            NsRequest::Png => {
                w.push(&Reply::Qng { interval: self.shared.config.ping_interval });
                return Flow::Continue;
            }
            NsRequest::Ver { trid, dialects } => {
                if self.negotiated {
                    w.push(&Reply::error(ErrorCode::NotExpected, trid));
                    return Flow::Continue;
                }
                return match negotiate(dialects.iter().map(String::as_str), &self.shared.config.dialects) {
                    Some(d) => {
                        self.negotiated = true;
                        w.dialect = d;
                        w.push(&Reply::Ver { trid, dialect: Some(d) });
                        Flow::Continue
                    }
                    None => {
                        w.push(&Reply::Ver { trid, dialect: None });
                        Flow::Close
                    }
                };
            }
            _ => {}
        }
        if !self.negotiated {
            w.push(&Reply::Error { code: ErrorCode::NotExpected, trid: request.trid() });
            return Flow::Continue;
        }
        if !w.dialect.has_command(frame.verb()) {
            w.push(&Reply::Error { code: ErrorCode::CommandDisabled, trid: request.trid() });
            return Flow::Continue;
        }
        match request {
            NsRequest::Inf { trid } => {
                w.push(&Reply::Inf { trid, packages: vec![msnp::dialect::AuthScheme::Md5] });
                Flow::Continue
            }
            NsRequest::Cvr { trid, args } => {
                // Echo the client's own version everywhere: that never
                // triggers an upgrade prompt.
                match args.get(5) {
                    Some(version) => w.push(&Reply::Cvr {
                        trid,
                        recommended: version.clone(),
                        minimum: version.clone(),
                        download_url: "http://messenger.invalid/download".into(),
                        info_url: "http://messenger.invalid/".into(),
                    }),
                    None => w.push(&Reply::error(ErrorCode::BadCvr, trid)),
                }
                Flow::Continue
            }
            NsRequest::Usr { trid, step } => self.usr(trid, step, w).await,
            // QRY answers a challenge; it may come at any time after one.
            NsRequest::Qry { trid, product_id, payload } => self.qry(trid, &product_id, &payload, w),
            other => match self.user() {
                Some(user) => self.signed_in(other, &user, w).await,
                None => {
                    w.push(&Reply::Error { code: ErrorCode::NotLoggedIn, trid: other.trid() });
                    Flow::Continue
                }
            },
        }
    }

    async fn signed_in(&mut self, request: NsRequest, user: &Arc<OnlineUser>, w: &mut Writer) -> Flow {
        let backend = self.shared.backend.clone();
        if let Some((action, code)) = rate_limited_action(&request)
            && !backend.allow(&user.key, action)
        {
            w.push(&Reply::Error { code, trid: request.trid() });
            return self.strike();
        }
        match request {
            NsRequest::Chg { trid, state, client_id, msn_object } => {
                let first = !user.presence().started;
                let was_visible = user.presence_line().is_some();
                match backend.change_state(user, state, client_id, msn_object.clone()).await {
                    Ok(initial) => {
                        w.push(&Reply::Chg { trid, state, client_id, msn_object });
                        for contact in initial {
                            push_presence(w, Some(trid), contact);
                        }
                        if first {
                            self.start_challenges(w);
                        }
                        if !was_visible && state.is_visible() {
                            self.offer_offline_messages(user, first, w).await;
                        }
                    }
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            NsRequest::XfrSb { trid } => match backend.request_switchboard(user).await {
                Ok((cookie, elsewhere)) => {
                    let address = elsewhere.unwrap_or_else(|| self.sb_address());
                    w.push(&Reply::XfrSb { trid, address, cookie })
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Uux { trid, payload } => {
                let result = match std::str::from_utf8(&payload) {
                    Ok(text) => backend.set_personal_message(user, text).await,
                    Err(_) => Err(ErrorCode::InvalidParameter),
                };
                match result {
                    Ok(()) => w.push(&Reply::Uux { trid }),
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            NsRequest::Gcf { trid, file } => {
                const SHIELDS: &str = r#"<?xml version="1.0" encoding="utf-8" ?><config><shield><cli maj="7" min="0" minbld="0" maxbld="9999" deny=" " /></shield><block></block></config>"#;
                w.push(&Reply::Gcf { trid, file, payload: Bytes::from_static(SHIELDS.as_bytes()) });
            }
            NsRequest::Url { trid, service } => {
                // The bound port: the configured one may be 0.
                let base = match self.shared.http_port() {
                    Some(port) => format!("http://{}:{port}", self.host()),
                    None => format!("http://{}", self.host()),
                };
                w.push(&Reply::Url {
                    trid,
                    rru: format!("/{}", service.to_ascii_lowercase()),
                    url: format!("{base}/status.json"),
                    id: 2,
                });
            }
            NsRequest::Ims { trid, on } => {
                backend.set_accepts_invitations(user, on);
                w.push(&Reply::Ims { trid, on });
            }
            // We send no e-mail and have no member directory: say so rather
            // than pretend.
            NsRequest::Sdc { trid } | NsRequest::Snd { trid, .. } | NsRequest::Fnd { trid } => {
                w.push(&Reply::error(ErrorCode::CommandDisabled, trid));
            }
            other => return self.list_request(other, user, w).await,
        }
        Flow::Continue
    }

    /// Encodes an event and every other one already waiting (up to a
    /// batch), so that a burst of presence reaches the client in one write.
    fn events(&mut self, first: NsEvent, w: &mut Writer) -> Flow {
        let mut flow = self.event(first, w);
        for _ in 0..BATCH {
            if flow != Flow::Continue {
                break;
            }
            match self.events.pop() {
                Some(event) => flow = self.event(event, w),
                None => break,
            }
        }
        flow
    }

    fn event(&mut self, event: NsEvent, w: &mut Writer) -> Flow {
        self.refresh_trace(w);
        let dialect = w.dialect;
        match event {
            NsEvent::Presence(presence) => w.push(&Reply::Nln { presence }),
            NsEvent::Offline { handle } => w.push(&Reply::Fln { handle }),
            NsEvent::ListAdded { list, serial, handle, friendly } => {
                w.push(&Reply::Add { trid: 0, list, serial, handle, friendly, group: None, guid: None })
            }
            NsEvent::ListRemoved { list, serial, handle } => {
                w.push(&Reply::Rem { trid: 0, list, serial, handle, guid: None, group: None })
            }
            NsEvent::Ring { session_id, cookie, caller, caller_friendly, address } => {
                // Another node's switchboard names its own address.
                let address = address.unwrap_or_else(|| self.sb_address());
                w.push(&Reply::Rng { session_id, address, cookie, caller, caller_friendly });
            }
            NsEvent::SystemMessage { payload } => w.push(&system_message(payload.to_vec())),
            NsEvent::PersonalMessage { handle, payload } => {
                if dialect.has_personal_message() {
                    w.push(&Reply::Ubx { handle, payload: Bytes::from(payload) });
                }
            }
            NsEvent::ContactProperty { serial, handle, kind, value } => {
                if dialect.has_phones() {
                    w.push(&Reply::Bpr { serial, handle, kind, value, in_sync: false });
                }
            }
            NsEvent::Kick(reason) => {
                w.push(&Reply::Out { reason });
                return Flow::Close;
            }
        }
        Flow::Continue
    }

    /// When a user becomes visible: MSNP11+ clients get the mail-data
    /// notification listing their offline messages (at sign-in), and every
    /// dialect gets them through switchboard invitations from their senders.
    async fn offer_offline_messages(&mut self, user: &Arc<OnlineUser>, first: bool, w: &mut Writer) {
        let backend = self.shared.backend.clone();
        if first && w.dialect.has_personal_message() {
            let waiting = backend.pending_offline(user).await;
            if !waiting.is_empty() {
                let entries: Vec<OimEntry> = waiting
                    .iter()
                    .map(|m| OimEntry {
                        guid: m.guid.clone(),
                        sender: m.sender.clone(),
                        sender_friendly: m.sender_friendly.clone(),
                        sent_at_ms: m.sent_at_ms,
                        size: m.payload.len(),
                    })
                    .collect();
                w.push(&system_message(msnp::oim::mail_data_notification(&entries).to_bytes()));
            }
        }
        backend.deliver_offline(user).await;
    }

    /// Counts a refusal; too many in a minute and the connection is closed.
    fn strike(&mut self) -> Flow {
        if self.strikes.strike(self.shared.backend.config().rate_limits.abuse_strikes) {
            self.shared.counters.abuse_disconnects.fetch_add(1, Ordering::Relaxed);
            tracing::info!(peer = %self.peer, "closing a connection that keeps flooding");
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    // ----- challenges -----------------------------------------------------

    /// Sends the first CHL after the first CHG, for dialects that have it.
    fn start_challenges(&mut self, w: &mut Writer) {
        if self.shared.config.challenges == ChallengePolicy::Off
            || challenge::ChallengeAlgorithm::for_dialect(w.dialect).is_none()
        {
            return;
        }
        self.send_challenge(w);
    }

    fn send_challenge(&mut self, w: &mut Writer) {
        // 20 digits: never a multiple of 8 with a 16-character product id,
        // which avoids the MSNP11 padding ambiguity.
        let challenge = backend::secrets::random_digits(20);
        w.push(&Reply::Chl { challenge: challenge.clone() });
        self.pending_challenge = Some(PendingChallenge { challenge, sent: Instant::now() });
        self.next_challenge = Some(Instant::now() + self.shared.config.challenge_interval);
    }

    fn next_timer(&self) -> Option<Instant> {
        let answer_due = self.pending_challenge.as_ref().map(|p| p.sent + self.shared.config.challenge_timeout);
        match (answer_due, self.next_challenge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, w: &mut Writer) -> Flow {
        let now = Instant::now();
        let timeout = self.shared.config.challenge_timeout;
        if self.pending_challenge.as_ref().is_some_and(|p| p.sent + timeout <= now) {
            self.pending_challenge = None;
            self.shared.counters.challenges_unanswered.fetch_add(1, Ordering::Relaxed);
            if self.shared.config.challenges == ChallengePolicy::Strict {
                tracing::info!(peer = %self.peer, "closing: challenge not answered");
                return Flow::Close;
            }
        }
        if self.next_challenge.is_some_and(|t| t <= now) {
            self.send_challenge(w);
        }
        Flow::Continue
    }

    fn qry(&mut self, trid: TrId, product_id: &str, payload: &[u8], w: &mut Writer) -> Flow {
        let Some(pending) = self.pending_challenge.take() else {
            w.push(&Reply::error(ErrorCode::NotExpected, trid));
            return Flow::Continue;
        };
        let verdict = challenge::verify(w.dialect, &pending.challenge, product_id, payload);
        let counters = &self.shared.counters;
        match verdict {
            QryVerdict::Correct => {}
            QryVerdict::Wrong => {
                counters.challenges_failed.fetch_add(1, Ordering::Relaxed);
            }
            QryVerdict::UnknownProduct => {
                counters.unknown_products.fetch_add(1, Ordering::Relaxed);
            }
        }
        if verdict != QryVerdict::Correct && self.shared.config.challenges == ChallengePolicy::Strict {
            tracing::info!(peer = %self.peer, product_id, ?verdict, "closing: challenge failed");
            w.push(&Reply::error(ErrorCode::ChallengeFailed, trid));
            return Flow::Close;
        }
        if verdict != QryVerdict::Correct {
            tracing::debug!(peer = %self.peer, product_id, ?verdict, "challenge failed; serving on (lenient)");
        }
        w.push(&Reply::QryOk { trid });
        Flow::Continue
    }
}

/// The rate-limited kind of a request, and the error a dialect's clients
/// expect when it is refused: 800 "changing too rapidly" for names and
/// states, 713 "user too active" for invitations and list changes.
fn rate_limited_action(request: &NsRequest) -> Option<(Action, ErrorCode)> {
    use NsRequest::*;
    match request {
        Chg { .. } | Rea { .. } | Uux { .. } => Some((Action::StateChange, ErrorCode::ChangingTooRapidly)),
        Prp { kind, .. } if kind == "MFN" => Some((Action::StateChange, ErrorCode::ChangingTooRapidly)),
        XfrSb { .. } => Some((Action::Invitation, ErrorCode::UserTooActive)),
        Add { .. }
        | Adc { .. }
        | Rem { .. }
        | Adg { .. }
        | Rmg { .. }
        | Reg { .. }
        | Prp { .. }
        | Sbp { .. }
        | Gtc { .. }
        | Blp { .. } => Some((Action::ListChange, ErrorCode::UserTooActive)),
        // Named one by one, so that a new command is decided here.
        Ver { .. } | Inf { .. } | Cvr { .. } | Usr { .. } | Syn { .. } | Lst { .. } | Lsg { .. } | Qry { .. } => None,
        Gcf { .. } | Url { .. } | Sdc { .. } | Snd { .. } | Ims { .. } | Fnd { .. } | Png | Out | Msg { .. } => None,
    }
}

/// Requests after which the lists the sign-in read are still kept for the
/// first `SYN`: the ones clients send between signing in and their `SYN`,
/// none of which changes what it shows. Anything else (a `CHG` first, for
/// a client that syncs late or never) drops them, so that no session holds
/// a snapshot for long.
fn leaves_lists_as_they_were(request: &NsRequest) -> bool {
    use NsRequest::*;
    // Named one by one, so that a new command is decided here.
    match request {
        Syn { .. } | Cvr { .. } | Gcf { .. } | Url { .. } => true,
        Ver { .. } | Inf { .. } | Usr { .. } | Lst { .. } | Lsg { .. } | Gtc { .. } | Blp { .. } | Add { .. } => false,
        Adc { .. } | Rem { .. } | Adg { .. } | Rmg { .. } | Reg { .. } | Prp { .. } | Sbp { .. } | Chg { .. } => false,
        Rea { .. } | XfrSb { .. } | Qry { .. } | Uux { .. } | Sdc { .. } | Snd { .. } | Ims { .. } => false,
        Fnd { .. } | Png | Out | Msg { .. } => false,
    }
}

/// An `ILN` (with a TrID) or `NLN`, followed on MSNP11+ by the contact's
/// personal message.
fn push_presence(w: &mut Writer, trid: Option<TrId>, contact: ContactPresence) {
    let handle = contact.line.handle.clone();
    match trid {
        Some(trid) => w.push(&Reply::Iln { trid, presence: contact.line }),
        None => w.push(&Reply::Nln { presence: contact.line }),
    }
    if let (true, Some(psm)) = (w.dialect.has_personal_message(), contact.personal_message) {
        w.push(&Reply::Ubx { handle, payload: Bytes::from(psm) });
    }
}

/// A message from the service itself, which clients see as from `Hotmail`.
fn system_message(payload: Vec<u8>) -> Reply {
    Reply::Msg { handle: "Hotmail".into(), friendly: "Hotmail".into(), payload: Bytes::from(payload) }
}
