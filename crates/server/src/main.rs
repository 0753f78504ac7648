//! `msnd`: run the Mariposa servers, and administer accounts.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use server::Server;
use server::config::ServerConfig;
use server::server::open_backend;

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run dispatch, notification, switchboard (and HTTP) in one process.
    Serve(Box<ServeArgs>),
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent copy of the SQLite store to FILE, while msnd runs.
    /// (The server key is not in it: back DATA_DIR/server.key up apart.)
    Backup { file: PathBuf },
    /// Replace the SQLite store with a backup. msnd must be stopped.
    Restore { file: PathBuf },
    /// Drain the cluster node serving from this data dir: new users go to
    /// other nodes and its clients are moved there (the same as SIGUSR1).
    Drain,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The MSNP port: dispatch, and switchboard connections.
    #[arg(long, default_value = "0.0.0.0:1863")]
    listen: SocketAddr,
    /// The notification server's port [default: the MSNP port + 1, or any
    /// free port when the MSNP port is 0].
    #[arg(long)]
    ns_listen: Option<SocketAddr>,
    /// Plain HTTP: status, and the Passport nexus and login service for
    /// local use and tests.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Also serve the login service over plain HTTP to clients that are not
    /// on loopback. Off by default: passwords would cross the network readable.
    #[arg(long)]
    insecure_http_login: bool,
    /// HTTPS: the Passport nexus and login service for MSNP8+ clients
    /// (real clients expect port 443).
    #[arg(long)]
    https_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) for --https-listen [default: generated into DATA_DIR/tls].
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The legacy TLS listener (TLS 1.0, RSA key exchange, 3DES) for
    /// Windows XP-era clients. Off by default: these algorithms are weak.
    #[arg(long)]
    legacy_https_listen: Option<SocketAddr>,
    /// RSA certificate chain (PEM) for --legacy-https-listen [default: generated].
    #[arg(long, requires = "legacy_tls_key")]
    legacy_tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --legacy-tls-cert.
    #[arg(long, requires = "legacy_tls_cert")]
    legacy_tls_key: Option<PathBuf>,
    /// MSNP over TLS (notification and switchboard on one port, no
    /// referral) for clients that can use it, such as `msn --tls`. Uses the
    /// --tls-cert pair, or the generated one.
    #[arg(long)]
    msnp_tls_listen: Option<SocketAddr>,
    /// Refuse the MD5 dialects (MSNP2-7) entirely: only Passport logins,
    /// whose passwords travel over TLS, are served.
    #[arg(long)]
    refuse_md5: bool,
    /// What this process serves: dispatch, notification, switchboard, http,
    /// comma-separated, or all.
    #[arg(long, default_value = "all", value_parser = server::cluster::Roles::parse)]
    role: server::cluster::Roles,
    /// Join a cluster through this NATS server (nats://host:4222); needs a
    /// shared --database.
    #[arg(long)]
    nats: Option<String>,
    /// The cluster's name: nodes with the same NATS and name form one
    /// cluster.
    #[arg(long, default_value = "mariposa")]
    cluster_name: String,
    /// This node's name in the cluster [default: generated].
    #[arg(long)]
    node_id: Option<String>,
    /// Milliseconds between cluster heartbeats.
    #[arg(long, default_value_t = 1000)]
    heartbeat_ms: u64,
    /// Milliseconds of silence after which a node counts as dead and its
    /// users are shown offline.
    #[arg(long, default_value_t = 5000)]
    node_timeout_ms: u64,
    /// CHL/QRY challenges: off, lenient (send, verify, count; never
    /// disconnect) or strict (540 and disconnect).
    #[arg(long, default_value = "lenient")]
    challenges: server::config::ChallengePolicy,
    /// The host name or address that XFR and RNG advertise [default: the
    /// address the client connected to].
    #[arg(long)]
    public_host: Option<String>,
    /// Serve the notification role on the MSNP port itself instead of
    /// referring clients with XFR NS.
    #[arg(long)]
    no_referral: bool,
    /// Largest switchboard message payload in bytes; a larger one closes the
    /// connection, as the official service did.
    #[arg(long, default_value_t = 1664)]
    max_message_size: usize,
    /// Most entries on each of a user's forward, allow and block lists
    /// [default: 1000 forward, 1500 allow, 1500 block].
    #[arg(long)]
    max_list_size: Option<usize>,
    /// Seconds a switchboard cookie from XFR SB or RNG stays valid.
    #[arg(long, default_value_t = 120)]
    cookie_lifetime_secs: u64,
    /// Seconds a Passport ticket stays valid for USR ... TWN S.
    #[arg(long, default_value_t = 600)]
    ticket_lifetime_secs: u64,
    /// Seconds a client has to sign in, or to join its switchboard session.
    #[arg(long, default_value_t = 60)]
    login_timeout_secs: u64,
    /// Seconds a signed-in MSNP9+ client may stay silent (they ping every 50 s)
    /// before it is disconnected and shown offline.
    #[arg(long, default_value_t = 300)]
    idle_timeout_secs: u64,
    /// The same for MSNP2-8 clients, which ping less predictably.
    #[arg(long, default_value_t = 1800)]
    legacy_idle_timeout_secs: u64,
    /// Seconds a switchboard participant may stay silent before it is removed.
    #[arg(long, default_value_t = 600)]
    switchboard_idle_timeout_secs: u64,
    /// Most simultaneous connections from one address.
    #[arg(long, default_value_t = 256)]
    max_connections_per_address: usize,
    /// Most switchboard sessions one user may be in at once (714 beyond).
    #[arg(long, default_value_t = 32)]
    max_sessions_per_user: usize,
    /// Most offline messages waiting for one user; senders beyond it are refused.
    #[arg(long, default_value_t = 100)]
    offline_quota: usize,
    /// Most people in one switchboard session (712 beyond).
    #[arg(long, default_value_t = 20)]
    max_switchboard_participants: usize,
    /// Typed messages a user may send: BURST/PER_SECOND.
    #[arg(long, default_value = "30/5")]
    rate_messages: RateArg,
    /// Typed messages through one switchboard connection: BURST/PER_SECOND.
    #[arg(long, default_value = "20/4")]
    rate_messages_per_connection: RateArg,
    /// P2P data messages (file transfers, pictures) a user may send: BURST/PER_SECOND.
    #[arg(long, default_value = "2000/2000")]
    rate_data: RateArg,
    /// Switchboard invitations (XFR SB, CAL) a user may make: BURST/PER_SECOND.
    #[arg(long, default_value = "10/0.5")]
    rate_invitations: RateArg,
    /// List and group changes a user may make: BURST/PER_SECOND.
    #[arg(long, default_value = "100/2")]
    rate_list_changes: RateArg,
    /// State, name and personal-message changes a user may make: BURST/PER_SECOND.
    #[arg(long, default_value = "10/0.5")]
    rate_state_changes: RateArg,
    /// Refusals in a minute after which a connection is closed.
    #[arg(long, default_value_t = 30)]
    abuse_strikes: u32,
    /// Failed logins of one account (within 15 minutes) after which its
    /// logins are refused for 15 minutes; slowing starts at half this.
    #[arg(long, default_value_t = 10)]
    login_failures_per_account: u32,
    /// Failed logins from one address after which its logins are refused.
    #[arg(long, default_value_t = 30)]
    login_failures_per_address: u32,
    /// Seconds a started command may stay unfinished before the connection closes.
    #[arg(long, default_value_t = 60)]
    partial_line_timeout_secs: u64,
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

/// A rate given as `BURST/PER_SECOND`, e.g. `10/0.5`.
#[derive(Clone, Copy)]
struct RateArg(backend::limits::Rate);

impl std::str::FromStr for RateArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (burst, rate) = s.split_once('/').ok_or("expected BURST/PER_SECOND, e.g. 10/0.5")?;
        let burst: u32 = burst.parse().map_err(|_| format!("`{burst}` is not a whole number"))?;
        let rate: f64 = rate.parse().map_err(|_| format!("`{rate}` is not a number"))?;
        if burst == 0 || !(rate >= 0.0 && rate.is_finite()) {
            return Err("the burst must be at least 1 and the rate a number of zero or more".into());
        }
        Ok(RateArg(backend::limits::Rate::new(burst, rate)))
    }
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
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("MSND_LOG").unwrap_or_else(|_| "info,tokio_postgres=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
    let mut config = ServerConfig::new(cli.data_dir);
    config.database = cli.database;
    match cli.command {
        Command::Serve(args) => {
            config.listen = args.listen;
            config.ns_listen = args.ns_listen.unwrap_or_else(|| {
                let port = if args.listen.port() == 0 { 0 } else { args.listen.port().wrapping_add(1) };
                SocketAddr::new(args.listen.ip(), port)
            });
            config.http_listen = args.http_listen;
            config.https_listen = args.https_listen;
            config.insecure_http_login = args.insecure_http_login;
            config.tls_cert = args.tls_cert;
            config.tls_key = args.tls_key;
            config.challenges = args.challenges;
            config.legacy_https_listen = args.legacy_https_listen;
            config.msnp_tls_listen = args.msnp_tls_listen;
            config.roles = args.role;
            if let Some(nats_url) = args.nats {
                if config.database.is_none() {
                    bail!("a cluster node needs the shared store: give --database postgres://...");
                }
                let node_id = args.node_id.unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()));
                if !node_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    bail!("--node-id may hold letters, digits, - and _ only");
                }
                if !args.cluster_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    bail!("--cluster-name may hold letters, digits, - and _ only");
                }
                config.cluster = Some(server::cluster::ClusterSettings {
                    nats_url,
                    cluster_name: args.cluster_name,
                    node_id,
                    heartbeat: Duration::from_millis(args.heartbeat_ms.max(50)),
                    node_timeout: Duration::from_millis(args.node_timeout_ms.max(args.heartbeat_ms * 2)),
                    request_timeout: Duration::from_secs(2),
                });
            }
            if args.refuse_md5 {
                config.dialects.retain(|d| d.auth_scheme() != msnp::dialect::AuthScheme::Md5);
            }
            config.legacy_tls_cert = args.legacy_tls_cert;
            config.legacy_tls_key = args.legacy_tls_key;
            config.public_host = args.public_host;
            config.referral = !args.no_referral;
            config.max_message_size = args.max_message_size;
            if let Some(n) = args.max_list_size {
                config.backend.max_forward_list = n;
                config.backend.max_allow_list = n;
                config.backend.max_block_list = n;
            }
            config.backend.cookie_lifetime = Duration::from_secs(args.cookie_lifetime_secs);
            config.backend.ticket_lifetime = Duration::from_secs(args.ticket_lifetime_secs);
            config.login_timeout = Duration::from_secs(args.login_timeout_secs);
            config.partial_line_timeout = Duration::from_secs(args.partial_line_timeout_secs.max(1));
            config.idle_timeout = Duration::from_secs(args.idle_timeout_secs.max(1));
            config.legacy_idle_timeout = Duration::from_secs(args.legacy_idle_timeout_secs.max(1));
            config.switchboard_idle_timeout = Duration::from_secs(args.switchboard_idle_timeout_secs.max(1));
            config.max_connections_per_address = args.max_connections_per_address;
            config.backend.max_sessions_per_user = args.max_sessions_per_user.max(1);
            config.backend.offline_quota = args.offline_quota;
            config.backend.max_switchboard_participants = args.max_switchboard_participants.max(2);
            let limits = &mut config.backend.rate_limits;
            limits.messages = args.rate_messages.0;
            limits.messages_per_connection = args.rate_messages_per_connection.0;
            limits.data = args.rate_data.0;
            limits.invitations = args.rate_invitations.0;
            limits.list_changes = args.rate_list_changes.0;
            limits.state_changes = args.rate_state_changes.0;
            limits.abuse_strikes = args.abuse_strikes;
            limits.logins.refuse_after_account = args.login_failures_per_account.max(1);
            limits.logins.slow_after_account = args.login_failures_per_account / 2;
            limits.logins.refuse_after_address = args.login_failures_per_address.max(1);
            limits.logins.slow_after_address = args.login_failures_per_address / 3;
            serve(config).await
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
        Command::Drain => {
            let pid_file = config.data_dir.join("msnd.pid");
            let pid = std::fs::read_to_string(&pid_file)
                .with_context(|| format!("no running msnd here ({} is missing)", pid_file.display()))?;
            let pid = pid.trim();
            let status = std::process::Command::new("kill").args(["-USR1", pid]).status()?;
            if !status.success() {
                bail!("cannot signal msnd (pid {pid})");
            }
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
    if let Some(cluster) = running.cluster() {
        println!("msnd: node {}", cluster.node_id());
    }
    println!("msnd: ready");
    while wait_for_signal().await? == Signal::Drain {
        if running.drain() {
            tracing::info!("draining: new users go to other nodes; clients here are moved with XFR NS");
        } else {
            tracing::warn!("SIGUSR1 asks to drain, but this node is not in a cluster");
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
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<Signal> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    Ok(tokio::select! {
        _ = term.recv() => Signal::Stop,
        _ = int.recv() => Signal::Stop,
        _ = usr1.recv() => Signal::Drain,
    })
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<Signal> {
    tokio::signal::ctrl_c().await?;
    Ok(Signal::Stop)
}
