//! Every request's way in: parsed, let through the state gate, rate-limited,
//! then one exhaustive `match` names the handler of each command. Handlers
//! return `Result<Flow, ErrorCode>`; the error reply is written here, once.

use std::sync::Arc;

use backend::limits::Action;
use backend::presence::OnlineUser;
use msnp::request::NsRequest;
use msnp::{ErrorCode, Frame, Reply};

use super::{Login, NsSession};
use crate::connection::{Flow, Writer};

/// What a handler gives back: how the connection goes on, or the error to
/// answer its request with.
pub(super) type Handled = Result<Flow, ErrorCode>;

/// The signed-in user a request needs.
fn signed(user: &Option<Arc<OnlineUser>>) -> Result<&Arc<OnlineUser>, ErrorCode> {
    user.as_ref().ok_or(ErrorCode::NotLoggedIn)
}

impl NsSession {
    pub(super) async fn handle(&mut self, frame: Frame, w: &mut Writer) -> Flow {
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
        let trid = request.trid();
        if let Err(code) = self.gate(&request, frame.verb(), w.dialect) {
            w.push(&Reply::Error { code, trid });
            return Flow::Continue;
        }
        let user = self.user();
        if let (Some(user), Some((action, code))) = (&user, rate_limited_action(&request))
            && !self.shared.backend.allow(&user.key, action)
        {
            w.push(&Reply::Error { code, trid });
            return self.strike();
        }
        match self.dispatch(request, user, w).await {
            Ok(flow) => flow,
            Err(code) => {
                w.push(&Reply::Error { code, trid });
                Flow::Continue
            }
        }
    }

    /// The state gate: before `VER` only `VER`, `PNG` and the commands that
    /// end a connection; after it, only the dialect's commands. (Sign-in is
    /// required by the handlers that need a user, through [`signed`].)
    fn gate(&self, request: &NsRequest, verb: &str, dialect: msnp::Dialect) -> Result<(), ErrorCode> {
        use NsRequest::*;
        match request {
            Png | Out | Msg { .. } => Ok(()),
            Ver { .. } if self.negotiated => Err(ErrorCode::NotExpected),
            Ver { .. } => Ok(()),
            _ if !self.negotiated => Err(ErrorCode::NotExpected),
            _ if !dialect.has_command(verb) => Err(ErrorCode::CommandDisabled),
            _ => Ok(()),
        }
    }

    async fn dispatch(&mut self, request: NsRequest, user: Option<Arc<OnlineUser>>, w: &mut Writer) -> Handled {
        use NsRequest::*;
        match request {
            // A client may never send MSG to a notification server; the
            // official service closed the connection at once. It answered
            // OUT by closing too: a bare `OUT` back breaks strict parsers.
            Msg { .. } | Out => Ok(Flow::Close),
            Png => self.png(w),
            Ver { trid, dialects } => self.ver(trid, &dialects, w),
            Inf { trid } => self.inf(trid, w),
            Cvr { trid, args } => self.cvr(trid, &args, w),
            Usr { trid, step: msnp::request::UsrStep::CircleTicket { ticket } } => {
                self.usr_circles(signed(&user)?, trid, &ticket, w).await
            }
            Usr { trid, step } => Ok(self.usr(trid, step, w).await),
            Qry { trid, product_id, payload } => Ok(self.qry(trid, &product_id, &payload, w)),
            Chg { trid, state, client_id, extended_caps, msn_object } => {
                let caps = client_id.map(|basic| msnp::endpoint::Capabilities { basic, extended: extended_caps });
                self.chg(signed(&user)?, trid, state, caps, msn_object, w).await
            }
            XfrSb { trid } => self.xfr_sb(signed(&user)?, trid, w).await,
            Uux { trid, payload } => self.uux(signed(&user)?, trid, &payload, w).await,
            Gcf { trid, file } => self.gcf(signed(&user)?, trid, file, w),
            Url { trid, service } => self.url(signed(&user)?, trid, &service, w),
            Ims { trid, on } => self.ims(signed(&user)?, trid, on, w),
            // We send no e-mail and have no member directory: say so rather
            // than pretend.
            Sdc { .. } | Snd { .. } | Fnd { .. } => signed(&user).and(Err(ErrorCode::CommandDisabled)),
            Syn { trid, version } => self.syn(signed(&user)?, trid, &version, w).await,
            Lst { trid, list } => self.lst(signed(&user)?, trid, list, w).await,
            Lsg { trid } => self.lsg(signed(&user)?, trid, w).await,
            Gtc { trid, mode } => self.gtc(signed(&user)?, trid, mode, w).await,
            Blp { trid, mode } => self.blp(signed(&user)?, trid, mode, w).await,
            Add { trid, list, handle, friendly, group } => {
                self.add(signed(&user)?, trid, list, handle, friendly, group, w).await
            }
            Adc { trid, list, target } => self.adc(signed(&user)?, trid, list, target, w).await,
            Rem { trid, list, target, group } => {
                self.rem(signed(&user)?, trid, list, &target, group.as_deref(), w).await
            }
            Adg { trid, name } => self.adg(signed(&user)?, trid, &name, w).await,
            Rmg { trid, group } => self.rmg(signed(&user)?, trid, &group, w).await,
            Reg { trid, group, name } => self.reg(signed(&user)?, trid, &group, &name, w).await,
            Rea { trid, handle, friendly } => self.rea(signed(&user)?, trid, handle, friendly, w).await,
            Prp { trid, kind, value } => self.prp(signed(&user)?, trid, kind, value, w).await,
            Sbp { trid, contact_guid, kind, value } => {
                self.sbp(signed(&user)?, trid, contact_guid, kind, value, w).await
            }
            Adl { trid, payload } => self.adl(signed(&user)?, trid, &payload, w).await,
            Rml { trid, payload } => self.rml(signed(&user)?, trid, &payload, w).await,
            Fqy { trid, payload } => self.fqy(signed(&user)?, trid, &payload, w),
            Uun { trid, to, kind, payload } => self.uun(signed(&user)?, trid, &to, kind, payload, w).await,
            Uum { trid, to, network, kind, payload } => {
                self.uum(signed(&user)?, trid, &to, network, kind, &payload, w).await
            }
            Put { trid, payload } => self.put(signed(&user)?, trid, &payload, w).await,
            Sdg { payload, .. } => self.sdg(signed(&user)?, &payload).await,
            Del { trid, payload } => self.del(signed(&user)?, trid, &payload, w).await,
        }
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
        | Blp { .. }
        | Adl { .. }
        | Rml { .. } => Some((Action::ListChange, ErrorCode::UserTooActive)),
        Uun { .. } | Uum { .. } => Some((Action::Message, ErrorCode::UserTooActive)),
        // What is said in a circle is limited where it is said (the backend).
        Sdg { .. } => None,
        Put { .. } => Some((Action::StateChange, ErrorCode::ChangingTooRapidly)),
        Del { .. } => Some((Action::StateChange, ErrorCode::ChangingTooRapidly)),
        Fqy { .. } => None,
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
        Fnd { .. } | Png | Out | Msg { .. } | Adl { .. } | Rml { .. } | Fqy { .. } | Uun { .. } | Uum { .. } => false,
        Put { .. } | Sdg { .. } | Del { .. } => false,
    }
}
