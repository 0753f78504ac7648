//! Signing in to a notification server, sans I/O: the dispatch referral,
//! `VER`, `INF` or `CVR`, and `USR` by MD5 (MSNP2-7), Passport (MSNP8-14)
//! or single sign-on (MSNP15+), up to the login profile.
//!
//! One implementation for every client of the protocol in this project (the
//! `msn` client, `msn-load`, the tests): the caller owns the sockets and
//! HTTP, and feeds [`SignIn`] each frame the server sends; it answers with
//! the next [`Action`].

use bytes::Bytes;

use crate::dialect::{AuthScheme, Dialect};
use crate::error::ErrorCode;
use crate::frame::Frame;
use crate::reply::{MalformedReply, Reply};
use crate::request::{NsRequest, UsrStep};
use crate::types::TrId;

/// How many times a server may refer the client elsewhere before the client
/// gives up (dispatch → notification is one).
pub const MAX_REFERRALS: usize = 3;

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request, then feed the next frame.
    Send(NsRequest),
    /// Feed the next frame (more of the same answer follows).
    Receive,
    /// Close this connection, connect to `host:port`, then call
    /// [`SignIn::connected`].
    Connect(String),
    /// Get a Passport ticket for this challenge (the nexus, then the login
    /// service), then call [`SignIn::ticket`].
    FetchTicket(String),
    /// Ask the RST service for a `messengerclear.live.com` token under
    /// `policy` (and the others the client uses), then call
    /// [`SignIn::sso_token`] with its ticket and session key.
    FetchSsoToken { policy: String },
    /// Signed in.
    Done(SignedIn),
}

/// What a finished sign-in learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The friendly name `USR OK` gave, in dialects that carry one.
    pub friendly: Option<String>,
    /// The body of the login profile message (`text/x-msmsgsprofile`).
    pub profile: Bytes,
    /// The first TrID free for the session's own requests.
    pub next_trid: TrId,
}

/// Why a sign-in stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error("the server speaks none of the dialects offered")]
    NoCommonDialect,
    #[error("the server refused the sign-in with {0}")]
    Refused(ErrorCode),
    #[error("referred elsewhere more than {MAX_REFERRALS} times")]
    TooManyReferrals,
    #[error("unexpected `{0}` while signing in")]
    Unexpected(String),
    #[error(transparent)]
    Malformed(#[from] MalformedReply),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Version,
    ClientVersion,
    Initiate,
    Challenged,
    /// `USR SSO S` came with this nonce; the token is being fetched.
    SsoChallenged {
        nonce: String,
    },
    /// `USR OK` came; the profile (after `SBS` in MSNP11+) is next.
    Accepted {
        friendly: Option<String>,
    },
    Finished,
}

/// One sign-in in progress.
#[derive(Debug, Clone)]
pub struct SignIn {
    dialect: Dialect,
    account: String,
    /// The MD5 password (MSNP2-7); Passport dialects fetch a ticket instead.
    password: String,
    client_version: Vec<String>,
    trid: TrId,
    stage: Stage,
    referrals: usize,
    /// The endpoint this sign-in is, in dialects with points of presence.
    machine: Option<crate::endpoint::MachineGuid>,
}

impl SignIn {
    /// Signs `account` in with `dialect`. `client_version` is what `CVR`
    /// says after its TrID (locale, OS, build, client name) up to the
    /// account, which is appended.
    pub fn new(dialect: Dialect, account: &str, password: &str, client_version: &[&str]) -> SignIn {
        SignIn {
            dialect,
            account: account.to_string(),
            password: password.to_string(),
            client_version: client_version.iter().map(|s| s.to_string()).collect(),
            trid: 0,
            stage: Stage::Version,
            referrals: 0,
            machine: None,
        }
    }

    /// Names the machine signing in (MSNP16+: `USR SSO S` carries it, and
    /// several machines of one account stay signed in together).
    pub fn on_machine(mut self, machine: crate::endpoint::MachineGuid) -> SignIn {
        self.machine = Some(machine);
        self
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn next_trid(&mut self) -> TrId {
        self.trid += 1;
        self.trid
    }

    /// The first request on a fresh connection.
    pub fn start(&mut self) -> Action {
        self.stage = Stage::Version;
        let trid = self.next_trid();
        Action::Send(NsRequest::Ver { trid, dialects: vec![self.dialect.to_string(), "CVR0".into()] })
    }

    /// The new connection a referral asked for is open.
    pub fn connected(&mut self) -> Action {
        self.start()
    }

    /// The Passport ticket for the challenge.
    pub fn ticket(&mut self, ticket: String) -> Action {
        let trid = self.next_trid();
        Action::Send(NsRequest::Usr { trid, step: UsrStep::TwnResponse { ticket } })
    }

    /// The messenger ticket and its session key (the RST `BinarySecret`,
    /// decoded) for an SSO challenge; `iv` is eight random bytes.
    pub fn sso_token(&mut self, ticket: String, secret: &[u8], iv: [u8; 8]) -> Action {
        let Stage::SsoChallenged { nonce } = std::mem::replace(&mut self.stage, Stage::Challenged) else {
            return Action::Receive;
        };
        let blob = crate::sso::login_blob(secret, &nonce, iv);
        let trid = self.next_trid();
        let machine = self.machine.clone().filter(|_| self.dialect.has_points_of_presence());
        Action::Send(NsRequest::Usr { trid, step: UsrStep::SsoResponse { ticket, blob, machine } })
    }

    fn initiate(&mut self) -> Action {
        self.stage = Stage::Initiate;
        let trid = self.next_trid();
        let handle = self.account.clone();
        let step = match self.dialect.auth_scheme() {
            AuthScheme::Md5 => UsrStep::Md5Initiate { handle },
            AuthScheme::Twn => UsrStep::TwnInitiate { handle },
            AuthScheme::Sso => UsrStep::SsoInitiate { handle },
        };
        Action::Send(NsRequest::Usr { trid, step })
    }

    /// Feeds one frame the server sent.
    pub fn receive(&mut self, frame: &Frame) -> Result<Action, SignInError> {
        let reply = Reply::parse(frame, self.dialect)?;
        let unexpected = || SignInError::Unexpected(frame.line.clone());
        if let Reply::Error { code, .. } = reply {
            return Err(SignInError::Refused(code));
        }
        let d = self.dialect;
        Ok(match (&self.stage, reply) {
            (Stage::Version, Reply::Ver { dialect, .. }) => {
                if dialect != Some(d) {
                    return Err(SignInError::NoCommonDialect);
                }
                let trid = self.next_trid();
                if d.has_inf() {
                    self.stage = Stage::ClientVersion;
                    Action::Send(NsRequest::Inf { trid })
                } else {
                    self.stage = Stage::ClientVersion;
                    let mut args = self.client_version.clone();
                    args.push(self.account.clone());
                    if d.xfr_ns_carries_redirect_blob() {
                        args.push(redirect_blob(self.referrals as u32));
                    }
                    Action::Send(NsRequest::Cvr { trid, args })
                }
            }
            (Stage::ClientVersion, Reply::Inf { .. } | Reply::Cvr { .. }) => self.initiate(),
            (Stage::Initiate, Reply::XfrNs { address, .. }) => {
                self.referrals += 1;
                if self.referrals > MAX_REFERRALS {
                    return Err(SignInError::TooManyReferrals);
                }
                Action::Connect(address)
            }
            (Stage::Initiate, Reply::UsrChallenge { package, challenge, .. }) if package == d.auth_scheme() => {
                self.stage = Stage::Challenged;
                match package {
                    AuthScheme::Md5 => {
                        let response = crate::challenge::md5_response(&challenge, &self.password);
                        let trid = self.next_trid();
                        Action::Send(NsRequest::Usr { trid, step: UsrStep::Md5Response { response } })
                    }
                    AuthScheme::Twn => Action::FetchTicket(challenge),
                    AuthScheme::Sso => return Err(unexpected()),
                }
            }
            (Stage::Initiate, Reply::Policies { .. }) if d.sends_policies_at_login() => Action::Receive,
            (Stage::Initiate, Reply::UsrSsoChallenge { policy, nonce, .. }) if d.auth_scheme() == AuthScheme::Sso => {
                self.stage = Stage::SsoChallenged { nonce };
                Action::FetchSsoToken { policy }
            }
            (Stage::Challenged, Reply::UsrOk { friendly, .. }) => {
                let friendly = d.usr_ok_has_friendly().then_some(friendly);
                self.stage = Stage::Accepted { friendly };
                Action::Receive
            }
            (Stage::Accepted { .. }, Reply::Sbs) if d.sends_sbs_after_login() => Action::Receive,
            (Stage::Accepted { friendly }, Reply::Msg { payload, .. }) => {
                let friendly = friendly.clone();
                self.stage = Stage::Finished;
                Action::Done(SignedIn { friendly, profile: payload, next_trid: self.trid + 1 })
            }
            _ => return Err(unexpected()),
        })
    }
}

/// The redirect blob of MSNP21's `CVR` and `XFR ... NS ... U D`: base64 of
/// `Version: 1` and how many times the client has been referred. A client
/// sends back the count the last referral gave it.
pub fn redirect_blob(count: u32) -> String {
    crate::base64::encode(format!("Version: 1\r\nXfrCount: {count}\r\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Frame {
        Frame { line: text.into(), payload: None }
    }

    fn sent(action: Action, d: Dialect) -> String {
        match action {
            Action::Send(r) => r.to_frame(d).line,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn md5_through_the_referral() {
        let d = Dialect::Msnp2;
        let mut s = SignIn::new(d, "alice@example.com", "secret", &[]);
        assert_eq!(sent(s.start(), d), "VER 1 MSNP2 CVR0");
        assert_eq!(sent(s.receive(&line("VER 1 MSNP2")).unwrap(), d), "INF 2");
        assert_eq!(sent(s.receive(&line("INF 2 MD5")).unwrap(), d), "USR 3 MD5 I alice@example.com");
        assert_eq!(s.receive(&line("XFR 3 NS 10.0.0.5:1863")).unwrap(), Action::Connect("10.0.0.5:1863".into()));
        assert_eq!(sent(s.connected(), d), "VER 4 MSNP2 CVR0");
        s.receive(&line("VER 4 MSNP2")).unwrap();
        s.receive(&line("INF 5 MD5")).unwrap();
        let answer = sent(s.receive(&line("USR 6 MD5 S 1013928519.693957190")).unwrap(), d);
        assert_eq!(answer, format!("USR 7 MD5 S {}", crate::challenge::md5_response("1013928519.693957190", "secret")));
        assert_eq!(s.receive(&line("USR 7 OK alice@example.com Alice")).unwrap(), Action::Receive);
        let profile = Frame { line: "MSG Hotmail Hotmail 2".into(), payload: Some(Bytes::from_static(b"hi")) };
        assert_eq!(
            s.receive(&profile).unwrap(),
            Action::Done(SignedIn { friendly: Some("Alice".into()), profile: Bytes::from_static(b"hi"), next_trid: 8 })
        );
    }

    #[test]
    fn passport_asks_for_a_ticket_and_skips_sbs() {
        let d = Dialect::Msnp11;
        let mut s = SignIn::new(d, "bob@example.com", "pw", &["0x0409", "winnt", "5.1"]);
        s.start();
        assert_eq!(sent(s.receive(&line("VER 1 MSNP11")).unwrap(), d), "CVR 2 0x0409 winnt 5.1 bob@example.com");
        assert_eq!(sent(s.receive(&line("CVR 2 7.0 7.0 7.0 a b")).unwrap(), d), "USR 3 TWN I bob@example.com");
        assert_eq!(
            s.receive(&line("USR 3 TWN S lc=1033,id=507")).unwrap(),
            Action::FetchTicket("lc=1033,id=507".into())
        );
        assert_eq!(sent(s.ticket("t=x&p=y".into()), d), "USR 4 TWN S t=x&p=y");
        assert_eq!(s.receive(&line("USR 4 OK bob@example.com 1 0")).unwrap(), Action::Receive);
        assert_eq!(s.receive(&line("SBS 0 null")).unwrap(), Action::Receive);
        let done = s.receive(&Frame { line: "MSG Hotmail Hotmail 0".into(), payload: Some(Bytes::new()) }).unwrap();
        assert!(matches!(done, Action::Done(SignedIn { friendly: None, next_trid: 5, .. })));
    }

    #[test]
    fn single_sign_on_proves_the_session_key() {
        let d = Dialect::Msnp15;
        let mut s = SignIn::new(d, "carol@example.com", "pw", &["0x0409", "winnt", "5.1"]);
        s.start();
        s.receive(&line("VER 1 MSNP15")).unwrap();
        assert_eq!(sent(s.receive(&line("CVR 2 8.5 8.5 8.5 a b")).unwrap(), d), "USR 3 SSO I carol@example.com");
        let policies = Frame { line: "GCF 0 10".into(), payload: Some(Bytes::from_static(b"<Policies>")) };
        assert_eq!(s.receive(&policies).unwrap(), Action::Receive);
        let nonce = crate::sso::nonce(&[5; crate::sso::NONCE_LEN]);
        assert_eq!(
            s.receive(&line(&format!("USR 3 SSO S MBI_KEY_OLD {nonce}"))).unwrap(),
            Action::FetchSsoToken { policy: "MBI_KEY_OLD".into() }
        );
        let secret = [1u8; 24];
        let usr = sent(s.sso_token("t=a&p=b".into(), &secret, [2; 8]), d);
        let blob = usr.strip_prefix("USR 4 SSO S t=a&p=b ").unwrap();
        assert!(crate::sso::verify_login_blob(&secret, &nonce, blob));
        assert_eq!(s.receive(&line("USR 4 OK carol@example.com 1 0")).unwrap(), Action::Receive);
        assert_eq!(s.receive(&line("SBS 0 null")).unwrap(), Action::Receive);
        let done = s.receive(&Frame { line: "MSG Hotmail Hotmail 0".into(), payload: Some(Bytes::new()) }).unwrap();
        assert!(matches!(done, Action::Done(SignedIn { friendly: None, next_trid: 5, .. })));
    }

    #[test]
    fn refusals_and_surprises_end_it() {
        let d = Dialect::Msnp8;
        let mut s = SignIn::new(d, "a@b.c", "pw", &[]);
        s.start();
        assert_eq!(s.receive(&line("VER 1 0")), Err(SignInError::NoCommonDialect));
        let mut s = SignIn::new(d, "a@b.c", "pw", &[]);
        s.start();
        s.receive(&line("VER 1 MSNP8")).unwrap();
        s.receive(&line("CVR 2 a a a b c")).unwrap();
        assert_eq!(s.receive(&line("911 3")), Err(SignInError::Refused(ErrorCode::AuthenticationFailed)));
        let mut s = SignIn::new(d, "a@b.c", "pw", &[]);
        s.start();
        assert!(matches!(s.receive(&line("QNG 50")), Err(SignInError::Unexpected(_))));
        let mut s = SignIn::new(Dialect::Msnp2, "a@b.c", "pw", &[]);
        let mut referral = || {
            s.start();
            s.receive(&line("VER 1 MSNP2")).unwrap();
            s.receive(&line("INF 2 MD5")).unwrap();
            s.receive(&line("XFR 3 NS 10.0.0.1:1863"))
        };
        for _ in 0..MAX_REFERRALS {
            assert!(matches!(referral(), Ok(Action::Connect(_))));
        }
        assert_eq!(referral(), Err(SignInError::TooManyReferrals));
    }
}
