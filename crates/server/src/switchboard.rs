//! The switchboard role (draft section 8): sessions opened with an `XFR SB`
//! cookie or joined with an `RNG` cookie, invitations, and message relay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backend::limits::{Action, Strikes};
use backend::service::{RelayKind, Relayed};
use backend::switchboard::{Participant, SbEvent, SwitchboardSession};
use msnp::request::SbRequest;
use msnp::{AckMode, ErrorCode, Frame, Reply};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::connection::{Answer, BATCH, Connection, Flow, Writer, answer_pipelined};
use crate::shared::Shared;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// How long a sender waits for a participant whose queue is full before
/// that participant counts as stalled and is removed. A reader that is only
/// slow frees a slot long before this; one that takes nothing this long
/// with 512 messages waiting has stopped reading.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

struct SbSession {
    shared: Arc<Shared>,
    id: u64,
    events: mpsc::Sender<SbEvent>,
    joined: Option<(Arc<SwitchboardSession>, Arc<Participant>)>,
    /// Offline messages queued for this connection, not yet written.
    offline_queued: Vec<i64>,
    /// Offline messages written to the client and not yet confirmed, and
    /// how many bytes the client had sent when they were.
    offline_written: Vec<i64>,
    written_mark: u64,
    strikes: Strikes,
}

/// Serves one switchboard connection, whose first frame (`USR` or `ANS`) has
/// already been read.
pub async fn serve(mut conn: Connection, first: Frame, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let (events_tx, mut events) = mpsc::channel(shared.backend.config().outbox_capacity);
    let deadline = tokio::time::Instant::now() + shared.config.login_timeout;
    let mut sb = SbSession {
        shared,
        id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        events: events_tx,
        joined: None,
        offline_queued: Vec::new(),
        offline_written: Vec::new(),
        written_mark: 0,
        strikes: Strikes::default(),
    };
    let mut flow = sb.answer(first, &mut conn.writer).await;
    let idle_limit = sb.shared.config.switchboard_idle_timeout;
    let mut last_heard = tokio::time::Instant::now();
    // Moved, not recreated, on each turn (see notification::serve).
    let silence = sleep_until(deadline);
    tokio::pin!(silence);
    let mut clean_end = false;
    while flow == Flow::Continue {
        if conn.writer.flush().await.is_err() {
            break;
        }
        sb.offline_flushed(conn.reader.bytes_read());
        let me = sb.joined.as_ref().map(|(_, p)| p.clone());
        let overflowed = async {
            match &me {
                Some(p) => p.overflowed().await,
                None => std::future::pending().await,
            }
        };
        let deadline = if me.is_none() { deadline } else { last_heard + idle_limit };
        if silence.deadline() != deadline {
            silence.as_mut().reset(deadline);
        }
        // The next command is read only when everyone else can take a
        // message: a sender faster than a reader is paced, not the reader
        // dropped (see SwitchboardSession::relay).
        let room = sb.has_room();
        let wait_for_room = async {
            if let Some((session, me)) = &sb.joined {
                session.wait_for_room(me, PATIENCE).await;
            }
        };
        flow = tokio::select! {
            // Events queued before a request are answered first, so a
            // client sees the world in the order the server saw it.
            biased;
            Some(event) = events.recv() => {
                // Every message already waiting goes out in the same write.
                sb.event(event, &mut conn.writer);
                for _ in 0..BATCH {
                    match events.try_recv() {
                        Ok(event) => sb.event(event, &mut conn.writer),
                        Err(_) => break,
                    }
                }
                Flow::Continue
            }
            _ = shutdown.changed() => {
                conn.writer.push(&Reply::Out { reason: Some(msnp::reply::OutReason::ServerShutdown) });
                Flow::Close
            }
            _ = overflowed => break,
            _ = &mut silence => {
                // An idle participant leaves with `BYE handle 1` to the others.
                if let Some((session, me)) = sb.joined.take() {
                    sb.shared.backend.leave_switchboard(&session, &me, true);
                }
                break;
            }
            _ = wait_for_room, if !room => Flow::Continue,
            frame = conn.reader.next(), if room => match frame {
                Ok(Some(frame)) => {
                    last_heard = tokio::time::Instant::now();
                    if conn.reader.position() > sb.written_mark {
                        sb.offline_read().await;
                    }
                    answer_pipelined(&mut sb, frame, (&mut conn.reader, &mut conn.writer, conn.peer), SbSession::answer, |sb| {
                        events.is_empty() && sb.has_room()
                    })
                    .await
                }
                Ok(None) => {
                    clean_end = true;
                    break;
                }
                Err(e) => {
                    tracing::debug!(peer = %conn.peer, "switchboard connection closing: {e}");
                    break;
                }
            },
        };
    }
    // When we end the connection, what was not confirmed is released
    // before the client can see the close: its next word on the
    // notification connection must not confirm a message it never read.
    if !clean_end {
        sb.offline_unread();
    }
    conn.writer.close().await;
    // A client that closed with a FIN after its stack acknowledged every
    // byte has read them all: a socket closed with unread data sends a
    // reset instead, and data arriving after the close is never
    // acknowledged. Anything less and the messages are offered again.
    if clean_end && conn.all_acknowledged() == Some(true) {
        sb.offline_read().await;
    }
    sb.offline_unread();
    if let Some((session, me)) = sb.joined.take() {
        sb.shared.backend.leave_switchboard(&session, &me, false);
    }
}

impl SbSession {
    fn answer<'a>(&'a mut self, frame: Frame, w: &'a mut Writer) -> Answer<'a> {
        Box::pin(self.handle(frame, w))
    }

    /// Whether everyone else in the session can take one more message.
    fn has_room(&self) -> bool {
        self.joined.as_ref().is_none_or(|(session, me)| session.others_have_room(me))
    }

    /// Looked up for each command and event, so `msnd trace` takes effect
    /// at once.
    fn refresh_trace(&self, w: &mut Writer) {
        w.trace = self.shared.trace_for(self.joined.as_ref().map(|(_, p)| p.key.as_str()));
    }

    async fn handle(&mut self, frame: Frame, w: &mut Writer) -> Flow {
        self.refresh_trace(w);
        w.trace_in(&frame);
        let request = match SbRequest::parse(&frame) {
            Ok(r) => r,
            Err(e) => {
                w.push(&Reply::Error { code: e.code, trid: e.trid });
                // A malformed MSG (e.g. a lower-case ack letter) closed the
                // connection on the official service.
                return if frame.verb() == "MSG" { Flow::Close } else { Flow::Continue };
            }
        };
        let backend = self.shared.backend.clone();
        match (request, &self.joined) {
            (SbRequest::Out, _) => Flow::Close,
            (SbRequest::Usr { trid, handle, cookie }, None) => {
                match backend.open_switchboard(&handle, &cookie, self.id, self.events.clone()) {
                    Ok((session, me)) => {
                        w.dialect = me.dialect;
                        w.push(&Reply::SbUsrOk { trid, handle: me.handle.clone(), friendly: me.friendly.clone() });
                        self.joined = Some((session, me));
                        Flow::Continue
                    }
                    Err(code) => {
                        w.push(&Reply::error(code, trid));
                        Flow::Close
                    }
                }
            }
            (SbRequest::Ans { trid, handle, cookie, session_id }, None) => {
                // msnd numbers its sessions: any other id names none of them.
                let Some(session_id) = session_id.number() else {
                    w.push(&Reply::error(ErrorCode::AuthenticationFailed, trid));
                    return Flow::Close;
                };
                match backend.join_switchboard(&handle, &cookie, session_id, self.id, self.events.clone()) {
                    Ok((session, me, roster)) => {
                        w.dialect = me.dialect;
                        let lines = roster_lines(me.dialect, &me, &roster);
                        let total = lines.len();
                        for (i, (name, p)) in lines.into_iter().enumerate() {
                            w.push(&Reply::Iro {
                                trid,
                                index: i + 1,
                                total,
                                handle: name,
                                friendly: p.friendly.clone(),
                                client_id: p.client_id,
                                extended_caps: p.extended_caps,
                            });
                        }
                        w.push(&Reply::AnsOk { trid });
                        for m in session.take_offline() {
                            let payload = msnp::oim::annotate_for_switchboard(&m.payload, m.sent_at_ms);
                            w.push(&Reply::Msg {
                                handle: m.sender.clone(),
                                friendly: m.sender_friendly.clone(),
                                payload: payload.into(),
                            });
                            self.offline_queued.push(m.id);
                        }
                        // Replies to the stand-in this user now replaces.
                        for m in session.take_held(&me.key, me.machine.as_ref()) {
                            w.push(&Reply::Msg {
                                handle: m.from_handle,
                                friendly: m.from_friendly,
                                payload: m.payload,
                            });
                        }
                        self.joined = Some((session, me));
                        Flow::Continue
                    }
                    Err(code) => {
                        w.push(&Reply::error(code, trid));
                        Flow::Close
                    }
                }
            }
            (SbRequest::Usr { trid, .. } | SbRequest::Ans { trid, .. }, Some(_)) => {
                w.push(&Reply::error(ErrorCode::NotExpected, trid));
                Flow::Continue
            }
            (SbRequest::Cal { trid, .. } | SbRequest::Msg { trid, .. }, None) => {
                w.push(&Reply::error(ErrorCode::NotLoggedIn, trid));
                Flow::Continue
            }
            (SbRequest::Cal { trid, handle }, Some((session, me))) => {
                if !backend.allow(&me.key, Action::Invitation) {
                    w.push(&Reply::error(ErrorCode::UserTooActive, trid));
                    return self.strike();
                }
                match backend.invite(session, me, &handle).await {
                    Ok(()) => {
                        w.push(&Reply::CalRinging { trid, session_id: session.id.into() });
                        // An endpoint calling its own handle (WLM 2009 does as
                        // it opens a conversation) waits for itself to join.
                        if me.machine.is_some() && handle.eq_ignore_ascii_case(&me.handle) {
                            w.push(&Reply::Joi {
                                handle: me.handle.clone(),
                                friendly: me.friendly.clone(),
                                client_id: me.client_id,
                                extended_caps: me.extended_caps,
                            });
                        }
                    }
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
                Flow::Continue
            }
            (SbRequest::Msg { trid, ack, payload }, Some((session, me))) => {
                let kind = if ack == AckMode::Data { RelayKind::Data } else { RelayKind::Typed };
                let delivered = match backend.relay(session, me, payload, kind, PATIENCE).await {
                    Relayed::Sent { delivered } => delivered,
                    Relayed::Refused => {
                        // Refused like an undeliverable message: the
                        // sender's client shows it as not sent.
                        match ack {
                            AckMode::Unacknowledged => {}
                            AckMode::NegativeOnly | AckMode::Always => w.push(&Reply::Nak { trid }),
                            AckMode::Data => w.push(&Reply::error(ErrorCode::P2pNotDelivered, trid)),
                        }
                        return self.strike();
                    }
                };
                match (ack, delivered) {
                    (AckMode::Unacknowledged, _) | (AckMode::NegativeOnly, true) => {}
                    (AckMode::NegativeOnly | AckMode::Always, false) => w.push(&Reply::Nak { trid }),
                    (AckMode::Always | AckMode::Data, true) => w.push(&Reply::Ack { trid }),
                    (AckMode::Data, false) => w.push(&Reply::error(ErrorCode::P2pNotDelivered, trid)),
                }
                Flow::Continue
            }
        }
    }

    /// The queued offline messages are written: the client now has them, and
    /// whatever it says after `mark` bytes (here or on its notification
    /// connection) confirms them.
    fn offline_flushed(&mut self, mark: u64) {
        if self.offline_queued.is_empty() {
            return;
        }
        if let Some((_, me)) = &self.joined {
            self.shared.backend.offline_written(&me.handle, &self.offline_queued);
        }
        self.offline_written.append(&mut self.offline_queued);
        self.written_mark = mark;
    }

    /// The client spoke after the offline messages were written: it read them.
    async fn offline_read(&mut self) {
        if self.offline_written.is_empty() {
            return;
        }
        if let Some((_, me)) = &self.joined {
            let ids = std::mem::take(&mut self.offline_written);
            self.shared.backend.confirm_offline(&me.handle, &ids).await;
        }
    }

    /// The connection ended without a sign that the client read what it was
    /// given: those messages are offered again.
    fn offline_unread(&mut self) {
        if let Some((_, me)) = &self.joined {
            let ids: Vec<i64> = self.offline_queued.drain(..).chain(self.offline_written.drain(..)).collect();
            if !ids.is_empty() {
                self.shared.backend.release_offline(&me.handle, &ids);
            }
        }
    }

    /// Counts a refusal; too many in a minute and the connection is closed.
    fn strike(&mut self) -> Flow {
        if self.strikes.strike(self.shared.backend.config().rate_limits.abuse_strikes) {
            self.shared.counters.abuse_disconnects.fetch_add(1, Ordering::Relaxed);
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    fn event(&mut self, event: SbEvent, w: &mut Writer) {
        self.refresh_trace(w);
        let me = self.joined.as_ref().map_or("", |(_, p)| p.key.as_str());
        match event {
            SbEvent::Joined { handle, friendly, client_id, extended_caps, machine, first } => {
                for name in msnp::endpoint::roster_names(w.dialect, me, &handle, machine.as_ref(), first) {
                    w.push(&Reply::Joi { handle: name, friendly: friendly.clone(), client_id, extended_caps });
                }
            }
            SbEvent::Left { handle, idle, machine, last } => {
                for name in msnp::endpoint::roster_names(w.dialect, me, &handle, machine.as_ref(), last) {
                    w.push(&Reply::Bye { handle: name, idle });
                }
            }
            SbEvent::Message { handle, friendly, payload } => w.push(&Reply::Msg { handle, friendly, payload }),
        }
    }
}

/// The `IRO` lines for someone joining: everyone there, each under the
/// names [`msnp::endpoint::roster_names`] gives (an account once, at its first endpoint).
fn roster_lines<'a>(
    dialect: msnp::Dialect,
    me: &backend::switchboard::Participant,
    roster: &'a [std::sync::Arc<backend::switchboard::Participant>],
) -> Vec<(String, &'a backend::switchboard::Participant)> {
    let mut seen: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for p in roster {
        let first = !seen.contains(&p.key.as_str());
        seen.push(&p.key);
        for name in msnp::endpoint::roster_names(dialect, &me.key, &p.handle, p.machine.as_ref(), first) {
            lines.push((name, p.as_ref()));
        }
    }
    lines
}
