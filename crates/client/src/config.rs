//! What a client needs to know to sign in.

use std::path::PathBuf;
use std::time::Duration;

use msnp::Dialect;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The dispatch server, `host:port`.
    pub server: String,
    pub account: String,
    pub password: String,
    /// The dialect to speak. MSNP2-7 sign in with MD5, MSNP8+ with Passport.
    pub dialect: Dialect,
    /// The Passport nexus (`http(s)://host/rdr/pprdr.asp`) for MSNP8+.
    pub login_url: Option<String>,
    /// A CA certificate (PEM) to trust for the Passport service, in addition
    /// to the public roots: e.g. the server's generated `tls/ca.pem`.
    pub trust_ca: Option<PathBuf>,
    /// Speak MSNP over TLS to every server (the server's
    /// `--msnp-tls-listen` port), trusting `trust_ca` besides the public roots.
    pub tls: bool,
    /// Speak MSNP through this HTTP polling gateway (`http(s)://host[:port]`
    /// or the whole `.../gateway/gateway.dll` URL) instead of connecting to
    /// the servers: for networks where only web traffic passes.
    pub http_gateway: Option<String>,
    /// Where the lists are cached between sessions (none: no cache).
    pub cache_dir: Option<PathBuf>,
    /// How long to wait for a reply from a server.
    pub timeout: Duration,
    /// The address to listen on for incoming file-transfer connections (by
    /// default the address used to reach the server).
    pub transfer_address: Option<std::net::IpAddr>,
    /// The address to tell peers to connect to, when it differs from the one
    /// listened on (behind NAT with a forwarded port range).
    pub transfer_advertise: Option<std::net::IpAddr>,
    /// The machine this client signs in from, in the dialects where one
    /// account may be signed in from several (MSNP16+). Another client
    /// with the same GUID replaces this one; by default a new one is made
    /// for each configuration.
    pub machine: msnp::endpoint::MachineGuid,
}

impl ClientConfig {
    /// A configuration for MSNP11 (Passport login) with everything else by default.
    pub fn new(server: &str, account: &str, password: &str) -> ClientConfig {
        ClientConfig {
            server: server.to_string(),
            account: account.to_string(),
            password: password.to_string(),
            dialect: Dialect::Msnp11,
            login_url: None,
            trust_ca: None,
            tls: false,
            http_gateway: None,
            cache_dir: None,
            timeout: Duration::from_secs(15),
            transfer_address: None,
            transfer_advertise: None,
            machine: msnp::endpoint::MachineGuid::from_random(rand::random()),
        }
    }
}
