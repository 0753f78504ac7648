//! Conversations of this node's users that are held on other nodes, and
//! the other side: acting here for users signed in elsewhere.
//!
//! A switchboard conversation bridged to an MSNP21 user lives beside its
//! session, on the switchboard's node; a group conversation lives on the
//! node where it was made. The holding node tells the user's node where
//! the conversation is ([`Envelope::ConversationAt`]); what the user then
//! says or does in it is asked of that node ([`Request::Converse`]), which
//! acts for them as for a local user and answers with the protocol error.

use std::collections::HashMap;
use std::sync::Arc;

use msnp::ErrorCode;
use parking_lot::Mutex;

use super::Backend;
use crate::cluster::{Call, Envelope, NodeId, Request, Response, Speaker};
use crate::presence::{NsEvent, OnlineUser};

/// Conversations elsewhere one user may have at once: past it, the node
/// holding a new one is not recorded, and the user's words take the way
/// they would without it (a new conversation).
const MAX_PER_USER: usize = 64;

/// Where the conversations of users signed in here are held, by user key,
/// then by conversation (the other person's key or a group's address).
#[derive(Debug, Default)]
pub(crate) struct Homes(Mutex<HashMap<String, HashMap<String, NodeId>>>);

impl Homes {
    pub(super) fn home_of(&self, user: &str, conversation: &str) -> Option<NodeId> {
        self.0.lock().get(user)?.get(conversation).cloned()
    }

    fn record(&self, user: &str, conversation: &str, home: NodeId) {
        let mut all = self.0.lock();
        let of_user = all.entry(user.to_string()).or_default();
        if of_user.len() < MAX_PER_USER || of_user.contains_key(conversation) {
            of_user.insert(conversation.to_string(), home);
        }
    }

    pub(super) fn forget(&self, user: &str, conversation: &str) {
        let mut all = self.0.lock();
        if let Some(of_user) = all.get_mut(user) {
            of_user.remove(conversation);
            if of_user.is_empty() {
                all.remove(user);
            }
        }
    }

    /// Every node holding a conversation of `user`, once each; forgets them.
    fn take_nodes_of(&self, user: &str) -> Vec<NodeId> {
        let mut nodes: Vec<NodeId> = self.0.lock().remove(user).into_iter().flat_map(|m| m.into_values()).collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }
}

impl Backend {
    /// Asks the node holding a conversation to carry out `call` for `user`.
    /// A node that does not answer is as good as gone (`217`).
    pub(super) async fn converse_at(&self, home: &str, user: &OnlineUser, call: Call) -> Result<(), ErrorCode> {
        let Some(cluster) = self.cluster.get() else { return Err(ErrorCode::NotOnline) };
        match cluster.request(home, Request::Converse { speaker: Speaker::of(user), call }).await {
            Some(Response::Conversed(Ok(()))) => Ok(()),
            Some(Response::Conversed(Err(code))) => {
                Err(ErrorCode::from_code(code).unwrap_or(ErrorCode::InternalServer))
            }
            _ => Err(ErrorCode::NotOnline),
        }
    }

    /// Tells `key` of a conversation held here: at once when they are
    /// signed in here, through their node (which records that it is held
    /// here) otherwise.
    pub(super) fn tell_of_conversation(&self, key: &str, conversation: &str, event: Option<NsEvent>) {
        if let Some(u) = self.registry.get(key) {
            if let Some(event) = event {
                u.deliver(event);
            }
        } else if let Some((cluster, node)) = self.remote(key) {
            let home = cluster.node_id().to_string();
            let (to, conversation) = (key.to_string(), conversation.to_string());
            cluster.send(&node, Envelope::ConversationAt { to, conversation, home, event });
        }
    }

    /// Tells `key`'s node, if another, that a conversation held here ended.
    pub(super) fn tell_conversation_ended(&self, key: &str, conversation: &str) {
        if self.registry.get(key).is_none()
            && let Some((cluster, node)) = self.remote(key)
        {
            let (to, conversation) = (key.to_string(), conversation.to_string());
            cluster.send(&node, Envelope::ConversationEnded { to, conversation });
        }
    }

    /// On [`Envelope::ConversationAt`].
    pub(super) fn conversation_at(&self, to: &str, conversation: &str, home: NodeId, event: Option<NsEvent>) {
        let Some(u) = self.registry.get(to) else { return };
        self.homes.record(to, conversation, home);
        if let Some(event) = event {
            u.deliver(event);
        }
    }

    /// On [`Envelope::ConversationEnded`].
    pub(super) fn conversation_ended(&self, to: &str, conversation: &str) {
        self.homes.forget(to, conversation);
    }

    /// `user` can no longer be reached without a switchboard: the nodes
    /// holding its conversations take it out of them.
    pub(super) fn gone_from_other_nodes(&self, user: &OnlineUser) {
        let Some(cluster) = self.cluster.get() else { return };
        for node in self.homes.take_nodes_of(&user.key) {
            let ask = cluster.request(&node, Request::Converse { speaker: Speaker::of(user), call: Call::Gone });
            tokio::spawn(ask);
        }
    }

    /// On [`Request::Converse`]: acts for someone signed in on another node.
    pub(super) async fn converse(self: &Arc<Self>, speaker: Speaker, call: Call) -> Result<(), ErrorCode> {
        match call {
            Call::SayTo { other, said } => self.say_in_bridge(&speaker.key, &other, &said).await,
            Call::SayInGroup { group, said } => self.say_in_group_here(&speaker, &group, said).await,
            Call::JoinGroup { group } => self.join_group_here(&speaker, &group),
            Call::LeaveGroup { group } => self.leave_group_here(&speaker.key, &speaker.handle, &group),
            Call::InviteToGroup { group, handle } => self.invite_to_group_here(&speaker, &group, &handle).await,
            Call::Gone => {
                self.bridges.end_for(&speaker.key);
                self.leave_group_chats(&speaker.key, &speaker.handle);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_has_a_bounded_number_of_conversations_elsewhere() {
        let homes = Homes::default();
        for i in 0..MAX_PER_USER + 10 {
            homes.record("alice", &format!("c{i}"), "node-b".into());
        }
        assert_eq!(homes.0.lock()["alice"].len(), MAX_PER_USER);
        // One already known may move.
        homes.record("alice", "c0", "node-c".into());
        assert_eq!(homes.home_of("alice", "c0").as_deref(), Some("node-c"));
        assert_eq!(homes.take_nodes_of("alice"), vec!["node-b".to_string(), "node-c".to_string()]);
        assert!(homes.home_of("alice", "c1").is_none());
    }
}
