//! Switchboard sessions (draft section 8): the cookies that admit people, the
//! sessions, and relaying between participants.
//!
//! A cookie is random, single-use, bound to one account and, for an
//! invitation, to one session; it expires. Sessions exist while someone is
//! in them.
//!
//! Over 700 lines on purpose: cookies, sessions and the relay share the
//! session's one lock and its invariants (who is in, what is held for whom),
//! which read best in one place; most of the length is its unit tests.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msnp::endpoint::{Address, MachineGuid};
use msnp::{Dialect, ErrorCode};
use parking_lot::Mutex;
use tokio::sync::{Notify, mpsc};

use crate::secrets::{constant_time_eq, random_digits, random_u32};

/// Something a switchboard connection must tell its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbEvent {
    /// Someone joined (`JOI`): a user, or one endpoint of a user
    /// (`machine`, MSNP16+); `first` when no other endpoint of theirs was
    /// in the session (older dialects see only that one).
    Joined {
        handle: String,
        friendly: String,
        client_id: u32,
        extended_caps: u32,
        machine: Option<MachineGuid>,
        first: bool,
    },
    /// Someone left (`BYE`); `idle` when the server ended their stay;
    /// `last` when no other endpoint of theirs stays.
    Left { handle: String, idle: bool, machine: Option<MachineGuid>, last: bool },
    /// A message from another participant (`MSG handle friendly n`).
    Message { handle: String, friendly: String, payload: Bytes },
}

/// What a cookie admits its holder to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieKind {
    /// From `XFR SB`: may open a new session with `USR`.
    NewSession,
    /// From `RNG`: may join this session with `ANS`.
    Invitation { session_id: u32 },
}

/// A cookie's record: who may use it, for what, until when.
#[derive(Debug, Clone)]
pub struct CookieGrant {
    pub handle: String,
    /// The dialect of the holder's notification connection; the switchboard
    /// has no `VER` of its own (draft 8.2).
    pub dialect: Dialect,
    pub friendly: String,
    pub client_id: u32,
    pub extended_caps: u32,
    /// The endpoint the cookie was issued to (MSNP16+).
    pub machine: Option<MachineGuid>,
    pub kind: CookieKind,
    expires: Instant,
}

/// Whom a cookie is issued to.
#[derive(Debug, Clone, Copy)]
pub struct GrantFor<'a> {
    pub handle: &'a str,
    pub friendly: &'a str,
    pub client_id: u32,
    pub dialect: Dialect,
    pub extended_caps: u32,
    pub machine: Option<&'a MachineGuid>,
}

/// Outstanding cookies, with a cap on how many one user may have caused, so
/// that a client looping on `XFR SB` or `CAL` cannot grow the jar without
/// bound.
#[derive(Debug, Default)]
pub struct CookieJar {
    inner: Mutex<Jar>,
}

#[derive(Debug, Default)]
struct Jar {
    grants: HashMap<String, (CookieGrant, String)>,
    per_requester: HashMap<String, usize>,
}

impl Jar {
    fn forget(&mut self, requester: &str) {
        if let Some(n) = self.per_requester.get_mut(requester) {
            *n -= 1;
            if *n == 0 {
                self.per_requester.remove(requester);
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        let expired: Vec<String> =
            self.grants.iter().filter(|(_, (g, _))| g.expires <= now).map(|(c, _)| c.clone()).collect();
        for cookie in expired {
            if let Some((_, requester)) = self.grants.remove(&cookie) {
                self.forget(&requester);
            }
        }
    }
}

/// Most unexpired cookies one user's requests may have outstanding.
pub const MAX_COOKIES_PER_REQUESTER: usize = 64;

impl CookieJar {
    /// Issues a fresh cookie for `user`, on behalf of `requester_key` (the
    /// user who asked: the `XFR SB` sender or the `CAL` caller). Refuses with
    /// 713 when the requester has too many outstanding.
    pub fn issue(
        &self,
        user: GrantFor<'_>,
        requester_key: &str,
        kind: CookieKind,
        lifetime: Duration,
    ) -> Result<String, ErrorCode> {
        let cookie = format!("{}.{}.{}", random_digits(10), random_digits(10), random_digits(10));
        let now = Instant::now();
        let mut jar = self.inner.lock();
        if jar.per_requester.get(requester_key).copied().unwrap_or(0) >= MAX_COOKIES_PER_REQUESTER {
            jar.sweep(now);
            if jar.per_requester.get(requester_key).copied().unwrap_or(0) >= MAX_COOKIES_PER_REQUESTER {
                return Err(ErrorCode::UserTooActive);
            }
        }
        let grant = CookieGrant {
            handle: user.handle.to_string(),
            dialect: user.dialect,
            friendly: user.friendly.to_string(),
            client_id: user.client_id,
            extended_caps: user.extended_caps,
            machine: user.machine.cloned(),
            kind,
            expires: now + lifetime,
        };
        *jar.per_requester.entry(requester_key.to_string()).or_default() += 1;
        jar.grants.insert(cookie.clone(), (grant, requester_key.to_string()));
        Ok(cookie)
    }

    /// Consumes a cookie: it must exist, be unexpired, belong to `handle` and
    /// be of the expected kind. The cookie is gone afterwards either way, so a
    /// guess or a replay cannot be retried against it.
    /// `who` may name an endpoint (`handle;{guid}`): it must be the one the
    /// cookie was issued to, when it was issued to one.
    pub fn redeem(&self, cookie: &str, who: &Address, kind: CookieKind) -> Result<CookieGrant, ErrorCode> {
        let handle = who.handle.as_str();
        let grant = {
            let mut jar = self.inner.lock();
            let (grant, requester) = jar.grants.remove(cookie).ok_or(ErrorCode::AuthenticationFailed)?;
            jar.forget(&requester);
            grant
        };
        let handle_ok =
            constant_time_eq(grant.handle.to_ascii_lowercase().as_bytes(), handle.to_ascii_lowercase().as_bytes());
        let endpoint_ok = match (&grant.machine, &who.endpoint) {
            (Some(issued), Some(named)) => issued == named,
            _ => true,
        };
        if !handle_ok || !endpoint_ok || grant.kind != kind || grant.expires <= Instant::now() {
            return Err(ErrorCode::AuthenticationFailed);
        }
        Ok(grant)
    }

    /// How many cookies are outstanding (expired ones may still be counted).
    pub fn len(&self) -> usize {
        self.inner.lock().grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One person in a session, as seen by the others.
#[derive(Debug)]
pub struct Participant {
    pub handle: String,
    pub key: String,
    pub friendly: String,
    pub client_id: u32,
    pub extended_caps: u32,
    pub dialect: Dialect,
    /// The endpoint this participant is (MSNP16+ sign-ins).
    pub machine: Option<MachineGuid>,
    /// Distinguishes two connections of the same user.
    pub connection_id: u64,
    /// A stand-in for the sender of offline messages: present in the roster,
    /// with no connection behind it.
    pub stand_in: bool,
    /// Someone without a switchboard (MSNP21), present through a bridge.
    pub bridged: bool,
    outbox: mpsc::Sender<SbEvent>,
    overflowed: AtomicBool,
    wake: Notify,
    /// Typed messages through this one connection (flood control beside
    /// the account's), made at the first message.
    typed: Mutex<Option<crate::limits::TokenBucket>>,
}

impl Participant {
    /// Takes a token from this connection's typed-message bucket.
    pub(crate) fn take_typed(&self, rate: crate::limits::Rate) -> bool {
        let mut bucket = self.typed.lock();
        bucket.get_or_insert_with(|| crate::limits::TokenBucket::new(rate)).take(rate, Instant::now())
    }

    pub fn new(grant: &CookieGrant, connection_id: u64, outbox: mpsc::Sender<SbEvent>) -> Participant {
        Participant {
            handle: grant.handle.clone(),
            key: grant.handle.to_ascii_lowercase(),
            friendly: grant.friendly.clone(),
            client_id: grant.client_id,
            extended_caps: grant.extended_caps,
            dialect: grant.dialect,
            machine: grant.machine.clone(),
            connection_id,
            stand_in: false,
            bridged: false,
            outbox,
            overflowed: AtomicBool::new(false),
            wake: Notify::new(),
            typed: Mutex::new(None),
        }
    }

    /// Someone without a switchboard connection (MSNP21), whose events a
    /// bridge reads from `outbox` and passes on.
    pub fn bridged(
        handle: &str,
        friendly: &str,
        client_id: u32,
        dialect: Dialect,
        outbox: mpsc::Sender<SbEvent>,
    ) -> Participant {
        Participant {
            handle: handle.to_string(),
            key: handle.to_ascii_lowercase(),
            friendly: friendly.to_string(),
            client_id,
            extended_caps: 0,
            dialect,
            machine: None,
            connection_id: 0,
            stand_in: false,
            bridged: true,
            outbox,
            overflowed: AtomicBool::new(false),
            wake: Notify::new(),
            typed: Mutex::new(None),
        }
    }

    /// A roster entry for someone who is not connected (the sender of
    /// offline messages). Messages to it are not delivered.
    pub fn stand_in(handle: &str, friendly: &str, dialect: Dialect) -> Participant {
        let (outbox, _) = mpsc::channel(1);
        Participant {
            handle: handle.to_string(),
            key: handle.to_ascii_lowercase(),
            friendly: friendly.to_string(),
            client_id: 0,
            extended_caps: 0,
            dialect,
            machine: None,
            connection_id: 0,
            stand_in: true,
            bridged: false,
            outbox,
            overflowed: AtomicBool::new(false),
            wake: Notify::new(),
            typed: Mutex::new(None),
        }
    }

    /// Marks the connection to be closed: it is not reading.
    fn flag_overflow(&self) {
        self.overflowed.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Whether the queue can take one more event (a closed one drops
    /// whatever it is given, so it never holds a sender up).
    fn has_room(&self) -> bool {
        self.outbox.is_closed() || self.outbox.capacity() > 0
    }

    /// Queues an event; returns false if it could not be queued. A full queue
    /// flags the connection to be closed.
    fn deliver(&self, event: SbEvent) -> bool {
        match self.outbox.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.flag_overflow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Resolves when the connection must close because its queue overflowed.
    pub async fn overflowed(&self) {
        loop {
            if self.overflowed.load(Ordering::Relaxed) {
                return;
            }
            self.wake.notified().await;
        }
    }
}

/// One conversation.
#[derive(Debug)]
pub struct SwitchboardSession {
    pub id: u32,
    participants: Mutex<Vec<Arc<Participant>>>,
    ended: AtomicBool,
    /// Offline messages this session was opened to deliver.
    offline: Mutex<Vec<crate::store::OfflineMessage>>,
    /// Replies to a stand-in, kept for its user while they are invited;
    /// and what was said while an endpoint was being rung, kept for it.
    held: Mutex<Vec<HeldMessage>>,
    /// Endpoints (MSNP16+) rung into the session and not yet in it, with
    /// when their invitation expires.
    ringing: Mutex<Vec<(String, MachineGuid, Instant)>>,
}

/// A message sent to a stand-in, waiting for its user to join.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    /// Who it waits for (handle key).
    pub for_key: String,
    /// Which of their endpoints (MSNP16+), when it waits for one.
    pub for_machine: Option<MachineGuid>,
    pub from_key: String,
    pub from_handle: String,
    pub from_friendly: String,
    pub payload: Bytes,
}

/// The most replies a session keeps for invitees who have not joined yet:
/// a conversation's worth, not a mailbox.
pub const MAX_HELD: usize = 32;

impl SwitchboardSession {
    /// The participants now in the session.
    pub fn participants(&self) -> Vec<Arc<Participant>> {
        self.participants.lock().clone()
    }

    /// Takes the offline messages this session carries (once).
    pub fn take_offline(&self) -> Vec<crate::store::OfflineMessage> {
        std::mem::take(&mut self.offline.lock())
    }

    /// The stand-ins for senders of offline messages in the session.
    pub fn stand_ins(&self) -> Vec<Arc<Participant>> {
        self.participants.lock().iter().filter(|p| p.stand_in).cloned().collect()
    }

    /// Keeps a reply for an invitee until they join; false when the session
    /// already keeps as many as it may.
    pub fn hold(&self, message: HeldMessage) -> bool {
        let mut held = self.held.lock();
        if held.len() >= MAX_HELD {
            return false;
        }
        held.push(message);
        true
    }

    /// Whether replies are already waiting for `key` (an invitation is out).
    pub fn holds_for(&self, key: &str) -> bool {
        self.held.lock().iter().any(|m| m.for_key == key && m.for_machine.is_none())
    }

    /// Takes what was kept for `key`: replies to its stand-in, and, for
    /// one of its endpoints (`machine`), what was said while it was rung.
    pub fn take_held(&self, key: &str, machine: Option<&MachineGuid>) -> Vec<HeldMessage> {
        let mut held = self.held.lock();
        let (mine, rest) = std::mem::take(&mut *held)
            .into_iter()
            .partition(|m| m.for_key == key && (m.for_machine.is_none() || m.for_machine.as_ref() == machine));
        *held = rest;
        mine
    }

    /// Notes an endpoint rung into the session until `until`.
    pub fn rang(&self, key: &str, machine: &MachineGuid, until: Instant) {
        let mut ringing = self.ringing.lock();
        ringing.retain(|(k, m, _)| !(k == key && m == machine));
        ringing.push((key.to_string(), machine.clone(), until));
    }

    /// The endpoints rung and not yet in the session whose invitation is
    /// still good.
    pub fn ringing_absent(&self) -> Vec<(String, MachineGuid)> {
        // Every relayed message asks; nearly always nobody is being rung.
        if self.ringing.lock().is_empty() {
            return Vec::new();
        }
        let now = Instant::now();
        let inside: Vec<(String, Option<MachineGuid>)> =
            self.participants.lock().iter().map(|p| (p.key.clone(), p.machine.clone())).collect();
        let mut ringing = self.ringing.lock();
        ringing
            .retain(|(k, m, until)| *until > now && !inside.iter().any(|(ik, im)| ik == k && im.as_ref() == Some(m)));
        ringing.iter().map(|(k, m, _)| (k.clone(), m.clone())).collect()
    }

    /// Whether a user (by handle key) is in the session with a connection.
    pub fn contains_connected(&self, key: &str) -> bool {
        self.participants.lock().iter().any(|p| p.key == key && !p.stand_in)
    }

    /// Whether anyone with a connection is in the session.
    pub fn has_real_participants(&self) -> bool {
        self.participants.lock().iter().any(|p| !p.stand_in)
    }

    /// Whether a user (by handle key) is in the session.
    pub fn contains(&self, key: &str) -> bool {
        self.participants.lock().iter().any(|p| p.key == key)
    }

    /// Relays a message to everyone but the sender. Returns whether every
    /// other participant got it; false also when there is nobody else.
    ///
    /// A participant whose queue is full is slower than the sender (a file
    /// going through the switchboard to a busy client): the message waits
    /// for room, up to `patience`, so that the sender is paced to the
    /// reader as TCP would pace it. One still full after that has stopped
    /// reading: it is removed from the session (the others get `BYE`), so
    /// that it holds no more memory and the conversation goes on without
    /// it. (Senders also stop reading while someone lacks room, see
    /// [`SwitchboardSession::wait_for_room`], so the wait here is rare.)
    pub async fn relay(&self, from: &Participant, payload: Bytes, patience: Duration) -> bool {
        self.relay_to(from, payload, patience, None).await
    }

    /// [`SwitchboardSession::relay`], except that when `endpoint` names one
    /// endpoint of an account (P2P data's `P2P-Dest: handle;{guid}`,
    /// MSNP16+), that account's other endpoints are left out: they are not
    /// part of that transfer.
    pub async fn relay_to(
        &self,
        from: &Participant,
        payload: Bytes,
        patience: Duration,
        endpoint: Option<&msnp::endpoint::Address>,
    ) -> bool {
        // Everyone with room gets it under one look at the roster, with no
        // list built; only those whose queues are full are kept, to wait for.
        let mut full: Vec<(Arc<Participant>, SbEvent)> = Vec::new();
        let (mut anyone, mut all) = (false, true);
        for p in self.participants.lock().iter() {
            let addressed = match endpoint {
                Some(d) => !p.key.eq_ignore_ascii_case(&d.handle) || p.machine.is_none() || p.machine == d.endpoint,
                None => true,
            };
            if p.connection_id == from.connection_id || p.stand_in || !addressed {
                continue;
            }
            anyone = true;
            let event = SbEvent::Message {
                handle: from.handle.clone(),
                friendly: from.friendly.clone(),
                payload: payload.clone(),
            };
            match p.outbox.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => all = false,
                Err(mpsc::error::TrySendError::Full(event)) => full.push((p.clone(), event)),
            }
        }
        for (p, event) in full {
            all &= match tokio::time::timeout(patience, p.outbox.send(event)).await {
                Ok(sent) => sent.is_ok(),
                Err(_) => {
                    self.stalled(&p);
                    false
                }
            };
        }
        anyone && all
    }

    /// Whether every other participant can take one more message now.
    pub fn others_have_room(&self, from: &Participant) -> bool {
        self.participants.lock().iter().filter(|p| p.connection_id != from.connection_id).all(|p| p.has_room())
    }

    /// Waits until every other participant can take one more message; one
    /// whose queue stays full for `patience` has stopped reading and is
    /// removed. A sender's connection waits here before it reads its next
    /// command, while it goes on writing what others send it, so two busy
    /// senders never wait on each other.
    pub async fn wait_for_room(&self, from: &Participant, patience: Duration) {
        for p in self.others(from) {
            if p.has_room() {
                continue;
            }
            match tokio::time::timeout(patience, p.outbox.reserve()).await {
                Ok(_permit) => {}
                Err(_) => self.stalled(&p),
            }
        }
    }

    fn others(&self, from: &Participant) -> Vec<Arc<Participant>> {
        self.participants.lock().iter().filter(|p| p.connection_id != from.connection_id).cloned().collect()
    }

    /// A participant that took nothing for a whole `patience`: flagged, so
    /// its connection closes, and taken out of the session.
    fn stalled(&self, p: &Participant) {
        p.flag_overflow();
        self.remove(p, false);
    }

    /// Takes a participant out and tells the others. Returns whether the
    /// session is now empty (and so has ended).
    fn remove(&self, who: &Participant, idle: bool) -> bool {
        let mut participants = self.participants.lock();
        let before = participants.len();
        participants.retain(|p| p.connection_id != who.connection_id);
        if participants.len() == before {
            return false;
        }
        let last = !participants.iter().any(|p| p.key == who.key);
        for p in participants.iter() {
            p.deliver(SbEvent::Left { handle: who.handle.clone(), idle, machine: who.machine.clone(), last });
        }
        // Stand-ins do not keep a session alive.
        if participants.iter().all(|p| p.stand_in) {
            self.ended.store(true, Ordering::Release);
            return true;
        }
        false
    }
}

/// Every session on this switchboard, and how many each user is in.
#[derive(Debug, Default)]
pub struct Switchboards {
    sessions: Mutex<HashMap<u32, Arc<SwitchboardSession>>>,
    per_user: Mutex<HashMap<String, usize>>,
}

impl Switchboards {
    /// How many sessions a user (by handle key) is in.
    pub fn sessions_of(&self, key: &str) -> usize {
        self.per_user.lock().get(key).copied().unwrap_or(0)
    }

    /// Counts a user into one more session, unless they are at `max` (714).
    pub fn enter(&self, key: &str, max: usize) -> Result<(), ErrorCode> {
        let mut per_user = self.per_user.lock();
        let n = per_user.entry(key.to_string()).or_insert(0);
        if *n >= max {
            return Err(ErrorCode::TooManySessions);
        }
        *n += 1;
        Ok(())
    }

    fn exit(&self, key: &str) {
        let mut per_user = self.per_user.lock();
        if let Some(n) = per_user.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                per_user.remove(key);
            }
        }
    }

    /// Opens a session with its first participant (already counted in with
    /// [`Switchboards::enter`]).
    pub fn open(&self, first: Arc<Participant>) -> Arc<SwitchboardSession> {
        let mut sessions = self.sessions.lock();
        let id = loop {
            // Eight digits like the historic ids; never 0.
            let id = random_u32() % 90_000_000 + 10_000_000;
            if !sessions.contains_key(&id) {
                break id;
            }
        };
        let session = Arc::new(SwitchboardSession {
            id,
            participants: Mutex::new(vec![first]),
            ended: AtomicBool::new(false),
            offline: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            ringing: Mutex::new(Vec::new()),
        });
        sessions.insert(id, session.clone());
        session
    }

    /// Opens a session whose only participant is the stand-in for the sender
    /// of `messages`; the recipient is invited to it.
    pub fn open_offline(
        &self,
        stand_in: Arc<Participant>,
        messages: Vec<crate::store::OfflineMessage>,
    ) -> Arc<SwitchboardSession> {
        let session = self.open(stand_in);
        *session.offline.lock() = messages;
        session
    }

    /// Ends a session nobody joined.
    pub fn end_if_unjoined(&self, session: &SwitchboardSession) -> bool {
        let participants = session.participants.lock();
        if participants.iter().any(|p| !p.stand_in) {
            return false;
        }
        session.ended.store(true, Ordering::Release);
        drop(participants);
        self.sessions.lock().remove(&session.id);
        true
    }

    pub fn get(&self, id: u32) -> Option<Arc<SwitchboardSession>> {
        self.sessions.lock().get(&id).cloned()
    }

    /// Adds an invitee. Everyone already there gets `JOI`; the returned list
    /// is the roster before the join, for `IRO`. Fails if the session ended or
    /// is full.
    pub fn join(
        &self,
        session: &SwitchboardSession,
        joiner: Arc<Participant>,
        max_participants: usize,
    ) -> Result<Vec<Arc<Participant>>, ErrorCode> {
        let mut participants = session.participants.lock();
        if session.ended.load(Ordering::Acquire) {
            return Err(ErrorCode::AuthenticationFailed);
        }
        // The user a stand-in stood for takes its place: the others already
        // show them in the conversation, so they are told nothing.
        let replaces_stand_in = participants.iter().any(|p| p.stand_in && p.key == joiner.key);
        if participants.len() - usize::from(replaces_stand_in) >= max_participants {
            return Err(ErrorCode::SessionOverload);
        }
        participants.retain(|p| !(p.stand_in && p.key == joiner.key));
        let roster = participants.clone();
        let first = !roster.iter().any(|p| p.key == joiner.key);
        for p in roster.iter().filter(|_| !replaces_stand_in) {
            p.deliver(SbEvent::Joined {
                handle: joiner.handle.clone(),
                friendly: joiner.friendly.clone(),
                client_id: joiner.client_id,
                extended_caps: joiner.extended_caps,
                machine: joiner.machine.clone(),
                first,
            });
        }
        participants.push(joiner);
        Ok(roster)
    }

    /// Removes a participant; the others get `BYE`. The session ends when the
    /// last one leaves.
    pub fn leave(&self, session: &SwitchboardSession, who: &Participant, idle: bool) {
        if session.remove(who, idle) {
            self.sessions.lock().remove(&session.id);
        }
    }

    /// Forgets a participant's place in the per-user count; called once per
    /// participant when its connection ends.
    pub fn release(&self, who: &Participant) {
        self.exit(&who.key);
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cookie holder: a user, or (with `machine`) one endpoint of an
    /// MSNP18 user.
    fn grant<'a>(handle: &'a str, machine: Option<&'a MachineGuid>) -> GrantFor<'a> {
        let dialect = if machine.is_some() { Dialect::Msnp18 } else { Dialect::Msnp2 };
        GrantFor { handle, friendly: "A", client_id: 0, dialect, extended_caps: 0, machine }
    }

    #[test]
    fn cookies_are_single_use_and_bound() {
        let jar = CookieJar::default();
        let ttl = Duration::from_secs(60);
        let a = grant("a@x.com", None);
        let c = jar.issue(a, "a@x.com", CookieKind::NewSession, ttl).unwrap();
        assert_eq!(
            jar.redeem(&c, &Address::user("b@x.com"), CookieKind::NewSession).unwrap_err(),
            ErrorCode::AuthenticationFailed
        );
        // The failed attempt consumed it.
        assert!(jar.redeem(&c, &Address::user("a@x.com"), CookieKind::NewSession).is_err());
        let c = jar.issue(a, "a@x.com", CookieKind::Invitation { session_id: 5 }, ttl).unwrap();
        assert!(jar.redeem(&c, &Address::user("A@X.com"), CookieKind::Invitation { session_id: 6 }).is_err());
        let c = jar.issue(a, "a@x.com", CookieKind::Invitation { session_id: 5 }, ttl).unwrap();
        assert!(jar.redeem(&c, &Address::user("A@X.com"), CookieKind::Invitation { session_id: 5 }).is_ok());
        assert!(jar.redeem(&c, &Address::user("a@x.com"), CookieKind::Invitation { session_id: 5 }).is_err());
        let c = jar.issue(a, "a@x.com", CookieKind::NewSession, Duration::ZERO).unwrap();
        assert!(jar.redeem(&c, &Address::user("a@x.com"), CookieKind::NewSession).is_err());
    }

    #[test]
    fn an_endpoint_cookie_admits_only_that_endpoint() {
        let jar = CookieJar::default();
        let ttl = Duration::from_secs(60);
        let home = MachineGuid::parse("{11111111-1111-4111-8111-111111111111}").unwrap();
        let work = MachineGuid::parse("{22222222-2222-4222-8222-222222222222}").unwrap();
        let a = grant("a@x.com", Some(&home));
        let c = jar.issue(a, "a@x.com", CookieKind::NewSession, ttl).unwrap();
        assert!(jar.redeem(&c, &Address::endpoint("a@x.com", &work), CookieKind::NewSession).is_err());
        let c = jar.issue(a, "a@x.com", CookieKind::NewSession, ttl).unwrap();
        let grant = jar.redeem(&c, &Address::endpoint("a@x.com", &home), CookieKind::NewSession).unwrap();
        assert_eq!(grant.machine, Some(home));
    }

    #[test]
    fn one_requester_cannot_fill_the_jar() {
        let jar = CookieJar::default();
        let a = grant("a@x.com", None);
        let ttl = Duration::from_secs(60);
        for _ in 0..MAX_COOKIES_PER_REQUESTER {
            jar.issue(a, "a@x.com", CookieKind::NewSession, ttl).unwrap();
        }
        assert_eq!(jar.issue(a, "a@x.com", CookieKind::NewSession, ttl), Err(ErrorCode::UserTooActive));
        // Someone else is unaffected.
        assert!(jar.issue(a, "b@x.com", CookieKind::NewSession, ttl).is_ok());
        // Expired cookies free the quota.
        let jar = CookieJar::default();
        for _ in 0..MAX_COOKIES_PER_REQUESTER {
            jar.issue(a, "a@x.com", CookieKind::NewSession, Duration::ZERO).unwrap();
        }
        assert!(jar.issue(a, "a@x.com", CookieKind::NewSession, ttl).is_ok());
        assert_eq!(jar.len(), 1);
    }

    fn participant(handle: &str, id: u64) -> (Arc<Participant>, mpsc::Receiver<SbEvent>) {
        let (tx, rx) = mpsc::channel(4);
        let grant = CookieGrant {
            handle: handle.into(),
            dialect: Dialect::Msnp2,
            friendly: handle.into(),
            client_id: 0,
            extended_caps: 0,
            machine: None,
            kind: CookieKind::NewSession,
            expires: Instant::now(),
        };
        (Arc::new(Participant::new(&grant, id, tx)), rx)
    }

    const PATIENCE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn sessions_relay_and_end_when_empty() {
        let sbs = Switchboards::default();
        let (a, mut arx) = participant("a@x.com", 1);
        let (b, mut brx) = participant("b@x.com", 2);
        let s = sbs.open(a.clone());
        assert!(!s.relay(&a, Bytes::from_static(b"alone"), PATIENCE).await);
        let roster = sbs.join(&s, b.clone(), 10).unwrap();
        assert_eq!(roster.len(), 1);
        assert!(matches!(arx.try_recv().unwrap(), SbEvent::Joined { .. }));
        assert!(s.relay(&a, Bytes::from_static(b"hi"), PATIENCE).await);
        assert!(matches!(brx.try_recv().unwrap(), SbEvent::Message { .. }));
        assert!(arx.try_recv().is_err());
        sbs.leave(&s, &a, false);
        assert!(matches!(brx.try_recv().unwrap(), SbEvent::Left { .. }));
        sbs.leave(&s, &b, false);
        assert!(sbs.get(s.id).is_none());
        let (c, _crx) = participant("c@x.com", 3);
        assert!(sbs.join(&s, c, 10).is_err());
    }

    /// A session of a and b whose b has taken nothing while a filled its
    /// queue (4 slots). The receivers are returned so the queues stay open.
    async fn b_full() -> (Arc<SwitchboardSession>, Arc<Participant>, Arc<Participant>, Vec<mpsc::Receiver<SbEvent>>) {
        let sbs = Switchboards::default();
        let (a, arx) = participant("a@x.com", 1);
        let (b, brx) = participant("b@x.com", 2);
        let s = sbs.open(a.clone());
        sbs.join(&s, b.clone(), 10).unwrap();
        for _ in 0..4 {
            assert!(s.relay(&a, Bytes::from_static(b"x"), PATIENCE).await);
        }
        (s, a, b, vec![arx, brx])
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_stops_is_flagged_after_the_patience() {
        let (s, a, b, _queues) = b_full().await;
        assert!(!s.others_have_room(&a));
        let started = tokio::time::Instant::now();
        assert!(!s.relay(&a, Bytes::from_static(b"x"), PATIENCE).await);
        assert_eq!(started.elapsed(), PATIENCE, "it waited for room first");
        assert!(b.overflowed.load(Ordering::Relaxed));
        assert!(!s.contains("b@x.com"), "the stalled reader left the session");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_paces_the_sender_and_stays() {
        let sbs = Switchboards::default();
        let (a, _arx) = participant("a@x.com", 1);
        let (b, mut brx) = participant("b@x.com", 2);
        let s = sbs.open(a.clone());
        sbs.join(&s, b.clone(), 10).unwrap();
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < 100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(SbEvent::Message { .. }) = brx.recv().await {
                    got += 1;
                }
            }
            got
        });
        for _ in 0..100 {
            s.wait_for_room(&a, PATIENCE).await;
            assert!(s.others_have_room(&a));
            assert!(s.relay(&a, Bytes::from_static(b"x"), PATIENCE).await);
        }
        assert_eq!(reader.await.unwrap(), 100, "every message arrived");
        assert!(s.contains("b@x.com"), "a reader that keeps reading stays");
        assert!(!b.overflowed.load(Ordering::Relaxed));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_room_gives_up_on_a_stalled_reader() {
        let (s, a, _b, _queues) = b_full().await;
        s.wait_for_room(&a, PATIENCE).await;
        assert!(!s.contains("b@x.com"));
        assert!(s.others_have_room(&a), "nobody is left to wait for");
    }
}
