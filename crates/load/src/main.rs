//! `msn-load`: see the library's documentation for the phases.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use load::link::Target;
use load::{BackgroundLogins, Config, launch};
use msnp::Dialect;

/// Drives an msnd with simulated users and reports logins/s, presence
/// fan-out, switchboard latency and throughput, and the server's memory and CPU.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// A running server's dispatch address; without it, msn-load starts an
    /// msnd of its own on loopback (accounts created with `msnd user import`).
    #[arg(long)]
    server: Option<String>,
    /// The Passport nexus of --server, for --dialect 8 and up (the RST and
    /// address book services are found beside it).
    #[arg(long)]
    login_url: Option<String>,
    /// A CA certificate (PEM) to trust for --login-url's HTTPS services,
    /// besides the public roots (a test server's own certificate).
    #[arg(long)]
    trust_ca: Option<PathBuf>,
    /// The running server's process id, to report its RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The msnd binary to start [default: beside msn-load, else on PATH].
    #[arg(long)]
    msnd: Option<PathBuf>,
    /// The data dir of the started msnd; kept between runs so the accounts
    /// and lists are made once [default: a temporary directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Simulated users.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// The protocol version: 2 (MD5 login), 8 to 12 (Passport), 13 to 18
    /// (lists from the address book; single sign-on from 15).
    #[arg(long, default_value_t = 2)]
    dialect: u8,
    /// Numbered accounts `<prefix><n>@example.com`, all with --password
    /// (what the started msnd is given).
    #[arg(long, default_value = "load")]
    prefix: String,
    #[arg(long, default_value = "load-password")]
    password: String,
    /// Any server's accounts instead: a file of `handle password` lines
    /// (with --server: nothing is imported). --users defaults to their count.
    #[arg(long)]
    accounts: Option<PathBuf>,
    /// Contacts per user.
    #[arg(long, default_value_t = 10)]
    contacts: usize,
    /// The fraction of contacts that have each other.
    #[arg(long, default_value_t = 0.6)]
    mutual: f64,
    /// Logins started per second.
    #[arg(long, default_value_t = 5000.0)]
    login_rate: f64,
    /// Logins in flight at once.
    #[arg(long, default_value_t = 512)]
    login_concurrency: usize,
    /// Before the users stay online: sign users in and straight out again
    /// at --login-rate for this many seconds (sustained logins).
    #[arg(long, default_value_t = 0.0)]
    churn_secs: f64,
    /// While presence and messages are measured, other accounts (`bgN`)
    /// sign in and out at this rate (zero: none), in --background-dialect.
    #[arg(long, default_value_t = 0.0)]
    background_login_rate: f64,
    #[arg(long, default_value_t = 11)]
    background_dialect: u8,
    /// How many `bgN` accounts take turns in the background logins.
    #[arg(long, default_value_t = 200)]
    background_users: usize,
    /// State changes per second.
    #[arg(long, default_value_t = 100.0)]
    presence_rate: f64,
    #[arg(long, default_value_t = 5.0)]
    presence_secs: f64,
    /// Two-party switchboard sessions.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Messages per second across all sessions.
    #[arg(long, default_value_t = 1000.0)]
    message_rate: f64,
    #[arg(long, default_value_t = 5.0)]
    message_secs: f64,
    /// Bytes of each message's payload.
    #[arg(long, default_value_t = 150)]
    message_size: usize,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seconds to wait for any one reply.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Simulated Jabber users instead (STARTTLS, PLAIN, bind; then pairs
    /// message each other): against the started msnd's XMPP front, or the
    /// XMPP server at --server (Prosody, say, for comparison). The
    /// --users, --login-rate, --contacts (subscriptions each), --presence-*,
    /// --sessions (pairs) and --message-* options apply.
    #[arg(long)]
    xmpp: bool,
    /// The domain of the Jabber users' JIDs (`<prefix><n>@<domain>`).
    #[arg(long, default_value = "example.com")]
    xmpp_domain: String,
    /// Every connection through the server's HTTP polling gateway (at the
    /// nexus's host: the started msnd's, or --login-url's).
    #[arg(long)]
    through_gateway: bool,
    /// Drive the users from this many msn-load processes (each under its
    /// own open-file limit), with one report.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// (Internal) one of --workers: its share K of N, steps on stdin.
    #[arg(long, hide = true)]
    worker: Option<String>,
    /// Start a cluster instead of one msnd: this many notification nodes,
    /// beside one dispatch-and-Passport node (needs --database and NATS).
    #[arg(long, default_value_t = 0)]
    notification_nodes: usize,
    /// The started cluster's switchboard nodes.
    #[arg(long, default_value_t = 2)]
    switchboard_nodes: usize,
    /// The started cluster's shared store (`postgres://...`).
    #[arg(long)]
    database: Option<String>,
    /// PostgreSQL connections the started cluster's nodes share.
    #[arg(long, default_value_t = 80)]
    database_connections: usize,
    /// The started cluster's bus.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    let listed = args.accounts.as_deref().map(load::Accounts::read).transpose()?;
    if let Some(n) = listed.as_ref().and_then(load::Accounts::listed) {
        anyhow::ensure!(args.server.is_some(), "--accounts is for a running server: give --server too");
        if !std::env::args().any(|a| a == "--users" || a.starts_with("--users=")) {
            args.users = n;
        }
        anyhow::ensure!(args.users <= n, "--users {} but {n} accounts are listed", args.users);
    }
    let accounts = listed.unwrap_or_else(|| load::Accounts::numbered(&args.prefix, &args.password));
    if args.xmpp {
        return xmpp_main(&args, accounts);
    }
    let dialect = dialect_numbered(args.dialect, "--dialect")?;
    let background_dialect = dialect_numbered(args.background_dialect, "--background-dialect")?;
    if args.workers > 1 || args.notification_nodes > 0 {
        anyhow::ensure!(
            args.churn_secs == 0.0 && args.background_login_rate == 0.0 && !args.through_gateway,
            "--workers and clusters measure held users: no --churn-secs, --background-login-rate or --through-gateway"
        );
    }
    let temp;
    let mut launched = None;
    let mut cluster = None;
    // The data dir of a server started here, which remembers its lists.
    let mut data_dir = None;
    let (server, login_url, pid) = match &args.server {
        Some(s) => (s.clone(), args.login_url.clone(), args.server_pid),
        None if args.notification_nodes > 0 => {
            let msnd = args.msnd.clone().unwrap_or_else(launch::find_msnd);
            let database = args.database.clone().context("a cluster needs --database postgres://...")?;
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => tempdir()?,
            };
            std::fs::create_dir_all(dir.join("key"))?;
            launch::check_graph(&dir, args.users, args.contacts, args.mutual, &args.prefix)?;
            data_dir = Some(dir.clone());
            let plan = launch::ClusterPlan {
                database,
                nats: args.nats.clone(),
                name: format!("load{}", std::process::id()),
                notification_nodes: args.notification_nodes,
                switchboard_nodes: args.switchboard_nodes,
                database_connections: args.database_connections,
            };
            eprintln!("msn-load: creating {} accounts in the cluster's store", args.users);
            launch::import_cluster_accounts(
                &msnd,
                &dir.join("key"),
                &plan,
                (args.users, &args.prefix, &args.password),
            )?;
            eprintln!(
                "msn-load: starting {} notification and {} switchboard nodes",
                plan.notification_nodes, plan.switchboard_nodes
            );
            let c = launch::serve_cluster(&msnd, &dir, &plan)?;
            let found = (c.dispatch().dispatch.clone(), Some(c.dispatch().nexus.clone()), None);
            cluster = Some(c);
            found
        }
        None => {
            let msnd = args.msnd.clone().unwrap_or_else(launch::find_msnd);
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => {
                    temp = tempdir()?;
                    temp.clone()
                }
            };
            std::fs::create_dir_all(&dir)?;
            launch::check_graph(&dir, args.users, args.contacts, args.mutual, &args.prefix)?;
            data_dir = Some(dir.clone());
            eprintln!("msn-load: creating {} accounts in {}", args.users, dir.display());
            launch::import_accounts(&msnd, &dir, args.users, &args.prefix, &args.password)?;
            if args.background_login_rate > 0.0 {
                launch::import_accounts(&msnd, &dir, args.background_users, "bg", &args.password)?;
            }
            let l = launch::serve(&msnd, &dir, true)?;
            let found = (l.dispatch.clone(), Some(l.nexus.clone()), Some(l.child.id()));
            launched = Some(l);
            found
        }
    };
    let config = Config {
        target: Target {
            server,
            dialect,
            gateway: match (args.through_gateway, login_url.as_deref().and_then(client::http::origin)) {
                (false, _) => None,
                (true, Some(origin)) => Some(origin.to_string()),
                (true, None) => anyhow::bail!("--through-gateway needs --login-url to find the gateway"),
            },
            login_url,
            trust_ca: args.trust_ca.clone(),
            timeout: Duration::from_secs(args.timeout_secs),
        },
        users: args.users,
        accounts,
        contacts: args.contacts,
        mutual: args.mutual,
        login_rate: args.login_rate,
        login_concurrency: args.login_concurrency,
        churn_duration: Duration::from_secs_f64(args.churn_secs),
        background: (args.background_login_rate > 0.0).then(|| BackgroundLogins {
            dialect: background_dialect,
            prefix: "bg".into(),
            password: args.password.clone(),
            users: args.background_users,
            rate: args.background_login_rate,
        }),
        presence_rate: args.presence_rate,
        presence_duration: Duration::from_secs_f64(args.presence_secs),
        sessions: args.sessions,
        message_rate: args.message_rate,
        message_duration: Duration::from_secs_f64(args.message_secs),
        message_size: args.message_size,
        server_pid: pid,
        lists_made: data_dir.as_deref().and_then(launch::lists_made),
    };
    if let (Some(dir), false) = (&data_dir, config.lists_made == Some(true)) {
        launch::note_lists(dir, false)?;
    }
    // The lists are made once every user's changes went through.
    let lists_done = |report: &load::Report| -> anyhow::Result<()> {
        match &data_dir {
            Some(dir) if !report.problems.iter().any(|p| p.starts_with("making the lists")) => {
                launch::note_lists(dir, true)
            }
            _ => Ok(()),
        }
    };
    if let Some(spec) = &args.worker {
        let (k, n) = load::workers::parse_worker(spec)?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return runtime.block_on(load::workers::serve_worker(config, k, n));
    }
    if args.workers > 1 || cluster.is_some() {
        let mut watched = load::workers::Watched::default();
        match &cluster {
            Some(c) => {
                watched.nodes = c.pids();
                watched.status = c.dispatch().http.as_ref().map(|h| format!("http://{h}/status.json"));
                for name in ["postgres", "nats-server"] {
                    watched.services.push((name.to_string(), load::process::named(name)));
                }
            }
            None => watched.nodes = pid.map(|p| vec![("msnd".to_string(), p)]).unwrap_or_default(),
        }
        let exe = std::env::current_exe()?;
        let report =
            load::workers::coordinate(&config, (&exe, &worker_args(&args, &config)), args.workers.max(1), &watched)?;
        lists_done(&report)?;
        drop(cluster);
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        return finish(&args, (report.table(), report.success, &report), launched, runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(load::run(&config))?;
    lists_done(&report)?;
    finish(&args, (report.table(), report.success, &report), launched, runtime)
}

/// What a worker is started with: the server found or started here, and
/// the whole run's users and rates (it takes its own share).
fn worker_args(args: &Args, config: &Config) -> Vec<String> {
    let mut w: Vec<String> = vec!["--server".into(), config.target.server.clone()];
    if let Some(url) = &config.target.login_url {
        w.extend(["--login-url".into(), url.clone()]);
    }
    if let Some(ca) = &config.target.trust_ca {
        w.extend(["--trust-ca".into(), ca.display().to_string()]);
    }
    if let Some(file) = &args.accounts {
        w.extend(["--accounts".into(), file.display().to_string()]);
    }
    let numbers = [
        ("--users", args.users.to_string()),
        ("--dialect", args.dialect.to_string()),
        ("--prefix", args.prefix.clone()),
        ("--password", args.password.clone()),
        ("--contacts", args.contacts.to_string()),
        ("--mutual", args.mutual.to_string()),
        ("--login-rate", args.login_rate.to_string()),
        ("--login-concurrency", args.login_concurrency.to_string()),
        ("--presence-rate", args.presence_rate.to_string()),
        ("--presence-secs", args.presence_secs.to_string()),
        ("--sessions", args.sessions.to_string()),
        ("--message-rate", args.message_rate.to_string()),
        ("--message-secs", args.message_secs.to_string()),
        ("--message-size", args.message_size.to_string()),
        ("--timeout-secs", args.timeout_secs.to_string()),
    ];
    for (flag, value) in numbers {
        w.extend([flag.to_string(), value]);
    }
    w
}

/// Prints the report (and writes it as JSON when asked), stops the started
/// msnd, and exits with failure when the run was not a success.
fn finish(
    args: &Args,
    (table, success, report): (String, bool, &impl serde::Serialize),
    launched: Option<launch::Launched>,
    runtime: tokio::runtime::Runtime,
) -> anyhow::Result<()> {
    print!("{table}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    }
    drop(launched);
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !success {
        std::process::exit(1);
    }
    Ok(())
}

/// The dialect a flag names by its number.
fn dialect_numbered(number: u8, flag: &str) -> anyhow::Result<Dialect> {
    // Every phase but presence goes through switchboards, which MSNP21 has not.
    Dialect::ALL
        .into_iter()
        .find(|d| d.number() == number && d.has_switchboard())
        .with_context(|| format!("{flag}: 2 to 18"))
}

/// A fresh directory under the system temp dir (removed by the OS, not us:
/// the data is handy for a second look after a run).
fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("msn-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `--xmpp`: Jabber users against msnd's XMPP front (started here) or
/// another XMPP server (`--server`, with `--server-pid` for its memory).
fn xmpp_main(args: &Args, accounts: load::Accounts) -> anyhow::Result<()> {
    // Stops the started msnd when dropped, at the end.
    let mut launched = None;
    let (server, pid) = match &args.server {
        Some(s) => (s.clone(), args.server_pid),
        None => {
            let msnd = args.msnd.clone().unwrap_or_else(launch::find_msnd);
            let dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => tempdir()?,
            };
            std::fs::create_dir_all(&dir)?;
            eprintln!("msn-load: creating {} accounts in {}", args.users, dir.display());
            launch::import_accounts(&msnd, &dir, args.users, &args.prefix, &args.password)?;
            let l = launch::serve(&msnd, &dir, true)?;
            let found = (l.xmpp.clone().context("msnd did not print its XMPP address")?, Some(l.child.id()));
            launched = Some(l);
            found
        }
    };
    let config = load::xmpp::XmppConfig {
        server,
        domain: args.xmpp_domain.clone(),
        users: args.users,
        accounts: accounts.in_domain(&args.xmpp_domain),
        login_rate: args.login_rate,
        login_concurrency: args.login_concurrency,
        contacts: args.contacts,
        presence_rate: args.presence_rate,
        presence_duration: Duration::from_secs_f64(args.presence_secs),
        pairs: args.sessions,
        message_rate: args.message_rate,
        message_duration: Duration::from_secs_f64(args.message_secs),
        message_size: args.message_size,
        server_pid: pid,
        timeout: Duration::from_secs(args.timeout_secs),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(load::xmpp::run(&config))?;
    finish(args, (report.table(), report.success, &report), launched, runtime)
}
