//! Offline messages: storing them under the mailbox shares (a blocked sender
//! exactly like anyone), offering them, confirming and dropping them.

use super::*;

impl Backend {
    /// Keeps a message for a user who is offline (or hidden), to be delivered
    /// at their next sign-in. A recipient whose privacy does not allow the
    /// sender gets nothing, and the sender cannot tell: the same checks, the
    /// same write and the same quota answer a blocked sender as anyone (the
    /// message is kept withheld, without its text, and dropped unseen).
    /// An address without an account answers as a delivered message.
    pub async fn send_offline_message(
        self: &Arc<Self>,
        sender: &OnlineUser,
        recipient: &str,
        payload: &[u8],
    ) -> Result<(), OfflineError> {
        let from = OfflineSender {
            key: sender.key.clone(),
            handle: sender.handle.clone(),
            friendly: sender.presence().friendly,
        };
        self.store_offline_from(&from, recipient, payload).await
    }

    pub(super) async fn store_offline_from(
        self: &Arc<Self>,
        sender: &OfflineSender,
        recipient: &str,
        payload: &[u8],
    ) -> Result<(), OfflineError> {
        if payload.len() > self.config.max_offline_message {
            return Err(OfflineError::TooLong);
        }
        if !self.allow(&sender.key, Action::OfflineMessage) {
            return Err(OfflineError::RateLimited);
        }
        let handle = Handle::parse(recipient).map_err(|_| OfflineError::NoSuchUser)?;
        let account = self.store.account(handle.key()).await.map_err(|_| OfflineError::Internal)?;
        // Strangers must not learn which addresses have accounts.
        let Some(account) = account.filter(|a| !a.disabled) else { return Ok(()) };
        let online = self.registry.get(handle.key()).filter(|u| u.lists_loaded());
        let (allowed, from_contact) = match &online {
            Some(u) => u.with_lists(|l| (l.allows(&sender.key), l.bits(&sender.key).contains(ListKind::Allow))),
            None => {
                let snapshot = self.store.list_snapshot(account.id).await.map_err(|_| OfflineError::Internal)?;
                let lists = crate::lists::ContactLists::from_snapshot(&snapshot);
                (lists.allows(&sender.key), lists.bits(&sender.key).contains(ListKind::Allow))
            }
        };
        let message = OfflineMessage {
            id: 0,
            guid: secrets::new_guid().to_uppercase(),
            sender: sender.handle.clone(),
            sender_friendly: sender.friendly.clone(),
            sent_at_ms: now_ms(),
            payload: if allowed { payload.to_vec() } else { Vec::new() },
            from_contact,
            withheld: !allowed,
        };
        let limits = crate::store::MailboxLimits::of(self.config.offline_quota);
        match self.store.store_offline_message(account.id, message, limits).await {
            Ok(_) if allowed => {
                self.stats.offline_messages_stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => return Ok(()),
            Err(StoreError::QuotaExceeded) => return Err(OfflineError::QuotaFull),
            Err(e) => {
                tracing::error!("cannot store an offline message: {e}");
                return Err(OfflineError::Internal);
            }
        }
        // Someone who is online and visible gets it now, after the answer:
        // its timing must not depend on whether the recipient is there.
        match online {
            Some(user) if reaches_now(&user) => {
                let backend = self.clone();
                tokio::spawn(async move { backend.deliver_offline(&user).await });
            }
            Some(_) => {}
            None => {
                if let Some((cluster, node)) = self.remote(handle.key()) {
                    cluster.send(&node, Envelope::OfflineMessageWaiting { to: handle.key().to_string() });
                }
            }
        }
        Ok(())
    }

    /// The lock-key challenge `oim.asmx` sets a sender presenting `ticket`:
    /// derived, not remembered, so that every node sets the same one for the
    /// same ticket and a retry may reach any of them.
    pub fn oim_lock_challenge(&self, ticket: &str) -> String {
        self.key.challenge_for("oim lock key", msnp::passport::ticket_token(ticket))
    }

    /// The offline messages waiting for a user that they may see. Withheld
    /// ones, and those from anyone the user's lists no longer allow (blocked
    /// since), are deleted unseen.
    pub async fn pending_offline(&self, user: &OnlineUser) -> Vec<OfflineMessage> {
        let waiting = self.store.offline_messages(user.account_id).await.unwrap_or_default();
        let stand_in_lists = if user.lists_loaded() {
            None
        } else {
            match self.store.list_snapshot(user.account_id).await {
                Ok(s) => Some(crate::lists::ContactLists::from_snapshot(&s)),
                Err(_) => return Vec::new(),
            }
        };
        let allows = |sender: &str| match &stand_in_lists {
            Some(lists) => lists.allows(&sender.to_ascii_lowercase()),
            None => user.with_lists(|l| l.allows(&sender.to_ascii_lowercase())),
        };
        let (shown, dropped): (Vec<OfflineMessage>, Vec<OfflineMessage>) =
            waiting.into_iter().partition(|m| !m.withheld && allows(&m.sender));
        if !dropped.is_empty() {
            let ids: Vec<i64> = dropped.iter().map(|m| m.id).collect();
            if let Err(e) = self.store.delete_offline_messages(user.account_id, &ids).await {
                tracing::error!("cannot drop withheld offline messages: {e}");
            }
        }
        shown
    }

    /// Offers a visible user their waiting offline messages: one switchboard
    /// invitation per sender, from a stand-in for that sender, so that every
    /// dialect's client shows them as a conversation. The messages stay
    /// stored until the client confirms them ([`Backend::confirm_offline`]);
    /// an invitation nobody answers leaves them for the next sign-in.
    ///
    /// A client that reads offline messages from the web service is told
    /// they wait instead (it fetches and deletes them there).
    pub async fn deliver_offline(self: &Arc<Self>, user: &Arc<OnlineUser>) {
        let waiting = self.pending_offline(user).await;
        self.deliver_pending_offline(user, waiting);
    }

    /// [`Backend::deliver_offline`] of what [`Backend::pending_offline`]
    /// just read: a sign-in that also lists them (MSNP11's mail data)
    /// reads the store once.
    pub fn deliver_pending_offline(self: &Arc<Self>, user: &Arc<OnlineUser>, waiting: Vec<OfflineMessage>) {
        if user.dialect.reads_offline_messages_over_soap() {
            if !waiting.is_empty() {
                user.deliver(NsEvent::OfflineMessagesWaiting {
                    messages: waiting.iter().map(|m| m.waiting()).collect(),
                });
            }
            return;
        }
        let fresh: Vec<OfflineMessage> = {
            let mut delivery = user.offline_delivery.lock();
            waiting.into_iter().filter(|m| delivery.offer(m.id)).collect()
        };
        let mut by_sender: Vec<(String, Vec<OfflineMessage>)> = Vec::new();
        for m in fresh {
            match by_sender.iter_mut().find(|(s, _)| s.eq_ignore_ascii_case(&m.sender)) {
                Some((_, list)) => list.push(m),
                None => by_sender.push((m.sender.clone(), vec![m])),
            }
        }
        for (sender, messages) in by_sender {
            let friendly = messages.last().map(|m| m.sender_friendly.clone()).unwrap_or_default();
            let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
            let stand_in = Arc::new(Participant::stand_in(&sender, &friendly, user.dialect));
            let session = self.switchboards.open_offline(stand_in, messages);
            let p = user.presence();
            let grant = super::switchboard::grant_for(user, &p);
            let kind = CookieKind::Invitation { session_id: session.id };
            let cookie = match self.cookies.issue(grant, &user.key, kind, self.config.cookie_lifetime) {
                Ok(c) => c,
                Err(_) => {
                    self.switchboards.end_if_unjoined(&session);
                    user.offline_delivery.lock().no_longer_offered(&ids);
                    continue;
                }
            };
            let ring = NsEvent::Ring {
                session_id: session.id,
                cookie,
                caller: sender,
                caller_friendly: friendly,
                address: None,
                for_machine: None,
            };
            user.deliver(ring);
            // An invitation nobody answers lapses with its cookie; the
            // messages are offered again at the next sign-in.
            let (backend, user, lifetime) = (self.clone(), user.clone(), self.config.cookie_lifetime);
            tokio::spawn(async move {
                tokio::time::sleep(lifetime + std::time::Duration::from_secs(1)).await;
                if backend.switchboards.end_if_unjoined(&session) {
                    user.offline_delivery.lock().no_longer_offered(&ids);
                }
            });
        }
    }

    /// The client has shown these offline messages: delete them.
    pub async fn confirm_offline(&self, recipient: &str, ids: &[i64]) {
        let Some(user) = self.registry.get(&recipient.to_ascii_lowercase()) else {
            // Signed out in between: the account id is needed to delete.
            if let Ok(Some(account)) = self.store.account(&recipient.to_ascii_lowercase()).await {
                let _ = self.store.delete_offline_messages(account.id, ids).await;
            }
            return;
        };
        if let Err(e) = self.store.delete_offline_messages(user.account_id, ids).await {
            tracing::error!("cannot delete delivered offline messages: {e}");
            return;
        }
        user.offline_delivery.lock().forget(ids);
    }

    /// These offline messages were written to the recipient's switchboard
    /// connection. Whatever the client says next, on any connection,
    /// confirms them ([`Backend::client_spoke`]): a client that goes on
    /// talking is alive and has read what came before.
    pub fn offline_written(&self, recipient: &str, ids: &[i64]) {
        if let Some(user) = self.registry.get(&recipient.to_ascii_lowercase()) {
            user.offline_delivery.lock().written(ids);
        }
    }

    /// The client said something on its notification connection: the
    /// offline messages written to it before are confirmed.
    pub async fn client_spoke(&self, user: &OnlineUser) {
        let shown = user.offline_delivery.lock().take_written();
        if !shown.is_empty() {
            self.confirm_offline(&user.handle, &shown).await;
        }
    }

    /// These offline messages may not have reached the person (the
    /// connection broke before the client showed any sign of reading them):
    /// they stay stored and are offered again at the next sign-in.
    pub fn release_offline(&self, recipient: &str, ids: &[i64]) {
        if let Some(user) = self.registry.get(&recipient.to_ascii_lowercase()) {
            user.offline_delivery.lock().forget(ids);
        }
    }

    /// Deletes messages by their web-service GUIDs (`DeleteMessages`).
    pub async fn delete_offline_by_guid(&self, user: &OnlineUser, guids: &[String]) -> usize {
        let waiting = self.pending_offline(user).await;
        let ids: Vec<i64> =
            waiting.iter().filter(|m| guids.iter().any(|g| g.eq_ignore_ascii_case(&m.guid))).map(|m| m.id).collect();
        let n = self.store.delete_offline_messages(user.account_id, &ids).await.unwrap_or(0);
        user.offline_delivery.lock().no_longer_offered(&ids);
        n
    }
}

/// Whether an offline message arriving now reaches a signed-in user at
/// once: a visible one is offered it, and a client that reads them from the
/// web service is told even while hidden (only the web service shows it).
pub(super) fn reaches_now(user: &OnlineUser) -> bool {
    user.presence_line().is_some() || user.dialect.reads_offline_messages_over_soap()
}
