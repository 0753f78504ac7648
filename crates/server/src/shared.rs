//! What every connection of a node shares: the backend, the configuration,
//! the bound ports, the counters and the traced accounts. It sits on the
//! ground floor: the fronts (notification, switchboard, HTTP, web, metrics)
//! and the listeners in [`crate::server`] all import it, and it imports none
//! of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use backend::Backend;
use backend::outbox::Outbox;
use backend::presence::NsEvent;

use crate::config::ServerConfig;

/// Counts of events an operator wants to see (the metrics work exposes them).
#[derive(Debug, Default)]
pub struct Counters {
    /// QRY answers that were wrong.
    pub challenges_failed: AtomicU64,
    /// Challenges not answered in time.
    pub challenges_unanswered: AtomicU64,
    /// QRY answers from product ids we do not know.
    pub unknown_products: AtomicU64,
    /// Connections refused at accept (total or per-address limit).
    pub refused_connections: AtomicU64,
    /// Connections closed for flooding past the rate limits.
    pub abuse_disconnects: AtomicU64,
}

/// Which role a connection plays: what its session does, and which gauge
/// counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Negotiates, then refers the client to a notification server.
    Dispatch = 0,
    Notification = 1,
    Switchboard = 2,
}

impl Role {
    pub const ALL: [(Role, &'static str); 3] =
        [(Role::Dispatch, "dispatch"), (Role::Notification, "notification"), (Role::Switchboard, "switchboard")];
}

/// What every connection shares.
pub struct Shared {
    pub backend: Arc<Backend>,
    pub config: ServerConfig,
    /// The bound notification port (referred to by `XFR NS`).
    pub ns_port: u16,
    /// The bound switchboard port (referred to by `XFR SB` and `RNG`).
    pub sb_port: u16,
    pub counters: Counters,
    /// Open connections (MSNP and web) per client address.
    pub per_address: parking_lot::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// The bound plain HTTP port, if any.
    pub http_port: Option<u16>,
    /// The bound HTTPS port, if any.
    pub https_port: Option<u16>,
    /// The bound MSNP-over-TLS port, if any (notification and switchboard
    /// in one, referred to by the `XFR SB` and `RNG` of TLS clients).
    pub msnp_tls_port: Option<u16>,
    /// The other nodes, when this one is part of a cluster.
    pub cluster: Option<Arc<crate::cluster::NatsCluster>>,
    /// Open client connections per role, indexed by [`Role`]
    /// (for the metrics; their sum is the load a node reports to the cluster).
    pub by_role: Arc<[AtomicU64; 3]>,
    /// What notification sessions are told: the node drains (they move
    /// their clients to other nodes) or stops (`OUT SSD`).
    pub lifecycle: Arc<NodeSignal>,
    /// Accounts (handle keys) whose protocol the operator is tracing.
    pub traced: TraceList,
}

/// The traced accounts, looked up for every command and event: with none
/// traced (the usual case) a lookup is one relaxed load, not a read lock
/// whose counter every core's sessions would write to.
#[derive(Default)]
pub struct TraceList {
    any: std::sync::atomic::AtomicBool,
    handles: parking_lot::RwLock<std::collections::HashSet<String>>,
}

impl TraceList {
    pub fn new(handles: std::collections::HashSet<String>) -> TraceList {
        let list = TraceList::default();
        list.set(handles);
        list
    }

    /// Replaces the list (`msnd trace`, SIGHUP).
    pub fn set(&self, handles: std::collections::HashSet<String>) {
        let mut current = self.handles.write();
        self.any.store(!handles.is_empty(), Ordering::Relaxed);
        *current = handles;
    }

    pub fn contains(&self, key: &str) -> bool {
        self.any.load(Ordering::Relaxed) && self.handles.read().contains(key)
    }
}

/// The node's state as its notification sessions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Serving,
    Draining,
    Stopping,
}

/// The node's [`Lifecycle`], and the event queues of the notification
/// sessions that act on it. A change wakes each session through its queue,
/// and the session reads the state when it runs: waiting on a channel would
/// keep a 120-byte future in every idle session, and this keeps one entry
/// in a slab.
#[derive(Default)]
pub struct NodeSignal {
    state: AtomicU8,
    sessions: parking_lot::Mutex<slab::Slab<Outbox<NsEvent>>>,
}

impl NodeSignal {
    pub fn now(&self) -> Lifecycle {
        match self.state.load(Ordering::Acquire) {
            0 => Lifecycle::Serving,
            1 => Lifecycle::Draining,
            _ => Lifecycle::Stopping,
        }
    }

    /// Serving becomes draining; false if the node was not serving.
    pub fn drain(&self) -> bool {
        let changed = self.state.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok();
        if changed {
            self.wake_all();
        }
        changed
    }

    pub fn stop(&self) {
        if self.state.swap(2, Ordering::AcqRel) != 2 {
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        for (_, events) in self.sessions.lock().iter() {
            events.wake();
        }
    }

    /// Has `events` woken at each change until the returned guard drops.
    /// Read [`NodeSignal::now`] after: a change before it wakes no one.
    pub fn listen(self: &Arc<Self>, events: Outbox<NsEvent>) -> Listening {
        let id = self.sessions.lock().insert(events);
        Listening { signal: self.clone(), id }
    }
}

/// A session's place in [`NodeSignal`]'s list.
pub struct Listening {
    signal: Arc<NodeSignal>,
    id: usize,
}

impl Listening {
    pub fn now(&self) -> Lifecycle {
        self.signal.now()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.signal.sessions.lock().try_remove(self.id);
    }
}

impl Shared {
    /// The account to trace a connection under, if its user is traced.
    pub fn trace_for(&self, key: Option<&str>) -> Option<String> {
        let key = key?;
        self.traced.contains(key).then(|| key.to_string())
    }
}

/// The accounts listed in `DATA_DIR/trace` (one handle per line; `#`
/// comments).
pub fn read_trace_list(data_dir: &std::path::Path) -> std::collections::HashSet<String> {
    std::fs::read_to_string(data_dir.join("trace"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_ascii_lowercase)
        .collect()
}

impl Shared {
    pub fn http_port(&self) -> Option<u16> {
        self.http_port
    }

    pub fn https_port(&self) -> Option<u16> {
        self.https_port
    }
}
