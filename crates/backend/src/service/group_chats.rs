//! Group conversations without a switchboard (MSNP21's `10:` groups): made
//! by one member, who invites others; those who join are its roster; what
//! is said reaches every member's endpoints; it ends when the last member
//! leaves. Kept in memory on the node where it was made (members signed in
//! on another node are told through the bus, but speak only here).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use msnp::ErrorCode;
use msnp::circle::Said;
use msnp::multiparty::GroupId;
use parking_lot::Mutex;

use super::Backend;
use crate::limits::Action;
use crate::presence::{NsEvent, OnlineUser};

/// Groups one member may be in at once.
const MAX_GROUPS_PER_USER: usize = 16;

/// The group conversations of this node.
#[derive(Debug, Default)]
pub(crate) struct GroupChats(Mutex<HashMap<GroupId, Group>>);

#[derive(Debug, Default)]
struct Group {
    /// Handles, as they joined.
    members: Vec<String>,
    /// Handle keys invited and not yet joined.
    invited: Vec<String>,
}

impl GroupChats {
    /// The groups `key` is in, and takes them out; for a sign-out.
    fn leave_all(&self, key: &str) -> Vec<(GroupId, Vec<String>)> {
        let mut groups = self.0.lock();
        let mut left = Vec::new();
        for (id, group) in groups.iter_mut() {
            if let Some(i) = group.members.iter().position(|m| m.eq_ignore_ascii_case(key)) {
                group.members.remove(i);
                left.push((id.clone(), group.members.clone()));
            }
            group.invited.retain(|k| k != key);
        }
        groups.retain(|_, g| !g.members.is_empty());
        left
    }

    /// The members of a group `key` is in; `933` for a group that is not
    /// there or not theirs.
    fn members_seen_by(&self, group: &GroupId, key: &str) -> Result<Vec<String>, ErrorCode> {
        let groups = self.0.lock();
        let g = groups.get(group).ok_or(ErrorCode::InvalidCircleMembership)?;
        if !g.members.iter().any(|m| m.eq_ignore_ascii_case(key)) {
            return Err(ErrorCode::InvalidCircleMembership);
        }
        Ok(g.members.clone())
    }

    fn count_of(&self, key: &str) -> usize {
        self.0.lock().values().filter(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(key))).count()
    }
}

impl Backend {
    /// Makes a group conversation with `user` in it.
    pub fn create_group_chat(&self, user: &OnlineUser) -> Result<GroupId, ErrorCode> {
        if self.group_chats.count_of(&user.key) >= MAX_GROUPS_PER_USER {
            return Err(ErrorCode::TooManySessions);
        }
        let id = GroupId::from_random(rand::random());
        let group = Group { members: vec![user.handle.clone()], invited: Vec::new() };
        self.group_chats.0.lock().insert(id.clone(), group);
        Ok(id)
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
        let key = handle.to_ascii_lowercase();
        let invitee = self.registry.get(&key).filter(|u| Self::takes_invitation_from(u, &user.key));
        let Some(invitee) = invitee else { return Err(ErrorCode::NotOnline) };
        if !invitee.reads_sdg() {
            let members = self.group_chats.members_seen_by(group, &user.key)?;
            return self.invite_into_group_switchboard(user, group, &members, handle).await;
        }
        {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).ok_or(ErrorCode::InvalidCircleMembership)?;
            if !g.members.iter().any(|m| m.eq_ignore_ascii_case(&user.key)) {
                return Err(ErrorCode::InvalidCircleMembership);
            }
            if g.members.len() + g.invited.len() >= self.config.max_switchboard_participants {
                return Err(ErrorCode::SessionOverload);
            }
            if !g.invited.contains(&key) && !g.members.iter().any(|m| m.eq_ignore_ascii_case(&key)) {
                g.invited.push(key);
            }
        }
        invitee.deliver(NsEvent::GroupChatInvited { group: group.clone() });
        Ok(())
    }

    /// `user` joins a group it made or was invited to; every member is told
    /// the roster.
    pub fn join_group_chat(self: &Arc<Self>, user: &Arc<OnlineUser>, group: &GroupId) -> Result<(), ErrorCode> {
        let made_here = self.group_chats.0.lock().contains_key(group);
        if let Some(bridge) = self.bridged_group(user, group).filter(|_| !made_here) {
            Self::join_bridged_group(&bridge, user, group);
            return Ok(());
        }
        let members = {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).ok_or(ErrorCode::InvalidCircleMembership)?;
            let member = g.members.iter().any(|m| m.eq_ignore_ascii_case(&user.key));
            if !member {
                let Some(i) = g.invited.iter().position(|k| *k == user.key) else {
                    return Err(ErrorCode::InvalidCircleMembership);
                };
                g.invited.remove(i);
                g.members.push(user.handle.clone());
            }
            g.members.clone()
        };
        // Someone on a switchboard already in it: the newcomer joins its
        // session too.
        self.join_group_switchboard(user, group);
        self.tell_group_chat(&members, NsEvent::GroupChatRoster { group: group.clone(), members: members.clone() });
        Ok(())
    }

    /// Says `said` in a group `user` is in.
    pub async fn say_in_group_chat(&self, user: &OnlineUser, group: &GroupId, said: Said) -> Result<(), ErrorCode> {
        if !self.allow(&user.key, Action::Message) {
            self.stats.rate_limited_messages.fetch_add(1, Ordering::Relaxed);
            return Err(ErrorCode::UserTooActive);
        }
        let bridge = self.bridged_group(user, group);
        let made_here = self.group_chats.0.lock().contains_key(group);
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
        self.tell_group_chat(&members, event);
        Ok(())
    }

    /// `user` leaves a group; the others are told. The last one out ends it.
    pub fn leave_group_chat(&self, user: &OnlineUser, group: &GroupId) -> Result<(), ErrorCode> {
        if let Some(bridge) = self.bridged_group(user, group) {
            Self::leave_bridged_group(&bridge);
            if !self.group_chats.0.lock().contains_key(group) {
                return Ok(());
            }
        }
        let members = {
            let mut groups = self.group_chats.0.lock();
            let g = groups.get_mut(group).ok_or(ErrorCode::InvalidCircleMembership)?;
            let i = g.members.iter().position(|m| m.eq_ignore_ascii_case(&user.key));
            let i = i.ok_or(ErrorCode::InvalidCircleMembership)?;
            g.members.remove(i);
            let members = g.members.clone();
            if members.is_empty() {
                groups.remove(group);
            }
            members
        };
        self.tell_group_chat(&members, NsEvent::GroupChatLeft { group: group.clone(), who: user.handle.clone() });
        Ok(())
    }

    /// Takes a user who signed out of every group.
    pub(super) fn leave_group_chats(&self, user: &OnlineUser) {
        for (group, members) in self.group_chats.leave_all(&user.key) {
            self.tell_group_chat(&members, NsEvent::GroupChatLeft { group, who: user.handle.clone() });
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
        groups.0.lock().insert(id.clone(), Group { members: vec!["Alice@x.com".into()], invited: vec![] });
        assert_eq!(groups.count_of("alice@x.com"), 1);
        assert_eq!(groups.leave_all("alice@x.com"), vec![(id, vec![])]);
        assert!(groups.0.lock().is_empty());
    }
}
