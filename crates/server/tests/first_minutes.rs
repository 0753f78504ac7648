//! What new users and real third-party clients meet in their first minutes:
//! the nexus and login service as real clients ask for them, the first sync
//! of a fresh account in every dialect, the privacy commands libpurple and
//! msnp11-sdk send, sign-out, and offline messages that are shown once and
//! never lost.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn the_nexus_sends_the_real_field_set_naming_the_host_the_client_used() {
    let server = TestServer::start();
    let http = server.http.unwrap();
    let port = http.port();
    let nexus = http_get(http, "/rdr/pprdr.asp", &[]).await;
    let urls = nexus.header("PassportURLs").unwrap().to_string();
    // Read as gtmess and the IRC gateway read it: up to the next comma.
    let da_login = urls.split("DALogin=").nth(1).unwrap().split(',').next().unwrap();
    assert_eq!(da_login, format!("http://localhost:{port}/login2.srf"), "the Host header's name: {urls}");
    for field in ["DARealm=Passport.Net", "DAReg=", "Properties=", "GeneralRedir=", "Help=", "ConfigVersion="] {
        assert!(urls.contains(field), "{field} in {urls}");
    }
    // No Host header (Gaim 1.x): the address the client reached.
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let bare = http_exchange(stream, b"GET /rdr/pprdr.asp\r\n\r\n").await;
    assert!(bare.header("PassportURLs").unwrap().starts_with(&format!("DALogin=http://127.0.0.1:{port}/login2.srf,")));
    // A Host header that is not a host name is not echoed.
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    let odd = http_exchange(stream, b"GET /rdr/pprdr.asp HTTP/1.1\r\nHost: a\"b,c\r\n\r\n").await;
    assert!(odd.header("PassportURLs").unwrap().starts_with("DALogin=http://127.0.0.1:"));
}

#[tokio::test]
async fn every_request_form_real_clients_send_reaches_the_login_service() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let http = server.http.unwrap();
    let auth = passport_authorization("alice@example.com", "pw-alice", "lc=1033,id=507");
    for target in [
        "/login2.srf".to_string(),
        "https://localhost/login2.srf".to_string(),
        format!("http://127.0.0.1:{}/login2.srf", http.port()),
        "/login2.srf?x=1#frag".to_string(),
        // msnp11-sdk takes everything after `DALogin=` as its URL.
        "/login2.srf,DARealm=Passport.Net,DAReg=http://localhost/signup".to_string(),
    ] {
        let answer = http_get(http, &target, &[("Authorization", &auth)]).await;
        assert_eq!(answer.status, 200, "{target}");
        assert!(answer.header("Authentication-Info").unwrap().contains("from-PP='t="), "{target}");
    }
    let nexus = http_get(http, "http://localhost/rdr/pprdr.asp", &[]).await;
    assert!(nexus.header("PassportURLs").is_some(), "the nexus in absolute form");
    let health = http_get(http, &format!("http://localhost:{}/health", http.port()), &[]).await;
    assert_eq!((health.status, health.body.as_slice()), (200, b"ok\n".as_slice()), "the router in absolute form");
    let odd = http_get(http, "/a%2F..%2Flogin2.srf", &[]).await;
    assert_eq!(odd.status, 400, "an encoded slash is refused, not routed");
}

#[tokio::test]
async fn the_generated_certificate_names_localhost_and_the_public_host() {
    let server = TestServer::start_with(&["--public-host", "mariposa.test", "--https-listen", "127.0.0.1:0"]);
    let names = std::fs::read_to_string(server.data_dir().join("tls/cert.names")).expect("names recorded");
    for name in ["localhost", "127.0.0.1", "::1", "mariposa.test"] {
        assert!(names.lines().any(|l| l == name), "{name} in {names}");
    }
    // A client that checks the certificate by DNS name accepts it.
    let https = https_get(&server, "/rdr/pprdr.asp", &[]).await;
    assert!(https.header("PassportURLs").unwrap().starts_with("DALogin=mariposa.test:"));
}

#[tokio::test]
async fn a_fresh_account_first_sync_is_the_whole_batch_in_every_dialect() {
    let server = TestServer::start();
    let names: Vec<String> = (2..=12).map(|n| format!("fresh{n}")).collect();
    users(&server, &names.iter().map(String::as_str).collect::<Vec<_>>());
    for n in 2u8..=12 {
        let mut c = as_dialect(&server, n, &format!("fresh{n}")).await;
        c.send(if n >= 10 { "SYN 1 0 0" } else { "SYN 1 0" }).await;
        let lines: Vec<String> = c.sync_point_skipping().await.into_iter().map(|l| l.text).collect();
        // The MSNP2-7 batch: settings, the phones (MSNP5+), group 0
        // (MSNP7), then the four empty lists.
        let settings = ["SYN 1 0", "GTC 1 0 A", "BLP 1 0 AL"];
        let phones = ["PRP 1 0 PHH", "PRP 1 0 PHW", "PRP 1 0 PHM", "PRP 1 0 MOB", "PRP 1 0 MBE"];
        let lists = ["LST 1 FL 0 0 0", "LST 1 AL 0 0 0", "LST 1 BL 0 0 0", "LST 1 RL 0 0 0"];
        let mut expected: Vec<&str> = settings.to_vec();
        if n >= 5 {
            expected.extend(phones);
        }
        if n == 7 {
            expected.push("LSG 1 0 1 1 0 Other%20Contacts 0");
        }
        expected.extend(lists);
        if (8..=9).contains(&n) {
            expected = vec!["SYN 1 0 0 1", "GTC A", "BLP AL", "LSG 0 Other%20Contacts 0"];
        }
        if n >= 10 {
            assert!(lines[0].starts_with("SYN 1 ") && lines[0].ends_with(" 0 0"), "MSNP{n}: {lines:?}");
            assert_eq!(lines[1..4], ["GTC A", "BLP AL", &format!("PRP MFN Fresh{n}")], "MSNP{n}");
        } else {
            assert_eq!(lines, expected, "MSNP{n}");
        }
    }
}

#[tokio::test]
async fn a_repeated_privacy_mode_is_echoed_from_msnp8_and_refused_before() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut old = as_dialect(&server, 7, "alice").await;
    old.send("BLP 1 AL").await;
    old.expect("218 1").await;
    let mut p8 = as_dialect(&server, 8, "bob").await;
    // libpurple sends back the mode it was given, at every sign-in.
    p8.send("BLP 1 AL").await;
    p8.expect("BLP 1 0 AL").await;
    p8.send("GTC 2 A").await;
    p8.expect("GTC 2 0 A").await;
    p8.send("BLP 3 BL").await;
    p8.expect("BLP 3 1 BL").await;
    p8.send("BLP 4 BL").await;
    p8.expect("BLP 4 1 BL").await;
    let mut p12 = as_dialect(&server, 12, "carol").await;
    p12.send("BLP 1 AL").await;
    p12.expect("BLP 1 AL").await;
    p12.send("GTC 2 A").await;
    p12.expect("GTC 2 A").await;
    p12.sync_point().await;
}

#[tokio::test]
async fn blocking_in_the_order_msnp10_clients_send_takes_effect_at_once() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = as_dialect(&server, 11, "bob").await;
    bob.send("CHG 1 NLN 0").await;
    bob.expect("CHG 1 NLN 0").await;
    bob.sync_point_skipping().await;
    let mut alice = as_dialect(&server, 11, "alice").await;
    alice.send("ADC 2 FL N=bob@example.com F=Bob").await;
    alice.expect_prefix("ADC 2 FL N=bob@example.com").await;
    alice.send("ADC 3 AL N=bob@example.com").await;
    alice.expect("ADC 3 AL N=bob@example.com").await;
    alice.send("CHG 4 NLN 0").await;
    alice.expect("CHG 4 NLN 0").await;
    alice.sync_point_skipping().await;
    bob.send("ADC 5 FL N=alice@example.com F=Alice").await;
    let seen = bob.sync_point_skipping().await;
    alice.expect("ADC 0 RL N=bob@example.com F=Bob").await;
    assert!(seen.iter().any(|l| l.text.starts_with("ILN 5 NLN alice@example.com")), "{seen:?}");
    // msnp11-sdk blocks with ADC BL first, REM AL after.
    alice.send("ADC 6 BL N=bob@example.com").await;
    alice.expect("ADC 6 BL N=bob@example.com").await;
    bob.expect("FLN alice@example.com").await;
    alice.send("REM 7 AL bob@example.com").await;
    alice.expect("REM 7 AL bob@example.com").await;
    // Blocked: no conversation.
    bob.send("XFR 8 SB").await;
    let xfr = bob.expect_prefix("XFR 8 SB ").await;
    let mut sb = Client::connect_str(xfr.args()[3]).await;
    sb.send(&format!("USR 1 bob@example.com {}", xfr.args()[5])).await;
    sb.expect_prefix("USR 1 OK").await;
    sb.send("CAL 2 alice@example.com").await;
    sb.expect_prefix("21").await;
    // Unblocking the other way round: ADC AL first, REM BL after.
    alice.send("ADC 9 AL N=bob@example.com").await;
    alice.expect("ADC 9 AL N=bob@example.com").await;
    alice.send("REM 10 BL bob@example.com").await;
    alice.expect("REM 10 BL bob@example.com").await;
    bob.expect_prefix("NLN NLN alice@example.com").await;
    // MSNP2-9 keep the draft's rule.
    let mut old = as_dialect(&server, 9, "alice").await;
    old.send("ADD 1 BL bob@example.com bob@example.com").await;
    old.expect("219 1").await;
}

/// Alice leaves Bob an offline message; Bob signs in and is offered it.
async fn bob_is_offered_one(server: &TestServer, text: &str) -> Client {
    let alice = login_as_dialect(server, 11, "alice@example.com", "pw-alice").await;
    assert_eq!(store_offline(server, &alice, "alice@example.com", "bob@example.com", text).await.status, 200);
    sign_in_plain(server, "bob").await
}

/// Waits until the server has seen every connection end (nobody signed
/// in, no conversation open): it notices a closed socket asynchronously.
async fn wait_until_everyone_left(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = http_get(server.http.unwrap(), "/status.json", &[]).await;
        let s: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        if s["users_online"] == 0 && s["switchboard_sessions"] == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "connections still open: {s}");
        tokio::task::yield_now().await;
    }
}

/// Bob's next sign-in: whether the message is offered again.
async fn offered_again(server: &TestServer) -> bool {
    wait_until_everyone_left(server).await;
    let mut bob = sign_in_plain(server, "bob").await;
    bob.try_recv(Duration::from_secs(2)).await.is_some_and(|l| l.text.starts_with("RNG "))
}

#[tokio::test]
async fn a_message_read_by_a_client_that_then_quits_silently_is_not_shown_again() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = bob_is_offered_one(&server, "seen once").await;
    let (sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("seen once"));
    // A `msn listen` stopped with ^C: everything read, then the sockets close.
    drop(sb);
    drop(bob);
    assert!(!offered_again(&server).await, "a message the client read comes back");
}

#[tokio::test]
async fn a_message_read_and_followed_by_a_ping_is_confirmed() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = bob_is_offered_one(&server, "ping after").await;
    let (sb, _) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    // Never a word on the switchboard; the notification connection pings.
    bob.sync_point().await;
    sb.reset();
    bob.reset();
    assert!(!offered_again(&server).await, "the client spoke after reading it");
}

#[tokio::test]
async fn a_message_to_a_client_killed_before_reading_it_is_offered_again() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = bob_is_offered_one(&server, "not read").await;
    let rng = bob.expect_prefix("RNG ").await;
    let a = rng.args();
    let mut sb = tokio::net::TcpStream::connect(a[2]).await.unwrap();
    sb.write_all(format!("ANS 1 bob@example.com {} {}\r\n", a[4], a[1]).as_bytes()).await.unwrap();
    // The message arrives in the kernel's buffer (peeked at, not read);
    // the process dies with it unread.
    let mut seen = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n = sb.peek(&mut seen).await.unwrap();
        if String::from_utf8_lossy(&seen[..n]).contains("MSG alice@example.com") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the message never arrived");
        tokio::task::yield_now().await;
    }
    drop(sb);
    bob.reset();
    assert!(offered_again(&server).await, "a message the client never read is lost");
}

#[tokio::test]
async fn a_client_that_answers_and_quits_in_one_write_gets_the_message_again() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = bob_is_offered_one(&server, "ans and out").await;
    let rng = bob.expect_prefix("RNG ").await;
    let a = rng.args();
    let mut sb = Client::connect_str(a[2]).await;
    sb.send_raw(format!("ANS 1 bob@example.com {} {}\r\nOUT\r\n", a[4], a[1]).as_bytes()).await;
    sb.expect_closed().await;
    bob.send("OUT").await;
    bob.expect_closed().await;
    assert!(offered_again(&server).await, "OUT sent before the message was written confirmed it");
}

/// Bob's reply, typed in the conversation an offline message opened.
async fn reply_in_offline_conversation(server: &TestServer, alice: &Client, text: &str) -> (Client, Client) {
    assert_eq!(store_offline(server, alice, "alice@example.com", "bob@example.com", "call me").await.status, 200);
    let mut bob = sign_in_plain(server, "bob").await;
    let (mut sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("call me"));
    sb.send_payload(
        "MSG 2 A",
        format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}").as_bytes(),
    )
    .await;
    sb.expect("ACK 2").await;
    (bob, sb)
}

#[tokio::test]
async fn a_reply_to_an_offline_message_reaches_its_sender_online_in_a_real_conversation() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    alice.send("CHG 1 NLN 0").await;
    alice.expect("CHG 1 NLN 0").await;
    alice.sync_point_skipping().await;
    let (_bob, mut bob_sb) = reply_in_offline_conversation(&server, &alice, "on my way").await;
    let rng = alice.expect_prefix("RNG ").await;
    let a = rng.args();
    assert_eq!(a[5], "bob@example.com", "{}", rng.text);
    let mut sb = Client::connect_str(a[2]).await;
    sb.send(&format!("ANS 1 alice@example.com {} {}", a[4], a[1])).await;
    sb.expect_prefix("IRO 1 1 1 bob@example.com ").await;
    sb.expect("ANS 1 OK").await;
    let reply = sb.expect_prefix("MSG bob@example.com ").await;
    assert!(String::from_utf8(reply.payload.unwrap()).unwrap().ends_with("on my way"));
    // From now on it is an ordinary conversation, both ways.
    bob_sb.send_payload("MSG 3 A", b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nsecond").await;
    bob_sb.expect("ACK 3").await;
    assert!(
        String::from_utf8(sb.expect_prefix("MSG bob@example.com ").await.payload.unwrap()).unwrap().ends_with("second")
    );
    sb.send_payload("MSG 2 A", b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello bob").await;
    sb.expect("ACK 2").await;
    let back = bob_sb.expect_prefix("MSG alice@example.com ").await;
    assert!(String::from_utf8(back.payload.unwrap()).unwrap().ends_with("hello bob"));
}

#[tokio::test]
async fn a_reply_to_an_offline_message_whose_sender_is_offline_is_left_for_them() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    let (_bob, _sb) = reply_in_offline_conversation(&server, &alice, "got it").await;
    drop(alice);
    // Signing in again replaces the old session if the server has not yet
    // seen it end.
    let mut alice = sign_in_plain(&server, "alice").await;
    let (_sb, shown) = answer_offline(&mut alice, "alice@example.com", "bob@example.com").await;
    assert_eq!(shown.len(), 1);
    assert!(shown[0].ends_with("got it"), "{}", shown[0]);
}

#[tokio::test]
async fn url_names_the_port_the_http_listener_bound() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let mut a = as_dialect(&server, 8, "alice").await;
    a.send("URL 5 INBOX").await;
    let url = a.expect_prefix("URL 5 /inbox ").await;
    let port = server.http.unwrap().port();
    assert!(url.text.contains(&format!(":{port}/")), "{} (listener on port {port})", url.text);
}
