//! Passport 1.4 ("Tweener") tickets for MSNP8+ logins.
//!
//! The login service checks the password (Argon2id, on a bounded blocking
//! pool so that a burst of logins never stalls the async workers) and issues
//! a ticket; the notification server accepts it once, for that account only,
//! before it expires.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use msnp::ErrorCode;
use parking_lot::Mutex;

use crate::secrets::{constant_time_eq, random_digits};

/// Characters a ticket token is made of: no `'`, `,`, `&`, space or `%`,
/// which clients use as delimiters around it.
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*$._-";

fn token(len: usize) -> String {
    // random_digits gives uniform decimal digits; draw two per character.
    let digits = random_digits(len * 2);
    digits
        .as_bytes()
        .chunks(2)
        .map(|d| {
            let n = ((d[0] - b'0') as usize) * 10 + (d[1] - b'0') as usize;
            TOKEN_CHARS[n % TOKEN_CHARS.len()] as char
        })
        .collect()
}

/// A fresh `MSPAuth` web-service token, in the ticket alphabet that clients
/// parse out of the profile.
pub fn web_token() -> String {
    token(32)
}

/// A fingerprint of an account's password hash: a ticket carries the one it
/// was issued under, so that changing the password voids every ticket issued
/// before, on every node (the hash's salt changes with each new password).
/// Not a secret: it only tells one hash from another.
pub fn credential_tag(password_hash: &str) -> u64 {
    crate::fnv1a(password_hash.as_bytes())
}

/// What redeeming a ticket tells: the credentials it was issued under and
/// how long it has left (it is still good as a web-service credential
/// until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemed {
    pub tag: u64,
    pub remaining: Duration,
}

/// The proof an MSNP15 client gives with its ticket in `USR ... SSO S`:
/// the login blob over the nonce the server sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SsoProof {
    pub nonce: String,
    pub blob: String,
}

/// What a ticket may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Signing in, once (`USR ... TWN S`, or with the proof of its session
    /// key `USR ... SSO S`).
    SignIn { proof_key: Option<[u8; msnp::sso::SECRET_LEN]> },
    /// A web service (address book, storage, offline messages): presented
    /// with every request until it expires.
    Service,
}

#[derive(Debug)]
struct Ticket {
    owner: String,
    expires: Instant,
    tag: u64,
    usage: Use,
}

/// Outstanding tickets, keyed by a SHA-256 of their `t=` token: the jar
/// holds no token a memory dump could replay.
#[derive(Debug, Default)]
pub struct TicketJar {
    tickets: Mutex<HashMap<[u8; 32], Ticket>>,
}

fn key_of(ticket: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(msnp::passport::ticket_token(ticket).as_bytes()).into()
}

impl TicketJar {
    fn insert(&self, handle_key: &str, tag: u64, lifetime: Duration, usage: Use) -> String {
        let t = token(32);
        let p = token(16);
        let now = Instant::now();
        let mut tickets = self.tickets.lock();
        if tickets.len() >= 1024 && tickets.len().is_power_of_two() {
            tickets.retain(|_, ticket| ticket.expires > now);
        }
        tickets.insert(key_of(&t), Ticket { owner: handle_key.to_string(), expires: now + lifetime, tag, usage });
        format!("t={t}&p={p}")
    }

    /// Issues a sign-in ticket `t=...&p=...` for the account with this
    /// handle key, under the credentials `tag` names.
    pub fn issue(&self, handle_key: &str, tag: u64, lifetime: Duration) -> String {
        self.insert(handle_key, tag, lifetime, Use::SignIn { proof_key: None })
    }

    /// Consumes a sign-in ticket for `handle_key`. The client may send the
    /// whole `t=...&p=...` string or just the token. A ticket issued with a
    /// session key (single sign-on) needs `proof` made with that key; one
    /// without needs none.
    pub fn redeem(&self, handle_key: &str, ticket: &str, proof: Option<&SsoProof>) -> Result<Redeemed, ErrorCode> {
        let key = key_of(ticket);
        let mut tickets = self.tickets.lock();
        // Service tickets are not for signing in, and stay where they are.
        let Use::SignIn { proof_key } = tickets.get(&key).ok_or(ErrorCode::AuthenticationFailed)?.usage else {
            return Err(ErrorCode::AuthenticationFailed);
        };
        let ticket = tickets.remove(&key).ok_or(ErrorCode::AuthenticationFailed)?;
        drop(tickets);
        let now = Instant::now();
        if !constant_time_eq(ticket.owner.as_bytes(), handle_key.as_bytes()) || ticket.expires <= now {
            return Err(ErrorCode::AuthenticationFailed);
        }
        let proven = match (proof_key, proof) {
            (None, None) => true,
            (Some(secret), Some(p)) => msnp::sso::verify_login_blob(&secret, &p.nonce, &p.blob),
            _ => false,
        };
        if !proven {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok(Redeemed { tag: ticket.tag, remaining: ticket.expires - now })
    }

    fn sibling(&self, first: &str, lifetime: Duration, usage: Use) -> Option<String> {
        let (owner, tag) = {
            let tickets = self.tickets.lock();
            let t = tickets.get(&key_of(first))?;
            (t.owner.clone(), t.tag)
        };
        Some(self.insert(&owner, tag, lifetime, usage))
    }

    /// Another sign-in ticket for the owner of `first` (still outstanding),
    /// under the same credentials: RST asks for one per service in one
    /// request. With `proof_key`, signing in with it needs the proof of
    /// that session key.
    pub fn issue_sibling(
        &self,
        first: &str,
        lifetime: Duration,
        proof_key: Option<[u8; msnp::sso::SECRET_LEN]>,
    ) -> Option<String> {
        self.sibling(first, lifetime, Use::SignIn { proof_key })
    }

    /// A web-service ticket for the owner of `first`.
    pub fn issue_service(&self, first: &str, lifetime: Duration) -> Option<String> {
        self.sibling(first, lifetime, Use::Service)
    }

    /// The owner and credentials of a web-service ticket that has not
    /// expired. It stays valid (services take it with every request).
    pub fn service_owner(&self, ticket: &str) -> Option<(String, u64)> {
        let tickets = self.tickets.lock();
        let t = tickets.get(&key_of(ticket))?;
        (t.usage == Use::Service && t.expires > Instant::now()).then(|| (t.owner.clone(), t.tag))
    }

    /// Voids every outstanding ticket of an account (its password changed).
    pub fn revoke(&self, handle_key: &str) {
        self.tickets.lock().retain(|_, ticket| ticket.owner != handle_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use_bound_and_expiring() {
        let jar = TicketJar::default();
        let ticket = jar.issue("a@x.com", 7, Duration::from_secs(60));
        assert!(ticket.starts_with("t=") && ticket.contains("&p="));
        assert!(!ticket.contains(['\'', ',', ' ', '%']));
        assert_eq!(jar.redeem("b@x.com", &ticket, None), Err(ErrorCode::AuthenticationFailed));
        let ticket = jar.issue("a@x.com", 7, Duration::from_secs(60));
        let bare = ticket[2..].split('&').next().unwrap().to_string();
        let redeemed = jar.redeem("a@x.com", &bare, None).unwrap();
        assert_eq!(redeemed.tag, 7);
        assert!(redeemed.remaining > Duration::from_secs(50) && redeemed.remaining <= Duration::from_secs(60));
        assert_eq!(jar.redeem("a@x.com", &ticket, None), Err(ErrorCode::AuthenticationFailed), "replayed");
        let ticket = jar.issue("a@x.com", 7, Duration::ZERO);
        assert_eq!(jar.redeem("a@x.com", &ticket, None), Err(ErrorCode::AuthenticationFailed), "expired");
    }

    #[test]
    fn a_sibling_ticket_has_its_firsts_owner_and_credentials() {
        let jar = TicketJar::default();
        let first = jar.issue("a@x.com", 9, Duration::from_secs(60));
        let sibling = jar.issue_sibling(&first, Duration::from_secs(60), None).unwrap();
        assert_ne!(first, sibling);
        assert_eq!(jar.redeem("a@x.com", &sibling, None).unwrap().tag, 9);
        assert!(jar.issue_sibling("t=unknown&p=x", Duration::from_secs(60), None).is_none());
    }

    #[test]
    fn a_single_sign_on_ticket_needs_the_proof_of_its_key() {
        let jar = TicketJar::default();
        let first = jar.issue("a@x.com", 3, Duration::from_secs(60));
        let secret = [4u8; msnp::sso::SECRET_LEN];
        let nonce = msnp::sso::nonce(&[6; msnp::sso::NONCE_LEN]);
        let proof = SsoProof { blob: msnp::sso::login_blob(&secret, &nonce, [1; 8]), nonce: nonce.clone() };
        let sso = || jar.issue_sibling(&first, Duration::from_secs(60), Some(secret)).unwrap();
        assert!(jar.redeem("a@x.com", &sso(), None).is_err(), "no proof");
        let forged = SsoProof { blob: msnp::sso::login_blob(&[5; 24], &nonce, [1; 8]), nonce: nonce.clone() };
        assert!(jar.redeem("a@x.com", &sso(), Some(&forged)).is_err(), "another key's proof");
        let ticket = sso();
        assert_eq!(jar.redeem("a@x.com", &ticket, Some(&proof)).unwrap().tag, 3);
        assert!(jar.redeem("a@x.com", &ticket, Some(&proof)).is_err(), "replayed");
        assert!(jar.redeem("a@x.com", &first, Some(&proof)).is_err(), "a proof where none was asked for");
    }

    #[test]
    fn a_service_ticket_serves_until_it_expires_but_never_signs_in() {
        let jar = TicketJar::default();
        let first = jar.issue("a@x.com", 3, Duration::from_secs(60));
        let service = jar.issue_service(&first, Duration::from_secs(60)).unwrap();
        assert_eq!(jar.service_owner(&service), Some(("a@x.com".to_string(), 3)));
        assert_eq!(jar.service_owner(&service), Some(("a@x.com".to_string(), 3)), "used again");
        assert!(jar.redeem("a@x.com", &service, None).is_err());
        assert!(jar.service_owner(&service).is_some(), "a refused sign-in leaves it be");
        assert_eq!(jar.service_owner(&first), None, "a sign-in ticket is no service ticket");
        let short = jar.issue_service(&first, Duration::ZERO).unwrap();
        assert_eq!(jar.service_owner(&short), None, "expired");
        jar.revoke("a@x.com");
        assert_eq!(jar.service_owner(&service), None, "revoked");
    }

    #[test]
    fn revoking_voids_only_that_accounts_tickets() {
        let jar = TicketJar::default();
        let a = jar.issue("a@x.com", 1, Duration::from_secs(60));
        let b = jar.issue("b@x.com", 1, Duration::from_secs(60));
        jar.revoke("a@x.com");
        assert!(jar.redeem("a@x.com", &a, None).is_err());
        assert!(jar.redeem("b@x.com", &b, None).is_ok());
    }

    #[test]
    fn a_new_password_hash_has_a_new_tag() {
        let one = crate::secrets::hash_password("same").unwrap();
        let two = crate::secrets::hash_password("same").unwrap();
        assert_ne!(credential_tag(&one), credential_tag(&two), "a new salt, a new tag");
        assert_eq!(credential_tag(&one), credential_tag(&one));
    }
}
