//! `ADL`, `RML` and `FQY` (MSNP13+): the lists as XML documents. The
//! address book and membership services hold the lists; `ADL` tells the
//! server what the client shows, and puts new contacts on lists.

use std::sync::Arc;

use backend::handle::Handle;
use backend::lists::OppositeList;
use backend::presence::OnlineUser;
use bytes::Bytes;
use msnp::adl::{ListDocument, MESSENGER_NETWORK};
use msnp::{ErrorCode, ListKind, Reply, TrId};

use super::dispatch::Handled;
use super::{Flow, NsSession};
use crate::connection::Writer;

/// The lists a client may name in a document, in the order they are applied.
const CLIENT_LISTS: [ListKind; 3] = [ListKind::Forward, ListKind::Allow, ListKind::Block];

/// A client's document, checked whole before anything changes: every
/// contact a valid Messenger handle on lists a client may name.
fn client_document(payload: &[u8], circles: bool) -> Result<ListDocument, ErrorCode> {
    let doc = ListDocument::parse(payload)?;
    doc.check_client_lists()?;
    for c in &doc.contacts {
        let circle = circles && c.network == msnp::routed::CIRCLE_NETWORK;
        if c.network != MESSENGER_NETWORK && !circle {
            return Err(ErrorCode::InvalidListXml);
        }
        Handle::parse(&c.handle)?;
    }
    Ok(doc)
}

impl NsSession {
    /// `ADL`: the first one after sign-in (`<ml l="1">`) names what the
    /// client fetched from the services, which already are the server's
    /// lists; later ones put contacts on lists, and a forward-list contact
    /// they name is shown at once with `ILN` under the request's TrID, after
    /// the `ADL ... OK` (the order of `ADC` and its `ILN`). That holds too
    /// for a contact the address book service has just added (`ABContactAdd`
    /// then `ADL`, as WLM does): the `ADL` is when the client listens.
    pub(super) async fn adl(&mut self, user: &Arc<OnlineUser>, trid: TrId, payload: &Bytes, w: &mut Writer) -> Handled {
        let mut doc = client_document(payload, w.dialect.has_circles())?;
        // Circles (network 9) are joined, not listed.
        let (circles, contacts): (Vec<_>, Vec<_>) =
            doc.contacts.into_iter().partition(|c| c.network == msnp::routed::CIRCLE_NETWORK);
        doc.contacts = contacts;
        let mut shown = Vec::new();
        let mut presences = Vec::new();
        if !circles.is_empty() {
            let ids = circles
                .iter()
                .map(|c| c.handle.strip_suffix("@live.com").and_then(msnp::circle::CircleId::parse_guid))
                .collect::<Option<Vec<_>>>()
                .ok_or(ErrorCode::InvalidCircleMembership)?;
            shown = self.join_circles(user, ids).await?;
        }
        if !doc.initial {
            let backend = self.shared.backend.clone();
            for contact in &doc.contacts {
                let key = contact.handle.to_ascii_lowercase();
                for list in CLIENT_LISTS.into_iter().filter(|l| contact.lists & l.bit() != 0) {
                    if !user.with_lists(|l| l.bits(&key).contains(list)) {
                        match backend.add_to_list(user, list, &contact.handle, OppositeList::Accept).await {
                            // ADL asks for a state, not a change: one that is
                            // reached meanwhile (the same change made by the
                            // address book on another node, or another
                            // endpoint) is what was asked for.
                            Ok(_) | Err(ErrorCode::AlreadyThere) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                if contact.lists & ListKind::Forward.bit() != 0 && user.presence().started {
                    presences.extend(backend.contact_presence(user, &key).await);
                }
            }
        }
        w.push(&Reply::AdlOk { trid });
        for reply in &shown {
            w.push(reply);
        }
        for contact in presences {
            match w.dialect.presence_in_documents() {
                true => self.push_presence(w, Some(trid), contact),
                // The personal message follows with the contact's next change.
                false => w.push(&Reply::Iln { trid, presence: contact.line }),
            }
        }
        Ok(Flow::Continue)
    }

    /// `RML`: takes contacts off the lists named.
    pub(super) async fn rml(&mut self, user: &Arc<OnlineUser>, trid: TrId, payload: &Bytes, w: &mut Writer) -> Handled {
        let doc = client_document(payload, false)?;
        let backend = self.shared.backend.clone();
        for contact in &doc.contacts {
            let key = contact.handle.to_ascii_lowercase();
            for list in CLIENT_LISTS.into_iter().filter(|l| contact.lists & l.bit() != 0) {
                if user.with_lists(|l| l.bits(&key).contains(list)) {
                    backend.remove_from_list(user, list, &contact.handle).await?;
                }
            }
        }
        w.push(&Reply::RmlOk { trid });
        Ok(Flow::Continue)
    }

    /// `FQY`: which network each contact asked about is on. Every account
    /// here is a Messenger account; unknown ones are answered the same, as
    /// the service did, so that the answer tells nobody who has an account.
    pub(super) fn fqy(&mut self, _user: &Arc<OnlineUser>, trid: TrId, payload: &Bytes, w: &mut Writer) -> Handled {
        let mut doc = ListDocument::parse(payload)?;
        doc.initial = false;
        for c in &mut doc.contacts {
            (c.lists, c.network, c.friendly) = (0, MESSENGER_NETWORK, None);
        }
        w.push(&Reply::Fqy { trid, payload: Bytes::from(doc.encode()) });
        Ok(Flow::Continue)
    }
}

impl NsSession {
    /// `UUN`: a notification for another user's client.
    pub(super) async fn uun(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        to: &msnp::endpoint::Address,
        kind: u32,
        payload: Bytes,
        w: &mut Writer,
    ) -> Handled {
        let sign_out = msnp::endpoint::is_sign_out(kind, &payload);
        self.shared.backend.notify_client(user, to, kind, payload)?;
        // Told first, then ended: the endpoint reads why it goes.
        if let (true, Some(machine)) = (sign_out, &to.endpoint) {
            self.shared.backend.end_endpoint(user, machine)?;
        }
        w.push(&Reply::UunOk { trid });
        Ok(Flow::Continue)
    }

    /// `UUM`: a message to a contact of another network (MSNP14+, Yahoo),
    /// or kept for an offline Messenger contact. No other network is
    /// joined to this one, so only the second is possible; it is stored
    /// like any offline message and acknowledged by no line (the
    /// protocol reference names none).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn uum(
        &mut self,
        user: &Arc<OnlineUser>,
        _trid: TrId,
        to: &str,
        network: u32,
        _kind: u32,
        payload: &Bytes,
        _w: &mut Writer,
    ) -> Handled {
        use backend::service::OfflineError;
        if network != MESSENGER_NETWORK {
            return Err(ErrorCode::InvalidUsername);
        }
        match self.shared.backend.send_offline_message(user, to, payload).await {
            Ok(()) => Ok(Flow::Continue),
            Err(OfflineError::NoSuchUser) => Err(ErrorCode::InvalidUsername),
            Err(OfflineError::TooLong) => Err(ErrorCode::InvalidParameter),
            Err(OfflineError::RateLimited) => Err(ErrorCode::UserTooActive),
            Err(OfflineError::QuotaFull | OfflineError::Internal) => Err(ErrorCode::InternalServer),
        }
    }
}

/// The document that tells an MSNP13+ client someone put it on, or took it
/// off, their forward list (`ADL 0`/`RML 0`, `l="8"`).
pub(super) fn reverse_list_document(handle: &str, friendly: Option<&str>) -> Bytes {
    let doc = ListDocument {
        initial: false,
        contacts: vec![msnp::adl::ListEntry {
            handle: handle.to_string(),
            lists: ListKind::Reverse.bit(),
            network: MESSENGER_NETWORK,
            friendly: friendly.map(str::to_string),
        }],
    };
    Bytes::from(doc.encode())
}
