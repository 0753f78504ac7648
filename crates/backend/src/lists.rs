//! One user's lists (draft 5.7, 7.8) and the rules for changing them.
//!
//! The lists are stored as one row per (owner, contact) pair with a bit mask,
//! the same bits MSNP8+ puts on the wire. The reverse list is kept by the
//! server: adding someone to my forward list puts me on their reverse list.

use msnp::{ErrorCode, ListKind, PrivacyMode, PromptMode};

use crate::intern::Key;

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

/// Whether putting someone on the allow or block list while they are on
/// the other is refused (219, the draft's rule) or accepted. When accepted
/// the contact is briefly on both, and the block wins ([`ContactLists::allows`])
/// until the client takes them off the other list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OppositeList {
    Refuse,
    Accept,
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

/// A contact GUID as memory keeps it. The server issues GUIDs in the
/// lower-case `8-4-4-4-12` form, which packs into 16 bytes instead of a
/// 36-byte string on the heap; anything else (a GUID stored by another
/// implementation, or none yet) is kept as it came.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ContactGuid {
    #[default]
    None,
    Packed([u8; 16]),
    Text(Box<str>),
}

impl ContactGuid {
    pub fn new(guid: &str) -> ContactGuid {
        if guid.is_empty() {
            return ContactGuid::None;
        }
        // Only the lower-case form packs: formatting must give it back.
        match pack_guid(guid).filter(|_| !guid.bytes().any(|b| b.is_ascii_uppercase())) {
            Some(bytes) => ContactGuid::Packed(bytes),
            None => ContactGuid::Text(guid.into()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ContactGuid::None
    }

    /// Whether a GUID a client sent names this one (clients may change the
    /// case of the hex digits).
    pub fn matches(&self, guid: &str) -> bool {
        match self {
            ContactGuid::None => false,
            ContactGuid::Packed(bytes) => pack_guid(guid).is_some_and(|b| b == *bytes),
            ContactGuid::Text(text) => text.eq_ignore_ascii_case(guid),
        }
    }
}

impl std::fmt::Display for ContactGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContactGuid::None => Ok(()),
            ContactGuid::Text(text) => f.write_str(text),
            ContactGuid::Packed(b) => {
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// The 16 bytes of a GUID in the `8-4-4-4-12` form, in either case (no
/// allocation, so that a search by GUID over a whole list makes none).
fn pack_guid(guid: &str) -> Option<[u8; 16]> {
    let g = guid.as_bytes();
    if g.len() != 36 || [8, 13, 18, 23].iter().any(|&i| g[i] != b'-') {
        return None;
    }
    let mut out = [0u8; 16];
    let mut digits = g.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let mut value = 0u8;
        for _ in 0..2 {
            let c = *digits.next()?;
            let nibble = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            value = value << 4 | nibble;
        }
        *byte = value;
    }
    digits.next().is_none().then_some(out)
}

/// What memory holds about one contact of an online user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactState {
    pub bits: ListBits,
    /// The contact GUID; empty until known (a reverse-list entry made by the
    /// other user gets its GUID from the store when I add them).
    pub guid: ContactGuid,
    /// The groups this forward-list contact is in, in order. A boxed slice
    /// (8 bytes less than a vector in every entry of every online list):
    /// group membership changes seldom.
    pub groups: Box<[u32]>,
}

/// An online user's lists, kept current in memory so that presence fan-out
/// and privacy checks never touch the store.
///
/// Every signed-in user holds one, so it is kept small: the entries are a
/// vector sorted by the contact's handle key (a third of a hash map's
/// memory for the few dozen contacts a list usually has, and a binary search
/// over it is as quick), each key an interned [`Key`] shared with every other
/// list that holds the same handle.
#[derive(Debug, Clone, Default)]
pub struct ContactLists {
    pub privacy: PrivacyMode,
    pub prompt: PromptMode,
    pub groups: Vec<Group>,
    entries: Vec<(Key, ContactState)>,
}

impl ContactLists {
    pub fn from_snapshot(s: &ListSnapshot) -> ContactLists {
        let mut entries: Vec<(Key, ContactState)> = s
            .entries
            .iter()
            .map(|e| {
                let mut groups = e.groups.clone();
                groups.sort_unstable();
                groups.dedup();
                let groups = groups.into_boxed_slice();
                let state = ContactState { bits: e.lists, guid: ContactGuid::new(&e.guid), groups };
                (Key::new(&e.handle.to_ascii_lowercase()), state)
            })
            .collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        entries.shrink_to_fit();
        ContactLists { privacy: s.privacy, prompt: s.prompt, groups: s.groups.clone(), entries }
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    pub fn bits(&self, key: &str) -> ListBits {
        self.contact(key).map(|c| c.bits).unwrap_or_default()
    }

    pub fn contact(&self, key: &str) -> Option<&ContactState> {
        self.position(key).ok().map(|i| &self.entries[i].1)
    }

    fn contact_mut(&mut self, key: &str) -> Option<&mut ContactState> {
        self.position(key).ok().map(|i| &mut self.entries[i].1)
    }

    /// The handle key of the contact with this GUID.
    pub fn key_of_guid(&self, guid: &str) -> Option<&str> {
        self.entries.iter().find(|(_, c)| c.guid.matches(guid)).map(|(k, _)| &**k)
    }

    pub fn set(&mut self, key: &str, list: ListKind, member: bool) {
        let i = match self.position(key) {
            Ok(i) => i,
            Err(_) if !member => return,
            Err(i) => {
                self.entries.insert(i, (Key::new(key), ContactState::default()));
                i
            }
        };
        let entry = &mut self.entries[i].1;
        entry.bits = entry.bits.with(list, member);
        if list == ListKind::Forward && !member {
            entry.groups = Box::default();
        }
        if entry.bits.is_empty() {
            self.entries.remove(i);
        }
    }

    /// Records the contact GUID the store assigned.
    pub fn set_guid(&mut self, key: &str, guid: &str) {
        if let Some(c) = self.contact_mut(key) {
            c.guid = ContactGuid::new(guid);
        }
    }

    pub fn set_group_member(&mut self, key: &str, group: u32, member: bool) {
        if let Some(c) = self.contact_mut(key) {
            let mut groups = c.groups.to_vec();
            match (groups.binary_search(&group), member) {
                (Err(i), true) => groups.insert(i, group),
                (Ok(i), false) => {
                    groups.remove(i);
                }
                _ => return,
            }
            c.groups = groups.into_boxed_slice();
        }
    }

    /// How many people are on a list.
    pub fn count(&self, list: ListKind) -> usize {
        self.entries.iter().filter(|(_, c)| c.bits.contains(list)).count()
    }

    /// The handle keys on a list.
    pub fn members(&self, list: ListKind) -> impl Iterator<Item = &str> {
        self.entries.iter().filter(move |(_, c)| c.bits.contains(list)).map(|(k, _)| &**k)
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
    pub fn check_add(
        &self,
        list: ListKind,
        key: &str,
        opposite: OppositeList,
        config: &BackendConfig,
    ) -> Result<(), ErrorCode> {
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
        if opposite == OppositeList::Refuse && list.opposite().is_some_and(|o| bits.contains(o)) {
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
    fn issued_guids_pack_into_bytes_and_print_the_same() {
        let issued = crate::secrets::new_guid();
        let g = ContactGuid::new(&issued);
        assert!(matches!(g, ContactGuid::Packed(_)));
        assert_eq!(g.to_string(), issued);
        assert!(g.matches(&issued.to_uppercase()));
        assert!(!g.matches(&crate::secrets::new_guid()));
        // Other shapes are kept as they came.
        for other in [
            "cg",
            "0B9B9F02-32B4-4BD0-87C4-2A3F8AE1B4C3",
            "0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4cz",
            "0b9b9f0232b44bd087c42a3f8ae1b4c3xxxx",
        ] {
            let g = ContactGuid::new(other);
            assert!(matches!(g, ContactGuid::Text(_)), "{other}");
            assert_eq!(g.to_string(), other);
            assert!(g.matches(&other.to_lowercase()));
        }
        assert!(ContactGuid::new("").is_empty());
        assert!(!ContactGuid::new("").matches(""));
    }

    #[test]
    fn entries_stay_sorted_and_unique_whatever_the_order_of_changes() {
        let mut l = ContactLists::default();
        for key in ["d@x.com", "b@x.com", "a@x.com", "c@x.com", "b@x.com"] {
            l.set(key, ListKind::Forward, true);
            l.set(key, ListKind::Reverse, true);
        }
        assert_eq!(l.members(ListKind::Forward).collect::<Vec<_>>(), ["a@x.com", "b@x.com", "c@x.com", "d@x.com"]);
        l.set("b@x.com", ListKind::Forward, false);
        l.set("b@x.com", ListKind::Reverse, false);
        l.set("zz@x.com", ListKind::Allow, false);
        assert_eq!(l.members(ListKind::Reverse).collect::<Vec<_>>(), ["a@x.com", "c@x.com", "d@x.com"]);
        l.set_group_member("c@x.com", 7, true);
        l.set_group_member("c@x.com", 2, true);
        l.set_group_member("c@x.com", 7, true);
        assert_eq!(*l.contact("c@x.com").unwrap().groups, [2, 7]);
        l.set_group_member("c@x.com", 2, false);
        assert_eq!(*l.contact("c@x.com").unwrap().groups, [7]);
    }

    #[test]
    fn add_rules() {
        let config = BackendConfig { max_forward_list: 1, ..Default::default() };
        let mut l = ContactLists::default();
        let refuse = OppositeList::Refuse;
        assert_eq!(l.check_add(ListKind::Reverse, "a@x.com", refuse, &config), Err(ErrorCode::InvalidParameter));
        l.set("a@x.com", ListKind::Forward, true);
        assert_eq!(l.check_add(ListKind::Forward, "a@x.com", refuse, &config), Err(ErrorCode::AlreadyThere));
        assert_eq!(l.check_add(ListKind::Forward, "b@x.com", refuse, &config), Err(ErrorCode::ListFull));
        l.set("a@x.com", ListKind::Allow, true);
        assert_eq!(l.check_add(ListKind::Block, "a@x.com", refuse, &config), Err(ErrorCode::AlreadyInOppositeList));
        assert_eq!(l.check_add(ListKind::Block, "a@x.com", OppositeList::Accept, &config), Ok(()));
        l.set("a@x.com", ListKind::Block, true);
        assert!(!l.allows("a@x.com"), "on both lists, the block wins");
        l.set("a@x.com", ListKind::Block, false);
        assert_eq!(l.check_remove(ListKind::Block, "a@x.com"), Err(ErrorCode::NotOnList));
        assert_eq!(l.check_remove(ListKind::Allow, "a@x.com"), Ok(()));
        l.set("a@x.com", ListKind::Allow, false);
        l.set("a@x.com", ListKind::Forward, false);
        assert_eq!(l.count(ListKind::Forward), 0);
        assert!(l.bits("a@x.com").is_empty());
    }
}
