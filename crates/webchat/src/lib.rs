//! The web messenger's live channel: the JSON frames a page and msnd send
//! each other over one WebSocket, both directions, with no I/O.
//!
//! Every frame is one JSON object with a `type`. What the server sends is
//! numbered (`seq`, from 1) so that a page that lost its connection can
//! come back with the last number it saw and be sent what it missed, once;
//! what a page sends that must not happen twice (a message) carries the
//! page's own `id`, and the server answers a repeated `id` without acting
//! again. docs/WEB-MESSENGER.md describes the exchange.
//!
//! Parsing is bounded: a frame is at most [`MAX_FRAME`] bytes before it is
//! read at all, and every string and list in it has a limit of its own.

use serde::{Deserialize, Serialize};

/// The version of this protocol; a page says which it speaks in `hello`.
pub const VERSION: u32 = 1;
/// The largest frame a page may send, in bytes.
pub const MAX_FRAME: usize = 8 * 1024;
/// The most text one message carries (what an MSN switchboard message may).
pub const MAX_TEXT: usize = 1_400;
/// The longest handle (an e-mail address; MSN's own limit).
pub const MAX_HANDLE: usize = 129;
/// The longest friendly name or personal message, in characters.
pub const MAX_NAME: usize = 129;
/// The longest id a page gives a frame of its own.
pub const MAX_ID: usize = 64;
/// The most people one request invites.
pub const MAX_INVITED: usize = 8;

/// A state one shows (`None` on a contact is offline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Online,
    Busy,
    Away,
    Brb,
    Phone,
    Lunch,
    Idle,
    /// Signed in but shown offline to everyone.
    Hidden,
}

/// What a page sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// The first frame on every connection: a new page, or one coming back
    /// (`page` as the server named it, and the last `seq` it saw).
    Hello {
        version: u32,
        #[serde(default)]
        page: Option<String>,
        #[serde(default)]
        last_seen: Option<u64>,
    },
    /// Everything up to `seq` arrived: the server may forget it.
    Ack {
        seq: u64,
    },
    SetState {
        state: State,
    },
    SetName {
        name: String,
    },
    SetPersonal {
        text: String,
    },
    /// Adds someone to one's contacts (and allows them to see one).
    AddContact {
        handle: String,
    },
    RemoveContact {
        handle: String,
    },
    Block {
        handle: String,
    },
    /// Unblocks someone and lets them see one's presence.
    Allow {
        handle: String,
    },
    /// A message to one contact; `id` is the page's, answered by `sent`.
    Send {
        id: String,
        to: String,
        text: String,
    },
    Typing {
        to: String,
    },
    Nudge {
        to: String,
    },
    /// Starts a group conversation and invites people into it; `id` comes
    /// back in `group_started`.
    GroupStart {
        id: String,
        invite: Vec<String>,
    },
    GroupInvite {
        group: String,
        handle: String,
    },
    GroupSend {
        id: String,
        group: String,
        text: String,
    },
    GroupTyping {
        group: String,
    },
    GroupLeave {
        group: String,
    },
    /// Ends the page's sign-in (the cookie stays until `/messenger/logout`).
    SignOut,
}

/// Who the page's user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub handle: String,
    pub name: String,
    pub personal: String,
    pub state: State,
}

/// A group of the contact list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
}

/// One person on any of one's lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub handle: String,
    /// Their own name for themselves.
    pub name: String,
    /// The ids of the groups they are in.
    pub groups: Vec<String>,
    /// On one's contact list.
    pub forward: bool,
    pub allow: bool,
    pub block: bool,
    /// They have one on their contact list.
    pub reverse: bool,
    /// They added one and one has not answered yet.
    pub pending: bool,
    /// `None`: offline (or hidden, or blocking one).
    pub state: Option<State>,
    pub personal: String,
    /// Where their display picture is served (404 while they have none).
    pub picture: String,
}

/// Someone in a group conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub handle: String,
    pub name: String,
}

/// What the server sends; numbered by [`Numbered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to `hello`: the page's name, and whether what it missed
    /// follows (`resumed`) or it starts over from the `roster` that follows.
    Welcome {
        version: u32,
        page: String,
        resumed: bool,
        me: Me,
    },
    /// The whole contact list.
    Roster {
        groups: Vec<Group>,
        contacts: Vec<Contact>,
    },
    /// One contact as it is now.
    Contact {
        contact: Contact,
    },
    /// Someone is on none of one's lists any more.
    ContactRemoved {
        handle: String,
    },
    /// One's own name, state or personal message, as set anywhere.
    Me {
        me: Me,
    },
    /// Someone added one to their list and waits for an answer.
    AddedBy {
        handle: String,
        name: String,
    },
    /// A message: to one (`from` a contact), or by one of one's own other
    /// sign-ins (`from` oneself); in a group when `group` is set. `at` is
    /// when it was sent (Unix milliseconds); `offline` when it was kept
    /// while one was away.
    Message {
        from: String,
        to: String,
        text: String,
        at: i64,
        #[serde(default)]
        offline: bool,
        #[serde(default)]
        group: Option<String>,
    },
    Typing {
        from: String,
        #[serde(default)]
        group: Option<String>,
    },
    Nudge {
        from: String,
        #[serde(default)]
        group: Option<String>,
    },
    /// A `send` or `group_send` was delivered, or kept for an offline
    /// contact (`offline`).
    Sent {
        id: String,
        at: i64,
        offline: bool,
    },
    /// A request was refused: its `id` when it had one, the MSN error code
    /// and words for a person.
    Refused {
        #[serde(default)]
        id: Option<String>,
        code: u16,
        reason: String,
    },
    /// A group conversation started here, for the page's `group_start` id.
    GroupStarted {
        id: String,
        group: String,
    },
    /// Who is in a group conversation now (the first one seen is an
    /// invitation, already accepted).
    GroupMembers {
        group: String,
        members: Vec<Member>,
    },
    GroupLeft {
        group: String,
        handle: String,
    },
    /// The sign-in ended: `other_login`, `shutdown`, `signed_out`,
    /// `kicked`, `too_slow` (the page did not read).
    Bye {
        reason: String,
    },
}

/// A server frame with its number; `seq` 0 is a frame that is not kept
/// for a page coming back (`welcome`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Numbered {
    pub seq: u64,
    #[serde(flatten)]
    pub frame: ServerFrame,
}

impl Numbered {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("frames always serialise")
    }

    pub fn parse(text: &str) -> Result<Numbered, Unreadable> {
        serde_json::from_str(text).map_err(|_| Unreadable::Malformed)
    }
}

/// Why a page's frame was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the frame is over {MAX_FRAME} bytes")]
    TooLarge,
    #[error("the frame is not one this protocol has")]
    Malformed,
    #[error("a field of the frame is over its limit")]
    OverLimit,
}

impl ClientFrame {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("frames always serialise")
    }

    /// Reads a page's frame, refusing what is over any limit.
    pub fn parse(text: &str) -> Result<ClientFrame, Unreadable> {
        if text.len() > MAX_FRAME {
            return Err(Unreadable::TooLarge);
        }
        let frame: ClientFrame = serde_json::from_str(text).map_err(|_| Unreadable::Malformed)?;
        match frame.within_limits() {
            true => Ok(frame),
            false => Err(Unreadable::OverLimit),
        }
    }

    fn within_limits(&self) -> bool {
        let handle = |h: &str| !h.is_empty() && h.len() <= MAX_HANDLE;
        let id = |i: &str| !i.is_empty() && i.len() <= MAX_ID;
        let text = |t: &str| !t.is_empty() && t.len() <= MAX_TEXT;
        match self {
            ClientFrame::Hello { page, .. } => page.as_deref().is_none_or(id),
            ClientFrame::Ack { .. } | ClientFrame::SetState { .. } | ClientFrame::SignOut => true,
            ClientFrame::SetName { name } => !name.trim().is_empty() && name.chars().count() <= MAX_NAME,
            ClientFrame::SetPersonal { text } => text.chars().count() <= MAX_NAME,
            ClientFrame::AddContact { handle: h }
            | ClientFrame::RemoveContact { handle: h }
            | ClientFrame::Block { handle: h }
            | ClientFrame::Allow { handle: h }
            | ClientFrame::Typing { to: h }
            | ClientFrame::Nudge { to: h } => handle(h),
            ClientFrame::Send { id: i, to, text: t } => id(i) && handle(to) && text(t),
            ClientFrame::GroupStart { id: i, invite } => {
                id(i) && invite.len() <= MAX_INVITED && invite.iter().all(|h| handle(h))
            }
            ClientFrame::GroupInvite { group, handle: h } => id(group) && handle(h),
            ClientFrame::GroupSend { id: i, group, text: t } => id(i) && id(group) && text(t),
            ClientFrame::GroupTyping { group } | ClientFrame::GroupLeave { group } => id(group),
        }
    }
}

impl ServerFrame {
    /// Whether a page coming back is sent this frame again: what only
    /// describes the moment (typing) is not.
    pub fn kept_for_resume(&self) -> bool {
        !matches!(self, ServerFrame::Welcome { .. } | ServerFrame::Typing { .. } | ServerFrame::Bye { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn client_frames_read_as_written() {
        let frames = [
            ClientFrame::Hello { version: VERSION, page: Some("p1".into()), last_seen: Some(7) },
            ClientFrame::Ack { seq: 3 },
            ClientFrame::SetState { state: State::Brb },
            ClientFrame::SetName { name: "Bob <b>".into() },
            ClientFrame::Send { id: "m1".into(), to: "bob@example.com".into(), text: "hi".into() },
            ClientFrame::GroupStart { id: "g1".into(), invite: vec!["a@example.com".into()] },
            ClientFrame::SignOut,
        ];
        for frame in frames {
            assert_eq!(ClientFrame::parse(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn the_wire_names_are_snake_case() {
        let frame = ClientFrame::parse(r#"{"type":"set_state","state":"hidden"}"#).unwrap();
        assert_eq!(frame, ClientFrame::SetState { state: State::Hidden });
        let sent = Numbered { seq: 4, frame: ServerFrame::Sent { id: "m".into(), at: 1, offline: true } };
        assert_eq!(sent.encode(), r#"{"seq":4,"type":"sent","id":"m","at":1,"offline":true}"#);
    }

    #[test]
    fn server_frames_read_as_written() {
        let me = Me { handle: "a@example.com".into(), name: "A".into(), personal: String::new(), state: State::Online };
        let contact = Contact {
            handle: "b@example.com".into(),
            name: "<script>".into(),
            groups: vec!["1".into()],
            forward: true,
            allow: true,
            block: false,
            reverse: true,
            pending: false,
            state: None,
            personal: "hi".into(),
            picture: "/messenger/picture/b%40example.com".into(),
        };
        let frames = [
            ServerFrame::Welcome { version: VERSION, page: "p".into(), resumed: false, me: me.clone() },
            ServerFrame::Roster {
                groups: vec![Group { id: "1".into(), name: "Pals".into() }],
                contacts: vec![contact],
            },
            ServerFrame::Me { me },
            ServerFrame::Message {
                from: "b@example.com".into(),
                to: "a@example.com".into(),
                text: "x".into(),
                at: 5,
                offline: true,
                group: None,
            },
            ServerFrame::GroupMembers {
                group: "g".into(),
                members: vec![Member { handle: "b@example.com".into(), name: "B".into() }],
            },
            ServerFrame::Bye { reason: "shutdown".into() },
        ];
        for (n, frame) in frames.into_iter().enumerate() {
            let numbered = Numbered { seq: n as u64, frame };
            assert_eq!(Numbered::parse(&numbered.encode()), Ok(numbered));
        }
    }

    #[test]
    fn limits_are_refused() {
        let long = "x".repeat(MAX_TEXT + 1);
        let send = format!(r#"{{"type":"send","id":"1","to":"b@example.com","text":"{long}"}}"#);
        assert_eq!(ClientFrame::parse(&send), Err(Unreadable::OverLimit));
        let huge = format!(r#"{{"type":"set_name","name":"{}"}}"#, "y".repeat(MAX_FRAME));
        assert_eq!(ClientFrame::parse(&huge), Err(Unreadable::TooLarge));
        let many: Vec<String> = (0..=MAX_INVITED).map(|n| format!("\"u{n}@example.com\"")).collect();
        let start = format!(r#"{{"type":"group_start","id":"g","invite":[{}]}}"#, many.join(","));
        assert_eq!(ClientFrame::parse(&start), Err(Unreadable::OverLimit));
        assert_eq!(ClientFrame::parse(r#"{"type":"send","id":"","to":"b@x","text":"a"}"#), Err(Unreadable::OverLimit));
        assert_eq!(ClientFrame::parse(r#"{"type":"ack","seq":1,"extra":2}"#), Err(Unreadable::Malformed));
        assert_eq!(ClientFrame::parse(r#"{"type":"launch"}"#), Err(Unreadable::Malformed));
        let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
        assert_eq!(ClientFrame::parse(&deep), Err(Unreadable::Malformed));
    }

    proptest! {
        #[test]
        fn nothing_a_page_sends_panics(text in ".{0,300}") {
            let _ = ClientFrame::parse(&text);
        }

        #[test]
        fn every_accepted_frame_is_within_its_limits(text in "[ -~]{0,200}") {
            if let Ok(frame) = ClientFrame::parse(&text) {
                prop_assert!(frame.within_limits());
            }
        }
    }
}
