//! Hostile clients over real TCP, beyond the garbage and limits of
//! robustness.rs: crowds of silent connections, TrIDs at the edge of their
//! range, bytes that are not text, senders forged inside payloads, and
//! floods of pipelined commands. Each gets a defined answer, and the other
//! users in the same server carry on.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// The server's resident memory, in KiB.
fn rss_kib(server: &TestServer) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("the server's status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
}

/// A connection from a chosen loopback address (the per-address cap is per
/// source address, so a crowd comes from many).
async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    socket.connect(to).await.expect("connect")
}

#[tokio::test]
async fn thousands_of_silent_connections_cost_little_are_reaped_and_nobody_notices() {
    let server = TestServer::start_with(&["--login-timeout-secs", "3"]);
    let before = rss_kib(&server);
    // 2,000 connections that never send a byte, from 10 addresses, on both
    // ports: what a SYN-flood-like crowd or a broken NAT leaves behind.
    let mut crowd = Vec::new();
    for i in 0..2000u32 {
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 3, (i % 10) as u8 + 1));
        let to = if i % 2 == 0 { server.dispatch } else { server.ns };
        crowd.push(connect_from(source, to).await);
    }
    // Meanwhile, people sign in and chat as usual.
    let (mut a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    a.send_payload("MSG 5 N", &text_message("still here")).await;
    b.expect(&format!("MSG alice@example.com Alice {}", text_message("still here").len())).await;
    let grown = rss_kib(&server).saturating_sub(before);
    assert!(grown < 2000 * 16, "2,000 silent connections grew the server by {grown} KiB");
    // Every silent connection is closed by the server at the login timeout.
    for mut c in crowd {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), c.read(&mut byte)).await.expect("closed in time");
        assert!(matches!(read, Ok(0) | Err(_)), "a silent connection got {read:?}");
    }
    a_ns.sync_point().await;
}

#[tokio::test]
async fn trids_at_the_top_of_their_range_are_echoed_and_beyond_it_are_errors() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let (mut a, _) = online_as(&server, "alice").await;
    a.send("GTC 4294967295 N").await;
    a.expect_prefix("GTC 4294967295 ").await;
    a.send("BLP 4294967294 BL").await;
    a.expect_prefix("BLP 4294967294 ").await;
    // One past the largest: no readable TrID, so a 200 without one, and the
    // connection goes on.
    a.send("GTC 4294967296 A").await;
    a.expect("200").await;
    a.send("GTC -1 A").await;
    a.expect("200").await;
    a.send("GTC 0 A").await;
    a.expect_prefix("GTC 0 ").await;
    a.sync_point().await;
}

#[tokio::test]
async fn bytes_that_are_not_text_in_names_are_refused_and_in_messages_are_relayed_untouched() {
    let server = TestServer::start();
    let (mut a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    // Control characters, encoded or raw, and invalid UTF-8 in names.
    for (trid, name) in [(10, "Al%07ice"), (11, "Al%00ice"), (12, "%0D%0A"), (13, "%C3%28")] {
        a_ns.send(&format!("REA {trid} alice@example.com {name}")).await;
        a_ns.expect(&format!("209 {trid}")).await;
    }
    a_ns.send_raw(b"REA 14 alice@example.com \xff\xfe\r\n").await;
    a_ns.expect("209 14").await;
    a_ns.send_raw(b"ADD 15 FL carol@example.com Caro\x01l\r\n").await;
    a_ns.expect("209 15").await;
    // The name did not change.
    a_ns.send("REA 16 alice@example.com Alice").await;
    a_ns.expect_prefix("REA 16 ").await;

    // A message body is opaque bytes: relayed exactly, whatever it holds.
    let mut body = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    body.extend_from_slice(b"\x00\x07\xff\xfe\xc3\x28\r\n\x1b[31m");
    a.send_payload("MSG 6 N", &body).await;
    let got = b.expect(&format!("MSG alice@example.com Alice {}", body.len())).await;
    assert_eq!(got.payload.unwrap(), body);
}

#[tokio::test]
async fn a_sender_forged_inside_a_payload_never_decides_who_sent_it() {
    let server = TestServer::start();
    let (_a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    // A payload that tries to look like the end of one message and the start
    // of another from Bob, plus a forged alias header.
    let forged =
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nP4-Context: Bob\r\n\r\nhi\r\nMSG bob@example.com Bob 2\r\n\r\nok";
    a.send_payload("MSG 7 N", forged).await;
    let got = b.expect(&format!("MSG alice@example.com Alice {}", forged.len())).await;
    assert_eq!(got.payload.unwrap(), forged);
    // Nothing else arrived: the next thing Bob sees is Alice's next message.
    a.send_payload("MSG 8 N", &text_message("next")).await;
    b.expect(&format!("MSG alice@example.com Alice {}", text_message("next").len())).await;
}

#[tokio::test]
async fn a_pipelined_flood_is_answered_in_order_and_nobody_else_waits() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    let (_b_ns, _c_ns, mut b, mut c) = {
        // Bob and Carol chat while Alice floods.
        let (mut b_ns, _) = online_as(&server, "bob").await;
        let (mut c_ns, _) = online_as(&server, "carol").await;
        let mut b = open_session(&server, &mut b_ns, "bob@example.com", "Bob").await;
        let (c, _) = invite(&mut b, 2, &mut c_ns, "carol@example.com").await;
        b.expect("JOI carol@example.com Carol").await;
        (b_ns, c_ns, b, c)
    };
    let flood = "PNG\r\n".repeat(20_000);
    let reader = tokio::spawn(async move {
        a.send_raw(flood.as_bytes()).await;
        for _ in 0..20_000 {
            a.expect("QNG").await;
        }
        a
    });
    for i in 0..20 {
        b.send_payload(&format!("MSG {} N", 10 + i), &text_message("during the flood")).await;
        c.expect_prefix("MSG bob@example.com Bob ").await;
    }
    let mut a = reader.await.unwrap();
    a.sync_point().await;
}
