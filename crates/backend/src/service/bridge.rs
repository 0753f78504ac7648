//! Conversations between a switchboard and someone without one (MSNP21).
//!
//! An MSNP21 user in a switchboard conversation is a participant like any
//! other, with no connection behind it: a task reads what the session
//! relays to it and tells the user's endpoints as [`NsEvent::Said`]; what
//! the user says to that contact (`SDG`) is relayed into the session as a
//! switchboard message. So an older client calls an MSNP21 user with `CAL`
//! and sees `JOI` at once, and an MSNP21 user's first word to an older
//! client rings it (`RNG`) from a session opened on the user's behalf.
//!
//! One bridge per (MSNP21 user, other person). Once a third person is in
//! the conversation, the MSNP21 user is shown it as a group conversation
//! (`10:`, MSNP21's own kind): invited to it, told its roster, its words
//! from the group; what it says to the group goes into the session. It ends
//! when everyone else has left, when nobody answered its ring in time, or
//! when the user's last endpoint without a switchboard signs out.
//!
//! A bridge lives beside its session; its user may be signed in on another
//! node, told what happens through the bus and acting in it by asking this
//! node (see `homes`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use msnp::ErrorCode;
use msnp::circle::Said;
use msnp::multiparty::GroupId;
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use super::Backend;
use crate::cluster::Speaker;
use crate::presence::{NsEvent, OnlineUser};
use crate::switchboard::{Participant, SbEvent, SwitchboardSession};

/// Events a bridge's participant may have waiting.
const BRIDGE_QUEUE: usize = 64;
/// What the user may say before the person called answers.
const MAX_WAITING: usize = 32;
/// How long a relay into the session may wait for a slow reader.
const PATIENCE: Duration = Duration::from_secs(5);

/// The bridges of this node, by (MSNP21 user's key, other person's key or
/// group address), and those of group conversations, by group (one per
/// MSNP21 member in the group's switchboard session).
#[derive(Debug, Default)]
pub(crate) struct Bridges {
    by_pair: Mutex<HashMap<(String, String), Arc<Bridge>>>,
    by_group: Mutex<HashMap<GroupId, Vec<Arc<Bridge>>>>,
}

#[derive(Debug)]
pub(crate) struct Bridge {
    session: Arc<SwitchboardSession>,
    participant: Arc<Participant>,
    /// The MSNP21 user.
    user: Speaker,
    /// Said before anyone else was in the session.
    waiting: Mutex<Vec<Bytes>>,
    /// The group conversation it is shown as, once three are in it.
    group: Mutex<Option<GroupId>>,
    ended: Notify,
}

/// What a new bridge is for: the other person's key (or the group's
/// address), what was said before anyone answered, and its group.
struct Start {
    other: String,
    waiting: Vec<Bytes>,
    group: Option<GroupId>,
}

impl Bridge {
    /// Who else is in the session (not the user, no stand-ins).
    fn others(&self) -> Vec<String> {
        self.others_where(|_| true)
    }

    /// Who else is in the session on a switchboard of their own.
    fn others_on_switchboards(&self) -> Vec<String> {
        self.others_where(|p| !p.bridged)
    }

    fn others_where(&self, keep: impl Fn(&Participant) -> bool) -> Vec<String> {
        let mut handles: Vec<String> = Vec::new();
        let participants = self.session.participants();
        for p in participants.iter().filter(|p| p.key != self.user.key && !p.stand_in && keep(p)) {
            if !handles.iter().any(|h| h.eq_ignore_ascii_case(&p.handle)) {
                handles.push(p.handle.clone());
            }
        }
        handles
    }
}

impl Bridges {
    /// Whether `handle` is in `group`'s session through a bridge of its own.
    fn is_bridged(&self, group: &Option<GroupId>, handle: &str) -> bool {
        let Some(group) = group else { return false };
        self.by_group.lock().get(group).is_some_and(|l| l.iter().any(|b| b.user.key.eq_ignore_ascii_case(handle)))
    }

    fn get(&self, user: &str, other: &str) -> Option<Arc<Bridge>> {
        self.by_pair.lock().get(&(user.to_string(), other.to_string())).cloned()
    }

    /// Ends every bridge of a user who is no longer reachable without a
    /// switchboard.
    pub(crate) fn end_for(&self, user: &str) {
        for (_, bridge) in self.by_pair.lock().iter().filter(|((u, _), _)| u == user) {
            bridge.ended.notify_one();
        }
    }
}

impl Backend {
    /// Whether `group` is a switchboard conversation shown to `user` as a
    /// group; the group calls below are then carried out in it.
    pub(super) fn bridged_group(&self, key: &str, group: &GroupId) -> Option<Arc<Bridge>> {
        self.bridges.by_group.lock().get(group)?.iter().find(|b| b.user.key == key).cloned()
    }

    /// Brings someone with only switchboards into a group conversation:
    /// the group's switchboard session (made with a bridged participant for
    /// each MSNP21 member, when there is none yet) rings them.
    pub(super) async fn invite_into_group_switchboard(
        self: &Arc<Self>,
        user: &Speaker,
        group: &GroupId,
        members: &[Speaker],
        handle: &str,
    ) -> Result<(), ErrorCode> {
        if self.bridged_group(&user.key, group).is_none() {
            let mut session: Option<Arc<SwitchboardSession>> = None;
            for member in members {
                let (participant, events) = bridged_participant(member);
                self.switchboards.enter(&participant.key, self.config.max_sessions_per_user)?;
                let s = match &session {
                    Some(s) => {
                        let max = self.config.max_switchboard_participants;
                        if let Err(e) = self.switchboards.join(s, participant.clone(), max) {
                            self.switchboards.release(&participant);
                            return Err(e);
                        }
                        s.clone()
                    }
                    None => self.switchboards.open(participant.clone()),
                };
                session = Some(s.clone());
                let start = Start { other: group.address(), waiting: Vec::new(), group: Some(group.clone()) };
                self.start_bridge(s, participant, events, member.clone(), start);
            }
        }
        let bridge = self.bridged_group(&user.key, group).ok_or(ErrorCode::InvalidCircleMembership)?;
        self.invite(&bridge.session, &bridge.participant, handle).await
    }

    /// Adds an MSNP21 member who joins a group later to the group's
    /// switchboard session, if it has one.
    pub(super) fn join_group_switchboard(self: &Arc<Self>, user: &Speaker, group: &GroupId) {
        let Some(session) = self.bridges.by_group.lock().get(group).and_then(|b| b.first()).map(|b| b.session.clone())
        else {
            return;
        };
        if self.bridged_group(&user.key, group).is_some() {
            return;
        }
        let (participant, events) = bridged_participant(user);
        if self.switchboards.enter(&participant.key, self.config.max_sessions_per_user).is_err() {
            return;
        }
        if self.switchboards.join(&session, participant.clone(), self.config.max_switchboard_participants).is_err() {
            self.switchboards.release(&participant);
            return;
        }
        let start = Start { other: group.address(), waiting: Vec::new(), group: Some(group.clone()) };
        self.start_bridge(session, participant, events, user.clone(), start);
    }

    /// Says `said` into the switchboard conversation behind a group.
    pub(super) async fn say_in_bridged_group(bridge: &Bridge, user: &Speaker, said: &Said) {
        let payload = Bytes::from(msnp::mime::message_of(said, &user.handle));
        bridge.session.relay(&bridge.participant, payload, PATIENCE).await;
    }

    /// Joining a bridged group (the client does when shown one) tells it
    /// the roster again.
    pub(super) fn join_bridged_group(&self, bridge: &Bridge, user: &Speaker, group: &GroupId) {
        let members = std::iter::once(user.handle.clone()).chain(bridge.others()).collect();
        self.tell_account(&user.key, NsEvent::GroupChatRoster { group: group.clone(), members });
    }

    /// Leaving a bridged group leaves the switchboard conversation.
    pub(super) fn leave_bridged_group(bridge: &Bridge) {
        bridge.ended.notify_one();
    }

    /// Puts `user` (who has no switchboard, signed in here or on another
    /// node) into `session` for `caller`, as if it had answered the ring.
    pub(super) fn bridge_into(
        self: &Arc<Self>,
        session: &Arc<SwitchboardSession>,
        user: &Speaker,
        caller_key: &str,
    ) -> Result<(), ErrorCode> {
        let (participant, events) = bridged_participant(user);
        self.switchboards.enter(&participant.key, self.config.max_sessions_per_user)?;
        if let Err(e) = self.switchboards.join(session, participant.clone(), self.config.max_switchboard_participants) {
            self.switchboards.release(&participant);
            return Err(e);
        }
        // What was said to the user before it joined (to the stand-in of
        // an offline message it sent, say) is passed on first.
        for held in session.take_held(&user.key, None) {
            if let Some(said) = msnp::mime::said_of(&held.payload) {
                let event =
                    NsEvent::Said { from: held.from_handle, from_endpoint: None, to: user.handle.clone(), said };
                self.tell_account(&user.key, event);
            }
        }
        self.tell_of_conversation(&user.key, caller_key, None);
        let start = Start { other: caller_key.to_string(), waiting: Vec::new(), group: None };
        self.start_bridge(session.clone(), participant, events, user.clone(), start);
        Ok(())
    }

    /// Says `said` from `user` (who has no switchboard) to `to`, who has
    /// nothing but switchboards: into their conversation, or a new one that
    /// rings them.
    pub(super) async fn say_through_bridge(
        self: &Arc<Self>,
        user: &Arc<OnlineUser>,
        to: &str,
        said: &Said,
    ) -> Result<(), ErrorCode> {
        let to_key = to.to_ascii_lowercase();
        // Their conversation may be held on another node; if that node
        // lost it, a new one starts here.
        if let Some(home) = self.homes.home_of(&user.key, &to_key) {
            let call = crate::cluster::Call::SayTo { other: to_key.clone(), said: said.clone() };
            match self.converse_at(&home, user, call).await {
                Err(ErrorCode::NotOnline) => self.homes.forget(&user.key, &to_key),
                said => return said,
            }
        }
        match self.say_in_bridge(&user.key, &to_key, said).await {
            Err(ErrorCode::NotOnline) => {}
            said => return said,
        }
        // Typing alone does not ring anyone.
        if !matches!(said, Said::Text { .. } | Said::Nudge) {
            return Ok(());
        }
        let speaker = Speaker::of(user);
        let payload = Bytes::from(msnp::mime::message_of(said, &user.handle));
        let (participant, events) = bridged_participant(&speaker);
        self.switchboards.enter(&participant.key, self.config.max_sessions_per_user)?;
        let session = self.switchboards.open(participant.clone());
        let start = Start { other: to_key, waiting: vec![payload], group: None };
        self.start_bridge(session.clone(), participant.clone(), events, speaker, start);
        self.invite(&session, &participant, to).await
    }

    /// Says `said` from `key` into its bridged conversation with `other`
    /// (a key): relayed, or kept until someone answers; `217` when there
    /// is no such conversation here.
    pub(super) async fn say_in_bridge(&self, key: &str, other: &str, said: &Said) -> Result<(), ErrorCode> {
        let bridge = self.bridges.get(key, other).ok_or(ErrorCode::NotOnline)?;
        let payload = Bytes::from(msnp::mime::message_of(said, &bridge.user.handle));
        if bridge.session.participants().iter().any(|p| p.key != key && !p.stand_in) {
            bridge.session.relay(&bridge.participant, payload, PATIENCE).await;
        } else {
            let mut waiting = bridge.waiting.lock();
            if waiting.len() >= MAX_WAITING {
                return Err(ErrorCode::UserTooActive);
            }
            waiting.push(payload);
        }
        Ok(())
    }

    fn start_bridge(
        self: &Arc<Self>,
        session: Arc<SwitchboardSession>,
        participant: Arc<Participant>,
        mut events: mpsc::Receiver<SbEvent>,
        user: Speaker,
        start: Start,
    ) {
        let Start { other, waiting, group } = start;
        let bridge = Arc::new(Bridge {
            session,
            participant,
            user: user.clone(),
            waiting: Mutex::new(waiting),
            group: Mutex::new(group.clone()),
            ended: Notify::new(),
        });
        let key = (user.key.clone(), other);
        self.bridges.by_pair.lock().insert(key.clone(), bridge.clone());
        if let Some(group) = group {
            self.bridges.by_group.lock().entry(group).or_default().push(bridge.clone());
        }
        let backend = self.clone();
        let unanswered = self.config.cookie_lifetime;
        tokio::spawn(async move {
            let answered_by = tokio::time::Instant::now() + unanswered;
            loop {
                let others = !bridge.others_on_switchboards().is_empty();
                let deadline = if others { None } else { Some(answered_by) };
                let event = tokio::select! {
                    event = events.recv() => event,
                    _ = bridge.ended.notified() => None,
                    _ = sleep_until(deadline) => None,
                };
                let Some(event) = event else { break };
                match event {
                    SbEvent::Message { handle, payload, .. } => {
                        // Another MSNP21 member's words reach this one
                        // through the group itself, not twice.
                        if bridge.session.participants().iter().any(|p| p.bridged && p.handle == handle) {
                            continue;
                        }
                        if let Some(said) = msnp::mime::said_of(&payload) {
                            let group = bridge.group.lock().clone();
                            backend.tell_account(
                                &user.key,
                                match group {
                                    Some(group) => {
                                        NsEvent::GroupChatSaid { group, from: handle, from_endpoint: None, said }
                                    }
                                    None => NsEvent::Said {
                                        from: handle,
                                        from_endpoint: None,
                                        to: user.handle.clone(),
                                        said,
                                    },
                                },
                            );
                        }
                    }
                    SbEvent::Joined { .. } => {
                        let waiting = std::mem::take(&mut *bridge.waiting.lock());
                        for payload in waiting {
                            bridge.session.relay(&bridge.participant, payload, PATIENCE).await;
                        }
                        backend.show_as_group(&bridge);
                    }
                    SbEvent::Left { handle, last, .. } => {
                        let group = bridge.group.lock().clone();
                        let on_switchboard = !backend.bridges.is_bridged(&group, &handle);
                        if let Some(group) = group.filter(|_| last && on_switchboard) {
                            backend.tell_account(&user.key, NsEvent::GroupChatLeft { group, who: handle });
                        }
                        if bridge.others_on_switchboards().is_empty() {
                            break;
                        }
                    }
                }
            }
            backend.end_bridge(&key, &bridge);
        });
    }

    /// Once three or more are in the conversation, shows it to the user as
    /// a group conversation (invited, then its roster); after that, tells
    /// it the roster as it changes.
    fn show_as_group(&self, bridge: &Arc<Bridge>) {
        let others = bridge.others();
        let mut group = bridge.group.lock();
        if group.is_none() && others.len() < 2 {
            return;
        }
        let user = &bridge.user;
        let id = match &*group {
            Some(id) => id.clone(),
            None => {
                let id = GroupId::from_random(rand::random());
                *group = Some(id.clone());
                self.bridges.by_group.lock().entry(id.clone()).or_default().push(bridge.clone());
                let invited = NsEvent::GroupChatInvited { group: id.clone() };
                self.tell_of_conversation(&user.key, &id.address(), Some(invited));
                id
            }
        };
        drop(group);
        let members = std::iter::once(user.handle.clone()).chain(others).collect();
        self.tell_account(&user.key, NsEvent::GroupChatRoster { group: id, members });
    }

    /// Takes a bridge out of its session and forgets it; a user on another
    /// node is told the conversation is no longer held here.
    fn end_bridge(&self, key: &(String, String), bridge: &Arc<Bridge>) {
        self.switchboards.leave(&bridge.session, &bridge.participant, false);
        self.switchboards.release(&bridge.participant);
        let mut all = self.bridges.by_pair.lock();
        if all.get(key).is_some_and(|b| Arc::ptr_eq(b, bridge)) {
            all.remove(key);
        }
        drop(all);
        self.tell_conversation_ended(&bridge.user.key, &key.1);
        if let Some(group) = bridge.group.lock().take() {
            let mut by_group = self.bridges.by_group.lock();
            if let Some(list) = by_group.get_mut(&group) {
                list.retain(|b| !Arc::ptr_eq(b, bridge));
                if list.is_empty() {
                    by_group.remove(&group);
                }
            }
            drop(by_group);
            if !self.group_chats.holds(&group) {
                self.tell_conversation_ended(&bridge.user.key, &group.address());
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The participant that stands for `user` in a switchboard session.
fn bridged_participant(user: &Speaker) -> (Arc<Participant>, mpsc::Receiver<SbEvent>) {
    let (outbox, events) = mpsc::channel(BRIDGE_QUEUE);
    let participant = Participant::bridged(&user.handle, &user.friendly, user.client_id, user.dialect, outbox);
    (Arc::new(participant), events)
}
