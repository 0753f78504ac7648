//! What crosses between nodes when the service runs as a cluster, and the
//! interface the domain uses to send it. The transport (NATS, in the server
//! crate) implements [`Cluster`]; a single node has none and every user is
//! local.
//!
//! The rule: a user's node is the authority on that user. Presence and
//! privacy are decided where the user is signed in, so a node that needs to
//! know whether a remote contact is visible asks that contact's node
//! ([`Request::Visible`]), and a node that has something to tell a remote
//! user sends it to that user's node ([`Envelope`]), which delivers it the
//! way it delivers local events.

use std::future::Future;
use std::pin::Pin;

use msnp::ListKind;
use msnp::circle::Said;
use msnp::endpoint::MachineGuid;
use msnp::multiparty::GroupId;
use serde::{Deserialize, Serialize};

use crate::presence::{ContactPresence, NsEvent, OnlineUser};

/// A node's name in the cluster (unique per running process).
pub type NodeId = String;

/// A one-way message to the node of user `to` (by handle key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Envelope {
    /// Deliver an event to `to`'s connection.
    Deliver { to: String, event: NsEvent },
    /// Deliver a presence event to each of `to`, watchers signed in on the
    /// receiving node: one message per node rather than one per watcher.
    DeliverPresence { to: Vec<String>, event: NsEvent },
    /// `contact` was put on or taken off `to`'s `list` by a change `contact`
    /// made (the reverse list of a forward-list change): update the lists in
    /// memory, then deliver `event`.
    ListChanged { to: String, contact: String, list: ListKind, member: bool, event: NsEvent },
    /// `to`'s own list changed through the web services on another node:
    /// keep `to`'s lists in memory as the store has them.
    OwnListChanged { to: String, contact: String, list: ListKind, member: bool },
    /// `to` signed in elsewhere: end the session `session` with `OUT OTH`.
    SignedInElsewhere { to: String, session: u64 },
    /// An offline message for `to` was stored: offer it now.
    OfflineMessageWaiting { to: String },
    /// `to`'s password changed: void their tickets and end their sign-in.
    CredentialsChanged { to: String },
    /// A web messenger session was ended (signed out) before it expired.
    WebSessionEnded { id: String, expires: u64 },
    /// A conversation `to` is in lives on node `home`: what `to` does in it
    /// is asked of that node ([`Request::Converse`]). `conversation` is the
    /// other person's key (a switchboard conversation bridged to `to`) or a
    /// group's address. Then `event`, if any, is delivered.
    ConversationAt { to: String, conversation: String, home: NodeId, event: Option<NsEvent> },
    /// That conversation ended at its home.
    ConversationEnded { to: String, conversation: String },
}

/// A question to another node, answered with a [`Response`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Which of `contacts` (users of the asked node) may `watcher` see, and how?
    Visible { watcher: String, contacts: Vec<String> },
    /// May `caller_key` invite `invitee` to a switchboard session (online,
    /// visible, taking invitations, allowing the caller)? If so, with what
    /// name and dialect do they join?
    Invitable { invitee: String, caller_key: String },
    /// Consume a Passport ticket this node issued, if it did (`USR TWN S`
    /// or `USR SSO S` on a notification node other than the login
    /// service's). The session key of a single sign-on ticket never leaves
    /// its node: the proof travels to it instead.
    RedeemTicket { handle_key: String, ticket: String, proof: Option<crate::passport::SsoProof> },
    /// Issue a cookie for a new switchboard session for `user` (`XFR SB`
    /// on a notification node that is not a switchboard).
    OpenSession { user: Invitee, requester: String },
    /// `speaker`, signed in on the asking node, acts in a conversation this
    /// node holds (see [`Envelope::ConversationAt`]).
    Converse { speaker: Speaker, call: Call },
}

/// What someone does in a conversation held on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Call {
    /// Says something to `other` (a key) in the switchboard conversation
    /// bridged to the speaker.
    SayTo {
        other: String,
        said: Said,
    },
    SayInGroup {
        group: GroupId,
        said: Said,
    },
    JoinGroup {
        group: GroupId,
    },
    LeaveGroup {
        group: GroupId,
    },
    InviteToGroup {
        group: GroupId,
        handle: String,
    },
    /// The speaker can no longer be reached without a switchboard (its last
    /// such endpoint signed out): out of every conversation held here.
    Gone,
}

/// Someone in a conversation, as the people in it see them: enough to act
/// for a user signed in on another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Speaker {
    pub key: String,
    pub handle: String,
    pub friendly: String,
    pub client_id: u32,
    pub dialect: msnp::Dialect,
    /// The endpoint that acts (MSNP16+), so its own copy is left out.
    pub machine: Option<MachineGuid>,
}

impl Speaker {
    pub fn of(user: &OnlineUser) -> Speaker {
        let p = user.presence();
        Speaker {
            key: user.key.clone(),
            handle: user.handle.clone(),
            friendly: p.friendly,
            client_id: p.client_id,
            dialect: user.dialect,
            machine: user.machine.clone(),
        }
    }
}

impl From<&Invitee> for Speaker {
    fn from(i: &Invitee) -> Speaker {
        Speaker {
            key: i.handle.to_ascii_lowercase(),
            handle: i.handle.clone(),
            friendly: i.friendly.clone(),
            client_id: i.client_id,
            dialect: i.dialect,
            machine: None,
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    Visible(Vec<(String, SerializablePresence)>),
    Invitable(Option<Invitee>),
    /// The ticket was this node's, valid, and is now used up: the
    /// credentials it was issued under and its milliseconds left.
    Redeemed(Option<(u64, u64)>),
    /// The cookie, or the error code to answer `XFR SB` with.
    Session(Result<String, u16>),
    /// What a [`Request::Converse`] came to: done, or the error code.
    Conversed(Result<(), u16>),
}

/// Who an invitation cookie is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invitee {
    pub handle: String,
    pub friendly: String,
    pub client_id: u32,
    pub dialect: msnp::Dialect,
    /// The invitee's machines when signed in from several (MSNP16+), each
    /// with its dialect: each is rung with a cookie of its own.
    #[serde(default)]
    pub endpoints: Vec<(MachineGuid, msnp::Dialect)>,
}

impl Invitee {
    /// The dialects of the invitee's sign-ins: each machine's, or the one's.
    fn dialects(&self) -> impl Iterator<Item = msnp::Dialect> + '_ {
        let single = self.endpoints.is_empty().then_some(self.dialect);
        single.into_iter().chain(self.endpoints.iter().map(|(_, d)| *d))
    }

    /// Whether a sign-in of theirs can answer a switchboard ring.
    pub fn has_switchboard(&self) -> bool {
        self.dialects().any(|d| d.has_switchboard())
    }

    /// Whether a sign-in of theirs reads `SDG` without a switchboard (MSNP21).
    pub fn reads_sdg(&self) -> bool {
        self.dialects().any(|d| !d.has_switchboard())
    }
}

/// [`ContactPresence`] in the form that crosses the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SerializablePresence {
    pub line: msnp::reply::PresenceLine,
    pub personal_message: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<msnp::personal::EndpointData>,
}

impl From<ContactPresence> for SerializablePresence {
    fn from(p: ContactPresence) -> Self {
        SerializablePresence { line: p.line, personal_message: p.personal_message, endpoints: p.endpoints }
    }
}

impl From<SerializablePresence> for ContactPresence {
    fn from(p: SerializablePresence) -> Self {
        ContactPresence { line: p.line, personal_message: p.personal_message, endpoints: p.endpoints }
    }
}

/// A boxed future: the trait is used as `dyn Cluster`.
pub type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The transport between nodes, as the domain sees it.
pub trait Cluster: Send + Sync + 'static {
    /// This node's name.
    fn node_id(&self) -> &str;
    /// The other node a user (by handle key) is signed in on, if any and if
    /// that node is alive.
    fn locate(&self, key: &str) -> Option<NodeId>;
    /// Sends a message to a node; messages from one node to another arrive
    /// in the order they were sent.
    fn send(&self, node: &str, envelope: Envelope);
    /// Sends a message to every node (each acts on it only for its own users).
    fn broadcast(&self, envelope: Envelope);
    /// Asks a node; `None` if it did not answer in time.
    fn request(&self, node: &str, request: Request) -> Pending<Option<Response>>;
    /// Records in the directory that `user` is signed in here.
    fn signed_in(&self, user: &OnlineUser);
    /// Removes `user` from the directory if it still names this sign-in.
    fn signed_out(&self, user: &OnlineUser);
    /// Every other live node.
    fn peers(&self) -> Vec<NodeId>;
    /// Whether nodes went silent lately (given up, not gone with a
    /// goodbye): what they alone know may be out of reach for now.
    fn peers_lost_lately(&self) -> bool;
    /// The user (handle key) whose sign-in on a live node has this web
    /// token (`MSPAuth`).
    fn user_of_token(&self, token: &str) -> Option<String>;
    /// Where this node's switchboard takes `ANS`, for `RNG` sent to users
    /// on other nodes.
    fn switchboard_address(&self) -> String;
    /// The switchboard node for a new session and its address, or `None`
    /// when this node serves switchboards itself.
    fn pick_switchboard(&self) -> Option<(NodeId, String)>;
}
