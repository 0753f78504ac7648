//! A cluster of separate `msnd` processes on loopback, as the draft's
//! section 4 lays it out: one dispatch node, two notification nodes, two
//! switchboard nodes, on the shared PostgreSQL store and the NATS bus.
//!
//! These tests need PostgreSQL and NATS (the project machines and CI run
//! both); where they are absent each test says so on the terminal and
//! passes without running, unless `MARIPOSA_REQUIRE_SERVICES=1`.

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;

/// Sessions asked for in a burst, within one heartbeat, are spread over
/// the switchboard nodes: each notification node counts what it handed
/// out until the switchboard nodes' heartbeats can include it (they all
/// went to one node before).
#[tokio::test]
async fn a_burst_of_sessions_is_spread_over_the_switchboard_nodes() {
    let Some(c) = cluster("sb_spread", STEADY_NODE_TIMEOUT_MS).await else { return };
    let (mut a, _) = sign_in(&c, "u0").await;
    a.send("CHG 5 NLN").await;
    a.expect("CHG 5 NLN").await;
    let mut handed_out = std::collections::HashMap::<String, usize>::new();
    for trid in 10..18 {
        a.send(&format!("XFR {trid} SB")).await;
        let xfr = until(&mut a, &format!("XFR {trid} SB ")).await;
        *handed_out.entry(xfr.args()[3].to_string()).or_default() += 1;
    }
    let sb_ports: Vec<String> = c.switchboards.iter().map(|s| s.dispatch.to_string()).collect();
    assert!(handed_out.keys().all(|a| sb_ports.contains(a)), "{handed_out:?} against {sb_ports:?}");
    // Eight sessions and nobody connected: four each, give or take the
    // heartbeats that arrived in between.
    assert_eq!(handed_out.len(), 2, "every session went to one switchboard node: {handed_out:?}");
    assert!(handed_out.values().all(|n| *n >= 2), "{handed_out:?}");
}

#[tokio::test]
async fn users_on_different_nodes_add_each_other_see_presence_and_chat() {
    let Some(c) = cluster("presence_and_chat", STEADY_NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, _a_ns), (mut b, b_name, b_ns)) = users_on_two_nodes(&c).await;
    for (client, trid) in [(&mut a, 5), (&mut b, 5)] {
        client.send(&format!("CHG {trid} NLN")).await;
        client.expect(&format!("CHG {trid} NLN")).await;
    }
    // A adds B (on the other node): B is told through the bus, A sees B online.
    a.send(&format!("ADD 6 FL {b_name}@example.com {b_name}")).await;
    a.expect_prefix(&format!("ADD 6 FL 1 {b_name}@example.com")).await;
    let iln = until(&mut a, "ILN ").await;
    assert!(iln.text.contains(&format!("NLN {b_name}@example.com")), "{}", iln.text);
    until(&mut b, &format!("ADD 0 RL 1 {a_name}@example.com")).await;
    b.send(&format!("ADD 6 FL {a_name}@example.com {a_name}")).await;
    until(&mut b, &format!("ADD 6 FL 2 {a_name}@example.com")).await;

    // State changes cross nodes both ways.
    b.send("CHG 7 BSY").await;
    until(&mut a, &format!("NLN BSY {b_name}@example.com")).await;
    a.send("CHG 7 AWY").await;
    until(&mut b, &format!("NLN AWY {a_name}@example.com")).await;
    a.send("CHG 8 NLN").await;
    until(&mut b, &format!("NLN NLN {a_name}@example.com")).await;

    // A chat: A's notification node hands out a switchboard node, which
    // rings B on the other notification node.
    a.send("XFR 9 SB").await;
    let xfr = until(&mut a, "XFR 9 SB ").await;
    let (sb_address, cookie) = (xfr.args()[3].to_string(), xfr.args()[5].to_string());
    let sb_ports: Vec<String> = c.switchboards.iter().map(|s| s.dispatch.to_string()).collect();
    assert!(sb_ports.contains(&sb_address), "{sb_address} is a switchboard node ({sb_ports:?})");
    let mut a_sb = Client::connect_str(&sb_address).await;
    a_sb.send(&format!("USR 1 {a_name}@example.com {cookie}")).await;
    a_sb.expect_prefix("USR 1 OK").await;
    a_sb.send(&format!("CAL 2 {b_name}@example.com")).await;
    a_sb.expect_prefix("CAL 2 RINGING").await;
    let rng = until(&mut b, "RNG ").await;
    assert_eq!(rng.args()[2], sb_address, "RNG names the switchboard node");
    let mut b_sb = Client::connect_str(rng.args()[2]).await;
    b_sb.send(&format!("ANS 1 {b_name}@example.com {} {}", rng.args()[4], rng.args()[1])).await;
    until(&mut b_sb, "ANS 1 OK").await;
    until(&mut a_sb, &format!("JOI {b_name}@example.com")).await;

    // A third user, on whichever node, joins: a multi-party chat.
    let (mut third, _) = sign_in(&c, "u11").await;
    third.send("CHG 5 NLN").await;
    third.expect("CHG 5 NLN").await;
    // The switchboard node finds the third through the directory, whose
    // batch may still be on its way there: A calls again until it rings.
    let deadline = Instant::now() + Duration::from_secs(5);
    for trid in 3.. {
        a_sb.send(&format!("CAL {trid} u11@example.com")).await;
        let answer = a_sb.recv().await;
        if answer.text.starts_with(&format!("CAL {trid} RINGING")) {
            break;
        }
        assert_eq!(answer.text, format!("217 {trid}"), "a call to a user just signed in");
        assert!(Instant::now() < deadline, "the third user stayed unreachable");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rng = until(&mut third, "RNG ").await;
    let mut t_sb = Client::connect_str(rng.args()[2]).await;
    t_sb.send(&format!("ANS 1 u11@example.com {} {}", rng.args()[4], rng.args()[1])).await;
    until(&mut t_sb, "ANS 1 OK").await;
    a_sb.send_payload("MSG 4 N", &text_message("hello, three nodes")).await;
    for sb in [&mut b_sb, &mut t_sb] {
        let msg = until(sb, &format!("MSG {a_name}@example.com")).await;
        assert!(String::from_utf8(msg.payload.unwrap()).unwrap().ends_with("hello, three nodes"));
    }

    // Signing in again on the other node ends the first session with OTH.
    let other_ns = c.notification.iter().map(|n| n.ns.to_string()).find(|ns| *ns != b_ns).unwrap();
    let _b_again = direct(&other_ns, &b_name).await;
    until(&mut b, "OUT OTH").await;
}

#[tokio::test]
async fn a_killed_notification_node_shows_its_users_offline_and_they_sign_in_again() {
    let Some(mut c) = cluster("kill_9", NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, a_ns), (mut b, b_name, _)) = users_on_two_nodes(&c).await;
    for client in [&mut a, &mut b] {
        client.send("CHG 5 NLN").await;
        client.expect("CHG 5 NLN").await;
    }
    a.send(&format!("ADD 6 FL {b_name}@example.com {b_name}")).await;
    until(&mut a, &format!("ADD 6 FL 1 {b_name}@example.com")).await;
    b.send(&format!("ADD 6 FL {a_name}@example.com {a_name}")).await;
    until(&mut b, &format!("ADD 6 FL 2 {a_name}@example.com")).await;
    until(&mut b, &format!("ILN 6 NLN {a_name}@example.com")).await;

    // kill -9 the node A is on: B sees A go offline within the bound.
    let index = c.notification.iter().position(|n| n.ns.to_string() == a_ns).unwrap();
    let killed = Instant::now();
    c.notification[index].kill9();
    until(&mut b, &format!("FLN {a_name}@example.com")).await;
    let took = killed.elapsed();
    println!("FLN after {took:?} (node timeout {NODE_TIMEOUT_MS} ms)");

    // A signs in again at once, through dispatch, onto the surviving node,
    // with the forward list intact; B sees A online again.
    // The node that noticed told every node in one message, so the dispatch
    // node stops referring users there as their watchers see FLN (a client
    // that still got the old referral would retry, as this loop does).
    let ns = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (_, ns) = refer(&c, &a_name).await;
            if ns != a_ns {
                return ns;
            }
        }
    })
    .await
    .expect("dispatch stops referring users to the dead node");
    let mut a = direct(&ns, &a_name).await;
    a.send("SYN 7 0").await;
    let forward = until(&mut a, "LST 7 FL").await;
    assert!(forward.text.contains(&format!("{b_name}@example.com")), "the forward list survived: {}", forward.text);
    a.send("CHG 8 NLN").await;
    until(&mut a, &format!("ILN 8 NLN {b_name}@example.com")).await;
    until(&mut b, &format!("NLN NLN {a_name}@example.com")).await;
}

/// A node stopped for longer than the node timeout (a debugger, a swapped
/// out process) is declared dead by the others, rightly. When it runs
/// again it has heard nobody for as long, but that silence is its own: it
/// must not tell the cluster that every healthy node is dead. Its user
/// goes on seeing the other user, with no `FLN` in between.
#[tokio::test]
async fn a_node_that_was_stopped_does_not_declare_the_others_dead() {
    // The steady timeout: a loaded machine must not make a healthy node
    // look dead here; the stop lasts longer than the timeout instead.
    let Some(c) = cluster("stalled", STEADY_NODE_TIMEOUT_MS).await else { return };
    let timeout = Duration::from_millis(STEADY_NODE_TIMEOUT_MS.parse().unwrap());
    let ((mut a, _, a_ns), (mut b, b_name, _)) = a_watching_b_across_nodes(&c).await;
    let stopped = c.notification.iter().find(|n| n.ns.to_string() == a_ns).unwrap().pid();
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill").args([sig, &stopped.to_string()]).status().unwrap();
        assert!(status.success());
    };
    signal("-STOP");
    tokio::time::sleep(timeout + Duration::from_secs(1)).await;
    signal("-CONT");
    // Longer than a few rounds of heartbeats and sweeps after it resumed.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // (B saw A go and come back meanwhile: A's node was silent.)
    b.send("CHG 9 BSY").await;
    until(&mut b, "CHG 9 BSY").await;
    loop {
        let line = a.recv().await;
        assert!(!line.text.starts_with(&format!("FLN {b_name}@")), "A was told B left: {}", line.text);
        if line.text.starts_with(&format!("NLN BSY {b_name}@")) {
            break;
        }
    }
}

#[tokio::test]
async fn draining_a_notification_node_moves_every_client_with_xfr_ns() {
    let Some(c) = cluster("drain", STEADY_NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, a_ns), (mut b, _, b_ns)) = users_on_two_nodes(&c).await;
    for client in [&mut a, &mut b] {
        client.send("CHG 5 NLN").await;
        client.expect("CHG 5 NLN").await;
    }
    b.send(&format!("ADD 6 FL {a_name}@example.com {a_name}")).await;
    until(&mut b, &format!("ILN 6 NLN {a_name}@example.com")).await;
    // More clients on A's node, signed in directly.
    let mut others = Vec::new();
    for name in ["u9", "u10"] {
        others.push(direct(&a_ns, name).await);
    }

    let index = c.notification.iter().position(|n| n.ns.to_string() == a_ns).unwrap();
    let status = msnd()
        .arg("--data-dir")
        .arg(c.notification[index].data_dir())
        .arg("drain")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // Every client of the draining node is referred to the other one.
    for client in std::iter::once(&mut a).chain(others.iter_mut()) {
        let lines = client.expect_closed().await;
        let xfr = lines.iter().find(|l| l.text.starts_with("XFR 0 NS ")).expect("an asynchronous XFR NS");
        assert_eq!(xfr.args()[3], b_ns, "{}", xfr.text);
    }
    // A follows the referral and is back online for B.
    let mut a = direct(&b_ns, &a_name).await;
    a.send("CHG 7 NLN").await;
    until(&mut b, &format!("NLN NLN {a_name}@example.com")).await;
    // New sign-ins no longer go to the draining node.
    for i in 0..6 {
        let (_, ns) = refer(&c, &format!("u{i}")).await;
        assert_eq!(ns, b_ns, "dispatch skips a draining node");
    }
}

#[tokio::test]
async fn passport_logins_and_offline_messages_cross_nodes() {
    let Some(c) = cluster("passport_and_offline", STEADY_NODE_TIMEOUT_MS).await else { return };
    // The ticket comes from the login service on the dispatch node and is
    // redeemed by whichever notification node the user is sent to.
    let carol = login_as_dialect(&c.dispatch, 11, "u7@example.com", "pw-u7").await;
    let (mut b, _) = sign_in(&c, "u3").await;
    b.send("CHG 5 NLN").await;
    b.expect("CHG 5 NLN").await;
    // An offline message stored through the web service on the dispatch node
    // (Carol's token is known there only through the directory) wakes B up
    // on B's node.
    let stored = store_offline(&c.dispatch, &carol, "u7@example.com", "u3@example.com", "across the bus").await;
    assert_eq!(stored.status, 200, "{}", String::from_utf8_lossy(&stored.body));
    let (_sb, shown) = answer_offline(&mut b, "u3@example.com", "u7@example.com").await;
    assert!(shown.iter().any(|m| m.ends_with("across the bus")), "{shown:?}");
}

/// The bus name of the notification node listening on `ns`.
fn node_name(c: &Cluster, ns: &str) -> String {
    format!("ns{}", c.notification.iter().position(|n| n.ns.to_string() == ns).unwrap() + 1)
}

#[tokio::test]
async fn after_the_bus_restarts_users_on_other_nodes_are_online_and_reachable_again() {
    let test = "cluster::bus_restart";
    let Some((mut nats, c)) = cluster_on_a_bus_of_its_own("bus_restart", NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, _), (mut b, b_name, b_ns)) = a_watching_b_across_nodes(&c).await;

    // The bus goes away for longer than the node timeout: each node sees
    // the others fall silent, and A is told that B is offline.
    nats.kill9();
    until(&mut a, &format!("FLN {b_name}@example.com")).await;
    nats.restart(test);
    // The nodes find each other again: A sees B online again without
    // either signing in anew, and can call B across nodes.
    until(&mut a, &format!("NLN NLN {b_name}@example.com")).await;
    let mut a_sb = {
        a.send("XFR 9 SB").await;
        let xfr = until(&mut a, "XFR 9 SB ").await;
        let mut sb = Client::connect_str(xfr.args()[3]).await;
        sb.send(&format!("USR 1 {a_name}@example.com {}", xfr.args()[5])).await;
        sb.expect_prefix("USR 1 OK").await;
        sb
    };
    // Each node hears the others again in its own time (the switchboard
    // that rings B must have heard B's node): A calls until B is reachable,
    // as a person would.
    let mut trid = 2;
    loop {
        a_sb.send(&format!("CAL {trid} {b_name}@example.com")).await;
        let answer = a_sb.recv().await;
        if answer.text.starts_with(&format!("CAL {trid} RINGING")) {
            break;
        }
        assert_eq!(answer.text, format!("217 {trid}"), "a call after the restart");
        assert!(trid < 8, "B stayed unreachable across nodes");
        trid += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    until(&mut b, "RNG ").await;
    // Sign-ins after the restart reach the directory too: someone new on
    // B's node is found from A's.
    let mut late = direct(&b_ns, "u11").await;
    late.send("CHG 5 NLN").await;
    late.expect("CHG 5 NLN").await;
    a.send("ADD 10 FL u11@example.com u11").await;
    until(&mut a, "ILN 10 NLN u11@example.com").await;
    // Each node counts the connection it lost.
    until_a_node_reports(&c.dispatch, "reconnections", 1).await;
}

/// Waits until some node's heartbeat, as `node`'s status page lists it,
/// reports at least `least` of `field` (a heartbeat a second carries it);
/// returns the status.
async fn until_a_node_reports(node: &TestServer, field: &str, least: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = status(node).await;
        let nodes = status["cluster"]["nodes"].as_array().unwrap();
        if nodes.iter().filter_map(|n| n[field].as_u64()).max().unwrap_or(0) >= least {
            return status;
        }
        assert!(Instant::now() < deadline, "no node reports {field} of {least}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the dispatch node's status page lists exactly `nodes`
/// (it gives up nodes it does not hear, and lists them again once heard).
async fn until_the_dispatch_node_hears(c: &Cluster, nodes: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status(&c.dispatch).await;
        let heard: Vec<&str> =
            status["cluster"]["nodes"].as_array().unwrap().iter().filter_map(|n| n["node"].as_str()).collect();
        if heard == nodes {
            return;
        }
        assert!(Instant::now() < deadline, "the dispatch node hears {heard:?}, not {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bus frames refused by a node so far.
async fn rejected_frames(node: &TestServer) -> u64 {
    let status = status(node).await;
    status["cluster"]["rejected_frames"].as_u64().unwrap_or_else(|| panic!("{status}"))
}

/// Someone who can publish on the NATS server but holds no server key:
/// an event recorded and played again, and one forged outright, are
/// refused, and the user sees neither.
#[tokio::test]
async fn a_publisher_on_the_bus_without_the_key_can_neither_forge_nor_replay() {
    let Some((nats, c)) = cluster_on_a_bus_of_its_own("bus_forgery", STEADY_NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, a_ns), (mut b, b_name, _)) = a_watching_b_across_nodes(&c).await;
    let a_node = node_name(&c, &a_ns);

    let eve = async_nats::connect(nats.url()).await.unwrap();
    // Eve listens to everything and records B's next change on its way to
    // A's node.
    let mut tap = eve.subscribe(">").await.unwrap();
    // Listening once the server has the subscription.
    server::cluster::round_trip(&eve).await.unwrap();
    b.send("CHG 7 BSY").await;
    until(&mut a, &format!("NLN BSY {b_name}@example.com")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        assert!(Instant::now() < deadline, "no envelope for A's node was seen on the bus");
        let m =
            tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut tap)).await.unwrap().unwrap();
        if m.subject.as_str().ends_with(&format!(".node.{a_node}"))
            && String::from_utf8_lossy(&m.payload).contains("Presence")
        {
            break m;
        }
    };
    let forged = backend::cluster::Envelope::Deliver {
        to: format!("{a_name}@example.com"),
        event: backend::NsEvent::SystemMessage {
            payload: bytes::Bytes::from_static(b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nforged"),
        },
    };
    let forged = serde_json::to_vec(&forged).unwrap();
    let before = rejected_frames(&c.dispatch).await;
    eve.publish(recorded.subject.clone(), recorded.payload.clone()).await.unwrap();
    eve.publish(recorded.subject.clone(), forged.clone().into()).await.unwrap();
    // Every node hears the broadcast subject, the dispatch node too.
    let broadcast = recorded.subject.as_str().replace(&format!("node.{a_node}"), "all");
    eve.publish(broadcast, forged.into()).await.unwrap();
    // And so does every node the directory's batches: Eve seats B on a
    // node of her own, newer than anything written.
    let seats = recorded.subject.as_str().replace(&format!("node.{a_node}"), "seats");
    let forged_seat = server::seats::SeatChange {
        key: format!("{b_name}@example.com"),
        revision: u64::MAX,
        seat: Some(server::seats::Seat {
            node: "eve".into(),
            session: 1,
            handle: format!("{b_name}@example.com"),
            token: "eve".into(),
        }),
    };
    eve.publish(seats, serde_json::to_vec(&vec![forged_seat]).unwrap().into()).await.unwrap();
    // NATS has passed them on before anything it gets after this.
    server::cluster::round_trip(&eve).await.unwrap();
    // B's next change travels the same subject after Eve's frames: once A
    // sees it, A's node has dealt with them.
    b.send("CHG 8 NLN").await;
    let mut seen = Vec::new();
    loop {
        let line = a.recv().await;
        if line.text.starts_with(&format!("NLN NLN {b_name}@example.com")) {
            break;
        }
        seen.push(line.text);
    }
    assert!(seen.is_empty(), "A was shown what Eve sent: {seen:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while rejected_frames(&c.dispatch).await < before + 2 {
        assert!(Instant::now() < deadline, "the dispatch node took a forged broadcast or seat");
        tokio::task::yield_now().await;
    }
    // A's node refused the replay and the forgery too, and its heartbeats
    // say so on the dispatch node's status page.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = status(&c.dispatch).await;
        let nodes = status["cluster"]["nodes"].as_array().unwrap();
        let a_node_refused = nodes.iter().find(|n| n["node"] == a_node.as_str()).unwrap()["rejected_frames"].as_u64();
        if a_node_refused.unwrap() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "A's node's refusals are not on the status page: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Watchers signed in on one node hear of a change through one message to
/// that node, not one each.
#[tokio::test]
async fn watchers_on_one_node_hear_of_a_change_in_one_message() {
    let Some((nats, c)) = cluster_on_a_bus_of_its_own("presence_per_node", STEADY_NODE_TIMEOUT_MS).await else {
        return;
    };
    let ((mut a, a_name, a_ns), (mut b, b_name, _)) = a_watching_b_across_nodes(&c).await;
    let a_node = node_name(&c, &a_ns);
    // A second watcher of B on A's node.
    let other = (0..12).map(|i| format!("u{i}")).find(|n| *n != a_name && *n != b_name).unwrap();
    let mut other_client = direct(&a_ns, &other).await;
    other_client.send("CHG 5 NLN").await;
    other_client.expect("CHG 5 NLN").await;
    other_client.send(&format!("ADD 6 FL {b_name}@example.com {b_name}")).await;
    until(&mut other_client, &format!("ILN 6 NLN {b_name}@example.com")).await;

    let tap = async_nats::connect(nats.url()).await.unwrap();
    let mut to_a_node = tap.subscribe(format!("*.node.{a_node}")).await.unwrap();
    server::cluster::round_trip(&tap).await.unwrap();
    b.send("CHG 7 BSY").await;
    until(&mut a, &format!("NLN BSY {b_name}@example.com")).await;
    until(&mut other_client, &format!("NLN BSY {b_name}@example.com")).await;
    // Both have it: what was sent for it is on its way to the tap too. A
    // second message would follow the first at once.
    let mut messages = 0;
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut to_a_node)).await {
        if String::from_utf8_lossy(&m.payload).contains("Presence") {
            messages += 1;
            deadline = deadline.min(tokio::time::Instant::now() + Duration::from_millis(300));
        }
    }
    assert_eq!(messages, 1, "messages to A's node for B's change");
}

#[tokio::test]
async fn the_web_services_serve_a_user_signed_in_on_another_node() {
    use msnp::addressbook::{Operation, parse_ab_find_all_response};
    let Some(c) = cluster("web_services_across_nodes", STEADY_NODE_TIMEOUT_MS).await else { return };
    // RST on the dispatch node's login service; signed in on a notification
    // node; the address book asked of the dispatch node's web services.
    let mut alice = login_as_dialect(&c.dispatch, 15, "u1@example.com", "pw-u1").await;
    alice.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
    alice.expect("ADL 5 OK").await;
    alice.send("CHG 6 NLN 0").await;
    alice.expect("CHG 6 NLN 0").await;
    let (mut b, _) = sign_in(&c, "u2").await;
    b.send("CHG 5 NLN").await;
    b.expect("CHG 5 NLN").await;
    let ticket = alice.contacts_ticket.clone().expect("an address book ticket");
    let call = |op: Operation| address_book(&c.dispatch, &ticket, op);
    let (status, xml) = call(Operation::FindAll { deltas_since: None }).await;
    assert_eq!(status, 200, "{xml}");
    assert_eq!(parse_ab_find_all_response(&xml).unwrap().contacts.len(), 1, "only Alice herself");
    let add = Operation::ContactAdd { handle: "u2@example.com".into(), messenger_user: true, allow: true };
    let (status, xml) = call(add).await;
    assert_eq!(status, 200, "{xml}");
    until(&mut b, "ADD 0 RL ").await;
    // Alice's own node learnt of it: her ADL shows u2 at once.
    alice.send_payload("ADL 7", br#"<ml><d n="example.com"><c n="u2" l="3" t="1"/></d></ml>"#).await;
    alice.expect("ADL 7 OK").await;
    alice.expect_prefix("ILN 7 NLN u2@example.com").await;
    let (_, xml) = call(Operation::FindAll { deltas_since: None }).await;
    let handles: Vec<String> =
        parse_ab_find_all_response(&xml).unwrap().contacts.into_iter().map(|c| c.handle).collect();
    assert_eq!(handles, ["u1@example.com", "u2@example.com"]);
}

#[tokio::test]
async fn a_user_on_two_machines_is_rung_on_both_from_another_node() {
    let Some(c) = cluster("two_machines_across_nodes", STEADY_NODE_TIMEOUT_MS).await else { return };
    let machine = |n: u8| msnp::endpoint::MachineGuid::from_random([n; 16]);
    // Alice on two machines (MSNP18): the dispatch node sends both to her node.
    let (_, alice_ns) = refer(&c, "u1").await;
    let mut machines = Vec::new();
    for n in [1, 2] {
        let mut m = login_from_machine(&c.dispatch, 18, "u1@example.com", "pw-u1", machine(n)).await;
        m.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
        m.expect("ADL 5 OK").await;
        m.send("CHG 6 NLN 2788999228:48").await;
        until(&mut m, "CHG 6 NLN").await;
        machines.push(m);
    }
    // Bob (MSNP7) on the other notification node.
    let mut bob = None;
    for i in 2..12 {
        let name = format!("u{i}");
        if refer(&c, &name).await.1 != alice_ns {
            bob = Some((sign_in(&c, &name).await.0, format!("{name}@example.com")));
            break;
        }
    }
    let (mut bob, me) = bob.expect("a user on the other notification node");
    bob.send("CHG 5 NLN").await;
    bob.expect("CHG 5 NLN").await;
    bob.send("XFR 6 SB").await;
    let xfr = bob.expect_prefix("XFR 6 SB ").await;
    let (address, cookie) = (xfr.args()[3].to_string(), xfr.args()[5].to_string());
    let mut bob_sb = Client::connect_str(&address).await;
    bob_sb.send(&format!("USR 1 {me} {cookie}")).await;
    bob_sb.expect_prefix("USR 1 OK").await;
    bob_sb.send("CAL 2 u1@example.com").await;
    bob_sb.expect_prefix("CAL 2 RINGING").await;
    // Each machine is rung with a cookie of its own, and both come in.
    let (mut cookies, mut joined) = (Vec::new(), Vec::new());
    for (m, n) in machines.iter_mut().zip([1u8, 2]) {
        let ring = until(m, "RNG ").await;
        let r = ring.args();
        cookies.push(r[4].to_string());
        let mut sb = Client::connect_str(r[2]).await;
        sb.send(&format!("ANS 1 u1@example.com;{} {} {}", machine(n), r[4], r[1])).await;
        until(&mut sb, "ANS 1 OK").await;
        joined.push(sb);
    }
    assert_ne!(cookies[0], cookies[1]);
    // Bob's older client sees Alice join once.
    bob_sb.expect_prefix("JOI u1@example.com").await;
    bob_sb.expect_silence().await;
}

#[tokio::test]
async fn a_circle_speaks_across_nodes() {
    use msnp::addressbook::{Invitee, Operation, parse_circle_result, parse_create_circle_response};
    use msnp::circle::{self, Said};
    let Some(c) = cluster("circle_across_nodes", STEADY_NODE_TIMEOUT_MS).await else { return };
    // Two MSNP18 users whom the dispatch node puts on different nodes.
    let (_, alice_ns) = refer(&c, "u1").await;
    let mut bob_name = None;
    for i in 2..12 {
        if refer(&c, &format!("u{i}")).await.1 != alice_ns {
            bob_name = Some(format!("u{i}"));
            break;
        }
    }
    let bob_name = bob_name.expect("a user on another node");
    let signed = |name: String| {
        let dispatch = &c.dispatch;
        async move {
            let machine = msnp::endpoint::MachineGuid::from_random(rand::random());
            let email = format!("{name}@example.com");
            let mut m = login_from_machine(dispatch, 18, &email, &format!("pw-{name}"), machine).await;
            m.send_payload("ADL 5", br#"<ml l="1"></ml>"#).await;
            m.expect("ADL 5 OK").await;
            let ticket = m.contacts_ticket.clone().expect("an address book ticket");
            (m, ticket, email)
        }
    };
    let (mut alice, alice_ticket, _) = signed("u1".into()).await;
    let (mut bob, bob_ticket, bob_email) = signed(bob_name).await;
    // The address book is asked of the dispatch node, for users elsewhere.
    let call = |ticket: &str, op: Operation| {
        let (ticket, node) = (ticket.to_string(), &c.dispatch);
        async move {
            let (status, xml) = address_book(node, &ticket, op).await;
            assert_eq!(status, 200, "{xml}");
            xml
        }
    };
    let id = parse_create_circle_response(&call(&alice_ticket, Operation::CreateCircle { name: "Nodes".into() }).await)
        .unwrap();
    let invite =
        Operation::InviteToCircle { circle: id.clone(), invitee: Invitee::Handle(bob_email.clone()), message: None };
    call(&alice_ticket, invite).await;
    until(&mut bob, "NOT ").await;
    call(&bob_ticket, Operation::AnswerCircle { circle: id.clone(), accept: true }).await;
    // Each joins on its own node with its ticket.
    let adl = format!(r#"<ml><d n="live.com"><c n="{}" l="1" t="9"/></d></ml>"#, id.guid());
    for (client, ticket) in [(&mut alice, &alice_ticket), (&mut bob, &bob_ticket)] {
        let xml = call(ticket, Operation::FindContactsPaged { deltas_since: None }).await;
        let (_, signed) = parse_circle_result(&xml).unwrap();
        client.send(&format!("USR 20 SHA A {}", msnp::base64::encode(signed.as_bytes()))).await;
        until(client, "USR 20 OK ").await;
        client.send_payload("ADL 21", adl.as_bytes()).await;
        until(client, "ADL 21 OK").await;
    }
    // Alice sees Bob come in, from his node; what he says reaches her there.
    loop {
        let roster = until(&mut alice, "NFY PUT ").await;
        let m = msnp::routed::RoutedMessage::parse(roster.payload.as_deref().unwrap()).unwrap();
        if msnp::circle::CircleDocument::parse(&m.body).unwrap().roster.len() == 2 {
            break;
        }
    }
    let said = Said::Text { text: "hello from the other node".into(), format: None };
    bob.send_payload("SDG 22", &circle::circle_message(&id, &bob_email, None, &said).to_bytes()).await;
    let heard = until(&mut alice, "SDG 0 ").await;
    let m = msnp::routed::RoutedMessage::parse(heard.payload.as_deref().unwrap()).unwrap();
    assert_eq!(Said::of(&m), Some(said));
}

/// The directory's changes of one node, as another node hears them.
#[path = "cluster/seat_batches.rs"]
mod seat_batches;

/// Deleting a cluster's session directory, and refusing to while it runs.
#[path = "cluster/forget.rs"]
mod forget;

/// The bus stops answering for a while without closing its connections.
#[path = "cluster/stalled_bus.rs"]
mod stalled_bus;

/// A NATS server of a test's own, to stop, pause or watch.
#[path = "cluster/private_nats.rs"]
mod private_nats;
use private_nats::*;
