//! `USR`: MD5 logins (MSNP2-7), Passport/TWN logins (MSNP8-14) and single
//! sign-on (MSNP15+).

use std::time::{SystemTime, UNIX_EPOCH};

use backend::Backend;
use backend::service::{LoginGrant, LoginProof};
use bytes::Bytes;
use msnp::dialect::AuthScheme;
use msnp::mime::LoginProfile;
use msnp::request::UsrStep;
use msnp::{ErrorCode, Reply, TrId};

use super::{Challenged, Login, NsSession, Role, system_message};
use crate::connection::{Flow, Writer};

/// The policies MSNP13+ clients are sent before the login challenge: no
/// client version is refused (SHIELDS), and how often the address book
/// may be fetched again after a change notice (ABCH).
const POLICIES: &str = concat!(
    r#"<Policies><Policy type="SHIELDS"><config><shield><cli maj="7" min="0" minbld="0" maxbld="9999" deny=" " /></shield><block></block></config></Policy>"#,
    r#"<Policy type="ABCH"><policy><set id="push" service="ABCH" priority="200"><r id="pushstorage" threshold="180000" /></set>"#,
    r#"<set id="using_notifications" service="ABCH" priority="100"><r id="pullab" threshold="0" timer="1800000" trigger="Timer" /></set></policy></Policy></Policies>"#
);

/// Failed password attempts allowed on one connection before it is closed.
const MAX_FAILED_LOGINS: u8 = 3;

fn unix_time() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl NsSession {
    pub(super) async fn usr(&mut self, trid: TrId, step: UsrStep, w: &mut Writer) -> Flow {
        if matches!(self.login, Login::SignedIn(_)) {
            w.push(&Reply::error(ErrorCode::AlreadyLoggedIn, trid));
            return Flow::Continue;
        }
        if step.scheme() != w.dialect.auth_scheme() {
            w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
            return Flow::Continue;
        }
        let response = match step {
            UsrStep::Md5Initiate { handle } | UsrStep::TwnInitiate { handle } | UsrStep::SsoInitiate { handle } => {
                return self.initiate(trid, handle, w);
            }
            response => response,
        };
        let Login::Challenged(challenged) = std::mem::replace(&mut self.login, Login::Initial) else {
            w.push(&Reply::error(ErrorCode::InvalidParameter, trid));
            return Flow::Continue;
        };
        let Challenged { handle, sent_handle, challenge } = *challenged;
        let mut machine = None;
        let proof = match &response {
            UsrStep::Md5Response { response } => LoginProof::Md5 { challenge: &challenge, response },
            UsrStep::TwnResponse { ticket } => LoginProof::Ticket(ticket),
            UsrStep::SsoResponse { ticket, blob, machine: named } => {
                // A dialect with points of presence names the machine:
                // without it there is no endpoint to sign in (911).
                if w.dialect.has_points_of_presence() && named.is_none() {
                    w.push(&Reply::error(ErrorCode::AuthenticationFailed, trid));
                    return Flow::Close;
                }
                machine = named.clone();
                LoginProof::SingleSignOn { ticket, nonce: &challenge, blob }
            }
            // Sent on above; a circle ticket is no sign-in (dispatch sends
            // it to `usr_circles` once signed in).
            UsrStep::Md5Initiate { .. }
            | UsrStep::TwnInitiate { .. }
            | UsrStep::SsoInitiate { .. }
            | UsrStep::CircleTicket { .. } => {
                return Flow::Continue;
            }
        };
        let result = self.backend().complete_login(&handle, proof, self.peer.ip()).await;
        self.finish_login(trid, result, sent_handle, machine, w).await
    }

    /// `USR ... I handle`: the dispatch role refers the client on; the
    /// notification role answers with the dialect's challenge.
    fn initiate(&mut self, trid: TrId, handle: String, w: &mut Writer) -> Flow {
        let parsed = match Backend::check_login_handle(&handle) {
            Ok(h) => h,
            Err(code) => {
                w.push(&Reply::error(code, trid));
                return Flow::Continue;
            }
        };
        if self.role == Role::Dispatch {
            let address = match &self.shared.cluster {
                // The user's notification node in the cluster.
                Some(cluster) => match cluster.pick_notification(parsed.key(), None) {
                    Some(address) => address,
                    None => {
                        w.push(&Reply::error(ErrorCode::ServerUnavailable, trid));
                        return Flow::Close;
                    }
                },
                None => format!("{}:{}", self.host(), self.shared.ns_port),
            };
            let current = format!("{}:{}", self.host(), self.local.port());
            w.push(&Reply::XfrNs { trid, address, current });
            self.referred = true;
            return Flow::Close;
        }
        let package = w.dialect.auth_scheme();
        let challenge = Backend::start_login(package, unix_time());
        if w.dialect.sends_policies_at_login() {
            w.push(&Reply::Policies { payload: bytes::Bytes::from_static(POLICIES.as_bytes()) });
        }
        match package {
            AuthScheme::Sso => w.push(&Reply::UsrSsoChallenge {
                trid,
                policy: msnp::sso::POLICY.to_string(),
                nonce: challenge.clone(),
            }),
            AuthScheme::Md5 | AuthScheme::Twn => {
                w.push(&Reply::UsrChallenge { trid, package, challenge: challenge.clone() })
            }
        }
        self.login = Login::Challenged(Box::new(Challenged { handle: parsed, sent_handle: handle, challenge }));
        Flow::Continue
    }

    async fn finish_login(
        &mut self,
        trid: TrId,
        result: Result<LoginGrant, ErrorCode>,
        sent_handle: String,
        machine: Option<msnp::endpoint::MachineGuid>,
        w: &mut Writer,
    ) -> Flow {
        let LoginGrant { account, ticket } = match result {
            Ok(grant) => grant,
            Err(code) => {
                w.push(&Reply::error(code, trid));
                self.failed_logins += 1;
                return if self.failed_logins >= MAX_FAILED_LOGINS { Flow::Close } else { Flow::Continue };
            }
        };
        // The MSPAuth token of the profile is the credential for the web
        // services while this sign-in lasts: a fresh one, so that the
        // ticket, which crossed the connection in `USR`, is worth no more
        // than its own lifetime.
        let mspauth = backend::passport::web_token();
        let signing_in =
            self.backend().sign_in(&account, w.dialect, machine, mspauth.clone(), ticket, self.events.clone());
        let user = match signing_in.await {
            Ok((user, loaded)) => {
                self.loaded_lists = loaded.map(Box::new);
                user
            }
            Err(code) => {
                w.push(&Reply::error(code, trid));
                return Flow::Close;
            }
        };
        tracing::info!(peer = %self.peer, handle = %account.handle, dialect = %w.dialect, "signed in");
        w.push(&Reply::UsrOk { trid, handle: sent_handle, friendly: account.friendly.clone() });
        if w.dialect.sends_sbs_after_login() {
            w.push(&Reply::Sbs);
        }
        let profile = LoginProfile {
            login_time: unix_time(),
            email: account.handle.clone(),
            member_id: account.id as u64,
            client_ip: self.peer.ip().to_string(),
            client_port: self.peer.port(),
            mspauth,
        };
        w.push(&system_message(profile.to_message(w.dialect).to_bytes()));
        // Clients with points of presence wait for their own (empty) `UBX`
        // before they go on; their endpoints follow in later ones. (MSNP21
        // has no `UBX`: its own document comes as it publishes.)
        if w.dialect.shows_endpoints_in_ubx() {
            w.push(&Reply::Ubx { handle: account.handle.clone(), payload: Bytes::new() });
        }
        self.login = Login::SignedIn(user);
        Flow::Continue
    }
}
