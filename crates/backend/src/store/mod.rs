//! Persistence behind one trait, so that the embedded SQLite store and the
//! PostgreSQL store of a cluster are interchangeable.
//!
//! The operations are domain-shaped (set a list bit, bump the serial) rather
//! than generic key-value calls, so each back end can do every change in one
//! transaction. A call returns only after its change is durable: the server
//! acknowledges a change to a client only after that.

#[cfg(test)]
mod conformance;
mod postgres;
mod sqlite;
pub mod timed;

use async_trait::async_trait;
use msnp::circle::{CircleId, CircleRole, CircleState};
use msnp::{ListKind, PrivacyMode, PromptMode};

pub use postgres::PostgresStore;

/// What an invitation checks, in one statement both stores run ($1 the
/// circle, $2 the invitee): whether they are in it already, how many the
/// circle holds, how many circles they are in.
pub(crate) const INVITATION_COUNTS: &str = "SELECT
    EXISTS (SELECT 1 FROM circle_members WHERE circle_id = $1 AND account_id = $2),
    (SELECT COUNT(*) FROM circle_members WHERE circle_id = $1),
    (SELECT COUNT(*) FROM circle_members WHERE account_id = $2)";

/// The member columns both stores read, in this order, after the circle's
/// id and name: account, handle, friendly, role, state, inviter, invite
/// message, seen id.
pub(crate) const MEMBER_COLUMNS: &str =
    "m.account_id, a.handle, a.friendly, m.role, m.state, m.inviter, m.invite_message, m.seen_id";
pub use sqlite::{SqliteStore, backup as backup_sqlite, verify as verify_sqlite};

use crate::lists::{AccountId, Group, ListEntry, ListSnapshot, PERSONAL_MESSAGE, PHONE_KINDS};

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account with that handle already exists")]
    AccountExists,
    #[error("no such account")]
    NoSuchAccount,
    #[error("database error: {0}")]
    Database(String),
    #[error("the store has shut down")]
    Closed,
    #[error("the recipient's offline message quota is full")]
    QuotaExceeded,
    #[error("too many circles, or too many members in the circle")]
    CircleFull,
    #[error("no such circle, or no such member of it")]
    NoSuchCircle,
    #[error("no group id is free below the limit")]
    TooManyGroups,
}

/// A circle (a persistent group chat, MSNP18) as stored, with everyone in
/// it or invited to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCircle {
    pub id: CircleId,
    pub name: String,
    pub members: Vec<StoredCircleMember>,
}

impl StoredCircle {
    /// The member row of `account`, if they are in or invited.
    pub fn member(&self, account: AccountId) -> Option<&StoredCircleMember> {
        self.members.iter().find(|m| m.account == account)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCircleMember {
    pub account: AccountId,
    pub handle: String,
    pub friendly: String,
    pub role: CircleRole,
    pub state: CircleState,
    /// Who invited them, and what they said, while the invitation waits.
    pub inviter: Option<String>,
    pub invite_message: Option<String>,
    /// The last message of the circle they have been given.
    pub seen_id: i64,
}

/// A change to one membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// Invite someone not yet in the circle (nothing changes if they are).
    Invite { inviter: String, message: Option<String> },
    /// The invitee accepts: a member from now on, who has seen everything
    /// said before.
    Accept,
    /// Leave, decline, or be removed; the circle goes with its last member.
    Remove,
}

/// How many circles and members the store admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircleLimits {
    /// Circles one account may be in or invited to.
    pub per_account: usize,
    /// Members (and invitees) of one circle.
    pub members: usize,
}

/// A message said in a circle, kept for the members who were away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleMessage {
    pub id: i64,
    pub sender: String,
    pub sender_friendly: String,
    pub sent_at_ms: i64,
    pub text: String,
    pub format: Option<String>,
}

/// A message kept for a user who was offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: i64,
    /// A GUID, the id the offline-message web service names it by.
    pub guid: String,
    pub sender: String,
    pub sender_friendly: String,
    /// When it was sent, Unix milliseconds.
    pub sent_at_ms: i64,
    /// The MIME message as the sender wrote it.
    pub payload: Vec<u8>,
    /// Whether the sender was on the recipient's allow list when it was
    /// sent: contacts have a share of the mailbox strangers cannot take.
    pub from_contact: bool,
    /// Kept only so that a sender the recipient blocks is answered exactly
    /// as anyone else (same checks, same write, same quota): never shown,
    /// its text not kept, dropped when the recipient next signs in.
    pub withheld: bool,
}

impl OfflineMessage {
    /// What the message's notice says of it.
    pub fn waiting(&self) -> crate::presence::WaitingMessage {
        crate::presence::WaitingMessage {
            guid: self.guid.clone(),
            sender: self.sender.clone(),
            sender_friendly: self.sender_friendly.clone(),
            sent_at_ms: self.sent_at_ms,
            size: self.payload.len(),
        }
    }
}

/// How one recipient's mailbox is shared, checked in the transaction that
/// stores a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLimits {
    /// Messages waiting in all.
    pub total: usize,
    /// From any one sender.
    pub per_sender: usize,
    /// From everyone not on the recipient's allow list, together.
    pub from_strangers: usize,
}

impl MailboxLimits {
    /// The shares of a mailbox of `total`: a fifth for any one sender, half
    /// for strangers, so that one stranger cannot fill it and strangers
    /// together cannot crowd out contacts.
    pub fn of(total: usize) -> MailboxLimits {
        MailboxLimits { total, per_sender: (total / 5).max(1), from_strangers: (total / 2).max(1) }
    }

    /// Whether a message from `sender` fits beside what is waiting.
    pub fn admits(&self, waiting: MailboxCounts, from_contact: bool) -> bool {
        waiting.total < self.total
            && waiting.from_sender < self.per_sender
            && (from_contact || waiting.from_strangers < self.from_strangers)
    }
}

/// What is waiting in a mailbox, as the limits count it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailboxCounts {
    pub total: usize,
    pub from_sender: usize,
    pub from_strangers: usize,
}

/// What is needed to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// The handle as the user spelled it.
    pub handle: String,
    pub friendly: String,
    pub credentials: Credentials,
}

/// The stored forms of a password (see [`crate::secrets`]).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The password sealed under the server key, for MD5 login.
    pub sealed_secret: Option<Vec<u8>>,
}

/// An account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub handle: String,
    pub friendly: String,
    pub credentials: Credentials,
    pub disabled: bool,
}

/// A line of `msnd user list`.
#[derive(Debug, Clone)]
pub struct AccountSummary {
    pub handle: String,
    pub friendly: String,
    pub contacts: usize,
    pub disabled: bool,
}

/// The serial numbers after a list change: the owner's, and for forward-list
/// changes also the contact's (whose reverse list changed with it); and the
/// GUID of the owner's entry for the contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListChange {
    pub owner_serial: u32,
    pub contact_serial: Option<u32>,
    pub guid: String,
}

/// What changed on one account's lists after a moment (the address book's
/// delta answers): the entries and groups changed since, by id, and what
/// was removed. Entries are named, not copied: the caller reads them from a
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListChanges {
    pub contacts: Vec<AccountId>,
    pub groups: Vec<u32>,
    pub removed: Vec<Removal>,
}

/// Something taken off an account's lists: a contact's entry (its GUID and
/// handle; no handle if the account is gone) or a group (its GUID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Contact { guid: String, handle: Option<String> },
    Group { guid: String },
}

/// Assembles [`ListChanges`] from the rows both stores read: a removal
/// with no handle column is a group's, one with an empty handle a contact
/// whose account is gone.
fn removals(contacts: Vec<AccountId>, groups: Vec<i64>, rows: Vec<(String, Option<String>)>) -> ListChanges {
    let removed = rows
        .into_iter()
        .map(|(guid, handle)| match handle {
            None => Removal::Group { guid },
            Some(h) if h.is_empty() => Removal::Contact { guid, handle: None },
            Some(h) => Removal::Contact { guid, handle: Some(h) },
        })
        .collect();
    ListChanges { contacts, groups: groups.into_iter().map(|g| g as u32).collect(), removed }
}

/// A display picture kept for the storage service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhoto {
    pub resource_id: String,
    pub name: String,
    pub mime: String,
    pub data: Vec<u8>,
}

/// How long removals are remembered for delta answers; an older moment is
/// answered with "sync in full".
pub const REMOVALS_KEPT_MS: i64 = 90 * 24 * 3600 * 1000;

/// The persistence the domain needs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an account; handles are unique without regard to case.
    async fn create_account(&self, account: NewAccount) -> Result<AccountId, StoreError>;
    /// Deletes an account and every list entry that names it; the serial of
    /// each user whose lists changed is bumped so their clients resync.
    async fn delete_account(&self, handle_key: &str) -> Result<(), StoreError>;
    /// Disables an account (it cannot sign in) or enables it again.
    async fn set_disabled(&self, handle_key: &str, disabled: bool) -> Result<(), StoreError>;
    /// Replaces an account's credentials.
    async fn set_credentials(&self, handle_key: &str, credentials: Credentials) -> Result<(), StoreError>;
    /// All accounts, ordered by handle.
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError>;
    /// Looks an account up by its case-folded handle.
    async fn account(&self, handle_key: &str) -> Result<Option<Account>, StoreError>;
    /// Everything `SYN` sends for one account.
    async fn list_snapshot(&self, id: AccountId) -> Result<ListSnapshot, StoreError>;
    /// What changed on the account's lists after `since_ms` (a modification
    /// time the store gave); `None` if the store cannot tell (the moment is
    /// before it kept removals, or older than [`REMOVALS_KEPT_MS`]).
    async fn list_changes(&self, id: AccountId, since_ms: i64) -> Result<Option<ListChanges>, StoreError>;
    /// The account's display picture (the storage service's), if any.
    async fn photo(&self, id: AccountId) -> Result<Option<StoredPhoto>, StoreError>;
    /// Sets (replacing any) or clears the account's display picture.
    async fn set_photo(&self, id: AccountId, photo: Option<StoredPhoto>) -> Result<(), StoreError>;
    /// Puts `contact` on or off one of `owner`'s lists and bumps the owner's
    /// serial. For the forward list, `owner` goes on or off the contact's
    /// reverse list in the same transaction and the contact's serial is
    /// bumped; leaving the forward list leaves every group. A new entry gets
    /// `new_guid` as its contact GUID; an existing one keeps its own.
    async fn set_list_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        list: ListKind,
        member: bool,
        new_guid: &str,
    ) -> Result<ListChange, StoreError>;
    /// Creates a group with the lowest free id from 1; returns (id, serial).
    async fn create_group(&self, owner: AccountId, name: &str, guid: &str) -> Result<(u32, u32), StoreError>;
    /// Deletes a group (its members stay on the forward list); returns the serial.
    async fn delete_group(&self, owner: AccountId, id: u32) -> Result<u32, StoreError>;
    /// Renames a group; returns the serial.
    async fn rename_group(&self, owner: AccountId, id: u32, name: &str) -> Result<u32, StoreError>;
    /// Puts a forward-list contact into a group or out of it; returns the serial.
    async fn set_group_membership(
        &self,
        owner: AccountId,
        contact: AccountId,
        group: u32,
        member: bool,
    ) -> Result<u32, StoreError>;
    /// Sets or clears an account property (phones, the personal message);
    /// returns the new serial when `bump_serial`, else the current one.
    async fn set_property(
        &self,
        id: AccountId,
        kind: &str,
        value: Option<&str>,
        bump_serial: bool,
    ) -> Result<u32, StoreError>;
    /// Keeps a message for `recipient`, unless the mailbox `limits` leave
    /// no room for it (checked in the same transaction).
    async fn store_offline_message(
        &self,
        recipient: AccountId,
        message: OfflineMessage,
        limits: MailboxLimits,
    ) -> Result<OfflineMessage, StoreError>;
    /// The messages waiting for `recipient`, oldest first, withheld ones
    /// included (the backend drops them unseen).
    async fn offline_messages(&self, recipient: AccountId) -> Result<Vec<OfflineMessage>, StoreError>;
    /// Deletes delivered messages; returns how many were deleted.
    async fn delete_offline_messages(&self, recipient: AccountId, ids: &[i64]) -> Result<usize, StoreError>;
    /// Stores the name `owner` gave a contact (`SBP ... MFN`).
    async fn set_nickname(
        &self,
        owner: AccountId,
        contact: AccountId,
        nickname: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Stores the privacy mode (`BLP`); returns the new serial.
    async fn set_privacy(&self, id: AccountId, mode: PrivacyMode) -> Result<u32, StoreError>;
    /// Stores the reverse-list prompt setting (`GTC`); returns the new serial.
    async fn set_prompt(&self, id: AccountId, mode: PromptMode) -> Result<u32, StoreError>;
    /// Stores the friendly name (`REA`); returns the new serial.
    async fn set_friendly_name(&self, id: AccountId, friendly: &str) -> Result<u32, StoreError>;
    /// Creates a circle with `owner` as its accepted administrator, unless
    /// the owner is in `limits.per_account` circles already (`CircleFull`).
    async fn create_circle(
        &self,
        owner: AccountId,
        id: &CircleId,
        name: &str,
        limits: CircleLimits,
    ) -> Result<(), StoreError>;
    /// A circle with its members.
    async fn circle(&self, id: &CircleId) -> Result<Option<StoredCircle>, StoreError>;
    /// The circles `account` is in or invited to, with their members.
    async fn circles_of(&self, account: AccountId) -> Result<Vec<StoredCircle>, StoreError>;
    /// Changes one membership, checking `limits` for an invitation in the
    /// same transaction; `NoSuchCircle` if the circle is gone, or the
    /// change needs a membership there is none of.
    async fn change_membership(
        &self,
        id: &CircleId,
        account: AccountId,
        change: MembershipChange,
        limits: CircleLimits,
    ) -> Result<(), StoreError>;
    /// Keeps a message said in a circle, and only the newest `keep`;
    /// returns its id.
    async fn store_circle_message(&self, id: &CircleId, message: CircleMessage, keep: usize)
    -> Result<i64, StoreError>;
    /// The kept messages of a circle after `after_id`, oldest first.
    async fn circle_messages_after(&self, id: &CircleId, after_id: i64) -> Result<Vec<CircleMessage>, StoreError>;
    /// Records that `account` has been given the circle's messages up to
    /// `seen_id` (never moves back).
    async fn mark_circle_seen(&self, id: &CircleId, account: AccountId, seen_id: i64) -> Result<(), StoreError>;
}

/// The role and state numbers a store keeps (the wire's).
pub(crate) fn role_of(n: i64) -> CircleRole {
    if n == i64::from(CircleRole::Admin.number()) { CircleRole::Admin } else { CircleRole::Member }
}

pub(crate) fn state_of(n: i64) -> CircleState {
    if n == i64::from(CircleState::Accepted.number()) { CircleState::Accepted } else { CircleState::WaitingResponse }
}

/// Assembles circles from member rows ordered by circle:
/// (circle id, name, member).
pub(crate) fn circles_from_rows(rows: Vec<(String, String, StoredCircleMember)>) -> Vec<StoredCircle> {
    let mut circles: Vec<StoredCircle> = Vec::new();
    for (id, name, member) in rows {
        let Some(id) = CircleId::from_hex(&id) else { continue };
        match circles.last_mut() {
            Some(c) if c.id == id => c.members.push(member),
            _ => circles.push(StoredCircle { id, name, members: vec![member] }),
        }
    }
    circles
}

/// The rows `SYN` needs, as each back end reads them in its own SQL; the
/// snapshot is assembled from them in one place.
pub(crate) struct SnapshotRows {
    pub serial: u32,
    pub modified_ms: i64,
    pub prompt: String,
    pub privacy: String,
    pub friendly: String,
    /// The account's own properties (phones, the personal message).
    pub properties: Vec<(String, String)>,
    pub groups: Vec<Group>,
    /// List entries, ordered by the contact's handle key.
    pub entries: Vec<ListEntry>,
    /// (contact, group) memberships, ordered by group.
    pub memberships: Vec<(AccountId, u32)>,
    /// Phones of contacts who allow the account explicitly: (contact, kind, value).
    pub contact_phones: Vec<(AccountId, String, String)>,
}

impl SnapshotRows {
    pub(crate) fn into_snapshot(self) -> ListSnapshot {
        let phone_order = |kind: &str| PHONE_KINDS.iter().position(|p| *p == kind);
        let mut phones = Vec::new();
        let mut personal_message = None;
        for (kind, value) in self.properties {
            if kind == PERSONAL_MESSAGE {
                personal_message = Some(value);
            } else if PHONE_KINDS.contains(&kind.as_str()) {
                phones.push((kind, value));
            }
        }
        phones.sort_by_key(|(k, _)| phone_order(k));
        let mut entries = self.entries;
        let index: std::collections::HashMap<AccountId, usize> =
            entries.iter().enumerate().map(|(i, e)| (e.contact_id, i)).collect();
        for (contact, group) in self.memberships {
            if let Some(&i) = index.get(&contact) {
                entries[i].groups.push(group);
            }
        }
        for (contact, kind, value) in self.contact_phones {
            if let Some(&i) = index.get(&contact) {
                entries[i].phones.push((kind, value));
            }
        }
        for e in &mut entries {
            e.phones.sort_by_key(|(k, _)| phone_order(k));
        }
        ListSnapshot {
            serial: self.serial,
            modified_ms: self.modified_ms,
            prompt: PromptMode::from_code(&self.prompt).unwrap_or_default(),
            privacy: PrivacyMode::from_code(&self.privacy).unwrap_or_default(),
            friendly: self.friendly,
            phones,
            personal_message,
            groups: self.groups,
            entries,
        }
    }
}
