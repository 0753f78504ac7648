//! The Mariposa domain: accounts, the four lists and the privacy rules,
//! presence, switchboard sessions, and the store they persist to.
//!
//! It knows nothing of sockets. The server's protocol fronts call into
//! [`Backend`] with typed requests and receive protocol-neutral events
//! ([`NsEvent`], [`SbEvent`]) which they encode in their connection's dialect.
//!
//! Layout:
//! - [`handle`]: user handles and their validation.
//! - [`lists`]: one user's lists and the rules for changing them.
//! - [`presence`]: who is online, and who may see whom.
//! - [`switchboard`]: chat sessions, invitations and the cookies that admit users.
//! - [`secrets`]: the server key, password hashes and the sealed MD5 secret.
//! - [`store`]: the [`Store`] trait and its SQLite and PostgreSQL implementations.
//! - [`service`]: [`Backend`], the operations the fronts call, one file per concern.
//! - [`cluster`]: what crosses between nodes (the bus itself is the server's).
//! - [`passport`], [`hashing`], [`limits`]: tickets, the password pool, flood control.
#![forbid(unsafe_code)]

pub mod cluster;
pub mod config;
pub mod handle;
pub mod hashing;
pub mod intern;
pub mod limits;
pub mod lists;
pub mod outbox;
pub mod passport;
pub mod presence;
pub mod secrets;
pub mod service;
pub mod store;
pub mod switchboard;
pub mod testing;

pub use config::BackendConfig;
pub use handle::Handle;
pub use presence::{ContactPresence, NsEvent, OnlineUser};
pub use service::{Backend, ImportedAccount};
pub use store::{Store, StoreError};
pub use switchboard::{SbEvent, SwitchboardSession};

/// FNV-1a of some bytes: cheap, stable across processes and nodes, good
/// enough to spread e-mail addresses over shards and to tell one password
/// hash from another. Not for anything an attacker may choose to collide.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}
