//! The web pages in a real headless browser: Debian's Chromium driven over
//! WebDriver (chromedriver) by fantoccini. Sign up, change the password,
//! sign in with the client library as that account, then an operator kicks
//! the live session and the client sees `OUT`.
//!
//! Without Chromium and chromedriver the test says so and passes, unless
//! `MARIPOSA_REQUIRE_SERVICES=1` (CI installs both: see `.ci/run`).

mod common;

use std::time::Duration;

use client::{ClientConfig, Event};
use common::browser::{browser, chromedriver};
use common::*;
use fantoccini::Locator;
use msnp::Dialect;

/// The first event `want` picks, skipping others.
async fn wait_for(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    want: impl Fn(&Event) -> Option<String>,
) -> String {
    let found = async {
        loop {
            if let Some(found) = want(&events.recv().await.expect("events")) {
                return found;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), found).await.expect("the event in time")
}

async fn fill(b: &fantoccini::Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        b.find(Locator::Id(id)).await.unwrap().send_keys(value).await.unwrap();
    }
}

async fn text_of(b: &fantoccini::Client, id: &str) -> String {
    b.wait().for_element(Locator::Id(id)).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_change_password_sign_in_and_an_operator_kicks_the_session() {
    let Some((_driver, port)) = chromedriver("web::sign_up_and_kick").await else { return };
    let server = TestServer::start_with(&["--registration", "open", "--operator", "boss@example.com"]);
    users(&server, &["boss"]);
    let site = format!("http://{}", server.http.unwrap());
    let b = browser(port).await;

    // Sign up.
    b.goto(&format!("{site}/signup")).await.unwrap();
    fill(
        &b,
        &[("email", "newbie@example.com"), ("name", "Newbie"), ("password", "first-pw"), ("password2", "first-pw")],
    )
    .await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    assert!(text_of(&b, "ok").await.contains("newbie@example.com is ready"));

    // Change the password.
    b.goto(&format!("{site}/password")).await.unwrap();
    fill(&b, &[("email", "newbie@example.com"), ("old", "first-pw"), ("new", "second-pw"), ("new2", "second-pw")])
        .await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    assert!(text_of(&b, "ok").await.contains("changed"));

    // The new account signs in with the client, with the new password.
    let mut config = ClientConfig::new(&server.dispatch.to_string(), "newbie@example.com", "second-pw");
    config.dialect = Dialect::Msnp11;
    config.login_url = Some(format!("{site}/rdr/pprdr.asp"));
    let (client, mut events) = client::Client::sign_in(config).await.expect("the new account signs in");
    client.set_state(msnp::OnlineState::Online).await.unwrap();

    // The operator signs in, sees the session, and kicks it.
    b.goto(&format!("{site}/admin")).await.unwrap();
    fill(&b, &[("email", "boss@example.com"), ("password", "pw-boss")]).await;
    b.find(Locator::Id("submit")).await.unwrap().click().await.unwrap();
    let sessions = text_of(&b, "sessions").await;
    assert!(sessions.contains("newbie@example.com"), "{sessions}");
    // A broadcast reaches the client as a message from the service.
    fill(&b, &[("text", "Back in five")]).await;
    b.find(Locator::Id("broadcast")).await.unwrap().click().await.unwrap();
    let text = wait_for(&mut events, |e| match e {
        Event::ServiceMessage { text } => Some(text.clone()),
        _ => None,
    })
    .await;
    assert_eq!(text, "Back in five");
    b.find(Locator::Css("button[id='kick-newbie@example.com']")).await.unwrap().click().await.unwrap();
    let reason = wait_for(&mut events, |e| match e {
        Event::SignedOut { reason } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, "signed out", "a plain OUT");
    b.close().await.unwrap();
}

fn body(answer: &HttpAnswer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[tokio::test]
async fn registration_modes_are_enforced() {
    let signup = [("email", "eve@example.com"), ("password", "secret-1"), ("password2", "secret-1")];
    // Closed (the default): no sign-up at all.
    let closed = TestServer::start();
    assert!(body(&http_get(closed.http.unwrap(), "/signup", &[]).await).contains("closed"));
    let answer = post_form(&closed, "/signup", &signup, None).await;
    assert_eq!(answer.status, 400);
    // By invite: the code must match.
    let invite = TestServer::start_with(&["--registration", "invite", "--invite-code", "sesame"]);
    let mut wrong = signup.to_vec();
    wrong.push(("code", "open-sesame"));
    assert_eq!(post_form(&invite, "/signup", &wrong, None).await.status, 400);
    let mut right = signup.to_vec();
    right.push(("code", "sesame"));
    let answer = post_form(&invite, "/signup", &right, None).await;
    assert_eq!(answer.status, 200, "{}", body(&answer));
    let mut eve = login(&invite, "eve@example.com", "secret-1").await;
    eve.sync_point().await;
    // Mismatched passwords are refused.
    let mut differ = right.clone();
    differ[2] = ("password2", "secret-2");
    assert!(body(&post_form(&invite, "/signup", &differ, None).await).contains("differ"));
}

/// A stranger must not learn which addresses have accounts: signing up a
/// taken address answers exactly as a free one, and changes nothing.
#[tokio::test]
async fn signing_up_a_taken_address_looks_like_signing_up_a_free_one() {
    let server = TestServer::start_with(&["--registration", "open"]);
    users(&server, &["alice"]);
    let form = |email: &'static str| vec![("email", email), ("password", "taken-pw"), ("password2", "taken-pw")];
    let free = post_form(&server, "/signup", &form("newcomer@example.com"), None).await;
    let taken = post_form(&server, "/signup", &form("alice@example.com"), None).await;
    assert_eq!((free.status, taken.status), (200, 200));
    let scrub = |b: String, email: &str| b.replace(email, "ADDRESS");
    assert_eq!(
        scrub(body(&free), "newcomer@example.com"),
        scrub(body(&taken), "alice@example.com"),
        "the page differs for a taken address"
    );
    // Alice's account is as it was.
    login(&server, "alice@example.com", "pw-alice").await.sync_point().await;
}

/// Accounts from one address are rate-limited, invite guesses included:
/// a script gets the burst, then 429 before its code is even looked at.
#[tokio::test]
async fn sign_ups_from_one_address_are_throttled_before_the_invite_code_is_checked() {
    let server =
        TestServer::start_with(&["--registration", "invite", "--invite-code", "sesame", "--rate-sign-ups", "3/0.001"]);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let email = format!("bot{i}@example.com");
        let form = [("email", email.as_str()), ("password", "botbot"), ("password2", "botbot"), ("code", "guess")];
        statuses.push(post_form(&server, "/signup", &form, None).await.status);
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429, 429]);
    // Even the right code is refused now: the address has used its share.
    let form = [("email", "late@example.com"), ("password", "botbot"), ("password2", "botbot"), ("code", "sesame")];
    assert_eq!(post_form(&server, "/signup", &form, None).await.status, 429);
    let status = http_get(server.http.unwrap(), "/status.json", &[]).await;
    let s: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(s["rate_limited"]["sign_ups"], 4);
}

/// Signs the operator in; returns the session cookie and the page's
/// anti-forgery token.
async fn operator_session(server: &TestServer) -> (String, String) {
    let answer =
        post_form(server, "/admin/login", &[("email", "boss@example.com"), ("password", "pw-boss")], None).await;
    assert_eq!(answer.status, 303);
    let cookie = answer.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string();
    let page = http_get(server.http.unwrap(), "/admin", &[("Cookie", &cookie)]).await;
    let html = body(&page);
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    (cookie, csrf)
}

#[tokio::test]
async fn the_operator_page_needs_an_operator_and_its_forms_need_the_session_token() {
    let server = TestServer::start_with(&["--operator", "boss@example.com"]);
    users(&server, &["boss", "alice", "bob"]);
    // Not signed in: off to the login form.
    let answer = http_get(server.http.unwrap(), "/admin", &[]).await;
    assert!(answer.status == 303 || answer.status == 302 || answer.status == 307);
    // A real account that is not an operator, and a wrong password, are refused alike.
    for (email, password) in [("alice@example.com", "pw-alice"), ("boss@example.com", "wrong")] {
        let answer = post_form(&server, "/admin/login", &[("email", email), ("password", password)], None).await;
        assert_eq!(answer.status, 401, "{email}");
        assert!(answer.header("set-cookie").is_none());
    }
    let (cookie, csrf) = operator_session(&server).await;
    let (mut a, _) = online_as(&server, "alice").await;
    let (mut b, _) = online_as(&server, "bob").await;

    // A form without the session's token does nothing.
    let forged =
        post_form(&server, "/admin/kick", &[("csrf", "guess"), ("handle", "alice@example.com")], Some(&cookie)).await;
    assert_eq!(forged.status, 403);
    let no_cookie = post_form(&server, "/admin/kick", &[("csrf", &csrf), ("handle", "alice@example.com")], None).await;
    assert_eq!(no_cookie.status, 403);
    a.sync_point().await;

    // Broadcast reaches everyone signed in, as a message from the service.
    let text = "Maintenance at noon";
    assert_eq!(
        post_form(&server, "/admin/broadcast", &[("csrf", &csrf), ("text", text)], Some(&cookie)).await.status,
        303
    );
    for c in [&mut a, &mut b] {
        let msg = c.expect_prefix("MSG Hotmail Hotmail ").await;
        assert!(String::from_utf8(msg.payload.unwrap()).unwrap().ends_with(text));
    }
    // Disabling an account ends its session and refuses its logins.
    let fields = [("csrf", csrf.as_str()), ("handle", "bob@example.com"), ("disable", "1")];
    assert_eq!(post_form(&server, "/admin/disable", &fields, Some(&cookie)).await.status, 303);
    assert_eq!(b.expect_closed().await.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["OUT"]);
    let mut x = Client::connect(server.ns).await;
    x.send("VER 1 MSNP2 CVR0").await;
    x.expect("VER 1 MSNP2").await;
    x.send("USR 2 MD5 I bob@example.com").await;
    let challenge = x.expect_prefix("USR 2 MD5 S ").await.args()[4].to_string();
    x.send(&format!("USR 3 MD5 S {}", md5_hex(&challenge, "pw-bob"))).await;
    x.expect("911 3").await;
    // ...and enabling it lets them back in.
    let fields = [("csrf", csrf.as_str()), ("handle", "bob@example.com"), ("disable", "0")];
    assert_eq!(post_form(&server, "/admin/disable", &fields, Some(&cookie)).await.status, 303);
    let mut b = login(&server, "bob@example.com", "pw-bob").await;
    b.sync_point().await;
    // Signing out ends the session.
    assert_eq!(post_form(&server, "/admin/logout", &[("csrf", &csrf)], Some(&cookie)).await.status, 303);
    let after = http_get(server.http.unwrap(), "/admin", &[("Cookie", &cookie)]).await;
    assert_ne!(after.status, 200);
}

/// The operator's session cookie is `Secure` when it was issued over HTTPS.
#[tokio::test]
async fn the_operator_cookie_is_secure_over_https() {
    let server = TestServer::start_with(&["--https-listen", "127.0.0.1:0", "--operator", "alice@example.com"]);
    users(&server, &["alice"]);
    let body = "email=alice%40example.com&password=pw-alice";
    let request = format!(
        "POST /admin/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(server.https.unwrap()).await.unwrap();
    let tls = tls_connector(&server).connect("localhost".try_into().unwrap(), stream).await.unwrap();
    let over_tls = http_exchange(tls, request.as_bytes()).await;
    let cookie = over_tls.header("set-cookie").expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.ends_with("; Secure"), "{cookie}");
    let stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
    let plain = http_exchange(stream, request.as_bytes()).await;
    let cookie = plain.header("set-cookie").expect("a session cookie");
    assert!(!cookie.contains("Secure"), "loopback plain HTTP cannot keep a Secure cookie: {cookie}");
}

/// An operator broadcast longer than old clients can read is refused, and
/// nobody receives it; one within the limit arrives.
#[tokio::test]
async fn an_oversized_broadcast_is_refused() {
    let server = TestServer::start_with(&["--operator", "alice@example.com"]);
    users(&server, &["alice", "bob"]);
    let mut bob = as_dialect(&server, 7, "bob").await;
    let http = server.http.unwrap();
    let post = |path: &str, cookie: &str, body: String| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let login = http_exchange(
        stream,
        post("/admin/login", "", "email=alice%40example.com&password=pw-alice".into()).as_bytes(),
    )
    .await;
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let page =
        http_exchange(stream, format!("GET /admin HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n").as_bytes())
            .await;
    let html = String::from_utf8(page.body).unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let big = http_exchange(
        stream,
        post("/admin/broadcast", &cookie, format!("csrf={csrf}&text={}", "x".repeat(60_000))).as_bytes(),
    )
    .await;
    assert_eq!(big.status, 413);
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let small = http_exchange(
        stream,
        post("/admin/broadcast", &cookie, format!("csrf={csrf}&text=maintenance+at+noon")).as_bytes(),
    )
    .await;
    assert_eq!(small.status, 303, "{}", String::from_utf8_lossy(&small.body));
    let msg = bob.expect_prefix("MSG Hotmail Hotmail ").await;
    assert!(
        String::from_utf8(msg.payload.unwrap()).unwrap().ends_with("maintenance at noon"),
        "only the small one arrived"
    );
}
