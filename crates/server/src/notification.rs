//! The dispatch and notification roles (draft section 7).
//!
//! One state machine serves both: a dispatch connection negotiates the
//! dialect and refers the client to the notification server with `XFR NS`
//! at `USR ... I`; a notification connection carries on with the login, the
//! lists, presence and switchboard referrals. Each request becomes a backend
//! call; each backend event is encoded in the connection's dialect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use backend::Backend;
use backend::handle::Handle;
use backend::presence::{NsEvent, OnlineUser};
use bytes::Bytes;
use msnp::dialect::{AuthScheme, negotiate};
use msnp::mime::LoginProfile;
use msnp::request::{NsRequest, UsrStep};
use msnp::{ErrorCode, Frame, ListKind, Reply, TrId};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;

use crate::connection::{Connection, Writer};
use crate::server::Shared;

/// Which role a connection plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Negotiates, then refers the client to a notification server.
    Dispatch,
    Notification,
}

/// Whether the connection goes on after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// How far the login has come.
enum Login {
    Initial,
    Challenged { handle: Handle, sent_handle: String, challenge: String },
    SignedIn(Arc<OnlineUser>),
}

/// Failed password attempts allowed on one connection before it is closed.
const MAX_FAILED_LOGINS: u8 = 3;

struct NsSession {
    shared: Arc<Shared>,
    role: Role,
    negotiated: bool,
    login: Login,
    events: mpsc::Sender<NsEvent>,
    failed_logins: u8,
    peer: SocketAddr,
    local: SocketAddr,
}

/// Serves one dispatch or notification connection until it ends.
/// `first` is a frame already read while the role was being decided.
pub async fn serve(
    mut conn: Connection,
    first: Option<Frame>,
    role: Role,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (events_tx, mut events) = mpsc::channel(shared.backend.config().outbox_capacity);
    let login_deadline = tokio::time::Instant::now() + shared.config.login_timeout;
    let mut session = NsSession {
        shared,
        role,
        negotiated: false,
        login: Login::Initial,
        events: events_tx,
        failed_logins: 0,
        peer: conn.peer,
        local: conn.local,
    };

    let mut flow = match first {
        Some(frame) => session.handle(frame, &mut conn.writer).await,
        None => Flow::Continue,
    };
    while flow == Flow::Continue {
        if conn.writer.flush().await.is_err() {
            break;
        }
        let user = session.user();
        let overflowed = async {
            match &user {
                Some(u) => u.overflowed().await,
                None => std::future::pending().await,
            }
        };
        let login_expired =
            async { if user.is_none() { sleep_until(login_deadline).await } else { std::future::pending().await } };
        flow = tokio::select! {
            // Events queued before a request are answered first, so a
            // client sees the world in the order the server saw it.
            biased;
            Some(event) = events.recv() => session.event(event, &mut conn.writer),
            _ = shutdown.changed() => {
                conn.writer.push(&Reply::Out { reason: Some(msnp::reply::OutReason::ServerShutdown) });
                Flow::Close
            }
            _ = overflowed => {
                tracing::info!(peer = %session.peer, "closing a connection that stopped reading");
                break;
            }
            _ = login_expired => break,
            frame = conn.reader.next() => match frame {
                Ok(Some(frame)) => session.handle(frame, &mut conn.writer).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(peer = %session.peer, "closing: {e}");
                    break;
                }
            },
        };
    }
    conn.writer.close().await;
    if let Some(user) = session.user() {
        session.shared.backend.sign_out(&user);
    }
}

fn unix_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl NsSession {
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

    async fn handle(&mut self, frame: Frame, w: &mut Writer) -> Flow {
        let request = match NsRequest::parse(&frame) {
            Ok(r) => r,
            Err(e) => {
                w.push(&Reply::Error { code: e.code, trid: e.trid });
                return Flow::Continue;
            }
        };
        match request {
            // A client may never send MSG to a notification server; the
            // official service closed the connection at once.
            NsRequest::Msg { .. } => Flow::Close,
            NsRequest::Out => {
                w.push(&Reply::Out { reason: None });
                Flow::Close
            }
            NsRequest::Png => {
                w.push(&Reply::Qng { interval: self.shared.config.ping_interval });
                Flow::Continue
            }
            NsRequest::Ver { trid, dialects } => {
                if self.negotiated {
                    w.push(&Reply::error(ErrorCode::NotExpected, trid));
                    return Flow::Continue;
                }
                match negotiate(dialects.iter().map(String::as_str), &self.shared.config.dialects) {
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
                }
            }
            other if !self.negotiated => {
                w.push(&Reply::Error { code: ErrorCode::NotExpected, trid: trid_of(&other) });
                Flow::Continue
            }
            NsRequest::Inf { trid } => {
                if w.dialect.has_inf() {
                    w.push(&Reply::Inf { trid, packages: &["MD5"] });
                } else {
                    w.push(&Reply::error(ErrorCode::CommandDisabled, trid));
                }
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
            other => match self.user() {
                Some(user) => self.signed_in(other, &user, w).await,
                None => {
                    w.push(&Reply::Error { code: ErrorCode::NotLoggedIn, trid: trid_of(&other) });
                    Flow::Continue
                }
            },
        }
    }

    async fn usr(&mut self, trid: TrId, step: UsrStep, w: &mut Writer) -> Flow {
        if matches!(self.login, Login::SignedIn(_)) {
            w.push(&Reply::error(ErrorCode::AlreadyLoggedIn, trid));
            return Flow::Continue;
        }
        match step {
            UsrStep::Md5Initiate { handle } if w.dialect.auth_scheme() == AuthScheme::Md5 => {
                let parsed = match Backend::check_login_handle(&handle) {
                    Ok(h) => h,
                    Err(code) => {
                        w.push(&Reply::error(code, trid));
                        return Flow::Continue;
                    }
                };
                if self.role == Role::Dispatch {
                    let address = format!("{}:{}", self.host(), self.shared.ns_port);
                    let current = format!("{}:{}", self.host(), self.local.port());
                    w.push(&Reply::XfrNs { trid, address, current });
                    return Flow::Close;
                }
                let challenge = Backend::md5_challenge();
                w.push(&Reply::UsrChallenge { trid, package: "MD5", challenge: challenge.clone() });
                self.login = Login::Challenged { handle: parsed, sent_handle: handle, challenge };
                Flow::Continue
            }
            UsrStep::Md5Response { response } => {
                let Login::Challenged { handle, sent_handle, challenge } =
                    std::mem::replace(&mut self.login, Login::Initial)
                else {
                    w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
                    return Flow::Continue;
                };
                let account = match self.backend().authenticate_md5(&handle, &challenge, &response).await {
                    Ok(a) => a,
                    Err(code) => {
                        w.push(&Reply::error(code, trid));
                        self.failed_logins += 1;
                        return if self.failed_logins >= MAX_FAILED_LOGINS { Flow::Close } else { Flow::Continue };
                    }
                };
                let user = match self.backend().sign_in(&account, w.dialect, self.events.clone()).await {
                    Ok(u) => u,
                    Err(code) => {
                        w.push(&Reply::error(code, trid));
                        return Flow::Close;
                    }
                };
                tracing::info!(peer = %self.peer, handle = %account.handle, dialect = %w.dialect, "signed in");
                w.push(&Reply::UsrOk { trid, handle: sent_handle, friendly: account.friendly.clone() });
                let profile = LoginProfile {
                    login_time: unix_time(),
                    email: account.handle.clone(),
                    member_id: account.id as u64,
                    client_ip: self.peer.ip().to_string(),
                    client_port: self.peer.port(),
                };
                w.push(&system_message(profile.to_message(w.dialect).to_bytes()));
                self.login = Login::SignedIn(user);
                Flow::Continue
            }
            _ => {
                w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
                Flow::Continue
            }
        }
    }

    async fn signed_in(&mut self, request: NsRequest, user: &Arc<OnlineUser>, w: &mut Writer) -> Flow {
        let backend = self.shared.backend.clone();
        match request {
            NsRequest::Syn { trid, serial } => match backend.list_snapshot(user).await {
                Ok(snap) => {
                    w.push(&Reply::Syn { trid, serial: snap.serial });
                    if serial != snap.serial {
                        w.push(&Reply::Gtc { trid, serial: snap.serial, mode: snap.prompt });
                        w.push(&Reply::Blp { trid, serial: snap.serial, mode: snap.privacy });
                        for list in [ListKind::Forward, ListKind::Allow, ListKind::Block, ListKind::Reverse] {
                            push_list(w, trid, list, &snap);
                        }
                    }
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Lst { trid, list } => {
                if list == ListKind::Pending {
                    w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
                } else {
                    match backend.list_snapshot(user).await {
                        Ok(snap) => push_list(w, trid, list, &snap),
                        Err(code) => w.push(&Reply::error(code, trid)),
                    }
                }
            }
            NsRequest::Gtc { trid, mode } => match backend.set_prompt(user, mode).await {
                Ok(serial) => w.push(&Reply::Gtc { trid, serial, mode }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Blp { trid, mode } => match backend.set_privacy(user, mode).await {
                Ok(serial) => w.push(&Reply::Blp { trid, serial, mode }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Add { trid, list, handle, friendly } => match backend.add_to_list(user, list, &handle).await {
                Ok(outcome) => {
                    w.push(&Reply::Add { trid, list, serial: outcome.serial, handle, friendly });
                    if let Some(presence) = outcome.initial_presence {
                        w.push(&Reply::Iln { trid, presence });
                    }
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Rem { trid, list, handle } => match backend.remove_from_list(user, list, &handle).await {
                Ok(serial) => w.push(&Reply::Rem { trid, list, serial, handle }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Rea { trid, handle, friendly } => match backend.rename(user, &handle, &friendly).await {
                Ok(serial) => w.push(&Reply::Rea { trid, serial, handle, friendly }),
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            NsRequest::Chg { trid, state, client_id, msn_object } => {
                match backend.change_state(user, state, client_id, msn_object.clone()) {
                    Ok(initial) => {
                        w.push(&Reply::Chg { trid, state, client_id, msn_object });
                        for presence in initial {
                            w.push(&Reply::Iln { trid, presence });
                        }
                    }
                    Err(code) => w.push(&Reply::error(code, trid)),
                }
            }
            NsRequest::XfrSb { trid } => match backend.request_switchboard(user) {
                Ok(cookie) => {
                    let address = format!("{}:{}", self.host(), self.shared.sb_port);
                    w.push(&Reply::XfrSb { trid, address, cookie });
                }
                Err(code) => w.push(&Reply::error(code, trid)),
            },
            // Handled before login; listed for exhaustiveness.
            NsRequest::Ver { .. }
            | NsRequest::Inf { .. }
            | NsRequest::Cvr { .. }
            | NsRequest::Usr { .. }
            | NsRequest::Png
            | NsRequest::Out
            | NsRequest::Msg { .. } => {}
        }
        Flow::Continue
    }

    fn event(&mut self, event: NsEvent, w: &mut Writer) -> Flow {
        match event {
            NsEvent::Presence(presence) => w.push(&Reply::Nln { presence }),
            NsEvent::Offline { handle } => w.push(&Reply::Fln { handle }),
            NsEvent::ListAdded { list, serial, handle, friendly } => {
                w.push(&Reply::Add { trid: 0, list, serial, handle, friendly })
            }
            NsEvent::ListRemoved { list, serial, handle } => w.push(&Reply::Rem { trid: 0, list, serial, handle }),
            NsEvent::Ring { session_id, cookie, caller, caller_friendly } => {
                let address = format!("{}:{}", self.host(), self.shared.sb_port);
                w.push(&Reply::Rng { session_id, address, cookie, caller, caller_friendly });
            }
            NsEvent::SystemMessage { payload } => w.push(&system_message(payload.to_vec())),
            NsEvent::Kick(reason) => {
                w.push(&Reply::Out { reason: Some(reason) });
                return Flow::Close;
            }
        }
        Flow::Continue
    }
}

/// A message from the service itself, which clients see as from `Hotmail`.
fn system_message(payload: Vec<u8>) -> Reply {
    Reply::Msg { handle: "Hotmail".into(), friendly: "Hotmail".into(), payload: Bytes::from(payload) }
}

/// The `LST` lines of one list, all with the same TrID and serial.
fn push_list(w: &mut Writer, trid: TrId, list: ListKind, snap: &backend::lists::ListSnapshot) {
    let entries: Vec<_> = snap.list(list).collect();
    if entries.is_empty() {
        w.push(&Reply::Lst { trid, list, serial: snap.serial, index: 0, total: 0, item: None });
    }
    for (i, e) in entries.iter().enumerate() {
        w.push(&Reply::Lst {
            trid,
            list,
            serial: snap.serial,
            index: i + 1,
            total: entries.len(),
            item: Some((e.handle.clone(), e.friendly.clone())),
        });
    }
}

fn trid_of(request: &NsRequest) -> Option<TrId> {
    match request {
        NsRequest::Ver { trid, .. }
        | NsRequest::Inf { trid }
        | NsRequest::Cvr { trid, .. }
        | NsRequest::Usr { trid, .. }
        | NsRequest::Syn { trid, .. }
        | NsRequest::Lst { trid, .. }
        | NsRequest::Gtc { trid, .. }
        | NsRequest::Blp { trid, .. }
        | NsRequest::Add { trid, .. }
        | NsRequest::Rem { trid, .. }
        | NsRequest::Chg { trid, .. }
        | NsRequest::Rea { trid, .. }
        | NsRequest::XfrSb { trid } => Some(*trid),
        NsRequest::Msg { trid } => *trid,
        NsRequest::Png | NsRequest::Out => None,
    }
}
