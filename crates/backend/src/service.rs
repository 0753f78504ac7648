//! [`Backend`]: the operations the protocol fronts call.
//!
//! Every method takes dialect-neutral values and returns either a result for
//! the caller's reply or a protocol [`ErrorCode`]. Effects on other users are
//! delivered as events to their connections. A change is written to the
//! store before the method returns, so a reply sent after it is never ahead
//! of the disk.

use std::sync::Arc;

use msnp::reply::{OutReason, PresenceLine};
use msnp::request::decode_friendly;
use msnp::{Dialect, ErrorCode, ListKind, OnlineState, PrivacyMode, PromptMode, urlencode};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::cluster::{Cluster, Envelope, Invitee, NodeId, Request, Response};
use crate::config::BackendConfig;
use crate::handle::Handle;
use crate::hashing::PasswordChecker;
use crate::limits::{Action, KeyedBuckets, LoginOutcome, LoginThrottle, LoginVerdict};
use crate::lists::{Group, ListSnapshot, OppositeList, PERSONAL_MESSAGE, PHONE_KINDS};
use crate::outbox::Outbox;
use crate::passport::{Redeemed, TicketJar, credential_tag};
use crate::presence::{LoadedLists, NsEvent, OnlineUser, Registry};
use crate::secrets::{self, SecretError, ServerKey, constant_time_eq};
use crate::store::{Account, AccountSummary, Credentials, NewAccount, OfflineMessage, Store, StoreError};
use crate::switchboard::{
    CookieJar, CookieKind, GrantFor, HeldMessage, Participant, SbEvent, SwitchboardSession, Switchboards,
};

/// Errors of account administration (the CLI and, later, the web pages).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid handle (protocol error {0})")]
    InvalidHandle(ErrorCode),
    #[error("invalid friendly name")]
    InvalidName,
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// One line of `msnd user import`.
#[derive(Debug, Clone)]
pub struct ImportedAccount {
    pub handle: String,
    pub password: String,
    pub friendly: Option<String>,
}

/// A session joined with `ANS`: the session, the new participant, and the
/// roster before the join (for `IRO`).
pub type Joined = (Arc<SwitchboardSession>, Arc<Participant>, Vec<Arc<Participant>>);

/// The longest operator broadcast: with its MIME header it stays within
/// the 1,664-byte messages the oldest clients read.
pub const MAX_BROADCAST_BYTES: usize = 1_500;

/// Who an offline message is from.
struct OfflineSender {
    key: String,
    handle: String,
    friendly: String,
}

/// What a `BLP` or `GTC` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeChange {
    /// The mode was stored; the lists are at `serial` now.
    Changed { serial: u32 },
    /// The mode was already the one asked for; nothing was written.
    Unchanged { serial: u32 },
}

/// Why an offline message was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OfflineError {
    #[error("no such user")]
    NoSuchUser,
    #[error("the recipient has too many offline messages waiting")]
    QuotaFull,
    #[error("the message is too long")]
    TooLong,
    #[error("too many offline messages from this sender")]
    RateLimited,
    #[error("internal error")]
    Internal,
}

/// What a successful `ADD` produced.
#[derive(Debug, Clone)]
pub struct AddOutcome {
    pub serial: u32,
    /// The contact GUID of the entry.
    pub guid: String,
    /// The contact's presence for the `ILN` that follows an `ADD FL`.
    pub initial_presence: Option<ContactPresence>,
}

/// What a successful `REM` produced.
#[derive(Debug, Clone)]
pub struct Removed {
    pub serial: u32,
    /// The contact's handle as spelled on their account.
    pub handle: String,
    pub guid: String,
}

/// A contact's presence line and personal message, as a watcher sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPresence {
    pub line: PresenceLine,
    pub personal_message: Option<String>,
}

/// A change of group membership.
#[derive(Debug, Clone)]
pub struct GroupChange {
    pub serial: u32,
    pub group: Group,
    pub handle: String,
    pub friendly: String,
    pub guid: String,
}

/// The domain services shared by every connection.
pub struct Backend {
    store: Arc<dyn Store>,
    key: ServerKey,
    config: BackendConfig,
    registry: Registry,
    cookies: CookieJar,
    switchboards: Switchboards,
    tickets: TicketJar,
    hashing: PasswordChecker,
    buckets: KeyedBuckets,
    logins: LoginThrottle,
    stats: BackendStats,
    /// Web-service credentials of current sign-ins, by token.
    web_tokens: parking_lot::Mutex<std::collections::HashMap<String, WebCredential>>,
    /// The other nodes, when this one is part of a cluster.
    cluster: std::sync::OnceLock<Arc<dyn Cluster>>,
}

/// What a web-service token stands for: one sign-in of one account, and,
/// for a ticket's token, no longer than the ticket's lifetime.
#[derive(Debug, Clone)]
struct WebCredential {
    key: String,
    session: u64,
    until: Option<std::time::Instant>,
}

/// Counts of refusals, for the metrics.
#[derive(Debug, Default)]
pub struct BackendStats {
    pub rate_limited_messages: AtomicU64,
    pub rate_limited_data: AtomicU64,
    pub rate_limited_invitations: AtomicU64,
    pub rate_limited_list_changes: AtomicU64,
    pub rate_limited_state_changes: AtomicU64,
    pub rate_limited_offline_messages: AtomicU64,
    pub rate_limited_sign_ups: AtomicU64,
    /// Login attempts answered only after a delay.
    pub logins_slowed: AtomicU64,
    /// Login attempts refused unchecked by the throttle.
    pub logins_refused: AtomicU64,
    pub logins_failed: AtomicU64,
    pub logins_succeeded: AtomicU64,
    /// Offline messages kept for a recipient.
    pub offline_messages_stored: AtomicU64,
    /// How long store calls take.
    pub store_latency: Arc<crate::store::timed::Latency>,
}

fn store_error(e: StoreError) -> ErrorCode {
    tracing::error!("store failure: {e}");
    ErrorCode::DbServer
}

impl Backend {
    pub fn new(store: Arc<dyn Store>, key: ServerKey, config: BackendConfig) -> Backend {
        let stats = BackendStats::default();
        let store = Arc::new(crate::store::timed::TimedStore { inner: store, latency: stats.store_latency.clone() });
        Backend {
            store,
            key,
            registry: Registry::default(),
            cookies: CookieJar::default(),
            switchboards: Switchboards::default(),
            tickets: TicketJar::default(),
            hashing: PasswordChecker::new(config.password_hash_workers, config.hashing_thread_start),
            buckets: KeyedBuckets::default(),
            logins: LoginThrottle::default(),
            stats,
            web_tokens: Default::default(),
            cluster: std::sync::OnceLock::new(),
            config,
        }
    }

    /// The key that signs messages between the nodes of a cluster.
    pub fn bus_key(&self) -> [u8; 32] {
        self.key.bus_key()
    }

    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    pub fn stats(&self) -> &BackendStats {
        &self.stats
    }

    /// Whether the user (by handle key) may do `action` now; a refusal is counted.
    pub fn allow(&self, key: &str, action: Action) -> bool {
        let ok = self.buckets.take(key, action, self.config.rate_limits.rate(action));
        if !ok {
            self.limited(action).fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Whether the sign-up page may create one more account for someone at
    /// `source`; a refusal is counted.
    pub fn allow_sign_up(&self, source: IpAddr) -> bool {
        self.allow(&format!("address:{source}"), Action::SignUp)
    }

    /// The counter of refused (or paced) actions of a kind.
    fn limited(&self, action: Action) -> &AtomicU64 {
        let s = &self.stats;
        match action {
            Action::Message => &s.rate_limited_messages,
            Action::Data => &s.rate_limited_data,
            Action::Invitation => &s.rate_limited_invitations,
            Action::ListChange => &s.rate_limited_list_changes,
            Action::StateChange => &s.rate_limited_state_changes,
            Action::OfflineMessage => &s.rate_limited_offline_messages,
            Action::SignUp => &s.rate_limited_sign_ups,
        }
    }

    /// Waits until the user (by handle key) may do `action`: flood control
    /// that paces rather than refuses, for P2P data through a switchboard,
    /// where a refusal would only make the client send the packet again.
    /// A paced action is counted like a refusal.
    pub async fn pace(&self, key: &str, action: Action) {
        let rate = self.config.rate_limits.rate(action);
        let mut counted = false;
        while let Err(wait) = self.buckets.take_or_wait(key, action, rate) {
            if !counted {
                self.limited(action).fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            tokio::time::sleep(wait.max(std::time::Duration::from_micros(100))).await;
        }
    }

    /// Checks a password, ticket or response under the failed-login
    /// throttle: the attempt is counted before `check` runs (so parallel
    /// guesses are counted too), waits as the throttle says, is looked at
    /// again after the wait, and is settled by its result. A refusal is
    /// 911, like a wrong password.
    async fn throttled<T>(
        &self,
        key: &str,
        source: IpAddr,
        check: impl std::future::Future<Output = Result<T, ErrorCode>>,
    ) -> Result<T, ErrorCode> {
        let refuse = || {
            self.stats.logins_refused.fetch_add(1, Ordering::Relaxed);
            Err(ErrorCode::AuthenticationFailed)
        };
        let attempt = match self.logins.begin(&self.config.rate_limits.logins, key, source) {
            LoginVerdict::Go { attempt, delay } => {
                if !delay.is_zero() {
                    self.stats.logins_slowed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(delay).await;
                    if !attempt.still_allowed() {
                        attempt.settle(LoginOutcome::NotChecked);
                        return refuse();
                    }
                }
                attempt
            }
            LoginVerdict::Refuse => return refuse(),
        };
        let result = check.await;
        match &result {
            Ok(_) => {
                attempt.settle(LoginOutcome::Succeeded);
                self.stats.logins_succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Err(ErrorCode::AuthenticationFailed) => {
                attempt.settle(LoginOutcome::Failed);
                self.stats.logins_failed.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => attempt.settle(LoginOutcome::NotChecked),
        }
        result
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    // ----- cluster --------------------------------------------------------

    /// Joins a cluster: from now on users signed in on other nodes are
    /// reached through `cluster`. Set once, at start.
    pub fn join_cluster(&self, cluster: Arc<dyn Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The node a user who is not signed in here is signed in on.
    fn remote(&self, key: &str) -> Option<(&Arc<dyn Cluster>, NodeId)> {
        let cluster = self.cluster.get()?;
        cluster.locate(key).map(|node| (cluster, node))
    }

    /// Delivers an event about someone's presence to a watcher, wherever the
    /// watcher is signed in; only sessions that have sent their first `CHG`
    /// receive presence.
    fn deliver_to_watcher(&self, key: &str, event: NsEvent) {
        if let Some(w) = self.registry.get(key) {
            if w.presence().started {
                w.deliver(event);
            }
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
                        NsEvent::Presence(_) | NsEvent::Offline { .. } | NsEvent::PersonalMessage { .. }
                    );
                    if !presence_only || u.presence().started {
                        u.deliver(event);
                    }
                }
            }
            Envelope::ListChanged { to, contact, list, member, event } => {
                if let Some(u) = self.registry.get(&to) {
                    u.set_list(&contact, list, member);
                    u.deliver(event);
                }
            }
            Envelope::SignedInElsewhere { to, session } => {
                if let Some(u) = self.registry.get(&to).filter(|u| session == 0 || u.session_id == session) {
                    u.deliver(NsEvent::Kick(Some(OutReason::OtherLogin)));
                }
            }
            Envelope::OfflineMessageWaiting { to } => {
                if let Some(u) = self.registry.get(&to).filter(|u| u.presence_line().is_some()) {
                    self.deliver_offline(&u).await;
                }
            }
            Envelope::CredentialsChanged { to } => self.end_credentials_here(&to),
        }
    }

    /// Answers a question from another node about users signed in here.
    pub fn on_request(&self, request: Request) -> Response {
        match request {
            Request::Visible { watcher, contacts } => Response::Visible(
                contacts
                    .iter()
                    .filter_map(|k| self.registry.get(k))
                    .filter_map(|c| self.presence_for(&c, &watcher).map(|p| (c.key.clone(), p.into())))
                    .collect(),
            ),
            Request::RedeemTicket { handle_key, ticket } => Response::Redeemed(
                self.tickets.redeem(&handle_key, &ticket).ok().map(|r| (r.tag, r.remaining.as_millis() as u64)),
            ),
            Request::OpenSession { user, requester } => {
                let grant = GrantFor {
                    handle: &user.handle,
                    friendly: &user.friendly,
                    client_id: user.client_id,
                    dialect: user.dialect,
                };
                let cookie = self.cookies.issue(grant, &requester, CookieKind::NewSession, self.config.cookie_lifetime);
                Response::Session(cookie.map_err(|code| code.code()))
            }
            Request::Invitable { invitee, caller_key } => Response::Invitable(
                self.registry.get(&invitee).filter(|u| Self::takes_invitation_from(u, &caller_key)).map(|u| {
                    let p = u.presence();
                    Invitee {
                        handle: u.handle.clone(),
                        friendly: p.friendly,
                        client_id: p.client_id,
                        dialect: u.dialect,
                    }
                }),
            ),
        }
    }

    /// Asks the other nodes whether one of them issued this ticket (the
    /// login service may run on another node); it is used up there.
    async fn redeem_elsewhere(&self, handle_key: &str, ticket: &str) -> Option<Redeemed> {
        let cluster = self.cluster.get()?;
        let asks = cluster.peers().into_iter().map(|node| {
            let ask = Request::RedeemTicket { handle_key: handle_key.to_string(), ticket: ticket.to_string() };
            cluster.request(&node, ask)
        });
        futures::future::join_all(asks).await.into_iter().find_map(|a| match a {
            Some(Response::Redeemed(Some((tag, ms)))) => {
                Some(Redeemed { tag, remaining: std::time::Duration::from_millis(ms) })
            }
            _ => None,
        })
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
        for u in self.registry.all() {
            if !u.presence().started {
                continue;
            }
            let watched: Vec<String> = u.with_lists(|l| {
                l.members(ListKind::Forward).filter(|k| back.contains(k)).map(str::to_string).collect()
            });
            if watched.is_empty() {
                continue;
            }
            for p in self.remote_presence(&u, &watched).await {
                let handle = p.line.handle.clone();
                u.deliver(NsEvent::Presence(p.line));
                if let Some(payload) = p.personal_message {
                    u.deliver(NsEvent::PersonalMessage { handle, payload });
                }
            }
        }
    }

    /// The presence of users on other nodes that `user` may see, among `keys`.
    async fn remote_presence(&self, user: &OnlineUser, keys: &[String]) -> Vec<ContactPresence> {
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

    pub fn switchboards(&self) -> &Switchboards {
        &self.switchboards
    }

    // ----- accounts -------------------------------------------------------

    /// A new password's hash and sealed secret. The hash runs on the
    /// password pool behind any login waiting there (and off the async
    /// workers, which a 20 ms hash would stall).
    async fn credentials(&self, handle: &Handle, password: &str) -> Result<Credentials, AccountError> {
        if password.is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let hash = self
            .hashing
            .hash(password.to_string())
            .await
            .ok_or_else(|| SecretError::Hash("the password pool has stopped".into()))??;
        Ok(Credentials { password_hash: hash, sealed_secret: Some(self.key.seal(handle.key(), password)) })
    }

    /// Creates an account. The friendly name defaults to the handle.
    pub async fn create_account(
        &self,
        handle: &str,
        friendly: Option<&str>,
        password: &str,
    ) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        let friendly = friendly.unwrap_or(handle.as_str());
        decode_friendly(&urlencode::encode(friendly)).map_err(|_| AccountError::InvalidName)?;
        let credentials = self.credentials(&handle, password).await?;
        self.store
            .create_account(NewAccount { handle: handle.as_str().into(), friendly: friendly.into(), credentials })
            .await?;
        Ok(())
    }

    /// Creates many accounts at once (`msnd user import`): the password
    /// hashes run on every core, the inserts go to the store concurrently so
    /// its group commit batches them. Accounts that already exist are left as
    /// they are. Returns how many were created.
    pub async fn import_accounts(&self, accounts: Vec<ImportedAccount>) -> Result<usize, AccountError> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut created = 0;
        for batch in accounts.chunks(workers * 64) {
            let mut prepared = Vec::with_capacity(batch.len());
            for a in batch {
                let handle = Handle::parse(&a.handle).map_err(AccountError::InvalidHandle)?;
                let friendly = a.friendly.clone().unwrap_or_else(|| handle.as_str().to_string());
                decode_friendly(&urlencode::encode(&friendly)).map_err(|_| AccountError::InvalidName)?;
                if a.password.is_empty() {
                    return Err(AccountError::EmptyPassword);
                }
                // Hashing is the cost of an import: skip accounts that exist
                // before paying it (a re-run of a bulk import is then cheap).
                if self.store.account(handle.key()).await?.is_some() {
                    continue;
                }
                prepared.push((handle, friendly, a.password.clone()));
            }
            // Hash on plain threads, off the async workers: this is a batch
            // job, not the serving path.
            let (prepared, hashes) = tokio::task::spawn_blocking(move || {
                let per_thread = prepared.len().div_ceil(workers).max(1);
                let hashes: Vec<Result<String, SecretError>> = std::thread::scope(|scope| {
                    let jobs: Vec<_> = prepared
                        .chunks(per_thread)
                        .map(|chunk| {
                            scope.spawn(move || {
                                chunk.iter().map(|(_, _, p)| secrets::hash_password(p)).collect::<Vec<_>>()
                            })
                        })
                        .collect();
                    jobs.into_iter().flat_map(|j| j.join().unwrap_or_default()).collect()
                });
                (prepared, hashes)
            })
            .await
            .map_err(|e| SecretError::Hash(e.to_string()))?;
            let inserts = prepared.into_iter().zip(hashes).map(|((handle, friendly, password), hash)| async move {
                let credentials =
                    Credentials { password_hash: hash?, sealed_secret: Some(self.key.seal(handle.key(), &password)) };
                match self
                    .store
                    .create_account(NewAccount { handle: handle.as_str().into(), friendly, credentials })
                    .await
                {
                    Ok(_) => Ok(1),
                    Err(StoreError::AccountExists) => Ok(0),
                    Err(e) => Err(AccountError::from(e)),
                }
            });
            for r in futures::future::join_all(inserts).await {
                created += r?;
            }
        }
        Ok(created)
    }

    pub async fn delete_account(&self, handle: &str) -> Result<(), AccountError> {
        Ok(self.store.delete_account(&handle.to_ascii_lowercase()).await?)
    }

    /// Changes a password and ends what the old one opened, as someone
    /// changing a leaked password expects: the sign-in (`OUT`), its
    /// web-service tokens, and every ticket not yet used, on every node.
    /// Tickets also carry the credentials they were issued under, so a
    /// ticket checked by a process that missed this (a `msnd user passwd`
    /// beside a running server) is refused too.
    pub async fn set_password(&self, handle: &str, password: &str) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        let credentials = self.credentials(&handle, password).await?;
        self.store.set_credentials(handle.key(), credentials).await?;
        self.end_credentials_here(handle.key());
        if let Some(cluster) = self.cluster.get() {
            for node in cluster.peers() {
                cluster.send(&node, Envelope::CredentialsChanged { to: handle.key().to_string() });
            }
        }
        Ok(())
    }

    /// Voids this node's tickets and web tokens of an account and ends its
    /// sign-in here.
    fn end_credentials_here(&self, key: &str) {
        self.tickets.revoke(key);
        self.web_tokens.lock().retain(|_, c| c.key != key);
        self.kick(key);
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountSummary>, AccountError> {
        Ok(self.store.list_accounts().await?)
    }

    // ----- login ----------------------------------------------------------

    /// Checks the handle of `USR ... I`. Only its syntax: whether the account
    /// exists is not revealed before the password is checked.
    pub fn check_login_handle(handle: &str) -> Result<Handle, ErrorCode> {
        if !handle.contains('@') {
            return Err(ErrorCode::FqdnMissing);
        }
        Handle::parse(handle)
    }

    /// A fresh MD5 challenge (the salt of draft 7.3), random rather than the
    /// historic predictable time stamp.
    pub fn md5_challenge() -> String {
        format!("{}.{}", secrets::random_digits(10), secrets::random_digits(9))
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

    /// Checks a password typed into a web page (throttled like any login).
    pub async fn web_login(&self, handle: &str, password: &str, source: IpAddr) -> Result<Account, ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::AuthenticationFailed)?;
        self.throttled(handle.key(), source, self.check_password(&handle, &[password])).await
    }

    /// Disables an account (and ends its session) or enables it again.
    pub async fn set_disabled(&self, handle: &str, disabled: bool) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        self.store.set_disabled(handle.key(), disabled).await?;
        if disabled {
            self.kick(handle.key());
        }
        Ok(())
    }

    /// Ends a user's session on this node with `OUT`; false if not signed in here.
    pub fn kick(&self, handle: &str) -> bool {
        match self.registry.get(&handle.to_ascii_lowercase()) {
            Some(u) => {
                u.deliver(NsEvent::Kick(None));
                true
            }
            None => false,
        }
    }

    /// Sends a message from the service to everyone signed in here; returns
    /// how many, or `None` when the text is longer than
    /// [`MAX_BROADCAST_BYTES`] (older clients take a message of about 1,600
    /// bytes at most and choke on more).
    pub fn broadcast(&self, text: &str) -> Option<usize> {
        if text.len() > MAX_BROADCAST_BYTES {
            return None;
        }
        let payload = format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}");
        let users = self.registry.all();
        for u in &users {
            u.deliver(NsEvent::SystemMessage { payload: bytes::Bytes::from(payload.clone()) });
        }
        Some(users.len())
    }

    /// A further ticket for an account whose password was just checked (RST
    /// asks for one per service in a single request).
    pub async fn issue_ticket(&self, handle: &str) -> Result<String, ErrorCode> {
        let key = handle.to_ascii_lowercase();
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::AuthenticationFailed)?;
        let tag = credential_tag(&account.credentials.password_hash);
        Ok(self.tickets.issue(&key, tag, self.config.ticket_lifetime))
    }

    /// `USR ... TWN S ticket`: accepts a ticket issued to this handle, once,
    /// if the password has not changed since. Also returns how long the
    /// ticket had left.
    pub async fn authenticate_ticket(
        &self,
        handle: &Handle,
        ticket: &str,
    ) -> Result<(Account, std::time::Duration), ErrorCode> {
        let redeemed = match self.tickets.redeem(handle.key(), ticket) {
            Ok(r) => r,
            Err(_) => self.redeem_elsewhere(handle.key(), ticket).await.ok_or(ErrorCode::AuthenticationFailed)?,
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
    /// told `OUT OTH`. Also returns the lists it read, for the first `SYN`.
    ///
    /// `web_token` is the sign-in's `MSPAuth`, taken by the web services
    /// while it lasts; `ticket` the token of the Passport ticket it
    /// presented and that ticket's time left, taken no longer than that.
    pub async fn sign_in(
        &self,
        account: &Account,
        dialect: Dialect,
        web_token: String,
        ticket: Option<(String, std::time::Duration)>,
        outbox: Outbox<NsEvent>,
    ) -> Result<(Arc<OnlineUser>, Option<LoadedLists>), ErrorCode> {
        let mut user = OnlineUser::new(account.id, &account.handle, &account.friendly, dialect, web_token, outbox);
        user.ticket_token = ticket.as_ref().map(|(t, _)| t.clone());
        let user = Arc::new(user);
        // Register before loading the lists: a reverse-list change made by
        // someone else in between is queued on the user and replayed.
        if let Some(previous) = self.registry.insert(user.clone()) {
            previous.deliver(NsEvent::Kick(Some(OutReason::OtherLogin)));
            self.forget_web_tokens(&previous);
        } else if let Some((cluster, node)) = self.remote(&user.key) {
            cluster.send(&node, Envelope::SignedInElsewhere { to: user.key.clone(), session: 0 });
        }
        if let Some(cluster) = self.cluster.get() {
            cluster.signed_in(&user);
        }
        // An MD5 sign-in's token is never presented, so it is not kept
        // where it would cost memory for nothing.
        if dialect.has_web_services() {
            let credential = |until| WebCredential { key: user.key.clone(), session: user.session_id, until };
            let mut tokens = self.web_tokens.lock();
            tokens.insert(user.web_token.clone(), credential(None));
            if let Some((token, left)) = ticket {
                tokens.insert(token, credential(Some(std::time::Instant::now() + left)));
            }
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

    /// Ends a sign-in: watchers who saw the user online get `FLN`, unless a
    /// newer sign-in of the same account is already visible to them.
    pub fn sign_out(&self, user: &Arc<OnlineUser>) {
        let was_visible = user.presence_line().is_some();
        let removed = self.registry.remove(user);
        if removed {
            self.forget_web_tokens(user);
            if let Some(cluster) = self.cluster.get() {
                cluster.signed_out(user);
            }
        }
        if !was_visible {
            return;
        }
        if !removed && self.registry.get(&user.key).is_some_and(|u| u.presence_line().is_some()) {
            return;
        }
        self.notify_watchers(user, NsEvent::Offline { handle: user.handle.clone() });
    }

    fn forget_web_tokens(&self, user: &OnlineUser) {
        let mut tokens = self.web_tokens.lock();
        tokens.remove(&user.web_token);
        if let Some(t) = &user.ticket_token {
            tokens.remove(t);
        }
    }

    // ----- lists ----------------------------------------------------------

    /// The lists and settings for `SYN` and `LST`, read from the store.
    pub async fn list_snapshot(&self, user: &OnlineUser) -> Result<ListSnapshot, ErrorCode> {
        self.store.list_snapshot(user.account_id).await.map_err(store_error)
    }

    /// Sends an event to every online watcher (someone with `user` on their
    /// forward list) who has started receiving presence and whom `user`'s
    /// privacy allows.
    fn notify_watchers(&self, user: &OnlineUser, event: NsEvent) {
        let watchers: Vec<String> =
            user.with_lists(|l| l.members(ListKind::Reverse).filter(|k| l.allows(k)).map(str::to_string).collect());
        for key in watchers {
            self.deliver_to_watcher(&key, event.clone());
        }
    }

    /// After a privacy change by `user`, tells one watcher whose view of
    /// `user` flipped: `FLN` if they may no longer see them, `NLN` if they now may.
    fn refresh_view(&self, user: &OnlineUser, watcher_key: &str, allowed_before: bool) {
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

    /// `user` went on or off `contact`'s reverse list: update the contact's
    /// lists in memory and tell them, on whichever node they are.
    fn reverse_list_changed(&self, contact: &str, user: &OnlineUser, member: bool, event: NsEvent) {
        if let Some(c) = self.registry.get(contact) {
            c.set_list(&user.key, ListKind::Reverse, member);
            c.deliver(event);
        } else if let Some(cluster) = self.cluster.get() {
            // To every node rather than the one the directory names: a user
            // signing in elsewhere right now may not be in this node's copy
            // of the directory yet, and a missed change would leave their
            // lists wrong for the whole session. List changes are rare.
            let envelope = Envelope::ListChanged {
                to: contact.to_string(),
                contact: user.key.clone(),
                list: ListKind::Reverse,
                member,
                event,
            };
            cluster.broadcast(envelope);
        }
    }

    /// Finds a contact by handle, or (MSNP10+) by contact GUID; returns the
    /// handle key.
    pub fn resolve_contact(&self, user: &OnlineUser, target: &str) -> Option<String> {
        if target.contains('@') {
            Some(target.to_ascii_lowercase())
        } else {
            user.with_lists(|l| l.key_of_guid(target).map(str::to_string))
        }
    }

    /// `ADD`/`ADC`: puts someone on one of the user's lists.
    pub async fn add_to_list(
        &self,
        user: &OnlineUser,
        list: ListKind,
        handle: &str,
        opposite: OppositeList,
    ) -> Result<AddOutcome, ErrorCode> {
        let handle = Handle::parse(handle)?;
        let key = handle.key();
        if list == ListKind::Forward && key == user.key {
            return Err(ErrorCode::InvalidParameter);
        }
        user.with_lists(|l| l.check_add(list, key, opposite, &self.config))?;
        let contact = self.store.account(key).await.map_err(store_error)?.ok_or(ErrorCode::InvalidUser)?;
        let allowed_before = user.with_lists(|l| l.allows(key));
        let change = self
            .store
            .set_list_membership(user.account_id, contact.id, list, true, &secrets::new_guid())
            .await
            .map_err(store_error)?;
        user.with_lists_mut(|l| {
            l.set(key, list, true);
            l.set_guid(key, &change.guid);
        });

        let online = self.registry.get(key);
        let mut initial_presence = None;
        match list {
            ListKind::Forward => {
                if let Some(serial) = change.contact_serial {
                    let event = NsEvent::ListAdded {
                        list: ListKind::Reverse,
                        serial,
                        handle: user.handle.clone(),
                        friendly: user.presence().friendly,
                    };
                    self.reverse_list_changed(key, user, true, event);
                }
                if user.presence().started {
                    initial_presence = match online {
                        Some(c) => self.visible_presence(&c, user),
                        None => self.remote_presence(user, &[key.to_string()]).await.pop(),
                    };
                }
            }
            _ => self.refresh_view(user, key, allowed_before),
        }
        Ok(AddOutcome { serial: change.owner_serial, guid: change.guid, initial_presence })
    }

    /// `REM`: takes someone off one of the user's lists. `target` is a handle
    /// or, for the forward list of MSNP10+, a contact GUID.
    pub async fn remove_from_list(
        &self,
        user: &OnlineUser,
        list: ListKind,
        target: &str,
    ) -> Result<Removed, ErrorCode> {
        let key = if target.contains('@') {
            Handle::parse(target)?.key().to_string()
        } else {
            self.resolve_contact(user, target).ok_or(ErrorCode::NotOnList)?
        };
        user.with_lists(|l| l.check_remove(list, &key))?;
        let guid = user.with_lists(|l| l.contact(&key).map(|c| c.guid.to_string()).unwrap_or_default());
        let Some(contact) = self.store.account(&key).await.map_err(store_error)? else {
            // The account was deleted behind our back; forget it here too.
            user.set_list(&key, list, false);
            return Err(ErrorCode::NotOnList);
        };
        let allowed_before = user.with_lists(|l| l.allows(&key));
        let change =
            self.store.set_list_membership(user.account_id, contact.id, list, false, "").await.map_err(store_error)?;
        user.set_list(&key, list, false);
        match list {
            ListKind::Forward => {
                if let Some(serial) = change.contact_serial {
                    let event = NsEvent::ListRemoved { list: ListKind::Reverse, serial, handle: user.handle.clone() };
                    self.reverse_list_changed(&key, user, false, event);
                }
            }
            _ => self.refresh_view(user, &key, allowed_before),
        }
        Ok(Removed { serial: change.owner_serial, handle: contact.handle, guid })
    }

    /// A contact's presence as `user` may see it, with its personal message.
    fn visible_presence(&self, contact: &OnlineUser, user: &OnlineUser) -> Option<ContactPresence> {
        self.presence_for(contact, &user.key)
    }

    /// `contact`'s presence as the watcher with key `watcher` may see it.
    fn presence_for(&self, contact: &OnlineUser, watcher: &str) -> Option<ContactPresence> {
        if !contact.with_lists(|l| l.allows(watcher)) {
            return None;
        }
        let line = contact.presence_line()?;
        Some(ContactPresence { line, personal_message: contact.presence().personal_message })
    }

    /// Whether `invitee` accepts a switchboard invitation from `caller_key`:
    /// visible, taking invitations, and allowing the caller.
    fn takes_invitation_from(invitee: &OnlineUser, caller_key: &str) -> bool {
        invitee.presence_line().is_some()
            && !invitee.presence().refuses_invitations
            && invitee.with_lists(|l| l.allows(caller_key))
    }

    // ----- groups ---------------------------------------------------------

    /// `ADG`: creates a group.
    pub async fn create_group(&self, user: &OnlineUser, name: &str) -> Result<(u32, Group), ErrorCode> {
        user.with_lists(|l| l.check_new_group(name))?;
        let guid = secrets::new_guid();
        let (id, serial) = self.store.create_group(user.account_id, name, &guid).await.map_err(store_error)?;
        let group = Group { id, guid, name: name.to_string() };
        user.with_lists_mut(|l| l.groups.push(group.clone()));
        Ok((serial, group))
    }

    /// `RMG`: deletes a group; its members stay on the forward list, in no
    /// group (group 0 to older dialects).
    pub async fn delete_group(&self, user: &OnlineUser, reference: &str) -> Result<(u32, Group), ErrorCode> {
        if reference == "0" {
            return Err(ErrorCode::CannotRemoveGroupZero);
        }
        let group = self.find_group(user, reference)?;
        let serial = self.store.delete_group(user.account_id, group.id).await.map_err(store_error)?;
        user.with_lists_mut(|l| {
            l.groups.retain(|g| g.id != group.id);
            let members: Vec<String> = l.members(ListKind::Forward).map(str::to_string).collect();
            for key in members {
                l.set_group_member(&key, group.id, false);
            }
        });
        Ok((serial, group))
    }

    /// `REG`: renames a group.
    pub async fn rename_group(
        &self,
        user: &OnlineUser,
        reference: &str,
        name: &str,
    ) -> Result<(u32, Group), ErrorCode> {
        let mut group = self.find_group(user, reference)?;
        if group.name != name && user.with_lists(|l| l.groups.iter().any(|g| g.name == name)) {
            return Err(ErrorCode::GroupExists);
        }
        let serial = self.store.rename_group(user.account_id, group.id, name).await.map_err(store_error)?;
        group.name = name.to_string();
        user.with_lists_mut(|l| {
            if let Some(g) = l.groups.iter_mut().find(|g| g.id == group.id) {
                g.name = name.to_string();
            }
        });
        Ok((serial, group))
    }

    fn find_group(&self, user: &OnlineUser, reference: &str) -> Result<Group, ErrorCode> {
        user.with_lists(|l| l.group(reference).cloned()).ok_or(ErrorCode::InvalidGroup)
    }

    /// Puts a forward-list contact (by handle or GUID) into a group.
    pub async fn add_to_group(&self, user: &OnlineUser, contact: &str, group: &str) -> Result<GroupChange, ErrorCode> {
        self.change_group(user, contact, group, true).await
    }

    /// Takes a forward-list contact out of a group (it stays on the list).
    pub async fn remove_from_group(
        &self,
        user: &OnlineUser,
        contact: &str,
        group: &str,
    ) -> Result<GroupChange, ErrorCode> {
        self.change_group(user, contact, group, false).await
    }

    async fn change_group(
        &self,
        user: &OnlineUser,
        contact: &str,
        group: &str,
        member: bool,
    ) -> Result<GroupChange, ErrorCode> {
        let group = self.find_group(user, group)?;
        let key = self.resolve_contact(user, contact).ok_or(ErrorCode::NotOnList)?;
        let (on_forward, in_group, guid) = user.with_lists(|l| match l.contact(&key) {
            Some(c) => (c.bits.contains(ListKind::Forward), c.groups.contains(&group.id), c.guid.to_string()),
            None => (false, false, String::new()),
        });
        if !on_forward {
            return Err(ErrorCode::NotOnList);
        }
        match (member, in_group) {
            (true, true) => return Err(ErrorCode::AlreadyThere),
            (false, false) => return Err(ErrorCode::NotInGroup),
            _ => {}
        }
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::NotOnList)?;
        let serial = self
            .store
            .set_group_membership(user.account_id, account.id, group.id, member)
            .await
            .map_err(store_error)?;
        user.with_lists_mut(|l| l.set_group_member(&key, group.id, member));
        Ok(GroupChange { serial, group, handle: account.handle, friendly: account.friendly, guid })
    }

    // ----- properties -----------------------------------------------------

    /// `PRP` of a phone property: stores it (an empty value clears it) and
    /// tells online contacts who may see it.
    pub async fn set_phone(&self, user: &OnlineUser, kind: &str, value: Option<&str>) -> Result<u32, ErrorCode> {
        if !PHONE_KINDS.contains(&kind) {
            return Err(ErrorCode::InvalidParameter);
        }
        let value = value.filter(|v| !v.is_empty());
        if let Some(v) = value {
            let flag = matches!(kind, "MOB" | "MBE");
            if v.len() > 95 || v.chars().any(char::is_control) || (flag && v != "Y" && v != "N") {
                return Err(ErrorCode::InvalidParameter);
            }
        }
        let serial = self.store.set_property(user.account_id, kind, value, true).await.map_err(store_error)?;
        let watchers: Vec<String> = user.with_lists(|l| {
            l.members(ListKind::Reverse).filter(|k| l.bits(k).contains(ListKind::Allow)).map(str::to_string).collect()
        });
        for key in watchers {
            if let Some(w) = self.registry.get(&key) {
                w.deliver(NsEvent::ContactProperty {
                    serial,
                    handle: user.handle.clone(),
                    kind: kind.to_string(),
                    value: value.map(str::to_string),
                });
            }
        }
        Ok(serial)
    }

    /// `SBP ... MFN`: the name the user gives a forward-list contact.
    pub async fn set_nickname(&self, user: &OnlineUser, contact_guid: &str, nickname: &str) -> Result<(), ErrorCode> {
        let key = self.resolve_contact(user, contact_guid).ok_or(ErrorCode::InvalidParameter)?;
        let account = self.store.account(&key).await.map_err(store_error)?.ok_or(ErrorCode::InvalidParameter)?;
        self.store.set_nickname(user.account_id, account.id, Some(nickname)).await.map_err(store_error)
    }

    /// `UUX`: stores the personal message and shows it to watchers (as `UBX`
    /// on MSNP11+ connections).
    pub async fn set_personal_message(&self, user: &OnlineUser, payload: &str) -> Result<(), ErrorCode> {
        self.store.set_property(user.account_id, PERSONAL_MESSAGE, Some(payload), false).await.map_err(store_error)?;
        user.update_presence(|p| p.personal_message = Some(payload.to_string()));
        if user.presence_line().is_some() {
            self.notify_watchers(
                user,
                NsEvent::PersonalMessage { handle: user.handle.clone(), payload: payload.to_string() },
            );
        }
        Ok(())
    }

    /// `IMS ON|OFF`: whether the user accepts switchboard invitations.
    pub fn set_accepts_invitations(&self, user: &OnlineUser, on: bool) {
        user.update_presence(|p| p.refuses_invitations = !on);
    }

    /// `BLP`: changes the privacy mode; watchers whose view flips are told.
    pub async fn set_privacy(&self, user: &OnlineUser, mode: PrivacyMode) -> Result<ModeChange, ErrorCode> {
        if user.with_lists(|l| l.privacy) == mode {
            return Ok(ModeChange::Unchanged { serial: self.list_serial(user).await? });
        }
        let before: Vec<(String, bool)> =
            user.with_lists(|l| l.members(ListKind::Reverse).map(|k| (k.to_string(), l.allows(k))).collect());
        let serial = self.store.set_privacy(user.account_id, mode).await.map_err(store_error)?;
        user.with_lists_mut(|l| l.privacy = mode);
        for (key, allowed_before) in before {
            self.refresh_view(user, &key, allowed_before);
        }
        Ok(ModeChange::Changed { serial })
    }

    /// The current list serial (read for an unchanged mode: nothing in
    /// memory keeps it).
    async fn list_serial(&self, user: &OnlineUser) -> Result<u32, ErrorCode> {
        Ok(self.store.list_snapshot(user.account_id).await.map_err(store_error)?.serial)
    }

    /// `GTC`: stores the reverse-list prompt setting.
    pub async fn set_prompt(&self, user: &OnlineUser, mode: PromptMode) -> Result<ModeChange, ErrorCode> {
        if user.with_lists(|l| l.prompt) == mode {
            return Ok(ModeChange::Unchanged { serial: self.list_serial(user).await? });
        }
        let serial = self.store.set_prompt(user.account_id, mode).await.map_err(store_error)?;
        user.with_lists_mut(|l| l.prompt = mode);
        Ok(ModeChange::Changed { serial })
    }

    /// `REA` of the user's own handle: stores the new friendly name and shows
    /// it to watchers.
    pub async fn rename(&self, user: &OnlineUser, handle: &str, friendly: &str) -> Result<u32, ErrorCode> {
        if !handle.eq_ignore_ascii_case(&user.handle) {
            return Err(ErrorCode::InvalidParameter);
        }
        let serial = self.store.set_friendly_name(user.account_id, friendly).await.map_err(store_error)?;
        user.update_presence(|p| p.friendly = friendly.to_string());
        if let Some(line) = user.presence_line() {
            self.notify_watchers(user, NsEvent::Presence(line));
        }
        Ok(serial)
    }

    // ----- presence -------------------------------------------------------

    /// `CHG`: sets the user's state. Watchers get `NLN` (or `FLN` when the user
    /// hides). On the first `CHG` the result holds an `ILN` line for every
    /// forward-list contact who is online and lets the user see them.
    pub async fn change_state(
        &self,
        user: &OnlineUser,
        state: OnlineState,
        client_id: Option<u32>,
        msn_object: Option<String>,
    ) -> Result<Vec<ContactPresence>, ErrorCode> {
        if state == OnlineState::Offline {
            return Err(ErrorCode::InvalidParameter);
        }
        let (before, after) = user.update_presence(|p| {
            p.state = state;
            p.client_id = client_id.unwrap_or(0);
            p.msn_object = msn_object;
            p.started = true;
        });
        let was_visible = before.started && before.state.is_visible();
        let changed = !before.started
            || before.state != after.state
            || before.client_id != after.client_id
            || before.msn_object != after.msn_object;
        if changed {
            if let Some(line) = user.presence_line() {
                self.notify_watchers(user, NsEvent::Presence(line));
            } else if was_visible {
                self.notify_watchers(user, NsEvent::Offline { handle: user.handle.clone() });
            }
        }
        if before.started {
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

    // ----- offline messages -----------------------------------------------

    /// The signed-in user a web-service token belongs to: the token (bare or
    /// as `t=...&p=...`) must be the `MSPAuth` of a current sign-in.
    ///
    /// In a cluster the user may be signed in on another node: the token is
    /// then found in the directory, and the result stands for that user
    /// here (for sending and reading offline messages; it is not registered
    /// and receives nothing).
    pub async fn web_user(&self, token: &str) -> Option<Arc<OnlineUser>> {
        let token = token.strip_prefix("t=").unwrap_or(token);
        let token = token.split('&').next().unwrap_or("");
        if token.is_empty() {
            return None;
        }
        let local = self.web_tokens.lock().get(token).cloned();
        if let Some(credential) = local {
            if credential.until.is_some_and(|t| t <= std::time::Instant::now()) {
                return None;
            }
            return self.registry.get(&credential.key).filter(|u| u.session_id == credential.session);
        }
        let key = self.cluster.get()?.user_of_token(token)?;
        let account = self.store.account(&key).await.ok()??;
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

    async fn store_offline_from(
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
            sent_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
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
            Some(user) if user.presence_line().is_some() => {
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
    pub async fn deliver_offline(self: &Arc<Self>, user: &Arc<OnlineUser>) {
        let waiting = self.pending_offline(user).await;
        let fresh: Vec<OfflineMessage> = {
            let mut delivery = user.offline_delivery.lock();
            waiting.into_iter().filter(|m| delivery.in_flight.insert(m.id)).collect()
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
            let grant =
                GrantFor { handle: &user.handle, friendly: &p.friendly, client_id: p.client_id, dialect: user.dialect };
            let kind = CookieKind::Invitation { session_id: session.id };
            let cookie = match self.cookies.issue(grant, &user.key, kind, self.config.cookie_lifetime) {
                Ok(c) => c,
                Err(_) => {
                    self.switchboards.end_if_unjoined(&session);
                    user.offline_delivery.lock().in_flight.retain(|id| !ids.contains(id));
                    continue;
                }
            };
            let ring = NsEvent::Ring {
                session_id: session.id,
                cookie,
                caller: sender,
                caller_friendly: friendly,
                address: None,
            };
            user.deliver(ring);
            // An invitation nobody answers lapses with its cookie; the
            // messages are offered again at the next sign-in.
            let (backend, user, lifetime) = (self.clone(), user.clone(), self.config.cookie_lifetime);
            tokio::spawn(async move {
                tokio::time::sleep(lifetime + std::time::Duration::from_secs(1)).await;
                if backend.switchboards.end_if_unjoined(&session) {
                    user.offline_delivery.lock().in_flight.retain(|id| !ids.contains(id));
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
        let mut delivery = user.offline_delivery.lock();
        delivery.in_flight.retain(|id| !ids.contains(id));
        delivery.shown.retain(|id| !ids.contains(id));
    }

    /// These offline messages were written to the recipient's switchboard
    /// connection. Whatever the client says next, on any connection,
    /// confirms them ([`Backend::client_spoke`]): a client that goes on
    /// talking is alive and has read what came before.
    pub fn offline_written(&self, recipient: &str, ids: &[i64]) {
        if let Some(user) = self.registry.get(&recipient.to_ascii_lowercase()) {
            user.offline_delivery.lock().shown.extend_from_slice(ids);
        }
    }

    /// The client said something on its notification connection: the
    /// offline messages written to it before are confirmed.
    pub async fn client_spoke(&self, user: &OnlineUser) {
        let shown = std::mem::take(&mut user.offline_delivery.lock().shown);
        if !shown.is_empty() {
            self.confirm_offline(&user.handle, &shown).await;
        }
    }

    /// These offline messages may not have reached the person (the
    /// connection broke before the client showed any sign of reading them):
    /// they stay stored and are offered again at the next sign-in.
    pub fn release_offline(&self, recipient: &str, ids: &[i64]) {
        if let Some(user) = self.registry.get(&recipient.to_ascii_lowercase()) {
            let mut delivery = user.offline_delivery.lock();
            delivery.in_flight.retain(|id| !ids.contains(id));
            delivery.shown.retain(|id| !ids.contains(id));
        }
    }

    /// Deletes messages by their web-service GUIDs (`DeleteMessages`).
    pub async fn delete_offline_by_guid(&self, user: &OnlineUser, guids: &[String]) -> usize {
        let waiting = self.pending_offline(user).await;
        let ids: Vec<i64> =
            waiting.iter().filter(|m| guids.iter().any(|g| g.eq_ignore_ascii_case(&m.guid))).map(|m| m.id).collect();
        let n = self.store.delete_offline_messages(user.account_id, &ids).await.unwrap_or(0);
        user.offline_delivery.lock().in_flight.retain(|id| !ids.contains(id));
        n
    }

    // ----- switchboard ----------------------------------------------------

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
        let grant =
            GrantFor { handle: &user.handle, friendly: &p.friendly, client_id: p.client_id, dialect: user.dialect };
        let cookie = self.cookies.issue(grant, &user.key, CookieKind::NewSession, self.config.cookie_lifetime)?;
        Ok((cookie, None))
    }

    /// Switchboard `USR`: opens a session for the holder of an `XFR SB` cookie.
    pub fn open_switchboard(
        &self,
        handle: &str,
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
        handle: &str,
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
    pub async fn send_in_session(
        self: &Arc<Self>,
        session: &Arc<SwitchboardSession>,
        me: &Participant,
        payload: bytes::Bytes,
        patience: std::time::Duration,
    ) -> bool {
        let stand_ins = session.stand_ins();
        let relayed = session.relay(me, payload.clone(), patience).await;
        if stand_ins.is_empty() {
            return relayed;
        }
        // Typing notifications and the like mean nothing to someone absent.
        let is_text = msnp::mime::MimeMessage::parse(&payload)
            .is_ok_and(|m| m.content_type().is_none_or(|t| t.eq_ignore_ascii_case("text/plain")));
        if !is_text {
            return relayed;
        }
        let mut taken = true;
        for absent in stand_ins {
            let held = HeldMessage {
                for_key: absent.key.clone(),
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
                    for held in session.take_held(&absent.key) {
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
                for held in session.take_held(&key) {
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
    /// same as an offline invitee (217), so it reveals nothing.
    pub async fn invite(
        &self,
        session: &SwitchboardSession,
        caller: &Participant,
        handle: &str,
    ) -> Result<(), ErrorCode> {
        let handle = Handle::parse(handle).map_err(|_| ErrorCode::InvalidUsername)?;
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
                Invitee { handle: u.handle.clone(), friendly: p.friendly, client_id: p.client_id, dialect: u.dialect }
            }),
            None => match self.remote(handle.key()) {
                Some((cluster, node)) => {
                    let ask = Request::Invitable { invitee: handle.key().to_string(), caller_key: caller.key.clone() };
                    match cluster.request(&node, ask).await {
                        Some(Response::Invitable(found)) => found,
                        _ => None,
                    }
                }
                None => None,
            },
        }
        .ok_or(ErrorCode::NotOnline)?;
        let grant = GrantFor {
            handle: &invitee.handle,
            friendly: &invitee.friendly,
            client_id: invitee.client_id,
            dialect: invitee.dialect,
        };
        let kind = CookieKind::Invitation { session_id: session.id };
        let cookie = self.cookies.issue(grant, &caller.key, kind, self.config.cookie_lifetime)?;
        let ring = |address| NsEvent::Ring {
            session_id: session.id,
            cookie: cookie.clone(),
            caller: caller.handle.clone(),
            caller_friendly: caller.friendly.clone(),
            address,
        };
        match (local, self.cluster.get()) {
            (Some(u), _) => u.deliver(ring(None)),
            (None, Some(cluster)) => {
                if let Some(node) = cluster.locate(handle.key()) {
                    let event = ring(Some(cluster.switchboard_address()));
                    cluster.send(&node, Envelope::Deliver { to: handle.key().to_string(), event });
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Leaves a session (on `OUT`, idleness or a dropped connection) and
    /// gives back the user's place in the per-user session count.
    pub fn leave_switchboard(&self, session: &SwitchboardSession, who: &Participant, idle: bool) {
        self.switchboards.leave(session, who, idle);
        self.switchboards.release(who);
    }
}
