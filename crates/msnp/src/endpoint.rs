//! Points of presence (MSNP16+): one account signed in from several
//! machines, each named by its machine GUID. On the wire an endpoint is
//! `handle;{guid}` (switchboard `USR`/`ANS`/`JOI`/`IRO`/`BYE`, `UUN`/`UBN`),
//! and MSNP18 puts the network in front of a handle (`1:handle`).

use std::fmt;

/// A machine GUID as a client names its endpoint: 32 hex digits in the
/// 8-4-4-4-12 form, braces optional on the wire. Kept in lower case with
/// braces, the form the server echoes (clients compare without case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MachineGuid(String);

impl MachineGuid {
    /// Parses `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (braces optional);
    /// anything else is `None`.
    pub fn parse(s: &str) -> Option<MachineGuid> {
        let inner = match (s.strip_prefix('{'), s.strip_suffix('}')) {
            (Some(_), Some(_)) if s.len() >= 2 => &s[1..s.len() - 1],
            (None, None) => s,
            _ => return None,
        };
        let groups: Vec<&str> = inner.split('-').collect();
        let shape = [8, 4, 4, 4, 12];
        let ok = groups.len() == shape.len()
            && groups.iter().zip(shape).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        ok.then(|| MachineGuid(format!("{{{}}}", inner.to_ascii_lowercase())))
    }

    /// A GUID from 16 random bytes (version 4 form).
    pub fn from_random(mut b: [u8; 16]) -> MachineGuid {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        MachineGuid(format!("{{{}-{}-{}-{}-{}}}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
    }

    /// The braced, lower-case form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MachineGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user, or one endpoint of a user: `handle` or `handle;{guid}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Address {
    pub handle: String,
    pub endpoint: Option<MachineGuid>,
}

impl Address {
    pub fn user(handle: &str) -> Address {
        Address { handle: handle.to_string(), endpoint: None }
    }

    pub fn endpoint(handle: &str, guid: &MachineGuid) -> Address {
        Address { handle: handle.to_string(), endpoint: Some(guid.clone()) }
    }

    /// Parses `handle`, `handle;{guid}`, and either with MSNP18's network
    /// prefix `1:`. A malformed GUID is `None`; so is an empty handle.
    pub fn parse(s: &str) -> Option<Address> {
        let s = strip_network(s);
        let (handle, endpoint) = match s.split_once(';') {
            Some((h, g)) => (h, Some(MachineGuid::parse(g)?)),
            None => (s, None),
        };
        (!handle.is_empty()).then(|| Address { handle: handle.to_string(), endpoint })
    }
}

/// A handle as written on the wire: `handle;{guid}` names an endpoint;
/// anything else is taken as a handle whole.
impl From<&str> for Address {
    fn from(s: &str) -> Address {
        Address::parse(s).unwrap_or_else(|| Address::user(s))
    }
}

impl From<String> for Address {
    fn from(s: String) -> Address {
        Address::from(s.as_str())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Some(g) => write!(f, "{};{g}", self.handle),
            None => f.write_str(&self.handle),
        }
    }
}

/// The names under which a switchboard participant's arrival (`JOI`,
/// `IRO`) or departure (`BYE`) is told to a client of `dialect` whose own
/// account is `me`. Clients with points of presence (MSNP16+) see each
/// endpoint (`handle;{guid}`) and, for another account, the account itself
/// when its first endpoint comes or its last goes (`edge`); older clients
/// see only accounts, and not their own.
pub fn roster_names(
    dialect: crate::Dialect,
    me: &str,
    handle: &str,
    machine: Option<&MachineGuid>,
    edge: bool,
) -> Vec<String> {
    let own = handle.eq_ignore_ascii_case(me);
    match (dialect.has_points_of_presence(), machine) {
        (true, Some(m)) if edge && !own => vec![Address::endpoint(handle, m).to_string(), handle.to_string()],
        (true, Some(m)) => vec![Address::endpoint(handle, m).to_string()],
        (true, None) => vec![handle.to_string()],
        (false, _) if edge && !own => vec![handle.to_string()],
        (false, _) => Vec::new(),
    }
}

/// The `UUN`/`UBN` application type of endpoint control (MSNP16+).
pub const ENDPOINT_CONTROL: u32 = 4;

/// What an endpoint sends another endpoint of its own account to sign it
/// out (`UUN ... 4`, Pidgin's and WLM 2009's "sign out from there").
pub const SIGN_OUT_PAYLOAD: &[u8] = b"goawyplzthxbye";

/// Whether a `UUN` asks the endpoint it names to sign out.
pub fn is_sign_out(kind: u32, payload: &[u8]) -> bool {
    kind == ENDPOINT_CONTROL && payload == SIGN_OUT_PAYLOAD
}

/// The Messenger network's id, as MSNP14+ print it beside a handle.
pub const MESSENGER_NETWORK: u32 = 1;

/// A handle without MSNP18's `1:` network prefix (other networks' prefixes
/// are kept: they are not Messenger accounts).
pub fn strip_network(s: &str) -> &str {
    s.strip_prefix("1:").unwrap_or(s)
}

/// A client's capabilities: the flags of MSNP8+ and, from MSNP16, the
/// extended flags after a colon (`caps:capsEx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Capabilities {
    pub basic: u32,
    pub extended: u32,
}

impl Capabilities {
    pub const fn basic(basic: u32) -> Capabilities {
        Capabilities { basic, extended: 0 }
    }

    /// Parses `caps` or `caps:capsEx`.
    pub fn parse(s: &str) -> Option<Capabilities> {
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
        };
        match s.split_once(':') {
            Some((b, e)) => Some(Capabilities { basic: number(b)?, extended: number(e)? }),
            None => Some(Capabilities::basic(number(s)?)),
        }
    }

    /// Reads `caps` or `caps:capsEx` as `dialect` carries them: before
    /// MSNP16 an extended part (aMSN 0.99 sends one with MSNP15) is taken
    /// and passed over, so that what is read is what would be written.
    pub fn parse_in(s: &str, dialect: crate::Dialect) -> Option<Capabilities> {
        let caps = Capabilities::parse(s)?;
        Some(if dialect.capabilities_with_extended() { caps } else { Capabilities::basic(caps.basic) })
    }

    /// `caps:capsEx`, the MSNP16+ form.
    pub fn with_extended(self) -> String {
        format!("{}:{}", self.basic, self.extended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_checked_and_kept_in_one_form() {
        let g = MachineGuid::parse("{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}").unwrap();
        assert_eq!(g.as_str(), "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}");
        assert_eq!(MachineGuid::parse("f52973b6-c926-4bad-9ba8-7c1e840e4ab0"), Some(g));
        for bad in [
            "",
            "{}",
            "{f52973b6-c926-4bad-9ba8-7c1e840e4ab}",
            "f52973b6c9264bad9ba87c1e840e4ab0",
            "{f52973b6-c926-4bad-9ba8-7c1e840e4ab0",
            "{g52973b6-c926-4bad-9ba8-7c1e840e4ab0}",
        ] {
            assert_eq!(MachineGuid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_guids_parse_back() {
        let g = MachineGuid::from_random([0xab; 16]);
        assert_eq!(MachineGuid::parse(g.as_str()), Some(g));
    }

    #[test]
    fn addresses_round_trip() {
        let a = Address::parse("1:bob@x.com;{F52973B6-C926-4BAD-9BA8-7C1E840E4AB0}").unwrap();
        assert_eq!(a.handle, "bob@x.com");
        assert_eq!(a.to_string(), "bob@x.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}");
        assert_eq!(Address::parse("bob@x.com"), Some(Address::user("bob@x.com")));
        assert_eq!(Address::parse("bob@x.com;nonsense"), None);
        assert_eq!(Address::parse(";{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"), None);
    }

    #[test]
    fn rosters_name_endpoints_only_to_clients_that_have_them() {
        use crate::Dialect;
        let g = MachineGuid::parse("{11111111-1111-4111-8111-111111111111}").unwrap();
        let endpoint = "bob@x.com;{11111111-1111-4111-8111-111111111111}";
        assert_eq!(roster_names(Dialect::Msnp18, "al@x.com", "bob@x.com", Some(&g), true), [endpoint, "bob@x.com"]);
        assert_eq!(roster_names(Dialect::Msnp18, "al@x.com", "bob@x.com", Some(&g), false), [endpoint]);
        assert_eq!(roster_names(Dialect::Msnp18, "bob@x.com", "bob@x.com", Some(&g), true), [endpoint]);
        assert_eq!(roster_names(Dialect::Msnp11, "al@x.com", "bob@x.com", Some(&g), true), ["bob@x.com"]);
        assert!(roster_names(Dialect::Msnp11, "al@x.com", "bob@x.com", Some(&g), false).is_empty());
        assert!(roster_names(Dialect::Msnp11, "bob@x.com", "bob@x.com", None, true).is_empty());
    }

    #[test]
    fn capabilities_in_both_forms() {
        assert_eq!(Capabilities::parse("2788999228:48"), Some(Capabilities { basic: 2788999228, extended: 48 }));
        assert_eq!(Capabilities::parse("49152"), Some(Capabilities::basic(49152)));
        assert_eq!(Capabilities::parse("1:"), None);
        assert_eq!(Capabilities::parse("99999999999"), None);
        assert_eq!(Capabilities::basic(7).with_extended(), "7:0");
    }
}
