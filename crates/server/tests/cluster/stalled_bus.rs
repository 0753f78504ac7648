//! NATS stops answering for longer than JetStream waits for an
//! acknowledgement (5 s), its connections left open: a starved, swapped
//! out or stopped server.

use super::*;

/// How long JetStream waits for a write's acknowledgement (async-nats's
/// default) before the writer hears it failed.
const JETSTREAM_ACK_WAIT: Duration = Duration::from_secs(5);

/// Someone signs in while the bus does not answer: the write of their seat
/// in the directory times out. It is written again once the bus answers,
/// so users on other nodes reach them. (It used to be given up: nobody on
/// another node could reach them until they signed in again.)
#[tokio::test]
async fn a_sign_in_the_directory_could_not_record_is_recorded_once_the_bus_answers() {
    let Some((nats, c)) = cluster_on_a_bus_of_its_own("stalled_write", NODE_TIMEOUT_MS).await else { return };
    let ((mut a, a_name, _), (_b, b_name, b_ns)) = a_watching_b_across_nodes(&c).await;

    nats.pause();
    // Carol (u11) signs in on B's node and puts A on her forward list (the lists
    // are in the store, not on the bus).
    let mut carol = direct(&b_ns, "u11").await;
    carol.send("CHG 5 NLN").await;
    carol.expect("CHG 5 NLN").await;
    carol.send(&format!("ADD 6 FL {a_name}@example.com {a_name}")).await;
    until(&mut carol, "ADD 6 FL ").await;
    // The stall itself: longer than JetStream waits for the write's
    // acknowledgement. Nothing to wait on: the node says nothing outside.
    tokio::time::sleep(JETSTREAM_ACK_WAIT + Duration::from_millis(1_500)).await;
    nats.resume();

    // The nodes hear each other again: A sees B back.
    until(&mut a, &format!("NLN NLN {b_name}@example.com")).await;
    // A's changes reach Carol once A's node knows where she is.
    let deadline = Instant::now() + Duration::from_secs(10);
    for (trid, state) in (10..).zip(["BSY", "AWY"].into_iter().cycle()) {
        a.send(&format!("CHG {trid} {state}")).await;
        until(&mut a, &format!("CHG {trid} {state}")).await;
        let heard = loop {
            match carol.try_recv(Duration::from_millis(500)).await {
                Some(line) if line.text.starts_with(&format!("NLN {state} {a_name}@example.com")) => break true,
                Some(_) => {}
                None => break false,
            }
        };
        if heard {
            break;
        }
        assert!(Instant::now() < deadline, "Carol, signed in while the bus was away, never heard of A's changes");
    }

    // What the nodes went through shows on the status page of any node,
    // once their next heartbeats tell it: heartbeats held up for as long
    // as the pause, nodes given up for it, and no connection lost.
    let status = until_a_node_reports(&c.dispatch, "slowest_heartbeat_ms", 5_000).await;
    let most =
        |field: &str| status["cluster"]["nodes"].as_array().unwrap().iter().filter_map(|n| n[field].as_u64()).max();
    assert!(most("declared_silent") >= Some(1), "{status}");
    assert_eq!(most("reconnections"), Some(0), "{status}");
}

/// Every node falls silent at once to the dispatch node when it is the bus
/// that stalls. Sign-ins go on to the notification nodes it gave up (a
/// node signs users in without the bus) rather than being turned away
/// with 601.
#[tokio::test]
async fn sign_ins_go_on_while_the_bus_stalls() {
    let Some((nats, c)) = cluster_on_a_bus_of_its_own("stalled_sign_ins", NODE_TIMEOUT_MS).await else { return };
    nats.pause();
    until_the_dispatch_node_hears(&c, &["ds"]).await;
    let (mut late, ns) = sign_in(&c, "u10").await;
    assert!(c.notification.iter().any(|n| n.ns.to_string() == ns), "referred to {ns}");
    late.send("CHG 5 NLN").await;
    late.expect("CHG 5 NLN").await;
    nats.resume();
}

/// A Passport ticket from the dispatch node's login service is redeemed
/// by asking, over the bus, the node that issued it. While the bus stalls
/// nobody can: the sign-in is refused with 601 (server unavailable),
/// which clients try again, not 911, which tells a person their password
/// is wrong (bitlbee 3.2.2 said "Authentication failed" during a NATS
/// pause). Once the bus answers, a client's next try signs in (with a new
/// ticket, as clients fetch one for each try: the first may have been
/// used up by a question that reached its node as the bus came back).
#[tokio::test]
async fn a_ticket_nobody_can_vouch_for_while_the_bus_stalls_is_unavailable_not_wrong() {
    let Some((nats, c)) = cluster_on_a_bus_of_its_own("stalled_ticket", NODE_TIMEOUT_MS).await else { return };
    let ticket = passport_ticket(&c.dispatch, "u4@example.com", "pw-u4", "lc=1033,id=507").await.unwrap();
    let ns = c.notification[0].ns;
    nats.pause();
    // The notification nodes give the others up as the dispatch node does
    // (the same timeout); before, the question times out, which is 601 too.
    until_the_dispatch_node_hears(&c, &["ds"]).await;
    let refused = present_ticket(ns, "u4@example.com", &ticket).await;
    nats.resume();
    assert!(refused.starts_with("601 3"), "{refused}");
    until_the_dispatch_node_hears(&c, &["ds", "ns1", "ns2", "sb1", "sb2"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ticket = passport_ticket(&c.dispatch, "u4@example.com", "pw-u4", "lc=1033,id=507").await.unwrap();
        let answer = present_ticket(ns, "u4@example.com", &ticket).await;
        if answer.starts_with("USR 3 OK u4@example.com") {
            break;
        }
        assert!(answer.starts_with("601 3"), "{answer}");
        assert!(Instant::now() < deadline, "the ticket never signed in: {answer}");
    }
}
