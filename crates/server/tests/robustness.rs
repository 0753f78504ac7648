//! Hostile and broken clients: limits, timeouts, garbage. None of it may
//! panic the server or affect anyone else.

mod common;

use common::*;

#[tokio::test]
async fn an_endless_line_is_disconnected_and_others_carry_on() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a, _) = online_as(&server, "alice").await;
    let mut x = Client::connect(server.ns).await;
    x.send_raw(&vec![b'A'; 5000]).await;
    assert!(x.expect_closed().await.is_empty());
    let mut x = Client::connect(server.dispatch).await;
    x.send_raw(&vec![b'A'; 5000]).await;
    assert!(x.expect_closed().await.is_empty());
    // A line of exactly the limit is fine.
    let mut x = Client::connect(server.ns).await;
    x.send(&format!("VER 1 MSNP2 {}", "X".repeat(4096 - 12))).await;
    x.expect("VER 1 MSNP2").await;
    x.send(&format!("VER 2 MSNP2 {}", "X".repeat(4096 - 11))).await;
    assert!(x.expect_closed().await.is_empty());
    a.sync_point().await;
    let (_b, _) = online_as(&server, "bob").await;
}

#[tokio::test]
async fn a_client_that_never_finishes_a_line_is_disconnected() {
    let server = TestServer::start_with(&["--partial-line-timeout-secs", "1"]);
    users(&server, &["alice"]);
    let (mut a, _) = online_as(&server, "alice").await;
    // Signed in, then trickles half a command.
    a.send_raw(b"CHG 5 NL").await;
    let start = std::time::Instant::now();
    assert!(a.expect_closed().await.is_empty());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // A payload that never fully arrives is the same.
    let (mut a, _) = online_as(&server, "alice").await;
    a.send_raw(b"QRY 6 x 10\r\n12345").await;
    assert!(a.expect_closed().await.is_empty());
}

#[tokio::test]
async fn a_client_that_never_signs_in_is_disconnected() {
    let server = TestServer::start_with(&["--login-timeout-secs", "1"]);
    let mut x = Client::connect(server.ns).await;
    x.send("VER 1 MSNP2").await;
    x.expect("VER 1 MSNP2").await;
    assert!(x.expect_closed().await.is_empty());
    let mut silent = Client::connect(server.dispatch).await;
    assert!(silent.expect_closed().await.is_empty());
}

#[tokio::test]
async fn garbage_gets_errors_not_crashes() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut b, _) = online_as(&server, "bob").await;
    let (mut a, _) = online_as(&server, "alice").await;
    let junk: [&[u8]; 8] = [
        b"\x00\x01\x02\r\n",
        b"\xc3\x28 1\r\n",
        b"ADD 1 FL \xff@example.com x\r\n",
        b"ADD 2 FL bob@example.com %\r\n",
        b"CHG 3\r\n",
        b"   \r\n",
        b"REM 4 FL\r\n",
        b"CHG 99999999999999999999 NLN\r\n",
    ];
    for j in junk {
        a.send_raw(j).await;
    }
    // The second line's verb is not one; its TrID is still readable.
    for expected in ["200", "200 1", "201 1", "209 2", "200 3", "200 4", "200"] {
        a.expect(expected).await;
    }
    a.sync_point().await;
    b.sync_point().await;
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let server = TestServer::start_with(&["--rate-list-changes", "1000/100", "--abuse-strikes", "1000"]);
    users(&server, &["alice"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    let mut burst = String::new();
    for i in 1..=200 {
        burst.push_str(&format!("PNG\r\nGTC {i} {}\r\n", if i % 2 == 1 { "N" } else { "A" }));
    }
    a.send_raw(burst.as_bytes()).await;
    for i in 1..=200u32 {
        a.expect("QNG").await;
        a.expect(&format!("GTC {i} {i} {}", if i % 2 == 1 { "N" } else { "A" })).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_hurting_the_sender() {
    let server = TestServer::start_with(&[
        "--rate-messages",
        "100000/100000",
        "--rate-messages-per-connection",
        "100000/100000",
        "--abuse-strikes",
        "100000",
    ]);
    users(&server, &["alice", "bob"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let (_b, _) = invite(&mut a, 2, &mut b_ns, "bob@example.com").await;
    a.expect_prefix("JOI ").await;
    // Bob never reads again. Alice sends far more than any buffer holds;
    // she is paced while Bob's queue is full (not refused: a slow reader
    // is not a dead one), and once Bob has taken nothing for the patience
    // the server drops him rather than queueing without bound, and Alice
    // carries on with her acknowledgements.
    let payload = text_message(&"z".repeat(1500));
    let mut bye = false;
    for i in 0..40_000u32 {
        a.send_payload(&format!("MSG {i} N"), &payload).await;
        if i % 500 == 499 {
            a.send_payload("MSG 999999 A", &text_message("probe")).await;
            loop {
                let l = a.recv().await;
                if l.text == "ACK 999999" || l.text == "NAK 999999" {
                    break;
                }
                if l.text == "BYE bob@example.com" {
                    bye = true;
                }
            }
            if bye {
                break;
            }
        }
    }
    assert!(bye, "the stalled reader was removed from the session");
    a.send_payload("MSG 5 N", &text_message("still here")).await;
    a.expect("NAK 5").await;
}
