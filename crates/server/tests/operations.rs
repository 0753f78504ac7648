//! What an operator sees: the Prometheus metrics after a scripted session.

mod common;

use std::collections::HashMap;

use common::*;

async fn metrics(server: &TestServer) -> HashMap<String, f64> {
    let answer = http_get(server.http.unwrap(), "/metrics", &[]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("content-type").or(answer.header("Content-Type")).unwrap_or("").starts_with("text/plain"));
    String::from_utf8(answer.body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn metrics_count_a_scripted_session() {
    let server = TestServer::start();
    let (_a_ns, _b_ns, mut a, mut b) = alice_and_bob_in_a_session(&server).await;
    for i in 0..2 {
        a.send_payload(&format!("MSG {} N", 10 + i), &text_message("counted")).await;
        b.expect_prefix("MSG alice@example.com").await;
    }
    // One failed login, and one offline message stored for someone offline.
    users(&server, &["carol", "dave"]);
    let mut x = Client::connect(server.ns).await;
    x.send("VER 1 MSNP7 CVR0").await;
    x.expect("VER 1 MSNP7").await;
    x.send("USR 2 MD5 I carol@example.com").await;
    x.expect_prefix("USR 2 MD5 S ").await;
    x.send("USR 3 MD5 S 00000000000000000000000000000000").await;
    x.expect("911 3").await;
    let carol = login_as_dialect(&server, 11, "carol@example.com", "pw-carol").await;
    assert_eq!(store_offline(&server, &carol, "carol@example.com", "dave@example.com", "later").await.status, 200);

    let m = metrics(&server).await;
    let get = |name: &str| *m.get(name).unwrap_or_else(|| panic!("{name} missing from /metrics"));
    assert_eq!(get("msnd_users_online{state=\"NLN\"}"), 2.0, "Alice and Bob");
    assert_eq!(get("msnd_users_online{state=\"FLN\"}"), 1.0, "Carol never sent CHG");
    assert_eq!(get("msnd_connections{role=\"switchboard\"}"), 2.0);
    assert_eq!(get("msnd_connections{role=\"notification\"}"), 4.0, "Alice, Bob, Carol and the failed login");
    assert_eq!(get("msnd_switchboard_sessions"), 1.0);
    assert_eq!(get("msnd_messages_relayed_total"), 2.0);
    assert_eq!(get("msnd_logins_total{result=\"succeeded\"}"), 3.0);
    assert_eq!(get("msnd_logins_total{result=\"failed\"}"), 1.0);
    assert_eq!(get("msnd_offline_messages_stored_total"), 1.0);
    assert!(get("msnd_store_seconds_count") >= 5.0, "sign-ins and list reads went through the store");
    assert_eq!(get("msnd_store_seconds_bucket{le=\"+Inf\"}"), get("msnd_store_seconds_count"));
    assert!(get("msnd_uptime_seconds") >= 0.0);

    let health = http_get(server.http.unwrap(), "/health", &[]).await;
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));
}
