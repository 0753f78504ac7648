//! MSNP21 without a switchboard: conversations carried by `SDG` on the
//! notification connection, and presence read from user documents
//! (`NFY PUT`/`NFY DEL` of `/user`).
//!
//! A conversation here has the same handle as a switchboard one, so the
//! application does not tell them apart: its commands become `SDG`s to the
//! other person, and `SDG`s from them (or, from my other machines, to
//! them) become its events. One conversation per person, and one per group
//! conversation (`10:`) I am invited to, which I join at once.

use std::sync::{Arc, Mutex};

use msnp::circle::{Said, SdgStyle, said_message};
use msnp::multiparty::GroupId;
use msnp::request::NsRequest;
use msnp::routed::RoutedMessage;
use msnp::user::{UserDocument, published};
use msnp::{OnlineState, reply::PresenceLine};
use tokio::sync::mpsc;

use crate::conversation::{Command, Conversation};
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::shared::Shared;

/// The conversation with `peer`, made (and announced) if there is none.
pub(crate) fn conversation_with(shared: &Arc<Shared>, peer: &str, invited: bool) -> Conversation {
    open(shared, peer, format!("1:{peer}"), Some(invited))
}

/// The conversation kept under `peer`, whose `SDG`s go to `to`: with a
/// person (`invited`: whether they started it), or (`None`) a group.
fn open(shared: &Arc<Shared>, peer: &str, to: String, invited: Option<bool>) -> Conversation {
    let key = peer.to_ascii_lowercase();
    let existing = shared.direct.lock().expect("direct lock").get(&key).copied();
    if let Some(c) = existing.and_then(|id| shared.conversations.lock().expect("conversations lock").get(&id).cloned())
    {
        return c;
    }
    let id = shared.fresh_id();
    let (tx, rx) = mpsc::channel(64);
    let first = if invited.is_none() { Vec::new() } else { vec![peer.to_string()] };
    let conversation = Conversation { id, commands: tx, participants: Arc::new(Mutex::new(first.clone())) };
    shared.conversations.lock().expect("conversations lock").insert(id, conversation.clone());
    shared.direct.lock().expect("direct lock").insert(key, id);
    let invited_by = (invited == Some(true)).then(|| peer.to_string());
    shared.emit(Event::ConversationStarted { conversation: id, with: first, invited_by });
    // Someone offline is not in it: what is said to them is kept for them.
    let online =
        shared.state.lock().expect("state lock").contact(peer).is_some_and(|c| c.state != OnlineState::Offline);
    if invited.is_some_and(|i| i || online) {
        let friendly = contact_name(shared, peer);
        shared.emit(Event::Joined { conversation: id, handle: peer.to_string(), friendly });
    }
    tokio::spawn(run(shared.clone(), id, to, rx));
    conversation
}

/// One conversation's task: each command, as an `SDG` to `to` (a person's
/// `1:` address or a group's `10:` one).
async fn run(shared: Arc<Shared>, id: u64, to: String, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Text { payload, reply } => {
                let _ = reply.send(say(&shared, &to, &payload).await);
            }
            Command::Unacknowledged(payload) => {
                let _ = say(&shared, &to, &payload).await;
            }
            Command::Invite { reply, .. } => {
                let _ = reply.send(Err(unsupported("group conversations")));
            }
            Command::SendFile { reply, .. } => {
                let _ = reply.send(Err(unsupported("file transfer")));
            }
            Command::Accept { .. } | Command::Decline { .. } | Command::Cancel { .. } => {}
            Command::Leave(done) => {
                let _ = done.send(());
                break;
            }
        }
    }
    shared.conversations.lock().expect("conversations lock").remove(&id);
    shared.direct.lock().expect("direct lock").retain(|_, c| *c != id);
    shared.emit(Event::ConversationEnded { conversation: id });
}

fn unsupported(what: &str) -> ClientError {
    ClientError::Protocol(format!("{what} is not built for MSNP21 conversations"))
}

/// Sends what a switchboard message payload says, as an `SDG`.
async fn say(shared: &Shared, to: &str, payload: &[u8]) -> Result<()> {
    let said = msnp::mime::said_of(payload).ok_or_else(|| unsupported("this kind of message"))?;
    let me = shared.me().0;
    let machine = shared.config.machine.as_str().to_string();
    let message = said_message(to, &me, Some(&machine), &said, SdgStyle::Direct);
    shared.send(move |trid| NsRequest::Sdg { trid, payload: message.to_bytes() }).await
}

/// A routed message addressed to a person or a group conversation (not a
/// circle).
pub(crate) fn on_routed(shared: &Arc<Shared>, removal: bool, sdg: bool, message: RoutedMessage) {
    let (Some(from), Some(to)) = (message.from(), message.to()) else { return };
    if let Some(group) = GroupId::of_address(&to).or_else(|| GroupId::of_address(&from)) {
        on_group(shared, removal, sdg, &group, message);
        return;
    }
    if sdg {
        let me = shared.me().0;
        // From my other machine to someone: what I said there.
        let mine = from.name.eq_ignore_ascii_case(&me);
        let peer = if mine { to.name.clone() } else { from.name.clone() };
        let Some(said) = Said::of(&message) else { return };
        let conversation = conversation_with(shared, &peer, !mine).id;
        let from = from.name;
        match said {
            Said::Text { text, format } => {
                let friendly = contact_name(shared, &from);
                shared.emit(Event::Message { conversation, from, friendly, text, format, offline_sent: None });
            }
            Said::Typing if !mine => shared.emit(Event::Typing { conversation, from }),
            Said::Nudge if !mine => shared.emit(Event::Nudge { conversation, from }),
            Said::Typing | Said::Nudge => {}
        }
        return;
    }
    if message.content.get("Uri") != Some(msnp::user::USER_URI) {
        return;
    }
    let handle = from.name;
    if removal {
        crate::contacts::offline(shared, handle);
        return;
    }
    let Some(doc) = published(&message) else { return };
    apply_document(shared, handle, doc);
}

/// News of a group conversation: an invitation (joined at once), its
/// roster, someone leaving, or what was said in it.
fn on_group(shared: &Arc<Shared>, removal: bool, sdg: bool, group: &GroupId, message: RoutedMessage) {
    let address = group.address();
    let conversation = open(shared, &address, format!("{address};path=IM"), None);
    let me = shared.me().0;
    if sdg {
        let Some(from) = message.from().map(|f| f.name) else { return };
        if from.eq_ignore_ascii_case(&me) {
            return;
        }
        let id = conversation.id;
        match Said::of(&message) {
            Some(Said::Text { text, format }) => {
                let friendly = contact_name(shared, &from);
                shared.emit(Event::Message { conversation: id, from, friendly, text, format, offline_sent: None });
            }
            Some(Said::Typing) => shared.emit(Event::Typing { conversation: id, from }),
            Some(Said::Nudge) => shared.emit(Event::Nudge { conversation: id, from }),
            None => {}
        }
        return;
    }
    if removal {
        if let Some(who) = msnp::circle::left_member(&message) {
            conversation.participants.lock().expect("participants lock").retain(|h| !h.eq_ignore_ascii_case(&who));
            shared.emit(Event::Left { conversation: conversation.id, handle: who, idle: false });
        }
        return;
    }
    match msnp::multiparty::roster_of(&message) {
        // The roster: who came.
        Some(roster) if !roster.is_empty() => {
            let mut known = conversation.participants.lock().expect("participants lock");
            for handle in roster.into_iter().filter(|h| !h.eq_ignore_ascii_case(&me)) {
                if !known.iter().any(|k| k.eq_ignore_ascii_case(&handle)) {
                    known.push(handle.clone());
                    let friendly = contact_name(shared, &handle);
                    shared.emit(Event::Joined { conversation: conversation.id, handle, friendly });
                }
            }
        }
        // The invitation: join.
        _ => {
            let machine = shared.config.machine.clone();
            let join = msnp::multiparty::join(&me, &machine, group);
            let shared = shared.clone();
            tokio::spawn(async move {
                let _ = shared.send(move |trid| NsRequest::Put { trid, payload: join.to_bytes() }).await;
            });
        }
    }
}

/// The name a contact goes by now.
fn contact_name(shared: &Shared, handle: &str) -> String {
    let state = shared.state.lock().expect("state lock");
    state.contacts.get(&handle.to_ascii_lowercase()).map(|c| c.display_name().to_string()).unwrap_or(handle.to_string())
}

/// What a contact published, as the presence and personal-message events
/// the older dialects bring.
fn apply_document(shared: &Shared, handle: String, doc: UserDocument) {
    if doc.status.is_some() || doc.friendly.is_some() {
        let (state, friendly, client_id) = {
            let s = shared.state.lock().expect("state lock");
            let known = s.contacts.get(&handle.to_ascii_lowercase());
            (
                doc.status.or(known.map(|c| c.state)).unwrap_or(OnlineState::Online),
                doc.friendly.clone().or_else(|| known.and_then(|c| c.presence_name.clone())).unwrap_or(handle.clone()),
                doc.capabilities.map(|c| c.basic).or(known.map(|c| c.client_id)).unwrap_or(0),
            )
        };
        let line =
            PresenceLine { state, handle: handle.clone(), friendly, client_id, extended_caps: 0, msn_object: None };
        crate::contacts::presence(shared, line);
    }
    if let Some(text) = doc.personal_message {
        crate::contacts::personal_message(shared, handle, text);
    }
}
