//! The Passport 1.4 `Authorization` header that MSNP8+ clients send to the
//! login service: `Passport1.4 OrgVerb=GET,OrgURL=...,sign-in=...,pwd=...,<challenge>`.
//!
//! Official clients and Gaim URL-encode `sign-in` and `pwd`; some libraries
//! insert them raw, so a password may hold `,` or `%`. The password runs to
//! the next `,` that starts a known key, and callers get both the raw and the
//! decoded form to try.

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

/// The `MSPAuth` token of an HTTP `Cookie` header: how Windows Live
/// Messenger 8.0 (MSNP13/14) authenticates its web-service requests.
pub fn mspauth_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "MSPAuth")
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
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
    fn finds_the_mspauth_cookie() {
        assert_eq!(mspauth_cookie("MSPProf=p; MSPAuth=tok$$; x=y"), Some("tok$$"));
        assert_eq!(mspauth_cookie("MSPAuth="), None);
        assert_eq!(mspauth_cookie("other=1"), None);
    }

    #[test]
    fn refuses_other_headers() {
        assert_eq!(parse_authorization("Basic Zm9vOmJhcg=="), None);
        assert_eq!(parse_authorization("Passport1.4 pwd=x"), None);
        assert_eq!(parse_authorization("Passport1.4 sign-in=a@b.c"), None);
        assert_eq!(parse_authorization("Passport1.4 xsign-in=a@b.c,pwd=x"), None);
    }
}

/// One token asked for in an RST request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `N` of the request's `Id="RSTN"` (its position when it has none):
    /// the answer's token is `CompactN`, which clients map back.
    pub index: usize,
    /// The service (`wsa:Address`).
    pub address: String,
    /// The `PolicyReference URI`, if any.
    pub policy: Option<String>,
}

/// A WS-Trust `RequestMultipleSecurityTokens` request (`RST.srf`,
/// `RST2.srf`), as MSN 7.5 and Windows Live Messenger send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RstRequest {
    pub username: String,
    pub password: String,
    /// The tokens asked for, in order.
    pub tokens: Vec<TokenRequest>,
}

/// The Passport "tb" pseudo-service every RST request asks for first.
pub const PASSPORT_TB: &str = "http://Passport.NET/tb";

/// The most tokens one request may ask for (clients ask for up to ten).
pub const MAX_TOKENS: usize = 16;

/// Parses an RST envelope: the `Username` and `Password` of its security
/// header and every token asked for. `None` if it is not a SOAP envelope,
/// a credential is missing, or it asks for too many tokens.
pub fn parse_rst_request(xml: &str) -> Option<RstRequest> {
    let envelope = crate::soap::Envelope::parse(xml)?;
    let credentials = envelope.header.find("UsernameToken")?;
    let username = credentials.child("Username")?.text.trim().to_string();
    let password = credentials.child("Password")?.text.clone();
    let mut requests = Vec::new();
    envelope.body.find_all("RequestSecurityToken", &mut requests);
    if requests.len() > MAX_TOKENS {
        return None;
    }
    let tokens = requests
        .iter()
        .enumerate()
        .filter_map(|(position, r)| {
            let address = r.find("Address")?.text.trim().to_string();
            let index = r.attr("Id").and_then(|id| id.strip_prefix("RST")).and_then(|n| n.parse().ok());
            let policy = r.find("PolicyReference").and_then(|p| p.attr("URI")).map(str::to_string);
            Some(TokenRequest { index: index.unwrap_or(position), address, policy })
        })
        .collect();
    Some(RstRequest { username, password, tokens })
}

/// The RST request a client sends for `services` (address, policy) after
/// the `tb` token: `RST0` is `tb`, the first service `RST1`, and so on.
pub fn rst_request(username: &str, password: &str, services: &[(&str, &str)]) -> String {
    use crate::soap::escape_xml;
    let mut tokens = format!(
        concat!(
            r#"<wst:RequestSecurityToken Id="RST0"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>"#,
            r#"<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken>"#
        ),
        PASSPORT_TB
    );
    for (i, (address, policy)) in services.iter().enumerate() {
        tokens.push_str(&format!(
            concat!(
                r#"<wst:RequestSecurityToken Id="RST{}"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>"#,
                r#"<wsp:AppliesTo><wsa:EndpointReference><wsa:Address>{}</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>"#,
                r#"<wsse:PolicyReference URI="{}"></wsse:PolicyReference></wst:RequestSecurityToken>"#
            ),
            i + 1,
            escape_xml(address),
            escape_xml(policy)
        ));
    }
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" xmlns:wssc="http://schemas.xmlsoap.org/ws/2004/04/sc" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust">"#,
            r#"<Header><ps:AuthInfo xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="PPAuthInfo"><ps:HostingApp>{{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}}</ps:HostingApp><ps:BinaryVersion>4</ps:BinaryVersion><ps:UIVersion>1</ps:UIVersion><ps:Cookies></ps:Cookies><ps:RequestParams>AQAAAAIAAABsYwQAAAAxMDMz</ps:RequestParams></ps:AuthInfo>"#,
            r#"<wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>{}</wsse:Username><wsse:Password>{}</wsse:Password></wsse:UsernameToken></wsse:Security></Header>"#,
            r#"<Body><ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">{}</ps:RequestMultipleSecurityTokens></Body></Envelope>"#
        ),
        escape_xml(username),
        escape_xml(password),
        tokens
    )
}

/// A token in an RST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub address: String,
    /// The token's `Id` (`CompactN`, `PPTokenN`).
    pub id: String,
    /// `t=...&p=...`.
    pub ticket: String,
    /// The session key (`BinarySecret`, decoded), for the messenger token.
    pub secret: Option<Vec<u8>>,
}

/// Why an RST answer gave no tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RstFailure {
    #[error("the account name or password is wrong")]
    FailedAuthentication,
    #[error("the login service answered with the fault {0}")]
    Fault(String),
    #[error("the login service's answer is not an RST response")]
    Malformed,
}

/// Reads an RST answer: its tokens, or the fault.
pub fn parse_rst_response(xml: &str) -> Result<Vec<IssuedToken>, RstFailure> {
    let envelope = crate::soap::Envelope::parse(xml).ok_or(RstFailure::Malformed)?;
    if let Some(fault) = envelope.body.child("Fault") {
        let code = fault.text_at(&["faultcode"]).unwrap_or("");
        return Err(if code.ends_with("FailedAuthentication") {
            RstFailure::FailedAuthentication
        } else {
            RstFailure::Fault(code.to_string())
        });
    }
    let mut responses = Vec::new();
    envelope.body.find_all("RequestSecurityTokenResponse", &mut responses);
    let tokens: Vec<IssuedToken> = responses
        .iter()
        .filter_map(|r| {
            let address = r.find("Address")?.text.trim().to_string();
            let token = r.child("RequestedSecurityToken")?.child("BinarySecurityToken")?;
            let secret = r
                .child("RequestedProofToken")
                .and_then(|p| p.child("BinarySecret"))
                .and_then(|s| crate::base64::decode(s.text.trim()));
            Some(IssuedToken {
                address,
                id: token.attr("Id")?.to_string(),
                ticket: token.text.trim().to_string(),
                secret,
            })
        })
        .collect();
    if tokens.is_empty() { Err(RstFailure::Malformed) } else { Ok(tokens) }
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
        let asked: Vec<(usize, &str, Option<&str>)> =
            r.tokens.iter().map(|t| (t.index, t.address.as_str(), t.policy.as_deref())).collect();
        assert_eq!(asked, [(0, PASSPORT_TB, None), (1, "messenger.msn.com", Some("?id=507"))]);
        assert_eq!(parse_rst_request("<Envelope><Username>a</Username></Envelope>"), None);
        assert_eq!(unescape_xml("a&bogus;"), None);
        assert_eq!(escape_xml("t=1&p=2"), "t=1&amp;p=2");
    }

    #[test]
    fn our_request_reads_back_numbered_as_sent() {
        let xml = rst_request(
            "a&b@example.com",
            "pw<1>",
            &[("messengerclear.live.com", "MBI_KEY_OLD"), ("contacts.msn.com", "MBI")],
        );
        let r = parse_rst_request(&xml).unwrap();
        assert_eq!((r.username.as_str(), r.password.as_str()), ("a&b@example.com", "pw<1>"));
        let asked: Vec<(usize, &str)> = r.tokens.iter().map(|t| (t.index, t.address.as_str())).collect();
        assert_eq!(asked, [(0, PASSPORT_TB), (1, "messengerclear.live.com"), (2, "contacts.msn.com")]);
        assert_eq!(r.tokens[1].policy.as_deref(), Some("MBI_KEY_OLD"));
        let many: Vec<(&str, &str)> = (0..MAX_TOKENS).map(|_| ("x", "y")).collect();
        assert_eq!(parse_rst_request(&rst_request("a", "b", &many)), None, "too many tokens");
    }

    #[test]
    fn reads_tokens_and_faults() {
        let ok = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><wst:RequestSecurityTokenResponseCollection xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"><wst:RequestSecurityTokenResponse><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>messengerclear.live.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo><wst:RequestedSecurityToken><wsse:BinarySecurityToken Id="Compact1">t=x&amp;p=y</wsse:BinarySecurityToken></wst:RequestedSecurityToken><wst:RequestedProofToken><wst:BinarySecret>AAECAwQFBgcICQoLDA0ODxAREhMUFRYX</wst:BinarySecret></wst:RequestedProofToken></wst:RequestSecurityTokenResponse></wst:RequestSecurityTokenResponseCollection></S:Body></S:Envelope>"#;
        let tokens = parse_rst_response(ok).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].id.as_str(), tokens[0].ticket.as_str()), ("Compact1", "t=x&p=y"));
        assert_eq!(tokens[0].secret.as_deref(), Some(&(0u8..24).collect::<Vec<u8>>()[..]));
        let fault = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>x</faultstring></S:Fault></S:Body></S:Envelope>"#;
        assert_eq!(parse_rst_response(fault), Err(RstFailure::FailedAuthentication));
        assert_eq!(parse_rst_response("<x/>"), Err(RstFailure::Malformed));
    }
}
