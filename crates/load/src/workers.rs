//! Several `msn-load` processes driving one server or cluster: more users
//! than one process may hold open files for. A coordinator starts workers
//! (`msn-load --worker K/N`, each under its own open-file limit), and each
//! phase is a step every worker takes at once: the coordinator writes the
//! step as a JSON line to every worker's standard input and reads one JSON
//! line back from each, then reads the nodes' memory and CPU before the
//! next. Parts carry raw samples, so the one report is exact, not an
//! average of averages.
//!
//! A state change is made in one process and heard in others: each change
//! and each `NLN` is noted with the wall clock (shared by the processes of
//! one machine), and the coordinator matches them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::ops::Range;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use msnp::OnlineState;
use msnp::request::NsRequest;
use serde::{Deserialize, Serialize};

use crate::process::{self, Usage};
use crate::stats::Samples;
use crate::{
    Config, HeldReport, ListsReport, LoginsReport, Online, PresenceReport, Report, Shared, SwitchboardPart,
    SwitchboardReport, graph,
};

/// Microseconds since the epoch: the clock every process on this machine shares.
pub fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// An `NLN` a user heard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heard {
    pub handle: String,
    pub state: OnlineState,
    pub at_us: u64,
}

/// A state change a worker's user made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moved {
    pub user: usize,
    pub state: OnlineState,
    pub at_us: u64,
}

/// What the coordinator asks of every worker, in this order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Sign in and add the contacts of the social graph.
    Lists,
    /// Sign in half 0 or 1 of the worker's users, who stay online.
    Logins {
        half: u8,
    },
    /// Note every `NLN` heard from now on. A step of its own, taken by
    /// every worker before any changes: a change made by a quick worker
    /// must not reach a slower one before it listens.
    Listen,
    /// Make the worker's share of the state changes, among users with a
    /// watcher online anywhere (`offline`: the users who did not sign in).
    Presence {
        offline: Vec<usize>,
    },
    /// The `NLN`s heard since the last ask (the presence phase's only).
    Heard,
    Switchboard,
    /// Every connection pings.
    Held,
    SignOut,
}

/// A worker's answer to a step.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Part {
    pub list_changes: u64,
    pub logins: Option<LoginsPart>,
    pub moved: Vec<Moved>,
    pub heard: Vec<Heard>,
    pub switchboard: Option<SwitchboardPart>,
    pub held: Option<HeldReport>,
    pub problems: Vec<String>,
}

/// One worker's logins of one half.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoginsPart {
    pub attempted: usize,
    pub failed_users: Vec<usize>,
    pub latency: Samples,
    /// From the first login started to the last finished, on the wall clock.
    pub wall: (u64, u64),
}

/// One node of a cluster, measured on its own.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeReport {
    pub name: String,
    /// Open files while everyone is signed in, less those before: the
    /// connections it holds.
    pub connections: u64,
    pub rss_before_bytes: u64,
    pub rss_logged_in_bytes: u64,
    pub rss_end_bytes: u64,
    /// The growth over the logins, per connection it took.
    pub rss_per_connection_bytes: u64,
    pub cpu_seconds_logins: f64,
    pub cpu_seconds_presence: f64,
    pub cpu_seconds_switchboard: f64,
}

/// What went wrong between a cluster's nodes during a run, summed over
/// the nodes; anything but zeros means events were lost or delayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BusTrouble {
    /// Frames refused (unsigned, forged, stale or replayed).
    pub frames_refused: u64,
    /// Messages a node's NATS client dropped, its subscription's queue full.
    pub messages_dropped: u64,
    /// Connections to NATS lost and made again.
    pub reconnections: u64,
    /// Times a node gave another up for silence.
    pub nodes_declared_silent: u64,
    /// The longest a heartbeat took to reach a node (given up at 5 s).
    pub slowest_heartbeat_ms: u64,
}

/// A shared service of the cluster (PostgreSQL, NATS): all its processes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServiceReport {
    pub name: String,
    pub cpu_seconds_lists: f64,
    pub cpu_seconds_logins: f64,
    pub cpu_seconds_presence: f64,
    pub cpu_seconds_switchboard: f64,
    pub rss_growth_logins_bytes: i64,
}

/// The users worker `k` of `n` drives: a contiguous share.
pub fn slice(users: usize, k: usize, n: usize) -> Range<usize> {
    users * k / n..users * (k + 1) / n
}

/// `K/N` as given to `--worker`.
pub fn parse_worker(spec: &str) -> anyhow::Result<(usize, usize)> {
    let (k, n) = spec.split_once('/').context("--worker K/N")?;
    let (k, n): (usize, usize) = (k.parse()?, n.parse()?);
    anyhow::ensure!(k < n, "--worker K/N needs K < N");
    Ok((k, n))
}

/// A worker's config: its share of every rate and count.
pub fn share(cfg: &Config, n: usize) -> Config {
    let n = n.max(1) as f64;
    Config {
        login_rate: cfg.login_rate / n,
        login_concurrency: ((cfg.login_concurrency as f64 / n).ceil() as usize).max(1),
        presence_rate: cfg.presence_rate / n,
        sessions: (cfg.sessions as f64 / n).round() as usize,
        message_rate: cfg.message_rate / n,
        ..cfg.clone()
    }
}

/// One worker process: the users of its slice, kept between steps.
struct Worker {
    cfg: Config,
    range: Range<usize>,
    handles: Vec<String>,
    contacts: Vec<Vec<usize>>,
    shared: Arc<Shared>,
    online: Vec<Option<Arc<Online>>>,
}

impl Worker {
    async fn step(&mut self, step: Step) -> anyhow::Result<Part> {
        let mut part = Part::default();
        match step {
            Step::Lists => {
                let range = self.range.clone();
                part.list_changes =
                    crate::make_lists(&self.cfg, &self.handles, &self.contacts, range, &self.shared).await;
            }
            Step::Logins { half } => {
                let mid = self.range.start + self.range.len() / 2;
                let range = if half == 0 { self.range.start..mid } else { mid..self.range.end };
                let batch = crate::sign_in_batch(&self.cfg, &self.handles, range.clone(), &self.shared).await;
                let mut failed_users: Vec<usize> = range.collect();
                for (i, user) in batch.online {
                    failed_users.retain(|&f| f != i);
                    self.online[i] = Some(user);
                }
                let attempted = batch.latency.len() + failed_users.len();
                part.logins = Some(LoginsPart { attempted, failed_users, latency: batch.latency, wall: batch.wall });
            }
            Step::Presence { offline } => {
                let mut up = vec![true; self.handles.len()];
                for i in offline {
                    if let Some(u) = up.get_mut(i) {
                        *u = false;
                    }
                }
                let watchers = graph::watchers(&self.contacts);
                let movers: Vec<usize> = self
                    .range
                    .clone()
                    .filter(|&i| self.online[i].is_some() && watchers[i].iter().any(|&w| up[w]))
                    .collect();
                let count = (self.cfg.presence_rate * self.cfg.presence_duration.as_secs_f64()).round() as usize;
                if !movers.is_empty() && count > 0 {
                    let moved = &mut part.moved;
                    crate::change_states(self.cfg.presence_rate, count, &movers, &self.online, |user, state, _| {
                        moved.push(Moved { user, state, at_us: wall_us() })
                    })
                    .await;
                }
            }
            Step::Listen => *self.shared.heard_log.lock().unwrap() = Some(Vec::new()),
            Step::Heard => {
                if let Some(log) = self.shared.heard_log.lock().unwrap().as_mut() {
                    part.heard = std::mem::take(log);
                }
            }
            Step::Switchboard => {
                *self.shared.heard_log.lock().unwrap() = None;
                part.switchboard = Some(crate::switchboard_phase(&self.cfg, &self.online, &self.shared).await);
            }
            Step::Held => part.held = Some(crate::held_phase(&self.online, &self.shared).await),
            Step::SignOut => {
                for user in self.online.iter().flatten() {
                    user.send(&NsRequest::Out);
                }
                // Let the writers flush.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        part.problems = std::mem::take(&mut *self.shared.problems.lock().unwrap());
        Ok(part)
    }
}

/// `msn-load --worker K/N`: takes steps from standard input until told to
/// sign out, answering each with one JSON line on standard output.
pub async fn serve_worker(cfg: Config, k: usize, n: usize) -> anyhow::Result<()> {
    let handles = cfg.accounts.handles(cfg.users);
    let contacts = graph::contacts(cfg.users, cfg.contacts, cfg.mutual);
    let mut worker = Worker {
        shared: Shared::new(cfg.target.clone()),
        online: vec![None; cfg.users],
        range: slice(cfg.users, k, n),
        cfg: share(&cfg, n),
        handles,
        contacts,
    };
    // Standard input is read on a thread of its own: a blocking read.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let line = line?;
        let step: Step = serde_json::from_str(&line).context("a step from the coordinator")?;
        let last = matches!(step, Step::SignOut);
        let part = worker.step(step).await?;
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &part)?;
        out.write_all(b"\n")?;
        out.flush()?;
        if last {
            break;
        }
    }
    Ok(())
}

/// A started worker process.
struct Started {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

/// What the coordinator measures besides the workers: the nodes (name and
/// process id) and the shared services (name and their processes' ids).
#[derive(Debug, Clone, Default)]
pub struct Watched {
    pub nodes: Vec<(String, u32)>,
    pub services: Vec<(String, Vec<u32>)>,
    /// A cluster node's `/status.json` (`http://host:port/status.json`),
    /// whose `cluster.nodes` say how many bus frames each node refused.
    pub status: Option<String>,
}

impl Watched {
    /// Waits (at most 3 s) until no node's open files change for 200 ms,
    /// so that connections still closing are not counted as held.
    fn settle(&self) {
        let count = || self.nodes.iter().map(|(_, pid)| process::open_files(*pid)).collect::<Vec<_>>();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = count();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            let now = count();
            if now == last {
                return;
            }
            last = now;
        }
    }

    fn read(&self) -> Readings {
        let nodes = self.nodes.iter().map(|(_, pid)| (process::usage(*pid), process::open_files(*pid))).collect();
        let services = self
            .services
            .iter()
            .map(|(_, pids)| {
                pids.iter().filter_map(|&p| process::usage(p)).fold(Usage::default(), |a, u| Usage {
                    rss_bytes: a.rss_bytes + u.rss_bytes,
                    anon_bytes: a.anon_bytes + u.anon_bytes,
                    cpu_seconds: a.cpu_seconds + u.cpu_seconds,
                })
            })
            .collect();
        Readings { nodes, services }
    }
}

/// Every watched process read at one moment.
struct Readings {
    nodes: Vec<(Option<Usage>, Option<u64>)>,
    services: Vec<Usage>,
}

/// The coordinator: starts `n` workers as `exe worker_args --worker K/N`,
/// takes them through the phases, and reports as one run.
pub fn coordinate(
    cfg: &Config,
    (exe, worker_args): (&std::path::Path, &[String]),
    n: usize,
    watched: &Watched,
) -> anyhow::Result<Report> {
    let mut started = Vec::new();
    for k in 0..n {
        let mut child = Command::new(exe)
            .args(worker_args)
            .arg("--worker")
            .arg(format!("{k}/{n}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting worker {k}"))?;
        let input = child.stdin.take().context("stdin")?;
        let output = BufReader::new(child.stdout.take().context("stdout")?);
        started.push(Started { child, input, output });
    }
    let mut step = |s: Step| -> anyhow::Result<Vec<Part>> {
        let line = serde_json::to_string(&s)? + "\n";
        for w in started.iter_mut() {
            w.input.write_all(line.as_bytes())?;
            w.input.flush()?;
        }
        let mut parts = Vec::new();
        for (k, w) in started.iter_mut().enumerate() {
            let mut answer = String::new();
            if w.output.read_line(&mut answer)? == 0 {
                bail!("worker {k} ended during {s:?}");
            }
            parts.push(serde_json::from_str::<Part>(&answer).with_context(|| format!("worker {k}'s answer"))?);
        }
        Ok(parts)
    };
    let handles = cfg.accounts.handles(cfg.users);
    let mut report = Report {
        users: cfg.users,
        workers: n,
        dialect: cfg.target.dialect.to_string(),
        machine_reference_ms: crate::reference::milliseconds(),
        ..Report::default()
    };
    let mut problems = Vec::new();
    let mut keep = |parts: &[Part]| problems.extend(parts.iter().flat_map(|p| p.problems.iter().take(5).cloned()));

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let lists_from = watched.read();
    if runtime.block_on(crate::lists_needed(cfg, &handles))? {
        let t0 = Instant::now();
        let parts = step(Step::Lists)?;
        keep(&parts);
        let changes = parts.iter().map(|p| p.list_changes).sum::<u64>();
        report.lists = Some(ListsReport { changes, per_second: changes as f64 / t0.elapsed().as_secs_f64() });
    }
    // The list makers' connections close as the nodes get to it.
    watched.settle();
    let before = watched.read();
    let first = step(Step::Logins { half: 0 })?;
    let second = step(Step::Logins { half: 1 })?;
    let logged_in = watched.read();
    keep(&first);
    keep(&second);
    let halves: [Vec<&LoginsPart>; 2] = [&first, &second].map(|h| h.iter().filter_map(|p| p.logins.as_ref()).collect());
    let offline: Vec<usize> = halves.iter().flatten().flat_map(|l| l.failed_users.iter().copied()).collect();
    report.logins = merge_logins(&halves);

    // Presence: the changes, then what was heard until every watcher
    // heard every change (or 5 s passed).
    let contacts = graph::contacts(cfg.users, cfg.contacts, cfg.mutual);
    let watchers = graph::watchers(&contacts);
    let mut up = vec![true; cfg.users];
    for &i in &offline {
        up[i] = false;
    }
    keep(&step(Step::Listen)?);
    let parts = step(Step::Presence { offline: offline.clone() })?;
    keep(&parts);
    let moved: Vec<Moved> = parts.into_iter().flat_map(|p| p.moved).collect();
    // (An `NLN` of a contact's late sign-in is heard too, and matches no
    // change: only a complete report ends the wait.)
    let mut heard = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let parts = step(Step::Heard)?;
        heard.extend(parts.into_iter().flat_map(|p| p.heard));
        report.presence = presence_report(&moved, &heard, &handles, &watchers, &up);
        if report.presence.complete == report.presence.changes || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let after_presence = watched.read();

    let parts = step(Step::Switchboard)?;
    keep(&parts);
    let sb: Vec<SwitchboardPart> = parts.into_iter().filter_map(|p| p.switchboard).collect();
    report.switchboard = SwitchboardReport::of(&sb);
    let after_switchboard = watched.read();

    let parts = step(Step::Held)?;
    keep(&parts);
    for h in parts.iter().filter_map(|p| p.held.as_ref()) {
        report.held.connections += h.connections;
        report.held.dropped += h.dropped;
        report.held.answered_ping += h.answered_ping;
    }
    let at_end = watched.read();
    keep(&step(Step::SignOut)?);
    for mut w in started {
        let _ = w.child.wait();
    }
    if let Some(url) = &watched.status {
        match runtime.block_on(bus_trouble(url)) {
            Ok(trouble) => report.bus = Some(trouble),
            Err(e) => problems.push(format!("cannot read the cluster's status: {e:#}")),
        }
    }

    for (i, (name, _)) in watched.nodes.iter().enumerate() {
        let (Some(b), Some(l), Some(p), Some(s)) =
            (before.nodes[i].0, logged_in.nodes[i].0, after_presence.nodes[i].0, after_switchboard.nodes[i].0)
        else {
            continue;
        };
        let connections = logged_in.nodes[i].1.unwrap_or(0).saturating_sub(before.nodes[i].1.unwrap_or(0));
        report.nodes.push(NodeReport {
            name: name.clone(),
            connections,
            rss_before_bytes: b.rss_bytes,
            rss_logged_in_bytes: l.rss_bytes,
            rss_end_bytes: at_end.nodes[i].0.map_or(0, |u| u.rss_bytes),
            rss_per_connection_bytes: l.rss_bytes.saturating_sub(b.rss_bytes).checked_div(connections).unwrap_or(0),
            cpu_seconds_logins: l.cpu_seconds - b.cpu_seconds,
            cpu_seconds_presence: p.cpu_seconds - l.cpu_seconds,
            cpu_seconds_switchboard: s.cpu_seconds - p.cpu_seconds,
        });
    }
    for (i, (name, _)) in watched.services.iter().enumerate() {
        let at = |r: &Readings| r.services[i];
        report.services.push(ServiceReport {
            name: name.clone(),
            cpu_seconds_lists: at(&before).cpu_seconds - at(&lists_from).cpu_seconds,
            cpu_seconds_logins: at(&logged_in).cpu_seconds - at(&before).cpu_seconds,
            cpu_seconds_presence: at(&after_presence).cpu_seconds - at(&logged_in).cpu_seconds,
            cpu_seconds_switchboard: at(&after_switchboard).cpu_seconds - at(&after_presence).cpu_seconds,
            rss_growth_logins_bytes: at(&logged_in).rss_bytes as i64 - at(&before).rss_bytes as i64,
        });
    }
    crate::judge(&mut report, problems);
    Ok(report)
}

/// What went wrong on the bus, summed over the cluster's nodes as their
/// heartbeats tell the node serving `url`. A node's heartbeats carry its
/// counts, and after a stormy phase they come late: read until two
/// readings a heartbeat and a half apart agree.
async fn bus_trouble(url: &str) -> anyhow::Result<BusTrouble> {
    let mut last: Option<BusTrouble> = None;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let answer = client::http::get(url, &[], None).await?;
        let status: serde_json::Value = serde_json::from_slice(&answer.body).context("the cluster's status")?;
        let nodes = status["cluster"]["nodes"].as_array().context("no cluster.nodes in the status")?;
        let sum = |field: &str| nodes.iter().filter_map(|n| n[field].as_u64()).sum();
        let now = BusTrouble {
            frames_refused: sum("rejected_frames"),
            messages_dropped: sum("dropped_messages"),
            reconnections: sum("reconnections"),
            nodes_declared_silent: sum("declared_silent"),
            slowest_heartbeat_ms: nodes.iter().filter_map(|n| n["slowest_heartbeat_ms"].as_u64()).max().unwrap_or(0),
        };
        if last.as_ref() == Some(&now) {
            return Ok(now);
        }
        last = Some(now);
    }
    last.context("no reading")
}

/// The logins of every worker, over the two halves' spans (each from its
/// first login started to its last finished; the servers are read between).
fn merge_logins(halves: &[Vec<&LoginsPart>; 2]) -> LoginsReport {
    let mut latency = Samples::default();
    let mut busy_us = 0;
    for half in halves {
        for p in half {
            latency.extend(p.latency.clone());
        }
        let from = half.iter().map(|p| p.wall.0).min().unwrap_or(0);
        let to = half.iter().map(|p| p.wall.1).max().unwrap_or(0);
        busy_us += to.saturating_sub(from);
    }
    let all = || halves.iter().flatten();
    let succeeded = latency.len();
    LoginsReport {
        attempted: all().map(|p| p.attempted).sum(),
        succeeded,
        failed: all().map(|p| p.failed_users.len()).sum(),
        per_second: succeeded as f64 / (busy_us as f64 / 1e6).max(1e-6),
        latency: latency.summary(),
    }
}

/// Matches every `NLN` heard with the change it tells of: the latest
/// change of that user to that state made before it was heard. A change
/// is complete when every watcher online heard it.
fn presence_report(
    moved: &[Moved],
    heard: &[Heard],
    handles: &[String],
    watchers: &[Vec<usize>],
    up: &[bool],
) -> PresenceReport {
    // Only the movers' handles: an `NLN` of anyone else tells of no change
    // (this runs on every poll of the wait, so it stays small).
    let index: HashMap<String, usize> = moved.iter().map(|m| (handles[m.user].to_ascii_lowercase(), m.user)).collect();
    // Per user and state: the changes (time, slot in `moved`), in time order.
    let mut changes: HashMap<(usize, OnlineState), Vec<(u64, usize)>> = HashMap::new();
    for (slot, m) in moved.iter().enumerate() {
        changes.entry((m.user, m.state)).or_default().push((m.at_us, slot));
    }
    for list in changes.values_mut() {
        list.sort_unstable();
    }
    let mut heard_by = vec![0usize; moved.len()];
    let mut slowest = vec![0u64; moved.len()];
    let mut delivery = Samples::default();
    for h in heard {
        let Some(&user) = index.get(&h.handle) else { continue };
        let Some(list) = changes.get(&(user, h.state)) else { continue };
        let before = list.partition_point(|&(at, _)| at <= h.at_us);
        let Some(&(at, slot)) = before.checked_sub(1).and_then(|i| list.get(i)) else { continue };
        let took = h.at_us - at;
        heard_by[slot] += 1;
        slowest[slot] = slowest[slot].max(took);
        delivery.push(Duration::from_micros(took));
    }
    let mut fanout = Samples::default();
    for (slot, m) in moved.iter().enumerate() {
        let expected = watchers[m.user].iter().filter(|&&w| up[w]).count();
        if heard_by[slot] >= expected {
            fanout.push(Duration::from_micros(slowest[slot]));
        }
    }
    PresenceReport {
        changes: moved.len(),
        complete: fanout.len(),
        notifications: delivery.len(),
        fanout: fanout.summary(),
        delivery: delivery.summary(),
    }
}

/// The rows a cluster run adds to the table.
pub fn table_rows(report: &Report) -> Vec<(String, String)> {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut rows = Vec::new();
    for n in &report.nodes {
        let each = match n.connections {
            0 => String::new(),
            _ => format!(" ({:.2} KiB each)", n.rss_per_connection_bytes as f64 / 1024.0),
        };
        rows.push((
            format!("node {} conns / RSS", n.name),
            format!(
                "{} / {:.1} MiB{each}; CPU {:.1}/{:.1}/{:.1} s",
                n.connections,
                mib(n.rss_logged_in_bytes),
                n.cpu_seconds_logins,
                n.cpu_seconds_presence,
                n.cpu_seconds_switchboard
            ),
        ));
    }
    if let Some(bus) = &report.bus {
        rows.push((
            "bus: frames refused / messages dropped / reconnections / nodes declared silent".into(),
            format!(
                "{} / {} / {} / {}",
                bus.frames_refused, bus.messages_dropped, bus.reconnections, bus.nodes_declared_silent
            ),
        ));
        rows.push(("bus: slowest heartbeat ms".into(), bus.slowest_heartbeat_ms.to_string()));
    }
    if !report.nodes.is_empty() {
        let total: u64 = report.nodes.iter().map(|n| n.rss_logged_in_bytes).sum();
        let growth: u64 = report.nodes.iter().map(|n| n.rss_logged_in_bytes.saturating_sub(n.rss_before_bytes)).sum();
        let users = report.logins.succeeded.max(1) as f64;
        rows.push((
            "cluster RSS / growth per user".into(),
            format!("{:.1} MiB / {:.2} KiB", mib(total), growth as f64 / users / 1024.0),
        ));
    }
    for s in &report.services {
        rows.push((
            format!("{} CPU lists/logins/pres/sb", s.name),
            format!(
                "{:.1} / {:.1} / {:.1} / {:.1} s",
                s.cpu_seconds_lists, s.cpu_seconds_logins, s.cpu_seconds_presence, s.cpu_seconds_switchboard
            ),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_every_user_once() {
        let covered: Vec<usize> = (0..7).flat_map(|k| slice(100, k, 7)).collect();
        assert_eq!(covered, (0..100).collect::<Vec<_>>());
        assert_eq!(parse_worker("2/6").unwrap(), (2, 6));
        assert!(parse_worker("6/6").is_err());
    }

    #[test]
    fn a_change_is_complete_when_every_online_watcher_heard_it() {
        let handles: Vec<String> = (0..3).map(|i| format!("u{i}@example.com")).collect();
        // 0 is watched by 1 and 2; 2 is offline.
        let watchers = vec![vec![1, 2], vec![], vec![]];
        let up = vec![true, true, false];
        let moved = vec![Moved { user: 0, state: OnlineState::Away, at_us: 1_000 }];
        let heard = |at_us| Heard { handle: "u0@example.com".into(), state: OnlineState::Away, at_us };
        let report = presence_report(&moved, &[heard(4_000)], &handles, &watchers, &up);
        assert_eq!((report.changes, report.complete, report.notifications), (1, 1, 1));
        assert_eq!(report.fanout.max_ms, 3.0);
        // Heard before the change was made: not this change.
        let report = presence_report(&moved, &[heard(500)], &handles, &watchers, &up);
        assert_eq!((report.complete, report.notifications), (0, 0));
    }
}
