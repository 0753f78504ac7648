//! Presence under every combination of the privacy mode (BLP) and the allow
//! and block lists, statically and as they change.

mod common;

use common::*;

#[tokio::test]
async fn presence_visibility_for_each_privacy_combination() {
    let server = TestServer::start();
    // (user, BLP, list alice is on, whether alice may see them)
    let combos = [
        ("p1", "AL", None, true),
        ("p2", "AL", Some("AL"), true),
        ("p3", "AL", Some("BL"), false),
        ("p4", "BL", None, false),
        ("p5", "BL", Some("AL"), true),
        ("p6", "BL", Some("BL"), false),
    ];
    let names: Vec<&str> = combos.iter().map(|c| c.0).chain(["alice"]).collect();
    users(&server, &names);
    for (name, blp, list, _) in combos {
        let mut c = login(&server, &format!("{name}@example.com"), &format!("pw-{name}")).await;
        if blp == "BL" {
            c.send("BLP 1 BL").await;
            c.expect_prefix("BLP 1 ").await;
        }
        if let Some(list) = list {
            c.send(&format!("ADD 2 {list} alice@example.com alice@example.com")).await;
            c.expect_prefix(&format!("ADD 2 {list} ")).await;
        }
        c.send("OUT").await;
        c.expect_closed().await;
    }
    let mut a = login(&server, "alice@example.com", "pw-alice").await;
    for (i, (name, ..)) in combos.iter().enumerate() {
        a.send(&format!("ADD {} FL {name}@example.com {}", i + 1, capitalise(name))).await;
        a.expect_prefix(&format!("ADD {} FL ", i + 1)).await;
    }
    a.send("CHG 20 NLN").await;
    a.expect("CHG 20 NLN").await;
    a.sync_point().await;
    // Each comes online; alice sees exactly the ones allowed to.
    let mut sessions = Vec::new();
    for (name, _, _, visible) in combos {
        let (c, _) = online_as(&server, name).await;
        sessions.push(c);
        if visible {
            a.expect(&format!("NLN NLN {name}@example.com {}", capitalise(name))).await;
        }
        // Events queued before a request are sent before its reply.
        a.sync_point().await;
    }
    a.sync_point().await;
    // And the initial list on a fresh sign-in agrees.
    drop(a);
    let (_a, ilns) = online_as(&server, "alice").await;
    let expected: Vec<String> =
        combos.iter().filter(|c| c.3).map(|(n, ..)| format!("ILN 101 NLN {n}@example.com {}", capitalise(n))).collect();
    assert_eq!(ilns, expected);
}

#[tokio::test]
async fn blocking_shows_offline_at_once_and_unblocking_shows_online_again() {
    let server = TestServer::start();
    let (mut a, mut b) = alice_watching_bob(&server).await;

    b.send("ADD 2 BL alice@example.com alice@example.com").await;
    b.expect("ADD 2 BL 2 alice@example.com alice@example.com").await;
    a.expect("FLN bob@example.com").await;
    // While blocked, Bob's changes reveal nothing to Alice.
    b.send("CHG 3 AWY").await;
    b.expect("CHG 3 AWY").await;
    b.send("REA 4 bob@example.com Robert").await;
    b.expect_prefix("REA 4 ").await;
    a.sync_point().await;

    b.send("REM 5 BL alice@example.com").await;
    b.expect_prefix("REM 5 BL ").await;
    a.expect("NLN AWY bob@example.com Robert").await;

    // Allow-list mode: only the allow list sees Bob.
    b.send("BLP 6 BL").await;
    b.expect_prefix("BLP 6 ").await;
    a.expect("FLN bob@example.com").await;
    b.send("ADD 7 AL alice@example.com alice@example.com").await;
    b.expect_prefix("ADD 7 AL ").await;
    a.expect("NLN AWY bob@example.com Robert").await;
    b.send("REM 8 AL alice@example.com").await;
    b.expect_prefix("REM 8 AL ").await;
    a.expect("FLN bob@example.com").await;
    b.send("BLP 9 AL").await;
    b.expect_prefix("BLP 9 ").await;
    a.expect("NLN AWY bob@example.com Robert").await;

    // Hidden looks offline to everyone, and blocking while hidden says nothing.
    b.send("CHG 10 HDN").await;
    b.expect("CHG 10 HDN").await;
    a.expect("FLN bob@example.com").await;
    b.send("ADD 11 BL alice@example.com alice@example.com").await;
    b.expect_prefix("ADD 11 BL ").await;
    a.sync_point().await;
}

#[tokio::test]
async fn a_blocked_user_cannot_learn_state_by_adding_or_ringing() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let (mut b, _) = online_as(&server, "bob").await;
    b.send("ADD 1 BL alice@example.com alice@example.com").await;
    b.expect_prefix("ADD 1 BL ").await;
    let (mut a, ilns) = online_as(&server, "alice").await;
    assert!(ilns.is_empty());
    // Adding Bob yields no ILN: he looks offline.
    a.send("ADD 2 FL bob@example.com Bob").await;
    a.expect("ADD 2 FL 1 bob@example.com Bob").await;
    // Bob still learns he was added (his reverse list), as the draft requires.
    b.expect("ADD 0 RL 2 alice@example.com Alice").await;
    a.sync_point().await;
}

/// A blocked user's list shows the blocker by handle: a name the blocker
/// changes afterwards must not reach him (nor the old one be refreshed).
#[tokio::test]
async fn a_blocked_users_sync_shows_the_blocker_by_handle_and_others_by_name() {
    let server = TestServer::start();
    users(&server, &["alice", "bob", "carol"]);
    for who in ["bob", "carol"] {
        let mut c = login(&server, &format!("{who}@example.com"), &format!("pw-{who}")).await;
        c.send("ADD 1 FL alice@example.com Alice").await;
        c.expect_prefix("ADD 1 FL ").await;
        c.send("OUT").await;
        c.expect_closed().await;
    }
    let (mut a, _) = online_as(&server, "alice").await;
    a.send("ADD 2 BL bob@example.com bob@example.com").await;
    a.expect_prefix("ADD 2 BL ").await;
    a.send("REA 3 alice@example.com Alice%20in%20Paris").await;
    a.expect_prefix("REA 3 ").await;
    let server = &server;
    let fl_line = |who: &'static str| async move {
        let mut c = login(server, &format!("{who}@example.com"), &format!("pw-{who}")).await;
        c.send("SYN 5 0").await;
        let lines = c.sync_point_skipping().await;
        lines.into_iter().find(|l| l.text.starts_with("LST 5 FL")).map(|l| l.text).unwrap()
    };
    assert!(fl_line("bob").await.ends_with(" alice@example.com alice@example.com"), "the blocker's name reached bob");
    assert!(fl_line("carol").await.ends_with(" alice@example.com Alice%20in%20Paris"));
}

/// An MSNP11 client signed in, synced, and online.
async fn online11(server: &TestServer, name: &str, client_id: &str) -> Client {
    let mut c = login_as_dialect(server, 11, &format!("{name}@example.com"), &format!("pw-{name}")).await;
    c.send("SYN 6 0 0").await;
    c.sync_point_skipping().await;
    c.send(&format!("CHG 7 NLN {client_id}")).await;
    c.expect_prefix("CHG 7 NLN").await;
    c
}

#[tokio::test]
async fn msnp11_presence_pictures_and_personal_messages_stay_hidden_from_blocked_users() {
    let server = TestServer::start_with(&["--challenges", "off"]);
    users(&server, &["alice", "bob", "carol"]);
    let mut bob = online11(&server, "bob", "0").await;
    let mut alice = online11(&server, "alice", "0").await;
    let mut carol = online11(&server, "carol", "0").await;
    for (c, trid) in [(&mut alice, 8), (&mut carol, 9)] {
        c.send(&format!("ADC {trid} FL N=bob@example.com F=Bob")).await;
        c.expect_prefix(&format!("ADC {trid} FL N=bob@example.com")).await;
        // Bob is online and not blocking yet: both see him.
        c.expect_prefix("ILN ").await;
    }
    bob.send("ADC 10 BL N=alice@example.com").await;
    bob.sync_point_skipping().await;
    // Blocking shows Bob offline to Alice at once.
    alice.expect("FLN bob@example.com").await;

    // A state change with a display picture, and a personal message.
    let object = "%3Cmsnobj%20Creator%3D%22bob%40example.com%22%2F%3E";
    bob.send(&format!("CHG 11 BSY 1342177280 {object}")).await;
    bob.expect_prefix("CHG 11 BSY").await;
    let psm = b"<Data><PSM>only for friends</PSM><CurrentMedia></CurrentMedia></Data>";
    bob.send_payload("UUX 12", psm).await;
    bob.expect("UUX 12 0").await;
    // Carol, who is not blocked, gets both...
    carol.expect_prefix("NLN BSY bob@example.com ").await;
    carol.expect_prefix("UBX bob@example.com ").await;
    // ...Alice neither: her next line is the answer to her own ping.
    alice.send("PNG").await;
    alice.expect_prefix("QNG").await;
}
