//! Web messenger sessions: what a browser holds (as a cookie) after
//! signing in with its password, good on every node of a cluster.
//!
//! A session is a signed token naming the account, when it expires, the
//! password it was opened under (the credential tag: a password change
//! voids it everywhere) and a random id. Nothing is stored per session, so
//! any node that shares the server key can check one; a session ended
//! before it expires (signing out) is remembered by id until it would have
//! expired, on every node.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use msnp::ErrorCode;
use sha2::{Digest, Sha256};

use super::{Backend, store_error};
use crate::cluster::Envelope;
use crate::handle::Handle;
use crate::passport::credential_tag;
use crate::store::Account;

/// What a session token says, once its signature is checked.
struct Claims<'a> {
    key: &'a str,
    expires: u64,
    tag: u64,
    id: &'a str,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Backend {
    fn web_session_mac(&self, payload: &str) -> String {
        let key = Sha256::new().chain_update(b"mariposa web sessions v1\0").chain_update(self.bus_key()).finalize();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(payload.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks the password (throttled, as every login) and opens a session
    /// of `lifetime`: its token and the account.
    pub async fn open_web_session(
        &self,
        handle: &str,
        password: &str,
        source: IpAddr,
        lifetime: Duration,
    ) -> Result<(String, Account), ErrorCode> {
        let account = self.web_login(handle, password, source).await?;
        let tag = credential_tag(&account.credentials.password_hash);
        let expires = unix_now() + lifetime.as_secs();
        let id = crate::secrets::random_token(24);
        let payload = format!("{}.{expires}.{tag:016x}.{id}", account.handle.to_ascii_lowercase());
        let token = format!("{payload}.{}", self.web_session_mac(&payload));
        Ok((token, account))
    }

    /// Reads a token: its claims if the signature holds and it has not
    /// expired or been ended.
    fn web_session_claims<'a>(&self, token: &'a str) -> Option<Claims<'a>> {
        let (payload, mac) = token.rsplit_once('.')?;
        let expected = self.web_session_mac(payload);
        if !crate::secrets::constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let mut parts = payload.rsplitn(4, '.');
        let id = parts.next()?;
        let tag = u64::from_str_radix(parts.next()?, 16).ok()?;
        let expires: u64 = parts.next()?.parse().ok()?;
        let key = parts.next()?;
        let live = expires > unix_now() && !self.ended_web_sessions.lock().contains_key(id);
        live.then_some(Claims { key, expires, tag, id })
    }

    /// The account a session token stands for, while the session lasts and
    /// the password it was opened under is still the account's.
    pub async fn web_session(&self, token: &str) -> Option<Account> {
        let claims = self.web_session_claims(token)?;
        let account = self.account(claims.key).await?;
        let current = !account.disabled && credential_tag(&account.credentials.password_hash) == claims.tag;
        current.then_some(account)
    }

    /// An account by handle, enabled or not (`None` for no such account or
    /// a store failure).
    pub async fn account(&self, handle: &str) -> Option<Account> {
        let handle = Handle::parse(handle).ok()?;
        self.store.account(handle.key()).await.map_err(store_error).ok()?
    }

    /// Ends a session before it expires, here and on every other node.
    pub fn end_web_session(&self, token: &str) {
        let Some(claims) = self.web_session_claims(token) else { return };
        let (id, expires) = (claims.id.to_string(), claims.expires);
        if let Some(cluster) = self.cluster.get() {
            for node in cluster.peers() {
                cluster.send(&node, Envelope::WebSessionEnded { id: id.clone(), expires });
            }
        }
        self.web_session_ended(id, expires);
    }

    /// Remembers an ended session until it would have expired anyway.
    pub(super) fn web_session_ended(&self, id: String, expires: u64) {
        let now = unix_now();
        let mut ended = self.ended_web_sessions.lock();
        ended.retain(|_, until| *until > now);
        ended.insert(id, expires);
    }
}
