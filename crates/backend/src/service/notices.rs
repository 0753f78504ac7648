//! `UUN`: notifications from one user's client to another's (MSNP13+),
//! relayed as `UBN` to someone who is online and allows the sender.

use super::*;

/// The application types clients relay: shared folders (1), an unnamed
/// one Pidgin lists (2), P2P signalling (3), endpoint control (4).
const RELAYED_KINDS: std::ops::RangeInclusive<u32> = 1..=4;

impl Backend {
    /// Relays a client notification to a user, or to one endpoint of a
    /// user (MSNP16+). 217 if the recipient is offline, hidden, not here,
    /// does not allow the sender, or has no such endpoint: the sender
    /// cannot tell which. Endpoint control (4) goes only between endpoints
    /// of one account. The payload is bounded by the frame limit.
    pub fn notify_client(
        &self,
        sender: &OnlineUser,
        to: &msnp::endpoint::Address,
        kind: u32,
        payload: Bytes,
    ) -> Result<(), ErrorCode> {
        if !RELAYED_KINDS.contains(&kind) {
            return Err(ErrorCode::UnknownApplication);
        }
        let handle = Handle::parse(&to.handle)?;
        let own = handle.key() == sender.key;
        if kind == msnp::endpoint::ENDPOINT_CONTROL && !own {
            return Err(ErrorCode::NotOnline);
        }
        let recipient = self.registry.get(handle.key()).ok_or(ErrorCode::NotOnline)?;
        let reachable = own || (recipient.presence_line().is_some() && recipient.with_lists(|l| l.allows(&sender.key)));
        if !reachable {
            return Err(ErrorCode::NotOnline);
        }
        let targets: Vec<Arc<OnlineUser>> = recipient
            .endpoints()
            .into_iter()
            .filter(|e| e.session_id != sender.session_id)
            .filter(|e| to.endpoint.is_none() || e.machine == to.endpoint)
            .collect();
        if targets.is_empty() {
            return Err(ErrorCode::NotOnline);
        }
        let notice = NsEvent::ClientNotice {
            from: sender.handle.clone(),
            from_endpoint: sender.machine.clone().filter(|_| to.endpoint.is_some()),
            kind,
            payload,
        };
        for target in targets {
            target.deliver_here(notice.clone());
        }
        Ok(())
    }

    /// Signs out another endpoint of the user's own account (after the
    /// `UUN` asking it to, so that it reads that first): `OUT OTH`.
    pub fn end_endpoint(&self, user: &OnlineUser, machine: &msnp::endpoint::MachineGuid) -> Result<(), ErrorCode> {
        let target = user
            .endpoints()
            .into_iter()
            .find(|e| e.session_id != user.session_id && e.machine.as_ref() == Some(machine))
            .ok_or(ErrorCode::NotOnline)?;
        target.deliver_here(NsEvent::Kick(Some(OutReason::OtherLogin)));
        Ok(())
    }
}
