//! What a password, a ticket and a web token are worth, and for how long:
//! a password change ends what the old password opened, and a ticket that
//! crossed a plain connection in `USR` is worth no more than its lifetime.

mod common;

use std::time::Duration;

use common::*;

/// The offline-message web service, with `token` as the credential.
async fn store_with(server: &TestServer, token: &str) -> u16 {
    try_store_offline(server.http.unwrap(), token, "alice@example.com", "bob@example.com", "hi").await.unwrap()
}

fn token_of(ticket: &str) -> String {
    ticket.trim_start_matches("t=").split('&').next().unwrap().to_string()
}

async fn post_password_change(server: &TestServer, email: &str, old: &str, new: &str) -> u16 {
    let fields = [("email", email), ("old", old), ("new", new), ("new2", new)];
    post_form(server, "/password", &fields, None).await.status
}

async fn operator_cookie(server: &TestServer, email: &str, password: &str) -> String {
    let answer = post_form(server, "/admin/login", &[("email", email), ("password", password)], None).await;
    assert_eq!(answer.status, 303);
    answer.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_password_change_ends_the_sign_in_its_web_tokens_unused_tickets_and_operator_sessions() {
    let server = TestServer::start_with(&["--operator", "alice@example.com"]);
    users(&server, &["alice", "bob"]);
    let mut alice = as_dialect(&server, 11, "alice").await;
    let mspauth = alice.mspauth();
    assert_eq!(store_with(&server, &mspauth).await, 200);
    // A ticket fetched (say by a thief with the old password) but not used yet.
    let spare = passport_ticket(&server, "alice@example.com", "pw-alice", "lc=1033,id=507").await.unwrap();
    let cookie = operator_cookie(&server, "alice@example.com", "pw-alice").await;
    let admin = |cookie: String| {
        let http = server.http.unwrap();
        async move { http_get(http, "/admin", &[("Cookie", &cookie)]).await }
    };
    assert!(String::from_utf8_lossy(&admin(cookie.clone()).await.body).contains("id=\"sessions\""));

    assert_eq!(post_password_change(&server, "alice@example.com", "pw-alice", "new-secret").await, 200);
    let last = alice.expect_closed().await;
    assert!(last.iter().any(|l| l.text == "OUT"), "the sign-in was not ended: {last:?}");
    assert_ne!(store_with(&server, &mspauth).await, 200, "the old sign-in's web token still works");
    assert!(
        present_ticket(server.ns, "alice@example.com", &spare).await.starts_with("911 3"),
        "an old ticket still works"
    );
    assert!(
        !String::from_utf8_lossy(&admin(cookie).await.body).contains("id=\"sessions\""),
        "the operator page stayed"
    );
    // The new password works everywhere.
    login_as_dialect(&server, 11, "alice@example.com", "new-secret").await.sync_point().await;
}

/// A ticket issued before a password change is refused even by a process
/// that was not told of the change: it carries the credentials it was
/// issued under. (`msnd user passwd` next to the running server.)
#[tokio::test]
async fn a_ticket_from_before_a_password_change_made_elsewhere_is_refused() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let ticket = passport_ticket(&server, "alice@example.com", "pw-alice", "lc=1033,id=507").await.unwrap();
    let mut passwd = msnd();
    passwd.arg("--data-dir").arg(server.data_dir()).args(["user", "passwd", "alice@example.com", "--password-stdin"]);
    let mut child = passwd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "changed-elsewhere").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(present_ticket(server.ns, "alice@example.com", &ticket).await.starts_with("911 3"));
}

#[tokio::test]
async fn a_tickets_token_is_a_web_credential_only_for_the_tickets_lifetime() {
    let server = TestServer::start_with(&["--ticket-lifetime-secs", "1"]);
    users(&server, &["alice", "bob"]);
    let alice = as_dialect(&server, 11, "alice").await;
    let ticket = token_of(alice.ticket.as_deref().unwrap());
    let mspauth = alice.mspauth();
    assert_ne!(ticket, mspauth, "the profile's MSPAuth is the ticket that crossed the connection in clear");
    assert_eq!(store_with(&server, &ticket).await, 200);
    // The ticket's lifetime is the point here: no event to wait on.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_ne!(store_with(&server, &ticket).await, 200, "the ticket outlived its lifetime as a credential");
    assert_eq!(store_with(&server, &mspauth).await, 200, "the sign-in's own token works while it lasts");
}
