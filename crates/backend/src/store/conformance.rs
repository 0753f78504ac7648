//! One suite of store tests, run against every back end: the embedded
//! SQLite store always, PostgreSQL where it can be reached (see
//! [`crate::testing`]). A behaviour the domain relies on is written once
//! here, so the two cannot drift apart.

use std::sync::Arc;

use msnp::{ListKind, PrivacyMode};

use super::{
    CircleLimits, CircleMessage, Credentials, ListChange, ListChanges, MailboxLimits, MembershipChange, NewAccount,
    OfflineMessage, PostgresStore, Removal, SqliteStore, Store, StoreError, StoredPhoto,
};
use crate::lists::{AccountId, ListBits, PERSONAL_MESSAGE};
use msnp::circle::{CircleId, CircleRole, CircleState};

/// Where a test's store lives, so that it can be opened again (as after a
/// restart) on the same data.
enum Fixture {
    Sqlite(tempfile::TempDir),
    Postgres(Box<tokio_postgres::Config>),
}

impl Fixture {
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Fixture::Sqlite(dir) => Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap()),
            Fixture::Postgres(config) => Arc::new(PostgresStore::connect_with((**config).clone(), 8).await.unwrap()),
        }
    }
}

fn creds() -> Credentials {
    Credentials { password_hash: "x".into(), sealed_secret: Some(vec![1, 2, 3]) }
}

async fn account(store: &dyn Store, handle: &str) -> AccountId {
    store
        .create_account(NewAccount { handle: handle.into(), friendly: handle.into(), credentials: creds() })
        .await
        .unwrap()
}

async fn forward_list_mirrors_reverse_list_and_bumps_both_serials(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let b = account(store, "B@x.com").await;
    assert!(matches!(
        store.create_account(NewAccount { handle: "b@X.com".into(), friendly: "b".into(), credentials: creds() }).await,
        Err(StoreError::AccountExists)
    ));
    let change = store.set_list_membership(a, b, ListKind::Forward, true, "g1").await.unwrap();
    assert_eq!(change, ListChange { owner_serial: 1, contact_serial: Some(1), guid: "g1".into() });
    store.set_list_membership(a, b, ListKind::Allow, true, "g1").await.unwrap();
    let snap = store.list_snapshot(b).await.unwrap();
    assert_eq!(snap.serial, 1);
    assert_eq!(snap.list(ListKind::Reverse).map(|e| e.handle.as_str()).collect::<Vec<_>>(), ["a@x.com"]);
    let snap = store.list_snapshot(a).await.unwrap();
    assert_eq!(snap.serial, 2);
    assert_eq!(snap.entries[0].lists, ListBits(3));
    assert_eq!(snap.entries[0].handle, "B@x.com");

    store.set_list_membership(a, b, ListKind::Forward, false, "").await.unwrap();
    store.set_list_membership(a, b, ListKind::Allow, false, "").await.unwrap();
    assert!(store.list_snapshot(a).await.unwrap().entries.is_empty());
    assert!(store.list_snapshot(b).await.unwrap().entries.is_empty());

    store.set_list_membership(b, a, ListKind::Forward, true, "g2").await.unwrap();
    store.delete_account("b@x.com").await.unwrap();
    let snap = store.list_snapshot(a).await.unwrap();
    assert!(snap.entries.is_empty());
    assert_eq!(snap.serial, 6, "four own changes, one reverse-list add, one deletion");
    assert!(matches!(store.delete_account("b@x.com").await, Err(StoreError::NoSuchAccount)));
}

async fn accounts_credentials_and_listing(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let z = account(store, "Zed@x.com").await;
    let a = account(store, "amy@x.com").await;
    account(store, "_under@x.com").await;
    store.set_list_membership(a, z, ListKind::Forward, true, "g").await.unwrap();
    let got = store.account("zed@x.com").await.unwrap().unwrap();
    assert_eq!((got.id, got.handle.as_str(), got.disabled), (z, "Zed@x.com", false));
    assert_eq!(got.credentials.sealed_secret.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(store.account("nobody@x.com").await.unwrap().is_none());
    store.set_credentials("zed@x.com", Credentials { password_hash: "y".into(), sealed_secret: None }).await.unwrap();
    let got = store.account("zed@x.com").await.unwrap().unwrap();
    assert_eq!((got.credentials.password_hash.as_str(), got.credentials.sealed_secret), ("y", None));
    assert!(matches!(store.set_credentials("nobody@x.com", creds()).await, Err(StoreError::NoSuchAccount)));
    store.set_disabled("zed@x.com", true).await.unwrap();
    assert!(store.account("zed@x.com").await.unwrap().unwrap().disabled);
    assert!(store.list_accounts().await.unwrap().iter().any(|a| a.handle == "Zed@x.com" && a.disabled));
    store.set_disabled("zed@x.com", false).await.unwrap();
    assert!(!store.account("zed@x.com").await.unwrap().unwrap().disabled);
    assert!(matches!(store.set_disabled("nobody@x.com", true).await, Err(StoreError::NoSuchAccount)));
    // Ordered by handle bytes, whatever the database's collation.
    let list = store.list_accounts().await.unwrap();
    let order: Vec<_> = list.iter().map(|s| (s.handle.as_str(), s.contacts)).collect();
    assert_eq!(order, [("_under@x.com", 0), ("amy@x.com", 1), ("Zed@x.com", 0)]);
    assert_eq!(store.set_friendly_name(z, "Zed Z").await.unwrap(), 2, "after the reverse-list add");
    assert_eq!(store.list_snapshot(z).await.unwrap().friendly, "Zed Z");
}

async fn groups_properties_and_guids(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let b = account(store, "b@x.com").await;
    assert_eq!(store.create_group(a, "Work", "gw").await.unwrap(), (1, 1));
    assert_eq!(store.create_group(a, "Home", "gh").await.unwrap(), (2, 2));
    store.delete_group(a, 1).await.unwrap();
    assert_eq!(store.create_group(a, "Play", "gp").await.unwrap().0, 1, "the lowest free id is reused");
    store.set_list_membership(a, b, ListKind::Forward, true, "cg").await.unwrap();
    store.set_group_membership(a, b, 2, true).await.unwrap();
    store.set_group_membership(a, b, 2, true).await.unwrap();
    store.rename_group(a, 2, "House").await.unwrap();
    store.set_property(a, "PHH", Some("555"), true).await.unwrap();
    store.set_property(b, "PHM", Some("777"), true).await.unwrap();
    let serial = store.list_snapshot(a).await.unwrap().serial;
    assert_eq!(store.set_property(a, PERSONAL_MESSAGE, Some("<Data/>"), false).await.unwrap(), serial);
    store.set_nickname(a, b, Some("Bobby")).await.unwrap();
    let snap = store.list_snapshot(a).await.unwrap();
    assert_eq!(snap.groups.iter().map(|g| (g.id, g.name.as_str())).collect::<Vec<_>>(), [(1, "Play"), (2, "House")]);
    assert_eq!(snap.phones, [("PHH".to_string(), "555".to_string())]);
    assert_eq!(snap.personal_message.as_deref(), Some("<Data/>"));
    let e = &snap.entries[0];
    assert_eq!((e.guid.as_str(), e.groups.as_slice(), e.nickname.as_deref()), ("cg", &[2][..], Some("Bobby")));
    assert!(e.phones.is_empty(), "b does not allow a explicitly");
    store.set_list_membership(b, a, ListKind::Allow, true, "x").await.unwrap();
    assert_eq!(store.list_snapshot(a).await.unwrap().entries[0].phones, [("PHM".to_string(), "777".to_string())]);
    // Leaving the forward list leaves the groups; the GUID stays with the entry.
    store.set_list_membership(a, b, ListKind::Allow, true, "other").await.unwrap();
    store.set_list_membership(a, b, ListKind::Forward, false, "").await.unwrap();
    let e = &store.list_snapshot(a).await.unwrap().entries[0];
    assert!(e.groups.is_empty());
    assert_eq!(e.guid, "cg");
    store.set_property(a, "PHH", None, true).await.unwrap();
    assert!(store.list_snapshot(a).await.unwrap().phones.is_empty());
    // Group ids stay below the limit memory keeps them in, whatever the
    // count check in front of the store let through.
    let c = account(store, "c@x.com").await;
    for n in 1..crate::lists::GROUP_ID_LIMIT {
        assert_eq!(store.create_group(c, &format!("g{n}"), &format!("g{n}")).await.unwrap().0, n);
    }
    assert!(matches!(store.create_group(c, "one too many", "gx").await, Err(StoreError::TooManyGroups)));
    store.delete_group(c, 7).await.unwrap();
    assert_eq!(store.create_group(c, "again", "ga").await.unwrap().0, 7);
    let before = store.list_snapshot(a).await.unwrap().modified_ms;
    store.set_privacy(a, PrivacyMode::BlockUnlisted).await.unwrap();
    assert!(store.list_snapshot(a).await.unwrap().modified_ms > before);
}

async fn offline_messages_respect_the_quota_and_are_deleted_once(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let msg = |n: u8| OfflineMessage {
        id: 0,
        guid: format!("g{n}"),
        sender: "b@x.com".into(),
        sender_friendly: "B".into(),
        sent_at_ms: n as i64,
        payload: vec![n, 0, 255],
        from_contact: true,
        withheld: false,
    };
    let two = MailboxLimits { total: 2, per_sender: 2, from_strangers: 2 };
    let first = store.store_offline_message(a, msg(1), two).await.unwrap();
    store.store_offline_message(a, msg(2), two).await.unwrap();
    assert!(matches!(store.store_offline_message(a, msg(3), two).await, Err(StoreError::QuotaExceeded)));
    let waiting = store.offline_messages(a).await.unwrap();
    assert_eq!(waiting.iter().map(|m| m.payload[0]).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(waiting[0], first);
    assert_eq!(store.delete_offline_messages(a, &[first.id]).await.unwrap(), 1);
    assert_eq!(store.delete_offline_messages(a, &[first.id]).await.unwrap(), 0);
    assert_eq!(store.offline_messages(a).await.unwrap().len(), 1);
}

async fn a_mailbox_is_shared_among_senders_and_withheld_messages_count_unseen(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let limits = MailboxLimits { total: 5, per_sender: 2, from_strangers: 3 };
    let msg = |n: u8, sender: &str, from_contact: bool, withheld: bool| OfflineMessage {
        id: 0,
        guid: format!("g{n}"),
        sender: sender.into(),
        sender_friendly: "S".into(),
        sent_at_ms: n as i64,
        payload: if withheld { Vec::new() } else { vec![n] },
        from_contact,
        withheld,
    };
    let full = |r: Result<OfflineMessage, StoreError>| matches!(r, Err(StoreError::QuotaExceeded));
    // One sender gets two, whatever the case of its handle.
    store.store_offline_message(a, msg(1, "s1@x.com", false, false), limits).await.unwrap();
    store.store_offline_message(a, msg(2, "S1@x.com", false, true), limits).await.unwrap();
    assert!(full(store.store_offline_message(a, msg(3, "s1@x.com", false, false), limits).await));
    // Strangers together get three.
    store.store_offline_message(a, msg(4, "s2@x.com", false, false), limits).await.unwrap();
    assert!(full(store.store_offline_message(a, msg(5, "s3@x.com", false, false), limits).await));
    // Contacts still have room, up to the total.
    store.store_offline_message(a, msg(6, "c1@x.com", true, false), limits).await.unwrap();
    store.store_offline_message(a, msg(7, "c2@x.com", true, false), limits).await.unwrap();
    assert!(full(store.store_offline_message(a, msg(8, "c3@x.com", true, false), limits).await));
    // The withheld one is counted, flagged and without its text; once
    // deleted, there is room again.
    let waiting = store.offline_messages(a).await.unwrap();
    let withheld: Vec<&OfflineMessage> = waiting.iter().filter(|m| m.withheld).collect();
    assert_eq!((waiting.len(), withheld.len()), (5, 1));
    assert!(withheld[0].payload.is_empty() && !withheld[0].from_contact);
    assert_eq!(store.delete_offline_messages(a, &[withheld[0].id]).await.unwrap(), 1);
    store.store_offline_message(a, msg(9, "c3@x.com", true, false), limits).await.unwrap();
}

async fn concurrent_changes_are_all_durable(f: Fixture) {
    let store = f.open().await;
    let owner = account(store.as_ref(), "owner@x.com").await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(account(store.as_ref(), &format!("c{i}@x.com")).await);
    }
    let tasks: Vec<_> = ids
        .iter()
        .map(|&c| {
            let s = store.clone();
            tokio::spawn(async move { s.set_list_membership(owner, c, ListKind::Block, true, "g").await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(store);
    let reopened = f.open().await;
    let snap = reopened.list_snapshot(owner).await.unwrap();
    assert_eq!(snap.serial, 50);
    assert_eq!(snap.list(ListKind::Block).count(), 50);
}

/// Pairs adding each other at the same moment touch the same two rows in
/// opposite orders: neither may deadlock, and every serial counts exactly
/// the changes to its account.
async fn mutual_adds_at_once_neither_deadlock_nor_lose_serials(f: Fixture) {
    let store = f.open().await;
    let mut pairs = Vec::new();
    for i in 0..20 {
        pairs.push((
            account(store.as_ref(), &format!("l{i}@x.com")).await,
            account(store.as_ref(), &format!("r{i}@x.com")).await,
        ));
    }
    let mut tasks = Vec::new();
    for &(l, r) in &pairs {
        for (a, b) in [(l, r), (r, l)] {
            let s = store.clone();
            tasks.push(tokio::spawn(async move { s.set_list_membership(a, b, ListKind::Forward, true, "g").await }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for &(l, r) in &pairs {
        for id in [l, r] {
            let snap = store.list_snapshot(id).await.unwrap();
            assert_eq!(snap.serial, 2, "its own add and the other's reverse-list add");
            assert_eq!(snap.entries[0].lists, ListBits(ListKind::Forward.bit() | ListKind::Reverse.bit()));
        }
    }
}

async fn a_failing_change_does_not_undo_its_neighbours(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let bad = store.set_list_membership(a, 9999, ListKind::Block, true, "g");
    let good = store.set_privacy(a, PrivacyMode::BlockUnlisted);
    let (bad, good) = tokio::join!(bad, good);
    assert!(bad.is_err());
    assert_eq!(good.unwrap(), 1);
    assert_eq!(store.list_snapshot(a).await.unwrap().privacy, PrivacyMode::BlockUnlisted);
}

async fn list_changes_name_what_changed_since_and_what_was_removed(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    let b = account(store, "b@x.com").await;
    let c = account(store, "c@x.com").await;
    let modified = |id| async move { store.list_snapshot(id).await.unwrap().modified_ms };
    // Nothing changed after the last modification: nothing to tell.
    assert_eq!(store.list_changes(a, modified(a).await).await.unwrap(), Some(ListChanges::default()));
    store.set_list_membership(a, b, ListKind::Forward, true, "gb").await.unwrap();
    store.set_list_membership(a, c, ListKind::Forward, true, "gc").await.unwrap();
    let (group, _) = store.create_group(a, "Friends", "gg").await.unwrap();
    // From before the store kept removals: it cannot tell.
    assert_eq!(store.list_changes(a, 0).await.unwrap(), None);
    let (seen, seen_by_c) = (modified(a).await, modified(c).await);
    assert_eq!(store.list_changes(a, seen).await.unwrap(), Some(ListChanges::default()));

    store.set_group_membership(a, b, group, true).await.unwrap();
    store.set_list_membership(a, c, ListKind::Forward, false, "").await.unwrap();
    store.rename_group(a, group, "Pals").await.unwrap();
    let changes = store.list_changes(a, seen).await.unwrap().unwrap();
    assert_eq!(changes.contacts, [b], "b joined a group; c's entry is gone");
    assert_eq!(changes.groups, [group]);
    assert_eq!(changes.removed, [Removal::Contact { guid: "gc".into(), handle: Some("c@x.com".into()) }]);
    // The other side: a left c's reverse list.
    let on_c = store.list_changes(c, seen_by_c).await.unwrap().unwrap();
    assert!(matches!(&on_c.removed[..], [Removal::Contact { handle: Some(h), .. }] if h == "a@x.com"), "{on_c:?}");

    let seen = modified(a).await;
    store.delete_group(a, group).await.unwrap();
    let changes = store.list_changes(a, seen).await.unwrap().unwrap();
    assert_eq!(changes.contacts, [b], "b left the deleted group");
    assert_eq!(changes.removed, [Removal::Group { guid: "gg".into() }]);

    // An account deleted: every list it was on tells its owner.
    let seen = modified(a).await;
    store.delete_account("b@x.com").await.unwrap();
    let changes = store.list_changes(a, seen).await.unwrap().unwrap();
    assert!(matches!(&changes.removed[..], [Removal::Contact { guid, .. }] if guid == "gb"), "{changes:?}");
    assert!(changes.contacts.is_empty());
    assert_eq!(store.list_changes(a, modified(a).await).await.unwrap(), Some(ListChanges::default()));
}

async fn a_display_picture_is_kept_replaced_and_cleared(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let a = account(store, "a@x.com").await;
    assert_eq!(store.photo(a).await.unwrap(), None);
    let photo = |rid: &str, data: &[u8]| StoredPhoto {
        resource_id: rid.into(),
        name: "tile".into(),
        mime: "image/png".into(),
        data: data.to_vec(),
    };
    store.set_photo(a, Some(photo("1!1", b"\x89PNG one"))).await.unwrap();
    store.set_photo(a, Some(photo("1!2", b"\x89PNG two"))).await.unwrap();
    assert_eq!(store.photo(a).await.unwrap(), Some(photo("1!2", b"\x89PNG two")), "one picture, the latest");
    drop(f.open().await);
    assert_eq!(f.open().await.photo(a).await.unwrap(), Some(photo("1!2", b"\x89PNG two")), "durable");
    store.set_photo(a, None).await.unwrap();
    assert_eq!(store.photo(a).await.unwrap(), None);
    store.set_photo(a, Some(photo("1!3", b"x"))).await.unwrap();
    store.delete_account("a@x.com").await.unwrap();
    assert_eq!(store.photo(a).await.unwrap(), None, "gone with the account");
}

fn said(sender: &str, text: &str) -> CircleMessage {
    CircleMessage {
        id: 0,
        sender: sender.into(),
        sender_friendly: sender.into(),
        sent_at_ms: 1,
        text: text.into(),
        format: None,
    }
}

async fn circles_keep_members_limits_and_what_was_said(f: Fixture) {
    let store = f.open().await;
    let store = store.as_ref();
    let limits = CircleLimits { per_account: 2, members: 2 };
    let (a, b, c) = (account(store, "a@x.com").await, account(store, "b@x.com").await, account(store, "c@x.com").await);
    let one = CircleId::from_hex("000000000001").unwrap();
    let two = CircleId::from_hex("000000000002").unwrap();
    store.create_circle(a, &one, "Book club", limits).await.unwrap();
    store.create_circle(a, &two, "Chess", limits).await.unwrap();
    let three = CircleId::from_hex("000000000003").unwrap();
    assert!(matches!(store.create_circle(a, &three, "Third", limits).await, Err(StoreError::CircleFull)));
    assert!(store.circle(&three).await.unwrap().is_none(), "a refused circle is not made");

    // Before anyone is invited, something is said: the invitee will not get it.
    let before = store.store_circle_message(&one, said("a@x.com", "before"), 10).await.unwrap();
    let invite = MembershipChange::Invite { inviter: "a@x.com".into(), message: Some("join".into()) };
    store.change_membership(&one, b, invite.clone(), limits).await.unwrap();
    store.change_membership(&one, b, invite.clone(), limits).await.unwrap();
    assert!(matches!(store.change_membership(&one, c, invite.clone(), limits).await, Err(StoreError::CircleFull)));
    let circle = store.circle(&one).await.unwrap().unwrap();
    assert_eq!(circle.name, "Book club");
    let member = circle.member(b).unwrap();
    assert_eq!(
        (member.role, member.state, member.inviter.as_deref()),
        (CircleRole::Member, CircleState::WaitingResponse, Some("a@x.com"))
    );
    assert_eq!(circle.member(a).unwrap().role, CircleRole::Admin);
    store.change_membership(&one, b, MembershipChange::Accept, limits).await.unwrap();
    let member = store.circle(&one).await.unwrap().unwrap().member(b).cloned().unwrap();
    assert_eq!((member.state, member.seen_id, member.inviter), (CircleState::Accepted, before, None));
    assert!(matches!(
        store.change_membership(&one, c, MembershipChange::Accept, limits).await,
        Err(StoreError::NoSuchCircle)
    ));

    // Only the newest are kept; seen never moves back.
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store.store_circle_message(&one, said("b@x.com", &format!("m{i}")), 3).await.unwrap());
    }
    let kept = store.circle_messages_after(&one, 0).await.unwrap();
    assert_eq!(kept.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3"]);
    assert_eq!(store.circle_messages_after(&one, ids[2]).await.unwrap().len(), 1);
    store.mark_circle_seen(&one, b, ids[3]).await.unwrap();
    store.mark_circle_seen(&one, b, ids[0]).await.unwrap();
    assert_eq!(store.circle(&one).await.unwrap().unwrap().member(b).unwrap().seen_id, ids[3]);
    assert_eq!(store.circles_of(b).await.unwrap().len(), 1);
    assert_eq!(store.circles_of(a).await.unwrap().len(), 2);

    // The circle goes with its last member, and with it what was said.
    store.change_membership(&one, a, MembershipChange::Remove, limits).await.unwrap();
    assert!(store.circle(&one).await.unwrap().is_some());
    store.change_membership(&one, b, MembershipChange::Remove, limits).await.unwrap();
    assert!(store.circle(&one).await.unwrap().is_none());
    assert!(store.circle_messages_after(&one, 0).await.unwrap().is_empty());
    assert!(matches!(
        store.change_membership(&one, b, MembershipChange::Remove, limits).await,
        Err(StoreError::NoSuchCircle)
    ));
}

/// Declares each test once per back end.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::Fixture::Sqlite(tempfile::tempdir().unwrap())).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let name = concat!("store::conformance::postgres::", stringify!($name));
                    let Some(config) = crate::testing::postgres_schema(name).await else { return };
                    super::$name(super::Fixture::Postgres(Box::new(config))).await;
                }
            )*
        }
    };
}

suite!(
    forward_list_mirrors_reverse_list_and_bumps_both_serials,
    accounts_credentials_and_listing,
    groups_properties_and_guids,
    offline_messages_respect_the_quota_and_are_deleted_once,
    a_mailbox_is_shared_among_senders_and_withheld_messages_count_unseen,
    concurrent_changes_are_all_durable,
    mutual_adds_at_once_neither_deadlock_nor_lose_serials,
    a_failing_change_does_not_undo_its_neighbours,
    list_changes_name_what_changed_since_and_what_was_removed,
    a_display_picture_is_kept_replaced_and_cleared,
    circles_keep_members_limits_and_what_was_said,
);
