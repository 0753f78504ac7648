//! The bus between nodes: NATS.
//!
//! - **Membership**: every node publishes a heartbeat on `mariposa.heartbeat`
//!   (its roles, public addresses, load, whether it is draining) every
//!   `heartbeat` and a last one when it leaves. A node not heard from for
//!   `node_timeout` is dead: its users are shown offline to local watchers.
//! - **Directory**: which node each signed-in user is on, in the JetStream
//!   key-value bucket `mariposa_sessions`, its changes told to every node
//!   in batches (`seat_bus`; a node that starts late reads the bucket first).
//! - **Messages**: one-way [`Envelope`]s on `mariposa.node.<id>`, questions
//!   ([`Request`]) on `mariposa.request.<id>` with NATS request-reply. One
//!   task publishes everything a node sends (the directory's batches and the
//!   heartbeats aside),
//!   so messages from one node to another arrive in order.
//!
//! Why NATS and not Redis: the cluster needs subject-addressed messages to
//! one node, request-reply with timeouts, and a watched directory that a
//! late node can read in full; NATS has all three built in (pub/sub,
//! request-reply, JetStream KV with history-then-updates watches), where
//! Redis would need pub/sub plus keyspace notifications plus a home-made
//! reply protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::kv;
use backend::Backend;
use backend::cluster::{Cluster, Envelope, NodeId, Pending, Request, Response};
use backend::presence::OnlineUser;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::bus_seal::{self, BusSeal, Stream, opened};
use crate::node_roles::Roles;
use crate::seat_bus::{self, SeatWrite};
use crate::seats::{ENDED_KEPT, Seat, Seats};
use crate::switchboard_spread::Spread;

mod forget;
mod settings;

pub use forget::{Forgotten, forget};
pub use settings::ClusterSettings;

/// How long after it was given up for silence a notification node still
/// takes new sign-ins when no node is heard at all.
const GIVEN_UP_TRIED: Duration = Duration::from_secs(60);

/// How far apart the nodes' clocks may be (NTP keeps them far closer):
/// a question older than the asker waits by more than this is not acted on.
const CLOCKS_AGREE_WITHIN: Duration = Duration::from_secs(5);

/// Requests from other nodes answered at once; past it, the next waits.
const MAX_ANSWERING: usize = 256;

/// A node as its heartbeats describe it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node: NodeId,
    pub roles: Roles,
    /// Where clients reach its notification server (`XFR NS`).
    pub notification_address: Option<String>,
    /// Where clients reach its switchboard (`XFR SB`, `RNG`).
    pub switchboard_address: Option<String>,
    /// Open client connections.
    pub load: u64,
    pub draining: bool,
    /// The last heartbeat of a node that leaves cleanly, or an obituary.
    pub leaving: bool,
    /// For an obituary, the node that declared this one dead.
    #[serde(default)]
    pub declared_by: Option<NodeId>,
    /// Bus frames this node refused since it started (unsigned, forged,
    /// stale or replayed): each is an event lost, so that one status page
    /// shows which node refuses what.
    #[serde(default)]
    pub rejected_frames: u64,
    /// Messages for this node that its NATS client dropped because a
    /// subscription's queue was full (a slow consumer): events lost too.
    #[serde(default)]
    pub dropped_messages: u64,
    /// Times this node's connection to the bus was lost (and made again).
    #[serde(default)]
    pub reconnections: u64,
    /// Other nodes this node gave up for silence: their users were shown
    /// offline here, rightly only if they were really gone.
    #[serde(default)]
    pub declared_silent: u64,
    /// The longest any heartbeat took to reach this node (from its sealing
    /// to its reading): how close the cluster came to giving a node up.
    #[serde(default)]
    pub slowest_heartbeat_ms: u64,
}

/// What went wrong on a node's bus since it started, for its heartbeats.
#[derive(Default)]
struct Trouble {
    dropped: AtomicU64,
    disconnections: AtomicU64,
    declared_silent: AtomicU64,
    slowest_heartbeat_ms: AtomicU64,
}

/// What the publishing task does, in order.
enum Outgoing {
    Publish(String, Bytes),
    /// Answered once everything queued before it is on the wire.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A node's membership of the cluster.
pub struct NatsCluster {
    settings: ClusterSettings,
    client: async_nats::Client,
    me: RwLock<NodeInfo>,
    /// Live nodes (this one included) with when they were last heard.
    nodes: RwLock<HashMap<NodeId, (NodeInfo, Instant)>>,
    /// Nodes given up for silence (here or by another node), with when:
    /// the dispatch node's last resort (see `pick_notification`).
    given_up: RwLock<HashMap<NodeId, (NodeInfo, Instant)>>,
    seats: Arc<Seats>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    seat_writes: mpsc::UnboundedSender<SeatWrite>,
    draining: AtomicBool,
    /// Open connections by role, shared with the listeners; their sum is
    /// the load.
    load: Arc<[AtomicU64; 3]>,
    /// Signs what this node sends, checks what it receives.
    seal: Arc<BusSeal>,
    /// Frames refused: unsigned, forged, stale or replayed.
    rejected: Arc<AtomicU64>,
    trouble: Arc<Trouble>,
    /// Sessions handed to each switchboard node since its heartbeats.
    spread: Spread,
}

/// A stable hash (FNV-1a), the same on every node, for rendezvous hashing.
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
    }
    h
}

impl NatsCluster {
    /// Connects, joins, and starts the background tasks. `me` describes this
    /// node; `load` counts its open connections by role.
    pub async fn join(
        settings: ClusterSettings,
        me: NodeInfo,
        load: Arc<[AtomicU64; 3]>,
        backend: Arc<Backend>,
    ) -> anyhow::Result<Arc<NatsCluster>> {
        // Told each time the connection to the bus is made (batches of the
        // directory sent meanwhile were lost to this node) and when the
        // client dropped messages for a full subscription (batches too).
        let (reread, batches_lost) = mpsc::unbounded_channel::<()>();
        let trouble = Arc::new(Trouble::default());
        let counted = trouble.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("msnd {}", settings.node_id))
            .request_timeout(Some(settings.request_timeout))
            // Back soon after the bus is: a quarter second more per failed
            // attempt, at most two seconds between attempts.
            .reconnect_delay_callback(|attempts| Duration::from_millis(250 * attempts.min(8) as u64))
            .event_callback(move |event| {
                let (reread, counted) = (reread.clone(), counted.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            let _ = reread.send(());
                            tracing::info!("cluster: bus {event}")
                        }
                        // (A reconnection is told `Connected` twice.)
                        async_nats::Event::Disconnected => {
                            counted.disconnections.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!("cluster: bus {event}")
                        }
                        async_nats::Event::SlowConsumer(_) => {
                            let _ = reread.send(());
                            // One event per message dropped: said at 1, 2, 4, ...
                            let dropped = counted.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                            if dropped.is_power_of_two() {
                                tracing::warn!(
                                    "cluster: {dropped} bus messages dropped so far, a subscription's queue full; \
                                     reading the directory again"
                                );
                            }
                        }
                        _ => tracing::info!("cluster: bus {event}"),
                    }
                }
            })
            .connect(&settings.nats_url)
            .await
            .with_context(|| format!("cannot reach NATS at {}", settings.nats_url))?;
        let js = async_nats::jetstream::new(client.clone());
        let bucket = settings.bucket();
        let sessions = match js.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config { bucket, history: 1, ..Default::default() })
                .await
                .context("cannot create the session directory in JetStream")?,
        };
        let (outgoing, queue) = mpsc::unbounded_channel();
        let (seat_writes, seat_queue) = mpsc::unbounded_channel();
        let seal = Arc::new(BusSeal::new(backend.bus_key()));
        let rejected = Arc::new(AtomicU64::new(0));
        let cluster = Arc::new(NatsCluster {
            settings,
            client: client.clone(),
            me: RwLock::new(me),
            nodes: RwLock::new(HashMap::new()),
            given_up: RwLock::new(HashMap::new()),
            seats: Arc::new(Seats::default()),
            outgoing,
            seat_writes,
            draining: AtomicBool::new(false),
            load,
            seal: seal.clone(),
            rejected: rejected.clone(),
            trouble,
            spread: Spread::default(),
        });

        // Subscribe before announcing ourselves, so nothing sent to us is lost.
        let settings = &cluster.settings;
        let envelopes = client.subscribe(settings.node_subject(&settings.node_id)).await?;
        let mut requests = client.subscribe(settings.request_subject(&settings.node_id)).await?;
        let mut heartbeats = client.subscribe(settings.heartbeats()).await?;
        let broadcasts = client.subscribe(settings.broadcast_subject()).await?;
        let seat_batches = client.subscribe(settings.seats_subject()).await?;
        let (loaded, directory_ready) = tokio::sync::oneshot::channel::<()>();

        tokio::spawn(publisher(client.clone(), queue));
        tokio::spawn(seat_bus::writer(
            client.clone(),
            sessions.clone(),
            seat_queue,
            cluster.seats.clone(),
            seal.clone(),
            settings.seats_subject(),
        ));
        tokio::spawn(seat_bus::listen(seat_batches, cluster.seats.clone(), seal.clone(), rejected.clone()));
        for (mut subscription, stream) in [(envelopes, Stream::Envelopes), (broadcasts, Stream::Broadcasts)] {
            let (b, seal, rejected) = (backend.clone(), seal.clone(), rejected.clone());
            tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let Some(body) = opened(&seal, &rejected, stream, message.subject.as_str(), &message.payload)
                    else {
                        continue;
                    };
                    match serde_json::from_slice::<Envelope>(body) {
                        Ok(envelope) => b.on_envelope(envelope).await,
                        Err(e) => tracing::warn!("cluster: unreadable envelope: {e}"),
                    }
                }
            });
        }
        let (b, c, s, r) = (backend.clone(), client.clone(), seal.clone(), rejected.clone());
        let asker_waits = settings.request_timeout;
        tokio::spawn(async move {
            // Some answers wait (a word relayed to a slow reader): each is
            // answered in a task of its own, so many at most.
            let answering = Arc::new(tokio::sync::Semaphore::new(MAX_ANSWERING));
            while let Some(message) = requests.next().await {
                let Some(reply) = message.reply else { continue };
                let Some(body) = opened(&s, &r, Stream::Requests, message.subject.as_str(), &message.payload) else {
                    continue;
                };
                let request = match serde_json::from_slice::<Request>(body) {
                    Ok(request) => request,
                    Err(e) => {
                        tracing::warn!("cluster: unreadable request: {e}");
                        continue;
                    }
                };
                let Ok(permit) = answering.clone().acquire_owned().await else { return };
                // The asker has given up on a question older than it waits
                // (held up while the bus stalled): acting on it now would
                // use up what it asked for (a ticket), or relay a message
                // the sender was told had failed. By the sender's clock, so
                // with room for clocks that disagree a little.
                if bus_seal::age(&message.payload).is_some_and(|age| age > asker_waits + CLOCKS_AGREE_WITHIN) {
                    tracing::debug!("cluster: a question came too late to answer");
                    continue;
                }
                let (b, c, s) = (b.clone(), c.clone(), s.clone());
                tokio::spawn(async move {
                    let answer = b.on_request(request).await;
                    let payload = serde_json::to_vec(&answer).unwrap_or_default();
                    let frame = s.seal(Stream::Replies, reply.as_str(), &payload);
                    let _ = c.publish(reply, frame.into()).await;
                    drop(permit);
                });
            }
        });
        let weak = Arc::downgrade(&cluster);
        let (b, s, r) = (backend.clone(), seal.clone(), rejected.clone());
        tokio::spawn(async move {
            while let Some(message) = heartbeats.next().await {
                let Some(cluster) = weak.upgrade() else { return };
                let Some(body) = opened(&s, &r, Stream::Heartbeats, message.subject.as_str(), &message.payload) else {
                    continue;
                };
                if let Some(age) = bus_seal::age(&message.payload) {
                    cluster.trouble.slowest_heartbeat_ms.fetch_max(age.as_millis() as u64, Ordering::Relaxed);
                }
                if let Ok(info) = serde_json::from_slice::<NodeInfo>(body) {
                    cluster.heard(info, &b);
                }
            }
        });
        // The bucket is read once the batches are heard (a change may come
        // both ways; its revision orders it).
        tokio::spawn(seat_bus::keep_whole(
            sessions,
            cluster.seats.clone(),
            seal.clone(),
            rejected.clone(),
            batches_lost,
            loaded,
        ));
        let weak = Arc::downgrade(&cluster);
        let interval = cluster.settings.heartbeat;
        let b = backend.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = Instant::now();
            let mut last_forgotten = Instant::now();
            loop {
                ticks.tick().await;
                let Some(cluster) = weak.upgrade() else { return };
                cluster.beat(false);
                if last_forgotten.elapsed() > ENDED_KEPT {
                    cluster.seats.forget_ended(ENDED_KEPT);
                    last_forgotten = Instant::now();
                }
                // A node that was not running itself (stopped, starved) has not
                // been listening: the silence is its own, so it judges nobody
                // until it has read what the others said meanwhile.
                if std::mem::replace(&mut last, Instant::now()).elapsed() <= interval * 2 {
                    cluster.sweep(&b);
                }
            }
        });
        // Serve only once the node knows the cluster: the directory as it
        // stands, and every live node (each beats once per interval).
        let wait = cluster.settings.request_timeout;
        if tokio::time::timeout(wait, directory_ready).await.is_err() {
            tracing::warn!("cluster: the session directory did not load within {wait:?}; going on");
        }
        cluster.beat(false);
        tokio::time::sleep(cluster.settings.heartbeat).await;
        Ok(cluster)
    }

    /// Publishes this node's heartbeat.
    fn beat(&self, leaving: bool) {
        let info = {
            let mut me = self.me.write();
            me.load = self.load.iter().map(|n| n.load(Ordering::Relaxed)).sum();
            me.draining = self.draining.load(Ordering::Relaxed);
            me.rejected_frames = self.rejected.load(Ordering::Relaxed);
            me.dropped_messages = self.trouble.dropped.load(Ordering::Relaxed);
            me.reconnections = self.trouble.disconnections.load(Ordering::Relaxed);
            me.declared_silent = self.trouble.declared_silent.load(Ordering::Relaxed);
            me.slowest_heartbeat_ms = self.trouble.slowest_heartbeat_ms.load(Ordering::Relaxed);
            me.leaving = leaving;
            me.clone()
        };
        let payload = serde_json::to_vec(&info).unwrap_or_default();
        if leaving {
            // The goodbye comes after everything this node sent.
            self.publish(Stream::Heartbeats, self.settings.heartbeats(), &payload);
        } else {
            // A heartbeat says the node runs, not how much it has queued:
            // behind a burst of envelopes in the publishing task, the
            // heartbeats of busy nodes came late and others gave them up.
            let subject = self.settings.heartbeats();
            let frame = self.seal.seal(Stream::Heartbeats, &subject, &payload);
            let client = self.client.clone();
            tokio::spawn(async move {
                if let Err(e) = client.publish(subject, frame.into()).await {
                    tracing::warn!("cluster: cannot send a heartbeat: {e}");
                }
            });
        }
    }

    /// Queues a signed frame for `subject`.
    fn publish(&self, stream: Stream, subject: String, body: &[u8]) {
        let frame = self.seal.seal(stream, &subject, body);
        let _ = self.outgoing.send(Outgoing::Publish(subject, frame.into()));
    }

    /// Bus frames refused since the start, for the status page.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// A heartbeat arrived. A node heard again after it was given up (the
    /// bus was away longer than the node timeout) still holds its users:
    /// local watchers are shown them again.
    fn heard(&self, info: NodeInfo, backend: &Arc<Backend>) {
        if info.leaving {
            // An obituary that took long to arrive (sent while the bus was
            // away) must not bury a node heard from since.
            let heard_lately = |nodes: &HashMap<NodeId, (NodeInfo, Instant)>| {
                nodes.get(&info.node).is_some_and(|(_, seen)| seen.elapsed() < self.settings.node_timeout)
            };
            if info.declared_by.is_some() && heard_lately(&self.nodes.read()) {
                return;
            }
            let gone = self.nodes.write().remove(&info.node);
            if info.declared_by.is_none() {
                self.given_up.write().remove(&info.node);
            } else if let Some((last, _)) = &gone {
                self.given_up.write().insert(info.node.clone(), (last.clone(), Instant::now()));
            }
            let gone = gone.is_some();
            self.spread.forget(&info.node);
            if gone && info.node != self.settings.node_id {
                self.forget_node(&info.node, backend);
            }
        } else {
            let node = info.node.clone();
            self.given_up.write().remove(&node);
            let new = self.nodes.write().insert(node.clone(), (info, Instant::now())).is_none();
            self.spread.heard(&node);
            if new && node != self.settings.node_id {
                let back = self.seated_on(&node).into_iter().map(|(key, _)| key).collect::<Vec<_>>();
                let backend = backend.clone();
                tokio::spawn(async move { backend.node_up(&back).await });
            }
        }
    }

    /// The users the directory places on `node`: (handle key, handle).
    fn seated_on(&self, node: &str) -> Vec<(String, String)> {
        self.seats.seated_on(node)
    }

    /// Declares nodes dead that have been silent too long: acts on it here
    /// at once (the bus itself may be what is gone) and tells every other
    /// node in one message, each acting on it as it arrives (as for a node
    /// that leaves). So the dispatch node stops referring users to a dead
    /// node as their watchers see them go offline, rather than at its own
    /// next sweep.
    fn sweep(&self, backend: &Backend) {
        let timeout = self.settings.node_timeout;
        // Nodes given up long ago (their ids are new at each start) are
        // no last resort any more.
        self.given_up.write().retain(|_, (_, when)| when.elapsed() < GIVEN_UP_TRIED);
        let mut dead = Vec::new();
        self.nodes.write().retain(|id, (info, seen)| {
            let silent = *id != self.settings.node_id && seen.elapsed() > timeout;
            if silent {
                dead.push(NodeInfo { leaving: true, declared_by: Some(self.settings.node_id.clone()), ..info.clone() });
                self.given_up.write().insert(id.clone(), (info.clone(), Instant::now()));
            }
            !silent
        });
        for obituary in dead {
            self.trouble.declared_silent.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %obituary.node, "cluster: node silent for {timeout:?}; its users are offline");
            self.spread.forget(&obituary.node);
            self.forget_node(&obituary.node, backend);
            if let Ok(payload) = serde_json::to_vec(&obituary) {
                self.publish(Stream::Heartbeats, self.settings.heartbeats(), &payload);
            }
        }
    }

    /// A node is gone: its users are offline to everyone here. Their seats
    /// stay in the directory (nobody finds them there while the node is
    /// not alive), so that if the node is heard again they are reachable
    /// again at once; a user who signs in elsewhere takes the seat over.
    fn forget_node(&self, node: &str, backend: &Backend) {
        backend.node_down(&self.seated_on(node));
    }

    fn alive(&self, node: &str) -> bool {
        self.nodes.read().contains_key(node)
    }

    /// The notification node for a handle: rendezvous hashing over the live
    /// notification nodes that are not draining, so that each user keeps
    /// the same node while the set of nodes stays the same, and only the
    /// users of a node that leaves move. `None` when there is none.
    ///
    /// A new sign-in (`except` none) with no live notification node goes
    /// to one given up for silence in the last [`GIVEN_UP_TRIED`]: when
    /// every node fell silent it was more likely the bus than all of them,
    /// and a node signs users in without the bus (their directory entries
    /// are written once it answers). A node that did die refuses the
    /// connection, as the 601 refused the sign-in. Seen: a 7 s pause of
    /// NATS turned 474 of 6,000 sign-ins away.
    pub fn pick_notification(&self, handle_key: &str, except: Option<&str>) -> Option<String> {
        let best = |nodes: &mut dyn Iterator<Item = &NodeInfo>| {
            nodes
                .filter(|i| i.roles.notification && !i.draining && Some(i.node.as_str()) != except)
                .filter_map(|i| i.notification_address.as_ref().map(|a| (stable_hash(&[&i.node, handle_key]), a)))
                .max_by_key(|(score, _)| *score)
                .map(|(_, a)| a.clone())
        };
        best(&mut self.nodes.read().values().map(|(info, _)| info)).or_else(|| {
            let given_up = self.given_up.read();
            let lately = given_up.values().filter(|(_, when)| when.elapsed() < GIVEN_UP_TRIED);
            except.is_none().then(|| best(&mut lately.map(|(info, _)| info))).flatten()
        })
    }

    /// Marks this node as draining (dispatch stops sending users here) and
    /// tells the others at once.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.beat(false);
    }

    pub fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    /// The live nodes, for the status page and tests.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = self.nodes.read().values().map(|(i, _)| i.clone()).collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        nodes
    }

    /// Says goodbye, so the others need not wait for the timeout.
    pub async fn leave(&self) {
        // The sign-outs of the drain written first, then the goodbye sent
        // (and all before it).
        let (done, written) = tokio::sync::oneshot::channel();
        if self.seat_writes.send(SeatWrite::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(self.settings.request_timeout, written).await;
        }
        self.beat(true);
        let (done, sent) = tokio::sync::oneshot::channel();
        if self.outgoing.send(Outgoing::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(self.settings.request_timeout, sent).await;
        }
    }
}

/// Returns once the NATS server has handled everything `client` sent
/// before (its subscriptions, its messages): the server handles one
/// connection's messages in order, so a message the client sends itself
/// comes back only after them. `flush` only writes them to the socket.
pub async fn round_trip(client: &async_nats::Client) -> Result<(), async_nats::Error> {
    let probe = client.new_inbox();
    let mut back = client.subscribe(probe.clone()).await?;
    client.publish(probe, Bytes::new()).await?;
    match tokio::time::timeout(Duration::from_secs(5), back.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the connection to NATS closed".into()),
        Err(_) => Err("NATS did not answer within 5 s".into()),
    }
}

/// Publishes everything a node sends, one at a time, in order.
async fn publisher(client: async_nats::Client, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(item) = queue.recv().await {
        match item {
            Outgoing::Publish(subject, payload) => {
                if let Err(e) = client.publish(subject, payload).await {
                    tracing::warn!("cluster: publish failed: {e}");
                }
            }
            Outgoing::Flush(done) => {
                let _ = client.flush().await;
                let _ = done.send(());
            }
        }
    }
}

impl Cluster for NatsCluster {
    fn node_id(&self) -> &str {
        &self.settings.node_id
    }

    fn locate(&self, key: &str) -> Option<NodeId> {
        let node = self.seats.node_of(key)?;
        (node != self.settings.node_id && self.alive(&node)).then_some(node)
    }

    fn send(&self, node: &str, envelope: Envelope) {
        match serde_json::to_vec(&envelope) {
            Ok(payload) => self.publish(Stream::Envelopes, self.settings.node_subject(node), &payload),
            Err(e) => tracing::error!("cluster: cannot encode an envelope: {e}"),
        }
    }

    fn broadcast(&self, envelope: Envelope) {
        if let Ok(payload) = serde_json::to_vec(&envelope) {
            self.publish(Stream::Broadcasts, self.settings.broadcast_subject(), &payload);
        }
    }

    fn request(&self, node: &str, request: Request) -> Pending<Option<Response>> {
        let (client, subject, timeout) =
            (self.client.clone(), self.settings.request_subject(node), self.settings.request_timeout);
        let (seal, rejected) = (self.seal.clone(), self.rejected.clone());
        Box::pin(async move {
            let frame = seal.seal(Stream::Requests, &subject, &serde_json::to_vec(&request).ok()?);
            let answer = tokio::time::timeout(timeout, client.request(subject, frame.into())).await.ok()?.ok()?;
            let body = opened(&seal, &rejected, Stream::Replies, answer.subject.as_str(), &answer.payload)?;
            serde_json::from_slice(body).ok()
        })
    }

    fn signed_in(&self, user: &OnlineUser) {
        let seat = Seat {
            node: self.settings.node_id.clone(),
            session: user.directory_session(),
            handle: user.handle.clone(),
            token: user.web_token.to_string(),
        };
        // Seen here at once; the others once it is written.
        self.seats.seat_here(&user.key, seat.clone());
        let _ = self.seat_writes.send(SeatWrite::Seat(user.key.clone(), seat));
    }

    fn signed_out(&self, user: &OnlineUser) {
        let _ = self.seat_writes.send(SeatWrite::Unseat {
            key: user.key.clone(),
            node: self.settings.node_id.clone(),
            session: user.directory_session(),
        });
    }

    fn peers(&self) -> Vec<NodeId> {
        self.nodes.read().keys().filter(|n| **n != self.settings.node_id).cloned().collect()
    }

    fn peers_lost_lately(&self) -> bool {
        self.given_up
            .read()
            .values()
            .any(|(info, when)| info.node != self.settings.node_id && when.elapsed() < GIVEN_UP_TRIED)
    }

    fn user_of_token(&self, token: &str) -> Option<String> {
        let (key, node) = self.seats.holder_of_token(token)?;
        self.alive(&node).then_some(key)
    }

    fn switchboard_address(&self) -> String {
        self.me.read().switchboard_address.clone().unwrap_or_default()
    }

    fn pick_switchboard(&self) -> Option<(NodeId, String)> {
        if self.me.read().roles.switchboard {
            return None;
        }
        let nodes = self.nodes.read();
        let candidates = nodes
            .values()
            .map(|(info, _)| info)
            .filter(|i| i.roles.switchboard && !i.draining)
            .filter_map(|i| i.switchboard_address.as_deref().map(|a| (&i.node, i.load, a)));
        self.spread.pick(candidates)
    }
}
