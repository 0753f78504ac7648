//! `msn-load`: simulated users against a running `msnd`, and what they saw.
//!
//! A run has phases, each measured on its own:
//! 1. **lists**: if the first user's lists are empty, every user signs in
//!    once and adds their contacts (forward and allow list) from the social
//!    graph; the rate of durably acknowledged list changes is reported.
//! 2. **logins**: every user signs in at the target rate and stays online.
//! 3. **presence**: users change state at the target rate; every watcher's
//!    connection notes when the `NLN` arrives. A change's fan-out latency is
//!    the time until its last watcher heard it.
//! 4. **switchboard**: pairs of users open sessions and send 150-byte
//!    messages at the target rate; the receiver notes each one's latency.
//! 5. **held**: every connection pings; the count that answer `QNG`.
//!
//! Success means nothing was refused, dropped or lost: a run where the
//! server refuses logins or drops messages reports failure.
//!
//! Over 700 lines on purpose: the phases share one run's state (`Shared`, the
//! online users, the samples) and are read in the order they run.

pub mod accounts;
pub mod graph;
pub mod launch;
pub mod link;
pub mod process;
pub mod reference;
pub mod stats;
pub mod workers;
pub mod xmpp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use msnp::request::{NsRequest, SbRequest};
use msnp::{AckMode, Dialect, ErrorCode, ListKind, OnlineState, Reply, TrId};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};

pub use accounts::Accounts;
use link::{Link, Target};
use process::Usage;
use stats::{Samples, Summary};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub users: usize,
    /// Who the users are (numbered, or listed in a file).
    pub accounts: Accounts,
    /// Contacts per user, and the fraction of them that are mutual.
    pub contacts: usize,
    pub mutual: f64,
    /// Logins started per second, and at most this many in flight.
    pub login_rate: f64,
    pub login_concurrency: usize,
    /// Sustained logins: for this long, users sign in and straight out
    /// again at `login_rate` (zero: none).
    pub churn_duration: Duration,
    /// Logins of other accounts that go on while presence and messages are
    /// measured, to see whether they slow the users already online.
    pub background: Option<BackgroundLogins>,
    /// State changes per second, for this long.
    pub presence_rate: f64,
    pub presence_duration: Duration,
    /// Two-party switchboard sessions, messages per second across them all,
    /// for this long, each message payload this many bytes.
    pub sessions: usize,
    pub message_rate: f64,
    pub message_duration: Duration,
    pub message_size: usize,
    /// The server's process, for RSS and CPU (when on this machine).
    pub server_pid: Option<u32>,
    /// Whether the social graph's lists are made, when the data dir says
    /// (`None`: the first user's forward list tells).
    pub lists_made: Option<bool>,
}

/// Background logins in flight at once.
const BACKGROUND_CONCURRENCY: usize = 16;

/// Accounts signing in and out in the background of the presence and
/// switchboard phases.
#[derive(Debug, Clone)]
pub struct BackgroundLogins {
    pub dialect: Dialect,
    /// Accounts `PREFIX0@example.com`.. (not the measured users, who would
    /// be told `OUT OTH`).
    pub prefix: String,
    pub password: String,
    pub users: usize,
    pub rate: f64,
}

/// What a run saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub users: usize,
    /// msn-load processes that drove the users (one unless `--workers`).
    pub workers: usize,
    pub dialect: String,
    pub lists: Option<ListsReport>,
    /// Sustained logins (sign in, then out), when asked for.
    pub churn: Option<LoginsReport>,
    /// Logins in the background of presence and messages, when asked for.
    pub background_logins: Option<LoginsReport>,
    pub logins: LoginsReport,
    pub presence: PresenceReport,
    pub switchboard: SwitchboardReport,
    pub held: HeldReport,
    pub server: Option<ServerReport>,
    /// A cluster's nodes, each measured on its own (`--cluster`).
    pub nodes: Vec<workers::NodeReport>,
    /// The shared store and the bus of a cluster, as processes on this machine.
    pub services: Vec<workers::ServiceReport>,
    /// What went wrong between a cluster's nodes.
    pub bus: Option<workers::BusTrouble>,
    /// This machine's time for the fixed reference work
    /// ([`reference::milliseconds`]), taken before the run.
    pub machine_reference_ms: f64,
    /// Everything that went wrong (the first few of each kind).
    pub problems: Vec<String>,
    pub success: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ListsReport {
    pub changes: u64,
    pub per_second: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LoginsReport {
    pub attempted: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub per_second: f64,
    pub latency: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PresenceReport {
    pub changes: usize,
    /// Changes every watcher heard.
    pub complete: usize,
    pub notifications: usize,
    /// Change to its last watcher.
    pub fanout: Summary,
    /// Change to each watcher.
    pub delivery: Summary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SwitchboardReport {
    pub sessions: usize,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub per_second: f64,
    pub latency: Summary,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HeldReport {
    pub connections: usize,
    pub dropped: u64,
    pub answered_ping: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerReport {
    pub rss_before_bytes: u64,
    pub rss_logged_in_bytes: u64,
    /// The anonymous part of the two above: what the server allocated,
    /// without its executable's resident pages.
    pub anon_before_bytes: u64,
    pub anon_logged_in_bytes: u64,
    /// The growth over all logins, divided by the users.
    pub rss_per_user_bytes: u64,
    /// The growth over the second half of the logins, divided by its users:
    /// the cost of one more user, without fixed costs.
    pub rss_per_added_user_bytes: u64,
    pub rss_max_bytes: u64,
    /// With every user still online at the end of the run (logins long
    /// over), and that growth divided by the users: what a server of this
    /// size carries when it is quiet.
    pub rss_end_bytes: u64,
    pub rss_per_user_at_end_bytes: u64,
    /// Server CPU per sustained login (sign in and out), in milliseconds.
    pub cpu_ms_per_churn_login: f64,
    /// The same less the password-hashing threads' CPU: what the rest of
    /// a Passport login costs.
    pub cpu_ms_per_churn_login_besides_hashing: f64,
    pub cpu_seconds_logins: f64,
    pub cpu_seconds_presence: f64,
    pub cpu_seconds_switchboard: f64,
    pub cpu_seconds_total: f64,
}

/// A change in flight: who, to what, when, and who has heard it.
struct Change {
    state: OnlineState,
    at: Instant,
    expected: usize,
    heard: usize,
    slowest: Duration,
}

/// What every simulated user's reader reports to.
struct Shared {
    base: Instant,
    target: Target,
    changes: Mutex<HashMap<String, Change>>,
    fanout: Mutex<Samples>,
    delivery: Mutex<Samples>,
    sb_latency: Mutex<Samples>,
    pongs: AtomicU64,
    dropped: AtomicU64,
    ending: AtomicBool,
    /// Woken on every change heard in full, pong and message received.
    progress: Notify,
    problems: Mutex<Vec<String>>,
    /// While a worker of several processes measures presence, every `NLN`
    /// heard, for the coordinator to match with changes made elsewhere.
    heard_log: Mutex<Option<Vec<workers::Heard>>>,
}

impl Shared {
    fn new(target: Target) -> Arc<Shared> {
        Arc::new(Shared {
            base: Instant::now(),
            target,
            changes: Mutex::default(),
            fanout: Mutex::default(),
            delivery: Mutex::default(),
            sb_latency: Mutex::default(),
            pongs: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            ending: AtomicBool::new(false),
            progress: Notify::new(),
            problems: Mutex::default(),
            heard_log: Mutex::default(),
        })
    }

    fn problem(&self, p: String) {
        let mut ps = self.problems.lock().unwrap();
        if ps.len() < 20 {
            ps.push(p);
        }
    }

    /// Waits until `done` holds, checking after every bit of progress;
    /// gives up after `limit`.
    async fn settle(&self, limit: Duration, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before the check, so progress in between is not missed.
            let progressed = self.progress.notified();
            if done() || tokio::time::timeout_at(deadline, progressed).await.is_err() {
                return;
            }
        }
    }

    fn heard(&self, handle: &str, state: OnlineState) {
        let now = Instant::now();
        if let Some(log) = self.heard_log.lock().unwrap().as_mut() {
            log.push(workers::Heard { handle: handle.to_string(), state, at_us: workers::wall_us() });
        }
        let mut changes = self.changes.lock().unwrap();
        let Some(c) = changes.get_mut(handle) else { return };
        if c.state != state {
            return;
        }
        let took = now - c.at;
        c.heard += 1;
        c.slowest = c.slowest.max(took);
        self.delivery.lock().unwrap().push(took);
        if c.heard == c.expected {
            let c = changes.remove(handle).expect("present");
            self.fanout.lock().unwrap().push(c.slowest);
            self.progress.notify_waiters();
        }
    }
}

/// A signed-in user: the writer's queue and replies awaited by TrID.
struct Online {
    handle: String,
    dialect: Dialect,
    out: mpsc::UnboundedSender<Vec<u8>>,
    trid: AtomicU32,
    waiting: Mutex<HashMap<u32, oneshot::Sender<Reply>>>,
}

impl Online {
    fn send(&self, request: &NsRequest) {
        let _ = self.out.send(request.to_frame(self.dialect).to_bytes());
    }

    fn next_trid(&self) -> TrId {
        self.trid.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request and waits for its reply.
    async fn request(&self, make: impl FnOnce(TrId) -> NsRequest, wait: Duration) -> anyhow::Result<Reply> {
        let trid = self.next_trid();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(trid, tx);
        let request = make(trid);
        self.send(&request);
        let reply = tokio::time::timeout(wait, rx).await.map_err(|_| anyhow!("no reply to {request:?}"))??;
        if let Reply::Error { code, .. } = reply {
            return Err(link::Refused(code).into());
        }
        Ok(reply)
    }
}

/// Runs the phases and reports.
pub async fn run(cfg: &Config) -> anyhow::Result<Report> {
    let handles = cfg.accounts.handles(cfg.users);
    let contacts = graph::contacts(cfg.users, cfg.contacts, cfg.mutual);
    let watchers = graph::watchers(&contacts);
    let shared = Shared::new(cfg.target.clone());
    let machine_reference_ms = reference::milliseconds();
    let mut report = Report {
        users: cfg.users,
        workers: 1,
        dialect: cfg.target.dialect.to_string(),
        machine_reference_ms,
        ..Report::default()
    };
    let (mut churn_cpu_ms, mut churn_cpu_ms_besides_hashing) = (0.0, 0.0);
    let sampler = cfg.server_pid.map(Sampler::start);
    let before = cfg.server_pid.and_then(process::usage);

    report.lists = set_up_lists(cfg, &handles, &contacts, &shared).await?;

    if !cfg.churn_duration.is_zero() {
        let before = cfg.server_pid.and_then(process::usage);
        let hashing_before = cfg.server_pid.map(process::hashing_cpu);
        let churn = sustained_logins(cfg, &handles, &shared).await;
        let after = cfg.server_pid.and_then(process::usage);
        let hashing_after = cfg.server_pid.map(process::hashing_cpu);
        if let (Some(b), Some(a), Some(hb), Some(ha)) = (before, after, hashing_before, hashing_after) {
            let logins = churn.succeeded.max(1) as f64;
            churn_cpu_ms = (a.cpu_seconds - b.cpu_seconds) * 1000.0 / logins;
            churn_cpu_ms_besides_hashing = (a.cpu_seconds - b.cpu_seconds - (ha - hb)) * 1000.0 / logins;
        }
        report.churn = Some(churn);
    }

    // Logins, at the target rate, in two halves: the server's memory is read
    // between them, so that the second half's growth gives the cost of one
    // more user without the fixed costs (caches filling, runtime) that the
    // first users pay.
    let cpu_before_logins = cfg.server_pid.and_then(process::usage);
    let half = cfg.users / 2;
    let first = sign_in_batch(cfg, &handles, 0..half, &shared).await;
    let halfway = cfg.server_pid.and_then(process::usage);
    let second = sign_in_batch(cfg, &handles, half..cfg.users, &shared).await;
    let logged_in = cfg.server_pid.and_then(process::usage);
    let second_half_users = second.online.len() as u64;
    let busy = first.busy() + second.busy();
    let mut online = vec![None; cfg.users];
    let mut latency = first.latency;
    latency.extend(second.latency);
    for (i, user) in first.online.into_iter().chain(second.online) {
        online[i] = Some(user);
    }
    let succeeded = latency.len();
    report.logins = LoginsReport {
        attempted: cfg.users,
        succeeded,
        failed: first.failed + second.failed,
        per_second: succeeded as f64 / busy.as_secs_f64().max(1e-6),
        latency: latency.summary(),
    };

    // Background logins, from here to the end of the switchboard phase.
    let background_stop = Arc::new(AtomicBool::new(false));
    let background = cfg.background.clone().map(|b| {
        let (stop, shared) = (background_stop.clone(), shared.clone());
        // A few at a time: they share the open-file limit with every
        // held user.
        let concurrency = BACKGROUND_CONCURRENCY;
        let accounts = Accounts::numbered(&b.prefix, &b.password);
        let target = Target { dialect: b.dialect, ..cfg.target.clone() };
        tokio::spawn(async move {
            let handles = accounts.handles(b.users);
            let churn = Churn { target, accounts, rate: b.rate };
            churn.run(&handles, concurrency, &shared, || stop.load(Ordering::Relaxed)).await
        })
    });

    // Presence: one change per user in turn (away, then back), among users
    // with online watchers.
    let online_set: Vec<Option<Arc<Online>>> = online;
    let movers: Vec<usize> = (0..cfg.users)
        .filter(|&i| online_set[i].is_some() && watchers[i].iter().any(|&w| online_set[w].is_some()))
        .collect();
    let changes = (cfg.presence_rate * cfg.presence_duration.as_secs_f64()).round() as usize;
    let mut presence = PresenceReport::default();
    if !movers.is_empty() && changes > 0 {
        change_states(cfg.presence_rate, changes, &movers, &online_set, |i, state, user| {
            let expected = watchers[i].iter().filter(|&&w| online_set[w].is_some()).count();
            shared.changes.lock().unwrap().insert(
                user.handle.to_ascii_lowercase(),
                Change { state, at: Instant::now(), expected, heard: 0, slowest: Duration::ZERO },
            );
        })
        .await;
        // Let the last changes arrive.
        shared.settle(Duration::from_secs(5), || shared.changes.lock().unwrap().is_empty()).await;
        let incomplete = shared.changes.lock().unwrap().len();
        if incomplete > 0 {
            shared.problem(format!("{incomplete} state changes did not reach every watcher within 5 s"));
        }
        // One fan-out sample per complete change, one delivery sample per
        // notification. (Each lock is taken in its own statement: a guard
        // lives to the end of the statement that made it.)
        let fanout = shared.fanout.lock().unwrap().clone();
        let delivery = shared.delivery.lock().unwrap().clone();
        presence = PresenceReport {
            changes,
            complete: fanout.len(),
            notifications: delivery.len(),
            fanout: fanout.summary(),
            delivery: delivery.summary(),
        };
    }
    report.presence = presence;
    let after_presence = cfg.server_pid.and_then(process::usage);

    report.switchboard = SwitchboardReport::of(&[switchboard_phase(cfg, &online_set, &shared).await]);
    let after_switchboard = cfg.server_pid.and_then(process::usage);
    background_stop.store(true, Ordering::Relaxed);
    if let Some(task) = background {
        report.background_logins = task.await.ok();
    }

    report.held = held_phase(&online_set, &shared).await;
    let at_end = cfg.server_pid.and_then(process::usage);

    if let (Some(before), Some(start), Some(halfway), Some(logged_in), Some(p), Some(s)) =
        (before, cpu_before_logins, halfway, logged_in, after_presence, after_switchboard)
    {
        let max = sampler.map(|s| s.stop()).unwrap_or_default();
        let users = report.logins.succeeded.max(1) as u64;
        report.server = Some(ServerReport {
            rss_before_bytes: before.rss_bytes,
            rss_logged_in_bytes: logged_in.rss_bytes,
            anon_before_bytes: before.anon_bytes,
            anon_logged_in_bytes: logged_in.anon_bytes,
            rss_per_user_bytes: logged_in.rss_bytes.saturating_sub(start.rss_bytes) / users,
            rss_per_added_user_bytes: logged_in.rss_bytes.saturating_sub(halfway.rss_bytes) / second_half_users.max(1),
            rss_max_bytes: max.max(s.rss_bytes),
            rss_end_bytes: at_end.map_or(0, |u| u.rss_bytes),
            rss_per_user_at_end_bytes: at_end.map_or(0, |u| u.rss_bytes.saturating_sub(start.rss_bytes) / users),
            cpu_ms_per_churn_login: churn_cpu_ms,
            cpu_ms_per_churn_login_besides_hashing: churn_cpu_ms_besides_hashing,
            cpu_seconds_logins: logged_in.cpu_seconds - start.cpu_seconds,
            cpu_seconds_presence: p.cpu_seconds - logged_in.cpu_seconds,
            cpu_seconds_switchboard: s.cpu_seconds - p.cpu_seconds,
            cpu_seconds_total: s.cpu_seconds - before.cpu_seconds,
        });
    }

    // Sign everyone out.
    for user in online_set.iter().flatten() {
        user.send(&NsRequest::Out);
    }

    let problems = shared.problems.lock().unwrap().clone();
    judge(&mut report, problems);
    Ok(report)
}

/// Phase 5: every connection still there answers a ping.
async fn held_phase(online: &[Option<Arc<Online>>], shared: &Arc<Shared>) -> HeldReport {
    let connections = online.iter().flatten().count();
    for user in online.iter().flatten() {
        user.send(&NsRequest::Png);
    }
    shared.settle(Duration::from_secs(10), || shared.pongs.load(Ordering::Relaxed) as usize >= connections).await;
    shared.ending.store(true, Ordering::Relaxed);
    HeldReport {
        connections,
        dropped: shared.dropped.load(Ordering::Relaxed),
        answered_ping: shared.pongs.load(Ordering::Relaxed),
    }
}

/// A run succeeds when nothing was refused, dropped or lost: the problems
/// seen, and those the report's counts show.
fn judge(report: &mut Report, mut problems: Vec<String>) {
    let r = &*report;
    for (kind, _, l) in r.login_kinds() {
        if l.failed > 0 {
            problems.push(format!("{} of {} {kind} failed", l.failed, l.attempted));
        }
    }
    if r.held.dropped > 0 {
        problems.push(format!("{} connections were dropped", r.held.dropped));
    }
    if (r.held.answered_ping as usize) < r.held.connections {
        problems.push(format!(
            "{} of {} connections did not answer PNG",
            r.held.connections - r.held.answered_ping as usize,
            r.held.connections
        ));
    }
    if r.switchboard.lost > 0 {
        problems.push(format!("{} of {} switchboard messages were lost", r.switchboard.lost, r.switchboard.sent));
    }
    if let Some(bus) = &r.bus {
        if bus.frames_refused > 0 {
            problems.push(format!(
                "the nodes refused {} frames on the bus (events lost between nodes)",
                bus.frames_refused
            ));
        }
        if bus.messages_dropped > 0 {
            problems.push(format!(
                "the nodes' NATS clients dropped {} messages, a subscription's queue full (events lost between nodes)",
                bus.messages_dropped
            ));
        }
        if bus.reconnections > 0 {
            problems.push(format!("the nodes lost their connection to NATS {} times", bus.reconnections));
        }
        if bus.nodes_declared_silent > 0 {
            problems.push(format!(
                "a node gave another up for silence {} times (its users shown offline meanwhile)",
                bus.nodes_declared_silent
            ));
        }
    }
    if r.presence.complete < r.presence.changes {
        problems.push(format!(
            "{} of {} state changes were not heard by every watcher",
            r.presence.changes - r.presence.complete,
            r.presence.changes
        ));
    }
    report.success = problems.is_empty();
    report.problems = problems;
}

/// Phase 3: `count` state changes at `rate` per second, one mover at a time
/// in turn (away, then back). `noted` is told of each just before it is sent.
async fn change_states(
    rate: f64,
    count: usize,
    movers: &[usize],
    online: &[Option<Arc<Online>>],
    mut noted: impl FnMut(usize, OnlineState, &Online),
) {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..count {
        tick.tick().await;
        let i = movers[n % movers.len()];
        let state = if (n / movers.len()).is_multiple_of(2) { OnlineState::Away } else { OnlineState::Online };
        let user = online[i].as_ref().expect("a mover is online");
        noted(i, state, user);
        let client_id = user.dialect.presence_has_client_id().then_some(0);
        user.send(&NsRequest::Chg { trid: user.next_trid(), state, client_id, extended_caps: 0, msn_object: None });
    }
}

/// Phase 1: the social graph, unless the first user already has a list.
async fn set_up_lists(
    cfg: &Config,
    handles: &[String],
    contacts: &[Vec<usize>],
    shared: &Shared,
) -> anyhow::Result<Option<ListsReport>> {
    if !lists_needed(cfg, handles).await? {
        return Ok(None);
    }
    let started = Instant::now();
    let n = make_lists(cfg, handles, contacts, 0..handles.len(), shared).await;
    Ok(Some(ListsReport { changes: n, per_second: n as f64 / started.elapsed().as_secs_f64() }))
}

/// Lists are made over MSNP2 whatever the measured dialect: ADD has one shape there.
fn lists_target(cfg: &Config) -> Target {
    Target { dialect: Dialect::Msnp2, ..cfg.target.clone() }
}

/// Whether the graph still has to be made: as the data dir says, else
/// when the first user's forward list is empty.
async fn lists_needed(cfg: &Config, handles: &[String]) -> anyhow::Result<bool> {
    if cfg.contacts == 0 || handles.is_empty() {
        return Ok(false);
    }
    if let Some(made) = cfg.lists_made {
        return Ok(!made);
    }
    let (mut first, forward) = link::sign_in(&lists_target(cfg), &handles[0], &cfg.accounts.password(0))
        .await
        .context("signing in the first user")?;
    let _ = first.send(&NsRequest::Out).await;
    Ok(forward == 0)
}

/// The users in `range` sign in and add their contacts; the number of
/// durably acknowledged list changes (those already there from an
/// interrupted run are not counted). A user whose changes failed is a
/// problem of the run, and the others go on.
async fn make_lists(
    cfg: &Config,
    handles: &[String],
    contacts: &[Vec<usize>],
    range: std::ops::Range<usize>,
    shared: &Shared,
) -> u64 {
    let target = lists_target(cfg);
    let changes = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(cfg.login_concurrency.clamp(1, 256)));
    let mut jobs = tokio::task::JoinSet::new();
    for i in range {
        let cs = &contacts[i];
        let (target, handle, password) = (target.clone(), handles[i].clone(), cfg.accounts.password(i));
        let names: Vec<String> = cs.iter().map(|&c| handles[c].clone()).collect();
        let (gate, changes) = (gate.clone(), changes.clone());
        jobs.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let (mut link, _) = link::sign_in(&target, &handle, &password).await?;
            let mut batch = Vec::new();
            let mut trid = 10;
            for name in &names {
                for list in [ListKind::Forward, ListKind::Allow] {
                    let (handle, friendly) = (name.clone(), name.clone());
                    let add = NsRequest::Add { trid, list, handle, friendly, group: None };
                    batch.extend(add.to_frame(target.dialect).to_bytes());
                    trid += 1;
                }
            }
            link.write.write_all(&batch).await?;
            for t in 10..trid {
                match link.reply(t, target.timeout).await {
                    Ok(_) => changes.fetch_add(1, Ordering::Relaxed),
                    // Already there (a rerun after an interrupted set-up).
                    Err(e) if e.downcast_ref() == Some(&link::Refused(ErrorCode::AlreadyThere)) => 0,
                    Err(e) => return Err(e.context(format!("{handle} adding contacts"))),
                };
            }
            let _ = link.send(&NsRequest::Out).await;
            anyhow::Ok(())
        });
    }
    while let Some(r) = jobs.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => shared.problem(format!("making the lists: {e:#}")),
            Err(e) => shared.problem(format!("making the lists: {e}")),
        }
    }
    changes.load(Ordering::Relaxed)
}

/// Phase 1b: sustained logins. For the configured time, users (in turn)
/// sign in completely and straight out again at the target rate, so that
/// the rate can be held longer than the open-file limit would allow users
/// to stay.
async fn sustained_logins(cfg: &Config, handles: &[String], shared: &Arc<Shared>) -> LoginsReport {
    let started = Instant::now();
    let churn = Churn { target: cfg.target.clone(), accounts: cfg.accounts.clone(), rate: cfg.login_rate };
    churn.run(handles, cfg.login_concurrency, shared, || started.elapsed() >= cfg.churn_duration).await
}

/// Users signing in and straight out again, at a rate.
struct Churn {
    target: Target,
    /// Whose passwords the handles have (the same numbering).
    accounts: Accounts,
    rate: f64,
}

impl Churn {
    /// Runs until `done` says so; then waits for the logins in flight.
    async fn run(
        &self,
        handles: &[String],
        concurrency: usize,
        shared: &Arc<Shared>,
        done: impl Fn() -> bool,
    ) -> LoginsReport {
        let gate = Arc::new(Semaphore::new(concurrency.max(1)));
        let period = Duration::from_secs_f64(1.0 / self.rate.max(0.001));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut jobs = tokio::task::JoinSet::new();
        let started = Instant::now();
        let mut latency = Samples::default();
        let (mut attempted, mut failed, mut last) = (0, 0, started);
        let mut note = |joined: Result<(Duration, Instant, anyhow::Result<()>, String), _>| match joined {
            Ok((took, done, Ok(()), _)) => {
                latency.push(took);
                last = last.max(done);
            }
            Ok((_, _, Err(e), handle)) => {
                failed += 1;
                shared.problem(format!("sustained login of {handle}: {e:#}"));
            }
            Err(_) => failed += 1,
        };
        // A user still signing in or out is skipped: signing the same
        // account in again would sign the first connection out (`OTH`), a
        // failure of the tool's making. With few users and slow logins the
        // turn comes round again before the last one is done.
        let busy: Arc<Vec<AtomicBool>> = Arc::new(handles.iter().map(|_| AtomicBool::new(false)).collect());
        let mut next = 0;
        while !done() && !handles.is_empty() {
            tick.tick().await;
            let permit = gate.clone().acquire_owned().await.expect("never closed");
            let turn = loop {
                let free =
                    (0..handles.len()).map(|k| (next + k) % handles.len()).find(|&t| !busy[t].load(Ordering::Acquire));
                if let Some(turn) = free {
                    break turn;
                }
                match jobs.join_next().await {
                    Some(joined) => note(joined),
                    // Nothing in flight (a login task panicked before
                    // clearing its mark): nobody is busy.
                    None => busy.iter().for_each(|b| b.store(false, Ordering::Release)),
                }
            };
            next = turn + 1;
            busy[turn].store(true, Ordering::Release);
            let (handle, password, target) = (handles[turn].clone(), self.accounts.password(turn), self.target.clone());
            let busy = busy.clone();
            attempted += 1;
            jobs.spawn(async move {
                let _permit = permit;
                let t0 = Instant::now();
                let result = async {
                    let (mut link, _) = link::sign_in(&target, &handle, &password).await?;
                    link.send(&NsRequest::Out).await
                }
                .await;
                busy[turn].store(false, Ordering::Release);
                (t0.elapsed(), Instant::now(), result, handle)
            });
            while let Some(joined) = jobs.try_join_next() {
                note(joined);
            }
        }
        while let Some(joined) = jobs.join_next().await {
            note(joined);
        }
        let succeeded = latency.len();
        LoginsReport {
            attempted,
            succeeded,
            failed,
            per_second: succeeded as f64 / (last - started).as_secs_f64().max(1e-6),
            latency: latency.summary(),
        }
    }
}

/// The users of one login batch that signed in, and how it went.
#[derive(Default)]
struct LoginBatch {
    online: Vec<(usize, Arc<Online>)>,
    latency: Samples,
    failed: usize,
    /// From the first login started to the last one finished, on the wall
    /// clock (µs), which the processes of a run by several share.
    wall: (u64, u64),
}

impl LoginBatch {
    fn busy(&self) -> Duration {
        Duration::from_micros(self.wall.1.saturating_sub(self.wall.0))
    }
}

/// Phase 2: the users in `range` sign in at the target rate and stay.
async fn sign_in_batch(
    cfg: &Config,
    handles: &[String],
    range: std::ops::Range<usize>,
    shared: &Arc<Shared>,
) -> LoginBatch {
    let gate = Arc::new(Semaphore::new(cfg.login_concurrency.max(1)));
    let period = Duration::from_secs_f64(1.0 / cfg.login_rate.max(0.001));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut jobs = tokio::task::JoinSet::new();
    let (started, wall_started) = (Instant::now(), workers::wall_us());
    for i in range {
        tick.tick().await;
        let permit = gate.clone().acquire_owned().await.expect("never closed");
        let (handle, password, shared) = (handles[i].clone(), cfg.accounts.password(i), shared.clone());
        jobs.spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            let result = link::sign_in(&shared.target, &handle, &password).await;
            (i, t0.elapsed(), Instant::now(), result.map(|(link, _)| spawn_user(handle, link, shared.clone())))
        });
    }
    let mut batch = LoginBatch::default();
    let mut last = started;
    while let Some(joined) = jobs.join_next().await {
        let Ok((i, took, done, result)) = joined else { continue };
        match result {
            Ok(user) => {
                batch.latency.push(took);
                last = last.max(done);
                batch.online.push((i, user));
            }
            Err(e) => {
                batch.failed += 1;
                shared.problem(format!("login of {}: {e:#}", handles[i]));
            }
        }
    }
    batch.wall = (wall_started, wall_started + (last - started).as_micros() as u64);
    batch
}

/// A signed-in user's two tasks: the writer drains its queue; the reader
/// answers challenges, notes presence, pongs and replies, and joins the
/// switchboard sessions it is rung for.
fn spawn_user(handle: String, link: Link, shared: Arc<Shared>) -> Arc<Online> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let dialect = shared.target.dialect;
    let user = Arc::new(Online { handle, dialect, out: tx, trid: AtomicU32::new(100), waiting: Mutex::default() });
    let Link { mut reader, mut write, .. } = link;
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if write.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let me = user.clone();
    tokio::spawn(async move {
        loop {
            let frame = match reader.next().await {
                Ok(Some(f)) => f,
                _ => break,
            };
            let reply = match Reply::parse(&frame, dialect) {
                Ok(reply) => reply,
                Err(e) => {
                    shared.problem(format!("{}: {e}", me.handle));
                    continue;
                }
            };
            match reply {
                Reply::Chl { challenge } => me.send(&link::qry(me.next_trid(), &challenge)),
                Reply::Nln { presence } => shared.heard(&presence.handle.to_ascii_lowercase(), presence.state),
                Reply::Qng { .. } => {
                    shared.pongs.fetch_add(1, Ordering::Relaxed);
                    shared.progress.notify_waiters();
                }
                Reply::Rng { session_id, address, cookie, .. } => {
                    tokio::spawn(answer_ring(me.handle.clone(), session_id, address, cookie, shared.clone()));
                }
                Reply::Out { .. } => break,
                reply => {
                    if let Some(trid) = reply.trid() {
                        let waiting = me.waiting.lock().unwrap().remove(&trid);
                        if let Some(tx) = waiting {
                            let _ = tx.send(reply);
                        }
                    }
                }
            }
        }
        if !shared.ending.load(Ordering::Relaxed) {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            shared.problem(format!("{} was disconnected", me.handle));
        }
    });
    user
}

/// The header that carries a message's send time (µs since the run began).
const SENT_AT: &str = "X-Load-Sent: ";

/// Joins a session one was rung for and notes every message's latency.
async fn answer_ring(handle: String, session_id: msnp::SessionId, addr: String, cookie: String, shared: Arc<Shared>) {
    let result = async {
        let mut sb = Link::connect_switchboard(&addr, shared.target.dialect, shared.target.gateway.as_deref()).await?;
        sb.send_sb(&SbRequest::Ans { trid: 1, handle: msnp::endpoint::Address::user(&handle), cookie, session_id })
            .await?;
        sb.reply(1, shared.target.timeout).await?;
        while let Some(f) = sb.reader.next().await? {
            let Ok(Reply::Msg { payload, .. }) = Reply::parse_from_switchboard(&f, sb.dialect) else { continue };
            let text = String::from_utf8_lossy(&payload);
            if let Some(us) = text.split(SENT_AT).nth(1).and_then(|t| t.split("\r\n").next()?.parse::<u64>().ok()) {
                let took = shared.base.elapsed().saturating_sub(Duration::from_micros(us));
                shared.sb_latency.lock().unwrap().push(took);
                shared.progress.notify_waiters();
            }
        }
        anyhow::Ok(())
    };
    if let Err(e) = result.await {
        shared.problem(format!("{handle} answering a ring: {e:#}"));
    }
}

/// Phase 4: sessions of two, messages at the target rate, latency noted by
/// the receivers.
async fn switchboard_phase(cfg: &Config, online: &[Option<Arc<Online>>], shared: &Arc<Shared>) -> SwitchboardPart {
    let up: Vec<&Arc<Online>> = online.iter().flatten().collect();
    let sessions = cfg.sessions.min(up.len() / 2);
    if sessions == 0 || cfg.message_rate <= 0.0 {
        return SwitchboardPart::default();
    }
    // Open every session: XFR SB, USR, CAL, and wait for the JOI.
    let mut opening = tokio::task::JoinSet::new();
    for s in 0..sessions {
        let (caller, callee) = (up[2 * s].clone(), up[2 * s + 1].handle.clone());
        let (wait, gateway) = (cfg.target.timeout, cfg.target.gateway.clone());
        opening.spawn(async move {
            let Reply::XfrSb { address, cookie, .. } = caller.request(|trid| NsRequest::XfrSb { trid }, wait).await?
            else {
                bail!("XFR SB answered otherwise");
            };
            let mut sb = Link::connect_switchboard(&address, caller.dialect, gateway.as_deref()).await?;
            sb.send_sb(&SbRequest::Usr { trid: 1, handle: msnp::endpoint::Address::user(&caller.handle), cookie })
                .await?;
            sb.reply(1, wait).await?;
            sb.send_sb(&SbRequest::Cal { trid: 2, handle: callee }).await?;
            sb.reply(2, wait).await?;
            loop {
                if let Reply::Joi { .. } = sb.next_reply(wait).await? {
                    return anyhow::Ok(sb);
                }
            }
        });
    }
    let mut links = Vec::new();
    while let Some(r) = opening.join_next().await {
        match r {
            Ok(Ok(link)) => links.push(link),
            Ok(Err(e)) => shared.problem(format!("opening a session: {e:#}")),
            Err(e) => shared.problem(format!("opening a session: {e}")),
        }
    }
    // Send: each session its share of the rate.
    let total = (cfg.message_rate * cfg.message_duration.as_secs_f64()).round() as u64;
    let per_session = total / links.len().max(1) as u64;
    let period = Duration::from_secs_f64(links.len() as f64 / cfg.message_rate);
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut sending = tokio::task::JoinSet::new();
    for (n, mut link) in links.into_iter().enumerate() {
        let (sent, shared, size) = (sent.clone(), shared.clone(), cfg.message_size);
        sending.spawn(async move {
            // Spread the sessions' ticks over one period.
            tokio::time::sleep(period.mul_f64((n % 100) as f64 / 100.0)).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for trid in 0..per_session {
                tick.tick().await;
                let head = format!(
                    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n{SENT_AT}{}\r\n\r\n",
                    shared.base.elapsed().as_micros()
                );
                let mut payload = head.into_bytes();
                payload.resize(size.max(payload.len()), b'x');
                let message =
                    SbRequest::Msg { trid: trid as u32 + 10, ack: AckMode::Unacknowledged, payload: payload.into() };
                if link.send_sb(&message).await.is_err() {
                    shared.problem("a switchboard connection closed while sending".into());
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            link
        });
    }
    let mut links = Vec::new();
    while let Some(r) = sending.join_next().await {
        if let Ok(link) = r {
            links.push(link);
        }
    }
    let sent = sent.load(Ordering::Relaxed);
    let received = || shared.sb_latency.lock().unwrap().len() as u64;
    shared.settle(Duration::from_secs(5), || received() >= sent).await;
    let elapsed_secs = started.elapsed().as_secs_f64();
    for mut link in links {
        let _ = link.send_sb(&SbRequest::Out).await;
    }
    let latency = shared.sb_latency.lock().unwrap().clone();
    SwitchboardPart { sessions, sent, latency, elapsed_secs }
}

/// What one process's sessions saw, with every latency sample, so that the
/// parts of several processes add up exactly.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SwitchboardPart {
    pub sessions: usize,
    pub sent: u64,
    pub latency: Samples,
    pub elapsed_secs: f64,
}

impl SwitchboardReport {
    /// The sessions of every part, measured over the longest part.
    pub fn of(parts: &[SwitchboardPart]) -> SwitchboardReport {
        let mut latency = Samples::default();
        for p in parts {
            latency.extend(p.latency.clone());
        }
        let sent: u64 = parts.iter().map(|p| p.sent).sum();
        let received = latency.len() as u64;
        let elapsed = parts.iter().map(|p| p.elapsed_secs).fold(0.0, f64::max);
        SwitchboardReport {
            sessions: parts.iter().map(|p| p.sessions).sum(),
            sent,
            received,
            lost: sent.saturating_sub(received),
            per_second: received as f64 / elapsed.max(1e-6),
            latency: latency.summary(),
        }
    }
}

/// Samples the server's RSS every 200 ms, keeping the maximum.
struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let (stop, max) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, m) = (stop.clone(), max.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(Usage { rss_bytes, .. }) = process::usage(pid) {
                    m.fetch_max(rss_bytes, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Sampler { stop, max }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.max.load(Ordering::Relaxed)
    }
}

impl Report {
    /// The human-readable table.
    /// Each kind of login that was measured: its name, how it went on, and
    /// its report.
    fn login_kinds(&self) -> impl Iterator<Item = (&'static str, &'static str, &LoginsReport)> {
        [
            ("sustained logins", " (in and out)", self.churn.as_ref()),
            ("logins", "", Some(&self.logins)),
            ("background logins", " (in and out)", self.background_logins.as_ref()),
        ]
        .into_iter()
        .filter_map(|(kind, how, report)| Some((kind, how, report?)))
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("{k:<34} {v}\n"));
        row("users / dialect / processes", format!("{} / {} / {}", self.users, self.dialect, self.workers));
        row("machine reference (fixed work) ms", format!("{:.1}", self.machine_reference_ms));
        if let Some(l) = &self.lists {
            row("list changes (durable)", format!("{} at {:.0}/s", l.changes, l.per_second));
        }
        for (kind, how, l) in self.login_kinds() {
            row(&format!("{kind}{how}"), format!("{} of {} at {:.0}/s", l.succeeded, l.attempted, l.per_second));
            let one = kind.strip_suffix('s').unwrap_or(kind);
            row(&format!("{one} latency p50/p99/max ms"), fmt(&l.latency));
        }
        let p = &self.presence;
        row("state changes (complete)", format!("{} ({}), {} notifications", p.changes, p.complete, p.notifications));
        row("presence fan-out p50/p99/max ms", fmt(&p.fanout));
        row("presence delivery p50/p99/max ms", fmt(&p.delivery));
        let s = &self.switchboard;
        row("switchboard sessions", s.sessions.to_string());
        row("messages sent/received/lost", format!("{}/{}/{} at {:.0}/s", s.sent, s.received, s.lost, s.per_second));
        row("message latency p50/p99/max ms", fmt(&s.latency));
        let h = &self.held;
        row("connections held / dropped / PNG", format!("{} / {} / {}", h.connections, h.dropped, h.answered_ping));
        if let Some(s) = &self.server {
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            row(
                "server RSS before/logged in/max",
                format!(
                    "{:.1} / {:.1} / {:.1} MiB",
                    mib(s.rss_before_bytes),
                    mib(s.rss_logged_in_bytes),
                    mib(s.rss_max_bytes)
                ),
            );
            row(
                "server RSS anon before/logged in",
                format!("{:.1} / {:.1} MiB", mib(s.anon_before_bytes), mib(s.anon_logged_in_bytes)),
            );
            row(
                "server RSS at the end / per user",
                format!("{:.1} MiB / {:.2} KiB", mib(s.rss_end_bytes), s.rss_per_user_at_end_bytes as f64 / 1024.0),
            );
            row(
                "server RSS per user / added user",
                format!(
                    "{:.2} / {:.2} KiB",
                    s.rss_per_user_bytes as f64 / 1024.0,
                    s.rss_per_added_user_bytes as f64 / 1024.0
                ),
            );
            row(
                "server CPU logins/presence/sb s",
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    s.cpu_seconds_logins, s.cpu_seconds_presence, s.cpu_seconds_switchboard
                ),
            );
            if self.churn.is_some() {
                row("server CPU per sustained login", format!("{:.3} ms", s.cpu_ms_per_churn_login));
                row("  of it besides password hashing", format!("{:.3} ms", s.cpu_ms_per_churn_login_besides_hashing));
            }
        }
        for (k, v) in workers::table_rows(self) {
            row(&k, v);
        }
        row("result", if self.success { "success".into() } else { format!("FAILED: {}", self.problems.join("; ")) });
        t
    }
}

fn fmt(s: &Summary) -> String {
    format!("{:.2} / {:.2} / {:.2} (n={})", s.p50_ms, s.p99_ms, s.max_ms, s.count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_trouble_on_the_bus_fails() {
        let mut clean = Report { bus: Some(workers::BusTrouble::default()), ..Report::default() };
        judge(&mut clean, Vec::new());
        assert!(clean.success, "{:?}", clean.problems);

        let trouble = workers::BusTrouble {
            frames_refused: 146,
            messages_dropped: 3,
            reconnections: 1,
            nodes_declared_silent: 30,
            slowest_heartbeat_ms: 5_100,
        };
        let mut lossy = Report { bus: Some(trouble), ..Report::default() };
        judge(&mut lossy, Vec::new());
        assert!(!lossy.success);
        assert_eq!(
            lossy.problems,
            [
                "the nodes refused 146 frames on the bus (events lost between nodes)",
                "the nodes' NATS clients dropped 3 messages, a subscription's queue full (events lost between nodes)",
                "the nodes lost their connection to NATS 1 times",
                "a node gave another up for silence 30 times (its users shown offline meanwhile)",
            ]
        );
    }
}
