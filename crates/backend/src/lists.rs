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

/// A contact GUID as memory keeps it: the server issues GUIDs in the
/// lower-case `8-4-4-4-12` form, which packs into 16 bytes instead of a
/// 36-byte string on the heap. All zeros is "not packed": none known yet,
/// or a GUID of another shape, which [`ContactLists`] keeps aside as it came
/// (a GUID stored by another implementation). No tag: every entry of every
/// online list holds one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackedGuid([u8; 16]);

impl PackedGuid {
    /// The packed form of `guid`, if it has one that formats back the same.
    fn of(guid: &str) -> Option<PackedGuid> {
        // Only the lower-case form packs: formatting must give it back.
        pack_guid(guid).filter(|b| *b != [0; 16] && !guid.bytes().any(|c| c.is_ascii_uppercase())).map(PackedGuid)
    }

    fn is_packed(self) -> bool {
        self.0 != [0; 16]
    }

    /// Whether a GUID a client sent names this one (clients may change the
    /// case).
    fn matches(self, guid: &str) -> bool {
        self.is_packed() && pack_guid(guid) == Some(self.0)
    }
}

impl std::fmt::Display for PackedGuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.is_packed() {
            return Ok(());
        }
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The groups a forward-list contact is in, a bit per group id: 8 bytes in
/// every entry of every online list, never on the heap. Ids are below
/// [`GROUP_ID_LIMIT`]; the stores give out the smallest free id and refuse
/// one past the limit, and a user has at most [`MAX_GROUPS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupSet(u64);

/// Group ids are below this.
pub const GROUP_ID_LIMIT: u32 = 64;

impl GroupSet {
    pub fn of(ids: &[u32]) -> GroupSet {
        ids.iter().fold(GroupSet::default(), |set, &id| set.with(id, true))
    }

    pub fn contains(self, id: u32) -> bool {
        id < GROUP_ID_LIMIT && self.0 & (1 << id) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ids, in order.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..GROUP_ID_LIMIT).filter(move |&id| self.contains(id))
    }

    fn with(self, id: u32, member: bool) -> GroupSet {
        if id >= GROUP_ID_LIMIT {
            // The stores never give out such an id.
            tracing::warn!(id, "a group id past the limit is not kept in memory");
            return self;
        }
        match member {
            true => GroupSet(self.0 | 1 << id),
            false => GroupSet(self.0 & !(1 << id)),
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

/// What memory holds about one contact of an online user: 32 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactState {
    pub bits: ListBits,
    /// The contact GUID, packed; not packed until known (a reverse-list
    /// entry made by the other user gets its GUID from the store when I add
    /// them) or when [`ContactLists`] keeps it aside.
    guid: PackedGuid,
    /// The groups this forward-list contact is in.
    pub groups: GroupSet,
}

/// Contact GUIDs that do not pack, by handle key.
type UnpackedGuids = Vec<(Key, Box<str>)>;

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
    /// The contact GUIDs that do not pack, by handle key; almost always
    /// empty.
    #[allow(clippy::box_collection)] // the box keeps the empty case at 8 bytes
    unpacked_guids: Option<Box<UnpackedGuids>>,
}

impl ContactLists {
    pub fn from_snapshot(s: &ListSnapshot) -> ContactLists {
        let mut lists = ContactLists {
            privacy: s.privacy,
            prompt: s.prompt,
            groups: s.groups.clone(),
            entries: Vec::with_capacity(s.entries.len()),
            unpacked_guids: None,
        };
        for e in &s.entries {
            let key = Key::new(&e.handle.to_ascii_lowercase());
            let guid = lists.pack_or_set_aside(&key, &e.guid);
            let state = ContactState { bits: e.lists, guid, groups: GroupSet::of(&e.groups) };
            lists.entries.push((key, state));
        }
        lists.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        lists.entries.dedup_by(|a, b| a.0 == b.0);
        lists.entries.shrink_to_fit();
        if let Some(unpacked) = &mut lists.unpacked_guids {
            unpacked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            unpacked.dedup_by(|a, b| a.0 == b.0);
        }
        lists
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
        let packed = self.entries.iter().find(|(_, c)| c.guid.matches(guid)).map(|(k, _)| k);
        let unpacked = || self.unpacked().find(|(_, g)| g.eq_ignore_ascii_case(guid)).map(|(k, _)| k);
        packed.or_else(unpacked).map(|k| &**k)
    }

    /// The GUID of a contact on my lists, once the store has given it one.
    pub fn guid_of(&self, key: &str) -> Option<String> {
        let packed = self.contact(key)?.guid;
        match packed.is_packed() {
            true => Some(packed.to_string()),
            false => self.unpacked().find(|(k, _)| **k == *key).map(|(_, g)| g.to_string()),
        }
    }

    fn unpacked(&self) -> impl Iterator<Item = &(Key, Box<str>)> {
        self.unpacked_guids.iter().flat_map(|u| u.iter())
    }

    fn forget_unpacked(&mut self, key: &str) {
        if let Some(unpacked) = &mut self.unpacked_guids {
            unpacked.retain(|(k, _)| **k != *key);
            if unpacked.is_empty() {
                self.unpacked_guids = None;
            }
        }
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
            entry.groups = GroupSet::default();
        }
        if entry.bits.is_empty() {
            self.entries.remove(i);
            self.forget_unpacked(key);
        }
    }

    /// Records the contact GUID the store assigned.
    pub fn set_guid(&mut self, key: &str, guid: &str) {
        if self.contact(key).is_none() {
            return;
        }
        self.forget_unpacked(key);
        let packed = self.pack_or_set_aside(key, guid);
        if let Some(c) = self.contact_mut(key) {
            c.guid = packed;
        }
    }

    /// `guid` packed into an entry, or kept aside for `key` when it does not
    /// pack (the entry then holds the zero GUID).
    fn pack_or_set_aside(&mut self, key: &str, guid: &str) -> PackedGuid {
        let packed = PackedGuid::of(guid);
        if packed.is_none() && !guid.is_empty() {
            self.unpacked_guids.get_or_insert_default().push((Key::new(key), guid.into()));
        }
        packed.unwrap_or_default()
    }

    pub fn set_group_member(&mut self, key: &str, group: u32, member: bool) {
        if let Some(c) = self.contact_mut(key) {
            c.groups = c.groups.with(group, member);
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
        let packed = PackedGuid::of(&issued).expect("an issued GUID packs");
        assert_eq!(packed.to_string(), issued);
        assert!(packed.matches(&issued.to_uppercase()));
        assert!(!packed.matches(&crate::secrets::new_guid()));
        let mut l = ContactLists::default();
        l.set("a@x.com", ListKind::Forward, true);
        assert_eq!(l.guid_of("a@x.com"), None, "none until the store gives one");
        l.set_guid("a@x.com", &issued);
        assert_eq!(l.guid_of("a@x.com").as_deref(), Some(issued.as_str()));
        assert_eq!(l.key_of_guid(&issued.to_uppercase()), Some("a@x.com"));
        // Other shapes are kept aside as they came.
        for other in [
            "cg",
            "0B9B9F02-32B4-4BD0-87C4-2A3F8AE1B4C3",
            "0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4cz",
            "0b9b9f0232b44bd087c42a3f8ae1b4c3xxxx",
            "00000000-0000-0000-0000-000000000000",
        ] {
            assert_eq!(PackedGuid::of(other), None, "{other}");
            l.set_guid("a@x.com", other);
            assert_eq!(l.guid_of("a@x.com").as_deref(), Some(other));
            assert_eq!(l.key_of_guid(&other.to_lowercase()), Some("a@x.com"), "{other}");
            assert_eq!(l.unpacked().count(), 1, "one kept aside per contact");
        }
        l.set_guid("a@x.com", &issued);
        assert!(l.unpacked_guids.is_none(), "replaced by the packed one");
        l.set_guid("a@x.com", "cg");
        l.set("a@x.com", ListKind::Forward, false);
        assert!(l.unpacked_guids.is_none(), "forgotten with the contact");
        assert_eq!(l.key_of_guid("cg"), None);
        assert_eq!(l.key_of_guid(""), None);
    }

    #[test]
    fn a_snapshot_keeps_packed_and_other_guids_alike() {
        let issued = crate::secrets::new_guid();
        let entry = |handle: &str, guid: &str| ListEntry {
            contact_id: 1,
            handle: handle.into(),
            friendly: handle.into(),
            lists: ListBits(1),
            guid: guid.into(),
            groups: vec![3, 1],
            nickname: None,
            phones: Vec::new(),
        };
        let snapshot = ListSnapshot {
            entries: vec![entry("B@x.com", "cg"), entry("a@x.com", &issued), entry("c@x.com", "")],
            ..ListSnapshot::default()
        };
        let l = ContactLists::from_snapshot(&snapshot);
        assert_eq!(l.guid_of("a@x.com").as_deref(), Some(issued.as_str()));
        assert_eq!(l.guid_of("b@x.com").as_deref(), Some("cg"));
        assert_eq!(l.guid_of("c@x.com"), None);
        assert_eq!(l.key_of_guid("CG"), Some("b@x.com"));
        assert_eq!(l.unpacked().count(), 1);
        assert_eq!(l.contact("a@x.com").unwrap().groups.iter().collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn a_list_entry_stays_small() {
        // Every online user holds a few dozen; jemalloc rounds their vector
        // up to its size class, so each byte here counts many times.
        assert_eq!(std::mem::size_of::<(Key, ContactState)>(), 40);
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
        let groups = |l: &ContactLists| l.contact("c@x.com").unwrap().groups.iter().collect::<Vec<_>>();
        assert_eq!(groups(&l), [2, 7]);
        l.set_group_member("c@x.com", 2, false);
        assert_eq!(groups(&l), [7]);
        l.set_group_member("c@x.com", GROUP_ID_LIMIT, true);
        assert_eq!(groups(&l), [7], "the stores never give out such an id");
        l.set_group_member("c@x.com", GROUP_ID_LIMIT - 1, true);
        assert_eq!(groups(&l), [7, GROUP_ID_LIMIT - 1]);
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
