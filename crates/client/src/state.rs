//! What the client knows: me, my lists and groups, my contacts' presence.

use std::collections::BTreeMap;

use msnp::{Dialect, ListKind, OnlineState, PrivacyMode, PromptMode};
use serde::{Deserialize, Serialize};

/// One person on my lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub handle: String,
    pub friendly: String,
    /// List bits: FL=1, AL=2, BL=4, RL=8.
    pub lists: u8,
    /// Group ids (MSNP7-9 numbers as text, or MSNP10+ GUIDs).
    pub groups: Vec<String>,
    /// The contact GUID (MSNP10+).
    pub guid: Option<String>,
    #[serde(skip, default)]
    pub state: OnlineState,
    #[serde(skip, default)]
    pub client_id: u32,
    #[serde(skip, default)]
    pub personal_message: Option<String>,
    /// The name the contact is signed in with (from presence), while they
    /// are online; `friendly` is the name stored on my list.
    #[serde(skip, default)]
    pub presence_name: Option<String>,
}

impl Contact {
    pub fn new(handle: &str, friendly: &str) -> Contact {
        Contact {
            handle: handle.to_string(),
            friendly: friendly.to_string(),
            lists: 0,
            groups: Vec::new(),
            guid: None,
            state: OnlineState::Offline,
            client_id: 0,
            personal_message: None,
            presence_name: None,
        }
    }

    /// The name to show: the one they signed in with while online, else the
    /// one stored on my list.
    pub fn display_name(&self) -> &str {
        self.presence_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&self.friendly)
    }

    pub fn on(&self, list: ListKind) -> bool {
        self.lists & list.bit() != 0
    }

    pub fn set(&mut self, list: ListKind, member: bool) {
        if member {
            self.lists |= list.bit();
        } else {
            self.lists &= !list.bit();
        }
    }
}

/// A circle I am in or invited to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Circle {
    /// Its GUID (`00000000-0000-0000-0009-...`).
    pub id: String,
    pub name: String,
    /// Invited and not yet answered.
    pub invited_by: Option<String>,
    /// Joined by this session: its messages reach me.
    pub joined: bool,
    /// Who is in it now, as the server last said.
    pub roster: Vec<String>,
}

/// A contact group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The number (MSNP7-9) or GUID (MSNP10+).
    pub id: String,
    pub name: String,
}

/// The client's view of its account.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub handle: String,
    pub friendly: String,
    pub dialect: Option<Dialect>,
    pub my_state: OnlineState,
    pub personal_message: Option<String>,
    pub prompt: PromptMode,
    pub privacy: PrivacyMode,
    /// The list version last synced (serial, or MSNP10+ time stamps).
    pub list_version: String,
    pub groups: Vec<Group>,
    /// By lower-case handle.
    pub contacts: BTreeMap<String, Contact>,
    /// The web-service token of this sign-in (`MSPAuth`).
    pub web_token: String,
    /// Whether the lists came from the cache because the server said they
    /// were current.
    pub from_cache: bool,
}

impl State {
    pub fn contact(&self, handle: &str) -> Option<&Contact> {
        self.contacts.get(&handle.to_ascii_lowercase())
    }

    pub fn contact_mut(&mut self, handle: &str) -> &mut Contact {
        self.contacts.entry(handle.to_ascii_lowercase()).or_insert_with(|| Contact::new(handle, handle))
    }

    /// Drops contacts on no list.
    pub fn prune(&mut self) {
        self.contacts.retain(|_, c| c.lists != 0);
    }

    /// The forward list, the contact list people see.
    pub fn forward_list(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values().filter(|c| c.on(ListKind::Forward))
    }

    /// People who added me and whom I have neither allowed nor blocked: the
    /// ones a client asks its user about (draft 7.6, GTC `A`).
    pub fn needs_answer(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.values().filter(|c| c.on(ListKind::Reverse) && !c.on(ListKind::Allow) && !c.on(ListKind::Block))
    }
}
