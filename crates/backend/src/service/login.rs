//! Signing in and out: MD5 and Passport checks under the login throttle,
//! tickets, registration of the sign-in and its web credentials.

use super::*;

impl Backend {
    /// Checks the handle of `USR ... I`. Only its syntax: whether the account
    /// exists is not revealed before the password is checked.
    pub fn check_login_handle(handle: &str) -> Result<Handle, ErrorCode> {
        if !handle.contains('@') {
            return Err(ErrorCode::FqdnMissing);
        }
        Handle::parse(handle)
    }

    /// Starts a login: the challenge to send with `USR ... S`. For MD5 the
    /// salt of draft 7.3 (random rather than the historic predictable time
    /// stamp); for Passport the TWN string with the time and a random `tpf`.
    pub fn start_login(scheme: AuthScheme, unix_time: u64) -> String {
        match scheme {
            AuthScheme::Md5 => format!("{}.{}", secrets::random_digits(10), secrets::random_digits(9)),
            AuthScheme::Sso => {
                let random: [u8; msnp::sso::NONCE_LEN] = std::array::from_fn(|_| rand::random());
                msnp::sso::nonce(&random)
            }
            AuthScheme::Twn => {
                let tpf: String = secrets::random_digits(32)
                    .bytes()
                    .map(|b| char::from(b"0123456789abcdef"[(b - b'0') as usize]))
                    .collect();
                msnp::passport::twn_challenge(unix_time, &tpf)
            }
        }
    }

    /// Completes a login started with [`Backend::start_login`]: the account,
    /// and for a ticket its token and time left (it stays a web credential
    /// that long). Every failure is 911.
    pub async fn complete_login(
        &self,
        handle: &Handle,
        proof: LoginProof<'_>,
        source: IpAddr,
    ) -> Result<LoginGrant, ErrorCode> {
        match proof {
            LoginProof::Md5 { challenge, response } => {
                let account = self.authenticate_md5(handle, challenge, response, source).await?;
                Ok(LoginGrant { account, ticket: None })
            }
            LoginProof::Ticket(ticket) => {
                let (account, left) = self.authenticate_ticket(handle, ticket, None).await?;
                Ok(LoginGrant { account, ticket: Some((msnp::passport::ticket_token(ticket).to_string(), left)) })
            }
            LoginProof::SingleSignOn { ticket, nonce, blob } => {
                let proof = crate::passport::SsoProof { nonce: nonce.to_string(), blob: blob.to_string() };
                let (account, left) = self.authenticate_ticket(handle, ticket, Some(&proof)).await?;
                Ok(LoginGrant { account, ticket: Some((msnp::passport::ticket_token(ticket).to_string(), left)) })
            }
        }
    }

    /// Verifies an MD5 response. Unknown accounts, disabled accounts and wrong
    /// passwords are all answered 911, so a guesser learns nothing.
    pub async fn authenticate_md5(
        &self,
        handle: &Handle,
        challenge: &str,
        response: &str,
        source: IpAddr,
    ) -> Result<Account, ErrorCode> {
        self.throttled(handle.key(), source, self.check_md5(handle, challenge, response)).await
    }

    async fn check_md5(&self, handle: &Handle, challenge: &str, response: &str) -> Result<Account, ErrorCode> {
        let account = self.store.account(handle.key()).await.map_err(store_error)?;
        let Some(account) = account.filter(|a| !a.disabled) else {
            return Err(ErrorCode::AuthenticationFailed);
        };
        let Some(sealed) = &account.credentials.sealed_secret else {
            return Err(ErrorCode::AuthenticationFailed);
        };
        let password = self.key.open(handle.key(), sealed).map_err(|e| {
            tracing::error!("cannot open the MD5 secret of {}: {e}", handle);
            ErrorCode::AuthenticationFailed
        })?;
        let expected = msnp::challenge::md5_response(challenge, &password);
        if constant_time_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            Ok(account)
        } else {
            Err(ErrorCode::AuthenticationFailed)
        }
    }

    /// The Passport login service: checks the password (each of the given
    /// candidate forms, for clients that may or may not URL-encode it) and
    /// issues a ticket. Unknown accounts cost a hash too, so timing does not
    /// tell them apart.
    pub async fn passport_login(&self, handle: &str, passwords: &[&str], source: IpAddr) -> Result<String, ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::AuthenticationFailed)?;
        self.throttled(handle.key(), source, self.check_passport(&handle, passwords)).await
    }

    async fn check_passport(&self, handle: &Handle, passwords: &[&str]) -> Result<String, ErrorCode> {
        let account = self.check_password(handle, passwords).await?;
        let tag = credential_tag(&account.credentials.password_hash);
        Ok(self.tickets.issue(handle.key(), tag, self.config.ticket_lifetime))
    }

    /// The account, if one of `passwords` is its password (and it is not
    /// disabled). Unknown accounts cost a hash too.
    async fn check_password(&self, handle: &Handle, passwords: &[&str]) -> Result<Account, ErrorCode> {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let account = self.store.account(handle.key()).await.map_err(store_error)?.filter(|a| !a.disabled);
        let hash = match &account {
            Some(a) => a.credentials.password_hash.clone(),
            None => DUMMY.get_or_init(|| secrets::hash_password("dummy").unwrap_or_default()).clone(),
        };
        let passwords: Vec<String> = passwords.iter().take(2).map(|p| p.to_string()).collect();
        let ok = self.hashing.verify(passwords, hash).await.ok_or(ErrorCode::ServerUnavailable)?;
        match (ok, account) {
            (true, Some(account)) => Ok(account),
            _ => Err(ErrorCode::AuthenticationFailed),
        }
    }

    /// A login by proof of the password rather than the password itself
    /// (XMPP's SCRAM): `check` is given the account's password, opened from
    /// its sealed form, on the password-hashing threads, and answers what
    /// the proof yields if it holds. Throttled like any login; accounts
    /// without a sealed password cannot log in this way.
    pub async fn proof_login<T: Send + 'static>(
        &self,
        handle: &str,
        source: IpAddr,
        check: impl FnOnce(&str) -> Option<T> + Send + 'static,
    ) -> Result<(Account, T), ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::AuthenticationFailed)?;
        self.throttled(handle.key(), source, self.check_proof(&handle, check)).await
    }

    async fn check_proof<T: Send + 'static>(
        &self,
        handle: &Handle,
        check: impl FnOnce(&str) -> Option<T> + Send + 'static,
    ) -> Result<(Account, T), ErrorCode> {
        let account = self.store.account(handle.key()).await.map_err(store_error)?.filter(|a| !a.disabled);
        let password = account
            .as_ref()
            .and_then(|a| a.credentials.sealed_secret.as_ref())
            .and_then(|sealed| self.key.open(handle.key(), sealed).ok());
        // Unknown accounts cost the same derivation, against nothing.
        let found = password.is_some();
        let password = password.unwrap_or_else(|| secrets::random_token(16));
        let proved = self.hashing.run(move || check(&password)).await.ok_or(ErrorCode::ServerUnavailable)?;
        match (proved, account) {
            (Some(proof), Some(account)) if found => Ok((account, proof)),
            _ => Err(ErrorCode::AuthenticationFailed),
        }
    }

    /// A salt of `handle`'s own for proofs of its password (SCRAM): the same
    /// on every node and every login, derived, never stored.
    pub fn proof_salt(&self, handle: &str) -> Vec<u8> {
        let mut salt = self.key.sign("scram-salt", handle.to_ascii_lowercase().as_bytes());
        salt.truncate(16);
        salt
    }

    /// Checks a password typed into a web page (throttled like any login).
    pub async fn web_login(&self, handle: &str, password: &str, source: IpAddr) -> Result<Account, ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::AuthenticationFailed)?;
        self.throttled(handle.key(), source, self.check_password(&handle, &[password])).await
    }

    /// A further sign-in ticket beside `first`, which a password check just
    /// issued (RST asks for one per service in a single request): no store
    /// read. With `proof_key` (the RST `BinarySecret`), signing in with it
    /// needs the proof of that key.
    pub fn issue_sibling_ticket(
        &self,
        first: &str,
        proof_key: Option<[u8; msnp::sso::SECRET_LEN]>,
    ) -> Result<String, ErrorCode> {
        self.tickets.issue_sibling(first, self.config.ticket_lifetime, proof_key).ok_or(ErrorCode::AuthenticationFailed)
    }

    /// A web-service ticket beside `first` (the address book's, storage's,
    /// offline messages'): valid for every request until it expires.
    pub fn issue_service_ticket(&self, first: &str) -> Result<String, ErrorCode> {
        self.tickets.issue_service(first, self.config.ticket_lifetime).ok_or(ErrorCode::AuthenticationFailed)
    }

    /// A ticket for an account without a password check, for test and fuzz
    /// harnesses that sign in many times.
    pub async fn issue_ticket(&self, handle: &str) -> Result<String, ErrorCode> {
        let key = handle.to_ascii_lowercase();
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::AuthenticationFailed)?;
        let tag = credential_tag(&account.credentials.password_hash);
        Ok(self.tickets.issue(&key, tag, self.config.ticket_lifetime))
    }

    /// A single sign-on ticket and its session key for an account without
    /// a password check, for the same harnesses.
    pub async fn issue_sso_ticket(&self, handle: &str) -> Result<(String, [u8; msnp::sso::SECRET_LEN]), ErrorCode> {
        let first = self.issue_ticket(handle).await?;
        let secret: [u8; msnp::sso::SECRET_LEN] = std::array::from_fn(|_| rand::random());
        Ok((self.issue_sibling_ticket(&first, Some(secret))?, secret))
    }

    /// `USR ... TWN S ticket`: accepts a ticket issued to this handle, once,
    /// if the password has not changed since. Also returns how long the
    /// ticket had left.
    pub async fn authenticate_ticket(
        &self,
        handle: &Handle,
        ticket: &str,
        proof: Option<&crate::passport::SsoProof>,
    ) -> Result<(Account, std::time::Duration), ErrorCode> {
        let redeemed = match self.tickets.redeem(handle.key(), ticket, proof) {
            Ok(r) => r,
            Err(_) => self.redeem_elsewhere(handle.key(), ticket, proof).await?,
        };
        let account = self
            .store
            .account(handle.key())
            .await
            .map_err(store_error)?
            .filter(|a| !a.disabled)
            .ok_or(ErrorCode::AuthenticationFailed)?;
        if credential_tag(&account.credentials.password_hash) != redeemed.tag {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok((account, redeemed.remaining))
    }

    /// Registers a signed-in user. An earlier sign-in of the same account is
    /// told `OUT OTH`, unless both are endpoints of different machines
    /// (MSNP16+, see [`crate::presence::Registry::insert`]). Also returns
    /// the lists it read, for the first `SYN`.
    ///
    /// `web_token` is the sign-in's `MSPAuth`, taken by the web services
    /// while it lasts; `ticket` the token of the Passport ticket it
    /// presented and that ticket's time left, taken no longer than that.
    pub async fn sign_in(
        &self,
        account: &Account,
        dialect: Dialect,
        machine: Option<msnp::endpoint::MachineGuid>,
        web_token: String,
        ticket: Option<(String, std::time::Duration)>,
        outbox: Outbox<NsEvent>,
    ) -> Result<(Arc<OnlineUser>, Option<LoadedLists>), ErrorCode> {
        let machine = machine.filter(|_| dialect.has_points_of_presence());
        // An MD5 sign-in never presents its token: nothing is kept, here or
        // in a cluster's directory (an empty token matches no one).
        let web_token = if dialect.has_web_services() { web_token } else { String::new() };
        let mut user = OnlineUser::new(account.id, &account.handle, &account.friendly, dialect, web_token, outbox)
            .on_machine(machine);
        user.ticket_token = ticket.as_ref().map(|(t, _)| t.as_str().into());
        // Register before loading the lists: a reverse-list change made by
        // someone else in between is queued on the user and replayed.
        let (user, replaced) = self.registry.insert(user, self.config.max_endpoints_per_account)?;
        for previous in &replaced.endpoints {
            previous.deliver_here(NsEvent::Kick(Some(OutReason::OtherLogin)));
            self.forget_web_tokens(previous);
        }
        if replaced.endpoints.is_empty()
            && !replaced.joined_others
            && let Some((cluster, node)) = self.remote(&user.key)
        {
            cluster.send(&node, Envelope::SignedInElsewhere { to: user.key.clone(), session: 0 });
        }
        if !replaced.joined_others
            && let Some(cluster) = self.cluster.get()
        {
            cluster.signed_in(&user);
        }
        // An MD5 sign-in's token is never presented, so it is not kept
        // where it would cost memory for nothing.
        if dialect.has_web_services() {
            let credential = |until| WebCredential { key: user.key.clone(), session: user.session_id, until };
            let mut tokens = self.web_tokens.lock();
            tokens.insert(user.web_token.to_string(), credential(None));
            if let Some((token, left)) = ticket {
                tokens.insert(token, credential(Some(std::time::Instant::now() + left)));
            }
        }
        if replaced.joined_others {
            // The account's lists are in memory already, and its watchers
            // learn of the new endpoint from its endpoint list.
            self.endpoints_changed(&user);
            return Ok((user, None));
        }
        match self.store.list_snapshot(account.id).await {
            Ok(snapshot) => {
                let loaded = user.install_lists(snapshot);
                Ok((user, loaded))
            }
            Err(e) => {
                self.registry.remove(&user);
                Err(store_error(e))
            }
        }
    }

    /// Ends a sign-in: watchers who saw the user online get `FLN`, unless
    /// another endpoint of the account stays (then they see one endpoint
    /// fewer) or a newer sign-in of the account is already visible to them.
    pub fn sign_out(&self, user: &Arc<OnlineUser>) -> Removal {
        let was_visible = user.presence_line().is_some();
        let removal = self.registry.remove(user);
        match removal {
            Removal::NotThere => {}
            Removal::EndpointLeft => {
                self.forget_web_tokens(user);
                self.endpoints_changed(user);
                let still_without_switchboard = self.registry.get(&user.key).is_some_and(|u| u.reads_sdg());
                if !still_without_switchboard {
                    self.no_longer_without_switchboard(user);
                }
                return removal;
            }
            Removal::SignedOut => {
                self.forget_web_tokens(user);
                self.no_longer_without_switchboard(user);
                if let Some(cluster) = self.cluster.get() {
                    cluster.signed_out(user);
                }
            }
        }
        let replaced_visibly =
            removal == Removal::NotThere && self.registry.get(&user.key).is_some_and(|u| u.presence_line().is_some());
        if was_visible && !replaced_visibly {
            self.notify_watchers(user, NsEvent::Offline { handle: user.handle.clone() });
        }
        removal
    }

    /// Out of every conversation held for the user as someone without a
    /// switchboard, here and on other nodes.
    fn no_longer_without_switchboard(&self, user: &OnlineUser) {
        self.bridges.end_for(&user.key);
        self.leave_group_chats(&user.key, &user.handle);
        self.gone_from_other_nodes(user);
    }

    fn forget_web_tokens(&self, user: &OnlineUser) {
        let mut tokens = self.web_tokens.lock();
        tokens.remove(&*user.web_token);
        if let Some(t) = &user.ticket_token {
            tokens.remove(&**t);
        }
    }

    /// The signed-in user a web-service token belongs to: the token (bare or
    /// as `t=...&p=...`) must be the `MSPAuth` of a current sign-in.
    ///
    /// In a cluster the user may be signed in on another node: the token is
    /// then found in the directory, and the result stands for that user
    /// here (for sending and reading offline messages; it is not registered
    /// and receives nothing).
    pub async fn web_user(&self, token: &str) -> Option<Arc<OnlineUser>> {
        let token = msnp::passport::ticket_token(token);
        if token.is_empty() {
            return None;
        }
        // A web-service ticket from RST (MSNP13+): its owner's sign-in here,
        // or on another node of a cluster: then a stand-in holding the lists
        // from the store, so that the address book reads and changes the
        // same lists (its changes reach the sign-in as `OwnListChanged`).
        if let Some((owner, _)) = self.tickets.service_owner(token) {
            if let Some(user) = self.registry.get(&owner) {
                return Some(user);
            }
            self.remote(&owner)?;
            let user = self.stand_in(&owner, token).await?;
            let snapshot = self.store.list_snapshot(user.account_id).await.ok()?;
            user.install_lists(snapshot);
            return Some(user);
        }
        let local = self.web_tokens.lock().get(token).cloned();
        if let Some(credential) = local {
            if credential.until.is_some_and(|t| t <= std::time::Instant::now()) {
                return None;
            }
            let account = self.registry.get(&credential.key)?;
            return account.endpoints().into_iter().find(|u| u.session_id == credential.session);
        }
        let key = self.cluster.get()?.user_of_token(token)?;
        self.stand_in(&key, token).await
    }

    /// A stand-in here for a user signed in on another node: not
    /// registered, receiving nothing.
    async fn stand_in(&self, key: &str, token: &str) -> Option<Arc<OnlineUser>> {
        let account = self.store.account(key).await.ok()??;
        let stand_in = OnlineUser::new(
            account.id,
            &account.handle,
            &account.friendly,
            Dialect::Msnp11,
            token.to_string(),
            Outbox::new(1),
        );
        Some(Arc::new(stand_in))
    }
}
