//! A whole `SYN` batch in the shape of a dialect.
//!
//! The batch changed more than any other part of the protocol between
//! dialects (order, TrIDs, serials, counts, phones, groups, GUIDs), so it is
//! built here in one place from dialect-neutral [`SyncData`].

use crate::dialect::Dialect;
use crate::reply::{GroupRef, LstItem, Reply, SyncContact};
use crate::request::SyncVersion;
use crate::types::{ListKind, PrivacyMode, PromptMode, TrId};

/// The phone properties, in the order the reference sends them.
pub const PHONE_KINDS: [&str; 5] = ["PHH", "PHW", "PHM", "MOB", "MBE"];

/// One contact, with everything any dialect might send about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactData {
    pub handle: String,
    pub friendly: String,
    pub guid: String,
    pub bits: u8,
    /// The groups of a forward-list contact.
    pub groups: Vec<GroupRef>,
    /// The contact's phone properties that they let me see, as (kind, value).
    pub phones: Vec<(String, String)>,
}

/// Everything a `SYN` batch may carry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncData {
    pub serial: u32,
    /// The MSNP10+ list version: an ISO 8601 time stamp.
    pub timestamp: String,
    pub prompt: PromptMode,
    pub privacy: PrivacyMode,
    /// My friendly name (`PRP MFN`, MSNP10+).
    pub friendly: String,
    /// My phone properties that are set, as (kind, value).
    pub phones: Vec<(String, String)>,
    /// My groups, without the implicit group 0.
    pub groups: Vec<GroupRef>,
    /// Everyone on any of my lists, ordered by handle.
    pub contacts: Vec<ContactData>,
}

/// The implicit group 0 of MSNP7-9, where contacts in no group live.
pub fn group_zero() -> GroupRef {
    GroupRef { id: 0, guid: String::new(), name: "Other Contacts".into() }
}

/// Whether the client's cache is current, so that the reply is the bare
/// `SYN` line. A client that sends 0 has no cache and always gets the full
/// batch, in every dialect, even for a fresh account whose serial is still
/// 0: its settings and (MSNP7-9) group 0 are part of the list, the real
/// service sent them, and clients wait for them (MSNP7 gtmess says "List is
/// empty" and cannot add anyone without group 0; Gaim treats a count-less
/// answer to 0 as an error).
pub fn is_current(client: &SyncVersion, data: &SyncData) -> bool {
    match client {
        SyncVersion::Serial(n) => *n == data.serial && *n != 0,
        SyncVersion::Timestamps(a, b) => a != "0" && *a == data.timestamp && *b == data.timestamp,
    }
}

/// The replies for `SYN trid` in `dialect`.
pub fn batch(dialect: Dialect, trid: TrId, client: &SyncVersion, data: &SyncData) -> Vec<Reply> {
    let serial = data.serial;
    let header = |counts| Reply::Syn { trid, serial, timestamp: data.timestamp.clone(), counts };
    if is_current(client, data) {
        return vec![header(None)];
    }
    let mut out = Vec::new();
    let groups: Vec<GroupRef> = if dialect.uses_guids() {
        data.groups.clone()
    } else {
        std::iter::once(group_zero()).chain(data.groups.iter().cloned()).collect()
    };
    out.push(header(Some((data.contacts.len(), groups.len()))));
    out.push(Reply::Gtc { trid, serial, mode: data.prompt, in_sync: true });
    out.push(Reply::Blp { trid, serial, mode: data.privacy, in_sync: true });
    let prp = |kind: &str, value: Option<String>| Reply::Prp { trid, serial, kind: kind.into(), value, in_sync: true };
    if dialect.uses_guids() {
        out.push(prp("MFN", Some(data.friendly.clone())));
    }
    if dialect.has_compact_sync() {
        out.extend(data.phones.iter().map(|(k, v)| prp(k, Some(v.clone()))));
    } else if dialect.has_phones() {
        out.extend(PHONE_KINDS.iter().map(|k| prp(k, lookup(&data.phones, k))));
    }
    if dialect.has_groups() {
        let total = groups.len();
        out.extend(groups.iter().enumerate().map(|(i, g)| Reply::Lsg {
            trid,
            serial,
            index: i + 1,
            total,
            group: g.clone(),
            in_sync: true,
        }));
    }

    if dialect.has_compact_sync() {
        for c in &data.contacts {
            let on_forward = c.bits & ListKind::Forward.bit() != 0;
            out.push(Reply::SyncContact(SyncContact {
                handle: c.handle.clone(),
                friendly: c.friendly.clone(),
                guid: c.guid.clone(),
                bits: c.bits,
                group_ids: c.groups.iter().map(|g| g.id).collect(),
                group_guids: c.groups.iter().map(|g| g.guid.clone()).collect(),
            }));
            if on_forward {
                out.extend(c.phones.iter().map(|(k, v)| Reply::Bpr {
                    serial,
                    handle: c.handle.clone(),
                    kind: k.clone(),
                    value: Some(v.clone()),
                    in_sync: true,
                }));
            }
        }
        return out;
    }

    for list in [ListKind::Forward, ListKind::Allow, ListKind::Block, ListKind::Reverse] {
        out.extend(list_lines(dialect, trid, list, data));
    }
    out
}

/// The MSNP2-7 `LST` lines of one list (for `SYN` and for `LST`), with each
/// forward-list entry followed by its `BPR` lines from MSNP5.
pub fn list_lines(dialect: Dialect, trid: TrId, list: ListKind, data: &SyncData) -> Vec<Reply> {
    let serial = data.serial;
    let entries: Vec<&ContactData> = data.contacts.iter().filter(|c| c.bits & list.bit() != 0).collect();
    if entries.is_empty() {
        return vec![Reply::Lst { trid, list, serial, index: 0, total: 0, item: None }];
    }
    let mut out = Vec::new();
    for (i, c) in entries.iter().enumerate() {
        out.push(Reply::Lst {
            trid,
            list,
            serial,
            index: i + 1,
            total: entries.len(),
            item: Some(LstItem {
                handle: c.handle.clone(),
                friendly: c.friendly.clone(),
                groups: c.groups.iter().map(|g| g.id).collect(),
            }),
        });
        if list == ListKind::Forward && dialect.has_phones() {
            out.extend(PHONE_KINDS[..4].iter().map(|k| Reply::Bpr {
                serial,
                handle: c.handle.clone(),
                kind: k.to_string(),
                value: lookup(&c.phones, k),
                in_sync: true,
            }));
        }
    }
    out
}

fn lookup(pairs: &[(String, String)], kind: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == kind).map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(replies: &[Reply], d: Dialect) -> Vec<String> {
        replies.iter().map(|r| String::from_utf8(r.to_bytes(d).to_vec()).unwrap().trim_end().to_string()).collect()
    }

    fn sample() -> SyncData {
        let friends = GroupRef { id: 1, guid: "0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4c3".into(), name: "Friends".into() };
        SyncData {
            serial: 12,
            timestamp: "2005-04-23T18:57:44.8130000-07:00".into(),
            prompt: PromptMode::Ask,
            privacy: PrivacyMode::AllowUnlisted,
            friendly: "Alice".into(),
            phones: vec![("PHH".into(), "555 555-0100".into())],
            groups: vec![friends.clone()],
            contacts: vec![
                ContactData {
                    handle: "bob@hotmail.com".into(),
                    friendly: "Bob".into(),
                    guid: "f6f5dc5c-8b4c-4e3c-9a5e-6a0e1c9f0b11".into(),
                    bits: 11,
                    groups: vec![friends],
                    phones: vec![("PHH".into(), "555 555-0123".into()), ("MOB".into(), "N".into())],
                },
                ContactData {
                    handle: "carol@hotmail.com".into(),
                    friendly: "Carol".into(),
                    guid: "11111111-2222-3333-4444-555555555555".into(),
                    bits: 10,
                    groups: vec![],
                    phones: vec![],
                },
            ],
        }
    }

    #[test]
    fn msnp8_matches_the_reference_transcript() {
        let got = text(&batch(Dialect::Msnp8, 8, &SyncVersion::Serial(0), &sample()), Dialect::Msnp8);
        assert_eq!(
            got,
            [
                "SYN 8 12 2 2",
                "GTC A",
                "BLP AL",
                "PRP PHH 555%20555-0100",
                "LSG 0 Other%20Contacts 0",
                "LSG 1 Friends 0",
                "LST bob@hotmail.com Bob 11 1",
                "BPR PHH 555%20555-0123",
                "BPR MOB N",
                "LST carol@hotmail.com Carol 10",
            ]
        );
    }

    #[test]
    fn msnp11_matches_the_reference_transcript() {
        let got = text(
            &batch(Dialect::Msnp11, 5, &SyncVersion::Timestamps("0".into(), "0".into()), &sample()),
            Dialect::Msnp11,
        );
        assert_eq!(
            got,
            [
                "SYN 5 2005-04-23T18:57:44.8130000-07:00 2005-04-23T18:57:44.8130000-07:00 2 1",
                "GTC A",
                "BLP AL",
                "PRP MFN Alice",
                "PRP PHH 555%20555-0100",
                "LSG Friends 0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4c3",
                "LST N=bob@hotmail.com F=Bob C=f6f5dc5c-8b4c-4e3c-9a5e-6a0e1c9f0b11 11 0b9b9f02-32b4-4bd0-87c4-2a3f8ae1b4c3",
                "BPR PHH 555%20555-0123",
                "BPR MOB N",
                "LST N=carol@hotmail.com F=Carol 10",
            ]
        );
        let ts = sample().timestamp;
        let current = batch(Dialect::Msnp11, 6, &SyncVersion::Timestamps(ts.clone(), ts.clone()), &sample());
        assert_eq!(text(&current, Dialect::Msnp11), [format!("SYN 6 {ts} {ts}")]);
    }

    #[test]
    fn msnp7_has_groups_and_phones_in_the_old_shape() {
        let got = text(&batch(Dialect::Msnp7, 3, &SyncVersion::Serial(0), &sample()), Dialect::Msnp7);
        assert_eq!(got[0], "SYN 3 12");
        assert_eq!(got[1], "GTC 3 12 A");
        assert_eq!(got[3], "PRP 3 12 PHH 555%20555-0100");
        assert_eq!(got[4], "PRP 3 12 PHW");
        assert_eq!(got[8], "LSG 3 12 1 2 0 Other%20Contacts 0");
        assert_eq!(got[9], "LSG 3 12 2 2 1 Friends 0");
        assert_eq!(got[10], "LST 3 FL 12 1 1 bob@hotmail.com Bob 1");
        assert_eq!(got[11], "BPR 12 bob@hotmail.com PHH 555%20555-0123");
        assert_eq!(got[14], "BPR 12 bob@hotmail.com MOB N");
        assert_eq!(got[15], "LST 3 AL 12 1 2 bob@hotmail.com Bob");
        assert_eq!(got.last().unwrap(), "LST 3 RL 12 2 2 carol@hotmail.com Carol");
    }

    #[test]
    fn current_serial_means_nothing_more_except_zero() {
        let mut d = sample();
        assert_eq!(batch(Dialect::Msnp2, 1, &SyncVersion::Serial(12), &d).len(), 1);
        assert_eq!(batch(Dialect::Msnp9, 1, &SyncVersion::Serial(12), &d).len(), 1);
        d.serial = 0;
        d.contacts.clear();
        d.groups.clear();
        for dialect in Dialect::ALL {
            let version = if dialect.uses_guids() {
                SyncVersion::Timestamps("0".into(), "0".into())
            } else {
                SyncVersion::Serial(0)
            };
            let got = batch(dialect, 1, &version, &d);
            assert!(got.len() > 1, "{dialect}: a fresh account's first sync is the whole batch");
            let has_group_zero = got.iter().any(|r| matches!(r, Reply::Lsg { group, .. } if group.id == 0));
            assert_eq!(has_group_zero, dialect.has_groups() && !dialect.uses_guids(), "{dialect}");
        }
    }
}
