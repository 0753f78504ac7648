//! The web pages: a public status page, sign-up (open, by invite code, or
//! closed), password change, and an operator page behind a login (accounts,
//! live sessions, kick, disable, broadcast).
//!
//! Server-rendered HTML with plain forms (`pages.rs`): nothing to build,
//! nothing to run in the browser. Operator sessions are random tokens in an `HttpOnly`,
//! `SameSite=Strict` cookie, and every operator form carries the session's
//! own anti-forgery token as well.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use backend::secrets::constant_time_eq;
use serde::Deserialize;

use maud::Markup;

use crate::config::Registration;
use crate::shared::Shared;

mod pages;

use pages::{AccountRow, SessionRow, login_form, message, password_form};

/// The address a request came from (set by the HTTP front).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Whether the request arrived over TLS (set by the HTTP front): cookies
/// issued over HTTPS are marked `Secure`, so they never travel in clear.
#[derive(Debug, Clone, Copy)]
pub struct OverTls(pub bool);

/// Operator sessions: token → (handle, anti-forgery token, expiry).
#[derive(Default)]
pub struct Sessions(parking_lot::Mutex<HashMap<String, (String, String, Instant)>>);

/// How long an operator stays signed in.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const COOKIE: &str = "msnd_operator";

#[derive(Clone)]
pub struct WebState {
    pub shared: Arc<Shared>,
    pub started: Instant,
    pub sessions: Arc<Sessions>,
}

/// The pages' routes; the caller adds its own and the state.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup_page).post(signup))
        .route("/password", get(password_page).post(change_password))
        .route("/admin/login", get(admin_login_page).post(admin_login))
        .route("/admin", get(admin))
        .route("/admin/kick", post(admin_kick))
        .route("/admin/disable", post(admin_disable))
        .route("/admin/broadcast", post(admin_broadcast))
        .route("/admin/logout", post(admin_logout))
}

fn page(title: &str, body: Markup) -> Html<String> {
    Html(pages::page(title, body).into_string())
}

fn note(kind: &str, text: &str) -> Option<Markup> {
    Some(message(kind, text))
}

async fn home(State(s): State<WebState>) -> Html<String> {
    let backend = &s.shared.backend;
    let body = pages::status(backend.registry().len(), backend.switchboards().len(), s.started.elapsed().as_secs());
    page("Status", body)
}

fn signup_form(s: &WebState, note: Option<Markup>) -> Markup {
    pages::signup_form(s.shared.config.registration == Registration::Invite, note)
}

async fn signup_page(State(s): State<WebState>) -> Html<String> {
    if s.shared.config.registration == Registration::Closed {
        return page("Sign up", message("error", "Sign-up is closed here: ask the operator for an account."));
    }
    page("Sign up", signup_form(&s, None))
}

#[derive(Deserialize)]
struct Signup {
    email: String,
    #[serde(default)]
    name: String,
    password: String,
    password2: String,
    #[serde(default)]
    code: String,
}

async fn signup(State(s): State<WebState>, Extension(peer): Extension<Peer>, Form(f): Form<Signup>) -> Response {
    let refuse = |text: &str| (StatusCode::BAD_REQUEST, page("Sign up", signup_form(&s, note("error", text))));
    if s.shared.config.registration == Registration::Closed {
        return refuse("Sign-up is closed here.").into_response();
    }
    // Counted before anything is looked at, so that invite codes cannot be
    // guessed at speed either.
    if !s.shared.backend.allow_sign_up(peer.0.ip()) {
        let text = "Too many accounts were made from your address. Try again later.";
        return (StatusCode::TOO_MANY_REQUESTS, page("Sign up", signup_form(&s, note("error", text)))).into_response();
    }
    if s.shared.config.registration == Registration::Invite {
        let expected = s.shared.config.invite_code.as_deref().unwrap_or("");
        if expected.is_empty() || !constant_time_eq(expected.as_bytes(), f.code.trim().as_bytes()) {
            return refuse("That invite code is not right.").into_response();
        }
    }
    if f.password != f.password2 {
        return refuse("The two passwords differ.").into_response();
    }
    if f.password.chars().count() < 6 {
        return refuse("Choose a password of six characters or more.").into_response();
    }
    let name = Some(f.name.trim()).filter(|n| !n.is_empty());
    // An address that already has an account gets the same page (after the
    // same hash): strangers must not learn which addresses are taken. The
    // note tells its real owner why an old password still applies.
    let welcome = || {
        let text = format!(
            "Account {} is ready. Sign in with it in your messenger. \
             (If that address had an account already, it is unchanged and keeps its password.)",
            f.email.trim()
        );
        page("Welcome", message("ok", &text)).into_response()
    };
    match s.shared.backend.create_account(f.email.trim(), name, &f.password).await {
        Ok(()) => welcome(),
        Err(backend::service::AccountError::Store(backend::store::StoreError::AccountExists)) => welcome(),
        Err(backend::service::AccountError::InvalidHandle(_)) => {
            refuse("That is not an address the service can use.").into_response()
        }
        Err(backend::service::AccountError::InvalidName) => refuse("That display name cannot be used.").into_response(),
        Err(e) => {
            tracing::error!("sign-up failed: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, page("Sign up", message("error", "Something went wrong.")))
                .into_response()
        }
    }
}

async fn password_page() -> Html<String> {
    page("Change password", password_form(None))
}

#[derive(Deserialize)]
struct PasswordChange {
    email: String,
    old: String,
    new: String,
    new2: String,
}

async fn change_password(
    State(s): State<WebState>,
    Extension(peer): Extension<Peer>,
    Form(f): Form<PasswordChange>,
) -> Response {
    let refuse = |text: &str| (StatusCode::BAD_REQUEST, page("Change password", password_form(note("error", text))));
    if f.new != f.new2 {
        return refuse("The two new passwords differ.").into_response();
    }
    if f.new.chars().count() < 6 {
        return refuse("Choose a password of six characters or more.").into_response();
    }
    let backend = &s.shared.backend;
    if backend.web_login(f.email.trim(), &f.old, peer.0.ip()).await.is_err() {
        // The same answer for an unknown address and a wrong password.
        return refuse("The address or the current password is not right.").into_response();
    }
    match backend.set_password(f.email.trim(), &f.new).await {
        Ok(()) => {
            // The backend ended the sign-ins and tickets; the operator
            // pages' sessions of the account end here.
            let key = f.email.trim().to_ascii_lowercase();
            s.sessions.0.lock().retain(|_, (handle, _, _)| *handle != key);
            let text = "Your password is changed. Everywhere you were signed in with the old one is signed out.";
            page("Change password", message("ok", text)).into_response()
        }
        Err(e) => {
            tracing::error!("password change failed: {e}");
            refuse("Something went wrong.").into_response()
        }
    }
}

async fn admin_login_page() -> Html<String> {
    page("Operator sign-in", login_form(None))
}

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

async fn admin_login(
    State(s): State<WebState>,
    Extension(peer): Extension<Peer>,
    Extension(tls): Extension<OverTls>,
    Form(f): Form<Login>,
) -> Response {
    let key = f.email.trim().to_ascii_lowercase();
    let operator = s.shared.config.operators.contains(&key);
    // The password is checked either way, so the answer's timing does not
    // tell operators from other accounts.
    let checked = s.shared.backend.web_login(&key, &f.password, peer.0.ip()).await.is_ok();
    if !(operator && checked) {
        let refusal = note("error", "That is not an operator's address and password.");
        return (StatusCode::UNAUTHORIZED, page("Operator sign-in", login_form(refusal))).into_response();
    }
    let token = backend::secrets::random_token(32);
    let csrf = backend::secrets::random_token(32);
    {
        let mut sessions = s.sessions.0.lock();
        sessions.retain(|_, (_, _, expires)| *expires > Instant::now());
        sessions.insert(token.clone(), (key, csrf, Instant::now() + SESSION_LIFETIME));
    }
    let secure = if tls.0 { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={token}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_LIFETIME.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin")).into_response()
}

/// The operator and the session's anti-forgery token, from the cookie.
fn operator(s: &WebState, headers: &HeaderMap) -> Option<(String, String)> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let token = cookies.split(';').map(str::trim).find_map(|c| c.strip_prefix(&format!("{COOKIE}=")))?;
    let sessions = s.sessions.0.lock();
    let (handle, csrf, expires) = sessions.get(token)?;
    (*expires > Instant::now() && s.shared.config.operators.contains(handle)).then(|| (handle.clone(), csrf.clone()))
}

/// The operator of a form post whose anti-forgery token matches.
fn authorised(s: &WebState, headers: &HeaderMap, csrf: &str) -> Option<String> {
    let (handle, expected) = operator(s, headers)?;
    constant_time_eq(expected.as_bytes(), csrf.as_bytes()).then_some(handle)
}

async fn admin(State(s): State<WebState>, headers: HeaderMap) -> Response {
    let Some((me, csrf)) = operator(&s, &headers) else { return Redirect::to("/admin/login").into_response() };
    let backend = &s.shared.backend;
    let mut online: Vec<_> = backend.registry().all();
    online.sort_by(|a, b| a.key.cmp(&b.key));
    let sessions: Vec<SessionRow> = online
        .iter()
        .map(|u| {
            let p = u.presence();
            let state = if p.started { p.state.code() } else { "signing in" };
            SessionRow { handle: u.handle.clone(), state: state.into(), dialect: u.dialect.to_string() }
        })
        .collect();
    let accounts = match backend.list_accounts().await {
        Ok(list) => list,
        Err(e) => {
            tracing::error!("cannot list accounts: {e}");
            Vec::new()
        }
    };
    let accounts: Vec<AccountRow> = accounts
        .into_iter()
        .map(|a| AccountRow { handle: a.handle, friendly: a.friendly, contacts: a.contacts, disabled: a.disabled })
        .collect();
    page("Operator", pages::operator(&me, &csrf, &sessions, &accounts)).into_response()
}

#[derive(Deserialize)]
struct Target {
    csrf: String,
    handle: String,
    #[serde(default)]
    disable: String,
}

async fn admin_kick(State(s): State<WebState>, headers: HeaderMap, Form(f): Form<Target>) -> Response {
    let Some(me) = authorised(&s, &headers, &f.csrf) else { return StatusCode::FORBIDDEN.into_response() };
    let kicked = s.shared.backend.kick(&f.handle);
    tracing::info!(operator = %me, handle = %f.handle, kicked, "operator ended a session");
    Redirect::to("/admin").into_response()
}

async fn admin_disable(State(s): State<WebState>, headers: HeaderMap, Form(f): Form<Target>) -> Response {
    let Some(me) = authorised(&s, &headers, &f.csrf) else { return StatusCode::FORBIDDEN.into_response() };
    let disable = f.disable == "1";
    if let Err(e) = s.shared.backend.set_disabled(&f.handle, disable).await {
        return (StatusCode::BAD_REQUEST, page("Operator", message("error", &e.to_string()))).into_response();
    }
    tracing::info!(operator = %me, handle = %f.handle, disable, "operator changed an account");
    Redirect::to("/admin").into_response()
}

#[derive(Deserialize)]
struct Broadcast {
    csrf: String,
    text: String,
}

async fn admin_broadcast(State(s): State<WebState>, headers: HeaderMap, Form(f): Form<Broadcast>) -> Response {
    let Some(me) = authorised(&s, &headers, &f.csrf) else { return StatusCode::FORBIDDEN.into_response() };
    let Some(n) = s.shared.backend.broadcast(f.text.trim()) else {
        let limit = backend::service::MAX_BROADCAST_BYTES;
        let text = format!("A message to everyone is {limit} bytes at most.");
        return (StatusCode::PAYLOAD_TOO_LARGE, page("Operator", message("error", &text))).into_response();
    };
    tracing::info!(operator = %me, users = n, "operator broadcast a message");
    Redirect::to("/admin").into_response()
}

#[derive(Deserialize)]
struct Csrf {
    csrf: String,
}

async fn admin_logout(State(s): State<WebState>, headers: HeaderMap, Form(f): Form<Csrf>) -> Response {
    if authorised(&s, &headers, &f.csrf).is_some() {
        s.sessions.0.lock().retain(|_, (_, csrf, _)| *csrf != f.csrf);
    }
    let expired = format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Redirect::to("/")).into_response()
}
