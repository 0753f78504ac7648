//! The handle of a conversation: what the application holds and calls; the
//! switchboard task in `sb` carries the commands out.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};
use crate::message;

/// How a file is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Msnftp,
    P2p,
}

pub(crate) enum Command {
    Text { payload: Vec<u8>, reply: oneshot::Sender<Result<()>> },
    Unacknowledged(Vec<u8>),
    Invite { handle: String, reply: oneshot::Sender<Result<()>> },
    SendFile { path: PathBuf, method: Option<Method>, reply: oneshot::Sender<Result<u64>> },
    Accept { transfer: u64, dest: PathBuf },
    Decline { transfer: u64 },
    Cancel { transfer: u64 },
    Leave(oneshot::Sender<()>),
}

/// A conversation (one switchboard session). Cheap to clone.
#[derive(Clone)]
pub struct Conversation {
    pub id: u64,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) participants: Arc<Mutex<Vec<String>>>,
}

impl Conversation {
    /// Who else is in the conversation now.
    pub fn participants(&self) -> Vec<String> {
        self.participants.lock().expect("participants lock").clone()
    }

    async fn command(&self, c: Command) -> Result<()> {
        self.commands.send(c).await.map_err(|_| ClientError::Closed)
    }

    /// Sends a text message and waits for the switchboard's acknowledgement.
    pub async fn send_text(&self, text: &str) -> Result<()> {
        self.send_formatted(text, None).await
    }

    /// Sends a text message with an `X-MMS-IM-Format` font header.
    pub async fn send_formatted(&self, text: &str, format: Option<&str>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Text { payload: message::text(text, format), reply: tx }).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Tells the others I am typing (unacknowledged).
    pub async fn send_typing(&self, me: &str) -> Result<()> {
        self.command(Command::Unacknowledged(message::typing(me))).await
    }

    /// Sends a nudge.
    pub async fn send_nudge(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Text { payload: message::nudge(), reply: tx }).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Invites someone else into the conversation.
    pub async fn invite(&self, handle: &str) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Invite { handle: handle.into(), reply: tx }).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Offers a file to the other participant; returns the transfer id. The
    /// method is MSNSLP/P2P when the dialect has it, else MSNFTP.
    pub async fn send_file(&self, path: &Path) -> Result<u64> {
        self.send_file_with(path, None).await
    }

    /// Offers a file with a chosen method.
    pub async fn send_file_with(&self, path: &Path, method: Option<Method>) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::SendFile { path: path.into(), method, reply: tx }).await?;
        rx.await.map_err(|_| ClientError::Closed)?
    }

    /// Accepts an offered file into `dest`.
    pub async fn accept_file(&self, transfer: u64, dest: &Path) -> Result<()> {
        self.command(Command::Accept { transfer, dest: dest.into() }).await
    }

    /// Declines an offered file.
    pub async fn decline_file(&self, transfer: u64) -> Result<()> {
        self.command(Command::Decline { transfer }).await
    }

    /// Stops a transfer.
    pub async fn cancel_transfer(&self, transfer: u64) -> Result<()> {
        self.command(Command::Cancel { transfer }).await
    }

    /// Leaves the conversation.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
