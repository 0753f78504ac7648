//! Between the domain and the messenger's frames: states, contacts, words.

use backend::lists::{Group, ListEntry};
use msnp::circle::Said;
use msnp::{ListKind, OnlineState};
use webchat::State;

pub fn state_of(state: State) -> OnlineState {
    match state {
        State::Online => OnlineState::Online,
        State::Busy => OnlineState::Busy,
        State::Away => OnlineState::Away,
        State::Brb => OnlineState::BeRightBack,
        State::Phone => OnlineState::OnThePhone,
        State::Lunch => OnlineState::OutToLunch,
        State::Idle => OnlineState::Idle,
        State::Hidden => OnlineState::Hidden,
    }
}

/// The state shown for an MSN state; `None` is offline.
pub fn shown(state: OnlineState) -> Option<State> {
    Some(match state {
        OnlineState::Online => State::Online,
        OnlineState::Busy => State::Busy,
        OnlineState::Away => State::Away,
        OnlineState::BeRightBack => State::Brb,
        OnlineState::OnThePhone => State::Phone,
        OnlineState::OutToLunch => State::Lunch,
        OnlineState::Idle => State::Idle,
        OnlineState::Hidden => State::Hidden,
        OnlineState::Offline => return None,
    })
}

/// Where a contact's picture is served.
pub fn picture_of(handle: &str) -> String {
    format!("/messenger/picture/{}", handle.to_ascii_lowercase().replace('@', "%40"))
}

/// A contact as the page shows it, from their list entry and what this
/// page has seen of their presence.
pub fn contact(entry: &ListEntry, state: Option<State>, personal: &str) -> webchat::Contact {
    webchat::Contact {
        handle: entry.handle.to_ascii_lowercase(),
        name: entry.nickname.clone().unwrap_or_else(|| entry.friendly.clone()),
        groups: entry.groups.iter().map(u32::to_string).collect(),
        forward: entry.lists.contains(ListKind::Forward),
        allow: entry.lists.contains(ListKind::Allow),
        block: entry.lists.contains(ListKind::Block),
        reverse: entry.lists.contains(ListKind::Reverse),
        pending: entry.lists.contains(ListKind::Pending),
        state,
        personal: personal.to_string(),
        picture: picture_of(&entry.handle),
    }
}

pub fn group(g: &Group) -> webchat::Group {
    webchat::Group { id: g.id.to_string(), name: g.name.clone() }
}

/// Text as the domain carries it (plain, no format: the page sends none).
pub fn text(text: String) -> Said {
    Said::Text { text, format: None }
}
