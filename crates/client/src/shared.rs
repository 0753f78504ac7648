//! What the client's tasks share: the notification session, its
//! conversations and transfers all hold one [`Shared`]. A ground-floor
//! module, so `ns`, `sb` and `transfer` import it and not each other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use msnp::request::NsRequest;
use msnp::{Dialect, Reply, TrId};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::config::ClientConfig;
use crate::conversation::Conversation;
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::state::State;

/// Builds a request once the session task has given it its TrID.
pub(crate) type MakeRequest = Box<dyn FnOnce(TrId) -> NsRequest + Send>;

/// A request for the notification session task and where its reply goes.
pub(crate) struct Request {
    pub make: MakeRequest,
    pub reply: oneshot::Sender<Result<Reply>>,
}

pub(crate) enum Command {
    Request(Request),
    /// A request the server answers only when it refuses it (`SDG`).
    Send(MakeRequest),
    SignOut(oneshot::Sender<()>),
}

pub(crate) struct Shared {
    pub config: ClientConfig,
    pub dialect: Dialect,
    pub state: std::sync::Mutex<State>,
    pub events: mpsc::UnboundedSender<Event>,
    pub conversations: std::sync::Mutex<HashMap<u64, Conversation>>,
    /// MSNP21's conversations without a switchboard, by the other person's
    /// handle key.
    pub direct: std::sync::Mutex<HashMap<String, u64>>,
    pub next_id: AtomicU64,
    pub commands: mpsc::Sender<Command>,
    /// Serialises `XFR SB` so each answer goes to its own call.
    pub switchboard_requests: AsyncMutex<()>,
    /// The offline messages read from the web service this session (by
    /// GUID), so that two notices never show one twice; held while reading.
    pub offline_read: AsyncMutex<std::collections::HashSet<String>>,
    /// My circles (MSNP18), as the address book last listed them.
    pub circles: std::sync::Mutex<Vec<crate::state::Circle>>,
    /// Serialises reading the circles and joining them.
    pub circle_refresh: AsyncMutex<()>,
}

impl Shared {
    pub fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub fn me(&self) -> (String, String) {
        let s = self.state.lock().expect("state lock");
        (s.handle.clone(), s.friendly.clone())
    }

    /// How I name myself to a switchboard: my handle, and from MSNP16 the
    /// machine I signed in from.
    pub fn my_address(&self) -> msnp::endpoint::Address {
        let handle = self.me().0;
        match self.dialect.has_points_of_presence() {
            true => msnp::endpoint::Address::endpoint(&handle, &self.config.machine),
            false => msnp::endpoint::Address::user(&handle),
        }
    }

    /// A fresh id for a conversation or a transfer.
    pub fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request that has no answer but a refusal; a refusal is
    /// only logged.
    pub async fn send(&self, make: impl FnOnce(TrId) -> NsRequest + Send + 'static) -> Result<()> {
        self.commands.send(Command::Send(Box::new(make))).await.map_err(|_| ClientError::Closed)
    }

    /// Sends a request on the notification connection and waits for its
    /// reply; an error reply comes back as `ClientError::Server`.
    pub async fn request(&self, make: impl FnOnce(TrId) -> NsRequest + Send + 'static) -> Result<Reply> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(Request { make: Box::new(make), reply: tx }))
            .await
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.config.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }
}
