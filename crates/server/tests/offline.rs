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

#[tokio::test]
async fn the_quota_refuses_and_tells_the_sender() {
    let server = TestServer::start_with(&["--offline-quota", "2"]);
    users(&server, &["alice", "bob"]);
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    for _ in 0..2 {
        assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", "x").await.status, 200);
    }
    let refused = store_offline(&server, &alice, "alice@example.com", "bob@example.com", "x").await;
    assert_eq!(refused.status, 500);
    assert!(String::from_utf8(refused.body).unwrap().contains("QuotaExceeded"));
    let unknown = store_offline(&server, &alice, "alice@example.com", "nobody@example.com", "x").await;
    assert!(String::from_utf8(unknown.body).unwrap().contains("InvalidRecipient"));
}

#[tokio::test]
async fn a_blocked_sender_is_told_nothing_and_nothing_arrives() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let mut bob = sign_in_plain(&server, "bob").await;
    bob.send("ADD 1 BL alice@example.com alice@example.com").await;
    bob.expect_prefix("ADD 1 BL ").await;
    bob.send("OUT").await;
    bob.expect_closed().await;
    let alice = login_as_dialect(&server, 11, "alice@example.com", "pw-alice").await;
    assert_eq!(store_offline(&server, &alice, "alice@example.com", "bob@example.com", "hi").await.status, 200);
    let mut bob = sign_in_plain(&server, "bob").await;
    bob.sync_point().await;
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
