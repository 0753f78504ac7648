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

#[derive(Debug)]
struct Ticket {
    owner: String,
    expires: Instant,
    tag: u64,
}

/// Outstanding tickets, keyed by their `t=` token.
#[derive(Debug, Default)]
pub struct TicketJar {
    tickets: Mutex<HashMap<String, Ticket>>,
}

impl TicketJar {
    /// Issues a ticket `t=...&p=...` for the account with this handle key,
    /// under the credentials `tag` names.
    pub fn issue(&self, handle_key: &str, tag: u64, lifetime: Duration) -> String {
        let t = token(32);
        let p = token(16);
        let now = Instant::now();
        let mut tickets = self.tickets.lock();
        if tickets.len() >= 1024 && tickets.len().is_power_of_two() {
            tickets.retain(|_, ticket| ticket.expires > now);
        }
        tickets.insert(t.clone(), Ticket { owner: handle_key.to_string(), expires: now + lifetime, tag });
        format!("t={t}&p={p}")
    }

    /// Consumes a ticket for `handle_key`. The client may send the whole
    /// `t=...&p=...` string or just the token.
    pub fn redeem(&self, handle_key: &str, ticket: &str) -> Result<Redeemed, ErrorCode> {
        let t = msnp::passport::ticket_token(ticket);
        let ticket = self.tickets.lock().remove(t).ok_or(ErrorCode::AuthenticationFailed)?;
        let now = Instant::now();
        if !constant_time_eq(ticket.owner.as_bytes(), handle_key.as_bytes()) || ticket.expires <= now {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok(Redeemed { tag: ticket.tag, remaining: ticket.expires - now })
    }

    /// Another ticket for the owner of `first` (still outstanding), under the
    /// same credentials: RST asks for one per service in one request.
    pub fn issue_sibling(&self, first: &str, lifetime: Duration) -> Option<String> {
        let (owner, tag) = {
            let tickets = self.tickets.lock();
            let t = tickets.get(msnp::passport::ticket_token(first))?;
            (t.owner.clone(), t.tag)
        };
        Some(self.issue(&owner, tag, lifetime))
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
        assert_eq!(jar.redeem("b@x.com", &ticket), Err(ErrorCode::AuthenticationFailed));
        let ticket = jar.issue("a@x.com", 7, Duration::from_secs(60));
        let bare = ticket[2..].split('&').next().unwrap().to_string();
        let redeemed = jar.redeem("a@x.com", &bare).unwrap();
        assert_eq!(redeemed.tag, 7);
        assert!(redeemed.remaining > Duration::from_secs(50) && redeemed.remaining <= Duration::from_secs(60));
        assert_eq!(jar.redeem("a@x.com", &ticket), Err(ErrorCode::AuthenticationFailed), "replayed");
        let ticket = jar.issue("a@x.com", 7, Duration::ZERO);
        assert_eq!(jar.redeem("a@x.com", &ticket), Err(ErrorCode::AuthenticationFailed), "expired");
    }

    #[test]
    fn a_sibling_ticket_has_its_firsts_owner_and_credentials() {
        let jar = TicketJar::default();
        let first = jar.issue("a@x.com", 9, Duration::from_secs(60));
        let sibling = jar.issue_sibling(&first, Duration::from_secs(60)).unwrap();
        assert_ne!(first, sibling);
        assert_eq!(jar.redeem("a@x.com", &sibling).unwrap().tag, 9);
        assert!(jar.issue_sibling("t=unknown&p=x", Duration::from_secs(60)).is_none());
    }

    #[test]
    fn revoking_voids_only_that_accounts_tickets() {
        let jar = TicketJar::default();
        let a = jar.issue("a@x.com", 1, Duration::from_secs(60));
        let b = jar.issue("b@x.com", 1, Duration::from_secs(60));
        jar.revoke("a@x.com");
        assert!(jar.redeem("a@x.com", &a).is_err());
        assert!(jar.redeem("b@x.com", &b).is_ok());
    }

    #[test]
    fn a_new_password_hash_has_a_new_tag() {
        let one = crate::secrets::hash_password("same").unwrap();
        let two = crate::secrets::hash_password("same").unwrap();
        assert_ne!(credential_tag(&one), credential_tag(&two), "a new salt, a new tag");
        assert_eq!(credential_tag(&one), credential_tag(&one));
    }
}
