//! The rooms one XMPP session knows (see `rooms`): which group each room
//! name stands for, whether this resource is in it, and who it was shown.

use std::collections::{BTreeSet, HashMap};

use msnp::multiparty::GroupId;

/// Rooms one session keeps track of (joined or invited to).
const MAX_ROOMS: usize = 64;

/// The rooms of one session, by group.
#[derive(Debug, Default)]
pub(super) struct Rooms(pub(super) HashMap<GroupId, Room>);

#[derive(Debug)]
pub(super) struct Room {
    /// The room's local part.
    pub(super) name: String,
    pub(super) joined: bool,
    /// The nickname the client asked for, when it was not its handle.
    pub(super) asked_nick: Option<String>,
    /// Occupants shown, by key.
    pub(super) shown: BTreeSet<String>,
}

impl Rooms {
    /// The group a room name stands for.
    pub(super) fn group_of(&self, room: &str) -> Option<GroupId> {
        let room = room.to_ascii_lowercase();
        self.0.iter().find(|(_, r)| r.name == room).map(|(g, _)| g.clone()).or_else(|| GroupId::of_guid(&room))
    }

    /// The room of a group, known from now on.
    pub(super) fn room(&mut self, group: &GroupId) -> Option<&mut Room> {
        if !self.0.contains_key(group) && self.0.len() >= MAX_ROOMS {
            return None;
        }
        Some(self.0.entry(group.clone()).or_insert_with(|| Room {
            name: group.guid().to_string(),
            joined: false,
            asked_nick: None,
            shown: BTreeSet::new(),
        }))
    }
}
