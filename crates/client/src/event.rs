//! The one stream of events a client delivers to its application.

use serde::Serialize;

/// Something that happened. Serialises to one JSON object (for `msn listen`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Signed in and the lists are synced.
    SignedIn { handle: String, dialect: String, contacts: usize },
    /// A contact is online, or changed state or name.
    Presence { handle: String, friendly: String, state: String },
    /// A contact went offline (or hid, or blocked me).
    Offline { handle: String },
    /// A contact's personal message.
    PersonalMessage { handle: String, text: String },
    /// Someone added me to their contact list. `needs_answer` when I have
    /// neither allowed nor blocked them (ask the user, draft 7.6).
    AddedBy { handle: String, friendly: String, needs_answer: bool },
    /// Someone removed me from their contact list.
    RemovedBy { handle: String },
    /// A conversation started (I called, or someone invited me).
    ConversationStarted { conversation: u64, with: Vec<String>, invited_by: Option<String> },
    /// Someone joined a conversation.
    Joined { conversation: u64, handle: String, friendly: String },
    /// Someone left a conversation (`idle`: the server timed them out).
    Left { conversation: u64, handle: String, idle: bool },
    /// A conversation ended (everyone else left, or the connection closed).
    ConversationEnded { conversation: u64 },
    /// A message.
    Message {
        conversation: u64,
        from: String,
        friendly: String,
        text: String,
        format: Option<String>,
        offline_sent: Option<String>,
    },
    /// An offline message read from the web service (MSNP13+), sent at
    /// `sent` (ISO 8601, UTC) while I was away.
    OfflineMessage { from: String, friendly: String, text: String, sent: String },
    /// Someone is typing.
    Typing { conversation: u64, from: String },
    /// A nudge.
    Nudge { conversation: u64, from: String },
    /// Someone offers a file.
    FileOffer { conversation: u64, transfer: u64, from: String, name: String, size: u64, method: String },
    /// Bytes of a transfer have gone through.
    FileProgress { transfer: u64, done: u64, total: u64 },
    /// A transfer finished; for a received file, the checksum was verified
    /// when the sender gave one.
    FileDone { transfer: u64, path: Option<String>, size: u64, sha256: String, verified: bool },
    /// A direct connection could not be made; the transfer goes on through
    /// the switchboard (MSNSLP/P2P) instead.
    FileFallback { transfer: u64, reason: String },
    /// A transfer did not happen or stopped.
    FileFailed { transfer: u64, reason: String },
    /// Someone invited me into a circle (MSNP18's group chats).
    CircleInvitation { circle: String, name: String, by: String },
    /// I joined a circle: its messages reach me from now on.
    CircleJoined { circle: String, name: String },
    /// Who is in a circle now.
    CircleRoster { circle: String, members: Vec<String> },
    /// Someone said something in a circle (or said it while I was away).
    CircleMessage { circle: String, from: String, text: String },
    /// Someone left a circle for good.
    CircleLeft { circle: String, handle: String },
    /// A message from the service itself (an operator's broadcast).
    ServiceMessage { text: String },
    /// The server ended the session (`OTH`: signed in elsewhere; `SSD`:
    /// shutting down) or the connection was lost.
    SignedOut { reason: String },
}
