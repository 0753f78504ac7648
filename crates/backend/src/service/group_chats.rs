//! Group conversations without a switchboard (MSNP21's `10:` groups): made
//! by one member, who invites others; those who join are its roster; what
//! is said reaches every member's endpoints; it ends when the last member
//! leaves. Kept in memory on the node where it was made; members signed in
//! on other nodes are told through the bus and act in it by asking this
//! node (see `homes`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use msnp::ErrorCode;
use msnp::circle::Said;
use msnp::multiparty::GroupId;
use parking_lot::Mutex;

use super::Backend;
use crate::cluster::{Call, Speaker};
use crate::limits::Action;
use crate::presence::{NsEvent, OnlineUser};

/// Groups one member may be in at once.
const MAX_GROUPS_PER_USER: usize = 16;

/// The group conversations made on this node.
#[derive(Debug, Default)]
pub(crate) struct GroupChats(Mutex<HashMap<GroupId, Group>>);

#[derive(Debug, Default)]
struct Group {
    /// As they joined, wherever they are signed in.
    members: Vec<Speaker>,
    /// Handle keys invited and not yet joined.
    invited: Vec<String>,
}

impl Group {
    fn handles(&self) -> Vec<String> {
        self.members.iter().map(|m| m.handle.clone()).collect()
    }

    fn has(&self, key: &str) -> bool {
        self.members.iter().any(|m| m.key == key)
    }
}

impl GroupChats {
    /// The groups `key` is in, and takes them out; for a sign-out.
    fn leave_all(&self, key: &str) -> Vec<(GroupId, Vec<String>)> {
        let mut groups = self.0.lock();
        let mut left = Vec::new();
        for (id, group) in groups.iter_mut() {
            if let Some(i) = group.members.iter().position(|m| m.key == key) {
                group.members.remove(i);
                left.push((id.clone(), group.handles()));
            }
            group.invited.retain(|k| k != key);
        }
        groups.retain(|_, g| !g.members.is_empty());
        left
    }

    /// The members of a group `key` is in; `933` for a group that is not
    /// there or not theirs.
    fn members_seen_by(&self, group: &GroupId, key: &str) -> Result<Vec<Speaker>, ErrorCode> {
        let groups = self.0.lock();
        let g = groups.get(group).filter(|g| g.has(key)).ok_or(ErrorCode::InvalidCircleMembership)?;
        Ok(g.members.clone())
    }

    fn count_of(&self, key: &str) -> usize {
        self.0.lock().values().filter(|g| g.has(key)).count()
    }

    pub(super) fn holds(&self, group: &GroupId) -> bool {
        self.0.lock().contains_key(group)
    }
}

fn handles(members: &[Speaker]) -> Vec<String> {
    members.iter().map(|m| m.handle.clone()).collect()
}

impl Backend {
    /// Makes a group conversation with `user` in it, held on this node.
    pub fn create_group_chat(&self, user: &OnlineUser) -> Result<GroupId, ErrorCode> {
        if self.group_chats.count_of(&user.key) >= MAX_GROUPS_PER_USER {
            return Err(ErrorCode::TooManySessions);
        }
        let id = GroupId::from_random(rand::random());
        let group = Group { members: vec![Speaker::of(user)], invited: Vec::new() };
        self.group_chats.0.lock().insert(id.clone(), group);
        Ok(id)
    }

    /// The node holding a group `user` is in, when it is not this one.
    fn group_elsewhere(&self, user: &OnlineUser, group: &GroupId) -> Option<crate::cluster::NodeId> {
        if self.group_chats.holds(group) || self.bridged_group(&user.key, group).is_some() {
            return None;
        }
        self.homes.home_of(&user.key, &group.address())
    }

    /// Invites `handle` into a group `user` is in: they must be online and
    /// take invitations from `user` (`217` else). Someone with only
    /// switchboards is rung into the group's switchboard session, which
    /// bridges it to the MSNP21 members.
    pub async fn invite_to_group_chat(
        self: &Arc<Self>,
        user: &Arc<OnlineUser>,
        group: &GroupId,
        handle: &str,
    ) -> Result<(), ErrorCode> {
        if !self.allow(&user.key, Action::Invitation) {
            self.stats.rate_limited_invitations.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorCode::UserTooActive);
        }
        if let Some(home) = self.group_elsewhere(user, group) {
            let call = Call::InviteToGroup { group: group.clone(), handle: handle.to_string() };
            return self.converse_at(&home, user, call).await;
        }
        self.invite_to_group_here(&Speaker::of(user), group, handle).await
    }

    pub(super) async fn invite_to_group_here(
        self: &Arc<Self>,
        user: &Speaker,
        group: &GroupId,
        handle: &str,
    ) -> Result<(), ErrorCode> {
        let key = handle.to_ascii_lowercase();
        let reads_sdg = match self.registry.get(&key) {
            Some(u) => Self::takes_invitation_from(&u, &user.key).then(|| u.reads_sdg()),
            None => self.remote_invitee(&key, &user.key).await.map(|i| i.reads_sdg()),
        };
        let Some(reads_sdg) = reads_sdg else { return Err(ErrorCode::NotOnline) };
        if !reads_sdg {
            let members = self.group_chats.members_seen_by(group, &user.key)?;
            return self.invite_into_group_switchboard(user, group, &members, handle).await;
        }
        {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).filter(|g| g.has(&user.key)).ok_or(ErrorCode::InvalidCircleMembership)?;
            if g.members.len() + g.invited.len() >= self.config.max_switchboard_participants {
                return Err(ErrorCode::SessionOverload);
            }
            if !g.invited.contains(&key) && !g.has(&key) {
                g.invited.push(key.clone());
            }
        }
        self.tell_of_conversation(&key, &group.address(), Some(NsEvent::GroupChatInvited { group: group.clone() }));
        Ok(())
    }

    /// `user` joins a group it made or was invited to; every member is told
    /// the roster.
    pub async fn join_group_chat(self: &Arc<Self>, user: &Arc<OnlineUser>, group: &GroupId) -> Result<(), ErrorCode> {
        if let Some(home) = self.group_elsewhere(user, group) {
            return self.converse_at(&home, user, Call::JoinGroup { group: group.clone() }).await;
        }
        self.join_group_here(&Speaker::of(user), group)
    }

    pub(super) fn join_group_here(self: &Arc<Self>, user: &Speaker, group: &GroupId) -> Result<(), ErrorCode> {
        if let Some(bridge) = self.bridged_group(&user.key, group).filter(|_| !self.group_chats.holds(group)) {
            self.join_bridged_group(&bridge, user, group);
            return Ok(());
        }
        let members = {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).ok_or(ErrorCode::InvalidCircleMembership)?;
            if !g.has(&user.key) {
                let Some(i) = g.invited.iter().position(|k| *k == user.key) else {
                    return Err(ErrorCode::InvalidCircleMembership);
                };
                g.invited.remove(i);
                g.members.push(user.clone());
            }
            g.handles()
        };
        // Someone on a switchboard already in it: the newcomer joins its
        // session too.
        self.join_group_switchboard(user, group);
        self.tell_group_chat(&members, NsEvent::GroupChatRoster { group: group.clone(), members: members.clone() });
        Ok(())
    }

    /// Says `said` in a group `user` is in.
    pub async fn say_in_group_chat(
        self: &Arc<Self>,
        user: &OnlineUser,
        group: &GroupId,
        said: Said,
    ) -> Result<(), ErrorCode> {
        if !self.allow(&user.key, Action::Message) {
            self.stats.rate_limited_messages.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorCode::UserTooActive);
        }
        if let Some(home) = self.group_elsewhere(user, group) {
            return self.converse_at(&home, user, Call::SayInGroup { group: group.clone(), said }).await;
        }
        self.say_in_group_here(&Speaker::of(user), group, said).await
    }

    pub(super) async fn say_in_group_here(&self, user: &Speaker, group: &GroupId, said: Said) -> Result<(), ErrorCode> {
        let bridge = self.bridged_group(&user.key, group);
        let made_here = self.group_chats.holds(group);
        // A switchboard conversation shown as a group has only its session.
        if let Some(bridge) = bridge.as_ref().filter(|_| !made_here) {
            Self::say_in_bridged_group(bridge, user, &said).await;
            return Ok(());
        }
        let members = self.group_chats.members_seen_by(group, &user.key)?;
        // Those on switchboards in the group hear it in its session.
        if let Some(bridge) = &bridge {
            Self::say_in_bridged_group(bridge, user, &said).await;
        }
        let event = NsEvent::GroupChatSaid {
            group: group.clone(),
            from: user.handle.clone(),
            from_endpoint: user.machine.clone(),
            said,
        };
        self.tell_group_chat(&handles(&members), event);
        Ok(())
    }

    /// `user` leaves a group; the others are told. The last one out ends it.
    pub async fn leave_group_chat(self: &Arc<Self>, user: &OnlineUser, group: &GroupId) -> Result<(), ErrorCode> {
        if let Some(home) = self.group_elsewhere(user, group) {
            let left = self.converse_at(&home, user, Call::LeaveGroup { group: group.clone() }).await;
            self.homes.forget(&user.key, &group.address());
            return left;
        }
        self.leave_group_here(&user.key, &user.handle, group)
    }

    pub(super) fn leave_group_here(&self, key: &str, handle: &str, group: &GroupId) -> Result<(), ErrorCode> {
        if let Some(bridge) = self.bridged_group(key, group) {
            Self::leave_bridged_group(&bridge);
            if !self.group_chats.holds(group) {
                return Ok(());
            }
        }
        let members = {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).ok_or(ErrorCode::InvalidCircleMembership)?;
            let i = g.members.iter().position(|m| m.key == key).ok_or(ErrorCode::InvalidCircleMembership)?;
            g.members.remove(i);
            let members = g.handles();
            if members.is_empty() {
                groups.remove(group);
            }
            members
        };
        self.tell_group_chat(&members, NsEvent::GroupChatLeft { group: group.clone(), who: handle.to_string() });
        Ok(())
    }

    /// Takes someone who can no longer be reached without a switchboard out
    /// of every group held here.
    pub(super) fn leave_group_chats(&self, key: &str, handle: &str) {
        for (group, members) in self.group_chats.leave_all(key) {
            self.tell_group_chat(&members, NsEvent::GroupChatLeft { group, who: handle.to_string() });
        }
    }

    fn tell_group_chat(&self, members: &[String], event: NsEvent) {
        for m in members {
            self.tell_account(&m.to_ascii_lowercase(), event.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_ends_with_its_last_member() {
        let groups = GroupChats::default();
        let id = GroupId::from_random([1; 16]);
        let alice = Speaker {
            key: "alice@x.com".into(),
            handle: "Alice@x.com".into(),
            friendly: "Alice".into(),
            client_id: 0,
            dialect: msnp::Dialect::Msnp21,
            machine: None,
        };
        groups.0.lock().insert(id.clone(), Group { members: vec![alice], invited: vec![] });
        assert_eq!(groups.count_of("alice@x.com"), 1);
        assert_eq!(groups.leave_all("alice@x.com"), vec![(id, vec![])]);
        assert!(groups.0.lock().is_empty());
    }
}
