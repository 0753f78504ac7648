//! Starting an `msnd` of our own: a data dir, the accounts, and limits
//! opened wide enough that flood control does not shape the measurement.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// A running `msnd` started by the load tool; stopped when dropped.
pub struct Launched {
    pub child: Child,
    /// The dispatch address (`host:port`).
    pub dispatch: String,
    /// The plain-HTTP Passport nexus.
    pub nexus: String,
    /// Where its plain HTTP is served (`host:port`), if it serves HTTP.
    pub http: Option<String>,
    /// The XMPP listener (`host:port`), always started.
    pub xmpp: Option<String>,
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where `msnd` is: beside this executable (both are built into the same
/// target directory), else on `PATH`.
pub fn find_msnd() -> PathBuf {
    let beside = std::env::current_exe().ok().and_then(|exe| {
        let dir = exe.parent()?;
        // Test binaries live one level down, in `deps/`.
        [dir.join("msnd"), dir.parent()?.join("msnd")].into_iter().find(|p| p.exists())
    });
    beside.unwrap_or_else(|| PathBuf::from("msnd"))
}

/// Creates the accounts `PREFIX0@example.com`.. (`msnd user import`; the
/// ones that exist are kept).
pub fn import_accounts(msnd: &Path, data_dir: &Path, users: usize, prefix: &str, password: &str) -> anyhow::Result<()> {
    import_into(msnd, data_dir, &[], (users, prefix, password))
}

/// `msnd [global options] user import` of the numbered accounts.
fn import_into(
    msnd: &Path,
    data_dir: &Path,
    global: &[&str],
    (users, prefix, password): (usize, &str, &str),
) -> anyhow::Result<()> {
    let mut child = Command::new(msnd)
        .arg("--data-dir")
        .arg(data_dir)
        .args(global)
        .args(["user", "import"])
        .env("MSND_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", msnd.display()))?;
    {
        let mut stdin = std::io::BufWriter::new(child.stdin.take().context("stdin")?);
        for i in 0..users {
            writeln!(stdin, "{}\t{password}", handle(prefix, i))?;
        }
    }
    if !child.wait()?.success() {
        bail!("msnd user import failed");
    }
    Ok(())
}

/// The lists in a data dir are made once, for one social graph; a run with
/// another graph would expect watchers the lists do not have. The graph's
/// parameters are written beside the data the first time and must match
/// afterwards.
pub fn check_graph(data_dir: &Path, users: usize, contacts: usize, mutual: f64, prefix: &str) -> anyhow::Result<()> {
    let path = data_dir.join("msn-load-graph");
    let wanted = format!("users={users} contacts={contacts} mutual={mutual} prefix={prefix}\n");
    match std::fs::read_to_string(&path) {
        Ok(made) if made == wanted => Ok(()),
        Ok(made) => bail!(
            "{} holds lists made for `{}`, not `{}`: use another --data-dir",
            data_dir.display(),
            made.trim(),
            wanted.trim()
        ),
        Err(_) => std::fs::write(&path, wanted).with_context(|| format!("writing {}", path.display())),
    }
}

/// Whether a data dir's lists are made (`Some(true)`), were begun and not
/// finished (`Some(false)`: an interrupted run, resumed), or it does not
/// say (a data dir of an older msn-load, or a new one).
pub fn lists_made(data_dir: &Path) -> Option<bool> {
    match std::fs::read_to_string(data_dir.join("msn-load-lists")).ok()?.trim() {
        "made" => Some(true),
        _ => Some(false),
    }
}

/// Notes how far the lists of a data dir are.
pub fn note_lists(data_dir: &Path, made: bool) -> anyhow::Result<()> {
    let path = data_dir.join("msn-load-lists");
    std::fs::write(&path, if made { "made\n" } else { "making\n" })
        .with_context(|| format!("writing {}", path.display()))
}

/// The handle of user `i`.
pub fn handle(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}@example.com")
}

/// Starts `msnd serve` on loopback ports of its choosing; with `open_limits`,
/// flood control and per-address limits are opened wide (every simulated
/// user comes from 127.0.0.1, and the point is to measure the server, not
/// its rate limits).
pub fn serve(msnd: &Path, data_dir: &Path, open_limits: bool) -> anyhow::Result<Launched> {
    start(msnd, data_dir, &[], &SERVE_ARGS, open_limits)
}

/// What [`serve`] listens on, all on loopback ports of msnd's choosing.
const SERVE_ARGS: [&str; 6] =
    ["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--xmpp-listen", "127.0.0.1:0"];

/// [`serve`], with the login service over HTTPS as well: the nexus (still
/// at plain HTTP) then names the HTTPS login, whose certificate is signed
/// by the data dir's `tls/ca.pem`, as a deployment's would be by a public CA.
pub fn serve_with_https(msnd: &Path, data_dir: &Path, open_limits: bool) -> anyhow::Result<Launched> {
    let args = [&SERVE_ARGS[..], &["--https-listen", "127.0.0.1:0"]].concat();
    start(msnd, data_dir, &[], &args, open_limits)
}

/// The limits opened wide for a load tool on one address.
fn wide_limits() -> Vec<&'static str> {
    let wide = "1000000000/1000000000";
    let mut args = vec!["--max-connections-per-address", "10000000", "--login-failures-per-address", "1000000000"];
    args.extend(["--logins-in-flight-per-address", "1000000"]);
    args.extend(["--rate-messages", wide, "--rate-messages-per-connection", wide, "--rate-invitations", wide]);
    args.extend(["--rate-list-changes", wide, "--rate-state-changes", wide]);
    args
}

/// Starts `msnd` (global options, then `serve` and its options) and waits
/// for `msnd: ready`, reading the addresses it prints.
fn start(msnd: &Path, data_dir: &Path, global: &[&str], serve: &[&str], open_limits: bool) -> anyhow::Result<Launched> {
    let mut command = Command::new(msnd);
    command.arg("--data-dir").arg(data_dir).args(global).arg("serve").args(serve);
    if open_limits {
        command.args(wide_limits());
    }
    let mut child = command
        .env("MSND_LOG", std::env::var("MSND_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", msnd.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut dispatch, mut http, mut xmpp) = (None, None, None);
    for line in lines.by_ref() {
        let line = line?;
        let addr = line.rsplit(' ').next().unwrap_or("").to_string();
        if line.starts_with("msnd: dispatch") {
            dispatch = Some(addr);
        } else if line.starts_with("msnd: http listening") {
            http = Some(addr);
        } else if line.starts_with("msnd: xmpp listening") {
            xmpp = Some(addr);
        } else if line == "msnd: ready" {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let Some(dispatch) = dispatch else {
        let _ = child.kill();
        bail!("msnd did not print its addresses")
    };
    let nexus = http.as_ref().map(|h| format!("http://{h}/rdr/pprdr.asp")).unwrap_or_default();
    if nexus.is_empty() && serve.contains(&"--http-listen") {
        let _ = child.kill();
        bail!("msnd did not print its HTTP address")
    }
    Ok(Launched { child, dispatch, nexus, http, xmpp })
}

/// The shared store and bus of a cluster started on this machine.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// `postgres://...` (a schema of its own is best: `options=-c search_path=...`).
    pub database: String,
    pub nats: String,
    /// Prefixes the bus subjects, so runs do not hear one another.
    pub name: String,
    pub notification_nodes: usize,
    pub switchboard_nodes: usize,
    /// PostgreSQL connections for all the nodes together (under its
    /// `max_connections`, 100 by default, with room for others).
    pub database_connections: usize,
}

/// A cluster of `msnd` processes on loopback, as docs/DEPLOYMENT.md lays it
/// out: one dispatch and Passport node, notification nodes, switchboard
/// nodes. Stopped when dropped.
pub struct LaunchedCluster {
    /// `dispatch,http` first, then the notification nodes, then the switchboards.
    pub nodes: Vec<(String, Launched)>,
    /// The bus and the cluster's name there, to clear up after.
    nats: String,
    name: String,
    msnd: PathBuf,
}

/// Stops the nodes, then removes the cluster's session directory from
/// JetStream: each run names a cluster of its own, and its directory would
/// otherwise stay in the operator's NATS for good.
impl Drop for LaunchedCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        // Best effort: `msnd forget-cluster` listens 1.5 s for heartbeats
        // (the nodes beat every second) and gives up on NATS after 5 s.
        let _ = Command::new(&self.msnd)
            .args(["forget-cluster", "--nats", &self.nats, "--cluster-name", &self.name, "--quiet-ms", "1500"])
            .env("MSND_LOG", "warn")
            .stdout(Stdio::null())
            .status();
    }
}

impl LaunchedCluster {
    pub fn dispatch(&self) -> &Launched {
        &self.nodes[0].1
    }

    /// Every node's name and process id.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.nodes.iter().map(|(name, l)| (name.clone(), l.child.id())).collect()
    }
}

/// The global options that put an `msnd` command on the plan's store.
fn store_args(plan: &ClusterPlan) -> [&str; 2] {
    ["--database", &plan.database]
}

/// Creates the accounts in the cluster's shared store (the server key is
/// made in `key_dir` the first time).
pub fn import_cluster_accounts(
    msnd: &Path,
    key_dir: &Path,
    plan: &ClusterPlan,
    accounts: (usize, &str, &str),
) -> anyhow::Result<()> {
    import_into(msnd, key_dir, &store_args(plan), accounts)
}

/// Starts the nodes, each in a data dir of its own under `dir` with the
/// server key of `dir/key`, and waits until the dispatch node (started
/// last) is ready, which is once it has heard every node's heartbeat.
pub fn serve_cluster(msnd: &Path, dir: &Path, plan: &ClusterPlan) -> anyhow::Result<LaunchedCluster> {
    let key = dir.join("key").join("server.key");
    anyhow::ensure!(key.exists(), "{} is missing: import the accounts first", key.display());
    let mut names: Vec<(String, &str)> = Vec::new();
    names.extend((1..=plan.notification_nodes).map(|n| (format!("ns{n}"), "notification")));
    names.extend((1..=plan.switchboard_nodes).map(|n| (format!("sb{n}"), "switchboard")));
    names.push(("ds".to_string(), "dispatch,http"));
    let mut nodes = Vec::new();
    for (name, role) in names {
        let node_dir = dir.join(&name);
        std::fs::create_dir_all(&node_dir)?;
        let target = node_dir.join("server.key");
        std::fs::copy(&key, &target)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600))?;
        }
        let mut serve = vec!["--role", role, "--listen", "127.0.0.1:0", "--ns-listen", "127.0.0.1:0"];
        serve.extend(["--nats", &plan.nats, "--cluster-name", &plan.name, "--node-id", &name]);
        if role.contains("http") {
            serve.extend(["--http-listen", "127.0.0.1:0"]);
        }
        let every = plan.notification_nodes + plan.switchboard_nodes + 1;
        let share = (plan.database_connections / every).max(2).to_string();
        let global = [store_args(plan).as_slice(), &["--database-connections", &share]].concat();
        let launched =
            start(msnd, &node_dir, &global, &serve, true).with_context(|| format!("starting node {name}"))?;
        nodes.push((name, launched));
    }
    // The dispatch node first in the list.
    nodes.rotate_right(1);
    Ok(LaunchedCluster { nodes, nats: plan.nats.clone(), name: plan.name.clone(), msnd: msnd.to_path_buf() })
}
