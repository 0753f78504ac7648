//! What every connection of a node shares: the backend, the configuration,
//! the bound ports, the counters and the traced accounts. It sits on the
//! ground floor: the fronts (notification, switchboard, HTTP, web, metrics)
//! and the listeners in [`crate::server`] all import it, and it imports none
//! of them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use backend::Backend;
use tokio::sync::watch;

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
    /// their clients to other nodes) or stops (`OUT SSD`). One channel for
    /// both, so that every idle session waits on one future, not two.
    pub lifecycle: watch::Sender<Lifecycle>,
    /// Accounts (handle keys) whose protocol the operator is tracing.
    pub traced: parking_lot::RwLock<std::collections::HashSet<String>>,
}

/// The node's state as its notification sessions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Serving,
    Draining,
    Stopping,
}

impl Shared {
    /// The account to trace a connection under, if its user is traced.
    pub fn trace_for(&self, key: Option<&str>) -> Option<String> {
        let key = key?;
        let traced = self.traced.read();
        (!traced.is_empty() && traced.contains(key)).then(|| key.to_string())
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
