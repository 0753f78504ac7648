//! SASL as XMPP uses it (RFC 6120 section 6): PLAIN (RFC 4616) and
//! SCRAM-SHA-1 (RFC 5802), both sides, no I/O. The password check itself
//! (a key derivation of thousands of rounds) is a separate step,
//! [`ScramFinal::verify`], so that the caller can run it where slow work
//! belongs.
//!
//! Passwords are used as given, without SASLprep: Mariposa's passwords are
//! the MSN accounts' own, checked byte for byte on every other login too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

/// Why an exchange failed, as the `<failure/>` condition names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("malformed-request")]
    MalformedRequest,
    #[error("incorrect-encoding")]
    IncorrectEncoding,
    #[error("invalid-mechanism")]
    InvalidMechanism,
    #[error("not-authorized")]
    NotAuthorized,
    #[error("encryption-required")]
    EncryptionRequired,
    #[error("invalid-authzid")]
    InvalidAuthzid,
    #[error("aborted")]
    Aborted,
    #[error("temporary-auth-failure")]
    TemporaryAuthFailure,
}

impl SaslError {
    /// The condition element's name.
    pub fn condition(self) -> &'static str {
        match self {
            SaslError::MalformedRequest => "malformed-request",
            SaslError::IncorrectEncoding => "incorrect-encoding",
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::NotAuthorized => "not-authorized",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::Aborted => "aborted",
            SaslError::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// What a PLAIN exchange carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    /// Who to act as, when not the one authenticating.
    pub authzid: Option<String>,
    /// Who authenticates (XMPP clients send the JID's localpart).
    pub authcid: String,
    pub password: String,
}

impl Plain {
    /// Reads `authzid NUL authcid NUL password`.
    pub fn parse(data: &[u8]) -> Result<Plain, SaslError> {
        let text = std::str::from_utf8(data).map_err(|_| SaslError::MalformedRequest)?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SaslError::MalformedRequest);
        };
        if authcid.is_empty() || password.is_empty() {
            return Err(SaslError::MalformedRequest);
        }
        let authzid = (!authzid.is_empty()).then(|| authzid.to_string());
        Ok(Plain { authzid, authcid: authcid.to_string(), password: password.to_string() })
    }

    pub fn encode(&self) -> Vec<u8> {
        format!("{}\0{}\0{}", self.authzid.as_deref().unwrap_or(""), self.authcid, self.password).into_bytes()
    }
}

/// Iterations of the key derivation that the server asks for.
pub const SCRAM_ITERATIONS: u32 = 4096;
/// Fewer is refused from a server by our client.
const MIN_ITERATIONS: u32 = 4096;
/// More is refused too: the client would spend seconds on it.
const MAX_ITERATIONS: u32 = 100_000;

/// A SCRAM client's first message, read by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramFirst {
    /// Who authenticates (decoded from its `saslname` form).
    pub username: String,
    pub authzid: Option<String>,
    gs2_header: String,
    bare: String,
    client_nonce: String,
}

impl ScramFirst {
    pub fn parse(data: &[u8]) -> Result<ScramFirst, SaslError> {
        let text = std::str::from_utf8(data).map_err(|_| SaslError::MalformedRequest)?;
        let mut fields = text.splitn(3, ',');
        let (Some(binding), Some(raw_authzid), Some(bare)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(SaslError::MalformedRequest);
        };
        // No channel binding: `n` (client does not support it) or `y`
        // (client does, thinks we do not); `p=` asks for one we lack.
        if binding != "n" && binding != "y" {
            return Err(SaslError::MalformedRequest);
        }
        let authzid = match raw_authzid {
            "" => None,
            a => Some(saslname(a.strip_prefix("a=").ok_or(SaslError::MalformedRequest)?)?),
        };
        let attrs = attributes(bare)?;
        // A mandatory extension (`m=`) is one we do not know.
        if attrs.first().map(|(k, _)| *k) == Some('m') {
            return Err(SaslError::MalformedRequest);
        }
        let (Some(user), Some(nonce)) = (find(&attrs, 'n'), find(&attrs, 'r')) else {
            return Err(SaslError::MalformedRequest);
        };
        if user.is_empty() || nonce.is_empty() || !nonce.chars().all(is_printable) {
            return Err(SaslError::MalformedRequest);
        }
        Ok(ScramFirst {
            username: saslname(user)?,
            authzid,
            gs2_header: format!("{binding},{raw_authzid},"),
            bare: bare.to_string(),
            client_nonce: nonce.to_string(),
        })
    }
}

/// The server's side after its first message: waits for the client's final one.
#[derive(Debug, Clone)]
pub struct ScramServer {
    first: ScramFirst,
    server_first: String,
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

impl ScramServer {
    /// Answers `first` with the combined nonce, the account's salt and the
    /// iterations. `server_nonce` is fresh randomness, printable, no comma.
    pub fn new(first: ScramFirst, server_nonce: &str, salt: &[u8], iterations: u32) -> (ScramServer, Vec<u8>) {
        let nonce = format!("{}{server_nonce}", first.client_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let message = server_first.clone().into_bytes();
        (ScramServer { first, server_first, nonce, salt: salt.to_vec(), iterations }, message)
    }

    /// Reads the client's final message: its channel binding must repeat
    /// the header and its nonce must be ours.
    pub fn read_final(&self, data: &[u8]) -> Result<ScramFinal, SaslError> {
        let text = std::str::from_utf8(data).map_err(|_| SaslError::MalformedRequest)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(SaslError::MalformedRequest)?;
        let attrs = attributes(without_proof)?;
        let (Some(binding), Some(nonce)) = (find(&attrs, 'c'), find(&attrs, 'r')) else {
            return Err(SaslError::MalformedRequest);
        };
        let binding = B64.decode(binding).map_err(|_| SaslError::IncorrectEncoding)?;
        if binding != self.first.gs2_header.as_bytes() || nonce != self.nonce {
            return Err(SaslError::NotAuthorized);
        }
        let proof: [u8; 20] = B64
            .decode(proof)
            .map_err(|_| SaslError::IncorrectEncoding)?
            .try_into()
            .map_err(|_| SaslError::NotAuthorized)?;
        let auth_message = format!("{},{},{without_proof}", self.first.bare, self.server_first);
        Ok(ScramFinal { auth_message, proof, salt: self.salt.clone(), iterations: self.iterations })
    }

    pub fn username(&self) -> &str {
        &self.first.username
    }

    pub fn authzid(&self) -> Option<&str> {
        self.first.authzid.as_deref()
    }
}

/// Everything needed to check a client's proof against a password.
#[derive(Debug, Clone)]
pub struct ScramFinal {
    auth_message: String,
    proof: [u8; 20],
    salt: Vec<u8>,
    iterations: u32,
}

impl ScramFinal {
    /// The server's final message (`v=` its signature) if the proof was
    /// made with `password`. Costs the key derivation: slow on purpose.
    pub fn verify(&self, password: &str) -> Option<Vec<u8>> {
        let keys = Keys::derive(password, &self.salt, self.iterations);
        let signature = hmac(&keys.stored_key, self.auth_message.as_bytes());
        let client_key: Vec<u8> = self.proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        let stored: [u8; 20] = Sha1::digest(&client_key).into();
        if !constant_time_eq(&stored, &keys.stored_key) {
            return None;
        }
        let server_signature = hmac(&keys.server_key, self.auth_message.as_bytes());
        Some(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// The client's side.
#[derive(Debug, Clone)]
pub struct ScramClient {
    password: String,
    bare: String,
    expected_server_signature: Option<[u8; 20]>,
}

impl ScramClient {
    /// Starts an exchange as `username`; returns the first message.
    pub fn new(username: &str, password: &str, nonce: &str) -> (ScramClient, Vec<u8>) {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        let bare = format!("n={name},r={nonce}");
        let first = format!("n,,{bare}").into_bytes();
        (ScramClient { password: password.to_string(), bare, expected_server_signature: None }, first)
    }

    /// Answers the server's first message with the proof.
    pub fn answer(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let text = std::str::from_utf8(server_first).map_err(|_| SaslError::MalformedRequest)?;
        let attrs = attributes(text)?;
        let (Some(nonce), Some(salt), Some(iterations)) = (find(&attrs, 'r'), find(&attrs, 's'), find(&attrs, 'i'))
        else {
            return Err(SaslError::MalformedRequest);
        };
        let ours = self.bare.rsplit_once("r=").map(|(_, n)| n).unwrap_or_default();
        if !nonce.starts_with(ours) || nonce.len() == ours.len() {
            return Err(SaslError::NotAuthorized);
        }
        let salt = B64.decode(salt).map_err(|_| SaslError::IncorrectEncoding)?;
        let iterations: u32 = iterations.parse().map_err(|_| SaslError::MalformedRequest)?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::NotAuthorized);
        }
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let keys = Keys::derive(&self.password, &salt, iterations);
        let signature = hmac(&keys.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = keys.client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
        self.expected_server_signature = Some(hmac(&keys.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Whether the server's final message proves it knew the password too.
    pub fn server_verified(&self, server_final: &[u8]) -> bool {
        let given =
            std::str::from_utf8(server_final).ok().and_then(|t| t.strip_prefix("v=")).and_then(|v| B64.decode(v).ok());
        match (given, self.expected_server_signature) {
            (Some(given), Some(expected)) => constant_time_eq(&given, &expected),
            _ => false,
        }
    }
}

struct Keys {
    client_key: [u8; 20],
    stored_key: [u8; 20],
    server_key: [u8; 20],
}

impl Keys {
    fn derive(password: &str, salt: &[u8], iterations: u32) -> Keys {
        let mut salted = [0u8; 20];
        pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        Keys { client_key, stored_key: Sha1::digest(client_key).into(), server_key: hmac(&salted, b"Server Key") }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `k=v` pairs separated by commas.
fn attributes(text: &str) -> Result<Vec<(char, &str)>, SaslError> {
    text.split(',')
        .map(|pair| {
            let mut chars = pair.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &pair[2..])),
                _ => Err(SaslError::MalformedRequest),
            }
        })
        .collect()
}

fn find<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Decodes a `saslname` (`=2C` is a comma, `=3D` an equals sign).
fn saslname(text: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::MalformedRequest),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_printable(c: char) -> bool {
    matches!(c, '\x21'..='\x7e') && c != ','
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reads_and_refuses() {
        let p = Plain::parse(b"\0alice\0secret").unwrap();
        assert_eq!((p.authzid, p.authcid.as_str(), p.password.as_str()), (None, "alice", "secret"));
        for bad in [&b"alice\0secret"[..], b"\0\0secret", b"\0alice\0", b"a\0b\0c\0d", b"\0\xff\0x"] {
            assert_eq!(Plain::parse(bad), Err(SaslError::MalformedRequest));
        }
    }

    /// RFC 5802 section 5: user `user`, password `pencil`.
    #[test]
    fn scram_sha1_matches_the_rfc_example_on_both_sides() {
        let first = ScramFirst::parse(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(first.username, "user");
        let salt = B64.decode("QSXCR+Q6sek8bf92").unwrap();
        let (server, server_first) = ScramServer::new(first, "3rfcNHYJY1ZVvWVs7j", &salt, 4096);
        assert_eq!(server_first, b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
        let client_final = b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
        let last = server.read_final(client_final).unwrap();
        assert_eq!(last.verify("pencil").as_deref(), Some(&b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="[..]));
        assert_eq!(last.verify("pencil2"), None);
        // Our client makes the same messages.
        let (mut client, first) = ScramClient::new("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(first, b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(client.answer(&server_first).unwrap(), client_final);
        assert!(client.server_verified(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="));
        assert!(!client.server_verified(b"v=AAAA"));
    }

    #[test]
    fn scram_refuses_what_it_cannot_take() {
        for bad in [
            &b"p=tls-unique,,n=user,r=abc"[..],
            b"n,,r=abc",
            b"n,,n=user",
            b"n,,m=ext,n=user,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,x,n=user,r=abc",
            b"garbage",
        ] {
            assert_eq!(ScramFirst::parse(bad), Err(SaslError::MalformedRequest), "{}", String::from_utf8_lossy(bad));
        }
        let first = ScramFirst::parse(b"n,,n=a=2Cb,r=abc").unwrap();
        assert_eq!(first.username, "a,b");
        let (server, _) = ScramServer::new(first, "def", b"salt", 4096);
        // Another nonce, another binding, no proof.
        assert_eq!(server.read_final(b"c=biws,r=abcxyz,p=AAAA").unwrap_err(), SaslError::NotAuthorized);
        assert_eq!(server.read_final(b"c=eSws,r=abcdef,p=AAAA").unwrap_err(), SaslError::NotAuthorized);
        assert_eq!(server.read_final(b"c=biws,r=abcdef").unwrap_err(), SaslError::MalformedRequest);
        assert_eq!(server.read_final(b"c=biws,r=abcdef,p=!!").unwrap_err(), SaslError::IncorrectEncoding);
    }
}
