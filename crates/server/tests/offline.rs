//! Offline messages: kept durably for a user who is offline, delivered at
//! their next sign-in in order and once, with the original sender and time.

mod common;

use common::*;

#[tokio::test]
async fn a_message_to_an_offline_user_arrives_once_at_the_next_sign_in() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    for text in ["first", "second"] {
        let answer = store_offline(&server, &alice, "alice@example.com", "bob@example.com", text).await;
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    }
    let mut bob = sign_in_plain(&server, "bob").await;
    let (mut sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert_eq!(shown.len(), 2);
    assert!(shown[0].contains("[Offline message, sent ") && shown[0].ends_with("first"), "{}", shown[0]);
    assert!(shown[1].ends_with("second"));
    assert!(shown[0].contains("X-Offline-Sent: "));
    // Bob's client closes the conversation: that confirms it.
    sb.send("OUT").await;
    sb.expect_closed().await;
    bob.send("OUT").await;
    bob.expect_closed().await;
    // Gone: the next sign-in offers nothing.
    let mut bob = sign_in_plain(&server, "bob").await;
    bob.sync_point().await;
}

#[tokio::test]
async fn an_unanswered_offer_is_made_again_next_time() {
    let server = TestServer::start_with(&["--cookie-lifetime-secs", "1"]);
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    store_offline(&server, &alice, "alice@example.com", "bob@example.com", "are you there?").await;
    let mut bob = sign_in_plain(&server, "bob").await;
    bob.expect_prefix("RNG ").await;
    bob.send("OUT").await;
    bob.expect_closed().await;
    let mut bob = sign_in_plain(&server, "bob").await;
    let (_sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("are you there?"));
}

#[tokio::test]
async fn stored_messages_survive_kill_9() {
    let mut server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", "durable").await.status, 200);
    server.kill9();
    server.restart();
    let mut bob = sign_in_plain(&server, "bob").await;
    let (_sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("durable"));
}

/// The fault a `StoreMessage` got, or "ok".
async fn leave(server: &TestServer, sender: &Client, from: &str, to: &str) -> String {
    let answer = store_offline(server, sender, from, to, &format!("from {from}")).await;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    match answer.status {
        200 => "ok".into(),
        _ => msnp::oim::parse_store_fault(&body).map(|(code, _)| code).unwrap_or(body),
    }
}

/// Signs `name` in (MSNP11), for leaving offline messages.
async fn sender(server: &TestServer, name: &str) -> Client {
    login_as_dialect(server, 11, &format!("{name}@example.com"), &format!("pw-{name}")).await
}

/// Bob puts people on his lists, then signs out.
async fn bob_lists(server: &TestServer, entries: &[(&str, &str)]) {
    let mut bob = sign_in_plain(server, "bob").await;
    for (n, (list, who)) in entries.iter().enumerate() {
        bob.send(&format!("ADD {} {list} {who}@example.com {who}@example.com", n + 1)).await;
        bob.expect_prefix(&format!("ADD {} {list} ", n + 1)).await;
    }
    bob.send("OUT").await;
    bob.expect_closed().await;
}

/// Everyone who left Bob a message he is shown at his next sign-in.
async fn bob_is_shown(server: &TestServer) -> Vec<String> {
    let mut bob = sign_in_plain(server, "bob").await;
    let mut senders = Vec::new();
    while let Some(line) = bob.try_recv(std::time::Duration::from_secs(2)).await {
        if line.text.starts_with("RNG ") {
            senders.push(line.args()[5].trim_end_matches("@example.com").to_string());
        }
    }
    senders.sort();
    senders
}

#[tokio::test]
async fn a_mailbox_gives_one_sender_a_fifth_strangers_half_and_contacts_the_rest() {
    // 10 in all: 2 per sender, 5 for everyone not on Bob's allow list.
    let server = TestServer::start_with(&["--offline-quota", "10"]);
    users(&server, &["bob", "carol", "dave", "erin", "frank"]);
    bob_lists(&server, &[("AL", "frank")]).await;
    let (carol, dave, frank) =
        (sender(&server, "carol").await, sender(&server, "dave").await, sender(&server, "frank").await);
    let bob = "bob@example.com";
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(leave(&server, &carol, "carol@example.com", bob).await);
    }
    assert_eq!(seen, ["ok", "ok", "QuotaExceeded"], "one stranger takes more than a fifth");
    for _ in 0..3 {
        seen.push(leave(&server, &dave, "dave@example.com", bob).await);
    }
    // Carol's two and Dave's two: a fifth of room left for strangers.
    assert_eq!(seen[3..], ["ok", "ok", "QuotaExceeded"]);
    let erin = sender(&server, "erin").await;
    // Erin is a stranger too: hers fills the strangers' half, and the next
    // is refused while a contact still gets in.
    assert_eq!(leave(&server, &erin, "erin@example.com", bob).await, "ok");
    assert_eq!(leave(&server, &erin, "erin@example.com", bob).await, "QuotaExceeded");
    assert_eq!(leave(&server, &frank, "frank@example.com", bob).await, "ok", "strangers crowded out a contact");
    assert_eq!(bob_is_shown(&server).await, ["carol", "dave", "erin", "frank"]);
}

#[tokio::test]
async fn a_blocked_sender_is_answered_exactly_as_anyone_and_nothing_arrives() {
    let server = TestServer::start_with(&["--offline-quota", "10"]);
    users(&server, &["bob", "carol", "mallory", "dave", "erin", "grace"]);
    bob_lists(&server, &[("BL", "mallory"), ("BL", "grace")]).await;
    let bob = "bob@example.com";
    let (carol, mallory) = (sender(&server, "carol").await, sender(&server, "mallory").await);
    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for _ in 0..3 {
        allowed.push(leave(&server, &carol, "carol@example.com", bob).await);
        blocked.push(leave(&server, &mallory, "mallory@example.com", bob).await);
    }
    assert_eq!(allowed, ["ok", "ok", "QuotaExceeded"]);
    assert_eq!(blocked, allowed, "a blocked sender can tell from the answers");
    // Strangers' half full (Carol 2, Mallory 2, Dave 1): the next stranger
    // and the next blocked sender are both told the mailbox is full.
    let (dave, erin, grace) =
        (sender(&server, "dave").await, sender(&server, "erin").await, sender(&server, "grace").await);
    assert_eq!(leave(&server, &dave, "dave@example.com", bob).await, "ok");
    assert_eq!(leave(&server, &erin, "erin@example.com", bob).await, "QuotaExceeded");
    assert_eq!(leave(&server, &grace, "grace@example.com", bob).await, "QuotaExceeded");
    assert_eq!(bob_is_shown(&server).await, ["carol", "dave"]);
    // What the blocked left was dropped, not kept: Bob's mailbox has room.
    assert_eq!(leave(&server, &erin, "erin@example.com", bob).await, "ok");
}

#[tokio::test]
async fn blocking_drops_what_the_blocked_person_left_waiting() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    let (alice, carol) = (sender(&server, "alice").await, sender(&server, "carol").await);
    assert_eq!(leave(&server, &alice, "alice@example.com", "bob@example.com").await, "ok");
    assert_eq!(leave(&server, &carol, "carol@example.com", "bob@example.com").await, "ok");
    // Bob signs in and blocks Alice before he appears (and is offered them).
    let mut bob = login(&server, "bob@example.com", "pw-bob").await;
    bob.send("ADD 1 BL alice@example.com alice@example.com").await;
    bob.expect_prefix("ADD 1 BL ").await;
    bob.send("CHG 2 NLN").await;
    bob.expect("CHG 2 NLN").await;
    let (_sb, shown) = answer_offline(&mut bob, "bob@example.com", "carol@example.com").await;
    assert!(shown[0].ends_with("from carol@example.com"));
    bob.sync_point_skipping().await;
    // Unblocking does not bring it back: it is gone.
    bob.send("REM 3 BL alice@example.com").await;
    bob.expect_prefix("REM 3 BL ").await;
    bob.send("OUT").await;
    bob.expect_closed().await;
    assert_eq!(bob_is_shown(&server).await, Vec::<String>::new());
}

#[tokio::test]
async fn one_sender_is_rate_limited_across_recipients_and_an_unknown_address_looks_like_any() {
    let server = TestServer::start_with(&["--rate-offline-messages", "3/0.001"]);
    users(&server, &["alice", "bob", "carol"]);
    let alice = sender(&server, "alice").await;
    let seen = [
        leave(&server, &alice, "alice@example.com", "bob@example.com").await,
        leave(&server, &alice, "alice@example.com", "carol@example.com").await,
        // Strangers must not learn that no such account exists.
        leave(&server, &alice, "alice@example.com", "nobody@example.com").await,
        leave(&server, &alice, "alice@example.com", "bob@example.com").await,
    ];
    assert_eq!(seen, ["ok", "ok", "ok", "SenderThrottleLimitExceeded"]);
    let status = http_get(server.http.unwrap(), "/status.json", &[]).await;
    let s: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(s["rate_limited"]["offline_messages"], 1);
}

#[tokio::test]
async fn the_web_service_needs_the_senders_current_sign_in() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    // Claiming to be someone else with one's own token fails.
    let forged = store_offline(&server, &alice, "bob@example.com", "alice@example.com", "hi").await;
    assert!(String::from_utf8(forged.body).unwrap().contains("AuthenticationFailed"));
    drop(alice);
    // A token of a sign-in that ended no longer works.
    let mut a2 = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    a2.send("OUT").await;
    a2.expect_closed().await;
    // The server signs a user out before it closes the connection.
    a2.expect_closed().await;
    let stale = store_offline(&server, &a2, "alice@example.com", "bob@example.com", "hi").await;
    assert!(String::from_utf8(stale.body).unwrap().contains("AuthenticationFailed"));
}

#[tokio::test]
async fn msnp11_gets_mail_data_and_can_read_and_delete_through_rsi() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    store_offline(&server, &alice, "alice@example.com", "bob@example.com", "via the inbox").await;
    let mut bob = login_as_dialect(&server, 11, "bob@example.com", "pw-bob").await;
    bob.send("CHG 1 NLN 0").await;
    bob.expect("CHG 1 NLN 0").await;
    bob.expect_prefix("CHL 0 ").await;
    let md = bob.expect_prefix("MSG Hotmail Hotmail ").await;
    let md = String::from_utf8(md.payload.unwrap()).unwrap();
    assert!(md.contains("Content-Type: text/x-msmsgsinitialmdatanotification"), "{md}");
    let guid = md.split("<I>").nth(2).unwrap().split('<').next().unwrap().to_string();
    assert!(md.contains("<E>alice@example.com</E>"));
    bob.expect_prefix("RNG ").await;
    let cookie = format!("<PassportCookie><t>{}</t><p>x</p></PassportCookie>", bob.mspauth());
    let envelope = |body: &str| {
        format!(
            r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>{cookie}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
        )
    };
    let rsi = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi";
    let got = soap_post(
        &server,
        "/rsi/rsi.asmx",
        &format!("{rsi}/GetMessage"),
        &envelope(&format!(
            "<GetMessage><messageId>{guid}</messageId><alsoMarkAsRead>false</alsoMarkAsRead></GetMessage>"
        )),
    )
    .await;
    let text = String::from_utf8(got.body).unwrap();
    assert!(text.contains("X-OIM-Message-Type: OfflineMessage"), "{text}");
    assert!(text.contains("dmlhIHRoZSBpbmJveA=="), "the body in base64: {text}");
    let meta = soap_post(&server, "/rsi/rsi.asmx", &format!("{rsi}/GetMetadata"), &envelope("<GetMetadata/>")).await;
    assert!(String::from_utf8(meta.body).unwrap().contains(&guid));
    let del = soap_post(
        &server,
        "/rsi/rsi.asmx",
        &format!("{rsi}/DeleteMessages"),
        &envelope(&format!("<DeleteMessages><messageIds><messageId>{guid}</messageId></messageIds></DeleteMessages>")),
    )
    .await;
    assert_eq!(del.status, 200);
    let meta = soap_post(&server, "/rsi/rsi.asmx", &format!("{rsi}/GetMetadata"), &envelope("<GetMetadata/>")).await;
    assert!(!String::from_utf8(meta.body).unwrap().contains(&guid), "deleted");
}

#[tokio::test]
async fn an_online_recipient_is_offered_it_at_once() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = sign_in_plain(&server, "bob").await;
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    store_offline(&server, &alice, "alice@example.com", "bob@example.com", "you were quick").await;
    let (_sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("you were quick"));
}

/// Posts an OIM store request as it is, with no second attempt.
async fn post_store(server: &TestServer, request: &msnp::oim::StoreRequest) -> (u16, String) {
    let answer = soap_post(server, "/OimWS/oim.asmx", msnp::oim::STORE2_ACTION, &request.to_xml()).await;
    (answer.status, String::from_utf8_lossy(&answer.body).into_owned())
}

/// The `rsi.asmx` answer to one call, with `client`'s profile token.
async fn inbox(server: &TestServer, client: &Client, request: msnp::oim::InboxRequest) -> String {
    let call = msnp::oim::InboxCall { ticket: client.mspauth(), request };
    let answer = soap_post(server, "/rsi/rsi.asmx", &call.action(), &call.to_xml()).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    String::from_utf8(answer.body).unwrap()
}

#[tokio::test]
async fn store2_asks_for_the_lock_key_and_keeps_text_every_dialect_reads() {
    use msnp::oim::{StoreRequest, lock_key, parse_store_fault, store_content};
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    // As Windows Live Messenger 2009 sends it: base64 text, its product id.
    let mut request = StoreRequest {
        from: "alice@example.com".into(),
        from_friendly: Some(msnp::oim::encoded_word("Alice")),
        to: "bob@example.com".into(),
        ticket: format!("t={}&p=x", alice.mspauth()),
        app_id: "PROD0119GSJUC$18".into(),
        lock_key: String::new(),
        sequence: 1,
        content: store_content("héllo from WLM".as_bytes(), "E4A2A10B-6D1B-4C8F-9E0C-2B7B0E8F1A2C", 1),
    };
    let (status, fault) = post_store(&server, &request).await;
    let (code, challenge) = parse_store_fault(&fault).expect("a fault");
    assert_eq!((status, code.as_str()), (500, "AuthenticationFailed"));
    let challenge = challenge.expect("the lock-key challenge");
    assert!(challenge.len() == 10 && challenge.bytes().all(|b| b.is_ascii_digit()), "{challenge}");
    // A wrong key is refused with the same challenge (derived, not stored).
    request.lock_key = "0123456789abcdef0123456789abcdef".into();
    let (status, fault) = post_store(&server, &request).await;
    assert_eq!(
        (status, parse_store_fault(&fault)),
        (500, Some(("AuthenticationFailed".into(), Some(challenge.clone()))))
    );
    // Another product's key does not answer for this one.
    request.lock_key = lock_key(&challenge, "PROD0090YUAUV{2B").unwrap();
    assert_eq!(post_store(&server, &request).await.0, 500);
    request.lock_key = lock_key(&challenge, "PROD0119GSJUC$18").unwrap();
    let (status, answer) = post_store(&server, &request).await;
    assert_eq!(status, 200, "{answer}");
    // An MSNP2 client reads the text, not its base64.
    let mut bob = sign_in_plain(&server, "bob").await;
    let (_sb, shown) = answer_offline(&mut bob, "bob@example.com", "alice@example.com").await;
    assert!(shown[0].ends_with("héllo from WLM"), "{}", shown[0]);
}

#[tokio::test]
async fn msnp15_reads_offline_messages_from_the_inbox_alone_and_they_go_when_deleted() {
    use msnp::oim::{InboxRequest, content_text, parse_get_message_response, parse_metadata};
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    for text in ["first", "second"] {
        assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", text).await.status, 200);
    }
    let mut bob = as_dialect(&server, 15, "bob").await;
    bob.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    bob.expect("ADL 5 OK").await;
    bob.send("CHG 6 NLN 0").await;
    bob.expect("CHG 6 NLN 0").await;
    let notice = bob.expect_prefix("MSG Hotmail Hotmail ").await;
    let notice = String::from_utf8(notice.payload.unwrap()).unwrap();
    assert!(notice.contains("text/x-msmsgsinitialmdatanotification"), "{notice}");
    let entries = parse_metadata(&notice).unwrap();
    assert_eq!(entries.len(), 2);
    // Only the inbox shows them: no switchboard invitation as well.
    let skipped = bob.sync_point_skipping().await;
    assert!(
        skipped.iter().all(|l| !l.text.starts_with("RNG")),
        "{:?}",
        skipped.iter().map(|l| &l.text).collect::<Vec<_>>()
    );

    let mut texts = Vec::new();
    for e in &entries {
        let xml = inbox(&server, &bob, InboxRequest::GetMessage { guid: e.guid.clone() }).await;
        // aMSN shows nothing without the arrival time, and reads no
        // character references.
        assert!(xml.contains("X-OriginalArrivalTime: ") && !xml.contains("&#13;"), "{xml}");
        let text = content_text(&parse_get_message_response(&xml).unwrap()).unwrap();
        texts.push(String::from_utf8(text).unwrap());
    }
    assert!(texts[0].ends_with("first") && texts[1].ends_with("second"), "in order: {texts:?}");
    // Reading is not deleting: they wait until the client deletes them.
    let still = parse_metadata(&inbox(&server, &bob, InboxRequest::GetMetadata).await).unwrap();
    assert_eq!(still.len(), 2);
    let guids = entries.iter().map(|e| e.guid.clone()).collect();
    inbox(&server, &bob, InboxRequest::DeleteMessages { guids }).await;
    assert!(parse_metadata(&inbox(&server, &bob, InboxRequest::GetMetadata).await).unwrap().is_empty());

    // Hidden, Bob is still told when one arrives (only the inbox shows it).
    bob.send("CHG 7 HDN 0").await;
    bob.expect("CHG 7 HDN 0").await;
    assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", "psst").await.status, 200);
    let notice = bob.expect_prefix("MSG Hotmail Hotmail ").await;
    let notice = String::from_utf8(notice.payload.unwrap()).unwrap();
    assert!(notice.contains("text/x-msmsgsoimnotification"), "{notice}");
    assert_eq!(
        parse_metadata(&notice).unwrap().iter().map(|e| e.sender.as_str()).collect::<Vec<_>>(),
        ["alice@example.com"]
    );
    // Signing in again, the undeleted one is listed once more; the
    // deleted ones never.
    drop(bob);
    let mut bob = as_dialect(&server, 15, "bob").await;
    bob.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    bob.expect("ADL 5 OK").await;
    bob.send("CHG 6 NLN 0").await;
    bob.expect("CHG 6 NLN 0").await;
    let notice = String::from_utf8(bob.expect_prefix("MSG Hotmail Hotmail ").await.payload.unwrap()).unwrap();
    assert_eq!(parse_metadata(&notice).unwrap().len(), 1);
}

#[tokio::test]
async fn an_sso_clients_messenger_ticket_reads_the_inbox() {
    use msnp::oim::{InboxCall, InboxRequest, parse_metadata};
    // aMSN (MSNP15) asks RST for `messenger.msn.com` beside the SSO token
    // and reads its offline messages with it.
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", "for aMSN").await.status, 200);
    let _bob = as_dialect(&server, 15, "bob").await;
    let services = [(msnp::sso::MESSENGER_SERVICE, "MBI_KEY_OLD"), ("messenger.msn.com", "?id=507")];
    let body = msnp::passport::rst_request("bob@example.com", "pw-bob", &services);
    let answer = soap_post(&server, "/RST.srf", "", &body).await;
    let tokens = msnp::passport::parse_rst_response(&String::from_utf8_lossy(&answer.body)).unwrap();
    let messenger = tokens.iter().find(|t| t.id == "Compact2").expect("the messenger.msn.com token");
    let token = msnp::passport::ticket_token(&messenger.ticket).to_string();
    let call = InboxCall { ticket: token, request: InboxRequest::GetMetadata };
    let answer = soap_post(&server, "/rsi/rsi.asmx", &call.action(), &call.to_xml()).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let waiting = parse_metadata(&String::from_utf8_lossy(&answer.body)).unwrap();
    assert_eq!(waiting.iter().map(|e| e.sender.as_str()).collect::<Vec<_>>(), ["alice@example.com"]);
}
