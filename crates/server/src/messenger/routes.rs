//! The messenger's HTTP side: the sign-in page, the messenger itself, the
//! embedded assets, display pictures, and signing out.
//!
//! Every answer carries a Content-Security-Policy that allows scripts,
//! styles and connections from this origin only and no inline script, so
//! that text a user wrote can never run as code even if it were put into
//! the page unescaped.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use backend::store::StoredPhoto;
use serde::Deserialize;

use super::{COOKIE, SESSION_LIFETIME, assets, html};
use crate::web::{OverTls, Peer, WebState};

/// The policy of every messenger answer.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The largest display picture taken.
const MAX_PICTURE: usize = 48 * 1024;
/// The picture types taken (what the storage service serves back).
const PICTURE_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/gif"];

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/messenger", get(messenger))
        .route("/messenger/login", post(login))
        .route("/messenger/logout", post(logout))
        .route("/messenger/picture", post(set_picture))
        .route("/messenger/picture/{handle}", get(picture))
        .route("/messenger/assets/{name}", get(asset))
}

/// Headers every messenger answer carries.
fn guarded(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: with it Chromium sends `Origin: null` on our own
    // forms, which the origin check must refuse.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The session cookie's token, if the request carries one.
pub(super) fn session_token(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').map(str::trim).find_map(|c| c.strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether a request came from one of our own pages. Browsers send
/// `Origin` with every POST and WebSocket handshake, and a page of another
/// site has another one. A POST without one (an old browser, a script) is
/// taken, as the cookie is `SameSite=Strict` anyway; a socket without one
/// is not (`required`).
pub(super) fn same_origin(headers: &HeaderMap, required: bool) -> bool {
    let authority = |v: &HeaderValue| v.to_str().ok().map(str::to_ascii_lowercase);
    let host = headers.get(header::HOST).and_then(authority);
    match (headers.get(header::ORIGIN).and_then(authority), host) {
        (Some(origin), Some(host)) => {
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            rest == Some(host.as_str())
        }
        (Some(_), None) => false,
        (None, _) => !required,
    }
}

fn cookie(value: &str, max_age: u64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/messenger; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

async fn messenger(State(s): State<WebState>, headers: HeaderMap) -> Response {
    let signed_in = match session_token(&headers) {
        Some(token) => s.shared.backend.web_session(token).await,
        None => None,
    };
    let body = match signed_in {
        Some(account) => html::messenger(&account.handle),
        None => html::sign_in(None),
    };
    let mut response = Html(body.into_string()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    guarded(response)
}

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(s): State<WebState>,
    Extension(peer): Extension<Peer>,
    Extension(tls): Extension<OverTls>,
    headers: HeaderMap,
    Form(f): Form<Login>,
) -> Response {
    if !same_origin(&headers, false) {
        return guarded(StatusCode::FORBIDDEN.into_response());
    }
    let opened = s.shared.backend.open_web_session(f.email.trim(), &f.password, peer.0.ip(), SESSION_LIFETIME).await;
    match opened {
        Ok((token, _)) => {
            let set = cookie(&token, SESSION_LIFETIME.as_secs(), tls.0);
            guarded(([(header::SET_COOKIE, set)], Redirect::to("/messenger")).into_response())
        }
        Err(code) => {
            let (status, text) = match code {
                msnp::ErrorCode::AuthenticationFailed => {
                    (StatusCode::UNAUTHORIZED, "That address and password do not match an account here.")
                }
                _ => (StatusCode::SERVICE_UNAVAILABLE, "Signing in is not possible just now. Try again shortly."),
            };
            guarded((status, Html(html::sign_in(Some(text)).into_string())).into_response())
        }
    }
}

async fn logout(
    State(s): State<WebState>,
    Extension(tls): Extension<OverTls>,
    Extension(pages): Extension<std::sync::Arc<super::Pages>>,
    headers: HeaderMap,
) -> Response {
    if !same_origin(&headers, false) {
        return guarded(StatusCode::FORBIDDEN.into_response());
    }
    if let Some(token) = session_token(&headers) {
        pages.sign_out_session(token);
        s.shared.backend.end_web_session(token);
    }
    let expired = cookie("", 0, tls.0);
    guarded(([(header::SET_COOKIE, expired)], Redirect::to("/messenger")).into_response())
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::find(&name) {
        Some((mime, body)) => guarded(
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response(),
        ),
        None => guarded(StatusCode::NOT_FOUND.into_response()),
    }
}

/// A display picture, for a signed-in browser; 404 for someone without one.
async fn picture(State(s): State<WebState>, headers: HeaderMap, Path(handle): Path<String>) -> Response {
    let backend = &s.shared.backend;
    let Some(token) = session_token(&headers) else { return guarded(StatusCode::UNAUTHORIZED.into_response()) };
    if backend.web_session(token).await.is_none() {
        return guarded(StatusCode::UNAUTHORIZED.into_response());
    }
    let photo = match backend.account(&handle).await {
        Some(account) => backend.profile_photo(account.id).await.ok().flatten(),
        None => None,
    };
    match photo.filter(|p| PICTURE_TYPES.contains(&p.mime.as_str())) {
        Some(p) => guarded(
            ([(header::CONTENT_TYPE, p.mime), (header::CACHE_CONTROL, "private, max-age=60".to_string())], p.data)
                .into_response(),
        ),
        None => guarded(StatusCode::NOT_FOUND.into_response()),
    }
}

/// Sets one's display picture (the raw image as the body).
async fn set_picture(State(s): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let backend = &s.shared.backend;
    if !same_origin(&headers, false) {
        return guarded(StatusCode::FORBIDDEN.into_response());
    }
    let Some(token) = session_token(&headers) else { return guarded(StatusCode::UNAUTHORIZED.into_response()) };
    let Some(account) = backend.web_session(token).await else {
        return guarded(StatusCode::UNAUTHORIZED.into_response());
    };
    let mime = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if !PICTURE_TYPES.contains(&mime.as_str()) || !assets::looks_like(&mime, &body) {
        return guarded(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
    }
    if body.len() > MAX_PICTURE {
        return guarded(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    }
    let resource_id = crate::storage::photo_resource_id(account.id as u64);
    let photo = StoredPhoto { resource_id, name: "web".into(), mime, data: body.to_vec() };
    match backend.set_account_photo(account.id, Some(photo)).await {
        Ok(()) => guarded(StatusCode::NO_CONTENT.into_response()),
        Err(_) => guarded(StatusCode::SERVICE_UNAVAILABLE.into_response()),
    }
}
