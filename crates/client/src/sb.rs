//! Conversations: one switchboard connection each, run by a task; the
//! [`Conversation`] handle sends it commands.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use msnp::mime::MimeMessage;
use msnp::request::{NsRequest, SbRequest};
use msnp::{AckMode, Reply, TrId};
use tokio::sync::{mpsc, oneshot};

use crate::conn::{Conn, ServerKind};
use crate::conversation::{Command, Conversation, Method};
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::message;
use crate::shared::Shared;
use crate::transfer::{Action, Report, Transfers};

/// The switchboard's next reply; an error reply is an error.
async fn expect(conn: &mut Conn, shared: &Shared) -> Result<Reply> {
    let f = conn.expect_frame(shared.config.timeout).await?;
    match Reply::parse_from_switchboard(&f, shared.dialect) {
        Ok(Reply::Error { code, .. }) => Err(ClientError::Server(code.code())),
        Ok(reply) => Ok(reply),
        Err(e) => Err(ClientError::Protocol(e.to_string())),
    }
}

/// The person a roster name stands for: the switchboard names each
/// machine of someone signed in from several (`handle;{guid}`) besides the
/// person, and my own machines besides me; only other people count.
fn person(shared: &Shared, name: &str) -> Option<String> {
    let address = msnp::endpoint::Address::from(name);
    let me = shared.me().0;
    (address.endpoint.is_none() && !address.handle.eq_ignore_ascii_case(&me)).then_some(address.handle)
}

/// A message with its acknowledgement mode.
fn msg(trid: TrId, ack: AckMode, payload: &[u8]) -> SbRequest {
    SbRequest::Msg { trid, ack, payload: payload.to_vec().into() }
}

/// Calls someone: `XFR SB`, `USR`, `CAL`.
pub(crate) async fn call(shared: &Arc<Shared>, handle: &str) -> Result<Conversation> {
    let xfr = {
        let _one_at_a_time = shared.switchboard_requests.lock().await;
        shared.request(|trid| NsRequest::XfrSb { trid }).await?
    };
    let Reply::XfrSb { address, cookie, .. } = xfr else {
        return Err(ClientError::Protocol(format!("{xfr:?} answering XFR SB")));
    };
    let mut conn = Conn::connect(&address, ServerKind::Switchboard, &shared.config).await?;
    conn.send_sb(&SbRequest::Usr { trid: 1, handle: shared.my_address(), cookie }).await?;
    expect(&mut conn, shared).await?;
    conn.send_sb(&SbRequest::Cal { trid: 2, handle: handle.to_string() }).await?;
    expect(&mut conn, shared).await?;
    let mut next_trid = 3;
    // Signed in from several machines (MSNP16+): my other machines are
    // rung too, so the conversation shows on each of them.
    if shared.dialect.has_points_of_presence() {
        conn.send_sb(&SbRequest::Cal { trid: 3, handle: shared.me().0 }).await?;
        expect(&mut conn, shared).await?;
        next_trid = 4;
    }
    let id = shared.fresh_id();
    let conversation = start(shared.clone(), conn, id, Vec::new(), next_trid);
    shared.emit(Event::ConversationStarted { conversation: id, with: vec![handle.to_string()], invited_by: None });
    Ok(conversation)
}

/// Answers an invitation (`RNG`): `ANS`, the roster, then the conversation.
pub(crate) fn answer(
    shared: &Arc<Shared>,
    session_id: msnp::SessionId,
    address: String,
    cookie: String,
    caller: String,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let result: Result<()> = async {
            let mut conn = Conn::connect(&address, ServerKind::Switchboard, &shared.config).await?;
            conn.send_sb(&SbRequest::Ans { trid: 1, handle: shared.my_address(), cookie, session_id }).await?;
            let mut roster = Vec::new();
            loop {
                match expect(&mut conn, &shared).await? {
                    Reply::Iro { handle, .. } => roster.extend(person(&shared, &handle)),
                    Reply::AnsOk { .. } => break,
                    other => return Err(ClientError::Protocol(format!("{other:?} answering ANS"))),
                }
            }
            let id = shared.fresh_id();
            start(shared.clone(), conn, id, roster.clone(), 2);
            // Rung by another of my machines: the conversation is with the
            // others in it, not with me.
            let invited_by = (!caller.eq_ignore_ascii_case(&shared.me().0)).then_some(caller);
            shared.emit(Event::ConversationStarted { conversation: id, with: roster, invited_by });
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::debug!("could not answer an invitation: {e}");
        }
    });
}

fn start(shared: Arc<Shared>, conn: Conn, id: u64, roster: Vec<String>, next_trid: u32) -> Conversation {
    let (tx, rx) = mpsc::channel(64);
    let participants = Arc::new(Mutex::new(roster));
    let conversation = Conversation { id, commands: tx, participants: participants.clone() };
    shared.conversations.lock().expect("conversations lock").insert(id, conversation.clone());
    tokio::spawn(run(shared, conn, id, participants, rx, next_trid));
    conversation
}

/// One conversation's task.
async fn run(
    shared: Arc<Shared>,
    mut conn: Conn,
    id: u64,
    participants: Arc<Mutex<Vec<String>>>,
    mut commands: mpsc::Receiver<Command>,
    mut trid: u32,
) {
    let me = shared.me().0;
    let local_ip = conn.local_addr().map(|a| a.ip());
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let mut transfers = Transfers::new(shared.clone(), id, me.clone(), reports_tx, local_ip);
    let mut acks: HashMap<u32, oneshot::Sender<Result<()>>> = HashMap::new();
    let mut invites: HashMap<u32, oneshot::Sender<Result<()>>> = HashMap::new();
    // P2P packets are kept in order with a few in flight; one the server
    // refuses (282: not delivered, or over the rate limit) is sent again
    // after a pause rather than lost.
    let mut p2p_queue: VecDeque<(String, Vec<u8>)> = VecDeque::new();
    let mut p2p_inflight: VecDeque<(u32, String, Vec<u8>)> = VecDeque::new();
    let mut p2p_paused_until: Option<tokio::time::Instant> = None;
    let mut leaving: Option<oneshot::Sender<()>> = None;

    loop {
        // Feed the P2P pipe.
        if p2p_paused_until.is_some_and(|t| t <= tokio::time::Instant::now()) {
            p2p_paused_until = None;
        }
        let mut broken = false;
        while p2p_paused_until.is_none() && p2p_inflight.len() < P2P_WINDOW {
            if p2p_queue.is_empty()
                && let Some((packet, progress)) = transfers.next_data()
            {
                let peer = participants.lock().expect("participants lock").first().cloned().unwrap_or_default();
                p2p_queue.push_back((peer, packet.to_bytes()));
                if let Some(e) = progress {
                    shared.emit(e);
                }
            }
            let Some((dest, body)) = p2p_queue.pop_front() else { break };
            let payload = MimeMessage::new("application/x-msnmsgrp2p")
                .with_header("P2P-Dest", dest.clone())
                .with_body(body.clone())
                .to_bytes();
            let t = next(&mut trid);
            if conn.send_sb(&msg(t, AckMode::Data, &payload)).await.is_err() {
                broken = true;
                break;
            }
            p2p_inflight.push_back((t, dest, body));
        }
        if broken {
            break;
        }
        let pause = async {
            match p2p_paused_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let mut actions = Vec::new();
        tokio::select! {
            command = commands.recv(), if leaving.is_none() => match command {
                Some(Command::Text { payload, reply }) => {
                    let t = next(&mut trid);
                    match conn.send_sb(&msg(t, AckMode::Always, &payload)).await {
                        Ok(()) => { acks.insert(t, reply); }
                        Err(e) => { let _ = reply.send(Err(e)); }
                    }
                }
                Some(Command::Unacknowledged(payload)) => {
                    let t = next(&mut trid);
                    let _ = conn.send_sb(&msg(t, AckMode::Unacknowledged, &payload)).await;
                }
                Some(Command::Invite { handle, reply }) => {
                    let t = next(&mut trid);
                    match conn.send_sb(&SbRequest::Cal { trid: t, handle }).await {
                        Ok(()) => { invites.insert(t, reply); }
                        Err(e) => { let _ = reply.send(Err(e)); }
                    }
                }
                Some(Command::SendFile { path, method, reply }) => {
                    let peer = participants.lock().expect("participants lock").first().cloned();
                    let Some(peer) = peer else {
                        let _ = reply.send(Err(ClientError::Transfer("nobody else is in the conversation".into())));
                        continue;
                    };
                    let method = method.unwrap_or(if shared.dialect.has_p2p() { Method::P2p } else { Method::Msnftp });
                    if method == Method::P2p && !shared.dialect.has_p2p() {
                        let _ = reply.send(Err(ClientError::Transfer(format!("{} has no P2P transfers", shared.dialect))));
                        continue;
                    }
                    let transfer = shared.fresh_id();
                    match transfers.send(transfer, &peer, &path, method) {
                        Ok(a) => { actions = a; let _ = reply.send(Ok(transfer)); }
                        Err(e) => { let _ = reply.send(Err(ClientError::Transfer(format!("cannot read {}: {e}", path.display())))); }
                    }
                }
                Some(Command::Accept { transfer, dest }) => actions = transfers.accept(transfer, dest),
                Some(Command::Decline { transfer }) => actions = transfers.decline(transfer),
                Some(Command::Cancel { transfer }) => actions = transfers.cancel(transfer),
                Some(Command::Leave(done)) => {
                    let _ = conn.send_sb(&SbRequest::Out).await;
                    leaving = Some(done);
                }
                None => break,
            },
            _ = pause => {}
            Some(report) = reports.recv() => match report {
                Report::DirectFailed { transfer, reason } => actions = transfers.direct_failed(transfer, reason),
            },
            frame = conn.next_frame() => {
                let f = match frame {
                    Ok(Some(f)) => f,
                    _ => break,
                };
                let reply = match Reply::parse_from_switchboard(&f, shared.dialect) {
                    Ok(reply) => reply,
                    Err(e) => {
                        tracing::debug!("{e}");
                        continue;
                    }
                };
                match reply {
                    Reply::Error { code, trid } => {
                        let t = trid.unwrap_or(0);
                        let code = code.code();
                        if let Some(r) = acks.remove(&t) { let _ = r.send(Err(ClientError::Server(code))); }
                        if let Some(r) = invites.remove(&t) { let _ = r.send(Err(ClientError::Server(code))); }
                        if let Some(i) = p2p_inflight.iter().position(|(x, _, _)| *x == t) {
                            // Everything from the refused packet on goes again, in order.
                            let again: Vec<_> = p2p_inflight.drain(i..).collect();
                            for (_, dest, body) in again.into_iter().rev() {
                                p2p_queue.push_front((dest, body));
                            }
                            p2p_paused_until = Some(tokio::time::Instant::now() + std::time::Duration::from_millis(250));
                        }
                    }
                    Reply::Ack { trid: t } | Reply::Nak { trid: t } => {
                        let delivered = matches!(reply, Reply::Ack { .. });
                        if let Some(i) = p2p_inflight.iter().position(|(x, _, _)| *x == t) {
                            p2p_inflight.remove(i);
                        } else if let Some(r) = acks.remove(&t) {
                            let _ = r.send(if delivered { Ok(()) } else { Err(ClientError::Protocol("not delivered".into())) });
                        }
                    }
                    Reply::CalRinging { trid, .. } => {
                        if let Some(r) = invites.remove(&trid) { let _ = r.send(Ok(())); }
                    }
                    Reply::Joi { handle, friendly, .. } => {
                        if let Some(handle) = person(&shared, &handle) {
                            participants.lock().expect("participants lock").push(handle.clone());
                            shared.emit(Event::Joined { conversation: id, handle, friendly });
                        }
                    }
                    Reply::Bye { handle, idle } => {
                        if let Some(handle) = person(&shared, &handle) {
                            participants.lock().expect("participants lock").retain(|p| !p.eq_ignore_ascii_case(&handle));
                            shared.emit(Event::Left { conversation: id, handle, idle });
                        }
                    }
                    Reply::Msg { handle: from, friendly, payload } => {
                        match message::parse(&payload) {
                            message::Incoming::Text { text, format, offline_sent } => {
                                shared.emit(Event::Message { conversation: id, from, friendly, text, format, offline_sent })
                            }
                            message::Incoming::Typing => shared.emit(Event::Typing { conversation: id, from }),
                            message::Incoming::Nudge => shared.emit(Event::Nudge { conversation: id, from }),
                            message::Incoming::Invitation(fields) => actions = transfers.on_invitation(&from, &fields),
                            message::Incoming::P2p { dest, body } if dest.eq_ignore_ascii_case(&me) => actions = transfers.on_p2p(&from, &body),
                            _ => {}
                        }
                    }
                    Reply::Out { .. } => break,
                    _ => {}
                }
            }
        }
        for action in actions {
            match action {
                Action::Invitation(payload) => {
                    let t = next(&mut trid);
                    let _ = conn.send_sb(&msg(t, AckMode::NegativeOnly, &payload)).await;
                }
                Action::P2p(packet) => {
                    let peer = participants.lock().expect("participants lock").first().cloned().unwrap_or_default();
                    p2p_queue.push_back((peer, packet.to_bytes()));
                }
                Action::Emit(e) => shared.emit(e),
            }
        }
    }
    for (_, r) in acks.drain().chain(invites.drain()) {
        let _ = r.send(Err(ClientError::Closed));
    }
    shared.conversations.lock().expect("conversations lock").remove(&id);
    if let Some(done) = leaving {
        let _ = done.send(());
    }
    shared.emit(Event::ConversationEnded { conversation: id });
}

/// P2P packets sent before the switchboard acknowledges the first of them.
const P2P_WINDOW: usize = 8;

fn next(trid: &mut u32) -> u32 {
    let t = *trid;
    *trid = trid.wrapping_add(1).max(1);
    t
}
