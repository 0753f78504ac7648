//! Circles: persistent group chats (MSNP18). Made and managed through the
//! address book, joined by an endpoint that shows the signed ticket, and
//! spoken in by every member online; what is said is kept (bounded) for the
//! members who were away, and given to them when they come back.
//!
//! Who is "in" a circle right now (its roster) is every accepted member
//! signed in anywhere; an endpoint that has not joined the circle is simply
//! not shown its events by its front.

use msnp::circle::{CircleId, CircleRole, CircleState, CircleTicket, Said, SignedTicket};

use super::*;
use crate::store::{CircleLimits, CircleMessage, MembershipChange, StoredCircle};

/// What a ticket signature is for (see [`ServerKey::sign`]).
const TICKET_PURPOSE: &str = "circle ticket";

/// The longest invitation text kept, in characters (WLM 2009's box takes
/// fewer).
const MAX_INVITE_MESSAGE: usize = 300;

/// How long a circle ticket admits: a day, as a sign-in is renewed.
const TICKET_LIFETIME_SECS: i64 = 24 * 3600;

/// What an endpoint is given when it joins a circle: who is there, and
/// what it missed.
#[derive(Debug, Clone)]
pub struct CircleJoined {
    pub roster: Vec<String>,
    pub missed: Vec<CircleMessage>,
}

fn circle_error(e: StoreError) -> ErrorCode {
    match e {
        StoreError::CircleFull => ErrorCode::ListFull,
        StoreError::NoSuchCircle => ErrorCode::InvalidCircleMembership,
        other => store_error(other),
    }
}

impl Backend {
    fn circle_limits(&self) -> CircleLimits {
        CircleLimits { per_account: self.config.max_circles_per_account, members: self.config.max_circle_members }
    }

    /// A circle `user` is an accepted member of (933 otherwise: the same
    /// answer whether the circle exists or not).
    async fn member_circle(&self, user: &OnlineUser, circle: &CircleId) -> Result<StoredCircle, ErrorCode> {
        let stored = self.store.circle(circle).await.map_err(store_error)?;
        stored
            .filter(|c| c.member(user.account_id).is_some_and(|m| m.state == CircleState::Accepted))
            .ok_or(ErrorCode::InvalidCircleMembership)
    }

    /// Makes a circle with `user` as its administrator.
    pub async fn create_circle(&self, user: &OnlineUser, name: &str) -> Result<CircleId, ErrorCode> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > msnp::addressbook::MAX_CIRCLE_NAME {
            return Err(ErrorCode::InvalidFriendlyName);
        }
        if !self.allow(&user.key, Action::ListChange) {
            return Err(ErrorCode::ChangingTooRapidly);
        }
        let mut bytes = [0u8; 6];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let id = CircleId::from_hex(&hex::encode(bytes)).ok_or(ErrorCode::InternalServer)?;
        self.store.create_circle(user.account_id, &id, name, self.circle_limits()).await.map_err(circle_error)?;
        user.deliver(NsEvent::CirclesChanged { circle: id.clone() });
        Ok(id)
    }

    /// The circles `user` is in or invited to.
    pub async fn circles(&self, user: &OnlineUser) -> Result<Vec<StoredCircle>, ErrorCode> {
        self.store.circles_of(user.account_id).await.map_err(store_error)
    }

    /// A circle with its members, for a member (or an invitee deciding).
    pub async fn circle(&self, user: &OnlineUser, circle: &CircleId) -> Result<StoredCircle, ErrorCode> {
        let stored = self.store.circle(circle).await.map_err(store_error)?;
        stored.filter(|c| c.member(user.account_id).is_some()).ok_or(ErrorCode::InvalidCircleMembership)
    }

    /// Invites someone into a circle `user` administers; returns their
    /// account. Inviting someone already in or invited changes nothing.
    pub async fn invite_to_circle(
        &self,
        user: &OnlineUser,
        circle: &CircleId,
        invitee: &str,
        message: Option<String>,
    ) -> Result<AccountId, ErrorCode> {
        let stored = self.member_circle(user, circle).await?;
        if stored.member(user.account_id).map(|m| m.role) != Some(CircleRole::Admin) {
            return Err(ErrorCode::InvalidCircleMembership);
        }
        if !self.allow(&user.key, Action::ListChange) {
            return Err(ErrorCode::ChangingTooRapidly);
        }
        let handle = Handle::parse(invitee)?;
        let account = self.store.account(handle.key()).await.map_err(store_error)?.ok_or(ErrorCode::InvalidUser)?;
        let message = message.map(|m| m.chars().take(MAX_INVITE_MESSAGE).collect());
        let change = MembershipChange::Invite { inviter: user.handle.clone(), message };
        self.store.change_membership(circle, account.id, change, self.circle_limits()).await.map_err(circle_error)?;
        self.tell_account(handle.key(), NsEvent::CirclesChanged { circle: circle.clone() });
        Ok(account.id)
    }

    /// Accepts or declines an invitation to a circle.
    pub async fn answer_circle(&self, user: &OnlineUser, circle: &CircleId, accept: bool) -> Result<(), ErrorCode> {
        let stored = self.circle(user, circle).await?;
        if stored.member(user.account_id).map(|m| m.state) != Some(CircleState::WaitingResponse) {
            return Err(ErrorCode::InvalidCircleMembership);
        }
        let change = if accept { MembershipChange::Accept } else { MembershipChange::Remove };
        self.store
            .change_membership(circle, user.account_id, change, self.circle_limits())
            .await
            .map_err(circle_error)?;
        for member in &stored.members {
            self.tell_account(&member.handle.to_ascii_lowercase(), NsEvent::CirclesChanged { circle: circle.clone() });
        }
        Ok(())
    }

    /// Leaves a circle for good; the others see the member go.
    pub async fn leave_circle(&self, user: &OnlineUser, circle: &CircleId) -> Result<(), ErrorCode> {
        let stored = self.circle(user, circle).await?;
        let change = MembershipChange::Remove;
        self.store
            .change_membership(circle, user.account_id, change, self.circle_limits())
            .await
            .map_err(circle_error)?;
        for member in &stored.members {
            let key = member.handle.to_ascii_lowercase();
            self.tell_account(&key, NsEvent::CircleLeft { circle: circle.clone(), who: user.handle.clone() });
            self.tell_account(&key, NsEvent::CirclesChanged { circle: circle.clone() });
        }
        Ok(())
    }

    /// The signed ticket naming the circles (of those `user` is in, as
    /// [`Backend::circles`] read them) `user` is an accepted member of.
    pub fn circle_ticket(&self, user: &OnlineUser, circles: &[StoredCircle]) -> SignedTicket {
        let ticket = CircleTicket {
            cid: user.account_id as u64,
            circles: circles
                .iter()
                .filter(|c| c.member(user.account_id).is_some_and(|m| m.state == CircleState::Accepted))
                .map(|c| c.id.clone())
                .collect(),
            issued_secs: now_ms() / 1000,
        };
        let data = ticket.to_xml().into_bytes();
        let signature = self.key.sign(TICKET_PURPOSE, &data);
        SignedTicket { data, signature }
    }

    /// Checks a ticket `USR SHA A` hands back: signed here, `user`'s, and
    /// not older than a day. 911 otherwise.
    pub fn admit_circle_ticket(&self, user: &OnlineUser, argument: &str) -> Result<Vec<CircleId>, ErrorCode> {
        let signed = SignedTicket::from_usr_argument(argument).ok_or(ErrorCode::AuthenticationFailed)?;
        if !self.key.verify(TICKET_PURPOSE, &signed.data, &signed.signature) {
            return Err(ErrorCode::AuthenticationFailed);
        }
        let ticket = CircleTicket::parse(&signed.data).ok_or(ErrorCode::AuthenticationFailed)?;
        let age = now_ms() / 1000 - ticket.issued_secs;
        if ticket.cid != user.account_id as u64 || !(0..=TICKET_LIFETIME_SECS).contains(&age) {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok(ticket.circles)
    }

    /// Who of a circle's accepted members is signed in, anywhere.
    fn roster(&self, circle: &StoredCircle) -> Vec<String> {
        circle
            .members
            .iter()
            .filter(|m| m.state == CircleState::Accepted)
            .filter(|m| {
                let key = m.handle.to_ascii_lowercase();
                // Signed in and not hidden (a member who has not yet set
                // a state is joining: shown).
                let here = self.registry.get(&key).is_some_and(|u| u.presence().state != msnp::OnlineState::Hidden);
                here || self.remote(&key).is_some()
            })
            .map(|m| m.handle.clone())
            .collect()
    }

    /// An endpoint of `user` joins a circle (`ADL` of the circle): it is
    /// given the roster and what the member missed (the newest
    /// `max_circle_backlog`), and the others the new roster.
    pub async fn join_circle(&self, user: &OnlineUser, circle: &CircleId) -> Result<CircleJoined, ErrorCode> {
        let stored = self.member_circle(user, circle).await?;
        let seen = stored.member(user.account_id).map_or(0, |m| m.seen_id);
        let mut missed = self.store.circle_messages_after(circle, seen).await.map_err(store_error)?;
        missed.retain(|m| !m.sender.eq_ignore_ascii_case(&user.handle));
        if let Some(last) = missed.last() {
            self.store.mark_circle_seen(circle, user.account_id, last.id).await.map_err(store_error)?;
        }
        let roster = self.roster(&stored);
        self.tell_members(
            &stored,
            Some(&user.key),
            NsEvent::CircleRoster { circle: circle.clone(), members: roster.clone() },
        );
        Ok(CircleJoined { roster, missed })
    }

    /// The member's last endpoint went away: the others see the new roster.
    pub async fn circles_went_offline(&self, user: &OnlineUser, circles: &[CircleId]) {
        for circle in circles {
            if let Ok(Some(stored)) = self.store.circle(circle).await {
                let roster = self.roster(&stored);
                self.tell_members(
                    &stored,
                    Some(&user.key),
                    NsEvent::CircleRoster { circle: circle.clone(), members: roster },
                );
            }
        }
    }

    /// Says something in a circle: kept (text only, bounded) and given to
    /// every member online, the speaker's other endpoints included.
    pub async fn say_in_circle(&self, user: &OnlineUser, circle: &CircleId, said: Said) -> Result<(), ErrorCode> {
        if !self.allow(&user.key, Action::Message) {
            self.stats.rate_limited_messages.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorCode::UserTooActive);
        }
        let stored = self.member_circle(user, circle).await?;
        let sent_at_ms = now_ms();
        let id = match &said {
            Said::Text { text, format } => {
                let message = CircleMessage {
                    id: 0,
                    sender: user.handle.clone(),
                    sender_friendly: user.presence().friendly,
                    sent_at_ms,
                    text: text.clone(),
                    format: format.clone(),
                };
                self.store
                    .store_circle_message(circle, message, self.config.max_circle_backlog)
                    .await
                    .map_err(store_error)?
            }
            Said::Typing | Said::Nudge => 0,
        };
        let event = NsEvent::CircleSaid {
            circle: circle.clone(),
            id,
            from: user.handle.clone(),
            from_endpoint: user.machine.clone(),
            said,
            sent_at_ms,
        };
        self.tell_members(&stored, None, event);
        Ok(())
    }

    /// The member was given the circle's messages up to `id`.
    pub async fn circle_seen(&self, user: &OnlineUser, circle: &CircleId, id: i64) {
        if let Err(e) = self.store.mark_circle_seen(circle, user.account_id, id).await {
            tracing::warn!("circle {circle}: cannot record what {} has seen: {e}", user.handle);
        }
    }

    /// Delivers to every accepted member signed in, but `except`.
    fn tell_members(&self, circle: &StoredCircle, except: Option<&str>, event: NsEvent) {
        for member in circle.members.iter().filter(|m| m.state == CircleState::Accepted) {
            let key = member.handle.to_ascii_lowercase();
            if except != Some(key.as_str()) {
                self.tell_account(&key, event.clone());
            }
        }
    }
}
