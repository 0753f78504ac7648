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

use crate::intern::Key;

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
    /// Offline messages one sender leaves, to anyone.
    OfflineMessage,
    /// Accounts created from one address (the web sign-up page), counted
    /// before the invite code or anything else is looked at.
    SignUp,
}

impl Action {
    const COUNT: usize = 7;

    fn index(self) -> usize {
        match self {
            Action::Message => 0,
            Action::Data => 1,
            Action::Invitation => 2,
            Action::ListChange => 3,
            Action::StateChange => 4,
            Action::OfflineMessage => 5,
            Action::SignUp => 6,
        }
    }
}

/// The limits, from the configuration.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub messages: Rate,
    pub data: Rate,
    pub invitations: Rate,
    pub list_changes: Rate,
    pub state_changes: Rate,
    pub offline_messages: Rate,
    pub sign_ups: Rate,
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
    /// Attempts one address may have being checked at once.
    pub in_flight_per_address: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            messages: Rate::new(30, 5.0),
            data: Rate::new(2000, 2000.0),
            invitations: Rate::new(10, 0.5),
            list_changes: Rate::new(100, 2.0),
            // A Windows Live Messenger 2009 sign-in alone says five (CHG, PRP
            // MFN, three UUX): two sign-ins in a minute must not be refused.
            state_changes: Rate::new(20, 0.5),
            // A busy evening of messages to friends who are away, not a
            // mailbox flood: 20 at once, then one every 6 s.
            offline_messages: Rate::new(20, 1.0 / 6.0),
            // A family behind one address signs up a few accounts; a script
            // gets 5, then one every 10 minutes.
            sign_ups: Rate::new(5, 1.0 / 600.0),
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
                in_flight_per_address: DEFAULT_IN_FLIGHT_PER_ADDRESS,
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
            Action::OfflineMessage => self.offline_messages,
            Action::SignUp => self.sign_ups,
        }
    }
}

const SHARDS: usize = 16;

/// A shard: each user's bucket for one action with the rate it was made
/// for, a map per action. By interned key, so that a bucket keeps no copy of
/// the handle and a lookup by `&str` makes none.
#[derive(Debug, Default)]
struct BucketMaps([HashMap<Key, (TokenBucket, Rate)>; Action::COUNT]);

/// Token buckets by key (account, action), sharded; full buckets are dropped
/// as keys are added, so memory follows the number of recently active users.
#[derive(Debug)]
pub struct KeyedBuckets {
    shards: Vec<Mutex<BucketMaps>>,
}

impl Default for KeyedBuckets {
    fn default() -> Self {
        KeyedBuckets { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl KeyedBuckets {
    /// Takes a token from `key`'s bucket for `action`.
    pub fn take(&self, key: &str, action: Action, rate: Rate) -> bool {
        self.take_or_wait(key, action, rate).is_ok()
    }

    /// Takes a token, or says how long until there is one.
    pub fn take_or_wait(&self, key: &str, action: Action, rate: Rate) -> Result<(), Duration> {
        let h = crate::fnv1a(key.as_bytes());
        let mut shard = self.shards[(h as usize) % SHARDS].lock();
        let buckets = &mut shard.0[action.index()];
        let now = Instant::now();
        let outcome = |bucket: &mut TokenBucket| {
            if bucket.take(rate, now) { Ok(()) } else { Err(bucket.time_to_next_token(rate)) }
        };
        if let Some((bucket, _)) = buckets.get_mut(key) {
            return outcome(bucket);
        }
        if buckets.len() >= 4096 && buckets.len().is_power_of_two() {
            buckets.retain(|_, (b, r)| !b.is_full(*r, now));
        }
        let mut bucket = TokenBucket::new(rate);
        let result = outcome(&mut bucket);
        buckets.insert(Key::new(key), (bucket, rate));
        result
    }
}

/// Attempts of one key within the window. `count` includes the attempts
/// still being checked: an attempt is counted as a failure before its
/// password is looked at (reserved) and given back only if it succeeds, so
/// that parallel guesses cannot all pass the check before any is counted.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    in_flight: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn fresh(now: Instant) -> Failures {
        Failures { count: 0, in_flight: 0, since: now, locked_until: None }
    }

    fn live(&self, limits: &LoginLimits, now: Instant) -> bool {
        self.in_flight > 0
            || now.saturating_duration_since(self.since) < limits.window
            || self.locked_until.is_some_and(|t| t > now)
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }
}

/// Attempts one account may have being checked at once: a person signs in
/// from one place at a time (a client retrying meanwhile is the second).
pub const MAX_IN_FLIGHT_PER_ACCOUNT: u32 = 2;
/// Attempts one address may have being checked at once by default (a
/// household or an office behind one NAT signing in together); a gateway
/// or a load tool in front of many users needs more
/// (`--logins-in-flight-per-address`).
pub const DEFAULT_IN_FLIGHT_PER_ADDRESS: u32 = 8;

/// What the throttle says about a login attempt.
#[derive(Debug)]
pub enum LoginVerdict<'a> {
    /// Go ahead, after waiting `delay` (zero when the key has few
    /// failures), and then ask [`LoginAttempt::still_allowed`] again.
    Go { attempt: LoginAttempt<'a>, delay: Duration },
    /// Refuse without checking the password.
    Refuse,
}

/// Failed logins per account and per address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    keys: Mutex<Keys>,
}

#[derive(Debug, Default)]
struct Keys {
    accounts: HashMap<String, Failures>,
    addresses: HashMap<IpAddr, Failures>,
}

/// An attempt counted against its account and address until it is settled.
/// Dropped unsettled (the request went away mid-check) it stays counted as
/// a failure: cancelling must not be a way to guess for free.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    throttle: &'a LoginThrottle,
    limits: &'a LoginLimits,
    account: String,
    address: IpAddr,
    settled: bool,
}

/// How a checked attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Succeeded,
    /// Wrong password, unknown or disabled account.
    Failed,
    /// The check could not be made (the store or the hashing pool failed):
    /// not the client's fault, not counted.
    NotChecked,
}

impl LoginThrottle {
    /// Reserves an attempt on `account` from `address`, or refuses it: when
    /// either is locked, has as many attempts (failed or in flight) as it may
    /// within the window, or as many in flight as it may at once.
    pub fn begin<'a>(&'a self, limits: &'a LoginLimits, account: &str, address: IpAddr) -> LoginVerdict<'a> {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let keys = &mut *keys;
        if keys.accounts.len() >= 65_536 {
            keys.accounts.retain(|_, f| f.live(limits, now));
        }
        if keys.addresses.len() >= 65_536 {
            keys.addresses.retain(|_, f| f.live(limits, now));
        }
        let a = current(&keys.accounts, account, limits, now);
        let b = current(&keys.addresses, &address, limits, now);
        let refused = a.locked(now)
            || b.locked(now)
            || a.count >= limits.refuse_after_account
            || b.count >= limits.refuse_after_address
            || a.in_flight >= MAX_IN_FLIGHT_PER_ACCOUNT
            || b.in_flight >= limits.in_flight_per_address;
        if refused {
            return LoginVerdict::Refuse;
        }
        let over =
            a.count.saturating_sub(limits.slow_after_account).max(b.count.saturating_sub(limits.slow_after_address));
        let reserve = |mut f: Failures| {
            f.count += 1;
            f.in_flight += 1;
            f
        };
        keys.accounts.insert(account.to_string(), reserve(a));
        keys.addresses.insert(address, reserve(b));
        let attempt = LoginAttempt { throttle: self, limits, account: account.to_string(), address, settled: false };
        LoginVerdict::Go { attempt, delay: Duration::from_secs(over as u64).min(limits.max_delay) }
    }

    fn settle(&self, limits: &LoginLimits, account: &str, address: IpAddr, outcome: LoginOutcome) {
        let now = Instant::now();
        let mut keys = self.keys.lock();
        let keys = &mut *keys;
        let give_back = |f: &mut Failures| {
            f.in_flight = f.in_flight.saturating_sub(1);
            f.count = f.count.saturating_sub(1);
        };
        match outcome {
            // A good password clears the account's failures, not the
            // address's: one must not reset a guessing run on other accounts.
            LoginOutcome::Succeeded => {
                if let Some(f) = keys.accounts.get_mut(account) {
                    f.in_flight = f.in_flight.saturating_sub(1);
                    f.count = 0;
                    f.locked_until = None;
                    if f.in_flight == 0 {
                        keys.accounts.remove(account);
                    }
                }
                if let Some(f) = keys.addresses.get_mut(&address) {
                    give_back(f);
                }
            }
            LoginOutcome::NotChecked => {
                keys.accounts.get_mut(account).map(give_back);
                keys.addresses.get_mut(&address).map(give_back);
            }
            LoginOutcome::Failed => {
                if let Some(f) = keys.accounts.get_mut(account) {
                    f.in_flight = f.in_flight.saturating_sub(1);
                    if f.count >= limits.refuse_after_account {
                        f.locked_until = Some(now + limits.lockout);
                    }
                }
                if let Some(f) = keys.addresses.get_mut(&address) {
                    f.in_flight = f.in_flight.saturating_sub(1);
                    if f.count >= limits.refuse_after_address {
                        f.locked_until = Some(now + limits.lockout);
                    }
                }
            }
        }
    }
}

impl LoginAttempt<'_> {
    /// Whether the attempt may still be checked after its delay: failures
    /// settled meanwhile may have locked the account or the address.
    pub fn still_allowed(&self) -> bool {
        let now = Instant::now();
        let keys = self.throttle.keys.lock();
        let locked = |f: Option<&Failures>| f.is_some_and(|f| f.locked(now));
        !locked(keys.accounts.get(&self.account)) && !locked(keys.addresses.get(&self.address))
    }

    /// Records how the check ended.
    pub fn settle(mut self, outcome: LoginOutcome) {
        self.settled = true;
        self.throttle.settle(self.limits, &self.account, self.address, outcome);
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(self.limits, &self.account, self.address, LoginOutcome::Failed);
        }
    }
}

fn current<K, Q>(map: &HashMap<K, Failures>, key: &Q, limits: &LoginLimits, now: Instant) -> Failures
where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    match map.get(key) {
        Some(f) if f.live(limits, now) => *f,
        _ => Failures::fresh(now),
    }
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
        // Every action has a map of its own.
        let all = [
            Action::Message,
            Action::Data,
            Action::Invitation,
            Action::ListChange,
            Action::StateChange,
            Action::OfflineMessage,
            Action::SignUp,
        ];
        let mut indices: Vec<usize> = all.iter().map(|a| a.index()).collect();
        indices.dedup();
        assert_eq!(indices, (0..Action::COUNT).collect::<Vec<_>>());
        for action in all {
            assert!(k.take("c", action, rate) && k.take("c", action, rate) && !k.take("c", action, rate));
        }
    }

    fn attempt(
        t: &LoginThrottle,
        limits: &LoginLimits,
        account: &str,
        ip: IpAddr,
        outcome: LoginOutcome,
    ) -> Option<Duration> {
        match t.begin(limits, account, ip) {
            LoginVerdict::Go { attempt, delay } => {
                attempt.settle(outcome);
                Some(delay)
            }
            LoginVerdict::Refuse => None,
        }
    }

    #[test]
    fn failed_logins_slow_then_refuse() {
        let limits = RateLimits::default().logins;
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..limits.slow_after_account {
            assert_eq!(attempt(&t, &limits, "a@x.com", ip, LoginOutcome::Failed), Some(Duration::ZERO));
        }
        assert_eq!(attempt(&t, &limits, "a@x.com", ip, LoginOutcome::Failed), Some(Duration::ZERO));
        assert_eq!(attempt(&t, &limits, "a@x.com", ip, LoginOutcome::Failed), Some(Duration::from_secs(1)));
        while attempt(&t, &limits, "a@x.com", ip, LoginOutcome::Failed).is_some() {}
        assert_eq!(attempt(&t, &limits, "a@x.com", ip, LoginOutcome::Succeeded), None, "locked, even for the owner");
        // Another account from another address is unaffected.
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(attempt(&t, &limits, "b@x.com", other, LoginOutcome::Succeeded), Some(Duration::ZERO));
        // The same address is locked for every account once it passes its limit.
        for i in 0..limits.refuse_after_address {
            attempt(&t, &limits, &format!("c{i}@x.com"), ip, LoginOutcome::Failed);
        }
        assert_eq!(attempt(&t, &limits, "fresh@x.com", ip, LoginOutcome::Succeeded), None);
    }

    #[test]
    fn parallel_attempts_are_counted_before_they_are_checked() {
        let limits =
            LoginLimits { refuse_after_account: 1000, refuse_after_address: 1000, ..RateLimits::default().logins };
        let t = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..MAX_IN_FLIGHT_PER_ACCOUNT {
            match t.begin(&limits, "a@x.com", ip) {
                LoginVerdict::Go { attempt, .. } => held.push(attempt),
                LoginVerdict::Refuse => panic!("within the in-flight bound"),
            }
        }
        assert!(matches!(t.begin(&limits, "a@x.com", ip), LoginVerdict::Refuse), "a third at once is refused");
        // The address bound holds across accounts.
        for i in 0..limits.in_flight_per_address - MAX_IN_FLIGHT_PER_ACCOUNT {
            match t.begin(&limits, &format!("b{i}@x.com"), ip) {
                LoginVerdict::Go { attempt, .. } => held.push(attempt),
                LoginVerdict::Refuse => panic!("within the address bound"),
            }
        }
        assert!(matches!(t.begin(&limits, "z@x.com", ip), LoginVerdict::Refuse));
        drop(held);
    }

    #[test]
    fn reservations_hit_the_refusal_limit_before_the_checks_finish() {
        let limits = LoginLimits { refuse_after_account: 2, ..RateLimits::default().logins };
        let t = LoginThrottle::default();
        let ips: Vec<IpAddr> = (1..=2).map(|i| format!("192.0.2.{i}").parse().unwrap()).collect();
        // Two attempts from two addresses, both still being checked.
        let held: Vec<_> = ips
            .iter()
            .map(|ip| match t.begin(&limits, "a@x.com", *ip) {
                LoginVerdict::Go { attempt, .. } => attempt,
                LoginVerdict::Refuse => panic!("under the limit"),
            })
            .collect::<Vec<_>>();
        let fourth: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(matches!(t.begin(&limits, "a@x.com", fourth), LoginVerdict::Refuse), "the reservations count");
        // An attempt that waited sees the lock its siblings' failures set.
        let mut held = held.into_iter();
        let waiting = held.next().unwrap();
        for a in held {
            a.settle(LoginOutcome::Failed);
        }
        assert!(!waiting.still_allowed());
        waiting.settle(LoginOutcome::Failed);
        // A check that could not be made is given back.
        let limits = RateLimits::default().logins;
        let t = LoginThrottle::default();
        let ips: Vec<IpAddr> = (1..=3).map(|i| format!("192.0.2.{i}").parse().unwrap()).collect();
        for _ in 0..50 {
            assert!(attempt(&t, &limits, "a@x.com", ips[0], LoginOutcome::NotChecked).is_some());
        }
        // Dropped unsettled: counted as a failure.
        for _ in 0..limits.refuse_after_account {
            if let LoginVerdict::Go { attempt, .. } = t.begin(&limits, "d@x.com", ips[1]) {
                drop(attempt);
            }
        }
        assert!(matches!(t.begin(&limits, "d@x.com", ips[1]), LoginVerdict::Refuse));
    }

    #[test]
    fn strikes_count_within_a_minute() {
        let mut s = Strikes::default();
        assert!(!s.strike(2) && !s.strike(2));
        assert!(s.strike(2));
    }
}
