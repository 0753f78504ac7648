//! Switchboard sessions over real TCP: cookies, invitations, rosters,
//! message relay and acknowledgements, leaving.

mod common;

use common::*;

#[tokio::test]
async fn two_party_chat_follows_the_draft() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;

    a.send("CAL 2 bob@example.com").await;
    let cal = a.expect_prefix("CAL 2 RINGING ").await;
    let session_id = cal.args()[3].to_string();
    let rng = b_ns.expect_prefix(&format!("RNG {session_id} ")).await;
    let args = rng.args();
    assert_eq!(args.len(), 7, "{}", rng.text);
    assert_eq!(&args[5..], ["alice@example.com", "Alice"]);
    let mut b = Client::connect_str(args[2]).await;
    b.send(&format!("ANS 1 bob@example.com {} {session_id}", args[4])).await;
    b.expect("IRO 1 1 1 alice@example.com Alice").await;
    b.expect("ANS 1 OK").await;
    a.expect("JOI bob@example.com Bob").await;

    // Relayed byte for byte, with the real sender; A gets ACK, N and U nothing.
    let body = text_message("Hello Bob! über");
    a.send_payload("MSG 3 A", &body).await;
    a.expect("ACK 3").await;
    let m = b.expect(&format!("MSG alice@example.com Alice {}", body.len())).await;
    assert_eq!(m.payload.unwrap(), body);
    let typing = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: bob@example.com\r\n\r\n\r\n";
    b.send_payload("MSG 2 U", typing).await;
    b.send_payload("MSG 3 N", &text_message("hi")).await;
    assert_eq!(a.expect(&format!("MSG bob@example.com Bob {}", typing.len())).await.payload.unwrap(), typing);
    a.expect_prefix("MSG bob@example.com Bob ").await;
    b.sync_point_sb().await;
    a.expect_prefix("MSG bob@example.com Bob ").await;

    b.send("OUT").await;
    assert!(b.expect_closed().await.is_empty());
    a.expect("BYE bob@example.com").await;
    // Alone now: N and A are NAKed, U says nothing.
    a.send_payload("MSG 4 N", &text_message("anyone?")).await;
    a.expect("NAK 4").await;
    a.send_payload("MSG 5 A", &text_message("anyone?")).await;
    a.expect("NAK 5").await;
    a.send_payload("MSG 6 U", &text_message("anyone?")).await;
    a.expect_silence().await;
}

trait SbSync {
    async fn sync_point_sb(&mut self);
}

impl SbSync for Client {
    /// On a switchboard an A message to a peer is acknowledged: that proves
    /// everything sent before it was processed.
    async fn sync_point_sb(&mut self) {
        self.send_payload("MSG 999 A", &text_message("sync")).await;
        self.expect("ACK 999").await;
    }
}

#[tokio::test]
async fn three_party_chat_rosters_and_relay() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let (mut c_ns, _) = online_as(&server, "carol").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let (mut b, iro) = invite(&mut a, 2, &mut b_ns, "bob@example.com").await;
    assert_eq!(iro, ["IRO 7 1 1 alice@example.com Alice"]);
    a.expect("JOI bob@example.com Bob").await;
    // Bob invites Carol: any participant may.
    let (mut c, iro) = invite(&mut b, 3, &mut c_ns, "carol@example.com").await;
    assert_eq!(iro, ["IRO 7 1 2 alice@example.com Alice", "IRO 7 2 2 bob@example.com Bob"]);
    a.expect("JOI carol@example.com Carol").await;
    b.expect("JOI carol@example.com Carol").await;

    let body = text_message("hello both");
    c.send_payload("MSG 9 A", &body).await;
    c.expect("ACK 9").await;
    for peer in [&mut a, &mut b] {
        assert_eq!(peer.expect(&format!("MSG carol@example.com Carol {}", body.len())).await.payload.unwrap(), body);
    }
    drop(b);
    a.expect("BYE bob@example.com").await;
    c.expect("BYE bob@example.com").await;
    a.send_payload("MSG 10 N", &body).await;
    c.expect_prefix("MSG alice@example.com Alice ").await;
    a.expect_silence().await;
}

#[tokio::test]
async fn cal_checks_online_state_and_privacy_without_revealing_blocks() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol", "dave", "erin", "frank"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    // bob: blocks alice; carol: hidden; dave: BLP BL without alice on AL;
    // erin: offline; frank: BLP BL with alice on AL (allowed).
    let (mut b_ns, _) = online_as(&server, "bob").await;
    b_ns.send("ADD 1 BL alice@example.com alice@example.com").await;
    b_ns.expect_prefix("ADD 1 BL ").await;
    let (mut c_ns, _) = online_as(&server, "carol").await;
    c_ns.send("CHG 1 HDN").await;
    c_ns.expect("CHG 1 HDN").await;
    let (mut d_ns, _) = online_as(&server, "dave").await;
    d_ns.send("BLP 1 BL").await;
    d_ns.expect_prefix("BLP 1 ").await;
    let (mut f_ns, _) = online_as(&server, "frank").await;
    f_ns.send("BLP 1 BL").await;
    f_ns.expect_prefix("BLP 1 ").await;
    f_ns.send("ADD 2 AL alice@example.com alice@example.com").await;
    f_ns.expect_prefix("ADD 2 AL ").await;

    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let cases = [
        ("CAL 2 bob@example.com", "217 2"),
        ("CAL 3 carol@example.com", "217 3"),
        ("CAL 4 dave@example.com", "217 4"),
        ("CAL 5 erin@example.com", "217 5"),
        ("CAL 6 nobody@example.com", "217 6"),
        ("CAL 7 not-a-handle", "208 7"),
        ("CAL 8 alice@example.com", "215 8"),
    ];
    for (send, expect) in cases {
        a.send(send).await;
        a.expect(expect).await;
    }
    a.send("CAL 9 frank@example.com").await;
    a.expect_prefix("CAL 9 RINGING ").await;
    f_ns.expect_prefix("RNG ").await;
    // Nobody who refused got an RNG.
    for ns in [&mut b_ns, &mut c_ns, &mut d_ns] {
        ns.sync_point().await;
    }
}

#[tokio::test]
async fn cookies_are_single_use_bound_to_their_user_and_session() {
    let server = TestServer::start_with(&["--cookie-lifetime-secs", "2"]);
    users(&server, &["alice", "bob", "carol"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;

    // A forged cookie.
    let mut x = Client::connect(server.dispatch).await;
    x.send("USR 1 alice@example.com 123.456.789").await;
    assert_eq!(x.expect_closed().await.iter().map(|l| l.text.clone()).collect::<Vec<_>>(), ["911 1"]);

    // Another user's cookie.
    a_ns.send("XFR 2 SB").await;
    let cookie = a_ns.expect_prefix("XFR 2 SB ").await.args()[5].to_string();
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("USR 1 bob@example.com {cookie}")).await;
    assert_eq!(x.expect_closed().await.len(), 1);
    // ...which also consumed it: the owner cannot use it now either.
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("USR 1 alice@example.com {cookie}")).await;
    x.expect("911 1").await;

    // A reused cookie.
    a_ns.send("XFR 3 SB").await;
    let cookie = a_ns.expect_prefix("XFR 3 SB ").await.args()[5].to_string();
    let mut a = Client::connect(server.dispatch).await;
    a.send(&format!("USR 1 alice@example.com {cookie}")).await;
    a.expect_prefix("USR 1 OK ").await;
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("USR 1 alice@example.com {cookie}")).await;
    x.expect("911 1").await;

    // An invitation cookie is good only for ANS to its own session, by the invitee.
    a.send("CAL 2 bob@example.com").await;
    let sid = a.expect_prefix("CAL 2 RINGING ").await.args()[3].to_string();
    let rng = b_ns.expect_prefix("RNG ").await;
    let cookie = rng.args()[4].to_string();
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("USR 1 bob@example.com {cookie}")).await;
    x.expect("911 1").await;
    a.send("CAL 3 bob@example.com").await;
    a.expect_prefix("CAL 3 RINGING ").await;
    let cookie = b_ns.expect_prefix("RNG ").await.args()[4].to_string();
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("ANS 1 bob@example.com {cookie} {}", sid.parse::<u32>().unwrap() + 1)).await;
    x.expect("911 1").await;

    // An expired one.
    a.send("CAL 4 bob@example.com").await;
    a.expect_prefix("CAL 4 RINGING ").await;
    let cookie = b_ns.expect_prefix("RNG ").await.args()[4].to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut x = Client::connect(server.dispatch).await;
    x.send(&format!("ANS 1 bob@example.com {cookie} {sid}")).await;
    x.expect("911 1").await;
}

#[tokio::test]
async fn commands_outside_a_session_are_refused() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    a.send("USR 2 alice@example.com 1.2.3").await;
    a.expect("715 2").await;
    a.send("FOO 3").await;
    a.expect("200 3").await;
    // An ANS whose session id is not a number cannot name a session.
    let mut x = Client::connect(server.dispatch).await;
    x.send("ANS 1 alice@example.com nonsense notanumber").await;
    x.expect("911 1").await;
}

#[tokio::test]
async fn oversized_messages_and_bad_ack_letters_close_the_connection() {
    let server = TestServer::start_with(&["--max-message-size", "100"]);
    let (mut a_ns, mut b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    let exactly = vec![b'x'; 100];
    a.send_payload("MSG 3 A", &exactly).await;
    a.expect("ACK 3").await;
    assert_eq!(b.expect("MSG alice@example.com Alice 100").await.payload.unwrap(), exactly);
    // One byte over: the announced length alone closes the connection,
    // before any payload is read.
    a.send("MSG 4 A 101").await;
    assert!(a.expect_closed().await.is_empty());
    b.expect("BYE alice@example.com").await;

    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    let (_b, _) = invite(&mut a, 2, &mut b_ns, "bob@example.com").await;
    a.expect("JOI bob@example.com Bob").await;
    a.send_payload("MSG 5 a", b"x").await;
    let rest = a.expect_closed().await;
    assert_eq!(rest.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["201 5"]);
}

#[tokio::test]
async fn the_default_limit_is_1664_bytes() {
    let server = TestServer::start();
    let (_a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    a.send_payload("MSG 3 N", &vec![b'y'; 1664]).await;
    b.expect("MSG alice@example.com Alice 1664").await;
    a.send_payload("MSG 4 N", &vec![b'y'; 1665]).await;
    assert!(a.expect_closed().await.is_empty());
}

#[tokio::test]
async fn a_session_with_nobody_left_ends() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut a_ns, _) = online_as(&server, "alice").await;
    let (mut b_ns, _) = online_as(&server, "bob").await;
    let mut a = open_session(&server, &mut a_ns, "alice@example.com", "Alice").await;
    a.send("CAL 2 bob@example.com").await;
    let sid = a.expect_prefix("CAL 2 RINGING ").await.args()[3].to_string();
    let rng = b_ns.expect_prefix("RNG ").await;
    a.send("OUT").await;
    assert!(a.expect_closed().await.is_empty());
    // Bob answers the ring after everyone left: the session is gone.
    let mut b = Client::connect_str(rng.args()[2]).await;
    b.send(&format!("ANS 1 bob@example.com {} {sid}", rng.args()[4])).await;
    b.expect("911 1").await;
    let answer = http_get(server.http.unwrap(), "/status.json", &[]).await;
    let status: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(status["switchboard_sessions"], 0);
    assert_eq!(status["users_online"], 2);
}
