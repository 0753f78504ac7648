//! Flood control: token buckets for what users do, and a throttle on failed
//! logins so that passwords cannot be guessed at speed.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` a second; each
//! action takes one. A user within the limits never waits: the check is a
//! few arithmetic operations under an uncontended lock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A rate: a burst allowance and a sustained rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    pub const fn new(burst: u32, per_second: f64) -> Rate {
        Rate { burst, per_second }
    }
}

/// One token bucket.
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> TokenBucket {
        TokenBucket { tokens: rate.burst as f64, last: Instant::now() }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst as f64);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the bucket holds a token again (after a failed take).
    fn time_to_next_token(&self, rate: Rate) -> Duration {
        if rate.per_second <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - self.tokens) / rate.per_second).max(0.0))
    }

    /// Whether the bucket has refilled completely (and so can be forgotten).
    fn is_full(&self, rate: Rate, now: Instant) -> bool {
        self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * rate.per_second >= rate.burst as f64
    }
}

/// What a user does that is rate-limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Switchboard messages people type (ack modes U, N, A).
    Message,
    /// P2P data through the switchboard (ack mode D): file transfers and
    /// display pictures send these in long runs.
    Data,
    /// `XFR SB` and `CAL`.
    Invitation,
    /// `ADD`, `ADC`, `REM`, groups, `BLP`, `GTC`, phones, `SBP`.
    ListChange,
    /// `CHG`, `REA`, `PRP MFN`, `UUX`.
    StateChange,
}

/// The limits, from the configuration.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub messages: Rate,
    pub data: Rate,
    pub invitations: Rate,
    pub list_changes: Rate,
    pub state_changes: Rate,
    /// Messages through one switchboard connection.
    pub messages_per_connection: Rate,
    /// Refusals in one minute after which a connection is closed.
    pub abuse_strikes: u32,
    pub logins: LoginLimits,
}

/// The failed-login throttle, per account and per source address.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// Failures counted over this window.
    pub window: Duration,
    /// Failures of one account after which each further attempt is slowed
    /// by a second per failure (up to `max_delay`).
    pub slow_after_account: u32,
    /// Failures of one account after which it refuses every login until the
    /// lockout passes (its real owner included: 911, as for a wrong password).
    pub refuse_after_account: u32,
    pub slow_after_address: u32,
    pub refuse_after_address: u32,
    pub max_delay: Duration,
    pub lockout: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages: Rate::new(30, 5.0),
            data: Rate::new(2000, 2000.0),
            invitations: Rate::new(10, 0.5),
            list_changes: Rate::new(100, 2.0),
            state_changes: Rate::new(10, 0.5),
            messages_per_connection: Rate::new(20, 4.0),
            abuse_strikes: 30,
            logins: LoginLimits {
                window: Duration::from_secs(900),
                slow_after_account: 5,
                refuse_after_account: 10,
                slow_after_address: 10,
                refuse_after_address: 30,
                max_delay: Duration::from_secs(5),
                lockout: Duration::from_secs(900),
            },
        }
    }
}

impl RateLimits {
    pub fn rate(&self, action: Action) -> Rate {
        match action {
            Action::Message => self.messages,
            Action::Data => self.data,
            Action::Invitation => self.invitations,
            Action::ListChange => self.list_changes,
            Action::StateChange => self.state_changes,
        }
    }
}

const SHARDS: usize = 16;

/// A shard: each (user, action) bucket with the rate it was made for.
type BucketMap = HashMap<(String, Action), (TokenBucket, Rate)>;

/// Token buckets by key (account, action), sharded; full buckets are dropped
/// as keys are added, so memory follows the number of recently active users.
#[derive(Debug)]
pub struct KeyedBuckets {
    shards: Vec<Mutex<BucketMap>>,
}

impl Default for KeyedBuckets {
    fn default() -> Self {
        KeyedBuckets { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl KeyedBuckets {
    /// Takes a token from `key`'s bucket for `action`.
    pub fn take(&self, key: &str, action: Action, rate: Rate) -> bool {
        self.take_or_wait(key, action, rate).is_ok()
    }

    /// Takes a token, or says how long until there is one.
    pub fn take_or_wait(&self, key: &str, action: Action, rate: Rate) -> Result<(), Duration> {
        let h = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
        let mut shard = self.shards[(h as usize) % SHARDS].lock();
        let now = Instant::now();
        let outcome = |bucket: &mut TokenBucket| {
            if bucket.take(rate, now) { Ok(()) } else { Err(bucket.time_to_next_token(rate)) }
        };
        if let Some((bucket, _)) = shard.get_mut(&(key.to_string(), action)) {
            return outcome(bucket);
        }
        if shard.len() >= 4096 && shard.len().is_power_of_two() {
            shard.retain(|_, (b, r)| !b.is_full(*r, now));
        }
        let mut bucket = TokenBucket::new(rate);
        let result = outcome(&mut bucket);
        shard.insert((key.to_string(), action), (bucket, rate));
        result
    }
}

/// Failures of one key within the window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

/// What the throttle says about a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerdict {
    /// Go ahead.
    Allow,
    /// Go ahead, but answer only after this delay.
    Slow(Duration),
    /// Refuse without checking the password.
    Refuse,
}

/// Failed logins per account and per address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    accounts: Mutex<HashMap<String, Failures>>,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

impl LoginThrottle {
    /// The verdict for an attempt on `account` from `address`.
    pub fn check(&self, limits: &LoginLimits, account: &str, address: IpAddr) -> LoginVerdict {
        let now = Instant::now();
        let a = current(&mut self.accounts.lock(), account.to_string(), limits, now);
        let b = current(&mut self.addresses.lock(), address, limits, now);
        if a.locked_until.is_some_and(|t| t > now) || b.locked_until.is_some_and(|t| t > now) {
            return LoginVerdict::Refuse;
        }
        let over =
            a.count.saturating_sub(limits.slow_after_account).max(b.count.saturating_sub(limits.slow_after_address));
        if over == 0 {
            LoginVerdict::Allow
        } else {
            LoginVerdict::Slow(Duration::from_secs(over as u64).min(limits.max_delay))
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, limits: &LoginLimits, account: &str, address: IpAddr) {
        let now = Instant::now();
        bump(&mut self.accounts.lock(), account.to_string(), limits, limits.refuse_after_account, now);
        bump(&mut self.addresses.lock(), address, limits, limits.refuse_after_address, now);
    }

    /// A successful login clears the account's failures (not the address's:
    /// one good password must not reset a guessing run on other accounts).
    pub fn succeeded(&self, account: &str) {
        self.accounts.lock().remove(account);
    }
}

fn current<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Failures>,
    key: K,
    limits: &LoginLimits,
    now: Instant,
) -> Failures {
    match map.get(&key) {
        Some(f)
            if now.saturating_duration_since(f.since) < limits.window || f.locked_until.is_some_and(|t| t > now) =>
        {
            *f
        }
        Some(_) => {
            map.remove(&key);
            Failures { count: 0, since: now, locked_until: None }
        }
        None => Failures { count: 0, since: now, locked_until: None },
    }
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Failures>,
    key: K,
    limits: &LoginLimits,
    refuse_after: u32,
    now: Instant,
) {
    if map.len() >= 65_536 {
        map.retain(|_, f| {
            now.saturating_duration_since(f.since) < limits.window || f.locked_until.is_some_and(|t| t > now)
        });
    }
    let mut f = current(map, key.clone(), limits, now);
    f.count += 1;
    if f.count >= refuse_after {
        f.locked_until = Some(now + limits.lockout);
    }
    map.insert(key, f);
}

/// Counts refusals on one connection; too many in a minute means abuse.
#[derive(Debug)]
pub struct Strikes {
    count: u32,
    since: Instant,
}

impl Default for Strikes {
    fn default() -> Self {
        Strikes { count: 0, since: Instant::now() }
    }
}

impl Strikes {
    /// Records a refusal; returns true when the connection should be closed.
    pub fn strike(&mut self, limit: u32) -> bool {
        let now = Instant::now();
        if now.saturating_duration_since(self.since) > Duration::from_secs(60) {
            self.count = 0;
            self.since = now;
        }
        self.count += 1;
        self.count > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let rate = Rate::new(3, 10.0);
        let mut b = TokenBucket::new(rate);
        let t0 = Instant::now();
        assert!(b.take(rate, t0) && b.take(rate, t0) && b.take(rate, t0));
        assert!(!b.take(rate, t0));
        assert!(b.take(rate, t0 + Duration::from_millis(100)));
        assert!(!b.take(rate, t0 + Duration::from_millis(100)));
        assert!(b.take(rate, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn keyed_buckets_are_independent() {
        let k = KeyedBuckets::default();
        let rate = Rate::new(2, 0.0);
        assert!(k.take("a", Action::Message, rate) && k.take("a", Action::Message, rate));
        assert!(!k.take("a", Action::Message, rate));
        assert!(k.take("b", Action::Message, rate));
        assert!(k.take("a", Action::Invitation, rate));
    }

    #[test]
    fn failed_logins_slow_then_refuse() {
        let limits = RateLimits::default().logins;
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..limits.slow_after_account {
            assert_eq!(t.check(&limits, "a@x.com", ip), LoginVerdict::Allow);
            t.failed(&limits, "a@x.com", ip);
        }
        assert_eq!(t.check(&limits, "a@x.com", ip), LoginVerdict::Allow);
        t.failed(&limits, "a@x.com", ip);
        assert_eq!(t.check(&limits, "a@x.com", ip), LoginVerdict::Slow(Duration::from_secs(1)));
        for _ in 0..limits.refuse_after_account {
            t.failed(&limits, "a@x.com", ip);
        }
        assert_eq!(t.check(&limits, "a@x.com", ip), LoginVerdict::Refuse);
        // Another account from another address is unaffected.
        assert_eq!(t.check(&limits, "b@x.com", "192.0.2.2".parse().unwrap()), LoginVerdict::Allow);
        // The same address is locked for every account once it passes its limit.
        for i in 0..limits.refuse_after_address {
            t.failed(&limits, &format!("c{i}@x.com"), ip);
        }
        assert_eq!(t.check(&limits, "fresh@x.com", ip), LoginVerdict::Refuse);
    }

    #[test]
    fn strikes_count_within_a_minute() {
        let mut s = Strikes::default();
        assert!(!s.strike(2) && !s.strike(2));
        assert!(s.strike(2));
    }
}
