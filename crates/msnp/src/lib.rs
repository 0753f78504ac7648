//! The MSN Messenger protocol on the wire (MSNP2 and later dialects).
//!
//! This crate knows bytes and shapes, nothing else: it performs no I/O and
//! depends on no runtime, so every parser in it can be unit-tested, property
//! tested and fuzzed in isolation. The servers and the client both build on it.
//!
//! Layout:
//! - [`frame`]: splits a byte stream into command lines and their payloads,
//!   with hard limits on line and payload length.
//! - [`request`]: what a client may send, parsed into typed values.
//! - [`reply`]: what a server sends, encoded in the shape of a [`Dialect`]
//!   and parsed back.
//! - [`signin`]: the client's side of signing in, as a state machine.
//! - [`dialect`]: the protocol versions and what differs between them.
//! - [`types`]: small wire vocabularies (lists, states, privacy modes, acks).
//! - [`error`]: the numeric error codes.
//! - [`urlencode`]: the URL encoding used for names inside arguments.
//! - [`mime`]: the MIME-style payloads carried by `MSG`.
#![forbid(unsafe_code)]

pub mod addressbook;
pub mod adl;
pub mod base64;
pub mod challenge;
pub mod circle;
pub mod dialect;
pub mod directory;
pub mod endpoint;
pub mod error;
pub mod frame;
pub mod mime;
pub mod msnftp;
pub mod multiparty;
pub mod oim;
pub mod p2p;
pub mod p2pv2;
pub mod passport;
pub mod personal;
pub mod reply;
pub mod request;
pub mod routed;
pub mod signin;
pub mod soap;
pub mod sso;
pub mod storage;
pub mod sync;
pub mod time;
pub mod trace;
pub mod types;
pub mod urlencode;
pub mod user;

pub use dialect::Dialect;
pub use error::ErrorCode;
pub use frame::{Decoder, Direction, Frame, FrameError, Limits};
pub use reply::Reply;
pub use types::{AckMode, ListKind, OnlineState, PrivacyMode, PromptMode, SessionId, TrId};
