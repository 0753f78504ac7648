//! Messages from one person to another without a switchboard (MSNP21's
//! `SDG`): to every endpoint of the recipient, wherever it is signed in,
//! and to the sender's other endpoints as their copy.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use msnp::ErrorCode;
use msnp::circle::Said;

use super::{Backend, OfflineError};
use crate::handle::Handle;
use crate::limits::Action;
use crate::presence::{NsEvent, OnlineUser};

impl Backend {
    /// Says `said` to `to` from `user`. Text for someone who cannot take it
    /// now (offline, hidden, or not allowing the sender: they look the
    /// same) is kept as an offline message, as the offline-message service
    /// keeps it (withheld, for someone who blocks the sender); typing and
    /// nudges for them are `217`. `800` past the message rate.
    pub async fn say_to(self: &Arc<Self>, user: &Arc<OnlineUser>, to: &str, said: Said) -> Result<(), ErrorCode> {
        if !self.allow(&user.key, Action::Message) {
            self.stats.rate_limited_messages.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorCode::UserTooActive);
        }
        let handle = Handle::parse(to).map_err(|_| ErrorCode::InvalidUsername)?;
        // Only endpoints without a switchboard read `SDG`; someone with
        // nothing but switchboards is reached through a bridge, made here
        // (its session rings them on whatever node they are).
        let reachable = match self.registry.get(handle.key()) {
            Some(recipient) if Self::takes_invitation_from(&recipient, &user.key) => Some(recipient.reads_sdg()),
            Some(_) => None,
            None => self.remote_invitee(handle.key(), &user.key).await.map(|i| i.reads_sdg()),
        };
        let reachable = match reachable {
            Some(false) => return self.say_through_bridge(user, handle.as_str(), &said).await,
            Some(true) => true,
            None => false,
        };
        if !reachable {
            return self.leave_said(user, handle.as_str(), &said).await;
        }
        let event = NsEvent::Said {
            from: user.handle.clone(),
            from_endpoint: user.machine.clone(),
            to: handle.as_str().to_string(),
            said,
        };
        self.tell_account(handle.key(), event.clone());
        // The sender's other machines show what it said (each front
        // leaves out the endpoint that said it).
        if handle.key() != user.key {
            user.deliver(event);
        }
        Ok(())
    }

    /// Keeps text for someone not there to read it (see [`Backend::say_to`]).
    async fn leave_said(self: &Arc<Self>, user: &OnlineUser, to: &str, said: &Said) -> Result<(), ErrorCode> {
        if !matches!(said, Said::Text { .. }) {
            return Err(ErrorCode::NotOnline);
        }
        let payload = msnp::mime::message_of(said, &user.handle);
        match self.send_offline_message(user, to, &payload).await {
            Ok(()) | Err(OfflineError::NoSuchUser) => Ok(()),
            Err(OfflineError::RateLimited) => Err(ErrorCode::UserTooActive),
            Err(OfflineError::TooLong | OfflineError::QuotaFull) => Err(ErrorCode::NotOnline),
            Err(OfflineError::Internal) => Err(ErrorCode::InternalServer),
        }
    }
}
