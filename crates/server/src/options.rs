//! The options of `msnd serve`: from flags, then the environment
//! (`MSND_<OPTION>`), then the config file (`DATA_DIR/msnd.toml`, or
//! `--config`), then the defaults, in that order.
//!
//! One struct serves all four: clap reads flags and environment into it,
//! serde reads the file into it (unknown keys are errors), and layering is
//! done on TOML tables, so an option is declared once, with its
//! documentation, which `msnd init` writes into the commented file.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::{ChallengePolicy, Registration};
use crate::node_roles::Roles;

/// Gives a type that reads and writes itself as a string (`FromStr` and
/// `Display`) the same form in the config file.
macro_rules! string_serde {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

string_serde!(RateArg, Roles, ChallengePolicy, Registration);

/// A flood-control rate: `BURST/PER_SECOND`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateArg(pub backend::limits::Rate);

impl FromStr for RateArg {
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

impl fmt::Display for RateArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.burst, self.0.per_second)
    }
}

/// Every option of `msnd serve`. `None` means "not given here".
#[derive(Debug, Default, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// The MSNP port: dispatch, and switchboard connections.
    /// [default: 0.0.0.0:1863]
    #[arg(long, env = "MSND_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The notification server's port [default: the MSNP port + 1, or any
    /// free port when the MSNP port is 0].
    #[arg(long, env = "MSND_NS_LISTEN")]
    pub ns_listen: Option<SocketAddr>,
    /// Plain HTTP: status, and the Passport nexus and login service for
    /// local use and tests.
    #[arg(long, env = "MSND_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,
    /// Also serve the login service over plain HTTP to clients that are not
    /// on loopback. Off by default: passwords would cross the network readable.
    #[arg(long, env = "MSND_INSECURE_HTTP_LOGIN", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub insecure_http_login: Option<bool>,
    /// HTTPS: the Passport nexus and login service for MSNP8+ clients
    /// (real clients expect port 443).
    #[arg(long, env = "MSND_HTTPS_LISTEN")]
    pub https_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) for --https-listen [default: generated into DATA_DIR/tls].
    #[arg(long, env = "MSND_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "MSND_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// The legacy TLS listener (TLS 1.0, RSA key exchange, 3DES) for
    /// Windows XP-era clients. Off by default: these algorithms are weak.
    #[arg(long, env = "MSND_LEGACY_HTTPS_LISTEN")]
    pub legacy_https_listen: Option<SocketAddr>,
    /// RSA certificate chain (PEM) for --legacy-https-listen [default: generated].
    #[arg(long, env = "MSND_LEGACY_TLS_CERT")]
    pub legacy_tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --legacy-tls-cert.
    #[arg(long, env = "MSND_LEGACY_TLS_KEY")]
    pub legacy_tls_key: Option<PathBuf>,
    /// MSNP over TLS (notification and switchboard on one port, no
    /// referral) for clients that can use it, such as `msn --tls`. Uses the
    /// --tls-cert pair, or the generated one.
    #[arg(long, env = "MSND_MSNP_TLS_LISTEN")]
    pub msnp_tls_listen: Option<SocketAddr>,
    /// XMPP client connections (RFC 6120; STARTTLS with the --tls-cert
    /// pair or the generated one), for Jabber clients signing in with their
    /// MSN account: 0.0.0.0:5222 is the usual port. Off unless given.
    #[arg(long, env = "MSND_XMPP_LISTEN")]
    pub xmpp_listen: Option<SocketAddr>,
    /// Refuse the MD5 dialects (MSNP2-7) entirely: only Passport logins,
    /// whose passwords travel over TLS, are served.
    #[arg(long, env = "MSND_REFUSE_MD5", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub refuse_md5: Option<bool>,
    /// What this process serves: dispatch, notification, switchboard, http,
    /// comma-separated, or all.
    /// [default: all]
    #[arg(long, env = "MSND_ROLE")]
    pub role: Option<Roles>,
    /// Join a cluster through this NATS server (nats://host:4222); needs a
    /// shared --database.
    #[arg(long, env = "MSND_NATS")]
    pub nats: Option<String>,
    /// The cluster's name: nodes with the same NATS and name form one
    /// cluster.
    /// [default: mariposa]
    #[arg(long, env = "MSND_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// This node's name in the cluster [default: generated].
    #[arg(long, env = "MSND_NODE_ID")]
    pub node_id: Option<String>,
    /// Milliseconds between cluster heartbeats.
    /// [default: 1000]
    #[arg(long, env = "MSND_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Milliseconds of silence after which a node counts as dead and its
    /// users are shown offline.
    /// [default: 5000]
    #[arg(long, env = "MSND_NODE_TIMEOUT_MS")]
    pub node_timeout_ms: Option<u64>,
    /// CHL/QRY challenges: off, lenient (send, verify, count; never
    /// disconnect) or strict (540 and disconnect).
    /// [default: lenient]
    #[arg(long, env = "MSND_CHALLENGES")]
    pub challenges: Option<ChallengePolicy>,
    /// The host name or address that XFR and RNG advertise [default: the
    /// address the client connected to].
    #[arg(long, env = "MSND_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// Serve the notification role on the MSNP port itself instead of
    /// referring clients with XFR NS.
    #[arg(long, env = "MSND_NO_REFERRAL", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub no_referral: Option<bool>,
    /// Largest switchboard message payload in bytes; a larger one closes the
    /// connection, as the official service did.
    /// [default: 1664]
    #[arg(long, env = "MSND_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Most entries on each of a user's forward, allow and block lists
    /// [default: 1000 forward, 1500 allow, 1500 block].
    #[arg(long, env = "MSND_MAX_LIST_SIZE")]
    pub max_list_size: Option<usize>,
    /// Seconds a switchboard cookie from XFR SB or RNG stays valid.
    /// [default: 120]
    #[arg(long, env = "MSND_COOKIE_LIFETIME_SECS")]
    pub cookie_lifetime_secs: Option<u64>,
    /// Seconds a Passport ticket stays valid for USR ... TWN S.
    /// [default: 600]
    #[arg(long, env = "MSND_TICKET_LIFETIME_SECS")]
    pub ticket_lifetime_secs: Option<u64>,
    /// Seconds a client has to sign in, or to join its switchboard session.
    /// [default: 60]
    #[arg(long, env = "MSND_LOGIN_TIMEOUT_SECS")]
    pub login_timeout_secs: Option<u64>,
    /// Seconds a signed-in MSNP9+ client may stay silent (they ping every 50 s)
    /// before it is disconnected and shown offline.
    /// [default: 300]
    #[arg(long, env = "MSND_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// The same for MSNP2-8 clients, which ping less predictably.
    /// [default: 1800]
    #[arg(long, env = "MSND_LEGACY_IDLE_TIMEOUT_SECS")]
    pub legacy_idle_timeout_secs: Option<u64>,
    /// Seconds a switchboard participant may stay silent before it is removed.
    /// [default: 600]
    #[arg(long, env = "MSND_SWITCHBOARD_IDLE_TIMEOUT_SECS")]
    pub switchboard_idle_timeout_secs: Option<u64>,
    /// Seconds an HTTP gateway session may go without a request (clients
    /// poll every 0.5-5 s) before it ends and its user is signed out.
    /// [default: 60]
    #[arg(long, env = "MSND_GATEWAY_IDLE_TIMEOUT_SECS")]
    pub gateway_idle_timeout_secs: Option<u64>,
    /// Most simultaneous connections from one address.
    /// [default: 256]
    #[arg(long, env = "MSND_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Most switchboard sessions one user may be in at once (714 beyond).
    /// [default: 32]
    #[arg(long, env = "MSND_MAX_SESSIONS_PER_USER")]
    pub max_sessions_per_user: Option<usize>,
    /// Most machines one account may be signed in from at once, for the
    /// dialects that allow several (MSNP16+; 734 beyond).
    /// [default: 8]
    #[arg(long, env = "MSND_MAX_ENDPOINTS_PER_ACCOUNT")]
    pub max_endpoints_per_account: Option<usize>,
    /// Most circles (MSNP18 group chats) one account may be in or invited to.
    /// [default: 20]
    #[arg(long, env = "MSND_MAX_CIRCLES_PER_ACCOUNT")]
    pub max_circles_per_account: Option<usize>,
    /// Most members (and invitees) of one circle.
    /// [default: 50]
    #[arg(long, env = "MSND_MAX_CIRCLE_MEMBERS")]
    pub max_circle_members: Option<usize>,
    /// Most offline messages waiting for one user; senders beyond it are refused.
    /// [default: 100]
    #[arg(long, env = "MSND_OFFLINE_QUOTA")]
    pub offline_quota: Option<usize>,
    /// Most people in one switchboard session (712 beyond).
    /// [default: 20]
    #[arg(long, env = "MSND_MAX_SWITCHBOARD_PARTICIPANTS")]
    pub max_switchboard_participants: Option<usize>,
    /// Typed messages a user may send: BURST/PER_SECOND.
    /// [default: 30/5]
    #[arg(long, env = "MSND_RATE_MESSAGES")]
    pub rate_messages: Option<RateArg>,
    /// Typed messages through one switchboard connection: BURST/PER_SECOND.
    /// [default: 20/4]
    #[arg(long, env = "MSND_RATE_MESSAGES_PER_CONNECTION")]
    pub rate_messages_per_connection: Option<RateArg>,
    /// P2P data messages (file transfers, pictures) a user may send: BURST/PER_SECOND.
    /// [default: 2000/2000]
    #[arg(long, env = "MSND_RATE_DATA")]
    pub rate_data: Option<RateArg>,
    /// Switchboard invitations (XFR SB, CAL) a user may make: BURST/PER_SECOND.
    /// [default: 10/0.5]
    #[arg(long, env = "MSND_RATE_INVITATIONS")]
    pub rate_invitations: Option<RateArg>,
    /// List and group changes a user may make: BURST/PER_SECOND.
    /// [default: 100/2]
    #[arg(long, env = "MSND_RATE_LIST_CHANGES")]
    pub rate_list_changes: Option<RateArg>,
    /// State, name and personal-message changes a user may make: BURST/PER_SECOND.
    /// [default: 20/0.5]
    #[arg(long, env = "MSND_RATE_STATE_CHANGES")]
    pub rate_state_changes: Option<RateArg>,
    /// Offline messages one user may leave (to anyone): BURST/PER_SECOND.
    /// [default: 20/0.1667]
    #[arg(long, env = "MSND_RATE_OFFLINE_MESSAGES")]
    pub rate_offline_messages: Option<RateArg>,
    /// Accounts the sign-up page creates for one address: BURST/PER_SECOND.
    /// [default: 5/0.001667]
    #[arg(long, env = "MSND_RATE_SIGN_UPS")]
    pub rate_sign_ups: Option<RateArg>,
    /// Refusals in a minute after which a connection is closed.
    /// [default: 30]
    #[arg(long, env = "MSND_ABUSE_STRIKES")]
    pub abuse_strikes: Option<u32>,
    /// Failed logins of one account (within 15 minutes) after which its
    /// logins are refused for 15 minutes; slowing starts at half this.
    /// [default: 10]
    #[arg(long, env = "MSND_LOGIN_FAILURES_PER_ACCOUNT")]
    pub login_failures_per_account: Option<u32>,
    /// Failed logins from one address after which its logins are refused.
    /// [default: 30]
    #[arg(long, env = "MSND_LOGIN_FAILURES_PER_ADDRESS")]
    pub login_failures_per_address: Option<u32>,
    /// Logins one address may have being checked at once; more are refused
    /// (911) until one finishes. Raise it for a gateway or a load tool that
    /// signs many users in from one address. [default: 8]
    #[arg(long, env = "MSND_LOGINS_IN_FLIGHT_PER_ADDRESS")]
    pub logins_in_flight_per_address: Option<u32>,
    /// Seconds a started command may stay unfinished before the connection closes.
    /// [default: 60]
    #[arg(long, env = "MSND_PARTIAL_LINE_TIMEOUT_SECS")]
    pub partial_line_timeout_secs: Option<u64>,
    /// Who may create an account on the web page: open, invite (with
    /// invite_code) or closed. [default: closed]
    #[arg(long, env = "MSND_REGISTRATION")]
    pub registration: Option<Registration>,
    /// The code the sign-up page asks for when registration is invite.
    #[arg(long, env = "MSND_INVITE_CODE")]
    pub invite_code: Option<String>,
    /// Accounts that may sign in to the operator page (/admin); repeat the
    /// flag, or a list in the file.
    #[arg(long = "operator", env = "MSND_OPERATORS", value_delimiter = ',')]
    pub operators: Option<Vec<String>>,
}

impl ServeOptions {
    /// The built-in defaults (options without one stay unset).
    pub fn defaults() -> ServeOptions {
        ServeOptions {
            listen: Some("0.0.0.0:1863".parse().expect("a valid default")),
            role: Some("all".parse().expect("a valid default")),
            cluster_name: Some("mariposa".parse().expect("a valid default")),
            heartbeat_ms: Some(1000),
            node_timeout_ms: Some(5000),
            challenges: Some("lenient".parse().expect("a valid default")),
            max_message_size: Some(1664),
            cookie_lifetime_secs: Some(120),
            ticket_lifetime_secs: Some(600),
            login_timeout_secs: Some(60),
            idle_timeout_secs: Some(300),
            legacy_idle_timeout_secs: Some(1800),
            switchboard_idle_timeout_secs: Some(600),
            gateway_idle_timeout_secs: Some(60),
            max_connections_per_address: Some(256),
            max_sessions_per_user: Some(32),
            max_endpoints_per_account: Some(8),
            max_circles_per_account: Some(20),
            max_circle_members: Some(50),
            offline_quota: Some(100),
            max_switchboard_participants: Some(20),
            rate_messages: Some("30/5".parse().expect("a valid default")),
            rate_messages_per_connection: Some("20/4".parse().expect("a valid default")),
            rate_data: Some("2000/2000".parse().expect("a valid default")),
            rate_invitations: Some("10/0.5".parse().expect("a valid default")),
            rate_list_changes: Some("100/2".parse().expect("a valid default")),
            rate_state_changes: Some("20/0.5".parse().expect("a valid default")),
            rate_offline_messages: Some("20/0.1667".parse().expect("a valid default")),
            rate_sign_ups: Some("5/0.001667".parse().expect("a valid default")),
            abuse_strikes: Some(30),
            login_failures_per_account: Some(10),
            login_failures_per_address: Some(30),
            logins_in_flight_per_address: Some(backend::limits::DEFAULT_IN_FLIGHT_PER_ADDRESS),
            partial_line_timeout_secs: Some(60),
            insecure_http_login: Some(false),
            refuse_md5: Some(false),
            no_referral: Some(false),
            registration: Some(Registration::Closed),
            ..Default::default()
        }
    }

    /// Reads a config file's text; unknown keys and wrong types are errors
    /// that name the line.
    pub fn from_toml(text: &str) -> Result<ServeOptions, toml::de::Error> {
        toml::from_str(text)
    }

    /// These options over `under`: whatever is set here wins.
    pub fn over(&self, under: &ServeOptions) -> ServeOptions {
        let mut table = toml::Table::try_from(under).expect("options serialise");
        table.extend(toml::Table::try_from(self).expect("options serialise"));
        toml::Value::Table(table).try_into().expect("options read back")
    }

    /// The effective options as a config file would write them.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("options serialise")
    }

    /// The commented config file `msnd init` writes: every option with its
    /// documentation and its default, commented out.
    pub fn template() -> String {
        use clap::Args;
        let command = ServeOptions::augment_args(clap::Command::new("serve"));
        let defaults = toml::Table::try_from(ServeOptions::defaults()).expect("options serialise");
        let mut out = String::from(
            "# msnd configuration. Every option is shown with its default, commented out.\n\
             # Flags (--option) and the environment (MSND_OPTION) override this file.\n\
             # `msnd check-config` checks it and prints what is in force.\n",
        );
        for arg in command.get_arguments() {
            let name = arg.get_id().as_str();
            let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
            out.push('\n');
            for line in help.lines() {
                out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
            }
            match defaults.get(name) {
                Some(value) => out.push_str(&format!("#{name} = {value}\n")),
                None => out.push_str(&format!("#{name} =\n")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_and_defaults_fill_the_rest() {
        let file =
            ServeOptions::from_toml("max_message_size = 1000\nrate_messages = \"5/1\"\nrefuse_md5 = true").unwrap();
        let flags = ServeOptions { max_message_size: Some(1400), ..Default::default() };
        let merged = flags.over(&file.over(&ServeOptions::defaults()));
        assert_eq!(merged.max_message_size, Some(1400));
        assert_eq!(merged.rate_messages.map(|r| r.to_string()).as_deref(), Some("5/1"));
        assert_eq!(merged.refuse_md5, Some(true));
        assert_eq!(merged.listen, Some("0.0.0.0:1863".parse().unwrap()));
        assert_eq!(merged.http_listen, None);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors_that_say_where() {
        let e = ServeOptions::from_toml("listen = \"0.0.0.0:1863\"\nmax_mesage_size = 10").unwrap_err().to_string();
        assert!(e.contains("max_mesage_size") && e.contains("line 2"), "{e}");
        let e = ServeOptions::from_toml("rate_messages = \"fast\"").unwrap_err().to_string();
        assert!(e.contains("BURST/PER_SECOND"), "{e}");
    }

    #[test]
    fn the_template_parses_when_uncommented_where_it_has_values() {
        let template = ServeOptions::template();
        let active: String = template
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.contains(" = ") && !l.starts_with(' '))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(ServeOptions::from_toml(&active).unwrap(), ServeOptions::defaults());
        assert!(template.contains("#listen = \"0.0.0.0:1863\""));
        assert!(template.contains("#http_listen ="));
    }
}
