//! The session directory as one node holds it: which node each signed-in
//! user is on. No I/O; `seat_bus` moves its changes over NATS.
//!
//! Changes reach a node two ways that may cross: batches other nodes
//! broadcast, and the bucket read whole at start and after the bus comes
//! back. Every change carries the bucket revision of its write, one order
//! for the whole cluster, so the newest write wins whichever way and in
//! whichever order it arrives. A sign-out is kept a while as an ended seat
//! so that an older sign-in heard after it cannot bring the user back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use backend::cluster::NodeId;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// How long an ended seat is remembered: far longer than a batch can take
/// to cross the bus.
pub const ENDED_KEPT: Duration = Duration::from_secs(60);

/// Who is signed in where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub node: NodeId,
    /// The sign-in on that node, so that its sign-out ends only itself.
    pub session: u64,
    pub handle: String,
    /// The sign-in's web token, so that any node's web services accept it.
    pub token: String,
}

/// One change to the directory: `seat` is `None` for a sign-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatChange {
    pub key: String,
    /// The bucket revision the change was written at.
    pub revision: u64,
    pub seat: Option<Seat>,
}

#[derive(Debug)]
enum State {
    /// Confirmed: the entry's revision is this seat's write.
    Seated(Seat),
    /// A sign-in on this node whose write is not confirmed yet: the entry's
    /// revision is still the key's previous write.
    Arriving(Seat),
    Ended(Instant),
}

impl State {
    fn seat(&self) -> Option<&Seat> {
        match self {
            State::Seated(seat) | State::Arriving(seat) => Some(seat),
            State::Ended(_) => None,
        }
    }
}

#[derive(Debug)]
struct Entry {
    revision: u64,
    state: State,
}

/// The directory, shared by every task of a node.
#[derive(Debug, Default)]
pub struct Seats {
    entries: RwLock<HashMap<String, Entry>>,
}

impl Seats {
    /// Applies a change unless the directory already holds a newer one for
    /// its user. True if applied.
    pub fn apply(&self, change: SeatChange) -> bool {
        let mut entries = self.entries.write();
        if entries.get(&change.key).is_some_and(|e| e.revision >= change.revision) {
            return false;
        }
        let state = match change.seat {
            Some(seat) => State::Seated(seat),
            None => State::Ended(Instant::now()),
        };
        entries.insert(change.key, Entry { revision: change.revision, state });
        true
    }

    /// A sign-in on this node, seen here before its write is confirmed: it
    /// is newer than anything held, and its confirmed revision replaces it.
    pub fn seat_here(&self, key: &str, seat: Seat) {
        let mut entries = self.entries.write();
        match entries.get_mut(key) {
            Some(entry) => entry.state = State::Arriving(seat),
            None => {
                entries.insert(key.to_string(), Entry { revision: 0, state: State::Arriving(seat) });
            }
        }
    }

    /// The node `key` is signed in on. On the path of everything sent to
    /// another node's user: only the node's name is copied.
    pub fn node_of(&self, key: &str) -> Option<NodeId> {
        self.entries.read().get(key)?.state.seat().map(|seat| seat.node.clone())
    }

    /// The bucket revision of `key`'s seat if it is still the sign-in
    /// `session` on `node` and its write was confirmed here: a sign-out can
    /// then be written conditionally on it without reading the bucket.
    pub fn revision_of(&self, key: &str, node: &str, session: u64) -> Option<u64> {
        let entries = self.entries.read();
        let entry = entries.get(key)?;
        match &entry.state {
            State::Seated(s) if s.node == node && s.session == session => Some(entry.revision),
            _ => None,
        }
    }

    /// The users seated on `node`: (handle key, handle).
    pub fn seated_on(&self, node: &str) -> Vec<(String, String)> {
        let entries = self.entries.read();
        entries
            .iter()
            .filter_map(|(key, e)| e.state.seat().filter(|s| s.node == node).map(|s| (key.clone(), s.handle.clone())))
            .collect()
    }

    /// The user whose sign-in holds web token `token`, and their node. A
    /// scan: web-service calls are rare next to everything else a node does.
    pub fn holder_of_token(&self, token: &str) -> Option<(String, NodeId)> {
        let entries = self.entries.read();
        entries.iter().find_map(|(key, e)| {
            let s = e.state.seat()?;
            backend::secrets::constant_time_eq(s.token.as_bytes(), token.as_bytes())
                .then(|| (key.clone(), s.node.clone()))
        })
    }

    /// Forgets sign-outs older than `kept`.
    pub fn forget_ended(&self, kept: Duration) {
        self.entries.write().retain(|_, e| !matches!(e.state, State::Ended(at) if at.elapsed() > kept));
    }

    /// Entries held, ended ones included.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Splits queued writes into rounds whose writes touch distinct users, so
/// that a round's writes can go out together while one user's writes keep
/// their order. `key` names each write's user.
pub fn rounds<T>(writes: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<Vec<T>> {
    let mut rounds: Vec<Vec<T>> = Vec::new();
    let mut current: Vec<T> = Vec::new();
    for write in writes {
        if current.iter().any(|w| key(w) == key(&write)) {
            rounds.push(std::mem::take(&mut current));
        }
        current.push(write);
    }
    if !current.is_empty() {
        rounds.push(current);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(node: &str, session: u64) -> Seat {
        Seat { node: node.into(), session, handle: "bob@example.com".into(), token: format!("t{session}") }
    }

    fn change(revision: u64, seat: Option<Seat>) -> SeatChange {
        SeatChange { key: "bob@example.com".into(), revision, seat }
    }

    #[test]
    fn the_newest_write_wins_in_whichever_order_changes_arrive() {
        let in_order = Seats::default();
        let crossed = Seats::default();
        let changes = [change(3, Some(seat("ns1", 1))), change(4, None), change(7, Some(seat("ns2", 2)))];
        for c in changes.iter().cloned() {
            in_order.apply(c);
        }
        for c in changes.iter().rev().cloned() {
            crossed.apply(c);
        }
        for seats in [&in_order, &crossed] {
            assert_eq!(seats.node_of("bob@example.com").as_deref(), Some("ns2"));
        }
    }

    #[test]
    fn a_sign_out_keeps_an_older_sign_in_heard_after_it_from_bringing_the_user_back() {
        let seats = Seats::default();
        assert!(seats.apply(change(5, None)));
        assert!(!seats.apply(change(4, Some(seat("ns1", 1)))));
        assert_eq!(seats.node_of("bob@example.com"), None);
        // Once forgotten, the key is gone altogether.
        seats.forget_ended(Duration::ZERO);
        assert!(seats.is_empty());
    }

    #[test]
    fn forgetting_ended_seats_keeps_recent_ones_and_every_signed_in_user() {
        let seats = Seats::default();
        seats.apply(change(1, None));
        seats.apply(SeatChange { key: "al@example.com".into(), revision: 2, seat: Some(seat("ns1", 1)) });
        seats.forget_ended(ENDED_KEPT);
        assert_eq!(seats.len(), 2);
        seats.forget_ended(Duration::ZERO);
        assert_eq!(seats.len(), 1);
        assert_eq!(seats.node_of("al@example.com").as_deref(), Some("ns1"));
    }

    #[test]
    fn a_sign_in_here_wins_at_once_and_its_confirmation_replaces_it() {
        let seats = Seats::default();
        seats.apply(change(9, Some(seat("ns1", 1))));
        seats.seat_here("bob@example.com", seat("ns2", 2));
        assert_eq!(seats.node_of("bob@example.com").as_deref(), Some("ns2"));
        // A write older than the one held changes nothing; the confirmation does.
        assert!(!seats.apply(change(8, Some(seat("ns3", 3)))));
        assert!(seats.apply(change(10, Some(seat("ns2", 2)))));
        assert_eq!(seats.seated_on("ns2"), vec![("bob@example.com".to_string(), "bob@example.com".to_string())]);
        assert!(seats.seated_on("ns1").is_empty());
    }

    #[test]
    fn a_revision_is_known_only_for_a_confirmed_seat_of_that_sign_in() {
        let seats = Seats::default();
        seats.apply(change(9, Some(seat("ns1", 1))));
        assert_eq!(seats.revision_of("bob@example.com", "ns1", 1), Some(9));
        assert_eq!(seats.revision_of("bob@example.com", "ns1", 2), None, "another sign-in");
        // Until its write is confirmed, a sign-in here has no revision of
        // its own: the 9 held is ns1's.
        seats.seat_here("bob@example.com", seat("ns2", 2));
        assert_eq!(seats.revision_of("bob@example.com", "ns2", 2), None);
        assert_eq!(seats.revision_of("bob@example.com", "ns1", 1), None);
        seats.apply(change(10, Some(seat("ns2", 2))));
        assert_eq!(seats.revision_of("bob@example.com", "ns2", 2), Some(10));
        seats.apply(change(11, None));
        assert_eq!(seats.revision_of("bob@example.com", "ns2", 2), None);
    }

    #[test]
    fn a_web_token_finds_its_user_only_while_signed_in() {
        let seats = Seats::default();
        seats.apply(change(1, Some(seat("ns1", 7))));
        assert_eq!(seats.holder_of_token("t7"), Some(("bob@example.com".into(), "ns1".into())));
        assert_eq!(seats.holder_of_token("t8"), None);
        seats.apply(change(2, None));
        assert_eq!(seats.holder_of_token("t7"), None);
    }

    #[test]
    fn rounds_keep_one_users_writes_in_order_and_apart() {
        let writes = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("d", 6)];
        let rounds = rounds(writes, |w| w.0);
        assert_eq!(rounds, vec![vec![("a", 1), ("b", 2)], vec![("a", 3), ("c", 4), ("b", 5), ("d", 6)]]);
        assert!(super::rounds(Vec::<(&str, u8)>::new(), |w| w.0).is_empty());
    }
}
