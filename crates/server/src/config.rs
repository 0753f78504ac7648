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
    /// The HTTP side, if any.
    pub http_listen: Option<SocketAddr>,
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
    /// The `QNG` interval advertised to dialects that carry one.
    pub ping_interval: u32,
    pub backend: BackendConfig,
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
            public_host: None,
            referral: true,
            dialects: vec![Dialect::Msnp2],
            max_message_size: 1664,
            max_line: 4096,
            login_timeout: Duration::from_secs(60),
            partial_line_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 200_000,
            ping_interval: 50,
            backend: BackendConfig::default(),
        }
    }
}
