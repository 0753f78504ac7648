//! `msnd`: run the Mariposa servers, and administer accounts.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use server::Server;
use server::config::ServerConfig;
use server::open_backend;
use server::options::ServeOptions;

/// See the `jemalloc` feature in Cargo.toml.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "msnd", version, about = "The Mariposa MSN Messenger servers")]
struct Cli {
    /// Where the database and the server key live.
    #[arg(long, global = true, default_value = "./msnd-data", env = "MSND_DATA_DIR")]
    data_dir: PathBuf,
    /// The store: a postgres:// URL for a cluster's shared store [default:
    /// SQLite in the data dir].
    #[arg(long, global = true, env = "MSND_DATABASE")]
    database: Option<String>,
    /// Connections to PostgreSQL this process may open at once (all the
    /// nodes' together must stay under the server's max_connections).
    #[arg(long, global = true, env = "MSND_DATABASE_CONNECTIONS", default_value_t = 16)]
    database_connections: usize,
    /// Threads that check Argon2 passwords (Passport and SSO logins, web
    /// sign-in): they bound the login rate, and while they hash, other
    /// traffic shares the cores with them [default: one per core].
    #[arg(long, global = true, env = "MSND_PASSWORD_HASH_THREADS")]
    password_hash_threads: Option<usize>,
    /// The config file [default: DATA_DIR/msnd.toml, if it exists].
    #[arg(long, global = true, env = "MSND_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run dispatch, notification, switchboard (and HTTP) in one process.
    Serve(Box<ServeOptions>),
    /// Write a commented config file (DATA_DIR/msnd.toml, or --config).
    Init,
    /// Check the config file (and the environment and flags given here) and
    /// print the configuration in force.
    CheckConfig(Box<ServeOptions>),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent copy of the SQLite store to FILE, while msnd runs.
    /// (The server key is not in it: back DATA_DIR/server.key up apart.)
    Backup { file: PathBuf },
    /// Replace the SQLite store with a backup. msnd must be stopped.
    Restore { file: PathBuf },
    /// Log the protocol of one account (secrets masked), at run time: adds
    /// the handle to DATA_DIR/trace and tells the running msnd (SIGHUP).
    Trace {
        email: String,
        /// Stop tracing the account instead.
        #[arg(long)]
        off: bool,
    },
    /// Drain the cluster node serving from this data dir: new users go to
    /// other nodes and its clients are moved there (the same as SIGUSR1).
    Drain,
    /// Delete a stopped cluster's session directory from NATS (JetStream
    /// bucket CLUSTER_sessions), which otherwise stays there for good.
    /// Refused while a node of the cluster is heard.
    ForgetCluster {
        /// The cluster's NATS server.
        #[arg(long, env = "MSND_NATS")]
        nats: String,
        /// The cluster's name.
        #[arg(long, env = "MSND_CLUSTER_NAME", default_value = "mariposa")]
        cluster_name: String,
        /// How long to listen for the cluster's heartbeats first, in
        /// milliseconds (longer than the nodes' --heartbeat-ms).
        #[arg(long, default_value_t = 3000)]
        quiet_ms: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        email: String,
        /// The friendly name [default: the e-mail address].
        #[arg(long)]
        name: Option<String>,
        /// Read the password as one line from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account and every list entry naming it.
    Del { email: String },
    /// Change an account's password.
    Passwd {
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Create many accounts from standard input, one per line:
    /// `EMAIL<TAB>PASSWORD[<TAB>FRIENDLY NAME]`. Existing accounts are kept.
    Import,
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password given on standard input");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Again: ")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Human-readable by default; MSND_LOG_FORMAT=json for log collectors.
    // The NATS client's own connection events are left out: the cluster
    // logs them itself ("cluster: bus ...").
    let filter = tracing_subscriber::EnvFilter::try_from_env("MSND_LOG")
        .unwrap_or_else(|_| "info,tokio_postgres=warn,async_nats=warn".into());
    // A trace the operator asked for shows whatever the filter says.
    let filter = filter.add_directive("msnp::trace=info".parse().expect("a valid directive"));
    // Colours only for a person at a terminal, not in files or journald.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match std::env::var("MSND_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().init(),
        Ok("text") | Err(_) => logs.init(),
        Ok(other) => {
            logs.init();
            tracing::warn!("MSND_LOG_FORMAT={other:?} is neither text nor json; logging as text");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let data_dir = cli.data_dir.clone();
    let mut config = ServerConfig::new(cli.data_dir.clone());
    config.database = cli.database.clone();
    config.database_connections = cli.database_connections;
    if let Some(threads) = cli.password_hash_threads {
        config.backend.password_hash_workers = threads.max(1);
    }
    match cli.command {
        Command::Serve(flags) => {
            let options = layered(&flags, &cli.config, &data_dir)?;
            configure(&options, &mut config)?;
            serve(config).await
        }
        Command::Init => {
            let path = cli.config.clone().unwrap_or_else(|| data_dir.join("msnd.toml"));
            if path.exists() {
                bail!("{} exists; not overwriting it", path.display());
            }
            std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
            std::fs::write(&path, ServeOptions::template())?;
            println!("wrote {}: every option, commented out, with its default", path.display());
            Ok(())
        }
        Command::CheckConfig(flags) => {
            let options = layered(&flags, &cli.config, &data_dir)?;
            configure(&options, &mut config)?;
            println!("# the configuration in force (file, then environment and flags over the defaults)");
            print!("{}", options.to_toml());
            Ok(())
        }
        Command::Backup { file } => {
            if config.database.is_some() {
                bail!("msnd backup copies the embedded SQLite store; back PostgreSQL up with pg_dump");
            }
            let db = config.data_dir.join("mariposa.db");
            if !db.exists() {
                bail!("no store at {}", db.display());
            }
            backend::store::backup_sqlite(&db, &file)?;
            println!("backed up {} to {} (the server key is not included)", db.display(), file.display());
            Ok(())
        }
        Command::Restore { file } => {
            if config.database.is_some() {
                bail!("msnd restore replaces the embedded SQLite store; restore PostgreSQL with pg_restore");
            }
            if let Some(pid) = running_pid(&config.data_dir) {
                bail!("msnd (pid {pid}) is serving from {}: stop it first", config.data_dir.display());
            }
            backend::store::verify_sqlite(&file)
                .with_context(|| format!("{} is not a usable backup", file.display()))?;
            let db = config.data_dir.join("mariposa.db");
            let staged = config.data_dir.join("mariposa.db.restoring");
            std::fs::copy(&file, &staged)?;
            std::fs::File::open(&staged)?.sync_all()?;
            // The old write-ahead log belongs to the old database.
            for stale in ["mariposa.db-wal", "mariposa.db-shm"] {
                let _ = std::fs::remove_file(config.data_dir.join(stale));
            }
            std::fs::rename(&staged, &db)?;
            println!("restored {} from {}", db.display(), file.display());
            Ok(())
        }
        Command::Trace { email, off } => {
            let key = email.to_ascii_lowercase();
            let mut list = server::shared::read_trace_list(&data_dir);
            let changed = if off { list.remove(&key) } else { list.insert(key.clone()) };
            let mut sorted: Vec<String> = list.into_iter().collect();
            sorted.sort();
            std::fs::create_dir_all(&data_dir)?;
            let text = format!("# accounts whose protocol msnd logs (msnd trace)\n{}", sorted.join("\n") + "\n");
            std::fs::write(data_dir.join("trace"), text)?;
            // A running msnd re-reads the list; a stopped one reads it at start.
            if running_pid(&data_dir).is_some() {
                signal_running(&data_dir, "-HUP")?;
            }
            let what = if off { "no longer traced" } else { "traced (log target msnp::trace)" };
            println!("{key}: {what}{}", if changed { "" } else { " already" });
            Ok(())
        }
        Command::ForgetCluster { nats, cluster_name, quiet_ms } => {
            match server::cluster::forget(&nats, &cluster_name, Duration::from_millis(quiet_ms)).await? {
                server::cluster::Forgotten::Deleted => {
                    println!("deleted the session directory of cluster {cluster_name}")
                }
                server::cluster::Forgotten::Absent => println!("cluster {cluster_name} has no session directory"),
            }
            Ok(())
        }
        Command::Drain => {
            let pid = signal_running(&data_dir, "-USR1")?;
            println!("asked msnd (pid {pid}) to drain");
            Ok(())
        }
        Command::User(cmd) => {
            let backend = open_backend(&config).await?;
            match cmd {
                UserCommand::Add { email, name, password_stdin } => {
                    let password = read_password(password_stdin)?;
                    backend.create_account(&email, name.as_deref(), &password).await?;
                    println!("created {email}");
                }
                UserCommand::Del { email } => {
                    backend.delete_account(&email).await?;
                    println!("deleted {email}");
                }
                UserCommand::Passwd { email, password_stdin } => {
                    let password = read_password(password_stdin)?;
                    backend.set_password(&email, &password).await?;
                    println!("password changed for {email}");
                }
                UserCommand::Import => {
                    let mut accounts = Vec::new();
                    for (n, line) in std::io::stdin().lines().enumerate() {
                        let line = line?;
                        if line.trim().is_empty() || line.starts_with('#') {
                            continue;
                        }
                        let mut fields = line.splitn(3, '\t');
                        let (Some(handle), Some(password)) = (fields.next(), fields.next()) else {
                            anyhow::bail!("line {}: expected EMAIL<TAB>PASSWORD[<TAB>NAME]", n + 1);
                        };
                        accounts.push(backend::ImportedAccount {
                            handle: handle.to_string(),
                            password: password.to_string(),
                            friendly: fields.next().map(str::to_string),
                        });
                    }
                    let total = accounts.len();
                    let created = backend.import_accounts(accounts).await?;
                    println!("created {created} of {total} accounts ({} existed)", total - created);
                }
                UserCommand::List => {
                    for a in backend.list_accounts().await? {
                        let state = if a.disabled { " (disabled)" } else { "" };
                        println!("{}\t{}\t{} contacts{state}", a.handle, a.friendly, a.contacts);
                    }
                }
            }
            Ok(())
        }
    }
}

/// Applies the merged options to the server configuration, checking what
/// the types alone cannot.
fn configure(o: &ServeOptions, config: &mut ServerConfig) -> anyhow::Result<()> {
    config.listen = o.listen.unwrap();
    config.ns_listen = o.ns_listen.unwrap_or_else(|| {
        let port = if o.listen.unwrap().port() == 0 { 0 } else { o.listen.unwrap().port().wrapping_add(1) };
        SocketAddr::new(o.listen.unwrap().ip(), port)
    });
    config.http_listen = o.http_listen;
    config.https_listen = o.https_listen;
    config.insecure_http_login = o.insecure_http_login.unwrap();
    config.tls_cert = o.tls_cert.clone();
    config.tls_key = o.tls_key.clone();
    config.challenges = o.challenges.unwrap();
    config.legacy_https_listen = o.legacy_https_listen;
    config.msnp_tls_listen = o.msnp_tls_listen;
    config.xmpp_listen = o.xmpp_listen;
    config.roles = o.role.unwrap();
    if let Some(nats_url) = o.nats.clone() {
        if config.database.is_none() {
            bail!("a cluster node needs the shared store: give --database postgres://...");
        }
        let node_id = o.node_id.clone().unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()));
        if !node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            bail!("--node-id may hold letters, digits, - and _ only");
        }
        if !o
            .cluster_name
            .as_deref()
            .unwrap_or_default()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("--cluster-name may hold letters, digits, - and _ only");
        }
        config.cluster = Some(server::cluster::ClusterSettings {
            nats_url,
            cluster_name: o.cluster_name.clone().unwrap(),
            node_id,
            heartbeat: Duration::from_millis(o.heartbeat_ms.unwrap().max(50)),
            node_timeout: Duration::from_millis(o.node_timeout_ms.unwrap().max(o.heartbeat_ms.unwrap() * 2)),
            request_timeout: Duration::from_secs(2),
        });
    }
    if o.refuse_md5.unwrap() {
        config.dialects.retain(|d| d.auth_scheme() != msnp::dialect::AuthScheme::Md5);
    }
    config.legacy_tls_cert = o.legacy_tls_cert.clone();
    config.legacy_tls_key = o.legacy_tls_key.clone();
    config.public_host = o.public_host.clone();
    config.referral = !o.no_referral.unwrap();
    config.max_message_size = o.max_message_size.unwrap();
    if let Some(n) = o.max_list_size {
        config.backend.max_forward_list = n;
        config.backend.max_allow_list = n;
        config.backend.max_block_list = n;
    }
    config.backend.cookie_lifetime = Duration::from_secs(o.cookie_lifetime_secs.unwrap());
    config.backend.ticket_lifetime = Duration::from_secs(o.ticket_lifetime_secs.unwrap());
    config.login_timeout = Duration::from_secs(o.login_timeout_secs.unwrap());
    config.partial_line_timeout = Duration::from_secs(o.partial_line_timeout_secs.unwrap().max(1));
    config.idle_timeout = Duration::from_secs(o.idle_timeout_secs.unwrap().max(1));
    config.legacy_idle_timeout = Duration::from_secs(o.legacy_idle_timeout_secs.unwrap().max(1));
    config.switchboard_idle_timeout = Duration::from_secs(o.switchboard_idle_timeout_secs.unwrap().max(1));
    config.gateway_idle_timeout = Duration::from_secs(o.gateway_idle_timeout_secs.unwrap().max(1));
    config.max_connections_per_address = o.max_connections_per_address.unwrap();
    config.backend.max_sessions_per_user = o.max_sessions_per_user.unwrap().max(1);
    config.backend.max_endpoints_per_account = o.max_endpoints_per_account.unwrap().max(1);
    config.backend.max_circles_per_account = o.max_circles_per_account.unwrap();
    config.backend.max_circle_members = o.max_circle_members.unwrap().max(2);
    config.backend.offline_quota = o.offline_quota.unwrap();
    config.backend.max_switchboard_participants = o.max_switchboard_participants.unwrap().max(2);
    let limits = &mut config.backend.rate_limits;
    limits.messages = o.rate_messages.unwrap().0;
    limits.messages_per_connection = o.rate_messages_per_connection.unwrap().0;
    limits.data = o.rate_data.unwrap().0;
    limits.invitations = o.rate_invitations.unwrap().0;
    limits.list_changes = o.rate_list_changes.unwrap().0;
    limits.state_changes = o.rate_state_changes.unwrap().0;
    limits.offline_messages = o.rate_offline_messages.unwrap().0;
    limits.sign_ups = o.rate_sign_ups.unwrap().0;
    limits.abuse_strikes = o.abuse_strikes.unwrap();
    limits.logins.refuse_after_account = o.login_failures_per_account.unwrap().max(1);
    limits.logins.slow_after_account = o.login_failures_per_account.unwrap() / 2;
    limits.logins.refuse_after_address = o.login_failures_per_address.unwrap().max(1);
    limits.logins.slow_after_address = o.login_failures_per_address.unwrap() / 3;
    limits.logins.in_flight_per_address = o.logins_in_flight_per_address.unwrap().max(2);
    config.registration = o.registration.unwrap();
    config.invite_code = o.invite_code.clone().filter(|c| !c.is_empty());
    if config.registration == server::config::Registration::Invite && config.invite_code.is_none() {
        bail!("registration = \"invite\" needs an invite_code");
    }
    config.operators = o.operators.clone().unwrap_or_default().iter().map(|h| h.to_ascii_lowercase()).collect();
    if o.tls_cert.is_some() != o.tls_key.is_some() {
        bail!("tls_cert and tls_key go together");
    }
    if o.legacy_tls_cert.is_some() != o.legacy_tls_key.is_some() {
        bail!("legacy_tls_cert and legacy_tls_key go together");
    }
    Ok(())
}

/// The options in force: flags and environment over the config file over
/// the defaults. The file is `--config`, else `DATA_DIR/msnd.toml` if it
/// exists.
fn layered(flags: &ServeOptions, given: &Option<PathBuf>, data_dir: &std::path::Path) -> anyhow::Result<ServeOptions> {
    let path = given.clone().unwrap_or_else(|| data_dir.join("msnd.toml"));
    let file = match std::fs::read_to_string(&path) {
        Ok(text) => ServeOptions::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && given.is_none() => ServeOptions::default(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    Ok(flags.over(&file.over(&ServeOptions::defaults())))
}

/// Sends `signal` (as `kill` spells it) to the msnd serving from `data_dir`.
fn signal_running(data_dir: &std::path::Path, signal: &str) -> anyhow::Result<u32> {
    let Some(pid) = running_pid(data_dir) else {
        bail!("no msnd is serving from {}", data_dir.display());
    };
    if !std::process::Command::new("kill").args([signal, &pid.to_string()]).status()?.success() {
        bail!("cannot signal msnd (pid {pid})");
    }
    Ok(pid)
}

/// The pid of an msnd serving from `data_dir`, if one is running.
fn running_pid(data_dir: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(data_dir.join("msnd.pid")).ok()?.trim().parse().ok()?;
    // A pid file left by a killed msnd may name a process that is not ours.
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (name.trim() == "msnd").then_some(pid)
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let pid_file = config.data_dir.join("msnd.pid");
    let running = Server::start(config).await?;
    // For `msnd drain`: the process to signal.
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("cannot write {}", pid_file.display()))?;
    // Machine-readable lines on stdout: tests and scripts read the ports here.
    println!("msnd: dispatch and switchboard listening on {}", running.dispatch_addr);
    println!("msnd: notification listening on {}", running.ns_addr);
    if let Some(http) = running.http_addr {
        println!("msnd: http listening on {http}");
    }
    if let Some(https) = running.https_addr {
        println!("msnd: https listening on {https}");
    }
    if let Some(legacy) = running.legacy_https_addr {
        println!("msnd: legacy-https listening on {legacy}");
    }
    if let Some(addr) = running.msnp_tls_addr {
        println!("msnd: msnp-tls listening on {addr}");
    }
    if let Some(addr) = running.xmpp_addr {
        println!("msnd: xmpp listening on {addr}");
    }
    if let Some(cluster) = running.cluster() {
        println!("msnd: node {}", cluster.node_id());
    }
    // Listening before saying ready: a supervisor (or a test) that signals
    // the moment it reads "ready" must not meet the default action, which
    // kills without the OUT SSD goodbye.
    let mut signals = Signals::listen()?;
    println!("msnd: ready");
    loop {
        match signals.next().await {
            Signal::Stop => break,
            Signal::Drain if running.drain() => {
                tracing::info!("draining: new users go to other nodes; clients here are moved with XFR NS")
            }
            Signal::Drain => tracing::warn!("SIGUSR1 asks to drain, but this node is not in a cluster"),
            Signal::Reload => {
                let n = running.reload_trace_list();
                tracing::info!("tracing the protocol of {n} account(s)");
            }
        }
    }
    tracing::info!("shutting down: telling every client OUT SSD");
    running.shutdown().await;
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}

/// What a signal asks for.
#[derive(PartialEq, Eq)]
enum Signal {
    /// SIGTERM, SIGINT: stop.
    Stop,
    /// SIGUSR1 (`msnd drain`): move this node's users elsewhere.
    Drain,
    /// SIGHUP (`msnd trace`): re-read the list of traced accounts.
    Reload,
}

/// The signals `serve` answers, listened for from start to end, so that
/// none is missed between two waits.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.usr1.recv() => Signal::Drain,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn listen() -> anyhow::Result<Signals> {
        Ok(Signals)
    }

    async fn next(&mut self) -> Signal {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Stop
    }
}
