//! `msnd`: the Mariposa servers as thin network fronts over the backend.
//!
//! Layout:
//! - [`config`]: what an operator sets.
//! - [`connection`]: framed reading with limits and timeouts, buffered writing.
//! - [`notification`]: the dispatch and notification server roles (one state
//!   machine; the dispatch role refers clients on with `XFR NS`).
//! - [`switchboard`]: the switchboard role.
//! - [`http`]: the HTTP side (health and status for now).
//! - [`server`]: listeners, the role of each accepted socket, shutdown.

pub mod bus_seal;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod http;
#[cfg(feature = "legacy-tls")]
pub mod legacy_tls;
pub mod metrics;
pub mod notification;
pub mod options;
pub mod request_target;
pub mod server;
pub mod switchboard;

pub mod tls;
pub mod web;

pub use config::ServerConfig;
pub use server::{RunningServer, Server};
