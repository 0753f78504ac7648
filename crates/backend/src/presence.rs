//! Who is online, in what state, and the events sent to their connections.
//!
//! Each signed-in user has one [`OnlineUser`] in the [`Registry`]. It holds
//! the user's presence and an in-memory copy of their lists, so that fan-out
//! (one state change to every watcher) and privacy checks are memory lookups.
//! Events reach a user's connection through a bounded queue: a connection that
//! stops reading is disconnected rather than allowed to hold memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use msnp::reply::{OutReason, PresenceLine};
use msnp::{Dialect, ListKind, OnlineState};
use parking_lot::{Mutex, RwLock};

use crate::outbox::Outbox;

use crate::lists::{AccountId, ContactLists, ListSnapshot};

/// Something a notification-server connection must tell its client. The
/// connection encodes it in its own dialect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NsEvent {
    /// A contact is online or changed state or name (`NLN`).
    Presence(PresenceLine),
    /// A contact went offline, hid, or blocked us (`FLN`).
    Offline { handle: String },
    /// The server put someone on one of our lists (`ADD 0 RL ...`).
    ListAdded { list: ListKind, serial: u32, handle: String, friendly: String },
    /// The server took someone off one of our lists (`REM 0 RL ...`).
    ListRemoved { list: ListKind, serial: u32, handle: String },
    /// Someone invites us to a switchboard session (`RNG`). `address` is
    /// the switchboard's, when it is another node's.
    Ring { session_id: u32, cookie: String, caller: String, caller_friendly: String, address: Option<String> },
    /// A message from the service itself (`MSG Hotmail Hotmail`).
    SystemMessage { payload: Bytes },
    /// A contact's personal message changed (`UBX`, MSNP11+ only).
    PersonalMessage { handle: String, payload: String },
    /// A contact's phone property changed (`BPR`).
    ContactProperty { serial: u32, handle: String, kind: String, value: Option<String> },
    /// A notification from another user's client (`UBN`, MSNP13+).
    ClientNotice { from: String, kind: u32, payload: Bytes },
    /// Offline messages are waiting, for a client that reads them from the
    /// web service (the OIM notification, MSNP13+).
    OfflineMessagesWaiting { messages: Vec<WaitingMessage> },
    /// The session must end with `OUT reason` (`OUT` alone when an
    /// operator ends it).
    Kick(Option<OutReason>),
}

/// An offline message as its notice describes it (no text: the client
/// fetches that from the web service).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WaitingMessage {
    pub guid: String,
    pub sender: String,
    pub sender_friendly: String,
    pub sent_at_ms: i64,
    pub size: usize,
}

impl From<WaitingMessage> for msnp::oim::OimEntry {
    fn from(m: WaitingMessage) -> Self {
        msnp::oim::OimEntry {
            guid: m.guid,
            sender: m.sender,
            sender_friendly: m.sender_friendly,
            sent_at_ms: m.sent_at_ms,
            size: m.size,
        }
    }
}

/// The presence-related properties of an online user.
#[derive(Debug, Clone, Default)]
pub struct PresenceInfo {
    pub state: OnlineState,
    pub friendly: String,
    pub client_id: u32,
    pub msn_object: Option<String>,
    /// Set by the first `CHG`: from then on the user receives `NLN`/`FLN`.
    pub started: bool,
    /// The personal message (`UUX` payload), kept across dialects.
    pub personal_message: Option<String>,
    /// `IMS OFF` turns switchboard invitations off.
    pub refuses_invitations: bool,
}

/// The user's lists in memory, and reverse-list changes that arrived while
/// they were loading.
#[derive(Debug, Default)]
struct ListCache {
    lists: ContactLists,
    loaded: bool,
    pending: Vec<(String, ListKind, bool)>,
    /// Counts every change to `lists` (and every pending one), so that a
    /// snapshot read from the store can be known to be still current.
    version: u64,
}

/// The lists a sign-in read from the store, kept for the session's first
/// `SYN`: a login then reads them once, not twice. Only used while the
/// user's lists in memory are unchanged since they were read.
#[derive(Debug)]
pub struct LoadedLists {
    snapshot: ListSnapshot,
    version: u64,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A contact's presence line and personal message, as a watcher sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPresence {
    pub line: msnp::reply::PresenceLine,
    pub personal_message: Option<String>,
}

/// One signed-in user.
#[derive(Debug)]
pub struct OnlineUser {
    pub account_id: AccountId,
    /// The handle as spelled on the account.
    pub handle: String,
    /// The case-folded handle.
    pub key: String,
    /// Distinguishes this sign-in from a later one of the same account.
    pub session_id: u64,
    /// The dialect the user's connection speaks (switchboards inherit it).
    pub dialect: Dialect,
    /// The `MSPAuth` token of this sign-in: the credential the web services
    /// (offline messages) accept while the user is signed in.
    pub web_token: String,
    /// The token of the Passport ticket this sign-in presented: also taken
    /// by the web services, but only until the ticket would have expired.
    pub ticket_token: Option<String>,
    /// Offline messages being delivered in this sign-in.
    pub offline_delivery: Mutex<OfflineDelivery>,
    presence: Mutex<PresenceInfo>,
    cache: RwLock<ListCache>,
    outbox: Outbox<NsEvent>,
}

/// Where a sign-in's offline messages are in their delivery.
#[derive(Debug, Default)]
pub struct OfflineDelivery {
    /// Offered on a switchboard and not yet confirmed or given up, so that
    /// they are not offered twice.
    pub in_flight: std::collections::HashSet<i64>,
    /// Written to the client's switchboard connection: the next word the
    /// client says on any of its connections confirms them.
    pub shown: Vec<i64>,
}

impl OnlineUser {
    /// Creates a user whose events go to `outbox`.
    pub fn new(
        account_id: AccountId,
        handle: &str,
        friendly: &str,
        dialect: Dialect,
        web_token: String,
        outbox: Outbox<NsEvent>,
    ) -> OnlineUser {
        OnlineUser {
            account_id,
            dialect,
            web_token,
            ticket_token: None,
            offline_delivery: Mutex::new(Default::default()),
            handle: handle.to_string(),
            key: handle.to_ascii_lowercase(),
            session_id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            presence: Mutex::new(PresenceInfo { friendly: friendly.to_string(), ..Default::default() }),
            cache: RwLock::new(ListCache::default()),
            outbox,
        }
    }

    /// Queues an event for this user's connection. If the queue is full the
    /// connection is to close (its receiver learns it from the queue): it
    /// is not reading.
    pub fn deliver(&self, event: NsEvent) {
        let _ = self.outbox.try_push(event);
    }

    pub fn presence(&self) -> PresenceInfo {
        self.presence.lock().clone()
    }

    /// Changes the presence under the lock; returns the value before and after.
    pub fn update_presence(&self, f: impl FnOnce(&mut PresenceInfo)) -> (PresenceInfo, PresenceInfo) {
        let mut p = self.presence.lock();
        let before = p.clone();
        f(&mut p);
        (before, p.clone())
    }

    /// The line others see for this user, if they may see it at all.
    pub fn presence_line(&self) -> Option<PresenceLine> {
        let p = self.presence.lock();
        (p.started && p.state.is_visible()).then(|| PresenceLine {
            state: p.state,
            handle: self.handle.clone(),
            friendly: p.friendly.clone(),
            client_id: p.client_id,
            msn_object: p.msn_object.clone(),
        })
    }

    /// Installs the lists loaded from the store, then replays any reverse-list
    /// change that other users made while they were loading.
    ///
    /// Returns the snapshot for the first `SYN` when no change was replayed
    /// (a replayed change may or may not be in it).
    pub fn install_lists(&self, snapshot: ListSnapshot) -> Option<LoadedLists> {
        self.presence.lock().personal_message = snapshot.personal_message.clone();
        let mut cache = self.cache.write();
        cache.lists = ContactLists::from_snapshot(&snapshot);
        let pending = std::mem::take(&mut cache.pending);
        let replayed = !pending.is_empty();
        for (key, list, member) in pending {
            cache.lists.set(&key, list, member);
        }
        cache.loaded = true;
        cache.version += 1;
        (!replayed).then_some(LoadedLists { snapshot, version: cache.version })
    }

    /// The snapshot the sign-in read, if the lists have not changed since.
    pub fn current_snapshot(&self, loaded: LoadedLists) -> Option<ListSnapshot> {
        (self.cache.read().version == loaded.version).then_some(loaded.snapshot)
    }

    /// Applies a change to the in-memory lists (own changes, or reverse-list
    /// changes made by others).
    pub fn set_list(&self, key: &str, list: ListKind, member: bool) {
        let mut cache = self.cache.write();
        cache.version += 1;
        if cache.loaded {
            cache.lists.set(key, list, member);
        } else {
            cache.pending.push((key.to_string(), list, member));
        }
    }

    /// Reads the in-memory lists.
    /// Whether the lists were loaded (a cluster stand-in's never are).
    pub fn lists_loaded(&self) -> bool {
        self.cache.read().loaded
    }

    pub fn with_lists<T>(&self, f: impl FnOnce(&ContactLists) -> T) -> T {
        f(&self.cache.read().lists)
    }

    /// Changes the in-memory lists' settings.
    pub fn with_lists_mut<T>(&self, f: impl FnOnce(&mut ContactLists) -> T) -> T {
        let mut cache = self.cache.write();
        cache.version += 1;
        f(&mut cache.lists)
    }
}

const SHARDS: usize = 32;

/// Every signed-in user, by handle key. Sharded so that sign-ins and look-ups
/// on different users rarely contend.
#[derive(Debug)]
pub struct Registry {
    shards: Vec<RwLock<HashMap<String, Arc<OnlineUser>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect() }
    }
}

impl Registry {
    fn shard(&self, key: &str) -> &RwLock<HashMap<String, Arc<OnlineUser>>> {
        let h = crate::fnv1a(key.as_bytes());
        &self.shards[(h as usize) % SHARDS]
    }

    /// The online user with this handle key.
    pub fn get(&self, key: &str) -> Option<Arc<OnlineUser>> {
        self.shard(key).read().get(key).cloned()
    }

    /// Registers a sign-in, returning the session it replaces.
    pub fn insert(&self, user: Arc<OnlineUser>) -> Option<Arc<OnlineUser>> {
        self.shard(&user.key).write().insert(user.key.clone(), user)
    }

    /// Removes a sign-in, unless a newer one of the same account replaced it.
    /// Returns whether it was removed.
    pub fn remove(&self, user: &OnlineUser) -> bool {
        let mut shard = self.shard(&user.key).write();
        if shard.get(&user.key).is_some_and(|u| u.session_id == user.session_id) {
            shard.remove(&user.key);
            true
        } else {
            false
        }
    }

    /// Every online user (for shutdown and the status page).
    pub fn all(&self) -> Vec<Arc<OnlineUser>> {
        self.shards.iter().flat_map(|s| s.read().values().cloned().collect::<Vec<_>>()).collect()
    }

    /// How many users are signed in.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
