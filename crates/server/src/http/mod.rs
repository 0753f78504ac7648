//! The HTTP side: the Passport nexus and login service that MSNP8+ clients
//! fetch their tickets from, a health check and a status document.
//!
//! Requests are read by a small HTTP/1.x reader of our own rather than a
//! full HTTP stack because real clients need things such stacks refuse or
//! change: Gaim 1.x sends `GET /rdr/pprdr.asp` with no HTTP version and no
//! headers, and the official client matches the `PassportURLs` header name
//! case-sensitively. Everything but the Passport paths is handed to an axum
//! router. One request per connection, answered with `Connection: close`,
//! because some clients read the reply until the server closes; the one
//! exception is the HTTP gateway, whose clients keep one connection open
//! for all their polls when they ask to (Pidgin treats a close as an error).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod reader;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use msnp::passport::parse_authorization;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tower::ServiceExt;

use crate::gateway::{GatewayAnswer, GatewayRequest, Gateways};
use crate::shared::Shared;
use crate::web::WebState;
use reader::{MAX_BODY, Request, Unread, read_request};

/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What every HTTP connection is served with besides the shared state: the
/// axum routes and the gateway's sessions.
#[derive(Clone)]
pub struct Web {
    pub router: Router,
    pub gateways: Arc<Gateways>,
    pub pages: Arc<crate::messenger::Pages>,
}

/// The routes served by axum (everything but the Passport paths): health,
/// status, metrics, and the web pages, on one state.
pub fn router(shared: Arc<Shared>, pages: Arc<crate::messenger::Pages>) -> Router {
    let state = WebState { shared, started: Instant::now(), sessions: Default::default() };
    crate::web::routes()
        .merge(crate::messenger::routes())
        .layer(axum::Extension(pages))
        .route("/health", get(|| async { "ok\n" }))
        .route("/status.json", get(status))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<WebState>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::render(&state.shared, state.started.elapsed()),
    )
}

async fn status(State(state): State<WebState>) -> axum::Json<serde_json::Value> {
    let backend = &state.shared.backend;
    let c = &state.shared.counters;
    let b = backend.stats();
    axum::Json(serde_json::json!({
        "users_online": backend.registry().len(),
        "switchboard_sessions": backend.switchboards().len(),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "challenges_failed": c.challenges_failed.load(Ordering::Relaxed),
        "challenges_unanswered": c.challenges_unanswered.load(Ordering::Relaxed),
        "challenge_unknown_products": c.unknown_products.load(Ordering::Relaxed),
        "refused_connections": c.refused_connections.load(Ordering::Relaxed),
        "abuse_disconnects": c.abuse_disconnects.load(Ordering::Relaxed),
        "rate_limited": {
            "messages": b.rate_limited_messages.load(Ordering::Relaxed),
            "data": b.rate_limited_data.load(Ordering::Relaxed),
            "invitations": b.rate_limited_invitations.load(Ordering::Relaxed),
            "list_changes": b.rate_limited_list_changes.load(Ordering::Relaxed),
            "state_changes": b.rate_limited_state_changes.load(Ordering::Relaxed),
            "offline_messages": b.rate_limited_offline_messages.load(Ordering::Relaxed),
            "sign_ups": b.rate_limited_sign_ups.load(Ordering::Relaxed),
        },
        "cluster": state.shared.cluster.as_ref().map(|c| serde_json::json!({
            "node": c.node_id(),
            "nodes": c.nodes(),
            "rejected_frames": c.rejected(),
        })),
        "logins": {
            "succeeded": b.logins_succeeded.load(Ordering::Relaxed),
            "failed": b.logins_failed.load(Ordering::Relaxed),
            "slowed": b.logins_slowed.load(Ordering::Relaxed),
            "refused": b.logins_refused.load(Ordering::Relaxed),
        },
    }))
}

/// A response about to be written; header names are written as given.
struct Response {
    status: u16,
    reason: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
}

impl Response {
    fn empty(status: u16, reason: &'static str) -> Response {
        Response { status, reason, headers: Vec::new(), body: Vec::new(), keep_alive: false }
    }

    fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, self.reason);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        let connection = if self.keep_alive { "Keep-Alive" } else { "close" };
        out.push_str(&format!("Content-Length: {}\r\nConnection: {connection}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Serves one HTTP connection (plain or TLS): one request, then close, or
/// for the gateway as many as the client sends on a kept-alive connection.
/// `tls` says whether the client reached us over TLS.
pub async fn serve<S>(mut stream: S, peer: SocketAddr, local: SocketAddr, tls: bool, shared: Arc<Shared>, web: Web)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut unread = Vec::new();
    loop {
        let request = match timeout(READ_TIMEOUT, read_request(&mut stream, &mut unread)).await {
            Ok(Ok(r)) => r,
            Ok(Err(Unread::TooLarge)) => {
                let _ = stream.write_all(&Response::empty(413, "Payload Too Large").to_bytes()).await;
                return;
            }
            Ok(Err(Unread::Closed)) => return,
            _ => {
                let _ = stream.write_all(&Response::empty(400, "Bad Request").to_bytes()).await;
                return;
            }
        };
        // Boxed, each request's future alone: a connection that waits (a
        // held gateway poll, thousands at once) holds only what its own
        // request needs, not the largest request's state.
        if request.path() == crate::messenger::SOCKET_PATH {
            let nothing_more = unread.is_empty();
            crate::messenger::serve_socket(
                stream,
                &request.method,
                &request.headers,
                nothing_more,
                &shared,
                &web.pages,
            )
            .await;
            return;
        }
        let response = if request.path() == "/gateway/gateway.dll" && request.method == "POST" {
            Box::pin(gateway(&web.gateways, &shared, request, peer, local, tls)).await
        } else {
            Box::pin(respond(&request, peer, local, tls, &shared, &web)).await
        };
        if stream.write_all(&response.to_bytes()).await.is_err() || !response.keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

async fn respond(
    request: &Request,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
    shared: &Arc<Shared>,
    web: &Web,
) -> Response {
    if !password_may_arrive(request.path(), tls, peer, shared.config.insecure_http_login) {
        return Response::empty(403, "Forbidden").with_header("X-Mariposa", "the login service needs HTTPS");
    }
    match request.path() {
        "/rdr/pprdr.asp" => nexus(shared, request, local, tls),
        "/login2.srf" | "/login.srf" | "/ppsecure/login.srf" => login(shared, request, peer).await,
        "/RST.srf" | "/RST2.srf" if request.method == "POST" => rst(shared, request, peer).await,
        "/OimWS/oim.asmx" if request.method == "POST" => store_offline_message(shared, request).await,
        "/rsi/rsi.asmx" if request.method == "POST" => offline_inbox(shared, request).await,
        "/abservice/abservice.asmx" | "/abservice/SharingService.asmx" if request.method == "POST" => {
            let cookie = request.header("Cookie").and_then(msnp::passport::mspauth_cookie);
            let answer = crate::address_book::serve(shared, &request.body, cookie).await;
            soap_response(answer.status, answer.body)
        }
        "/storageservice/SchematizedStore.asmx" if request.method == "POST" => {
            let base = base_url(shared, request, local, tls);
            let cookie = request.header("Cookie").and_then(msnp::passport::mspauth_cookie);
            let answer = crate::storage::serve(shared, &request.body, cookie, &base).await;
            soap_response(answer.status, answer.body)
        }
        "/profile/profile.asmx" if request.method == "POST" => {
            let answer =
                crate::directory::get_many(shared, &request.body, &base_url(shared, request, local, tls)).await;
            soap_response(answer.status, answer.body)
        }
        "/whatsnew/whatsnewservice.asmx" if request.method == "POST" => {
            let base = base_url(shared, request, local, tls);
            let answer = crate::directory::recent_activity(shared, &request.body, &base).await;
            soap_response(answer.status, answer.body)
        }
        path if path.starts_with(crate::storage::TILE_PATH) && request.method == "GET" => {
            match crate::storage::tile(shared, &path[crate::storage::TILE_PATH.len()..]).await {
                Some((mime, data)) => {
                    let mut r = Response::empty(200, "OK")
                        .with_header("Content-Type", mime)
                        .with_header("X-Content-Type-Options", "nosniff")
                        .with_header("Cache-Control", "private, max-age=3600");
                    r.body = data;
                    r
                }
                None => Response::empty(404, "Not Found"),
            }
        }
        _ => forward(web.router.clone(), request, peer, tls).await,
    }
}

/// The HTTP polling gateway: the client's MSNP bytes in, the session's out.
/// The connection stays open for the next poll when the client asked.
async fn gateway(
    gateways: &Gateways,
    shared: &Arc<Shared>,
    request: Request,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
) -> Response {
    let default_port = if tls { 443 } else { 80 };
    let mut gateway_host = host(shared, &request, local);
    if local.port() != default_port {
        gateway_host = format!("{gateway_host}:{}", local.port());
    }
    let keep_alive = request.wants_keep_alive();
    // Only the query and the body are kept: a held poll (thousands at
    // once) should not hold the request's headers for its lifespan.
    let Request { target, body, .. } = request;
    let query = target.query.unwrap_or_default();
    let asked = GatewayRequest { query: &query, body: &body, peer, local, tls, gateway_host };
    let mut response = match gateways.handle(shared, asked).await {
        GatewayAnswer::Bytes { session_header, body, sequence } => {
            let mut r = Response::empty(200, "OK")
                .with_header("X-MSN-Messenger", session_header)
                .with_header("Content-Type", "application/x-msn-messenger")
                .with_header("Cache-Control", "no-cache");
            if let Some(n) = sequence {
                r = r.with_header(crate::gateway::SEQUENCE_HEADER, n.to_string());
            }
            r.body = body.to_vec();
            r
        }
        GatewayAnswer::Refused { status, reason } => Response::empty(status, reason),
    };
    response.keep_alive = keep_alive;
    response
}

/// Passwords cross the network only inside TLS: over plain HTTP the login
/// services answer loopback clients (local tools, tests) unless the operator
/// allowed more.
fn password_may_arrive(path: &str, tls: bool, peer: SocketAddr, insecure_http_login: bool) -> bool {
    let carries_password = matches!(
        path,
        "/login2.srf"
            | "/login.srf"
            | "/ppsecure/login.srf"
            | "/RST.srf"
            | "/RST2.srf"
            | "/signup"
            | "/password"
            | "/admin/login"
            | "/messenger/login"
    );
    !carries_password || tls || peer.ip().is_loopback() || insecure_http_login
}

/// The host part of our own URLs: the public host; else the name the
/// client reached us by (so that a client that checks certificates by DNS
/// name and came as `localhost` is sent to `localhost`); else the address.
fn host(shared: &Shared, request: &Request, local: SocketAddr) -> String {
    if let Some(h) = &shared.config.public_host {
        return h.clone();
    }
    match request.host() {
        Some(h) => h,
        None if local.is_ipv6() => format!("[{}]", local.ip()),
        None => local.ip().to_string(),
    }
}

/// The scheme, host and port the client reached, for addresses of ours
/// (pictures, feeds) built into answers.
fn base_url(shared: &Shared, request: &Request, local: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}:{}", host(shared, request, local), local.port())
}

/// The nexus: where to log in, in the field set the real nexus sent
/// (clients read the `DALogin` value up to the next comma, and one crashes
/// when there is none). `DALogin` comes first because msnp11-sdk takes the
/// whole value after `DALogin=` as the URL (the login service accepts that
/// spelling, see `request_target`). Over HTTPS the value has no scheme, as
/// real Passport sent it (Gaim splits host and path at the first `/`); when
/// the service only runs over plain HTTP it says `http://`.
fn nexus(shared: &Shared, request: &Request, local: SocketAddr, tls: bool) -> Response {
    let host = host(shared, request, local);
    let (da_login, pages) = match (shared.config.https_listen, shared.https_port(), shared.config.http_listen) {
        (Some(_), Some(443), _) => (format!("{host}/login2.srf"), format!("https://{host}")),
        (Some(_), Some(port), _) => (format!("{host}:{port}/login2.srf"), format!("https://{host}:{port}")),
        _ if tls => (format!("{host}:{}/login2.srf", local.port()), format!("https://{host}:{}", local.port())),
        _ => {
            let base = format!("http://{host}:{}", shared.http_port().unwrap_or(local.port()));
            (format!("{base}/login2.srf"), base)
        }
    };
    let urls = format!(
        "DALogin={da_login},DARealm=Passport.Net,DAReg={pages}/signup,Properties={pages}/password,\
         Privacy={pages}/,GeneralRedir={pages}/,Help={pages}/,ConfigVersion=11"
    );
    Response::empty(200, "OK").with_header("PassportURLs", urls)
}

/// The login service: `Authorization: Passport1.4 ...` → a ticket, or 401.
async fn login(shared: &Shared, request: &Request, peer: SocketAddr) -> Response {
    let failed = || {
        Response::empty(401, "Unauthorized").with_header(
            "WWW-Authenticate",
            "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,cbtxt=The%20e-mail%20address%20or%20password%20is%20incorrect",
        )
    };
    let Some(credentials) = request.header("Authorization").and_then(parse_authorization) else {
        return failed();
    };
    match shared.backend.passport_login(&credentials.sign_in, &credentials.password_candidates(), peer.ip()).await {
        Ok(ticket) => Response::empty(200, "OK").with_header(
            "Authentication-Info",
            // from-PP last: some clients take everything after it.
            format!("Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='{ticket}'"),
        ),
        Err(_) => failed(),
    }
}

/// RST SOAP (MSN 7.5 and Windows Live Messenger): a WS-Trust request for
/// tokens, answered with one per service asked for, or a SOAP fault.
///
/// Each token is numbered as it was asked for (`RSTN` → `CompactN`), which
/// is how clients find theirs. The messenger token is a sign-in ticket:
/// `messenger.msn.com`'s for `USR ... TWN S` (MSNP11-14), and
/// `messengerclear.live.com`'s for `USR ... SSO S` (MSNP15+), which comes
/// with a session key (`BinarySecret`) the client must prove it holds.
/// Every other service gets a web-service ticket for the SOAP services.
async fn rst(shared: &Shared, request: &Request, peer: SocketAddr) -> Response {
    use msnp::passport::{PASSPORT_TB, parse_rst_request};
    use msnp::soap::escape_xml;
    let fault = || {
        soap_response(
            500,
            concat!(
                r#"<?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext">"#,
                r#"<S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>Authentication Failure</faultstring></S:Fault></S:Body></S:Envelope>"#
            )
            .to_string(),
        )
    };
    let Some(rst) = std::str::from_utf8(&request.body).ok().and_then(parse_rst_request) else {
        return fault();
    };
    // The password check issues the first ticket; every token answered is
    // a ticket of its own, so that a sign-in ticket is single-use.
    let Ok(first) = shared.backend.passport_login(&rst.username, &[rst.password.as_str()], peer.ip()).await else {
        return fault();
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let lifetime = shared.backend.config().ticket_lifetime.as_secs();
    let (created, expires) = (msnp::time::iso8601(now as i64), msnp::time::iso8601((now + lifetime) as i64));
    // WLM 2009's RST2.srf speaks WS-Trust 2005 (`Lifetime`), older clients'
    // RST.srf WS-Trust 2004 (`LifeTime`).
    let lifetime_tag = if request.path() == "/RST2.srf" { "wst:Lifetime" } else { "wst:LifeTime" };
    let mut responses = String::new();
    // `first` stays the anchor its siblings are issued from; it is handed
    // out itself at most once, as the `messenger.msn.com` ticket.
    let mut first_handed_out = false;
    // A client that signs in by SSO (it asks for `messengerclear.live.com`)
    // uses the `messenger.msn.com` token only for the web services (aMSN
    // reads its offline messages with it); a TWN client signs in with it.
    let signs_in_by_sso = rst.tokens.iter().any(|t| t.address.eq_ignore_ascii_case(msnp::sso::MESSENGER_SERVICE));
    for token in rst.tokens.iter().filter(|t| !t.address.eq_ignore_ascii_case(PASSPORT_TB)) {
        let address = token.address.to_ascii_lowercase();
        let single_sign_on = address == msnp::sso::MESSENGER_SERVICE;
        let proof_key: Option<[u8; msnp::sso::SECRET_LEN]> =
            single_sign_on.then(|| std::array::from_fn(|_| rand::random()));
        let ticket = if address == "messenger.msn.com" && signs_in_by_sso {
            shared.backend.issue_service_ticket(&first)
        } else if address == "messenger.msn.com" && !first_handed_out {
            first_handed_out = true;
            Ok(first.clone())
        } else if single_sign_on || address == "messenger.msn.com" {
            shared.backend.issue_sibling_ticket(&first, proof_key)
        } else {
            shared.backend.issue_service_ticket(&first)
        };
        let Ok(ticket) = ticket else { return fault() };
        let n = token.index;
        let proof = match proof_key {
            Some(key) => format!(
                "<wst:RequestedProofToken><wst:BinarySecret>{}</wst:BinarySecret></wst:RequestedProofToken>",
                msnp::base64::encode(&key)
            ),
            None => String::new(),
        };
        responses.push_str(&format!(
            concat!(
                "<wst:RequestSecurityTokenResponse><wst:TokenType>urn:passport:compact</wst:TokenType>",
                "<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{address}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>",
                "<{lifetime_tag}><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></{lifetime_tag}>",
                "<wst:RequestedSecurityToken><wsse:BinarySecurityToken Id=\"Compact{n}\">{ticket}</wsse:BinarySecurityToken></wst:RequestedSecurityToken>",
                "<wst:RequestedTokenReference><wsse:KeyIdentifier ValueType=\"urn:passport:compact\"></wsse:KeyIdentifier><wsse:Reference URI=\"#Compact{n}\"></wsse:Reference></wst:RequestedTokenReference>",
                "{proof}</wst:RequestSecurityTokenResponse>"
            ),
            address = escape_xml(&token.address),
            lifetime_tag = lifetime_tag,
            created = created,
            expires = expires,
            ticket = escape_xml(&ticket),
            n = n,
            proof = proof,
        ));
    }
    soap_response(
        200,
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">"#,
                r#"<S:Header><psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x48803</psf:authstate><psf:reqstatus>0x0</psf:reqstatus></psf:pp></S:Header>"#,
                r#"<S:Body><wst:RequestSecurityTokenResponseCollection xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing">"#,
                "{}</wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>"
            ),
            responses
        ),
    )
}

/// A whole SOAP envelope as the HTTP answer: 200 for an answer, 500 for a
/// fault (SOAP 1.1 over HTTP answers every fault with 500).
fn soap_response(status: u16, envelope: String) -> Response {
    let reason = if status == 200 { "OK" } else { "Internal Server Error" };
    let mut r = Response::empty(status, reason).with_header("Content-Type", "text/xml; charset=utf-8");
    r.body = envelope.into_bytes();
    r
}

/// A SOAP answer: `body` goes inside `<soap:Body>`.
fn soap_answer(status: u16, body: &str) -> Response {
    soap_response(status, msnp::soap::envelope("", body))
}

fn soap_fault(code: &str, text: &str) -> Response {
    soap_response(500, msnp::soap::fault(code, text, ""))
}

/// `oim.asmx` (`StoreMessage` from MSN 7.5, `Store2` from Windows Live
/// Messenger): a signed-in user leaves a message for someone offline.
/// Authenticated by the sender's ticket; the client must also answer the
/// lock-key challenge with its product key (the MSNP11 challenge
/// algorithm), as the real service required: an attempt without the lock
/// key, or with a wrong one, is answered with the challenge to retry with.
/// WLM's base64 text is stored as the plain text message every dialect
/// reads.
async fn store_offline_message(shared: &Arc<Shared>, request: &Request) -> Response {
    use backend::service::OfflineError;
    use msnp::oim::{StoreRequest, content_text, lock_key, store_fault, store_response};
    let fault =
        |code: &str, text: &str, challenge: Option<&str>| soap_response(500, store_fault(code, text, challenge));
    let Some(m) = std::str::from_utf8(&request.body).ok().and_then(StoreRequest::parse) else {
        return fault("InvalidContent", "Malformed request", None);
    };
    let Some(sender) = shared.backend.web_user(&m.ticket).await.filter(|u| u.key.eq_ignore_ascii_case(&m.from)) else {
        return fault("AuthenticationFailed", "Authentication Failed", None);
    };
    let challenge = shared.backend.oim_lock_challenge(&m.ticket);
    let answered = lock_key(&challenge, &m.app_id)
        .is_some_and(|expected| backend::secrets::constant_time_eq(expected.as_bytes(), m.lock_key.as_bytes()));
    if !answered {
        return fault("AuthenticationFailed", "The lock key is missing or wrong", Some(&challenge));
    }
    let Some(text) = content_text(&m.content) else {
        return fault("InvalidContent", "The message is not readable", None);
    };
    let payload = msnp::mime::MimeMessage::new("text/plain; charset=UTF-8").with_body(text).to_bytes();
    match shared.backend.send_offline_message(&sender, &m.to, &payload).await {
        Ok(()) => soap_response(200, store_response()),
        Err(OfflineError::QuotaFull) => fault("QuotaExceeded", "The recipient's mailbox is full", None),
        Err(OfflineError::NoSuchUser) => fault("InvalidRecipient", "No such user", None),
        Err(OfflineError::TooLong) => fault("MessageTooLong", "The message is too long", None),
        // The fault the real service sent a sender going too fast.
        Err(OfflineError::RateLimited) => {
            fault("SenderThrottleLimitExceeded", "Too many messages; wait a little", None)
        }
        Err(OfflineError::Internal) => fault("SystemUnavailable", "Try again later", None),
    }
}

/// `rsi.asmx`: a signed-in user reads (`GetMetadata`, `GetMessage`) and
/// confirms (`DeleteMessages`) their offline messages; a message is gone
/// only when the client deletes it.
async fn offline_inbox(shared: &Arc<Shared>, request: &Request) -> Response {
    use msnp::oim::{
        InboxCall, InboxRequest, OimEntry, delete_messages_response, get_message_response, get_metadata_response,
        message_text,
    };
    let Some(call) = std::str::from_utf8(&request.body).ok().and_then(InboxCall::parse) else {
        return soap_fault("soap:Client", "Malformed request");
    };
    let Some(user) = shared.backend.web_user(&call.ticket).await else {
        return soap_fault("AuthenticationFailed", "Authentication Failed");
    };
    let entry = |m: &backend::store::OfflineMessage| OimEntry::from(m.waiting());
    match call.request {
        // Deleting needs no read of the mailbox; reading does.
        InboxRequest::DeleteMessages { guids } => {
            shared.backend.delete_offline_by_guid(&user, &guids).await;
            soap_answer(200, &delete_messages_response())
        }
        InboxRequest::GetMessage { guid } => {
            let waiting = shared.backend.pending_offline(&user).await;
            match waiting.iter().find(|m| m.guid.eq_ignore_ascii_case(&guid)) {
                Some(m) => {
                    // Its place among its sender's waiting messages, oldest first.
                    let sequence = waiting.iter().filter(|o| o.sender == m.sender && o.id <= m.id).count() as u32;
                    let text = message_text(&entry(m), &user.handle, &msnp::oim::body_text(&m.payload), sequence);
                    soap_answer(200, &get_message_response(&text))
                }
                None => soap_fault("q0:AuthenticationFailed", "No such message"),
            }
        }
        InboxRequest::GetMetadata => {
            let waiting = shared.backend.pending_offline(&user).await;
            let entries: Vec<OimEntry> = waiting.iter().map(entry).collect();
            soap_answer(200, &get_metadata_response(&entries))
        }
    }
}

/// Hands a request to the axum router and turns its answer into ours.
async fn forward(router: Router, request: &Request, peer: SocketAddr, tls: bool) -> Response {
    let mut builder = axum::http::Request::builder()
        .method(request.method.as_str())
        .uri(request.target.origin_form())
        .extension(crate::web::Peer(peer))
        .extension(crate::web::OverTls(tls));
    for (n, v) in &request.headers {
        builder = builder.header(n.as_str(), v.as_str());
    }
    let Ok(http_request) = builder.body(axum::body::Body::from(request.body.clone())) else {
        return Response::empty(400, "Bad Request");
    };
    let Ok(answer) = router.oneshot(http_request).await;
    let status = answer.status();
    let headers: Vec<(String, String)> = answer
        .headers()
        .iter()
        .filter(|(n, _)| *n != "content-length" && *n != "connection")
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.to_string(), v.to_string())))
        .collect();
    let body = axum::body::to_bytes(answer.into_body(), MAX_BODY * 16).await.map(|b| b.to_vec()).unwrap_or_default();
    Response {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        headers,
        body,
        keep_alive: false,
    }
}

#[cfg(test)]
mod tests {
    use super::password_may_arrive;

    #[test]
    fn passwords_over_plain_http_only_from_loopback_unless_allowed() {
        let lan = "192.168.1.20:5000".parse().unwrap();
        let local = "127.0.0.1:5000".parse().unwrap();
        let local6 = "[::1]:5000".parse().unwrap();
        for path in ["/login2.srf", "/RST.srf", "/ppsecure/login.srf"] {
            assert!(!password_may_arrive(path, false, lan, false), "{path}");
            assert!(password_may_arrive(path, true, lan, false), "{path} over TLS");
            assert!(password_may_arrive(path, false, local, false), "{path} from loopback");
            assert!(password_may_arrive(path, false, local6, false), "{path} from ::1");
            assert!(password_may_arrive(path, false, lan, true), "{path} when the operator allows it");
        }
        assert!(password_may_arrive("/rdr/pprdr.asp", false, lan, false), "the nexus carries no password");
    }

    #[test]
    fn the_password_rule_sees_the_path_the_router_sees() {
        use crate::request_target::RequestTarget;
        let lan = "192.168.1.20:5000".parse().unwrap();
        for raw in [
            "http://127.0.0.1/admin/login",
            "/signup#x",
            "//password",
            "/x/../signup",
            "/%73ignup",
            "HTTPS://localhost/RST.srf",
        ] {
            let target = RequestTarget::parse(raw).unwrap();
            assert!(!password_may_arrive(&target.path, false, lan, false), "{raw} -> {}", target.path);
        }
    }
}
