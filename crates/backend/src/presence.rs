//! Who is online, in what state, and the events sent to their connections.
//!
//! Each signed-in connection is an [`OnlineUser`]; the [`Registry`] finds a
//! signed-in account by handle. An account's connections (one, or several
//! machines in MSNP16+) share its presence and an in-memory copy of its
//! lists ([`AccountOnline`]), so that fan-out (one state change to every
//! watcher) and privacy checks are memory lookups. Events reach each
//! connection through a bounded queue: a connection that stops reading is
//! disconnected rather than allowed to hold memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::intern::Key;
use bytes::Bytes;
use msnp::circle::{CircleId, Said};
use msnp::endpoint::MachineGuid;
use msnp::multiparty::GroupId;
use msnp::personal::EndpointData;
use msnp::reply::{OutReason, PresenceLine};
use msnp::{Dialect, ErrorCode, ListKind, OnlineState};
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
    /// the switchboard's, when it is another node's; `for_machine` the one
    /// endpoint the cookie is for, when it crosses nodes to a user signed
    /// in from several machines.
    Ring {
        session_id: u32,
        cookie: String,
        caller: String,
        caller_friendly: String,
        address: Option<String>,
        #[serde(default)]
        for_machine: Option<MachineGuid>,
    },
    /// A message from the service itself (`MSG Hotmail Hotmail`).
    SystemMessage { payload: Bytes },
    /// A contact's personal message changed (`UBX`, MSNP11+ only), with
    /// their endpoints for the dialects that show them.
    PersonalMessage {
        handle: String,
        payload: String,
        #[serde(default)]
        endpoints: Vec<EndpointData>,
    },
    /// A contact's endpoints changed: one signed in or out elsewhere, or
    /// said something new of itself (`UBX`, MSNP16+ only).
    EndpointsChanged { handle: String, payload: Option<String>, endpoints: Vec<EndpointData> },
    /// A contact's phone property changed (`BPR`).
    ContactProperty { serial: u32, handle: String, kind: String, value: Option<String> },
    /// A notification from another user's client (`UBN`, MSNP13+), from
    /// one of its endpoints when it was sent to one of ours (MSNP16+).
    ClientNotice {
        from: String,
        #[serde(default)]
        from_endpoint: Option<MachineGuid>,
        kind: u32,
        payload: Bytes,
    },
    /// Offline messages are waiting, for a client that reads them from the
    /// web service (the OIM notification, MSNP13+).
    OfflineMessagesWaiting { messages: Vec<WaitingMessage> },
    /// The session must end with `OUT reason` (`OUT` alone when an
    /// operator ends it).
    Kick(Option<OutReason>),
    /// The account's circles changed (made, invited to, someone answered):
    /// the client is to read its address book again.
    CirclesChanged { circle: CircleId },
    /// Who is in a circle now (MSNP18's circle roster).
    CircleRoster { circle: CircleId, members: Vec<String> },
    /// Someone left a circle for good.
    CircleLeft { circle: CircleId, who: String },
    /// Something was said in a circle; `id` is its place in the circle's
    /// backlog, so that the member is not given it again.
    CircleSaid {
        circle: CircleId,
        id: i64,
        from: String,
        from_endpoint: Option<MachineGuid>,
        said: Said,
        /// When it was said, for what a member is given on coming back.
        sent_at_ms: i64,
    },
    /// Someone said something to this account without a switchboard
    /// (MSNP21's `SDG`); also the sender's copy on its other endpoints.
    Said { from: String, from_endpoint: Option<MachineGuid>, to: String, said: Said },
    /// One of the account's own lists changed through another of its
    /// endpoints (or the web services on another node): `contact` is now on
    /// `list`, or no longer. Clients that mirror the lists live (XMPP's
    /// roster pushes) act on it; the others read the lists at their next sync.
    OwnListChanged { contact: String, list: ListKind, member: bool },
    /// Invited into a group conversation (MSNP21).
    GroupChatInvited { group: GroupId },
    /// Who is in a group conversation now.
    GroupChatRoster { group: GroupId, members: Vec<String> },
    /// Someone left a group conversation.
    GroupChatLeft { group: GroupId, who: String },
    /// Something was said in a group conversation.
    GroupChatSaid { group: GroupId, from: String, from_endpoint: Option<MachineGuid>, said: Said },
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
    /// The extended capabilities (`caps:capsEx`, MSNP16+).
    pub extended_caps: u32,
    pub msn_object: Option<String>,
    /// Set by the first `CHG` of any endpoint: from then on the account is
    /// visible to watchers its privacy allows.
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
    /// Changes made before the lists were loaded; boxed, as they seldom are.
    #[allow(clippy::box_collection)] // the box keeps the empty case at 8 bytes
    pending: Option<Box<Vec<(String, ListKind, bool)>>>,
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
    /// The contact's endpoints (MSNP16+ sign-ins), for `UBX`.
    pub endpoints: Vec<EndpointData>,
}

/// One signed-in connection of a user: the account's only one in dialects
/// before MSNP16, one of its endpoints (points of presence) after. The
/// endpoints of an account share its presence and lists ([`AccountOnline`]);
/// events for the account reach every endpoint.
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
    /// The machine this sign-in is, when its dialect has points of presence
    /// (MSNP16+): other endpoints of the account stay signed in beside it.
    pub machine: Option<MachineGuid>,
    /// The `MSPAuth` token of this sign-in: the credential the web services
    /// (offline messages) accept while the user is signed in.
    pub web_token: Box<str>,
    /// The token of the Passport ticket this sign-in presented: also taken
    /// by the web services, but only until the ticket would have expired.
    pub ticket_token: Option<Box<str>>,
    /// Offline messages being delivered in this sign-in.
    pub offline_delivery: Mutex<OfflineDelivery>,
    /// Set by this connection's first `CHG`: from then on it receives
    /// presence (`NLN`/`FLN`/`UBX`).
    receiving: AtomicBool,
    /// What this endpoint says of itself (`UUX` `PrivateEndpointData`);
    /// its machine is `machine`, not kept here twice.
    endpoint: Mutex<EndpointData>,
    account: Arc<AccountOnline>,
    outbox: Outbox<NsEvent>,
}

/// What the endpoints of one signed-in account share.
#[derive(Debug, Default)]
pub struct AccountOnline {
    presence: Mutex<PresenceInfo>,
    cache: RwLock<ListCache>,
    /// The endpoints signed in, oldest first.
    endpoints: Mutex<Vec<std::sync::Weak<OnlineUser>>>,
    /// The session the cluster directory names for the account: its first
    /// endpoint's.
    directory_session: AtomicU64,
}

/// Where a sign-in's offline messages are in their delivery. Boxed, and
/// only while some are: most sign-ins have none, and every online user
/// would otherwise carry the room of a set and a list.
#[derive(Debug, Default)]
pub struct OfflineDelivery(Option<Box<Delivering>>);

#[derive(Debug, Default)]
struct Delivering {
    /// Offered on a switchboard and not yet confirmed or given up, so that
    /// they are not offered twice.
    in_flight: std::collections::HashSet<i64>,
    /// Written to the client's switchboard connection: the next word the
    /// client says on any of its connections confirms them.
    shown: Vec<i64>,
}

impl OfflineDelivery {
    /// Notes a message as offered; false if it was already in flight.
    pub fn offer(&mut self, id: i64) -> bool {
        self.0.get_or_insert_default().in_flight.insert(id)
    }

    /// Notes messages as written to the client's connection.
    pub fn written(&mut self, ids: &[i64]) {
        self.0.get_or_insert_default().shown.extend_from_slice(ids);
    }

    /// The messages written since the last call.
    pub fn take_written(&mut self) -> Vec<i64> {
        let shown = self.0.as_mut().map(|d| std::mem::take(&mut d.shown)).unwrap_or_default();
        self.tidy();
        shown
    }

    /// Forgets these messages as offered (confirmed, or given up to be
    /// offered again at the next sign-in).
    pub fn no_longer_offered(&mut self, ids: &[i64]) {
        if let Some(d) = self.0.as_mut() {
            d.in_flight.retain(|id| !ids.contains(id));
        }
        self.tidy();
    }

    /// Forgets these messages altogether.
    pub fn forget(&mut self, ids: &[i64]) {
        if let Some(d) = self.0.as_mut() {
            d.in_flight.retain(|id| !ids.contains(id));
            d.shown.retain(|id| !ids.contains(id));
        }
        self.tidy();
    }

    /// Gives the room back once nothing is being delivered.
    fn tidy(&mut self) {
        if self.0.as_ref().is_some_and(|d| d.in_flight.is_empty() && d.shown.is_empty()) {
            self.0 = None;
        }
    }
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
        let account = AccountOnline::default();
        account.presence.lock().friendly = friendly.to_string();
        OnlineUser {
            account_id,
            dialect,
            machine: None,
            web_token: web_token.into(),
            ticket_token: None,
            offline_delivery: Mutex::new(Default::default()),
            handle: handle.to_string(),
            key: handle.to_ascii_lowercase(),
            session_id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            receiving: AtomicBool::new(false),
            endpoint: Mutex::new(EndpointData::default()),
            account: Arc::new(account),
            outbox,
        }
    }

    /// This sign-in as an endpoint of `machine` (MSNP16+).
    pub fn on_machine(mut self, machine: Option<MachineGuid>) -> OnlineUser {
        self.machine = machine;
        self
    }

    /// Queues an event for every endpoint of the account. If an endpoint's
    /// queue is full its connection is to close (its receiver learns it
    /// from the queue): it is not reading.
    pub fn deliver(&self, event: NsEvent) {
        self.deliver_where(event, |_| true);
    }

    /// Delivers to the endpoints `pick` accepts, without collecting them:
    /// this runs for every event, and most accounts have one endpoint.
    fn deliver_where(&self, event: NsEvent, pick: impl Fn(&OnlineUser) -> bool) {
        let list = self.account.endpoints.lock();
        let mut targets = list.iter().filter_map(std::sync::Weak::upgrade).filter(|e| pick(e)).peekable();
        let mut event = Some(event);
        while let Some(endpoint) = targets.next() {
            let this = if targets.peek().is_some() { event.clone() } else { event.take() };
            if let Some(this) = this {
                endpoint.deliver_here(this);
            }
        }
    }

    /// Queues an event for the account's endpoints other than this one.
    pub fn deliver_to_others(&self, event: NsEvent) {
        self.deliver_where(event, |e| e.session_id != self.session_id);
    }

    /// Queues an event for this connection only.
    pub fn deliver_here(&self, event: NsEvent) {
        let _ = self.outbox.try_push(event);
    }

    /// Queues news of someone's presence for every endpoint of the account
    /// that has set its first state.
    pub fn deliver_presence(&self, event: NsEvent) {
        self.deliver_where(event, OnlineUser::is_receiving);
    }

    /// Whether this connection has sent its first `CHG`.
    pub fn is_receiving(&self) -> bool {
        self.receiving.load(Ordering::Acquire)
    }

    /// Marks this connection as receiving presence; returns whether it was
    /// already.
    pub fn start_receiving(&self) -> bool {
        self.receiving.swap(true, Ordering::AcqRel)
    }

    /// The account's endpoints signed in now, this one included, oldest
    /// first. Before registration, just this one.
    /// Whether an endpoint of the account reads `SDG` without a
    /// switchboard (MSNP21).
    pub fn reads_sdg(&self) -> bool {
        self.endpoints().iter().any(|e| !e.dialect.has_switchboard())
    }

    pub fn endpoints(&self) -> Vec<Arc<OnlineUser>> {
        let list = self.account.endpoints.lock();
        let live: Vec<Arc<OnlineUser>> = list.iter().filter_map(std::sync::Weak::upgrade).collect();
        live
    }

    /// What this endpoint says of itself, under its machine.
    pub fn endpoint_data(&self) -> EndpointData {
        EndpointData { machine: self.machine.clone(), ..self.endpoint.lock().clone() }
    }

    /// What the account's endpoints with a machine say of themselves, for
    /// `UBX` in the dialects with points of presence.
    pub fn endpoint_list(&self) -> Vec<EndpointData> {
        self.endpoints().iter().filter(|e| e.machine.is_some()).map(|e| e.endpoint_data()).collect()
    }

    /// Changes what this endpoint says of itself; returns whether it changed.
    pub fn update_endpoint(&self, f: impl FnOnce(&mut EndpointData)) -> bool {
        let mut e = self.endpoint.lock();
        let before = e.clone();
        f(&mut e);
        *e != before
    }

    /// The session the cluster directory names for this account.
    pub fn directory_session(&self) -> u64 {
        match self.account.directory_session.load(Ordering::Acquire) {
            0 => self.session_id,
            s => s,
        }
    }

    pub fn presence(&self) -> PresenceInfo {
        self.account.presence.lock().clone()
    }

    /// Changes the presence under the lock; returns the value before and after.
    pub fn update_presence(&self, f: impl FnOnce(&mut PresenceInfo)) -> (PresenceInfo, PresenceInfo) {
        let mut p = self.account.presence.lock();
        let before = p.clone();
        f(&mut p);
        (before, p.clone())
    }

    /// The line others see for this user, if they may see it at all.
    pub fn presence_line(&self) -> Option<PresenceLine> {
        let p = self.account.presence.lock();
        (p.started && p.state.is_visible()).then(|| PresenceLine {
            state: p.state,
            handle: self.handle.clone(),
            friendly: p.friendly.clone(),
            client_id: p.client_id,
            extended_caps: p.extended_caps,
            msn_object: p.msn_object.clone(),
        })
    }

    /// Installs the lists loaded from the store, then replays any reverse-list
    /// change that other users made while they were loading.
    ///
    /// Returns the snapshot for the first `SYN` when no change was replayed
    /// (a replayed change may or may not be in it).
    pub fn install_lists(&self, snapshot: ListSnapshot) -> Option<LoadedLists> {
        self.account.presence.lock().personal_message = snapshot.personal_message.clone();
        let mut cache = self.account.cache.write();
        cache.lists = ContactLists::from_snapshot(&snapshot);
        let pending = cache.pending.take().map(|p| *p).unwrap_or_default();
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
        (self.account.cache.read().version == loaded.version).then_some(loaded.snapshot)
    }

    /// Applies a change to the in-memory lists (own changes, or reverse-list
    /// changes made by others).
    pub fn set_list(&self, key: &str, list: ListKind, member: bool) {
        let mut cache = self.account.cache.write();
        cache.version += 1;
        if cache.loaded {
            cache.lists.set(key, list, member);
        } else {
            cache.pending.get_or_insert_default().push((key.to_string(), list, member));
        }
    }

    /// Reads the in-memory lists.
    /// Whether the lists were loaded (a cluster stand-in's never are).
    pub fn lists_loaded(&self) -> bool {
        self.account.cache.read().loaded
    }

    pub fn with_lists<T>(&self, f: impl FnOnce(&ContactLists) -> T) -> T {
        f(&self.account.cache.read().lists)
    }

    /// Changes the in-memory lists' settings.
    pub fn with_lists_mut<T>(&self, f: impl FnOnce(&mut ContactLists) -> T) -> T {
        let mut cache = self.account.cache.write();
        cache.version += 1;
        f(&mut cache.lists)
    }
}

const SHARDS: usize = 32;

/// What [`Registry::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The sign-in was already gone (replaced).
    NotThere,
    /// One endpoint left; others of the account stay signed in.
    EndpointLeft,
    /// The account's last endpoint left: it is offline.
    SignedOut,
}

/// Every signed-in user, by handle key. Sharded so that sign-ins and look-ups
/// on different users rarely contend.
#[derive(Debug)]
pub struct Registry {
    /// By interned handle key: 8 bytes a slot and no copy of the handle.
    shards: Vec<RwLock<HashMap<Key, Arc<OnlineUser>>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry { shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect() }
    }
}

/// Who replaces whom when a sign-in arrives.
#[derive(Debug, Default)]
pub struct Replaced {
    /// Endpoints that must end with `OUT OTH`.
    pub endpoints: Vec<Arc<OnlineUser>>,
    /// Whether the account was signed in here before (with endpoints that
    /// stay): then it is not new to the cluster directory or to watchers.
    pub joined_others: bool,
}

impl Registry {
    fn shard(&self, key: &str) -> &RwLock<HashMap<Key, Arc<OnlineUser>>> {
        let h = crate::fnv1a(key.as_bytes());
        &self.shards[(h as usize) % SHARDS]
    }

    /// An online endpoint of the account with this handle key (events
    /// delivered to it reach them all).
    pub fn get(&self, key: &str) -> Option<Arc<OnlineUser>> {
        self.shard(key).read().get(key).cloned()
    }

    /// Registers a sign-in. The rule between endpoints (MSNP16+ points of
    /// presence): a sign-in that names its machine joins the account's
    /// other such endpoints, replacing only one of the same machine; a
    /// sign-in that names none (every dialect before MSNP16), or one
    /// arriving while such a sign-in is there, replaces them all. More than
    /// `max_endpoints` endpoints: 734, nothing changed.
    pub fn insert(&self, user: OnlineUser, max_endpoints: usize) -> Result<(Arc<OnlineUser>, Replaced), ErrorCode> {
        let mut shard = self.shard(&user.key).write();
        let mut user = user;
        let mut replaced = Replaced::default();
        if let Some(existing) = shard.get(&*user.key) {
            let live = existing.endpoints();
            let all_named = user.machine.is_some() && live.iter().all(|e| e.machine.is_some());
            if all_named {
                let (same, others): (Vec<_>, Vec<_>) = live.into_iter().partition(|e| e.machine == user.machine);
                if others.len() >= max_endpoints {
                    return Err(ErrorCode::TooManyEndpoints);
                }
                replaced.endpoints = same;
                replaced.joined_others = !others.is_empty();
                if replaced.joined_others {
                    user.account = existing.account.clone();
                }
            } else {
                replaced.endpoints = live;
            }
        }
        let user = Arc::new(user);
        {
            let mut list = user.account.endpoints.lock();
            list.retain(|w| {
                w.upgrade().is_some_and(|e| !replaced.endpoints.iter().any(|r| r.session_id == e.session_id))
            });
            list.push(Arc::downgrade(&user));
        }
        user.account.directory_session.compare_exchange(0, user.session_id, Ordering::AcqRel, Ordering::Acquire).ok();
        shard.insert(Key::new(&user.key), user.clone());
        Ok((user, replaced))
    }

    /// Removes a sign-in, unless a newer one of the same account replaced
    /// it. Returns whether it was removed and whether it was the account's
    /// last endpoint (then the account is offline).
    pub fn remove(&self, user: &OnlineUser) -> Removal {
        let mut shard = self.shard(&user.key).write();
        let Some(current) = shard.get(&*user.key) else { return Removal::NotThere };
        if !Arc::ptr_eq(&current.account, &user.account) {
            return Removal::NotThere;
        }
        let remaining: Vec<Arc<OnlineUser>> = {
            let mut list = user.account.endpoints.lock();
            let before = list.len();
            list.retain(|w| w.upgrade().is_some_and(|e| e.session_id != user.session_id));
            if list.len() == before && current.session_id != user.session_id {
                return Removal::NotThere;
            }
            list.iter().filter_map(std::sync::Weak::upgrade).collect()
        };
        match remaining.first() {
            Some(next) => {
                if current.session_id == user.session_id
                    && let Some(slot) = shard.get_mut(&*user.key)
                {
                    *slot = next.clone();
                }
                Removal::EndpointLeft
            }
            None => {
                shard.remove(&*user.key);
                Removal::SignedOut
            }
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

#[cfg(test)]
mod size_tests {
    /// Every signed-in user holds one of each, inside an `Arc` (16 bytes
    /// more): at these sizes both fall in jemalloc's 256-byte class.
    #[test]
    fn an_online_user_and_its_account_state_stay_small() {
        assert!(std::mem::size_of::<super::OnlineUser>() <= 240);
        assert!(std::mem::size_of::<super::AccountOnline>() <= 240);
    }
}
