//! One user's lists (draft 5.7, 7.8) and the rules for changing them.
//!
//! The lists are stored as one row per (owner, contact) pair with a bit mask,
//! the same bits MSNP8+ puts on the wire. The reverse list is kept by the
//! server: adding someone to my forward list puts me on their reverse list.

use std::collections::HashMap;

use msnp::{ErrorCode, ListKind, PrivacyMode, PromptMode};

use crate::config::BackendConfig;

/// The database id of an account.
pub type AccountId = i64;

/// A set of lists as a bit mask (FL=1, AL=2, BL=4, RL=8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ListBits(pub u8);

impl ListBits {
    pub fn contains(self, list: ListKind) -> bool {
        self.0 & list.bit() != 0
    }

    pub fn with(self, list: ListKind, member: bool) -> ListBits {
        if member { ListBits(self.0 | list.bit()) } else { ListBits(self.0 & !list.bit()) }
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// One person on one or more of my lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub contact_id: AccountId,
    /// The contact's handle as spelled on their account.
    pub handle: String,
    /// The contact's current friendly name.
    pub friendly: String,
    pub lists: ListBits,
}

/// Everything `SYN` sends: the serial, the two settings and the lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListSnapshot {
    pub serial: u32,
    pub prompt: PromptMode,
    pub privacy: PrivacyMode,
    /// Ordered by handle so that `LST` output is stable.
    pub entries: Vec<ListEntry>,
}

impl ListSnapshot {
    /// The entries on one list, in order.
    pub fn list(&self, list: ListKind) -> impl Iterator<Item = &ListEntry> {
        self.entries.iter().filter(move |e| e.lists.contains(list))
    }
}

/// An online user's lists, kept current in memory so that presence fan-out
/// and privacy checks never touch the store. Keyed by the contact's handle key.
#[derive(Debug, Clone, Default)]
pub struct ContactLists {
    pub privacy: PrivacyMode,
    pub prompt: PromptMode,
    entries: HashMap<String, ListBits>,
}

impl ContactLists {
    pub fn from_snapshot(s: &ListSnapshot) -> ContactLists {
        ContactLists {
            privacy: s.privacy,
            prompt: s.prompt,
            entries: s.entries.iter().map(|e| (e.handle.to_ascii_lowercase(), e.lists)).collect(),
        }
    }

    pub fn bits(&self, key: &str) -> ListBits {
        self.entries.get(key).copied().unwrap_or_default()
    }

    pub fn set(&mut self, key: &str, list: ListKind, member: bool) {
        let bits = self.bits(key).with(list, member);
        if bits.is_empty() {
            self.entries.remove(key);
        } else {
            self.entries.insert(key.to_string(), bits);
        }
    }

    /// How many people are on a list.
    pub fn count(&self, list: ListKind) -> usize {
        self.entries.values().filter(|b| b.contains(list)).count()
    }

    /// The handle keys on a list.
    pub fn members(&self, list: ListKind) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(move |(_, b)| b.contains(list)).map(|(k, _)| k.as_str())
    }

    /// The privacy rule of draft 7.6 and 8.3: may `other` see my presence and
    /// invite me? Not if I block them; otherwise yes in AL mode, and in BL mode
    /// only if I allow them explicitly.
    pub fn allows(&self, other_key: &str) -> bool {
        let bits = self.bits(other_key);
        if bits.contains(ListKind::Block) {
            return false;
        }
        match self.privacy {
            PrivacyMode::AllowUnlisted => true,
            PrivacyMode::BlockUnlisted => bits.contains(ListKind::Allow),
        }
    }

    /// Checks a client's ADD against the draft's rules and the configured
    /// limits, before anything is written.
    pub fn check_add(&self, list: ListKind, key: &str, config: &BackendConfig) -> Result<(), ErrorCode> {
        let limit = match list {
            ListKind::Forward => config.max_forward_list,
            ListKind::Allow => config.max_allow_list,
            ListKind::Block => config.max_block_list,
            // Only the server changes the reverse list; pending is MSNP10+.
            ListKind::Reverse | ListKind::Pending => return Err(ErrorCode::InvalidParameter),
        };
        let bits = self.bits(key);
        if bits.contains(list) {
            return Err(ErrorCode::AlreadyThere);
        }
        if list.opposite().is_some_and(|o| bits.contains(o)) {
            return Err(ErrorCode::AlreadyInOppositeList);
        }
        if self.count(list) >= limit {
            return Err(ErrorCode::ListFull);
        }
        Ok(())
    }

    /// Checks a client's REM.
    pub fn check_remove(&self, list: ListKind, key: &str) -> Result<(), ErrorCode> {
        if matches!(list, ListKind::Reverse | ListKind::Pending) {
            return Err(ErrorCode::InvalidParameter);
        }
        if !self.bits(key).contains(list) {
            return Err(ErrorCode::NotOnList);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_rule_follows_the_draft() {
        let mut l = ContactLists::default();
        assert!(l.allows("stranger@x.com"));
        l.set("bad@x.com", ListKind::Block, true);
        assert!(!l.allows("bad@x.com"));
        l.privacy = PrivacyMode::BlockUnlisted;
        assert!(!l.allows("stranger@x.com"));
        l.set("friend@x.com", ListKind::Allow, true);
        assert!(l.allows("friend@x.com"));
    }

    #[test]
    fn add_rules() {
        let config = BackendConfig { max_forward_list: 1, ..Default::default() };
        let mut l = ContactLists::default();
        assert_eq!(l.check_add(ListKind::Reverse, "a@x.com", &config), Err(ErrorCode::InvalidParameter));
        l.set("a@x.com", ListKind::Forward, true);
        assert_eq!(l.check_add(ListKind::Forward, "a@x.com", &config), Err(ErrorCode::AlreadyThere));
        assert_eq!(l.check_add(ListKind::Forward, "b@x.com", &config), Err(ErrorCode::ListFull));
        l.set("a@x.com", ListKind::Allow, true);
        assert_eq!(l.check_add(ListKind::Block, "a@x.com", &config), Err(ErrorCode::AlreadyInOppositeList));
        assert_eq!(l.check_remove(ListKind::Block, "a@x.com"), Err(ErrorCode::NotOnList));
        assert_eq!(l.check_remove(ListKind::Allow, "a@x.com"), Ok(()));
        l.set("a@x.com", ListKind::Allow, false);
        l.set("a@x.com", ListKind::Forward, false);
        assert_eq!(l.count(ListKind::Forward), 0);
        assert!(l.bits("a@x.com").is_empty());
    }
}
