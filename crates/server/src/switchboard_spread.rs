//! Which switchboard node takes a new session, in a cluster.
//!
//! Each node's load (its open connections) is known only from its
//! heartbeats. Between two of them, every session handed out saw the same
//! loads, so a burst of sessions all went to the least-loaded node of the
//! last heartbeat (1,000 sessions opened within a second all landed on one
//! of two switchboard nodes, docs/PERFORMANCE.md). So a notification node
//! counts the sessions it hands to each switchboard node and adds them to
//! that node's reported load until the node's heartbeats can include them.
//! A session's clients connect after it is handed out, perhaps after the
//! next heartbeat was taken, so a count is kept for two heartbeats: a
//! session may count twice for a moment (which only favours the other
//! nodes), never not at all.

use std::collections::HashMap;

use backend::cluster::NodeId;
use parking_lot::Mutex;

/// Sessions handed to one node, by heartbeat.
#[derive(Debug, Default, Clone, Copy)]
struct Handed {
    /// Since its last heartbeat.
    current: u64,
    /// Between its last two heartbeats.
    previous: u64,
}

/// The sessions this node handed out, by switchboard node.
#[derive(Debug, Default)]
pub struct Spread {
    handed: Mutex<HashMap<NodeId, Handed>>,
}

impl Spread {
    /// The least-loaded of `candidates` (node, reported load, address),
    /// counting the sessions handed to each since its heartbeats; that
    /// node is then counted one session busier. Ties go to the lowest id.
    pub fn pick<'a>(&self, candidates: impl Iterator<Item = (&'a NodeId, u64, &'a str)>) -> Option<(NodeId, String)> {
        let mut handed = self.handed.lock();
        let (_, node, address) = candidates
            .map(|(node, load, address)| {
                let h = handed.get(node).copied().unwrap_or_default();
                (load + h.current + h.previous, node, address)
            })
            .min()?;
        handed.entry(node.clone()).or_default().current += 1;
        Some((node.clone(), address.to_string()))
    }

    /// `node` sent a heartbeat: its load now counts what was handed to it
    /// before the last one.
    pub fn heard(&self, node: &str) {
        if let Some(h) = self.handed.lock().get_mut(node) {
            *h = Handed { current: 0, previous: h.current };
        }
    }

    /// `node` left or died.
    pub fn forget(&self, node: &str) {
        self.handed.lock().remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(spread: &Spread, nodes: &[(&str, u64)]) -> String {
        let ids: Vec<NodeId> = nodes.iter().map(|(n, _)| n.to_string()).collect();
        let candidates = ids.iter().zip(nodes).map(|(id, (_, load))| (id, *load, "127.0.0.1:1"));
        spread.pick(candidates).expect("a candidate").0
    }

    #[test]
    fn a_burst_between_heartbeats_alternates_between_equal_nodes() {
        let spread = Spread::default();
        let picks: Vec<String> = (0..6).map(|_| pick(&spread, &[("sb1", 0), ("sb2", 0)])).collect();
        assert_eq!(picks, ["sb1", "sb2", "sb1", "sb2", "sb1", "sb2"]);
    }

    #[test]
    fn a_busier_node_gets_sessions_only_once_the_other_has_caught_up() {
        let spread = Spread::default();
        let picks: Vec<String> = (0..5).map(|_| pick(&spread, &[("sb1", 3), ("sb2", 0)])).collect();
        assert_eq!(picks, ["sb2", "sb2", "sb2", "sb1", "sb2"]);
    }

    #[test]
    fn a_count_lasts_two_heartbeats_of_its_node_and_ends_when_it_leaves() {
        let spread = Spread::default();
        for _ in 0..4 {
            pick(&spread, &[("sb1", 0)]);
        }
        // sb1 has 4 handed out, sb2 none: sb2 until it has 4 too.
        spread.heard("sb1");
        assert_eq!(pick(&spread, &[("sb1", 0), ("sb2", 3)]), "sb2");
        // After a second heartbeat of sb1 its reported load alone counts.
        spread.heard("sb1");
        assert_eq!(pick(&spread, &[("sb1", 0), ("sb2", 4)]), "sb1");
        // Another node's heartbeat does not touch sb1's count.
        spread.heard("sb2");
        assert_eq!(pick(&spread, &[("sb1", 0), ("sb2", 1)]), "sb1");
        spread.forget("sb1");
        spread.forget("sb2");
        assert_eq!(pick(&spread, &[("sb1", 0), ("sb2", 0)]), "sb1");
    }

    #[test]
    fn no_candidate_no_pick() {
        assert!(Spread::default().pick(std::iter::empty()).is_none());
    }
}
