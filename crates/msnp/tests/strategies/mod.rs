//! Generators of wire values shared by the property tests.
#![allow(dead_code)]

use bytes::Bytes;
use msnp::{ListKind, OnlineState};
use proptest::prelude::*;

/// One argument: printable ASCII without spaces, as keywords and handles are.
pub fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,24}"
}

/// A name as people type them (any non-control characters), short enough
/// that its URL encoding fits `limit`.
pub fn name(limit: usize) -> impl Strategy<Value = String> {
    "\\PC{1,30}".prop_filter("fits when encoded, and no replacement character (refused in names)", move |n| {
        msnp::urlencode::encode(n).len() <= limit && !n.contains(char::REPLACEMENT_CHARACTER)
    })
}

pub fn payload() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

pub fn list() -> impl Strategy<Value = ListKind> {
    prop::sample::select(vec![
        ListKind::Forward,
        ListKind::Reverse,
        ListKind::Allow,
        ListKind::Block,
        ListKind::Pending,
    ])
}

pub fn state() -> impl Strategy<Value = OnlineState> {
    // Only the states a client may ask for travel in CHG.
    prop::sample::select(
        OnlineState::ALL.into_iter().filter(|s| OnlineState::from_code(s.code()) == Some(*s)).collect::<Vec<_>>(),
    )
}
