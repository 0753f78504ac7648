//! Limits and lifetimes the domain enforces.

use std::time::Duration;

use crate::limits::RateLimits;

/// Settings of the domain layer; the server fills them from its config.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// Most entries on a forward list (error 210 beyond).
    pub max_forward_list: usize,
    /// Most entries on an allow list.
    pub max_allow_list: usize,
    /// Most entries on a block list.
    pub max_block_list: usize,
    /// How long a switchboard cookie from `XFR SB` or `RNG` stays valid.
    pub cookie_lifetime: Duration,
    /// How long a Passport ticket stays valid for `USR ... TWN S`.
    pub ticket_lifetime: Duration,
    /// Most password hashes computed at once (Passport logins); each takes a
    /// core for tens of milliseconds, so more than the cores only queues.
    pub password_hash_workers: usize,
    /// Called first on each password-hashing thread: msnd lowers their
    /// priority there, so that a burst of Passport logins slows down rather
    /// than stalling the users already online.
    pub hashing_thread_start: Option<fn()>,
    /// Most people in one switchboard session.
    pub max_switchboard_participants: usize,
    /// Most switchboard sessions one user may be in at once (error 714).
    pub max_sessions_per_user: usize,
    /// Most endpoints (machines) one account may be signed in from at once
    /// in the dialects with points of presence (error 734).
    pub max_endpoints_per_account: usize,
    /// Most circles one account may be in or invited to.
    pub max_circles_per_account: usize,
    /// Most members (and invitees) of one circle.
    pub max_circle_members: usize,
    /// Most messages a circle keeps for the members who were away.
    pub max_circle_backlog: usize,
    /// Most offline messages waiting for one user; beyond, senders are refused.
    pub offline_quota: usize,
    /// Largest offline message (MIME) in bytes; it must fit a switchboard
    /// message with the delivery note added.
    pub max_offline_message: usize,
    /// Flood control.
    pub rate_limits: RateLimits,
    /// Queue length of events waiting for one connection; a connection that
    /// falls this far behind is disconnected so it cannot hold memory.
    pub outbox_capacity: usize,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            max_forward_list: 1000,
            max_allow_list: 1500,
            max_block_list: 1500,
            cookie_lifetime: Duration::from_secs(120),
            ticket_lifetime: Duration::from_secs(600),
            password_hash_workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            hashing_thread_start: None,
            max_switchboard_participants: 20,
            max_sessions_per_user: 32,
            max_endpoints_per_account: 8,
            max_circles_per_account: 20,
            max_circle_members: 50,
            max_circle_backlog: 100,
            outbox_capacity: 512,
            rate_limits: RateLimits::default(),
            offline_quota: 100,
            max_offline_message: 1400,
        }
    }
}
