//! The web messenger: the live channel over a real WebSocket (its
//! refusals, hostile frames, a page coming back after a drop), and whole
//! conversations in real headless Chromium beside MSNP clients.

mod common;

use std::time::Duration;

use client::{ClientConfig, Event};
use common::browser::{browser, browser_with, chromedriver};
use common::cluster::until;
use common::web_page::{Page, open_socket, session_cookie};
use common::*;
use fantoccini::{Client as Browser, Locator};
use msnp::Dialect;
use tokio_tungstenite::tungstenite::Message;
use webchat::{ClientFrame, ServerFrame};

const WAIT: Duration = Duration::from_secs(30);

fn origin(server: &TestServer) -> String {
    format!("http://localhost:{}", server.http.unwrap().port())
}

#[tokio::test]
async fn the_socket_refuses_strangers_forgeries_and_other_sites() {
    let server = TestServer::start();
    users(&server, &["alice"]);
    let http = server.http.unwrap();
    let cookie = session_cookie(&server, "alice").await;
    let mine = origin(&server);
    assert_eq!(open_socket(http, None, Some(&mine)).await.err(), Some(401), "no cookie");
    let forged = cookie.replacen("alice", "alicf", 1);
    assert_eq!(open_socket(http, Some(&forged), Some(&mine)).await.err(), Some(401), "a forged cookie");
    // Cross-site WebSocket hijacking: another site's page, or none named.
    assert_eq!(open_socket(http, Some(&cookie), Some("http://evil.example")).await.err(), Some(403));
    assert_eq!(open_socket(http, Some(&cookie), None).await.err(), Some(403));
    assert!(open_socket(http, Some(&cookie), Some(&mine)).await.is_ok());

    // The sign-in page is not signed in with a wrong password.
    let wrong = [("email", "alice@example.com"), ("password", "nope")];
    assert_eq!(post_form(&server, "/messenger/login", &wrong, None).await.status, 401);

    // Signing out ends the session: the same cookie replayed is nobody's.
    let page_before = Page::open(&server, &cookie).await;
    let out = post_form(&server, "/messenger/logout", &[], Some(&cookie)).await;
    assert_eq!(out.status, 303);
    assert_eq!(open_socket(http, Some(&cookie), Some(&mine)).await.err(), Some(401), "a replayed cookie");
    let mut page_before = page_before;
    let bye = page_before.until(|f| matches!(f, ServerFrame::Bye { .. }).then(|| f.clone())).await;
    assert_eq!(bye, ServerFrame::Bye { reason: "signed_out".into() });

    // A password change voids every session.
    let second = session_cookie(&server, "alice").await;
    let change = [("email", "alice@example.com"), ("old", "pw-alice"), ("new", "changed-pw"), ("new2", "changed-pw")];
    assert_eq!(post_form(&server, "/password", &change, None).await.status, 200);
    assert_eq!(open_socket(http, Some(&second), Some(&mine)).await.err(), Some(401), "after a password change");
}

#[tokio::test]
async fn hostile_frames_close_only_their_own_socket() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice_cookie = session_cookie(&server, "alice").await;
    let bob_cookie = session_cookie(&server, "bob").await;
    let mut bob = Page::open(&server, &bob_cookie).await;

    let mut huge = Page::open(&server, &alice_cookie).await;
    let text = "x".repeat(64 * 1024);
    let _ = huge.send_raw(Message::text(text)).await;
    assert_eq!(huge.closed_with().await, 1009, "an oversized frame");

    let mut garbage = Page::open(&server, &alice_cookie).await;
    garbage.send_raw(Message::text("{\"type\":\"launch\"}")).await;
    assert_eq!(garbage.closed_with().await, 1007, "a frame of no protocol");

    let mut binary = Page::open(&server, &alice_cookie).await;
    binary.send_raw(Message::binary(vec![0u8; 8])).await;
    assert_eq!(binary.closed_with().await, 1003, "binary frames");

    let mut flood = Page::open(&server, &alice_cookie).await;
    for _ in 0..200 {
        if !flood.send_raw(Message::text("{\"type\":\"ack\",\"seq\":0}")).await {
            break;
        }
    }
    assert_eq!(flood.closed_with().await, 1008, "a flood of frames");

    // Bob is untouched, and Alice signs in again and reaches him.
    bob.send(ClientFrame::AddContact { handle: "alice@example.com".into() }).await;
    let mut alice = Page::open(&server, &alice_cookie).await;
    alice.send(ClientFrame::Send { id: "m1".into(), to: "bob@example.com".into(), text: "still here?".into() }).await;
    let heard = bob.until(|f| match f {
        ServerFrame::Message { from, text, .. } if from == "alice@example.com" => Some(text.clone()),
        _ => None,
    });
    assert_eq!(heard.await, "still here?");
}

#[tokio::test]
async fn messages_past_the_flood_control_are_refused_by_id() {
    let server = TestServer::start_with(&["--rate-messages", "3/0.001"]);
    users(&server, &["alice", "bob"]);
    let mut alice = Page::open(&server, &session_cookie(&server, "alice").await).await;
    let mut refused = 0;
    for n in 0..6 {
        alice.send(ClientFrame::Send { id: format!("m{n}"), to: "bob@example.com".into(), text: "spam".into() }).await;
    }
    for _ in 0..6 {
        match alice
            .until(|f| matches!(f, ServerFrame::Sent { .. } | ServerFrame::Refused { .. }).then(|| f.clone()))
            .await
        {
            ServerFrame::Refused { id: Some(_), code: 713, .. } => refused += 1,
            ServerFrame::Sent { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(refused, 3, "past the burst every message is refused with 713");
}

#[tokio::test]
async fn a_page_that_lost_its_connection_gets_what_it_missed_once() {
    let server = TestServer::start();
    users(&server, &["alice", "carol"]);
    let cookie = session_cookie(&server, "alice").await;
    let mut alice = Page::open(&server, &cookie).await;
    alice.until(|f| matches!(f, ServerFrame::Roster { .. }).then_some(())).await;
    alice.send(ClientFrame::AddContact { handle: "carol@example.com".into() }).await;
    alice.until(|f| matches!(f, ServerFrame::Contact { .. }).then_some(())).await;
    let (carol, mut carol_events) = msn_user(&server, "carol").await;
    alice.until(|f| matches!(f, ServerFrame::Contact { contact } if contact.state.is_some()).then_some(())).await;
    alice.ack().await;

    // A message is sent; the answer is lost with the connection.
    alice.send(ClientFrame::Send { id: "once".into(), to: "carol@example.com".into(), text: "one".into() }).await;
    let (name, seen) = (alice.name.clone(), alice.last_seen);
    drop(alice);
    assert_eq!(next_text(&mut carol_events).await, "one");
    // Carol answers while the page is away.
    let conversation = carol.start_conversation("alice@example.com").await.unwrap();
    conversation.send_text("two").await.unwrap();

    // The page comes back: it is sent what it missed, once, in order.
    let (mut alice, resumed) = Page::come_back(&server, &cookie, Some((&name, seen))).await;
    assert!(resumed);
    alice.until(|f| matches!(f, ServerFrame::Sent { id, .. } if id == "once").then_some(())).await;
    let heard = alice.until(|f| match f {
        ServerFrame::Message { from, text, .. } if from == "carol@example.com" => Some(text.clone()),
        _ => None,
    });
    assert_eq!(heard.await, "two");
    // It sends the unanswered message again: it is not delivered twice.
    alice.send(ClientFrame::Send { id: "once".into(), to: "carol@example.com".into(), text: "one".into() }).await;
    alice.until(|f| matches!(f, ServerFrame::Sent { id, .. } if id == "once").then_some(())).await;
    alice.send(ClientFrame::Send { id: "next".into(), to: "carol@example.com".into(), text: "three".into() }).await;
    assert_eq!(next_text(&mut carol_events).await, "three", "the repeated message reached carol again");

    // A page gone too long starts over: a new page, the roster again.
    let (mut stale, resumed) = Page::come_back(&server, &cookie, Some(("no-such-page", 5))).await;
    assert!(!resumed);
    stale.until(|f| matches!(f, ServerFrame::Roster { .. }).then_some(())).await;
}

/// An MSNP11 user of the `msn` client library, online.
async fn msn_user(server: &TestServer, name: &str) -> (client::Client, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let mut config =
        ClientConfig::new(&server.dispatch.to_string(), &format!("{name}@example.com"), &format!("pw-{name}"));
    config.dialect = Dialect::Msnp11;
    config.login_url = Some(format!("http://{}/rdr/pprdr.asp", server.http.unwrap()));
    let (client, events) = client::Client::sign_in(config).await.expect("the msn user signs in");
    client.set_state(msnp::OnlineState::Online).await.unwrap();
    (client, events)
}

async fn next_event<T>(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    want: impl Fn(&Event) -> Option<T>,
) -> T {
    let found = async {
        loop {
            if let Some(found) = want(&events.recv().await.expect("events")) {
                return found;
            }
        }
    };
    tokio::time::timeout(WAIT, found).await.expect("the event in time")
}

async fn next_text(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> String {
    next_event(events, |e| match e {
        Event::Message { text, .. } => Some(text.clone()),
        _ => None,
    })
    .await
}

/// Waits for a switchboard `MSG` carrying `text` (typing notices skipped).
async fn said_in(sb: &mut Client, text: &str) {
    loop {
        let line = until(sb, "MSG ").await;
        if line.payload.as_deref().is_some_and(|p| p.ends_with(text.as_bytes())) {
            return;
        }
    }
}

// ----- in a real browser ------------------------------------------------------

async fn wait_css(b: &Browser, css: &str) -> fantoccini::elements::Element {
    match b.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let page = b.source().await.unwrap_or_default();
            panic!("{css}: {e}\nthe page was:\n{page}");
        }
    }
}

/// Waits until the element's text contains `needle`.
async fn wait_text(b: &Browser, css: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = b.find(Locator::Css(css)).await
            && let Ok(text) = e.text().await
            && text.contains(needle)
        {
            return text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{css} never showed {needle:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a script's answer is `want`.
async fn wait_script(b: &Browser, script: &str, arg: serde_json::Value, want: serde_json::Value) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = b.execute(script, vec![arg.clone()]).await.unwrap();
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{script} gave {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(b: &Browser, server: &TestServer, name: &str) {
    b.goto(&format!("{}/messenger", origin(server))).await.unwrap();
    wait_css(b, "#email").await.send_keys(&format!("{name}@example.com")).await.unwrap();
    b.find(Locator::Id("password")).await.unwrap().send_keys(&format!("pw-{name}")).await.unwrap();
    b.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    // Connected: the roster came (the list says so even when empty).
    wait_css(b, "#contacts li").await;
}

/// Moves the focus with Tab alone until it is on `css`, then presses Enter:
/// the messenger works without a mouse.
async fn tab_to_and_press(b: &Browser, css: &str) {
    let focused = "return document.activeElement && document.activeElement.matches(arguments[0]);";
    for _ in 0..40 {
        if b.execute(focused, vec![serde_json::json!(css)]).await.unwrap() == serde_json::json!(true) {
            b.active_element().await.unwrap().send_keys("\u{E007}").await.unwrap();
            return;
        }
        b.active_element().await.unwrap().send_keys("\u{E004}").await.unwrap();
    }
    panic!("Tab never reached {css}");
}

/// Types into the element `css` finds. The page may draw the element again
/// between finding it and typing (a frame arrived): then it is found again.
async fn type_into(b: &Browser, css: &str, text: &str) {
    for _ in 0..5 {
        match wait_css(b, css).await.send_keys(text).await {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(e))
                if e.error == fantoccini::error::ErrorStatus::StaleElementReference => {}
            Err(e) => panic!("typing into {css}: {e}"),
        }
    }
    panic!("{css} was drawn again every time it was found");
}

async fn screenshot(b: &Browser, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("messenger-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browser_users_add_each_other_chat_with_typing_and_see_away() {
    let Some((_driver, port)) = chromedriver("messenger::two_browser_users").await else { return };
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = browser(port).await;
    let bob = browser(port).await;
    alice.set_window_size(1280, 800).await.unwrap();
    sign_in(&alice, &server, "alice").await;
    sign_in(&bob, &server, "bob").await;
    // Bob has a display picture (set as his page's "Picture" button does).
    let bob_cookie = session_cookie(&server, "bob").await;
    let picture = include_bytes!("fixtures/picture.png");
    assert_eq!(post_bytes(&server, "/messenger/picture", &bob_cookie, "image/png", picture).await.status, 204);

    // Bob names himself with HTML: it is shown as text, never run.
    let name = wait_css(&bob, "#me-name").await;
    name.clear().await.unwrap();
    name.send_keys("<img src=x id=pwned> Bob\u{E007}").await.unwrap();

    // Alice adds Bob; Bob is asked, and adds her back.
    type_into(&alice, "#add-handle", "bob@example.com").await;
    alice.find(Locator::Id("add")).await.unwrap().click().await.unwrap();
    wait_css(&bob, ".request[data-handle='alice@example.com'] .accept").await.click().await.unwrap();
    let entry = "li[data-handle='bob@example.com']";
    wait_text(&alice, entry, "<img src=x id=pwned> Bob").await;
    assert!(alice.find(Locator::Id("pwned")).await.is_err(), "a name became markup");
    wait_css(&alice, &format!("{entry} .dot.state-online")).await;
    // His picture is shown beside his name (loaded, not the stand-in).
    let natural_width = "const i = document.querySelector(arguments[0]); return i && i.complete && i.naturalWidth;";
    let avatar = serde_json::json!(format!("{entry} img.avatar"));
    wait_script(&alice, natural_width, avatar, serde_json::json!(48)).await;

    // Both open the conversation; Alice types, Bob sees it, then the words.
    alice.find(Locator::Css(&format!("{entry} button"))).await.unwrap().click().await.unwrap();
    wait_css(&bob, "li[data-handle='alice@example.com'] button").await.click().await.unwrap();
    type_into(&alice, "#composer", "Hello Bob :) (L)").await;
    wait_text(&bob, "#typing", "Alice is typing").await;
    alice.find(Locator::Id("send")).await.unwrap().click().await.unwrap();
    wait_text(&bob, "#log", "Hello Bob").await;
    let smile = wait_css(&bob, "#log img.emoticon[alt=':)']").await;
    assert_eq!(smile.attr("src").await.unwrap().as_deref(), Some("/messenger/assets/smile.svg"));
    wait_css(&bob, "#log img.emoticon[alt='(L)']").await;
    type_into(&bob, "#composer", "Hi Alice! <b>not bold</b>\u{E007}").await;
    wait_text(&alice, "#log", "Hi Alice! <b>not bold</b>").await;

    // Bob goes away; Alice sees it.
    wait_css(&bob, "#me-state").await.select_by_value("away").await.unwrap();
    wait_css(&alice, &format!("{entry} .dot.state-away")).await;

    // A nudge shakes the other window.
    bob.find(Locator::Id("nudge")).await.unwrap().click().await.unwrap();
    wait_text(&alice, "#log", "sent a nudge").await;

    screenshot(&alice, "desktop-light").await;
    alice.set_window_size(390, 844).await.unwrap();
    screenshot(&alice, "phone-conversation").await;
    alice.find(Locator::Css(".chat-header .back")).await.unwrap().click().await.unwrap();
    wait_css(&alice, "#contacts").await;
    screenshot(&alice, "phone-contacts").await;

    // The same account in the dark colour scheme, a second page of Alice's.
    let dark = browser_with(port, &["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]).await;
    dark.set_window_size(1280, 800).await.unwrap();
    sign_in(&dark, &server, "alice").await;
    wait_css(&dark, &format!("{entry} button")).await.click().await.unwrap();
    let scheme: serde_json::Value =
        dark.execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![]).await.unwrap();
    screenshot(&dark, "desktop-dark").await;
    assert_eq!(scheme, serde_json::Value::Bool(true), "the dark scheme was not asked for");

    // Signing out ends the page's sign-in: Bob sees her go once both pages are gone.
    for b in [&dark, &alice] {
        b.set_window_size(1280, 800).await.unwrap();
        b.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
        wait_css(b, "#sign-in").await;
    }
    wait_css(&bob, "li[data-handle='alice@example.com'] .dot.offline").await;
    for b in [alice, bob, dark] {
        b.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_user_chats_with_msnp2_and_msnp11_users_in_one_group_conversation() {
    let Some((_driver, port)) = chromedriver("messenger::group_conversation").await else { return };
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (mut bob, _) = online_as(&server, "bob").await; // MSNP2, switchboards only
    let (carol, mut carol_events) = msn_user(&server, "carol").await;
    let alice = browser(port).await;
    alice.set_window_size(1280, 800).await.unwrap();
    sign_in(&alice, &server, "alice").await;
    for handle in ["bob@example.com", "carol@example.com"] {
        type_into(&alice, "#add-handle", handle).await;
        alice.find(Locator::Id("add")).await.unwrap().click().await.unwrap();
        wait_css(&alice, &format!("li[data-handle='{handle}'] .dot.state-online")).await;
    }

    // From her conversation with Bob she invites Carol: one group of three.
    alice.find(Locator::Css("li[data-handle='bob@example.com'] button")).await.unwrap().click().await.unwrap();
    wait_css(&alice, "#invite").await.click().await.unwrap();
    type_into(&alice, "#invite-handle", "carol@example.com").await;
    alice.find(Locator::Id("invite-send")).await.unwrap().click().await.unwrap();
    let mut sb = answer_ring(&mut bob, "bob@example.com").await;
    until(&mut sb, "ANS 1 OK").await;
    let conversation = next_event(&mut carol_events, |e| match e {
        Event::ConversationStarted { conversation, .. } => Some(*conversation),
        _ => None,
    })
    .await;
    wait_css(&alice, ".tab[data-conversation^='g:'][aria-selected='true']").await;

    // Everyone hears everyone.
    type_into(&alice, "#composer", "Hello both\u{E007}").await;
    said_in(&mut sb, "Hello both").await;
    assert_eq!(next_text(&mut carol_events).await, "Hello both");
    sb.send_payload("MSG 2 N", &text_message("hi from MSNP2")).await;
    wait_text(&alice, "#log", "hi from MSNP2").await;
    assert_eq!(next_text(&mut carol_events).await, "hi from MSNP2");
    carol.conversation(conversation).expect("carol's conversation").send_text("hi from msn").await.unwrap();
    wait_text(&alice, "#log", "hi from msn").await;
    said_in(&mut sb, "hi from msn").await;
    wait_text(&alice, ".chat-header", "3 people").await;
    screenshot(&alice, "group-conversation").await;
    alice.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_messages_cross_between_the_browser_and_msn_once_each() {
    let Some((_driver, port)) = chromedriver("messenger::offline_messages").await else { return };
    let server = TestServer::start();
    users(&server, &["alice", "carol"]);
    let alice = browser(port).await;
    alice.set_window_size(1280, 800).await.unwrap();
    sign_in(&alice, &server, "alice").await;
    // With the keyboard alone: the address, Enter; Tab to Carol, Enter; type, Enter.
    type_into(&alice, "#add-handle", "carol@example.com\u{E007}").await;
    wait_css(&alice, "li[data-handle='carol@example.com'] button").await;
    tab_to_and_press(&alice, "li[data-handle='carol@example.com'] button").await;
    wait_css(&alice, "#composer:focus").await;
    alice.active_element().await.unwrap().send_keys("See you later\u{E007}").await.unwrap();
    wait_text(&alice, "#log", "will be delivered when they sign in").await;

    // Carol reads it in msn when she signs in.
    let (carol, mut carol_events) = msn_user(&server, "carol").await;
    // (msnd hands an MSNP11 client its offline messages in a conversation,
    // marked with when they were sent.)
    let (from, text) = next_event(&mut carol_events, |e| match e {
        Event::OfflineMessage { from, text, .. } => Some((from.clone(), text.clone())),
        Event::Message { from, text, offline_sent: Some(_), .. } => Some((from.clone(), text.clone())),
        _ => None,
    })
    .await;
    assert_eq!(from, "alice@example.com");
    assert!(text.ends_with("See you later"), "{text}");

    // Alice signs out; Carol leaves her one; Alice sees it with its time, once.
    carol.add_contact("alice@example.com", "Alice").await.unwrap();
    next_event(&mut carol_events, |e| {
        matches!(e, Event::Presence { handle, .. } if handle == "alice@example.com").then_some(())
    })
    .await;
    // Signing out forgets the conversations, even when a frame comes after
    // the click and before the next page (its acknowledgement, 200 ms on,
    // once wrote them back, and the next sign-in on this tab opened on
    // Carol's conversation, where her offline message raised no badge).
    // The form's handler runs alone first, so that the frame surely comes
    // in between.
    let kept = "return sessionStorage.getItem('mariposa');";
    alice
        .execute("document.getElementById('sign-out').closest('form').dispatchEvent(new Event('submit'));", vec![])
        .await
        .unwrap();
    carol.set_state(msnp::OnlineState::Away).await.unwrap();
    wait_css(&alice, "li[data-handle='carol@example.com'] .dot.state-away").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(alice.execute(kept, vec![]).await.unwrap(), serde_json::Value::Null, "the tab kept the conversations");
    alice.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    wait_css(&alice, "#sign-in").await;
    carol.set_state(msnp::OnlineState::Online).await.unwrap();
    next_event(&mut carol_events, |e| {
        matches!(e, Event::Offline { handle } if handle == "alice@example.com").then_some(())
    })
    .await;
    carol.send_offline_message("alice@example.com", "Missed you").await.unwrap();
    sign_in(&alice, &server, "alice").await;
    wait_text(&alice, ".tab .badge", "1").await;
    wait_css(&alice, ".tab[data-conversation='c:carol@example.com']").await.click().await.unwrap();
    let log = wait_text(&alice, "#log", "Missed you").await;
    assert!(log.contains("sent while you were offline"), "{log}");
    assert_eq!(log.matches("Missed you").count(), 1);
    // A reload resumes the page: still shown once.
    alice.refresh().await.unwrap();
    wait_css(&alice, ".tab[data-conversation='c:carol@example.com']").await.click().await.unwrap();
    let log = wait_text(&alice, "#log", "Missed you").await;
    assert_eq!(log.matches("Missed you").count(), 1, "{log}");
    alice.close().await.unwrap();
}

/// A request with a body and the session cookie, over plain HTTP.
async fn post_bytes(server: &TestServer, path: &str, cookie: &str, mime: &str, body: &[u8]) -> HttpAnswer {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(server.http.unwrap()).await.unwrap();
    http_exchange(stream, &[head.as_bytes(), body].concat()).await
}

#[tokio::test]
async fn a_display_picture_set_in_the_browser_is_shown_to_signed_in_pages() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = session_cookie(&server, "alice").await;
    let bob = session_cookie(&server, "bob").await;
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[7u8; 200]].concat();
    assert_eq!(post_bytes(&server, "/messenger/picture", &alice, "image/png", &png).await.status, 204);
    // A page pretending to be a picture, or one too large, is refused.
    let page = b"<html><script>alert(1)</script>";
    assert_eq!(post_bytes(&server, "/messenger/picture", &alice, "image/png", page).await.status, 415);
    assert_eq!(post_bytes(&server, "/messenger/picture", &alice, "text/html", page).await.status, 415);
    let huge = [b"\x89PNG\r\n\x1a\n".as_slice(), &vec![0u8; 60 * 1024]].concat();
    assert_eq!(post_bytes(&server, "/messenger/picture", &alice, "image/png", &huge).await.status, 413);
    assert_eq!(post_bytes(&server, "/messenger/picture", "msnd_messenger=forged", "image/png", &png).await.status, 401);

    let http = server.http.unwrap();
    let path = "/messenger/picture/alice%40example.com";
    let seen = http_get(http, path, &[("Cookie", &bob)]).await;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.body, png, "the picture as it was set");
    assert_eq!(seen.header("content-type"), Some("image/png"));
    assert!(seen.header("content-security-policy").is_some_and(|p| p.contains("default-src 'none'")));
    assert_eq!(http_get(http, path, &[]).await.status, 401, "only to signed-in pages");
    assert_eq!(http_get(http, "/messenger/picture/bob%40example.com", &[("Cookie", &bob)]).await.status, 404);
}

#[tokio::test]
async fn the_pages_forbid_inline_script_and_other_sites() {
    let server = TestServer::start();
    let http = server.http.unwrap();
    let page = http_get(http, "/messenger", &[]).await;
    assert_eq!(page.status, 200);
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"));
    let html = String::from_utf8_lossy(&page.body);
    assert!(!html.contains("<script>") && html.contains("id=\"sign-in\""), "{html}");
    let script = http_get(http, "/messenger/assets/messenger.js", &[]).await;
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    let escape = http_get(http, "/messenger/assets/..%2fmod.rs", &[]).await.status;
    assert!(matches!(escape, 400 | 404), "{escape}");
    assert_eq!(http_get(http, "/messenger/assets/mod.rs", &[]).await.status, 404);
    // A sign-in form posted from another site is refused.
    let body = "email=alice%40example.com&password=pw-alice";
    let request = format!(
        "POST /messenger/login HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let stream = tokio::net::TcpStream::connect(http).await.unwrap();
    assert_eq!(http_exchange(stream, request.as_bytes()).await.status, 403);
}
