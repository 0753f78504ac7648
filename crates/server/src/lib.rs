//! `msnd`: the Mariposa servers as thin network fronts over the backend.
//!
//! Layout:
//! - [`config`]: what an operator sets.
//! - [`connection`]: framed reading with limits and timeouts, buffered writing.
//! - [`notification`]: the dispatch and notification server roles (one state
//!   machine; the dispatch role refers clients on with `XFR NS`).
//! - [`switchboard`]: the switchboard role.
//! - [`http`]: the HTTP side: the Passport nexus and login service, RST,
//!   the offline-message web services, health and status; the rest goes to
//!   [`web`] (sign-up, password, operator pages).
//! - [`request_target`]: HTTP request targets, parsed and normalised once.
//! - [`cluster`], [`bus_seal`]: the NATS bus between nodes and its signed frames;
//!   [`seats`], [`seat_bus`]: the session directory and how it crosses the bus;
//!   [`node_roles`]: what a node runs; [`switchboard_spread`]: which switchboard
//!   node takes a new session.
//! - [`tls`], `legacy_tls`: certificates and the TLS listeners.
//! - [`server`]: listeners, the role of each accepted socket, shutdown.
//! - [`shared`]: what every connection of a node shares (ground floor).

pub mod address_book;
pub mod bus_seal;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod directory;
pub mod gateway;
pub mod hashing_threads;
pub mod http;
#[cfg(feature = "legacy-tls")]
pub mod legacy_tls;
pub mod listeners;
pub mod messenger;
pub mod metrics;
pub mod node_roles;
pub mod notification;
pub mod options;
pub mod request_target;
pub mod roles;
pub mod seat_bus;
pub mod seats;
pub mod shared;
pub mod storage;
pub mod switchboard;
pub mod switchboard_spread;

pub mod tls;
pub mod web;
pub mod xmpp;

pub use config::ServerConfig;
pub use listeners::{RunningServer, Server, open_backend};
