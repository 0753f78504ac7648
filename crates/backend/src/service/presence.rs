//! Presence: state changes, who may see them, and who is told of them.

use super::*;

impl Backend {
    /// `CHG`: sets the user's state. Watchers get `NLN` (or `FLN` when the user
    /// hides). On the first `CHG` the result holds an `ILN` line for every
    /// forward-list contact who is online and lets the user see them.
    pub async fn change_state(
        &self,
        user: &OnlineUser,
        state: OnlineState,
        capabilities: Option<Capabilities>,
        msn_object: Option<String>,
    ) -> Result<Vec<ContactPresence>, ErrorCode> {
        if state == OnlineState::Offline {
            return Err(ErrorCode::InvalidParameter);
        }
        let caps = capabilities.unwrap_or_default();
        let (before, after) = user.update_presence(|p| {
            p.state = state;
            p.client_id = caps.basic;
            p.extended_caps = caps.extended;
            p.msn_object = msn_object;
            p.started = true;
        });
        let was_receiving = user.start_receiving();
        if user.update_endpoint(|e| e.capabilities = caps) && before.started {
            self.endpoints_changed(user);
        }
        let was_visible = before.started && before.state.is_visible();
        let changed = !before.started
            || before.state != after.state
            || before.client_id != after.client_id
            || before.extended_caps != after.extended_caps
            || before.msn_object != after.msn_object;
        if changed {
            if let Some(line) = user.presence_line() {
                self.notify_watchers(user, NsEvent::Presence(line));
            } else if was_visible {
                self.notify_watchers(user, NsEvent::Offline { handle: user.handle.clone() });
            }
        }
        if was_receiving {
            return Ok(Vec::new());
        }
        let forward: Vec<String> = user.with_lists(|l| l.members(ListKind::Forward).map(str::to_string).collect());
        let mut initial: Vec<ContactPresence> = forward
            .iter()
            .filter_map(|k| self.registry.get(k))
            .filter_map(|c| self.visible_presence(&c, user))
            .collect();
        initial.extend(self.remote_presence(user, &forward).await);
        initial.sort_by(|a, b| a.line.handle.cmp(&b.line.handle));
        Ok(initial)
    }

    /// Sends an event to every online watcher (someone with `user` on their
    /// forward list) who has started receiving presence and whom `user`'s
    /// privacy allows; watchers on another node in one message to it.
    pub(super) fn notify_watchers(&self, user: &OnlineUser, event: NsEvent) {
        let watchers: Vec<String> =
            user.with_lists(|l| l.members(ListKind::Reverse).filter(|k| l.allows(k)).map(str::to_string).collect());
        let mut elsewhere: std::collections::HashMap<NodeId, Vec<String>> = Default::default();
        for key in watchers {
            if let Some(w) = self.registry.get(&key) {
                w.deliver_presence(event.clone());
            } else if let Some((_, node)) = self.remote(&key) {
                elsewhere.entry(node).or_default().push(key);
            }
        }
        if let Some(cluster) = self.cluster.get() {
            for (node, to) in elsewhere {
                cluster.send(&node, Envelope::DeliverPresence { to, event: event.clone() });
            }
        }
    }

    /// After a privacy change by `user`, tells one watcher whose view of
    /// `user` flipped: `FLN` if they may no longer see them, `NLN` if they now may.
    pub(super) fn refresh_view(&self, user: &OnlineUser, watcher_key: &str, allowed_before: bool) {
        let (watching, allowed_after) =
            user.with_lists(|l| (l.bits(watcher_key).contains(ListKind::Reverse), l.allows(watcher_key)));
        if !watching || allowed_before == allowed_after {
            return;
        }
        let Some(line) = user.presence_line() else { return };
        self.deliver_to_watcher(
            watcher_key,
            if allowed_after { NsEvent::Presence(line) } else { NsEvent::Offline { handle: user.handle.clone() } },
        );
    }

    /// Delivers an event about someone's presence to a watcher, wherever the
    /// watcher is signed in; only sessions that have sent their first `CHG`
    /// receive presence.
    pub(super) fn deliver_to_watcher(&self, key: &str, event: NsEvent) {
        if let Some(w) = self.registry.get(key) {
            w.deliver_presence(event);
        } else if let Some((cluster, node)) = self.remote(key) {
            cluster.send(&node, Envelope::Deliver { to: key.to_string(), event });
        }
    }

    /// A contact's presence as `user` may see it, wherever the contact is
    /// signed in (the `ILN` that follows putting them on the forward list).
    pub async fn contact_presence(&self, user: &OnlineUser, key: &str) -> Option<ContactPresence> {
        match self.registry.get(key) {
            Some(contact) => self.visible_presence(&contact, user),
            None => self.remote_presence(user, &[key.to_string()]).await.pop(),
        }
    }

    /// A contact's presence as `user` may see it, with its personal message.
    pub(super) fn visible_presence(&self, contact: &OnlineUser, user: &OnlineUser) -> Option<ContactPresence> {
        self.presence_for(contact, &user.key)
    }

    /// `contact`'s presence as the watcher with key `watcher` may see it.
    pub(super) fn presence_for(&self, contact: &OnlineUser, watcher: &str) -> Option<ContactPresence> {
        if !contact.with_lists(|l| l.allows(watcher)) {
            return None;
        }
        let line = contact.presence_line()?;
        Some(ContactPresence {
            line,
            personal_message: contact.presence().personal_message,
            endpoints: contact.endpoint_list(),
        })
    }

    /// The account's endpoints changed (one came or went, or said something
    /// new of itself): watchers and the account's own endpoints see the new
    /// list (`UBX`, in the dialects that show endpoints).
    pub(super) fn endpoints_changed(&self, user: &OnlineUser) {
        self.tell_endpoints(user, true);
    }

    /// The new endpoint list to the account's own endpoints, and to its
    /// watchers when what they see of it (`EndpointData`) changed.
    fn tell_endpoints(&self, user: &OnlineUser, watchers_too: bool) {
        if user.presence_line().is_none() {
            return;
        }
        let event = NsEvent::EndpointsChanged {
            handle: user.handle.clone(),
            payload: user.presence().personal_message,
            endpoints: user.endpoint_list(),
        };
        if watchers_too {
            self.notify_watchers(user, event.clone());
        }
        user.deliver_presence(event);
    }

    /// `UUX` with endpoint data (MSNP16+): what this endpoint says of itself.
    pub fn describe_endpoint(&self, user: &OnlineUser, doc: &msnp::personal::UuxDocument) {
        let capabilities_before = user.endpoint_data().capabilities;
        let changed = user.update_endpoint(|e| {
            if let Some(c) = doc.capabilities {
                e.capabilities = c;
            }
            if doc.name.is_some() {
                e.name = doc.name.clone();
            }
            if doc.idle.is_some() {
                e.idle = doc.idle;
            }
            if doc.client_type.is_some() {
                e.client_type = doc.client_type;
            }
            if doc.state.is_some() {
                e.state = doc.state;
            }
        });
        // Watchers see only capabilities: a machine's name or idleness is
        // its own account's business.
        if changed {
            self.tell_endpoints(user, user.endpoint_data().capabilities != capabilities_before);
        }
    }
}
