//! What an operator does to the running service: disable an account, end a
//! sign-in, send everyone a message.

use super::*;

impl Backend {
    /// Disables an account (and ends its session) or enables it again.
    pub async fn set_disabled(&self, handle: &str, disabled: bool) -> Result<(), AccountError> {
        let handle = Handle::parse(handle).map_err(AccountError::InvalidHandle)?;
        self.store.set_disabled(handle.key(), disabled).await?;
        if disabled {
            self.kick(handle.key());
        }
        Ok(())
    }

    /// Ends a user's session on this node with `OUT`; false if not signed in here.
    pub fn kick(&self, handle: &str) -> bool {
        match self.registry.get(&handle.to_ascii_lowercase()) {
            Some(u) => {
                u.deliver(NsEvent::Kick(None));
                true
            }
            None => false,
        }
    }

    /// Sends a message from the service to everyone signed in here; returns
    /// how many, or `None` when the text is longer than
    /// [`MAX_BROADCAST_BYTES`] (older clients take a message of about 1,600
    /// bytes at most and choke on more).
    pub fn broadcast(&self, text: &str) -> Option<usize> {
        if text.len() > MAX_BROADCAST_BYTES {
            return None;
        }
        let payload = format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}");
        let users = self.registry.all();
        for u in &users {
            u.deliver(NsEvent::SystemMessage { payload: bytes::Bytes::from(payload.clone()) });
        }
        Some(users.len())
    }
}
