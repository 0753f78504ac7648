//! The dispatch and notification roles (draft section 7).
//!
//! One state machine serves both: a dispatch connection negotiates the
//! dialect and refers the client to the notification server with `XFR NS`
//! at `USR ... I`; a notification connection carries on with the login, the
//! lists, presence and switchboard referrals. Each request becomes a backend
//! call; each backend event is encoded in the connection's dialect.
//!
//! - `mod.rs`: the connection loop, events, challenges.
//! - `dispatch.rs`: the state gate and the one `match` that sends each
//!   request to its handler; errors are written there.
//! - `session.rs`: version negotiation, state, referrals, settings.
//! - `login.rs`: `USR` for MD5 and Passport (TWN) logins.
//! - `lists.rs`: `SYN`, lists, groups and properties.

mod circles;
mod dispatch;
mod list_documents;
mod lists;
mod login;
mod routed;
mod session;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use backend::Backend;
use backend::limits::Strikes;
use backend::outbox::Outbox;
use backend::presence::ContactPresence;
use backend::presence::{LoadedLists, NsEvent, OnlineUser};
use bytes::Bytes;
use msnp::challenge::{self, QryVerdict};
use msnp::circle::{NotifType, Said, SdgStyle};
use msnp::endpoint::MachineGuid;
use msnp::multiparty;
use msnp::oim::OimEntry;
use msnp::personal::EndpointData;
use msnp::user::UserDocument;
use msnp::{ErrorCode, Frame, ListKind, Reply, TrId};
use tokio::time::sleep_until;

use crate::config::ChallengePolicy;
use crate::connection::{Answer, BATCH, Connection, Flow, Writer, answer_pipelined};
use crate::shared::{Lifecycle, Role, Shared};

/// How long a dispatch connection waits for the client to hang up after
/// `XFR NS` before it closes the connection itself.
pub const REFERRAL_LINGER: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// Boxed: it lasts a few seconds after each challenge.
    pending_challenge: Option<Box<PendingChallenge>>,
    /// When the next CHL is due, once challenges have started.
    next_challenge: Option<Instant>,
    /// A dispatch connection that has sent `XFR NS`: the client hangs up.
    referred: bool,
    /// Rate-limit refusals on this connection.
    strikes: Strikes,
    /// The lists the sign-in read, for the first `SYN`; dropped at the first
    /// request that could change what a `SYN` shows.
    loaded_lists: Option<Box<LoadedLists>>,
    /// The circles this endpoint was admitted to and joined (MSNP18).
    circles: circles::CircleAccess,
}

/// The server is stopping: the client is told so (`OUT SSD`).
fn stopping(w: &mut Writer) -> Flow {
    w.push(&Reply::Out { reason: Some(msnp::reply::OutReason::ServerShutdown) });
    Flow::Close
}

/// Serves one dispatch or notification connection until it ends.
/// `first` is a frame already read while the role was being decided.
#[allow(clippy::manual_async_fn)] // deliberately not an `async fn`: see the body
pub fn serve(
    conn: Connection,
    first: Option<Frame>,
    role: Role,
    shared: Arc<Shared>,
) -> impl Future<Output = ()> + Send + 'static {
    // An `async` block rather than an `async fn`, and the session built
    // before it: a future keeps what it captures for its whole life, so an
    // `async fn` would keep a second copy of its arguments, and a session
    // built inside a second copy of the addresses. This future is the bulk
    // of every idle user's memory.
    let events = Outbox::new(shared.backend.config().outbox_capacity);
    let login_deadline = tokio::time::Instant::now() + shared.config.login_timeout;
    let mut session = NsSession {
        shared,
        role,
        negotiated: false,
        login: Login::Initial,
        events,
        failed_logins: 0,
        peer: conn.peer,
        local: conn.local,
        secure: conn.secure,
        pending_challenge: None,
        next_challenge: None,
        strikes: Strikes::default(),
        loaded_lists: None,
        referred: false,
        circles: circles::CircleAccess::default(),
    };
    let (mut reader, mut writer) = conn.into_halves();
    let events = session.events.clone();
    // Boxed for the same reason: a captured value stays for the whole life.
    let first = first.map(Box::new);
    async move {
        let mut flow = match first {
            Some(frame) => session.answer(*frame, &mut writer).await,
            None => Flow::Continue,
        };
        let mut last_heard = tokio::time::Instant::now();
        let signal = session.shared.lifecycle.listen(events.clone());
        let mut lifecycle = signal.now();
        if lifecycle == Lifecycle::Stopping {
            flow = stopping(&mut writer);
        }
        // One timer lives as long as the connection and is moved, not
        // recreated, on each turn: to the silence deadline or the next
        // challenge, whichever is first. Pushing a deadline later is a
        // compare-and-swap in tokio, not a timer-wheel insertion. Boxed: with
        // it inline, the task tokio allocates for the session falls in the
        // allocator's next size class up.
        let mut timer = Box::pin(sleep_until(login_deadline));
        while flow == Flow::Continue {
            // Boxed, and only when there is something to write: the write's
            // timeout would otherwise be the future's largest state.
            if writer.has_unsent() && Box::pin(writer.flush()).await.is_err() {
                break;
            }
            // In a block, so that none of it is kept across the wait.
            {
                let silence = session.silence_deadline(&writer, last_heard, login_deadline);
                let challenge_due = session.next_timer().map(tokio::time::Instant::from_std);
                let next = challenge_due.map_or(silence, |c| c.min(silence));
                if timer.deadline() != next {
                    timer.as_mut().reset(next);
                }
            }
            flow = tokio::select! {
                // Events queued before a request are answered first, so a
                // client sees the world in the order the server saw it.
                biased;
                event = events.recv() => match event {
                    Some(event) => session.events(event, &mut writer),
                    None => {
                        tracing::info!(peer = %session.peer, "closing a connection that stopped reading");
                        break;
                    }
                },
                // Woken through the event queue (`NodeSignal`).
                now = std::future::poll_fn(|_| match signal.now() {
                    now if now != lifecycle => std::task::Poll::Ready(now),
                    _ => std::task::Poll::Pending,
                }) => {
                    lifecycle = now;
                    match now {
                        Lifecycle::Stopping => stopping(&mut writer),
                        Lifecycle::Draining => session.move_elsewhere(&mut writer),
                        Lifecycle::Serving => Flow::Continue,
                    }
                },
                _ = timer.as_mut() => {
                    if tokio::time::Instant::now() >= session.silence_deadline(&writer, last_heard, login_deadline) {
                        let signed_in = session.user().is_some();
                        tracing::info!(peer = %session.peer, signed_in, "closing a silent connection");
                        break;
                    }
                    session.on_timer(&mut writer)
                }
                frame = reader.next() => match frame {
                    Ok(Some(frame)) => {
                        last_heard = tokio::time::Instant::now();
                        let halves = (&mut reader, &mut writer, session.peer);
                        // Boxed: answering is this future's largest state,
                        // and an idle session should not carry its room.
                        Box::pin(answer_pipelined(&mut session, frame, halves, NsSession::answer, |s| {
                            s.events.is_empty()
                        }))
                        .await
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
            let removal = session.shared.backend.sign_out(&user);
            // The other members see the roster without this account once
            // its last endpoint is gone.
            let joined = session.circles.take_joined();
            if !joined.is_empty() && removal == backend::presence::Removal::SignedOut {
                let backend = session.shared.backend.clone();
                tokio::spawn(async move { backend.circles_went_offline(&user, &joined).await });
            }
        }
        if session.referred {
            // After `XFR NS` the client hangs up and goes to the notification
            // server. Closing first can lose the referral: aMSN pipelines
            // VER, CVR and USR, and reads our close before it has handled
            // the XFR line already in its buffer. Wait for the client, a
            // while, reading (and ignoring) whatever it still sends.
            // Boxed: states of their own, larger than an idle session's.
            if Box::pin(writer.flush()).await.is_ok() {
                let linger = async { while let Ok(Some(_)) = reader.next().await {} };
                let _ = Box::pin(tokio::time::timeout(REFERRAL_LINGER, linger)).await;
            }
        }
        Box::pin(writer.close()).await;
    }
}

impl NsSession {
    /// When silence means the client is gone: before sign-in the login
    /// deadline; after it, the idle limit past the last command heard.
    fn silence_deadline(
        &self,
        w: &Writer,
        last_heard: tokio::time::Instant,
        login_deadline: tokio::time::Instant,
    ) -> tokio::time::Instant {
        let config = &self.shared.config;
        let idle_limit = if w.dialect.qng_has_interval() { config.idle_timeout } else { config.legacy_idle_timeout };
        match self.login {
            Login::SignedIn(_) => last_heard + idle_limit,
            _ => login_deadline,
        }
    }

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
            NsEvent::Presence(presence) if dialect.presence_in_documents() => {
                let doc = UserDocument::of_presence(&presence);
                self.push_user_document(w, &presence.handle, &doc, NotifType::Partial);
            }
            NsEvent::Presence(presence) => w.push(&Reply::Nln { presence }),
            NsEvent::Offline { handle } if dialect.presence_in_documents() => {
                if let Some(me) = self.user() {
                    let gone = msnp::user::offline_notification(&me.handle, &handle);
                    w.push(&Reply::Nfy { removal: true, payload: gone.to_bytes() });
                }
            }
            NsEvent::Offline { handle } => w.push(&Reply::Fln { handle }),
            NsEvent::PersonalMessage { handle, payload, .. } if dialect.presence_in_documents() => {
                let doc = UserDocument {
                    personal_message: Some(msnp::personal::status_of(&payload)),
                    ..UserDocument::default()
                };
                self.push_user_document(w, &handle, &doc, NotifType::Partial);
            }
            // Said without a switchboard reaches the clients that have none.
            NsEvent::Said { from, from_endpoint, to, said } if !dialect.has_switchboard() => {
                self.push_said(w, from, from_endpoint, to, said);
            }
            NsEvent::Said { .. } => {}
            NsEvent::GroupChatInvited { .. }
            | NsEvent::GroupChatRoster { .. }
            | NsEvent::GroupChatLeft { .. }
            | NsEvent::GroupChatSaid { .. }
                if !dialect.has_switchboard() =>
            {
                self.push_group_chat(w, event);
            }
            NsEvent::GroupChatInvited { .. }
            | NsEvent::GroupChatRoster { .. }
            | NsEvent::GroupChatLeft { .. }
            | NsEvent::GroupChatSaid { .. } => {}
            // MSN clients read their own lists anew at their next sync.
            NsEvent::OwnListChanged { .. } => {}
            NsEvent::ListAdded { list: ListKind::Reverse, handle, friendly, .. }
                if dialect.reverse_list_changes_as_adl() =>
            {
                let payload = list_documents::reverse_list_document(&handle, Some(&friendly));
                w.push(&Reply::ReverseListChange { added: true, payload });
                self.push_lists_changed(w);
            }
            NsEvent::ListRemoved { list: ListKind::Reverse, handle, .. } if dialect.reverse_list_changes_as_adl() => {
                let payload = list_documents::reverse_list_document(&handle, None);
                w.push(&Reply::ReverseListChange { added: false, payload });
                self.push_lists_changed(w);
            }
            NsEvent::ListAdded { list, serial, handle, friendly } => {
                w.push(&Reply::Add { trid: 0, list, serial, handle, friendly, group: None, guid: None })
            }
            NsEvent::ListRemoved { list, serial, handle } => {
                w.push(&Reply::Rem { trid: 0, list, serial, handle, guid: None, group: None })
            }
            NsEvent::Ring { session_id, cookie, caller, caller_friendly, address, .. } => {
                // Another node's switchboard names its own address.
                let address = address.unwrap_or_else(|| self.sb_address());
                w.push(&Reply::Rng { session_id: session_id.into(), address, cookie, caller, caller_friendly });
            }
            NsEvent::SystemMessage { payload } => w.push(&system_message(payload.to_vec())),
            NsEvent::PersonalMessage { handle, payload, endpoints } => {
                self.push_ubx(w, handle, Some(&payload), &endpoints);
            }
            // News only to clients that show endpoints as UBX.
            NsEvent::EndpointsChanged { handle, payload, endpoints } if dialect.shows_endpoints_in_ubx() => {
                self.push_ubx(w, handle, payload.as_deref(), &endpoints);
            }
            NsEvent::EndpointsChanged { .. } => {}
            // Sent only to clients that read offline messages from the web
            // service (`Backend::deliver_offline` decides by the dialect).
            NsEvent::OfflineMessagesWaiting { messages } => {
                let entries: Vec<OimEntry> = messages.into_iter().map(OimEntry::from).collect();
                w.push(&system_message(msnp::oim::arrival_notification(&entries).to_bytes()));
            }
            NsEvent::ClientNotice { from, from_endpoint, kind, payload } => {
                if dialect.has_command("UUN") {
                    let from = msnp::endpoint::Address { handle: from, endpoint: from_endpoint };
                    w.push(&Reply::Ubn { from, kind, payload });
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
            NsEvent::CirclesChanged { .. }
            | NsEvent::CircleRoster { .. }
            | NsEvent::CircleLeft { .. }
            | NsEvent::CircleSaid { .. } => self.circle_event(event, w),
        }
        Flow::Continue
    }

    /// `UBX` for `handle`, in this client's dialect; with the private
    /// endpoint data when `handle` is this account.
    fn push_ubx(&self, w: &mut Writer, handle: String, personal: Option<&str>, endpoints: &[EndpointData]) {
        let own = matches!(&self.login, Login::SignedIn(u) if u.handle.eq_ignore_ascii_case(&handle));
        if let Some(doc) = msnp::personal::ubx_document(w.dialect, personal, endpoints, own) {
            w.push(&Reply::Ubx { handle, payload: Bytes::from(doc) });
        }
    }

    /// A contact's presence, in this client's dialect: `ILN` (answering
    /// `trid`) or `NLN`, then `UBX` with the personal message; or (MSNP21)
    /// one user document, whole when it answers a request.
    pub(super) fn push_presence(&self, w: &mut Writer, trid: Option<TrId>, contact: ContactPresence) {
        if w.dialect.presence_in_documents() {
            let mut doc = UserDocument::of_presence(&contact.line);
            doc.personal_message = contact.personal_message.as_deref().map(msnp::personal::status_of);
            let kind = if trid.is_some() { NotifType::Full } else { NotifType::Partial };
            self.push_user_document(w, &contact.line.handle, &doc, kind);
            return;
        }
        let handle = contact.line.handle.clone();
        match trid {
            Some(trid) => w.push(&Reply::Iln { trid, presence: contact.line }),
            None => w.push(&Reply::Nln { presence: contact.line }),
        }
        let doc =
            msnp::personal::ubx_document(w.dialect, contact.personal_message.as_deref(), &contact.endpoints, false);
        if let Some(doc) = doc {
            w.push(&Reply::Ubx { handle, payload: Bytes::from(doc) });
        }
    }

    /// `NFY PUT` of what `from` published, to this user (MSNP21).
    fn push_user_document(&self, w: &mut Writer, from: &str, doc: &UserDocument, kind: NotifType) {
        let Some(me) = self.user() else { return };
        let put = msnp::user::presence_notification(&me.handle, from, doc, kind);
        w.push(&Reply::Nfy { removal: false, payload: put.to_bytes() });
    }

    /// Something said to this account without a switchboard (MSNP21), or
    /// this account's words on another of its endpoints.
    fn push_said(&self, w: &mut Writer, from: String, from_endpoint: Option<MachineGuid>, to: String, said: Said) {
        let Some(me) = self.user() else { return };
        // Not back to the endpoint that said it.
        if from.eq_ignore_ascii_case(&me.handle) && from_endpoint == me.machine {
            return;
        }
        let endpoint = from_endpoint.as_ref().map(MachineGuid::as_str);
        let message = msnp::circle::said_message(&format!("1:{to}"), &from, endpoint, &said, SdgStyle::Direct);
        w.push(&Reply::Sdg { payload: message.to_bytes() });
    }

    /// A group conversation's news, to an endpoint without a switchboard.
    fn push_group_chat(&self, w: &mut Writer, event: NsEvent) {
        let Some(me) = self.user() else { return };
        let reply = match event {
            NsEvent::GroupChatInvited { group } => {
                Reply::Nfy { removal: false, payload: multiparty::notification(&me.handle, &group, None).to_bytes() }
            }
            NsEvent::GroupChatRoster { group, members } => {
                let put = multiparty::notification(&me.handle, &group, Some(&members));
                Reply::Nfy { removal: false, payload: put.to_bytes() }
            }
            NsEvent::GroupChatLeft { group, who } => {
                Reply::Nfy { removal: true, payload: multiparty::left(&me.handle, &group, &who).to_bytes() }
            }
            NsEvent::GroupChatSaid { group, from, from_endpoint, said } => {
                // Not back to the endpoint that said it.
                if from.eq_ignore_ascii_case(&me.handle) && from_endpoint == me.machine {
                    return;
                }
                let endpoint = from_endpoint.as_ref().map(MachineGuid::as_str);
                Reply::Sdg { payload: multiparty::message(&group, &from, endpoint, &said).to_bytes() }
            }
            _ => return,
        };
        w.push(&reply);
    }

    /// Tells an MSNP13+ client that its memberships changed on the server
    /// (the address book's `NOT`), so that it fetches them again.
    fn push_lists_changed(&self, w: &mut Writer) {
        if let Login::SignedIn(user) = &self.login {
            let notice = msnp::addressbook::changed_notice(user.account_id as u64, &user.handle);
            w.push(&Reply::Not { payload: Bytes::from(notice) });
        }
    }

    /// When a user becomes visible: MSNP11+ clients get the mail-data
    /// notification listing their offline messages (at sign-in), and every
    /// dialect gets them through switchboard invitations from their senders.
    async fn offer_offline_messages(&mut self, user: &Arc<OnlineUser>, first: bool, w: &mut Writer) {
        let backend = self.shared.backend.clone();
        let mail_data = first && w.dialect.has_personal_message();
        let invitations = !w.dialect.reads_offline_messages_over_soap();
        if !mail_data && !invitations {
            return;
        }
        let waiting = backend.pending_offline(user).await;
        if mail_data && !waiting.is_empty() {
            let entries: Vec<OimEntry> = waiting.iter().map(|m| OimEntry::from(m.waiting())).collect();
            w.push(&system_message(msnp::oim::mail_data_notification(&entries).to_bytes()));
        }
        // A client that reads them from the web service has just been told.
        if invitations {
            backend.deliver_pending_offline(user, waiting);
        }
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
        self.pending_challenge = Some(Box::new(PendingChallenge { challenge, sent: Instant::now() }));
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

/// An `ILN` (with a TrID) or `NLN`, followed on MSNP11+ by the contact's
/// personal message.
/// A message from the service itself, which clients see as from `Hotmail`.
fn system_message(payload: Vec<u8>) -> Reply {
    Reply::Msg { handle: "Hotmail".into(), friendly: "Hotmail".into(), payload: Bytes::from(payload) }
}
