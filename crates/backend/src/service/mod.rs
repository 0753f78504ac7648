//! [`Backend`]: the operations the protocol fronts call.
//!
//! Every method takes dialect-neutral values and returns either a result for
//! the caller's reply or a protocol [`ErrorCode`]. Effects on other users are
//! delivered as events to their connections. A change is written to the
//! store before the method returns, so a reply sent after it is never ahead
//! of the disk.

mod accounts;
mod bridge;
mod circles;
mod cluster;
mod direct;
mod group_chats;
mod homes;
mod lists;
mod login;
mod notices;
mod offline;
mod operator;
mod presence;
mod properties;
mod switchboard;
mod web_sessions;

use std::sync::Arc;

use msnp::dialect::AuthScheme;
use msnp::reply::OutReason;
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
use crate::lists::{AccountId, Group, ListSnapshot, OppositeList, PERSONAL_MESSAGE, PHONE_KINDS};
use crate::outbox::Outbox;
use crate::passport::{Redeemed, TicketJar, credential_tag};
use crate::presence::{ContactPresence, LoadedLists, NsEvent, OnlineUser, Registry, Removal};
use crate::secrets::{self, SecretError, ServerKey, constant_time_eq};
use crate::store::{
    Account, AccountSummary, Credentials, ListChanges, NewAccount, OfflineMessage, Store, StoreError, StoredPhoto,
};
use crate::switchboard::{
    CookieJar, CookieKind, GrantFor, HeldMessage, Participant, SbEvent, SwitchboardSession, Switchboards,
};
use bytes::Bytes;
pub use circles::CircleJoined;
use msnp::endpoint::Capabilities;

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

/// What kind of switchboard message is relayed, for flood control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayKind {
    /// Typed by a person (ack modes U, N, A): refused beyond the limits.
    Typed,
    /// P2P data (ack mode D): paced to the limit, never refused, since a
    /// refused packet only comes back and clients abandon the transfer.
    Data,
}

/// What became of a switchboard message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// Over the sender's limits: not sent.
    Refused,
    /// Sent; whether everyone took it.
    Sent { delivered: bool },
}

/// What a client presents to complete a login.
#[derive(Debug, Clone, Copy)]
pub enum LoginProof<'a> {
    /// `USR MD5 S`: the response to the challenge it was sent.
    Md5 { challenge: &'a str, response: &'a str },
    /// `USR TWN S`: a Passport ticket.
    Ticket(&'a str),
    /// `USR SSO S`: a single sign-on ticket and the proof of its key.
    SingleSignOn { ticket: &'a str, nonce: &'a str, blob: &'a str },
}

/// A completed login.
#[derive(Debug, Clone)]
pub struct LoginGrant {
    pub account: Account,
    /// The presented ticket's token and its time left.
    pub ticket: Option<(String, std::time::Duration)>,
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
    switchboards: Arc<Switchboards>,
    /// Switchboard conversations of users without switchboards (MSNP21).
    bridges: Arc<bridge::Bridges>,
    /// Group conversations without a switchboard (MSNP21).
    group_chats: group_chats::GroupChats,
    /// Where this node's users' conversations held elsewhere are.
    homes: homes::Homes,
    tickets: TicketJar,
    hashing: PasswordChecker,
    buckets: KeyedBuckets,
    logins: LoginThrottle,
    stats: BackendStats,
    /// Web-service credentials of current sign-ins, by token.
    web_tokens: parking_lot::Mutex<std::collections::HashMap<String, WebCredential>>,
    /// Web messenger sessions ended before they expired: id → expiry.
    ended_web_sessions: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
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
    /// Switchboard messages relayed to the other participants.
    pub messages_relayed: AtomicU64,
    /// How long store calls take.
    pub store_latency: Arc<crate::store::timed::Latency>,
}

/// Now, in Unix milliseconds: when something was said or sent.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
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
            switchboards: Arc::default(),
            bridges: Arc::default(),
            group_chats: Default::default(),
            homes: Default::default(),
            tickets: TicketJar::default(),
            hashing: PasswordChecker::new(config.password_hash_workers, config.hashing_thread_start),
            buckets: KeyedBuckets::default(),
            logins: LoginThrottle::default(),
            stats,
            web_tokens: Default::default(),
            ended_web_sessions: Default::default(),
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
}
