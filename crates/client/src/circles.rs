//! Circles (MSNP18's persistent group chats), as WLM 2009 keeps them: made,
//! joined and left through the address book, admitted with the book's
//! signed ticket (`USR SHA A`), joined with an `ADL` of the circle, spoken
//! in with `SDG`; the server's `NFY` and `SDG` become events.

use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::login;
use crate::shared::Shared;
use crate::state::Circle;
use msnp::addressbook::{Invitee, Operation, parse_circle_result, parse_create_circle_response};
use msnp::circle::{self, CircleDocument, CircleId, CircleState, Said};
use msnp::request::{NsRequest, UsrStep};
use msnp::routed::RoutedMessage;

fn circle_id(id: &str) -> Result<CircleId> {
    CircleId::parse_guid(id).ok_or_else(|| ClientError::Protocol(format!("{id} is no circle")))
}

/// Makes a circle I administer, and joins it; its GUID.
pub(crate) async fn create(shared: &Shared, name: &str) -> Result<String> {
    let xml = book(shared, &Operation::CreateCircle { name: name.to_string() }).await?;
    let id = parse_create_circle_response(&xml)
        .ok_or_else(|| ClientError::Protocol("CreateCircle answered something else".into()))?;
    refresh(shared).await?;
    Ok(id.guid())
}

/// Invites someone into a circle I administer.
pub(crate) async fn invite(shared: &Shared, circle: &str, handle: &str) -> Result<()> {
    let op = Operation::InviteToCircle {
        circle: circle_id(circle)?,
        invitee: Invitee::Handle(handle.to_string()),
        message: None,
    };
    book(shared, &op).await.map(drop)
}

/// Accepts (and joins) or declines an invitation.
pub(crate) async fn answer(shared: &Shared, circle: &str, accept: bool) -> Result<()> {
    book(shared, &Operation::AnswerCircle { circle: circle_id(circle)?, accept }).await?;
    refresh(shared).await
}

/// Leaves a circle for good.
pub(crate) async fn leave(shared: &Shared, circle: &str) -> Result<()> {
    book(shared, &Operation::LeaveCircle { circle: circle_id(circle)? }).await?;
    shared.circles.lock().expect("circles lock").retain(|c| c.id != circle);
    Ok(())
}

/// Says something in a circle I joined. A circle message has no answer
/// unless it is refused, so none is waited for.
pub(crate) async fn say(shared: &Shared, circle: &str, text: &str) -> Result<()> {
    let id = circle_id(circle)?;
    let (handle, _) = shared.me();
    let machine = shared.config.machine.to_string();
    let said = Said::Text { text: text.to_string(), format: None };
    let payload = circle::circle_message(&id, &handle, Some(&machine), &said).to_bytes();
    shared.send(move |trid| NsRequest::Sdg { trid, payload }).await
}

async fn book(shared: &Shared, op: &Operation) -> Result<String> {
    let ticket = shared.state.lock().expect("state lock").web_token.clone();
    login::address_book(&shared.config, &ticket, op).await
}

/// Reads my circles from the address book; joins the ones I am a member of
/// and have not joined, with a fresh ticket; tells of new invitations.
pub(crate) async fn refresh(shared: &Shared) -> Result<()> {
    let _one_at_a_time = shared.circle_refresh.lock().await;
    let ticket = shared.state.lock().expect("state lock").web_token.clone();
    let xml =
        login::address_book(&shared.config, &ticket, &Operation::FindContactsPaged { deltas_since: None }).await?;
    let (entries, signed) =
        parse_circle_result(&xml).ok_or_else(|| ClientError::Protocol("the address book carries no circles".into()))?;
    let mut to_join = Vec::new();
    let mut invitations = Vec::new();
    {
        let mut circles = shared.circles.lock().expect("circles lock");
        let known = std::mem::take(&mut *circles);
        for e in entries {
            let id = e.id.guid();
            let before = known.iter().find(|c| c.id == id);
            let invited_by = (e.state == CircleState::WaitingResponse).then(|| e.inviter.clone().unwrap_or_default());
            if invited_by.is_some() && before.is_none_or(|b| b.invited_by.is_none()) {
                invitations.push((id.clone(), e.name.clone(), invited_by.clone().unwrap_or_default()));
            }
            let joined = before.is_some_and(|b| b.joined);
            if e.state == CircleState::Accepted && !joined {
                to_join.push((e.id.clone(), e.name.clone()));
            }
            circles.push(Circle {
                id,
                name: e.name,
                invited_by,
                joined: joined || e.state == CircleState::Accepted,
                roster: before.map(|b| b.roster.clone()).unwrap_or_default(),
            });
        }
    }
    for (circle, name, by) in invitations {
        shared.emit(Event::CircleInvitation { circle, name, by });
    }
    if to_join.is_empty() {
        return Ok(());
    }
    let ticket = msnp::base64::encode(signed.as_bytes());
    shared.request(move |trid| NsRequest::Usr { trid, step: UsrStep::CircleTicket { ticket } }).await?;
    for (id, name) in &to_join {
        shared.emit(Event::CircleJoined { circle: id.guid(), name: name.clone() });
    }
    let doc = msnp::adl::ListDocument {
        initial: false,
        contacts: to_join
            .iter()
            .map(|(id, _)| msnp::adl::ListEntry {
                handle: id.handle(),
                lists: msnp::ListKind::Forward.bit(),
                network: msnp::routed::CIRCLE_NETWORK,
                friendly: None,
            })
            .collect(),
    };
    let payload = doc.encode().into_bytes().into();
    shared.request(move |trid| NsRequest::Adl { trid, payload }).await?;
    Ok(())
}

/// A circle's `NFY` or `SDG`, as events.
pub(crate) fn on_routed(shared: &Shared, removal: bool, sdg: bool, message: RoutedMessage) {
    let circle_of = |a: Option<msnp::routed::RoutedAddress>| a.as_ref().and_then(CircleId::of_address);
    if sdg {
        let (Some(circle), Some(from)) = (circle_of(message.to()), message.from()) else { return };
        if let Some(Said::Text { text, .. }) = Said::of(&message) {
            shared.emit(Event::CircleMessage { circle: circle.guid(), from: from.name, text });
        }
        return;
    }
    let Some(circle) = circle_of(message.from()) else { return };
    if removal {
        if let Some(who) = circle::left_member(&message) {
            let mut circles = shared.circles.lock().expect("circles lock");
            if let Some(c) = circles.iter_mut().find(|c| c.id == circle.guid()) {
                c.roster.retain(|h| !h.eq_ignore_ascii_case(&who));
            }
            drop(circles);
            shared.emit(Event::CircleLeft { circle: circle.guid(), handle: who });
        }
        return;
    }
    // An empty notification says the circle is there to be joined; a
    // document is its roster.
    let Some(doc) = CircleDocument::parse(&message.body).filter(|d| !d.roster.is_empty()) else { return };
    if let Some(c) = shared.circles.lock().expect("circles lock").iter_mut().find(|c| c.id == circle.guid()) {
        c.roster = doc.roster.clone();
    }
    shared.emit(Event::CircleRoster { circle: circle.guid(), members: doc.roster });
}
