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

/// Outstanding tickets, keyed by their `t=` token.
#[derive(Debug, Default)]
pub struct TicketJar {
    tickets: Mutex<HashMap<String, (String, Instant)>>,
}

impl TicketJar {
    /// Issues a ticket `t=...&p=...` for the account with this handle key.
    pub fn issue(&self, handle_key: &str, lifetime: Duration) -> String {
        let t = token(32);
        let p = token(16);
        let now = Instant::now();
        let mut tickets = self.tickets.lock();
        if tickets.len() >= 1024 && tickets.len().is_power_of_two() {
            tickets.retain(|_, (_, expires)| *expires > now);
        }
        tickets.insert(t.clone(), (handle_key.to_string(), now + lifetime));
        format!("t={t}&p={p}")
    }

    /// Consumes a ticket for `handle_key`. The client may send the whole
    /// `t=...&p=...` string or just the token.
    pub fn redeem(&self, handle_key: &str, ticket: &str) -> Result<(), ErrorCode> {
        let t = ticket.strip_prefix("t=").unwrap_or(ticket);
        let t = t.split('&').next().unwrap_or("");
        let (owner, expires) = self.tickets.lock().remove(t).ok_or(ErrorCode::AuthenticationFailed)?;
        if !constant_time_eq(owner.as_bytes(), handle_key.as_bytes()) || expires <= Instant::now() {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok(())
    }
}

/// The challenge string of `USR ... TWN S`: the ten keys Gaim-era clients
/// look for, with a fresh time and a random `tpf`.
pub fn twn_challenge(unix_time: u64) -> String {
    let tpf: String = random_digits(32).bytes().map(|b| char::from(b"0123456789abcdef"[(b - b'0') as usize])).collect();
    format!(
        "lc=1033,id=507,tw=40,fs=1,ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct={unix_time},kpp=1,kv=5,ver=2.1.0173.1,tpf={tpf}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use_bound_and_expiring() {
        let jar = TicketJar::default();
        let ticket = jar.issue("a@x.com", Duration::from_secs(60));
        assert!(ticket.starts_with("t=") && ticket.contains("&p="));
        assert!(!ticket.contains(['\'', ',', ' ', '%']));
        assert_eq!(jar.redeem("b@x.com", &ticket), Err(ErrorCode::AuthenticationFailed));
        let ticket = jar.issue("a@x.com", Duration::from_secs(60));
        let bare = ticket[2..].split('&').next().unwrap().to_string();
        assert_eq!(jar.redeem("a@x.com", &bare), Ok(()));
        assert_eq!(jar.redeem("a@x.com", &ticket), Err(ErrorCode::AuthenticationFailed), "replayed");
        let ticket = jar.issue("a@x.com", Duration::ZERO);
        assert_eq!(jar.redeem("a@x.com", &ticket), Err(ErrorCode::AuthenticationFailed), "expired");
    }

    #[test]
    fn the_challenge_carries_the_ten_keys() {
        let c = twn_challenge(1062764229);
        for key in ["lc=", "id=", "tw=", "fs=", "ru=", "ct=1062764229", "kpp=", "kv=", "ver=", "tpf="] {
            assert!(c.contains(key), "{key}");
        }
        assert!(!c.contains(' '));
    }
}
