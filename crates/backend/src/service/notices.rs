//! `UUN`: notifications from one user's client to another's (MSNP13+),
//! relayed as `UBN` to someone who is online and allows the sender.

use super::*;

/// The application types clients relay: shared folders (1), an unnamed
/// one Pidgin lists (2), P2P signalling (3), endpoint control (4).
const RELAYED_KINDS: std::ops::RangeInclusive<u32> = 1..=4;

impl Backend {
    /// Relays a client notification. 217 if the recipient is offline,
    /// hidden, not here, or does not allow the sender: the sender cannot
    /// tell which. The payload is bounded by the frame limit.
    pub fn notify_client(&self, sender: &OnlineUser, to: &str, kind: u32, payload: Bytes) -> Result<(), ErrorCode> {
        if !RELAYED_KINDS.contains(&kind) {
            return Err(ErrorCode::UnknownApplication);
        }
        let handle = Handle::parse(to)?;
        let recipient = self.registry.get(handle.key()).ok_or(ErrorCode::NotOnline)?;
        let reachable = recipient.presence_line().is_some() && recipient.with_lists(|l| l.allows(&sender.key));
        if !reachable {
            return Err(ErrorCode::NotOnline);
        }
        recipient.deliver(NsEvent::ClientNotice { from: sender.handle.clone(), kind, payload });
        Ok(())
    }
}
