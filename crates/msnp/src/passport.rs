//! The Passport 1.4 `Authorization` header that MSNP8+ clients send to the
//! login service: `Passport1.4 OrgVerb=GET,OrgURL=...,sign-in=...,pwd=...,<challenge>`.
//!
//! Official clients and Gaim URL-encode `sign-in` and `pwd`; some libraries
//! insert them raw, so a password may hold `,` or `%`. The password runs to
//! the next `,` that starts a known key, and callers get both the raw and the
//! decoded form to try.

use crate::soap::element_texts;
use crate::urlencode;

/// Keys that may follow `pwd=` in the header.
const KNOWN_KEYS: &[&str] = &[
    "lc=", "id=", "tw=", "fs=", "ru=", "ct=", "kpp=", "kv=", "ver=", "tpf=", "rn=", "wp=", "rver=", "OrgVerb=",
    "OrgURL=", "sign-in=",
];

/// The credentials in an `Authorization: Passport1.4 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassportCredentials {
    /// The account, URL-decoded.
    pub sign_in: String,
    /// The password exactly as it appeared.
    pub password_raw: String,
    /// The password URL-decoded, when that differs from the raw form.
    pub password_decoded: Option<String>,
}

impl PassportCredentials {
    /// The password forms to try, most likely first.
    pub fn password_candidates(&self) -> Vec<&str> {
        match &self.password_decoded {
            Some(d) => vec![d.as_str(), self.password_raw.as_str()],
            None => vec![self.password_raw.as_str()],
        }
    }
}

/// Parses the header value; `None` if it is not a Passport 1.4 header with
/// both `sign-in` and `pwd`.
pub fn parse_authorization(header: &str) -> Option<PassportCredentials> {
    let rest = header.trim_start().strip_prefix("Passport1.4")?.trim_start();
    let sign_in = field(rest, "sign-in=")?;
    let sign_in = urlencode::decode(sign_in).ok()?;
    let start = find_key(rest, "pwd=")? + "pwd=".len();
    let after = &rest[start..];
    let mut end = after.len();
    for (i, _) in after.match_indices(',') {
        if KNOWN_KEYS.iter().any(|k| after[i + 1..].starts_with(k)) {
            end = i;
            break;
        }
    }
    let password_raw = after[..end].to_string();
    let password_decoded = urlencode::decode(&password_raw).ok().filter(|d| *d != password_raw);
    if sign_in.is_empty() {
        return None;
    }
    Some(PassportCredentials { sign_in, password_raw, password_decoded })
}

/// The byte offset of `key` at the start of the header or after a comma.
fn find_key(s: &str, key: &str) -> Option<usize> {
    if s.starts_with(key) {
        return Some(0);
    }
    s.match_indices(&format!(",{key}")).next().map(|(i, _)| i + 1)
}

/// A simple field's value, up to the next comma.
fn field<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let start = find_key(s, key)? + key.len();
    let value = &s[start..];
    Some(value.split(',').next().unwrap_or(""))
}

/// The challenge string of `USR ... TWN S`: the ten keys Gaim-era clients
/// look for, with the time and a `tpf` the caller draws at random.
pub fn twn_challenge(unix_time: u64, tpf: &str) -> String {
    format!(
        "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct={unix_time},kpp=1,kv=5,ver=2.1.0173.1,tpf={tpf}"
    )
}

/// The token of a ticket as clients present it: the whole `t=...&p=...`
/// string, or the `t=` value alone.
pub fn ticket_token(ticket: &str) -> &str {
    let t = ticket.strip_prefix("t=").unwrap_or(ticket);
    t.split('&').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_carries_the_ten_keys_and_a_ticket_its_token() {
        let c = twn_challenge(1062764229, "0123abcd");
        for key in ["lc=", "id=", "tw=", "fs=", "ru=", "ct=1062764229", "kpp=", "kv=", "ver=", "tpf=0123abcd"] {
            assert!(c.contains(key), "{key}");
        }
        assert!(!c.contains(' '));
        assert_eq!(ticket_token("t=abc&p=def"), "abc");
        assert_eq!(ticket_token("abc"), "abc");
        assert_eq!(ticket_token("t="), "");
    }

    #[test]
    fn parses_the_official_form() {
        let h = "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=alice%40hotmail.com,pwd=p%40ss%2Cword,lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764429,kpp=1,kv=5,ver=2.1.0173.1,tpf=43f8a4c8ed940c04e3740be46c4d1619";
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.sign_in, "alice@hotmail.com");
        assert_eq!(c.password_candidates(), ["p@ss,word", "p%40ss%2Cword"]);
    }

    #[test]
    fn parses_raw_passwords_with_commas_and_percents() {
        let h = "Passport1.4 OrgVerb=GET,OrgURL=x,sign-in=bob@x.com,pwd=a,b%zz,c,lc=1033,id=507";
        let c = parse_authorization(h).unwrap();
        assert_eq!(c.sign_in, "bob@x.com");
        assert_eq!(c.password_candidates(), ["a,b%zz,c"]);
        let c = parse_authorization("Passport1.4 sign-in=bob@x.com,pwd=end").unwrap();
        assert_eq!(c.password_raw, "end");
    }

    #[test]
    fn refuses_other_headers() {
        assert_eq!(parse_authorization("Basic Zm9vOmJhcg=="), None);
        assert_eq!(parse_authorization("Passport1.4 pwd=x"), None);
        assert_eq!(parse_authorization("Passport1.4 sign-in=a@b.c"), None);
        assert_eq!(parse_authorization("Passport1.4 xsign-in=a@b.c,pwd=x"), None);
    }
}

/// A WS-Trust `RequestSecurityToken` request (`RST.srf`), as MSN 7.5 sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RstRequest {
    pub username: String,
    pub password: String,
    /// The services tokens are asked for (`wsa:Address`), in order.
    pub addresses: Vec<String>,
}

/// Parses an RST envelope: the `wsse:Username` and `wsse:Password` of its
/// security header and every `wsa:Address` asked for. Namespace prefixes are
/// ignored; `None` if a credential is missing.
pub fn parse_rst_request(xml: &str) -> Option<RstRequest> {
    let username = element_texts(xml, "Username").into_iter().next()?;
    let password = element_texts(xml, "Password").into_iter().next()?;
    let addresses = element_texts(xml, "Address");
    Some(RstRequest { username, password, addresses })
}

#[cfg(test)]
mod rst_tests {
    use super::*;

    use crate::soap::{escape_xml, unescape_xml};

    #[test]
    fn parses_an_rst_envelope() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext"><Header><wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>alice@hotmail.com</wsse:Username><wsse:Password>p&amp;ss&lt;1&#62;</wsse:Password></wsse:UsernameToken></wsse:Security></Header><Body><ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS"><wst:RequestSecurityToken Id="RST0"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>http://Passport.NET/tb</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken><wst:RequestSecurityToken Id="RST1"><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>messenger.msn.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wsse:PolicyReference URI="?id=507"></wsse:PolicyReference></wst:RequestSecurityToken></ps:RequestMultipleSecurityTokens></Body></Envelope>"#;
        let r = parse_rst_request(xml).unwrap();
        assert_eq!(r.username, "alice@hotmail.com");
        assert_eq!(r.password, "p&ss<1>");
        assert_eq!(r.addresses, ["http://Passport.NET/tb", "messenger.msn.com"]);
        assert_eq!(parse_rst_request("<Envelope><Username>a</Username></Envelope>"), None);
        assert_eq!(unescape_xml("a&bogus;"), None);
        assert_eq!(escape_xml("t=1&p=2"), "t=1&amp;p=2");
    }
}
