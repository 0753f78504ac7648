//! One user's lists (draft 5.7, 7.8) and the rules for changing them.
//!
//! The lists are stored as one row per (owner, contact) pair with a bit mask,
//! the same bits MSNP8+ puts on the wire. The reverse list is kept by the
//! server: adding someone to my forward list puts me on their reverse list.

use std::collections::{BTreeSet, HashMap};

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

/// Most groups one user may have (error 223 beyond).
pub const MAX_GROUPS: usize = 30;

/// The property kinds that are phone settings (`PRP`/`BPR`).
pub const PHONE_KINDS: [&str; 5] = ["PHH", "PHW", "PHM", "MOB", "MBE"];

/// The property kind under which the personal message (UUX payload) is kept.
pub const PERSONAL_MESSAGE: &str = "PSM";

/// A contact group. `id` is the number older dialects use (1..); `guid` the
/// name newer dialects use. Group 0 ("Other Contacts") is implicit: a
/// forward-list contact in no group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u32,
    pub guid: String,
    pub name: String,
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
    /// The contact GUID of MSNP10+ (`C=`).
    pub guid: String,
    /// The ids of the groups this forward-list contact is in.
    pub groups: Vec<u32>,
    /// The name I gave this contact (`SBP ... MFN`).
    pub nickname: Option<String>,
    /// The contact's phone properties, when the contact allows me to see them.
    pub phones: Vec<(String, String)>,
}

/// Everything `SYN` sends: serial, settings, my properties, groups, lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListSnapshot {
    pub serial: u32,
    /// When the lists last changed, in Unix milliseconds (MSNP10+ versions).
    pub modified_ms: i64,
    pub prompt: PromptMode,
    pub privacy: PrivacyMode,
    pub friendly: String,
    /// My phone properties that are set.
    pub phones: Vec<(String, String)>,
    /// My personal message (the UUX payload), if any.
    pub personal_message: Option<String>,
    pub groups: Vec<Group>,
    /// Ordered by handle so that `LST` output is stable.
    pub entries: Vec<ListEntry>,
}

impl ListSnapshot {
    /// The entries on one list, in order.
    pub fn list(&self, list: ListKind) -> impl Iterator<Item = &ListEntry> {
        self.entries.iter().filter(move |e| e.lists.contains(list))
    }
}

/// What memory holds about one contact of an online user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactState {
    pub bits: ListBits,
    /// The contact GUID; empty until known (a reverse-list entry made by the
    /// other user gets its GUID from the store when I add them).
    pub guid: String,
    pub groups: BTreeSet<u32>,
}

/// An online user's lists, kept current in memory so that presence fan-out
/// and privacy checks never touch the store. Keyed by the contact's handle key.
#[derive(Debug, Clone, Default)]
pub struct ContactLists {
    pub privacy: PrivacyMode,
    pub prompt: PromptMode,
    pub groups: Vec<Group>,
    entries: HashMap<String, ContactState>,
}

impl ContactLists {
    pub fn from_snapshot(s: &ListSnapshot) -> ContactLists {
        ContactLists {
            privacy: s.privacy,
            prompt: s.prompt,
            groups: s.groups.clone(),
            entries: s
                .entries
                .iter()
                .map(|e| {
                    let state = ContactState {
                        bits: e.lists,
                        guid: e.guid.clone(),
                        groups: e.groups.iter().copied().collect(),
                    };
                    (e.handle.to_ascii_lowercase(), state)
                })
                .collect(),
        }
    }

    pub fn bits(&self, key: &str) -> ListBits {
        self.entries.get(key).map(|c| c.bits).unwrap_or_default()
    }

    pub fn contact(&self, key: &str) -> Option<&ContactState> {
        self.entries.get(key)
    }

    /// The handle key of the contact with this GUID.
    pub fn key_of_guid(&self, guid: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, c)| !c.guid.is_empty() && c.guid.eq_ignore_ascii_case(guid))
            .map(|(k, _)| k.as_str())
    }

    pub fn set(&mut self, key: &str, list: ListKind, member: bool) {
        let entry = self.entries.entry(key.to_string()).or_default();
        entry.bits = entry.bits.with(list, member);
        if list == ListKind::Forward && !member {
            entry.groups.clear();
        }
        if entry.bits.is_empty() {
            self.entries.remove(key);
        }
    }

    /// Records the contact GUID the store assigned.
    pub fn set_guid(&mut self, key: &str, guid: &str) {
        if let Some(c) = self.entries.get_mut(key) {
            c.guid = guid.to_string();
        }
    }

    pub fn set_group_member(&mut self, key: &str, group: u32, member: bool) {
        if let Some(c) = self.entries.get_mut(key) {
            if member {
                c.groups.insert(group);
            } else {
                c.groups.remove(&group);
            }
        }
    }

    /// How many people are on a list.
    pub fn count(&self, list: ListKind) -> usize {
        self.entries.values().filter(|c| c.bits.contains(list)).count()
    }

    /// The handle keys on a list.
    pub fn members(&self, list: ListKind) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(move |(_, c)| c.bits.contains(list)).map(|(k, _)| k.as_str())
    }

    /// A group by its number (MSNP7-9) or GUID (MSNP10+).
    pub fn group(&self, reference: &str) -> Option<&Group> {
        match reference.parse::<u32>() {
            Ok(id) if !reference.contains('-') => self.groups.iter().find(|g| g.id == id),
            _ => self.groups.iter().find(|g| g.guid.eq_ignore_ascii_case(reference)),
        }
    }

    /// Checks a new group name: at most 30 groups (223), names unique (228).
    pub fn check_new_group(&self, name: &str) -> Result<(), ErrorCode> {
        if self.groups.len() >= MAX_GROUPS {
            return Err(ErrorCode::TooManyGroups);
        }
        if self.groups.iter().any(|g| g.name == name) {
            return Err(ErrorCode::GroupExists);
        }
        Ok(())
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
    fn groups_by_number_or_guid() {
        let mut l = ContactLists::default();
        l.groups.push(Group { id: 3, guid: "0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4c3".into(), name: "Work".into() });
        assert_eq!(l.group("3").unwrap().name, "Work");
        assert_eq!(l.group("0B9B9F02-32B4-4BD0-87C4-2A3F8AE1B4C3").unwrap().id, 3);
        assert!(l.group("4").is_none());
        assert_eq!(l.check_new_group("Work"), Err(ErrorCode::GroupExists));
        for i in 0..29 {
            l.groups.push(Group { id: 10 + i, guid: format!("g{i}"), name: format!("n{i}") });
        }
        assert_eq!(l.check_new_group("New"), Err(ErrorCode::TooManyGroups));
        l.set("a@x.com", ListKind::Forward, true);
        l.set_group_member("a@x.com", 3, true);
        l.set("a@x.com", ListKind::Allow, true);
        l.set("a@x.com", ListKind::Forward, false);
        assert!(l.contact("a@x.com").unwrap().groups.is_empty(), "leaving the forward list leaves its groups");
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
