//! What crosses between nodes: joining a cluster, envelopes and requests from
//! other nodes, nodes that go and come back, and asking them about their users.

use futures::StreamExt;

use super::*;

/// Questions about a returning node's users asked at once, by one node.
const NODE_UP_QUESTIONS: usize = 32;

impl Backend {
    /// Joins a cluster: from now on users signed in on other nodes are
    /// reached through `cluster`. Set once, at start.
    pub fn join_cluster(&self, cluster: Arc<dyn Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The node a user who is not signed in here is signed in on.
    pub(super) fn remote(&self, key: &str) -> Option<(&Arc<dyn Cluster>, NodeId)> {
        let cluster = self.cluster.get()?;
        cluster.locate(key).map(|node| (cluster, node))
    }

    /// Someone signed in on another node, if they take an invitation from
    /// `caller_key` (the node they are on answers).
    pub(super) async fn remote_invitee(&self, key: &str, caller_key: &str) -> Option<Invitee> {
        let (cluster, node) = self.remote(key)?;
        let ask = Request::Invitable { invitee: key.to_string(), caller_key: caller_key.to_string() };
        match cluster.request(&node, ask).await {
            Some(Response::Invitable(found)) => found,
            _ => None,
        }
    }

    /// Delivers to every endpoint of an account, wherever it is signed in.
    pub(super) fn tell_account(&self, key: &str, event: NsEvent) {
        if let Some(u) = self.registry.get(key) {
            u.deliver(event);
        } else if let Some((cluster, node)) = self.remote(key) {
            cluster.send(&node, Envelope::Deliver { to: key.to_string(), event });
        }
    }

    /// Acts on a message from another node.
    pub async fn on_envelope(self: &Arc<Self>, envelope: Envelope) {
        match envelope {
            Envelope::Deliver { to, event } => {
                if let Some(u) = self.registry.get(&to) {
                    let presence_only = matches!(
                        event,
                        NsEvent::Presence(_)
                            | NsEvent::Offline { .. }
                            | NsEvent::PersonalMessage { .. }
                            | NsEvent::EndpointsChanged { .. }
                    );
                    match &event {
                        NsEvent::Ring { for_machine: Some(m), .. } => {
                            if let Some(e) = u.endpoints().into_iter().find(|e| e.machine.as_ref() == Some(m)) {
                                e.deliver_here(event);
                            }
                        }
                        _ if presence_only => u.deliver_presence(event),
                        _ => u.deliver(event),
                    }
                }
            }
            Envelope::DeliverPresence { to, event } => {
                for key in to {
                    if let Some(u) = self.registry.get(&key) {
                        u.deliver_presence(event.clone());
                    }
                }
            }
            Envelope::ListChanged { to, contact, list, member, event } => {
                if let Some(u) = self.registry.get(&to) {
                    u.set_list(&contact, list, member);
                    u.deliver(event);
                }
            }
            Envelope::OwnListChanged { to, contact, list, member } => {
                if let Some(u) = self.registry.get(&to) {
                    let allowed_before = u.with_lists(|l| l.allows(&contact));
                    u.set_list(&contact, list, member);
                    if list != ListKind::Forward {
                        self.refresh_view(&u, &contact, allowed_before);
                    }
                    u.deliver(NsEvent::OwnListChanged { contact, list, member });
                }
            }
            Envelope::SignedInElsewhere { to, session } => {
                if let Some(u) = self.registry.get(&to).filter(|u| session == 0 || u.directory_session() == session) {
                    u.deliver(NsEvent::Kick(Some(OutReason::OtherLogin)));
                }
            }
            Envelope::OfflineMessageWaiting { to } => {
                if let Some(u) = self.registry.get(&to).filter(|u| super::offline::reaches_now(u)) {
                    self.deliver_offline(&u).await;
                }
            }
            Envelope::CredentialsChanged { to } => self.end_credentials_here(&to),
            Envelope::WebSessionEnded { id, expires } => self.web_session_ended(id, expires),
            Envelope::ConversationAt { to, conversation, home, event } => {
                self.conversation_at(&to, &conversation, home, event)
            }
            Envelope::ConversationEnded { to, conversation } => self.conversation_ended(&to, &conversation),
        }
    }

    /// Answers a question from another node about users signed in here.
    pub async fn on_request(self: &Arc<Self>, request: Request) -> Response {
        match request {
            Request::Visible { watcher, contacts } => Response::Visible(
                contacts
                    .iter()
                    .filter_map(|k| self.registry.get(k))
                    .filter_map(|c| self.presence_for(&c, &watcher).map(|p| (c.key.clone(), p.into())))
                    .collect(),
            ),
            Request::RedeemTicket { handle_key, ticket, proof } => Response::Redeemed(
                self.tickets
                    .redeem(&handle_key, &ticket, proof.as_ref())
                    .ok()
                    .map(|r| (r.tag, r.remaining.as_millis() as u64)),
            ),
            Request::OpenSession { user, requester } => {
                let grant = GrantFor {
                    handle: &user.handle,
                    friendly: &user.friendly,
                    client_id: user.client_id,
                    dialect: user.dialect,
                    extended_caps: 0,
                    machine: user.endpoints.first().map(|(m, _)| m),
                };
                let cookie = self.cookies.issue(grant, &requester, CookieKind::NewSession, self.config.cookie_lifetime);
                Response::Session(cookie.map_err(|code| code.code()))
            }
            Request::Converse { speaker, call } => {
                Response::Conversed(self.converse(speaker, call).await.map_err(|code| code.code()))
            }
            Request::Invitable { invitee, caller_key } => Response::Invitable(
                self.registry.get(&invitee).filter(|u| Self::takes_invitation_from(u, &caller_key)).map(|u| {
                    let p = u.presence();
                    Invitee {
                        handle: u.handle.clone(),
                        friendly: p.friendly,
                        client_id: p.client_id,
                        dialect: u.dialect,
                        endpoints: u
                            .endpoints()
                            .iter()
                            .filter_map(|e| e.machine.clone().map(|m| (m, e.dialect)))
                            .collect(),
                    }
                }),
            ),
        }
    }

    /// Asks the other nodes whether one of them issued this ticket (the
    /// login service may run on another node); it is used up there.
    /// `ServerUnavailable` when a node that may have issued it did not
    /// answer (the bus stalls): the ticket may be good, and a client told
    /// 601 tries again later, where 911 tells a person their password is
    /// wrong (bitlbee showed "Authentication failed" for a NATS pause).
    pub(super) async fn redeem_elsewhere(
        &self,
        handle_key: &str,
        ticket: &str,
        proof: Option<&crate::passport::SsoProof>,
    ) -> Result<Redeemed, ErrorCode> {
        let Some(cluster) = self.cluster.get() else { return Err(ErrorCode::AuthenticationFailed) };
        let asks = cluster.peers().into_iter().map(|node| {
            let ask = Request::RedeemTicket {
                handle_key: handle_key.to_string(),
                ticket: ticket.to_string(),
                proof: proof.cloned(),
            };
            cluster.request(&node, ask)
        });
        let answers = futures::future::join_all(asks).await;
        let mut unanswered = cluster.peers_lost_lately();
        for answer in answers {
            match answer {
                Some(Response::Redeemed(Some((tag, ms)))) => {
                    return Ok(Redeemed { tag, remaining: std::time::Duration::from_millis(ms) });
                }
                Some(Response::Redeemed(None)) => {}
                _ => unanswered = true,
            }
        }
        Err(if unanswered { ErrorCode::ServerUnavailable } else { ErrorCode::AuthenticationFailed })
    }

    /// A node stopped answering: its users are gone. Every local watcher
    /// who had one of them on the forward list is told `FLN` (harmless if
    /// the contact already looked offline to them).
    /// `gone` holds (handle key, handle) pairs.
    pub fn node_down(&self, gone: &[(String, String)]) {
        if gone.is_empty() {
            return;
        }
        // Each local user's forward list against the set of the gone: the
        // work grows with the lists, not with (local users × gone users).
        let gone: std::collections::HashMap<&str, &str> = gone.iter().map(|(k, h)| (k.as_str(), h.as_str())).collect();
        for u in self.registry.all() {
            if !u.presence().started {
                continue;
            }
            let offline: Vec<String> = u.with_lists(|l| {
                l.members(ListKind::Forward).filter_map(|k| gone.get(k).map(|h| h.to_string())).collect()
            });
            for handle in offline {
                u.deliver(NsEvent::Offline { handle });
            }
        }
    }

    /// A node is heard again after it was given up (the bus came back): the
    /// users it still holds, `back` (handle keys), are shown again to every
    /// local watcher allowed to see them, as their current `NLN` (and
    /// personal message), asked of that node.
    pub async fn node_up(&self, back: &[String]) {
        if back.is_empty() {
            return;
        }
        let back: std::collections::HashSet<&str> = back.iter().map(String::as_str).collect();
        let watching = self.registry.all().into_iter().filter(|u| u.presence().started).filter_map(|u| {
            let watched: Vec<String> = u.with_lists(|l| {
                l.members(ListKind::Forward).filter(|k| back.contains(k)).map(str::to_string).collect()
            });
            (!watched.is_empty()).then_some((u, watched))
        });
        // One question per watcher, several at once: one at a time, the
        // last of a node's 17,000 users waited for 17,000 round trips.
        futures::stream::iter(watching)
            .for_each_concurrent(NODE_UP_QUESTIONS, |(u, watched)| async move {
                for p in self.remote_presence(&u, &watched).await {
                    let handle = p.line.handle.clone();
                    u.deliver_presence(NsEvent::Presence(p.line));
                    if let Some(payload) = p.personal_message {
                        u.deliver_presence(NsEvent::PersonalMessage { handle, payload, endpoints: p.endpoints });
                    }
                }
            })
            .await;
    }

    /// The presence of users on other nodes that `user` may see, among `keys`.
    pub(super) async fn remote_presence(&self, user: &OnlineUser, keys: &[String]) -> Vec<ContactPresence> {
        let Some(cluster) = self.cluster.get() else { return Vec::new() };
        let mut by_node: std::collections::HashMap<NodeId, Vec<String>> = Default::default();
        for key in keys {
            if self.registry.get(key).is_none()
                && let Some(node) = cluster.locate(key)
            {
                by_node.entry(node).or_default().push(key.clone());
            }
        }
        let asks = by_node
            .into_iter()
            .map(|(node, contacts)| cluster.request(&node, Request::Visible { watcher: user.key.clone(), contacts }));
        let mut found = Vec::new();
        for answer in futures::future::join_all(asks).await {
            if let Some(Response::Visible(list)) = answer {
                found.extend(list.into_iter().map(|(_, p)| ContactPresence::from(p)));
            }
        }
        found
    }
}
