//! Server settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use backend::BackendConfig;
use msnp::Dialect;

/// Everything `msnd serve` needs to know.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// The MSNP port: dispatch, and switchboard connections (which start with
    /// `USR` or `ANS`, never `VER`).
    pub listen: SocketAddr,
    /// The notification server's own port, where dispatch refers clients.
    pub ns_listen: SocketAddr,
    /// The HTTP side, if any: status, and the Passport nexus and login
    /// service in plain HTTP (for local use and tests).
    pub http_listen: Option<SocketAddr>,
    /// Serve the login service over plain HTTP to clients that are not on
    /// loopback too (passwords then cross the network readable).
    pub insecure_http_login: bool,
    /// The Passport nexus and login service over TLS.
    pub https_listen: Option<SocketAddr>,
    /// The certificate chain and key for `https_listen`; generated into the
    /// data dir when absent.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The legacy TLS listener (TLS 1.0, RSA, 3DES) for Windows XP-era
    /// clients; off unless set. Needs the `legacy-tls` build feature.
    pub legacy_https_listen: Option<SocketAddr>,
    /// An RSA certificate chain and key for the legacy listener; generated
    /// into the data dir when absent.
    pub legacy_tls_cert: Option<PathBuf>,
    pub legacy_tls_key: Option<PathBuf>,
    /// MSNP over TLS, for clients that can wrap the protocol in TLS (ours,
    /// or any behind a local TLS tunnel): notification and switchboard on
    /// one port, without referral. Uses the `tls_cert`/`tls_key` pair.
    pub msnp_tls_listen: Option<SocketAddr>,
    /// XMPP client connections (the XMPP front), when given.
    pub xmpp_listen: Option<SocketAddr>,
    /// The host name or address put in `XFR` and `RNG`. By default, the
    /// address the client reached us on.
    pub public_host: Option<String>,
    /// Whether the dispatch port refers clients to the notification port with
    /// `XFR NS` (the draft's flow, which some clients require) or serves them
    /// as a notification server itself.
    pub referral: bool,
    /// The dialects this server speaks.
    pub dialects: Vec<Dialect>,
    /// Largest switchboard `MSG` payload; larger ones close the connection
    /// as the official service did.
    pub max_message_size: usize,
    /// Longest command line.
    pub max_line: usize,
    /// Time a client has to finish signing in (or to open its switchboard
    /// session) before it is disconnected.
    pub login_timeout: Duration,
    /// Time a started command line may stay unfinished.
    pub partial_line_timeout: Duration,
    /// Time a write to a client may take before the client is dropped.
    pub write_timeout: Duration,
    /// Most simultaneous connections on all ports together.
    pub max_connections: usize,
    /// Most simultaneous connections from one address.
    pub max_connections_per_address: usize,
    /// A signed-in notification connection silent this long is closed (its
    /// user goes offline), for dialects whose `QNG` tells the client when to
    /// ping (MSNP9+: every 50 s).
    pub idle_timeout: Duration,
    /// The same for older dialects, whose clients ping less predictably.
    pub legacy_idle_timeout: Duration,
    /// A switchboard participant silent this long is removed (`BYE handle 1`).
    pub switchboard_idle_timeout: Duration,
    /// An HTTP gateway session without a request this long ends.
    pub gateway_idle_timeout: Duration,
    /// TCP keepalive probes find half-open connections: first probe after
    /// this much silence, then every `keepalive_interval`, three times.
    pub keepalive_time: Duration,
    pub keepalive_interval: Duration,
    /// The `QNG` interval advertised to dialects that carry one.
    pub ping_interval: u32,
    /// What CHL/QRY challenges are for (MSNP6+).
    pub challenges: ChallengePolicy,
    /// Time between challenges after the first (sent after the first CHG).
    pub challenge_interval: Duration,
    /// Time a client has to answer a challenge.
    pub challenge_timeout: Duration,
    pub backend: BackendConfig,
    /// The store: `None` for the embedded SQLite file in the data dir, or a
    /// `postgres://` URL for the shared store of a cluster.
    pub database: Option<String>,
    /// The most connections this process opens to PostgreSQL: every node's
    /// together must stay under the server's `max_connections`.
    pub database_connections: usize,
    /// What this process serves.
    pub roles: crate::node_roles::Roles,
    /// Cluster membership, when the node is one of several.
    pub cluster: Option<crate::cluster::ClusterSettings>,
    /// Who may create an account on the web page.
    pub registration: Registration,
    /// The code `Registration::Invite` asks for.
    pub invite_code: Option<String>,
    /// Accounts (handles) that may use the operator page.
    pub operators: Vec<String>,
}

/// Who may sign up on the web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone.
    Open,
    /// Whoever has the operator's invite code.
    Invite,
    /// Nobody: the operator creates accounts (`msnd user add`).
    Closed,
}

impl std::fmt::Display for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Registration::Open => "open",
            Registration::Invite => "invite",
            Registration::Closed => "closed",
        })
    }
}

impl std::str::FromStr for Registration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(Registration::Open),
            "invite" => Ok(Registration::Invite),
            "closed" => Ok(Registration::Closed),
            _ => Err(format!("unknown registration `{s}` (open, invite, closed)")),
        }
    }
}

impl ServerConfig {
    /// Defaults for a data dir: the registered port 1863 on every interface,
    /// the notification server on 1864.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            listen: "0.0.0.0:1863".parse().expect("valid address"),
            ns_listen: "0.0.0.0:1864".parse().expect("valid address"),
            http_listen: None,
            insecure_http_login: false,
            https_listen: None,
            tls_cert: None,
            tls_key: None,
            legacy_https_listen: None,
            legacy_tls_cert: None,
            legacy_tls_key: None,
            msnp_tls_listen: None,
            xmpp_listen: None,
            public_host: None,
            referral: true,
            dialects: Dialect::ALL.to_vec(),
            max_message_size: 1664,
            max_line: 4096,
            login_timeout: Duration::from_secs(60),
            partial_line_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 200_000,
            max_connections_per_address: 256,
            idle_timeout: Duration::from_secs(300),
            legacy_idle_timeout: Duration::from_secs(1800),
            switchboard_idle_timeout: Duration::from_secs(600),
            gateway_idle_timeout: Duration::from_secs(60),
            keepalive_time: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            ping_interval: 50,
            challenges: ChallengePolicy::Lenient,
            challenge_interval: Duration::from_secs(600),
            challenge_timeout: Duration::from_secs(60),
            backend: BackendConfig {
                hashing_thread_start: Some(crate::hashing_threads::yield_to_connections),
                ..BackendConfig::default()
            },
            database: None,
            database_connections: 16,
            roles: crate::node_roles::Roles::ALL,
            cluster: None,
            registration: Registration::Closed,
            invite_code: None,
            operators: Vec::new(),
        }
    }
}

/// What happens with CHL/QRY challenges. Some third-party clients in use
/// today never answer CHL, so the default keeps serving them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePolicy {
    /// Never send CHL.
    Off,
    /// Send and verify; a wrong, missing or unknown-product answer is counted
    /// and logged, and the client is served on.
    Lenient,
    /// A wrong answer, an unknown product id or silence past the timeout gets
    /// error 540 (or, for silence, the connection closed).
    Strict,
}

impl std::fmt::Display for ChallengePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChallengePolicy::Off => "off",
            ChallengePolicy::Lenient => "lenient",
            ChallengePolicy::Strict => "strict",
        })
    }
}

impl std::str::FromStr for ChallengePolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ChallengePolicy::Off),
            "lenient" => Ok(ChallengePolicy::Lenient),
            "strict" => Ok(ChallengePolicy::Strict),
            _ => Err(format!("unknown challenge policy `{s}` (off, lenient, strict)")),
        }
    }
}
