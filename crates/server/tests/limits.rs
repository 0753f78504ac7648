//! What a public service needs beyond the draft: heartbeats and lifetimes,
//! flood control, brute-force throttling, and limits with the codes clients
//! expect.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn a_silent_client_is_reaped_and_its_watchers_see_it_leave() {
    let server = TestServer::start_with(&["--idle-timeout-secs", "1", "--legacy-idle-timeout-secs", "1"]);
    let (mut a, mut b) = alice_watching_bob(&server).await;
    // Bob says nothing more; Alice waits for his FLN, pinging whenever the
    // line has been quiet for a while so that she is not reaped herself.
    let mut bob_closed = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match a.try_recv(Duration::from_millis(400)).await {
            Some(l) if l.text == "FLN bob@example.com" => {
                bob_closed = true;
                break;
            }
            Some(l) => assert_eq!(l.text, "QNG"),
            None => a.send("PNG").await,
        }
    }
    assert!(bob_closed, "watchers got FLN for the silent client");
    assert!(b.expect_closed().await.is_empty());
}

#[tokio::test]
async fn an_idle_switchboard_participant_leaves_with_bye_1() {
    let server = TestServer::start_with(&["--switchboard-idle-timeout-secs", "1"]);
    let (_a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    // Alice keeps talking, Bob says nothing: Bob is timed out.
    let mut bye = None;
    for i in 0..8u32 {
        a.send_payload(&format!("MSG {i} U"), &text_message("still here")).await;
        if let Some(l) = a.try_recv(Duration::from_millis(300)).await {
            bye = Some(l.text);
            break;
        }
    }
    assert_eq!(bye.as_deref(), Some("BYE bob@example.com 1"));
    let rest = b.expect_closed().await;
    assert!(rest.iter().all(|l| l.text.starts_with("MSG ")), "{rest:?}");
}

#[tokio::test]
async fn a_message_flood_is_refused_then_disconnected_and_others_are_unaffected() {
    let server = TestServer::start_with(&["--rate-messages", "5/1", "--abuse-strikes", "10"]);
    users(&server, &["alice", "bob", "carol", "dave"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let (mut b, _) = invite(&mut a, 2, &mut b_ns, "bob@example.com").await;
    a.expect("JOI bob@example.com Bob").await;
    // Carol and Dave chat normally alongside.
    let (mut c_ns, _) = online_as(&server, "carol").await;
    let (mut d_ns, _) = online_as(&server, "dave").await;
    let mut c = open_session(&server, &mut c_ns, "carol@example.com", "Carol").await;
    let (mut d, _) = invite(&mut c, 2, &mut d_ns, "dave@example.com").await;
    c.expect("JOI dave@example.com Dave").await;

    for i in 0..5u32 {
        a.send_payload(&format!("MSG {i} A"), &text_message("spam")).await;
        a.expect(&format!("ACK {i}")).await;
    }
    a.send_payload("MSG 5 A", &text_message("spam")).await;
    a.expect("NAK 5").await;
    let mut got_nak = 1;
    for i in 6..40u32 {
        a.send_payload(&format!("MSG {i} N"), &text_message("spam")).await;
    }
    let rest = a.expect_closed().await;
    got_nak += rest.iter().filter(|l| l.text.starts_with("NAK ")).count();
    assert!(got_nak >= 10, "refused with NAK before the disconnect: {rest:?}");
    b.expect_prefix("MSG alice@example.com").await;

    c.send_payload("MSG 3 A", &text_message("hello Dave")).await;
    c.expect("ACK 3").await;
    d.expect_prefix("MSG carol@example.com Carol ").await;
    let s = status(&server).await;
    assert!(s["rate_limited"]["messages"].as_u64().unwrap() >= 10);
    assert!(s["abuse_disconnects"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn state_list_and_invitation_floods_get_the_dialect_codes() {
    let server = TestServer::start_with(&[
        "--rate-state-changes",
        "2/0.1",
        "--rate-list-changes",
        "2/0.1",
        "--rate-invitations",
        "2/0.1",
        "--abuse-strikes",
        "6",
    ]);
    users(&server, &["alice", "bob", "carol", "dave"]);
    let (mut a, _) = online_as(&server, "alice").await; // one CHG used
    a.send("CHG 1 AWY").await;
    a.expect("CHG 1 AWY").await;
    a.send("CHG 2 BSY").await;
    a.expect("800 2").await;
    a.send("REA 3 alice@example.com Al").await;
    a.expect("800 3").await;
    a.send("ADD 4 FL bob@example.com Bob").await;
    a.expect_prefix("ADD 4 FL ").await;
    a.send("ADD 5 FL carol@example.com Carol").await;
    a.expect_prefix("ADD 5 FL ").await;
    a.send("ADD 6 FL dave@example.com Dave").await;
    a.expect("713 6").await;
    a.send("XFR 7 SB").await;
    a.expect_prefix("XFR 7 SB ").await;
    a.send("XFR 8 SB").await;
    a.expect_prefix("XFR 8 SB ").await;
    a.send("XFR 9 SB").await;
    a.expect("713 9").await;
    // Strikes 4..7: the seventh refusal in a minute closes the connection.
    for t in 10..13 {
        a.send(&format!("CHG {t} NLN")).await;
    }
    let rest = a.expect_closed().await;
    assert_eq!(rest.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["800 10", "800 11", "800 12"]);
    // Someone else is unaffected.
    let (mut b, _) = online_as(&server, "bob").await;
    b.send("CHG 1 AWY").await;
    b.expect("CHG 1 AWY").await;
}

#[tokio::test]
async fn brute_force_logins_are_slowed_then_refused() {
    let server = TestServer::start_with(&["--login-failures-per-account", "4", "--login-failures-per-address", "1000"]);
    users(&server, &["alice", "bob"]);
    for _ in 0..4 {
        assert_eq!(direct_login(server.ns, "alice@example.com", "guess").await.1, "911 3");
    }
    // Locked: even the right password is refused, exactly like a wrong one.
    assert_eq!(direct_login(server.ns, "alice@example.com", "pw-alice").await.1, "911 3");
    // Passport logins of the same account are locked too.
    let auth = passport_authorization("alice@example.com", "pw-alice", "lc=1033");
    assert_eq!(http_get(server.http.unwrap(), "/login2.srf", &[("Authorization", &auth)]).await.status, 401);
    // Other accounts are not.
    assert_eq!(direct_login(server.ns, "bob@example.com", "pw-bob").await.1, "USR 3 OK bob@example.com Bob");
    let s = status(&server).await;
    assert!(s["logins"]["slowed"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["logins"]["refused"].as_u64().unwrap() >= 2, "{s}");
}

#[tokio::test]
async fn parallel_guesses_are_counted_before_they_are_checked() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let http = server.http.unwrap();
    // 200 Passport guesses at once from one address; number 190 is right.
    let guesses: Vec<_> = (0..200)
        .map(|i| {
            let password = if i == 190 { "pw-alice".to_string() } else { format!("guess{i}") };
            tokio::spawn(async move {
                let auth = passport_authorization("alice@example.com", &password, "lc=1033");
                http_get(http, "/login2.srf", &[("Authorization", &auth)]).await.status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 401), "a guess got through: {statuses:?}");
    // And 40 MD5 guesses at once on another account, the right one last.
    let md5: Vec<_> = (0..40)
        .map(|i| {
            let ns = server.ns;
            let password = if i == 39 { "pw-bob".to_string() } else { format!("guess{i}") };
            tokio::spawn(async move { direct_login(ns, "bob@example.com", &password).await.1 })
        })
        .collect();
    let mut md5_answers = Vec::new();
    for g in md5 {
        md5_answers.push(g.await.unwrap());
    }
    // Only guesses admitted under the limits are checked; a right password
    // among those may pass, no more than that.
    assert!(md5_answers.iter().filter(|a| a.starts_with("USR 3 OK")).count() <= 1);
    let s = status(&server).await;
    let checked = s["logins"]["failed"].as_u64().unwrap() + s["logins"]["succeeded"].as_u64().unwrap();
    assert!(checked <= 30, "at most the address's limit of passwords was checked: {s}");
    assert!(s["logins"]["refused"].as_u64().unwrap() >= 200, "{s}");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_refused() {
    let server = TestServer::start_with(&["--login-failures-per-address", "3", "--login-failures-per-account", "1000"]);
    let names: Vec<String> = (0..4).map(|i| format!("u{i}")).collect();
    users(&server, &names.iter().map(String::as_str).collect::<Vec<_>>());
    for n in &names[..3] {
        assert_eq!(direct_login(server.ns, &format!("{n}@example.com"), "guess").await.1, "911 3");
    }
    assert_eq!(direct_login(server.ns, "u3@example.com", "pw-u3").await.1, "911 3");
}

#[tokio::test]
async fn limits_answer_with_the_codes_clients_expect() {
    let server = TestServer::start_with(&[
        "--max-sessions-per-user",
        "2",
        "--max-switchboard-participants",
        "2",
        "--max-connections-per-address",
        "12",
    ]);
    users(&server, &["alice", "bob", "carol"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let (_c_ns, _) = online_as(&server, "carol").await;
    let mut s1 = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let _s2 = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    a_ns.send("XFR 9 SB").await;
    a_ns.expect("714 9").await;
    // Participants per session: Bob makes two; Carol would be the third.
    let (_b, _) = invite(&mut s1, 2, &mut b_ns, "bob@example.com").await;
    s1.expect("JOI bob@example.com Bob").await;
    s1.send("CAL 3 carol@example.com").await;
    s1.expect("712 3").await;
    // Connections per address: 3 NS + 3 SB (+ the dispatch ones, closed)
    // are open; the 13th connection from 127.0.0.1 is refused at once.
    let mut extra = Vec::new();
    for _ in 0..6 {
        extra.push(tokio::net::TcpStream::connect(server.dispatch).await.unwrap());
    }
    let mut refused = Client::connect(server.dispatch).await;
    assert!(refused.expect_closed().await.is_empty());
    // The web listener shares the address's budget: the status page is
    // served again once the server has seen the extra connections close.
    drop(extra);
    drop(refused);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let s = loop {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
        let _ = stream.write_all(b"GET /status.json HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        if let Some(body) = String::from_utf8_lossy(&raw).split("\r\n\r\n").nth(1) {
            break serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "the status page stayed refused");
        tokio::task::yield_now().await;
    };
    assert!(s["refused_connections"].as_u64().unwrap() >= 1);
}
