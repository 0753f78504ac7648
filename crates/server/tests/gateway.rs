//! The HTTP polling gateway: MSNP sessions carried in HTTP requests, for
//! every dialect, side by side with TCP users, and what it does with
//! sessions that are not the caller's, oversized bodies, floods of sessions
//! and clients that stop polling.

mod common;

use std::net::SocketAddr;

use client::conn::ServerKind;
use common::*;
use msnp::Dialect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// A gateway request over a fresh connection from `from`, as bitlbee sends
/// them (origin-form target, one request per connection).
async fn post_from(from: &str, http: SocketAddr, query: &str, body: &[u8]) -> HttpAnswer {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(http).await.unwrap();
    let mut request = format!(
        "POST /gateway/gateway.dll?{query} HTTP/1.1\r\nHost: gateway.messenger.hotmail.com\r\n\
         Content-Type: application/x-msn-messenger\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    http_exchange(stream, &request).await
}

async fn post(http: SocketAddr, query: &str, body: &[u8]) -> HttpAnswer {
    post_from("127.0.0.1", http, query, body).await
}

/// The session id an answer names.
fn session_of(answer: &HttpAnswer) -> String {
    let header = answer.header("X-MSN-Messenger").expect("an X-MSN-Messenger header");
    let id = header.split("; ").find_map(|p| p.strip_prefix("SessionID=")).expect("a SessionID");
    id.to_string()
}

fn closed(answer: &HttpAnswer) -> bool {
    answer.header("X-MSN-Messenger").is_some_and(|h| h.split("; ").any(|p| p == "Session=close"))
}

fn text(answer: &HttpAnswer) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

/// Signs `name` in with MSNP2 through raw gateway requests; returns the
/// session id.
async fn raw_sign_in(server: &TestServer, name: &str) -> String {
    let http = server.http.unwrap();
    let opened = post(http, "Action=open&Server=NS&IP=messenger.hotmail.com", b"VER 1 MSNP2 CVR0\r\n").await;
    assert_eq!((opened.status, text(&opened).as_str()), (200, "VER 1 MSNP2\r\n"));
    // The gateway is named as the client named it.
    assert_eq!(opened.header("Content-Type"), Some("application/x-msn-messenger"));
    let id = session_of(&opened);
    // Clients split the id at the dot (`major.minor`).
    assert!(id.split_once('.').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()), "{id}");
    let gw_ip = opened.header("X-MSN-Messenger").unwrap();
    assert!(gw_ip.contains(&format!("GW-IP=gateway.messenger.hotmail.com:{}", http.port())), "{gw_ip}");
    let email = format!("{name}@example.com");
    let asked = post(http, &format!("SessionID={id}"), format!("USR 2 MD5 I {email}\r\n").as_bytes()).await;
    let challenge = text(&asked).trim_end().rsplit(' ').next().unwrap().to_string();
    let hash = md5_hex(&challenge, &format!("pw-{name}"));
    let ok = post(http, &format!("SessionID={id}"), format!("USR 3 MD5 S {hash}\r\n").as_bytes()).await;
    assert!(text(&ok).starts_with(&format!("USR 3 OK {email} ")), "{}", text(&ok));
    id
}

/// A server with Alice signed in through raw gateway requests: the server,
/// its HTTP address and her session id.
async fn alice_through_raw_requests() -> (TestServer, SocketAddr, String) {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let http = server.http.unwrap();
    let id = raw_sign_in(&server, "alice").await;
    (server, http, id)
}

#[tokio::test]
async fn every_dialect_signs_in_through_the_gateway() {
    let server = TestServer::start();
    let names: Vec<String> = Dialect::ALL.iter().map(|d| format!("u{}", d.number())).collect();
    users(&server, &names.iter().map(String::as_str).collect::<Vec<_>>());
    for (dialect, name) in Dialect::ALL.iter().zip(&names) {
        let mut c = through_gateway_as(&server, dialect.number(), name).await;
        c.send("PNG").await;
        c.expect_prefix("QNG").await;
    }
}

#[tokio::test]
async fn gateway_users_chat_with_tcp_users_in_every_switchboard_dialect() {
    // Raw connections that would have to answer CHL: challenges off.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["bob"]);
    let (mut bob, _) = online_as(&server, "bob").await;
    for dialect in [2u8, 8, 12, 15] {
        let name = format!("alice{dialect}");
        users(&server, &[&name]);
        let mut alice = through_gateway_as(&server, dialect, &name).await;
        alice.send("CHG 20 NLN 0").await;
        alice.expect_prefix("CHG 20 NLN").await;
        let email = format!("{name}@example.com");
        let friendly = capitalise(&name);
        let mut sb = open_session(&server, &mut alice, &email, &friendly).await;
        let (mut bob_sb, _) = invite(&mut sb, 2, &mut bob, "bob@example.com").await;
        sb.expect_prefix("JOI bob@example.com").await;
        sb.send_payload("MSG 3 N", &text_message("hello through the gateway")).await;
        let got = bob_sb.expect_prefix(&format!("MSG {email}")).await;
        assert!(String::from_utf8_lossy(got.payload.as_deref().unwrap()).ends_with("hello through the gateway"));
        bob_sb.send_payload("MSG 9 N", &text_message("and back")).await;
        let got = sb.expect_prefix("MSG bob@example.com").await;
        assert!(String::from_utf8_lossy(got.payload.as_deref().unwrap()).ends_with("and back"));
        bob_sb.send("OUT").await;
        sb.expect_prefix("BYE bob@example.com").await;
    }
}

#[tokio::test]
async fn a_session_is_the_opening_address_s_alone() {
    let (_server, http, id) = alice_through_raw_requests().await;
    // The same id from another address, made-up ids, and requests without one.
    let stolen = post_from("127.0.0.2", http, &format!("SessionID={id}"), b"PNG\r\n").await;
    assert_eq!(stolen.status, 400);
    assert!(stolen.header("X-MSN-Messenger").is_none());
    let poll = post_from("127.0.0.2", http, &format!("Action=poll&SessionID={id}"), b"").await;
    assert_eq!(poll.status, 400);
    let (major, _) = id.split_once('.').unwrap();
    for made_up in [format!("{major}.1"), "1.1".into(), "x".repeat(5000)] {
        assert_eq!(post(http, &format!("SessionID={made_up}"), b"PNG\r\n").await.status, 400);
    }
    assert_eq!(post(http, "Action=poll", b"").await.status, 400);
    assert_eq!(post(http, "Action=open&Server=XX", b"VER 1 MSNP2\r\n").await.status, 400);
    // The owner is still served, and saw none of it.
    let pong = post(http, &format!("SessionID={id}"), b"PNG\r\n").await;
    assert_eq!(text(&pong), "QNG\r\n");
}

#[tokio::test]
async fn bodies_past_the_limits_are_refused_and_the_session_lives_on() {
    let (_server, http, id) = alice_through_raw_requests().await;
    let over_a_frame = vec![b'A'; 20_000];
    assert_eq!(post(http, &format!("SessionID={id}"), &over_a_frame).await.status, 413);
    let over_http = vec![b'A'; 100_000];
    assert_eq!(post(http, &format!("SessionID={id}"), &over_http).await.status, 413);
    assert_eq!(text(&post(http, &format!("SessionID={id}"), b"PNG\r\n").await), "QNG\r\n");
    // A line past the MSNP limit ends the MSNP session, as on TCP.
    let long_line = [b"CHG 9 ".as_slice(), &vec![b'N'; 5000], b"\r\n"].concat();
    let answer = post(http, &format!("SessionID={id}"), &long_line).await;
    assert!(closed(&answer), "{:?}", answer.headers);
    assert_eq!(post(http, &format!("SessionID={id}"), b"PNG\r\n").await.status, 400);
}

#[tokio::test]
async fn one_address_cannot_open_sessions_without_end() {
    let server = TestServer::start_with(&["--max-connections-per-address", "8"]);
    let http = server.http.unwrap();
    let mut opened = 0;
    let mut refused = 0;
    for _ in 0..40 {
        match post(http, "Action=open&Server=NS&IP=x", b"VER 1 MSNP2 CVR0\r\n").await.status {
            200 => opened += 1,
            503 => refused += 1,
            other => panic!("HTTP {other}"),
        }
    }
    assert!(opened < 8 && refused > 30, "{opened} opened, {refused} refused");
    // Another address is still served.
    let other = post_from("127.0.0.3", http, "Action=open&Server=NS&IP=x", b"VER 1 MSNP2 CVR0\r\n").await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn signing_out_ends_the_gateway_session() {
    let (_server, http, id) = alice_through_raw_requests().await;
    let answer = post(http, &format!("SessionID={id}"), b"OUT\r\n").await;
    assert!(closed(&answer), "{:?}", answer.headers);
    assert_eq!(post(http, &format!("Action=poll&SessionID={id}"), b"").await.status, 400);
}

#[tokio::test]
async fn a_client_that_stops_polling_is_signed_out() {
    let server = TestServer::start_with(&["--gateway-idle-timeout-secs", "1"]);
    users(&server, &["alice", "bob"]);
    let (mut bob, _) = online_as(&server, "bob").await;
    bob.send("ADD 1 FL alice@example.com Alice").await;
    bob.expect_prefix("ADD 1 FL").await;
    let http = server.http.unwrap();
    let id = raw_sign_in(&server, "alice").await;
    let online = post(http, &format!("SessionID={id}"), b"CHG 4 NLN\r\n").await;
    assert!(text(&online).starts_with("CHG 4 NLN"), "{}", text(&online));
    bob.expect("NLN NLN alice@example.com Alice").await;
    // No more requests: the gateway gives up on her, and she goes offline.
    bob.expect("FLN alice@example.com").await;
    assert_eq!(post(http, &format!("SessionID={id}"), b"PNG\r\n").await.status, 400);
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_there_is_something_to_say() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let http = server.http.unwrap();
    let id = raw_sign_in(&server, "alice").await;
    let poll = tokio::spawn(async move { post(http, &format!("Action=poll&SessionID={id}&Lifespan=60"), b"").await });
    let (mut bob, _) = online_as(&server, "bob").await;
    bob.send("ADD 1 FL alice@example.com Alice").await;
    bob.expect_prefix("ADD 1 FL").await;
    // Well before the lifespan: the poll is answered by what Bob did.
    let answer = timeout(WAIT, poll).await.expect("the poll was answered").unwrap();
    assert!(text(&answer).starts_with("ADD 0 RL 1 bob@example.com"), "{}", text(&answer));
}

/// Reads one HTTP answer with a Content-Length from a kept-alive stream.
async fn read_answer(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut raw = Vec::new();
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "the server closed a kept-alive connection");
        raw.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a Content-Length");
    let mut body = raw[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, stream.read(&mut chunk)).await.unwrap().unwrap();
        body.extend_from_slice(&chunk[..n]);
    }
    (head, body)
}

#[tokio::test]
async fn pidgin_s_requests_share_one_kept_alive_connection() {
    let server = TestServer::start();
    let http = server.http.unwrap();
    let mut stream = TcpStream::connect(http).await.unwrap();
    // Pidgin's shape: absolute-form target, keep-alive, one request at a time.
    let request = |query: &str, body: &str| {
        format!(
            "POST http://gateway.messenger.hotmail.com/gateway/gateway.dll?{query} HTTP/1.1\r\nAccept: */*\r\n\
             User-Agent: MSMSGS\r\nHost: gateway.messenger.hotmail.com\r\nProxy-Connection: Keep-Alive\r\n\
             Connection: Keep-Alive\r\nPragma: no-cache\r\nContent-Type: application/x-msn-messenger\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let open = request("Action=open&Server=NS&IP=messenger.hotmail.com", "VER 1 MSNP8 CVR0\r\n");
    stream.write_all(open.as_bytes()).await.unwrap();
    let (head, body) = read_answer(&mut stream).await;
    assert!(head.contains("Connection: Keep-Alive"), "{head}");
    assert_eq!(body, b"VER 1 MSNP8\r\n");
    let id = head.lines().find_map(|l| l.strip_prefix("X-MSN-Messenger: SessionID=")).unwrap();
    let id = id.split(';').next().unwrap().to_string();
    stream.write_all(request(&format!("SessionID={id}"), "PNG\r\n").as_bytes()).await.unwrap();
    let (_, body) = read_answer(&mut stream).await;
    assert_eq!(body, b"QNG\r\n");
    stream.write_all(request(&format!("Action=poll&SessionID={id}"), "").as_bytes()).await.unwrap();
    let (head, body) = read_answer(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.is_empty());
}

#[tokio::test]
async fn the_client_library_chats_through_the_gateway() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut config = client::ClientConfig::new(&server.dispatch.to_string(), "alice@example.com", "pw-alice");
    config.login_url = Some(format!("http://{}/rdr/pprdr.asp", server.http.unwrap()));
    config.http_gateway = Some(format!("http://{}", server.http.unwrap()));
    config.dialect = Dialect::Msnp11;
    let (alice, mut events) = client::Client::sign_in(config).await.expect("signed in through the gateway");
    let (mut bob, _) = online_as(&server, "bob").await;
    alice.set_state(msnp::OnlineState::Online).await.expect("online");
    let conversation = alice.start_conversation("bob@example.com").await.expect("a conversation");
    let Reply::Rng { address, cookie, session_id, .. } = bob.reply().await else { panic!("Bob was not rung") };
    let mut bob_sb = bob.next_to(&address, ServerKind::Switchboard).await;
    bob_sb.send(&format!("ANS 1 bob@example.com {cookie} {session_id}")).await;
    bob_sb.expect_prefix("IRO 1 1 1 alice@example.com").await;
    bob_sb.expect("ANS 1 OK").await;
    conversation.send_text("hi Bob, from behind a firewall").await.expect("sent");
    let got = bob_sb.expect_prefix("MSG alice@example.com").await;
    assert!(String::from_utf8_lossy(got.payload.as_deref().unwrap()).ends_with("hi Bob, from behind a firewall"));
    bob_sb.send_payload("MSG 2 N", &text_message("hi Alice")).await;
    loop {
        match timeout(WAIT, events.recv()).await.expect("an event in time").expect("events open") {
            client::Event::Message { text, .. } if text == "hi Alice" => break,
            _ => {}
        }
    }
}

use msnp::Reply;
