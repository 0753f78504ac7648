//! Circles on the notification server (MSNP18): `USR SHA A` admits the
//! endpoint to the circles its ticket names, `ADL` of a circle (network 9)
//! joins it, `SDG` says something in it, `PUT` publishes the member's
//! roster entry; the circle's events become `NFY PUT`, `NFY DEL` and `SDG`.
//! What a circle is and who may do what is the backend's.

use std::sync::Arc;

use backend::presence::{NsEvent, OnlineUser};
use msnp::circle::{self, CircleDocument, CircleId, NotifType, Said};
use msnp::routed::RoutedMessage;
use msnp::{ErrorCode, Reply, TrId};

use super::NsSession;
use super::dispatch::Handled;
use crate::connection::{Flow, Writer};

/// What this endpoint may see of circles.
#[derive(Debug, Default)]
pub(super) struct CircleAccess(Option<Box<Circles>>);

/// Boxed, and only once a ticket admits the endpoint: circles are an
/// MSNP18+ feature, and every idle session would otherwise carry their room.
#[derive(Debug, Default)]
struct Circles {
    /// The circles the last `USR SHA A` admitted to; `None` before one.
    admitted: Option<Vec<CircleId>>,
    /// The circles joined with `ADL`, whose events this endpoint is shown.
    joined: Vec<CircleId>,
}

impl CircleAccess {
    fn admitted(&self) -> Option<&Vec<CircleId>> {
        self.0.as_ref()?.admitted.as_ref()
    }

    fn has_joined(&self, circle: &CircleId) -> bool {
        self.0.as_ref().is_some_and(|c| c.joined.contains(circle))
    }

    fn inner(&mut self) -> &mut Circles {
        self.0.get_or_insert_default()
    }

    /// The circles joined, forgotten here (the session ends).
    pub(super) fn take_joined(&mut self) -> Vec<CircleId> {
        self.0.take().map(|c| c.joined).unwrap_or_default()
    }
}

impl NsSession {
    /// `USR SHA A ticket`: admits the endpoint to the ticket's circles. A
    /// later ticket (after the client made or entered a circle) is answered
    /// with an empty `NFY PUT` for each circle it adds, which WLM 2009 then
    /// joins; the circles of the first ticket it joins from its address
    /// book. (Pidgin sends the first ticket and reads no `NFY`.)
    pub(super) async fn usr_circles(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        ticket: &str,
        w: &mut Writer,
    ) -> Handled {
        let circles = self.backend().admit_circle_ticket(user, ticket)?;
        w.push(&Reply::UsrOk { trid, handle: user.handle.clone(), friendly: String::new() });
        if let Some(before) = self.circles.admitted() {
            for id in circles.iter().filter(|id| !before.contains(id)) {
                let ready = circle::circle_notification(&user.handle, id, NotifType::Full, None);
                w.push(&Reply::Nfy { removal: false, payload: ready.to_bytes() });
            }
        }
        self.circles.inner().admitted = Some(circles);
        Ok(Flow::Continue)
    }

    /// The circle part of an `ADL`: joins each (933 unless the ticket
    /// admitted this endpoint and the user is a member still), then the
    /// roster and what the member missed, after the `ADL`'s answer.
    pub(super) async fn join_circles(
        &mut self,
        user: &Arc<OnlineUser>,
        ids: Vec<CircleId>,
    ) -> Result<Vec<Reply>, ErrorCode> {
        let admitted = self.circles.admitted().ok_or(ErrorCode::InvalidCircleMembership)?;
        if ids.iter().any(|id| !admitted.contains(id)) {
            return Err(ErrorCode::InvalidCircleMembership);
        }
        let backend = self.shared.backend.clone();
        let mut replies = Vec::new();
        for id in ids {
            let joined = backend.join_circle(user, &id).await?;
            let roster = CircleDocument { roster: joined.roster, presence: None };
            let put = circle::circle_notification(&user.handle, &id, NotifType::Partial, Some(&roster));
            replies.push(Reply::Nfy { removal: false, payload: put.to_bytes() });
            for m in joined.missed {
                let said = Said::Text { text: m.text, format: m.format };
                replies.push(Reply::Sdg { payload: circle::circle_message(&id, &m.sender, None, &said).to_bytes() });
            }
            if !self.circles.has_joined(&id) {
                self.circles.inner().joined.push(id);
            }
        }
        Ok(replies)
    }

    /// `SDG` to a circle: text, typing or a nudge, from this endpoint.
    pub(super) async fn sdg_to_circle(&mut self, user: &Arc<OnlineUser>, message: RoutedMessage) -> Handled {
        let circle = self.joined_circle(user, &message)?;
        let said = Said::of(&message).ok_or(ErrorCode::InvalidParameter)?;
        self.backend().say_in_circle(user, &circle, said).await?;
        Ok(Flow::Continue)
    }

    /// `PUT` to a circle: the member's roster entry or the circle's
    /// presence. Taken and answered; the roster is the server's to keep.
    pub(super) fn put_to_circle(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        message: RoutedMessage,
        w: &mut Writer,
    ) -> Handled {
        self.joined_circle(user, &message)?;
        if message.content.get("Content-Type") != Some(circle::CIRCLES_XML) {
            return Err(ErrorCode::InvalidParameter);
        }
        let doc = CircleDocument::parse(&message.body).ok_or(ErrorCode::InvalidParameter)?;
        // A member may publish only themselves into the roster.
        if doc.roster.iter().any(|h| !h.eq_ignore_ascii_case(&user.handle)) {
            return Err(ErrorCode::InvalidParameter);
        }
        w.push(&Reply::PutOk { trid, payload: bytes::Bytes::new() });
        Ok(Flow::Continue)
    }

    /// The circle a routed message from this endpoint is to, if it joined it.
    fn joined_circle(&self, user: &OnlineUser, message: &RoutedMessage) -> Result<CircleId, ErrorCode> {
        super::routed::check_sender(user, message)?;
        let circle = message.to().as_ref().and_then(CircleId::of_address).ok_or(ErrorCode::InvalidParameter)?;
        if !self.circles.has_joined(&circle) {
            return Err(ErrorCode::InvalidCircleMembership);
        }
        Ok(circle)
    }

    /// A circle's event, for an endpoint that joined the circle.
    pub(super) fn circle_event(&mut self, event: NsEvent, w: &mut Writer) {
        let Some(user) = self.user() else { return };
        match event {
            // Only a client with circles reads its book again for them.
            NsEvent::CirclesChanged { .. } if w.dialect.has_circles() => self.push_lists_changed(w),
            NsEvent::CircleRoster { circle, members } if self.circles.has_joined(&circle) => {
                let doc = CircleDocument { roster: members, presence: None };
                let put = circle::circle_notification(&user.handle, &circle, NotifType::Partial, Some(&doc));
                w.push(&Reply::Nfy { removal: false, payload: put.to_bytes() });
            }
            NsEvent::CircleLeft { circle, who } if self.circles.has_joined(&circle) => {
                if who.eq_ignore_ascii_case(&user.handle) {
                    self.circles.inner().joined.retain(|c| *c != circle);
                }
                let left = circle::left_notification(&user.handle, &circle, &who);
                w.push(&Reply::Nfy { removal: true, payload: left.to_bytes() });
            }
            NsEvent::CircleSaid { circle, id, from, from_endpoint, said, .. } if self.circles.has_joined(&circle) => {
                // Not back to the endpoint that said it.
                if from.eq_ignore_ascii_case(&user.handle) && from_endpoint == user.machine {
                    return;
                }
                let endpoint = from_endpoint.map(|m| m.to_string());
                let message = circle::circle_message(&circle, &from, endpoint.as_deref(), &said);
                w.push(&Reply::Sdg { payload: message.to_bytes() });
                if id > 0 {
                    let backend = self.shared.backend.clone();
                    tokio::spawn(async move { backend.circle_seen(&user, &circle, id).await });
                }
            }
            // Events of circles this endpoint has not joined.
            _ => {}
        }
    }
}
