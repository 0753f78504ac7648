//! An async MSN Messenger client: sign in through the dispatch server (MD5 or
//! Passport), keep the lists (cached between sessions), presence, personal
//! messages, conversations with several people, typing notifications, and
//! file transfer (MSNFTP directly between clients, MSNSLP/P2P through the
//! switchboard).
//!
//! It speaks only the wire, through the `msnp` crate; it knows nothing of the
//! server's code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), client::ClientError> {
//! let config = client::ClientConfig::new("127.0.0.1:1863", "alice@example.com", "secret");
//! let (me, mut events) = client::Client::sign_in(config).await?;
//! me.set_state(msnp::OnlineState::Online).await?;
//! let chat = me.start_conversation("bob@example.com").await?;
//! while let Some(event) = events.recv().await {
//!     if let client::Event::Joined { .. } = event {
//!         chat.send_text("hello").await?;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layout: [`config`], [`conn`] (framed TCP), [`http`] (Passport over
//! HTTP(S)), [`login`], [`ns`] (the notification session task), [`sb`] (one
//! task per conversation), [`transfer`] (MSNFTP and P2P), [`cache`] (lists
//! between sessions), [`event`] (the one event stream), [`message`] (text and
//! typing payloads).

pub mod cache;
mod circles;
pub mod config;
pub mod conn;
mod contacts;
pub mod conversation;
mod direct;
pub mod error;
pub mod event;
pub mod gateway;
pub mod http;
pub mod login;
pub mod message;
pub mod ns;
pub mod sb;
mod shared;
pub mod state;
pub mod transfer;

pub use config::ClientConfig;
pub use conversation::Conversation;
pub use error::ClientError;
pub use event::Event;
pub use ns::Client;
pub use state::{Circle, Contact, State};
