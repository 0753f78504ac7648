//! The session's own requests: the version handshake, ping, state changes,
//! switchboard referrals and the small settings commands.

use std::sync::Arc;

use backend::presence::OnlineUser;
use bytes::Bytes;
use msnp::dialect::negotiate;
use msnp::{ErrorCode, OnlineState, Reply, TrId};

use super::NsSession;
use super::dispatch::Handled;
use crate::connection::{Flow, Writer};

/// The shields configuration `GCF` hands out: no client is refused.
const SHIELDS: &str = r#"<?xml version="1.0" encoding="utf-8" ?><config><shield><cli maj="7" min="0" minbld="0" maxbld="9999" deny=" " /></shield><block></block></config>"#;

/// What a state change sets.
pub(super) struct NewState {
    pub state: OnlineState,
    pub caps: Option<msnp::endpoint::Capabilities>,
    pub msn_object: Option<String>,
}

impl NsSession {
    pub(super) fn png(&mut self, w: &mut Writer) -> Handled {
        w.push(&Reply::Qng { interval: self.shared.config.ping_interval });
        Ok(Flow::Continue)
    }

    pub(super) fn ver(&mut self, trid: TrId, dialects: &[String], w: &mut Writer) -> Handled {
        match negotiate(dialects.iter().map(String::as_str), &self.shared.config.dialects) {
            Some(d) => {
                self.negotiated = true;
                w.dialect = d;
                w.push(&Reply::Ver { trid, dialect: Some(d) });
                Ok(Flow::Continue)
            }
            None => {
                w.push(&Reply::Ver { trid, dialect: None });
                Ok(Flow::Close)
            }
        }
    }

    pub(super) fn inf(&mut self, trid: TrId, w: &mut Writer) -> Handled {
        w.push(&Reply::Inf { trid, packages: vec![msnp::dialect::AuthScheme::Md5] });
        Ok(Flow::Continue)
    }

    /// Echoes the client's own version everywhere: that never triggers an
    /// upgrade prompt.
    pub(super) fn cvr(&mut self, trid: TrId, args: &[String], w: &mut Writer) -> Handled {
        let version = args.get(5).ok_or(ErrorCode::BadCvr)?;
        w.push(&Reply::Cvr {
            trid,
            recommended: version.clone(),
            minimum: version.clone(),
            download_url: "http://messenger.invalid/download".into(),
            info_url: "http://messenger.invalid/".into(),
        });
        Ok(Flow::Continue)
    }

    pub(super) async fn chg(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        state: OnlineState,
        caps: Option<msnp::endpoint::Capabilities>,
        msn_object: Option<String>,
        w: &mut Writer,
    ) -> Handled {
        let (client_id, extended_caps) = (caps.map(|c| c.basic), caps.map_or(0, |c| c.extended));
        let reply = Reply::Chg { trid, state, client_id, extended_caps, msn_object: msn_object.clone() };
        self.change_state(user, trid, NewState { state, caps, msn_object }, Some(reply), w).await
    }

    /// A change of state, from `CHG` or (MSNP21) a published user
    /// document: `answer` goes first, then the contacts' presence if this
    /// is the first, the challenges, and what waited while invisible.
    pub(super) async fn change_state(
        &mut self,
        user: &Arc<OnlineUser>,
        trid: TrId,
        new: NewState,
        answer: Option<Reply>,
        w: &mut Writer,
    ) -> Handled {
        let NewState { state, caps, msn_object } = new;
        let first = !user.is_receiving();
        let was_visible = user.presence_line().is_some();
        let backend = self.shared.backend.clone();
        let initial = backend.change_state(user, state, caps, msn_object).await?;
        if let Some(answer) = answer {
            w.push(&answer);
        }
        for contact in initial {
            self.push_presence(w, Some(trid), contact);
        }
        if first {
            self.start_challenges(w);
        }
        if !was_visible && state.is_visible() {
            self.offer_offline_messages(user, first, w).await;
        }
        Ok(Flow::Continue)
    }

    pub(super) async fn xfr_sb(&mut self, user: &Arc<OnlineUser>, trid: TrId, w: &mut Writer) -> Handled {
        let (cookie, elsewhere) = self.shared.backend.request_switchboard(user).await?;
        let address = elsewhere.unwrap_or_else(|| self.sb_address());
        w.push(&Reply::XfrSb { trid, address, cookie });
        Ok(Flow::Continue)
    }

    pub(super) async fn uux(&mut self, user: &Arc<OnlineUser>, trid: TrId, payload: &[u8], w: &mut Writer) -> Handled {
        let text = std::str::from_utf8(payload).map_err(|_| ErrorCode::InvalidParameter)?;
        let backend = &self.shared.backend;
        // A document with endpoint data (MSNP16+) says what this endpoint
        // is as well as, perhaps, the personal message; any other is the
        // personal message, kept as it came.
        match msnp::personal::UuxDocument::parse(text) {
            Some(doc) if doc.describes_endpoint => {
                if let Some(personal) = &doc.personal {
                    backend.set_personal_message(user, personal).await?;
                }
                backend.describe_endpoint(user, &doc);
            }
            _ => backend.set_personal_message(user, text).await?,
        }
        w.push(&Reply::Uux { trid });
        Ok(Flow::Continue)
    }

    pub(super) fn gcf(&mut self, _user: &Arc<OnlineUser>, trid: TrId, file: String, w: &mut Writer) -> Handled {
        w.push(&Reply::Gcf { trid, file, payload: Bytes::from_static(SHIELDS.as_bytes()) });
        Ok(Flow::Continue)
    }

    pub(super) fn url(&mut self, _user: &Arc<OnlineUser>, trid: TrId, service: &str, w: &mut Writer) -> Handled {
        // The bound port: the configured one may be 0.
        let base = match self.shared.http_port() {
            Some(port) => format!("http://{}:{port}", self.host()),
            None => format!("http://{}", self.host()),
        };
        w.push(&Reply::Url {
            trid,
            rru: format!("/{}", service.to_ascii_lowercase()),
            url: format!("{base}/status.json"),
            id: 2,
        });
        Ok(Flow::Continue)
    }

    pub(super) fn ims(&mut self, user: &Arc<OnlineUser>, trid: TrId, on: bool, w: &mut Writer) -> Handled {
        self.shared.backend.set_accepts_invitations(user, on);
        w.push(&Reply::Ims { trid, on });
        Ok(Flow::Continue)
    }
}
