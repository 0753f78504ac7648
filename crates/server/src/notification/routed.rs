//! `PUT`, `SDG` and `DEL`, which say where they go in routing headers: to
//! a circle (MSNP18, `circles.rs`), to the sender's own presence (MSNP21's
//! `/user` document), to a person (MSNP21's chat without a switchboard), or
//! to a group conversation (MSNP21's `10:` groups).

use std::sync::Arc;

use backend::presence::OnlineUser;
use bytes::Bytes;
use msnp::circle::Said;
use msnp::endpoint::{Capabilities, MESSENGER_NETWORK};
use msnp::multiparty::{self, GROUP_NETWORK, GroupId};
use msnp::routed::{CIRCLE_NETWORK, RoutedMessage};
use msnp::user::UserDocument;
use msnp::{ErrorCode, Reply, TrId};

use super::NsSession;
use super::dispatch::Handled;
use super::session::NewState;
use crate::connection::{Flow, Writer};

/// A routed message must come from the endpoint's own account.
pub(super) fn check_sender(user: &OnlineUser, message: &RoutedMessage) -> Result<(), ErrorCode> {
    let from = message.from().ok_or(ErrorCode::InvalidParameter)?;
    let own = from.network == MESSENGER_NETWORK && from.name.eq_ignore_ascii_case(&user.handle);
    own.then_some(()).ok_or(ErrorCode::InvalidParameter)
}

fn parse(payload: &Bytes) -> Result<RoutedMessage, ErrorCode> {
    RoutedMessage::parse(payload).map_err(|_| ErrorCode::InvalidParameter)
}

impl NsSession {
    /// `PUT`: a circle's roster entry, or this user's presence document.
    pub(super) async fn put(&mut self, user: &Arc<OnlineUser>, trid: TrId, payload: &Bytes, w: &mut Writer) -> Handled {
        let message = parse(payload)?;
        let to = message.to().ok_or(ErrorCode::InvalidParameter)?;
        if to.network == CIRCLE_NETWORK {
            return self.put_to_circle(user, trid, message, w);
        }
        check_sender(user, &message)?;
        if to.network == GROUP_NETWORK {
            return self.put_to_group_chat(user, trid, &message, w).await;
        }
        let to_self = to.network == MESSENGER_NETWORK && to.name.eq_ignore_ascii_case(&user.handle);
        let document = msnp::user::published(&message).filter(|_| to_self).ok_or(ErrorCode::InvalidParameter)?;
        self.publish(user, trid, document, w).await
    }

    /// What a user document says of this user, applied: the name, the
    /// personal message, then the state (which, the first time, brings the
    /// contacts' presence, as the first `CHG` does).
    async fn publish(&mut self, user: &Arc<OnlineUser>, trid: TrId, doc: UserDocument, w: &mut Writer) -> Handled {
        let backend = self.shared.backend.clone();
        if let Some(name) = doc.friendly.as_deref().filter(|n| *n != user.presence().friendly) {
            backend.rename(user, &user.handle, name).await?;
        }
        if let Some(text) = &doc.personal_message {
            let current = user.presence().personal_message;
            if current.as_deref().map(msnp::personal::status_of).as_deref() != Some(text.as_str()) {
                backend.set_personal_message(user, &msnp::personal::with_status(current.as_deref(), text)).await?;
            }
        }
        let answer = Reply::PutOk { trid, payload: Bytes::new() };
        match doc.status {
            Some(state) => {
                // A publication names what changed; the rest stays.
                let now = user.presence();
                let caps =
                    doc.capabilities.unwrap_or(Capabilities { basic: now.client_id, extended: now.extended_caps });
                let msn_object = doc.msn_object.as_deref().map(msnp::urlencode::encode).or(now.msn_object);
                let new = NewState { state, caps: Some(caps), msn_object };
                self.change_state(user, trid, new, Some(answer), w).await
            }
            None => {
                w.push(&answer);
                Ok(Flow::Continue)
            }
        }
    }

    /// `PUT` to a group conversation: to the empty one, make one (the
    /// answer names it); to a group, a roster naming oneself joins and one
    /// naming others invites them.
    async fn put_to_group_chat(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        message: &RoutedMessage,
        w: &mut Writer,
    ) -> Handled {
        let to = message.to().ok_or(ErrorCode::InvalidParameter)?;
        let backend = self.shared.backend.clone();
        if multiparty::is_new_group(&to) {
            let group = backend.create_group_chat(user)?;
            let payload = multiparty::made(&user.handle, &group).to_bytes();
            w.push(&Reply::PutOk { trid, payload });
            return Ok(Flow::Continue);
        }
        let group = GroupId::of_address(&to).ok_or(ErrorCode::InvalidParameter)?;
        let roster = multiparty::roster_of(message).ok_or(ErrorCode::InvalidParameter)?;
        for handle in roster {
            if handle.eq_ignore_ascii_case(&user.handle) {
                backend.join_group_chat(user, &group).await?;
            } else {
                backend.invite_to_group_chat(user, &group, &handle).await?;
            }
        }
        w.push(&Reply::PutOk { trid, payload: Bytes::new() });
        Ok(Flow::Continue)
    }

    /// `DEL`: of one's own entry in a group conversation's roster, which
    /// leaves it; or of one of one's machines from one's `/user` (MSNP21's
    /// sign-out of another machine, which gets `OUT OTH`).
    pub(super) async fn del(&mut self, user: &Arc<OnlineUser>, trid: TrId, payload: &Bytes, w: &mut Writer) -> Handled {
        let message = parse(payload)?;
        check_sender(user, &message)?;
        let to = message.to().ok_or(ErrorCode::InvalidParameter)?;
        if to.network == MESSENGER_NETWORK && to.name.eq_ignore_ascii_case(&user.handle) {
            let machine = msnp::user::published(&message).and_then(|d| d.machine).ok_or(ErrorCode::InvalidParameter)?;
            // Its own machine: the client signs out itself.
            if user.machine.as_ref() != Some(&machine) {
                self.shared.backend.end_endpoint(user, &machine)?;
            }
            w.push(&Reply::DelOk { trid });
            return Ok(Flow::Continue);
        }
        let group = GroupId::of_address(&to).ok_or(ErrorCode::InvalidParameter)?;
        let who = msnp::circle::left_member(&message).ok_or(ErrorCode::InvalidParameter)?;
        if !who.eq_ignore_ascii_case(&user.handle) {
            return Err(ErrorCode::InvalidParameter);
        }
        self.shared.backend.leave_group_chat(user, &group).await?;
        w.push(&Reply::DelOk { trid });
        Ok(Flow::Continue)
    }

    /// `SDG`: said in a circle, to a group conversation, or to a person.
    pub(super) async fn sdg(&mut self, user: &Arc<OnlineUser>, payload: &Bytes) -> Handled {
        let message = parse(payload)?;
        let to = message.to().ok_or(ErrorCode::InvalidParameter)?;
        if to.network == CIRCLE_NETWORK {
            return self.sdg_to_circle(user, message).await;
        }
        check_sender(user, &message)?;
        let said = Said::of(&message).ok_or(ErrorCode::InvalidParameter)?;
        if to.network == GROUP_NETWORK {
            let group = GroupId::of_address(&to).ok_or(ErrorCode::InvalidParameter)?;
            self.shared.backend.say_in_group_chat(user, &group, said).await?;
            return Ok(Flow::Continue);
        }
        if to.network != MESSENGER_NETWORK {
            return Err(ErrorCode::InvalidParameter);
        }
        self.shared.backend.say_to(user, &to.name, said).await?;
        Ok(Flow::Continue)
    }
}
