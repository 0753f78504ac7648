//! The directory's changes of one node, as another node hears them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures::StreamExt;
use server::bus_seal::{BusSeal, Stream};
use server::seat_bus::{self, SeatWrite};
use server::seats::{Seat, SeatChange, Seats};
use tokio::sync::{mpsc, oneshot};

use super::Forget;

const KEY: [u8; 32] = [7; 32];

fn seat(node: &str, session: u64, handle: &str) -> Seat {
    Seat { node: node.into(), session, handle: handle.into(), token: format!("{handle}-{session}") }
}

/// A fresh bucket on the test NATS, the subject its batches go on, and
/// what deletes the bucket when the test ends.
async fn bucket(test: &str) -> Option<(String, async_nats::Client, kv::Store, String, Forget)> {
    let url = backend::testing::nats(test).await?;
    let client = async_nats::connect(&url).await.unwrap();
    let name = format!("t{:08x}", super::rand_u32());
    let js = async_nats::jetstream::new(client.clone());
    let store = js
        .create_key_value(kv::Config { bucket: format!("{name}_sessions"), history: 1, ..Default::default() })
        .await
        .unwrap();
    let forget = Forget::new(&url, &name);
    Some((url, client, store, format!("{name}.seats"), forget))
}

/// A node's writer: its queue, and a way to wait until what is queued is told.
fn writer(client: &async_nats::Client, store: &kv::Store, subject: &str) -> mpsc::UnboundedSender<SeatWrite> {
    writer_with(client, store, subject, Arc::new(Seats::default()))
}

/// A node's writer that keeps the node's directory `seats`.
fn writer_with(
    client: &async_nats::Client,
    store: &kv::Store,
    subject: &str,
    seats: Arc<Seats>,
) -> mpsc::UnboundedSender<SeatWrite> {
    let (queue, writes) = mpsc::unbounded_channel();
    let seal = Arc::new(BusSeal::new(KEY));
    tokio::spawn(seat_bus::writer(client.clone(), store.clone(), writes, seats, seal, subject.to_string()));
    queue
}

async fn flushed(queue: &mpsc::UnboundedSender<SeatWrite>) {
    let (done, written) = oneshot::channel();
    queue.send(SeatWrite::Flush(done)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), written).await.unwrap().unwrap();
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sign-ins queued together cross the bus as one message, and one
/// user's sign-in and sign-out in it keep their order.
#[tokio::test]
async fn sign_ins_queued_together_are_told_in_one_message() {
    let Some((_, client, store, subject, _forget)) = bucket("cluster::seat_batch").await else { return };
    let mut heard = client.subscribe(subject.clone()).await.unwrap();
    client.flush().await.unwrap();
    let queue = writer(&client, &store, &subject);
    for i in 0..100 {
        let handle = format!("u{i}@example.com");
        queue.send(SeatWrite::Seat(handle.clone(), seat("ns1", i, &handle))).unwrap();
    }
    queue.send(SeatWrite::Unseat { key: "u7@example.com".into(), node: "ns1".into(), session: 7 }).unwrap();
    // Not this sign-in's seat: left as it is.
    queue.send(SeatWrite::Unseat { key: "u8@example.com".into(), node: "ns1".into(), session: 99 }).unwrap();
    flushed(&queue).await;

    let message = tokio::time::timeout(Duration::from_secs(10), heard.next()).await.unwrap().unwrap();
    let body = BusSeal::new(KEY).open(Stream::Seats, &subject, &message.payload).unwrap().to_vec();
    let changes: Vec<SeatChange> = serde_json::from_slice(&body).unwrap();
    assert_eq!(changes.len(), 101, "every write that changed something, in one message");
    let seats = Seats::default();
    for change in changes {
        seats.apply(change);
    }
    assert_eq!(seats.node_of("u7@example.com"), None, "the sign-out came after the sign-in");
    assert_eq!(seats.node_of("u8@example.com").as_deref(), Some("ns1"));
    assert_eq!(seats.seated_on("ns1").len(), 99);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), heard.next()).await.is_err(),
        "a second message for the same writes"
    );
}

/// A TCP relay to NATS that can be cut, as a node's own network would.
struct Relay {
    port: u16,
    open: Arc<AtomicBool>,
    pipes: Arc<parking_lot::Mutex<tokio::task::JoinSet<()>>>,
}

impl Relay {
    async fn to(nats: &str) -> Relay {
        let target = nats.trim_start_matches("nats://").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let pipes = Arc::new(parking_lot::Mutex::new(tokio::task::JoinSet::new()));
        let (o, p) = (open.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                p.lock().spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, open, pipes }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.pipes.lock().abort_all();
    }

    fn mend(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// A node cut off from the bus misses the batches told meanwhile; once
/// back it reads the bucket again and knows who moved, who came and
/// who left.
#[tokio::test]
async fn a_node_back_on_the_bus_reads_what_it_missed() {
    let Some((url, client, store, subject, _forget)) = bucket("cluster::seat_reconnect").await else { return };
    let queue = writer(&client, &store, &subject);
    queue.send(SeatWrite::Seat("bob".into(), seat("ns1", 1, "bob"))).unwrap();
    queue.send(SeatWrite::Seat("dave".into(), seat("ns1", 2, "dave"))).unwrap();
    flushed(&queue).await;

    // The node that listens reaches the bus through the relay.
    let relay = Relay::to(&url).await;
    let (connected, reconnections) = mpsc::unbounded_channel();
    let listener = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .event_callback(move |event| {
            let connected = connected.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    let _ = connected.send(());
                }
            }
        })
        .connect(format!("nats://127.0.0.1:{}", relay.port))
        .await
        .unwrap();
    let seats = Arc::new(Seats::default());
    let (seal, rejected) = (Arc::new(BusSeal::new(KEY)), Arc::new(AtomicU64::new(0)));
    let batches = listener.subscribe(subject.clone()).await.unwrap();
    server::cluster::round_trip(&listener).await.unwrap();
    tokio::spawn(seat_bus::listen(batches, seats.clone(), seal.clone(), rejected.clone()));
    let (loaded, ready) = oneshot::channel();
    let its_bucket = async_nats::jetstream::new(listener.clone()).get_key_value(store.name.clone()).await.unwrap();
    tokio::spawn(seat_bus::keep_whole(its_bucket, seats.clone(), seal, rejected.clone(), reconnections, loaded));
    ready.await.unwrap();
    assert_eq!(seats.node_of("bob").as_deref(), Some("ns1"), "read from the bucket at the start");

    // Heard live while connected.
    queue.send(SeatWrite::Seat("erin".into(), seat("ns2", 3, "erin"))).unwrap();
    flushed(&queue).await;
    eventually("a batch heard live", || seats.node_of("erin").is_some()).await;

    relay.cut();
    queue.send(SeatWrite::Seat("bob".into(), seat("ns2", 4, "bob"))).unwrap();
    queue.send(SeatWrite::Seat("carol".into(), seat("ns2", 5, "carol"))).unwrap();
    queue.send(SeatWrite::Unseat { key: "dave".into(), node: "ns1".into(), session: 2 }).unwrap();
    flushed(&queue).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seats.node_of("bob").as_deref(), Some("ns1"), "the node heard a batch while cut off");

    relay.mend();
    eventually("the node read the bucket again once back", || {
        seats.node_of("bob").as_deref() == Some("ns2")
            && seats.node_of("carol").as_deref() == Some("ns2")
            && seats.node_of("dave").is_none()
    })
    .await;
    assert_eq!(rejected.load(Ordering::SeqCst), 0);
}

/// Reads of the bucket's entries by anyone on `client`'s NATS, counted
/// from now: a key-value get is a request on one of these subjects.
async fn bucket_reads(client: &async_nats::Client) -> Arc<AtomicU64> {
    let reads = Arc::new(AtomicU64::new(0));
    for subject in ["$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>"] {
        let mut requests = client.subscribe(subject).await.unwrap();
        let reads = reads.clone();
        tokio::spawn(async move {
            while requests.next().await.is_some() {
                reads.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    server::cluster::round_trip(client).await.unwrap();
    reads
}

/// A sign-out is one conditional write at the revision the node heard for
/// the seat, with no read of the bucket first; a newer sign-in elsewhere
/// makes that write fail, and the bucket then decides: it stays.
#[tokio::test]
async fn a_sign_out_is_one_write_and_a_newer_sign_in_elsewhere_stays() {
    let Some((_, client, store, subject, _forget)) = bucket("cluster::seat_sign_out").await else { return };
    let seats = Arc::new(Seats::default());
    let queue = writer_with(&client, &store, &subject, seats.clone());
    let other_node = writer(&client, &store, &subject);
    queue.send(SeatWrite::Seat("bob".into(), seat("ns1", 1, "bob"))).unwrap();
    queue.send(SeatWrite::Seat("carol".into(), seat("ns1", 2, "carol"))).unwrap();
    flushed(&queue).await;
    // Carol signs in on ns2 since; ns1 has not heard it.
    other_node.send(SeatWrite::Seat("carol".into(), seat("ns2", 3, "carol"))).unwrap();
    flushed(&other_node).await;

    let reads = bucket_reads(&client).await;
    queue.send(SeatWrite::Unseat { key: "bob".into(), node: "ns1".into(), session: 1 }).unwrap();
    flushed(&queue).await;
    assert_eq!(reads.load(Ordering::SeqCst), 0, "bob's sign-out read the bucket");
    let bob = store.entry(hex::encode("bob")).await.unwrap().expect("bob's entry");
    let ended = BusSeal::new(KEY).open_state("seat.bob", &bob.value).unwrap().to_vec();
    assert!(ended.is_empty(), "bob's seat is ended: a signed empty value");

    queue.send(SeatWrite::Unseat { key: "carol".into(), node: "ns1".into(), session: 2 }).unwrap();
    flushed(&queue).await;
    let carol = store.entry(hex::encode("carol")).await.unwrap().expect("carol's entry");
    let body = BusSeal::new(KEY).open_state("seat.carol", &carol.value).unwrap().to_vec();
    let held: Seat = serde_json::from_slice(&body).unwrap();
    assert_eq!(held, seat("ns2", 3, "carol"), "the older sign-in's sign-out ended the newer one");
}
