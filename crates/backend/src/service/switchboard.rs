//! Switchboard sessions: cookies, opening and joining, invitations, relaying
//! and leaving.

use super::*;

impl Backend {
    /// `XFR SB`: a cookie for opening a new session. Hidden users and users
    /// who have not yet set a state cannot chat (913).
    /// Returns the cookie and, when another node serves the session, its address.
    pub async fn request_switchboard(&self, user: &OnlineUser) -> Result<(String, Option<String>), ErrorCode> {
        let p = user.presence();
        if !p.started || !p.state.is_visible() {
            return Err(ErrorCode::NotAllowedWhenOffline);
        }
        if let Some((cluster, (node, address))) = self.cluster.get().and_then(|c| c.pick_switchboard().map(|n| (c, n)))
        {
            let me = Invitee {
                handle: user.handle.clone(),
                friendly: p.friendly,
                client_id: p.client_id,
                dialect: user.dialect,
                // The machine opening the session, whose cookie it is.
                endpoints: user.machine.clone().map(|m| (m, user.dialect)).into_iter().collect(),
            };
            return match cluster.request(&node, Request::OpenSession { user: me, requester: user.key.clone() }).await {
                Some(Response::Session(Ok(cookie))) => Ok((cookie, Some(address))),
                Some(Response::Session(Err(code))) => {
                    Err(ErrorCode::from_code(code).unwrap_or(ErrorCode::ServerUnavailable))
                }
                _ => Err(ErrorCode::ServerUnavailable),
            };
        }
        if self.switchboards.sessions_of(&user.key) >= self.config.max_sessions_per_user {
            return Err(ErrorCode::TooManySessions);
        }
        let cookie =
            self.cookies.issue(grant_for(user, &p), &user.key, CookieKind::NewSession, self.config.cookie_lifetime)?;
        Ok((cookie, None))
    }

    /// Switchboard `USR`: opens a session for the holder of an `XFR SB` cookie.
    pub fn open_switchboard(
        &self,
        handle: &msnp::endpoint::Address,
        cookie: &str,
        connection_id: u64,
        outbox: mpsc::Sender<SbEvent>,
    ) -> Result<(Arc<SwitchboardSession>, Arc<Participant>), ErrorCode> {
        let grant = self.cookies.redeem(cookie, handle, CookieKind::NewSession)?;
        let me = Arc::new(Participant::new(&grant, connection_id, outbox));
        self.switchboards.enter(&me.key, self.config.max_sessions_per_user)?;
        Ok((self.switchboards.open(me.clone()), me))
    }

    /// Switchboard `ANS`: joins the session named in an `RNG` cookie. Returns
    /// the roster before the join, for `IRO`.
    pub fn join_switchboard(
        &self,
        handle: &msnp::endpoint::Address,
        cookie: &str,
        session_id: u32,
        connection_id: u64,
        outbox: mpsc::Sender<SbEvent>,
    ) -> Result<Joined, ErrorCode> {
        let grant = self.cookies.redeem(cookie, handle, CookieKind::Invitation { session_id })?;
        let session = self.switchboards.get(session_id).ok_or(ErrorCode::AuthenticationFailed)?;
        let me = Arc::new(Participant::new(&grant, connection_id, outbox));
        self.switchboards.enter(&me.key, self.config.max_sessions_per_user)?;
        match self.switchboards.join(&session, me.clone(), self.config.max_switchboard_participants) {
            Ok(roster) => Ok((session, me, roster)),
            Err(code) => {
                self.switchboards.release(&me);
                Err(code)
            }
        }
    }

    /// `MSG` in a session: relayed to everyone connected, and a reply to
    /// the stand-in of an offline message's sender reaches that sender: the
    /// text is kept while they are invited into this conversation (and
    /// given to them when they join), and left as an offline message when
    /// they cannot be invited or do not answer. Returns whether it was
    /// delivered or taken for delivery.
    /// A message from `me` to the session: flood control (this connection's
    /// bucket and the account's, or pacing for P2P data), the relay, held
    /// copies for stand-ins, and the count; the one door the switchboard
    /// front uses.
    pub async fn relay(
        self: &Arc<Self>,
        session: &Arc<SwitchboardSession>,
        me: &Participant,
        payload: bytes::Bytes,
        kind: RelayKind,
        patience: std::time::Duration,
    ) -> Relayed {
        match kind {
            RelayKind::Data => self.pace(&me.key, Action::Data).await,
            RelayKind::Typed => {
                let per_connection = self.config.rate_limits.messages_per_connection;
                if !(me.take_typed(per_connection) && self.allow(&me.key, Action::Message)) {
                    return Relayed::Refused;
                }
            }
        }
        // Only P2P data is addressed to one endpoint: typed messages are
        // not parsed for it on their way through.
        let endpoint = match kind {
            RelayKind::Data => msnp::p2p::destination(&payload).filter(|d| d.endpoint.is_some()),
            RelayKind::Typed => None,
        };
        let delivered = self.send_in_session(session, me, payload, endpoint.as_ref(), patience).await;
        self.stats.messages_relayed.fetch_add(1, Ordering::Relaxed);
        Relayed::Sent { delivered }
    }

    async fn send_in_session(
        self: &Arc<Self>,
        session: &Arc<SwitchboardSession>,
        me: &Participant,
        payload: bytes::Bytes,
        endpoint: Option<&msnp::endpoint::Address>,
        patience: std::time::Duration,
    ) -> bool {
        let stand_ins = session.stand_ins();
        let relayed = session.relay_to(me, payload.clone(), patience, endpoint).await;
        let ringing = session.ringing_absent();
        if stand_ins.is_empty() && ringing.is_empty() {
            return relayed;
        }
        // Typing notifications and the like mean nothing to someone absent.
        let is_text = msnp::mime::MimeMessage::parse(&payload)
            .is_ok_and(|m| m.content_type().is_none_or(|t| t.eq_ignore_ascii_case("text/plain")));
        if !is_text {
            return relayed;
        }
        // An endpoint still being rung (a second machine answers a moment
        // after the first) sees what was said before it came in. Within the
        // session's bound; past it, the account's other machines have it.
        for (key, machine) in ringing {
            session.hold(HeldMessage {
                for_key: key,
                for_machine: Some(machine),
                from_key: me.key.clone(),
                from_handle: me.handle.clone(),
                from_friendly: me.friendly.clone(),
                payload: payload.clone(),
            });
        }
        let mut taken = true;
        for absent in stand_ins {
            let held = HeldMessage {
                for_key: absent.key.clone(),
                for_machine: None,
                from_key: me.key.clone(),
                from_handle: me.handle.clone(),
                from_friendly: me.friendly.clone(),
                payload: payload.clone(),
            };
            if session.holds_for(&absent.key) {
                // Already invited: waits with the others.
                if !session.hold(held.clone()) {
                    taken &= self.leave_offline(&held).await;
                }
                continue;
            }
            if !session.hold(held.clone()) {
                taken &= self.leave_offline(&held).await;
                continue;
            }
            match self.invite(session, me, &absent.handle).await {
                Ok(()) => self.clone().give_up_on_invitee_later(session.clone(), absent.key.clone()),
                Err(_) => {
                    for held in session.take_held(&absent.key, None) {
                        taken &= self.leave_offline(&held).await;
                    }
                }
            }
        }
        taken
    }

    /// An invitee who does not join while their cookie lives gets what was
    /// kept for them as offline messages.
    fn give_up_on_invitee_later(self: Arc<Self>, session: Arc<SwitchboardSession>, key: String) {
        let lifetime = self.config.cookie_lifetime;
        tokio::spawn(async move {
            tokio::time::sleep(lifetime + std::time::Duration::from_secs(1)).await;
            if !session.contains_connected(&key) {
                for held in session.take_held(&key, None) {
                    self.leave_offline(&held).await;
                }
            }
        });
    }

    async fn leave_offline(self: &Arc<Self>, held: &HeldMessage) -> bool {
        let from = OfflineSender {
            key: held.from_key.clone(),
            handle: held.from_handle.clone(),
            friendly: held.from_friendly.clone(),
        };
        self.store_offline_from(&from, &held.for_key, &held.payload).await.is_ok()
    }

    /// `CAL`: invites someone. The invitee must be online and visible and
    /// their privacy must allow the caller; a refusal for privacy looks the
    /// same as an offline invitee (217), so it reveals nothing. Every
    /// endpoint of an invitee signed in from several machines is rung.
    ///
    /// An endpoint (MSNP16+) calling its own handle rings its account's
    /// other endpoints not in the session, so that the conversation shows
    /// on all of them; Windows Live Messenger 2009 does this as it opens
    /// every conversation, so it succeeds when there is none to ring.
    pub async fn invite(
        self: &Arc<Self>,
        session: &Arc<SwitchboardSession>,
        caller: &Participant,
        handle: &str,
    ) -> Result<(), ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::InvalidUsername)?;
        if handle.key() == caller.key && caller.machine.is_some() {
            return self.ring_own_endpoints(session, caller);
        }
        // A stand-in's user may be invited: they take its place.
        if session.contains_connected(handle.key()) {
            return Err(ErrorCode::AlreadyThere);
        }
        if session.participants().len() >= self.config.max_switchboard_participants {
            return Err(ErrorCode::SessionOverload);
        }
        let local = self.registry.get(handle.key());
        let invitee = match &local {
            Some(u) => Self::takes_invitation_from(u, &caller.key).then(|| {
                let p = u.presence();
                Invitee {
                    handle: u.handle.clone(),
                    friendly: p.friendly,
                    client_id: p.client_id,
                    dialect: u.dialect,
                    endpoints: Vec::new(),
                }
            }),
            None => self.remote_invitee(handle.key(), &caller.key).await,
        }
        .ok_or(ErrorCode::NotOnline)?;
        if let Some(u) = local {
            // Endpoints without switchboards (MSNP21) cannot answer a ring:
            // an account with only those joins through a bridge at once.
            let ringable: Vec<_> = u.endpoints().into_iter().filter(|e| e.dialect.has_switchboard()).collect();
            if ringable.is_empty() {
                return self.bridge_into(session, &crate::cluster::Speaker::of(&u), &caller.key);
            }
            for endpoint in ringable {
                self.ring(session, caller, &endpoint)?;
            }
            return Ok(());
        }
        let (Some(cluster), None) = (self.cluster.get(), local) else { return Ok(()) };
        let Some(node) = cluster.locate(handle.key()) else { return Ok(()) };
        // Someone on another node with no switchboard at all (MSNP21)
        // cannot answer a ring: bridged here, beside the session.
        if !invitee.has_switchboard() {
            return self.bridge_into(session, &(&invitee).into(), &caller.key);
        }
        // A user on another node: one cookie for the sign-in, or one per
        // machine when there are several (each names its own).
        let targets: Vec<(Option<msnp::endpoint::MachineGuid>, msnp::Dialect)> = match invitee.endpoints.is_empty() {
            true => vec![(None, invitee.dialect)],
            false => invitee.endpoints.iter().map(|(m, d)| (Some(m.clone()), *d)).collect(),
        };
        for (machine, dialect) in targets.into_iter().filter(|(_, d)| d.has_switchboard()) {
            let grant = GrantFor {
                handle: &invitee.handle,
                friendly: &invitee.friendly,
                client_id: invitee.client_id,
                dialect,
                extended_caps: 0,
                machine: machine.as_ref(),
            };
            let event = self.ring_event(session, caller, grant, handle.key(), Some(cluster.switchboard_address()))?;
            cluster.send(&node, Envelope::Deliver { to: handle.key().to_string(), event });
        }
        Ok(())
    }

    /// Rings one endpoint here: a cookie of its own, for its machine and dialect.
    fn ring(&self, session: &SwitchboardSession, caller: &Participant, endpoint: &OnlineUser) -> Result<(), ErrorCode> {
        let p = endpoint.presence();
        endpoint.deliver_here(self.ring_event(session, caller, grant_for(endpoint, &p), &endpoint.key, None)?);
        Ok(())
    }

    /// Issues one endpoint's cookie and the `RNG` that carries it, here or
    /// (with the switchboard's `address`) to another node, where the event
    /// names the machine the cookie is for.
    fn ring_event(
        &self,
        session: &SwitchboardSession,
        caller: &Participant,
        grant: GrantFor<'_>,
        key: &str,
        address: Option<String>,
    ) -> Result<NsEvent, ErrorCode> {
        let machine = grant.machine.cloned();
        let kind = CookieKind::Invitation { session_id: session.id };
        let cookie = self.cookies.issue(grant, &caller.key, kind, self.config.cookie_lifetime)?;
        if let Some(m) = &machine {
            session.rang(key, m, std::time::Instant::now() + self.config.cookie_lifetime);
        }
        Ok(NsEvent::Ring {
            session_id: session.id,
            cookie,
            caller: caller.handle.clone(),
            caller_friendly: caller.friendly.clone(),
            for_machine: machine.filter(|_| address.is_some()),
            address,
        })
    }

    /// Rings the caller's own other endpoints that are not in the session.
    fn ring_own_endpoints(&self, session: &SwitchboardSession, caller: &Participant) -> Result<(), ErrorCode> {
        let Some(me) = self.registry.get(&caller.key) else { return Ok(()) };
        let inside: Vec<Option<msnp::endpoint::MachineGuid>> =
            session.participants().iter().filter(|p| p.key == caller.key).map(|p| p.machine.clone()).collect();
        for endpoint in me.endpoints().into_iter().filter(|e| e.machine.is_some() && !inside.contains(&e.machine)) {
            if endpoint.is_receiving() && !endpoint.presence().refuses_invitations {
                self.ring(session, caller, &endpoint)?;
            }
        }
        Ok(())
    }

    /// Leaves a session (on `OUT`, idleness or a dropped connection) and
    /// gives back the user's place in the per-user session count.
    pub fn leave_switchboard(&self, session: &SwitchboardSession, who: &Participant, idle: bool) {
        self.switchboards.leave(session, who, idle);
        self.switchboards.release(who);
    }

    pub fn switchboards(&self) -> &Switchboards {
        &self.switchboards
    }

    /// Whether `invitee` accepts a switchboard invitation from `caller_key`:
    /// visible, taking invitations, and allowing the caller.
    pub(super) fn takes_invitation_from(invitee: &OnlineUser, caller_key: &str) -> bool {
        invitee.presence_line().is_some()
            && !invitee.presence().refuses_invitations
            && invitee.with_lists(|l| l.allows(caller_key))
    }
}

/// The cookie holder a signed-in endpoint is.
pub(super) fn grant_for<'a>(user: &'a OnlineUser, p: &'a crate::presence::PresenceInfo) -> GrantFor<'a> {
    GrantFor {
        handle: &user.handle,
        friendly: &p.friendly,
        client_id: p.client_id,
        dialect: user.dialect,
        extended_caps: p.extended_caps,
        machine: user.machine.as_ref(),
    }
}
