//! A bound XMPP session: one endpoint of the account, its stanzas turned
//! into domain calls (one `match`), the domain's events into stanzas.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use backend::limits::Action;
use backend::lists::OppositeList;
use backend::outbox::Outbox;
use backend::presence::{ContactPresence, NsEvent, OnlineUser};
use msnp::circle::Said;
use msnp::endpoint::MachineGuid;
use msnp::reply::OutReason;
use msnp::{Dialect, ErrorCode, ListKind, OnlineState};
use tokio::sync::watch;
use xmpp::request::{ClientStanza, Query, Unreadable};
use xmpp::stream::Incoming;
use xmpp::write::{self, StanzaCondition, name};
use xmpp::{Element, NS_BIND, NS_CLIENT, StreamErrorCondition};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};

use super::negotiation::SignedIn;
use super::translate::{self, NS_BLOCKING};
use super::{End, Tls, Wire};
use crate::shared::Shared;

/// Silence after which the server pings the client (XEP-0199).
const PING_AFTER: Duration = Duration::from_secs(240);
/// How long a ping may go unanswered (with nothing else heard).
const PING_PATIENCE: Duration = Duration::from_secs(60);
/// The longest resource name taken; longer ones are replaced.
const MAX_RESOURCE: usize = 64;

/// What a contact last showed this session.
#[derive(Debug, Clone, Default)]
struct Seen {
    state: Option<OnlineState>,
    friendly: String,
    status: String,
}

pub(super) struct Session {
    pub(super) shared: Arc<Shared>,
    pub(super) user: Arc<OnlineUser>,
    /// `handle` and `handle/resource`.
    pub(super) bare: String,
    pub(super) full: String,
    /// Whether the client sent its first availability.
    available: bool,
    carbons: bool,
    /// Contacts shown online, by key.
    seen: HashMap<String, Seen>,
    /// Roster pushes (and the presence of a contact just added) to send
    /// after the answer to the request that made them.
    pushes: Vec<Element>,
    /// Group conversations as rooms, and the MUC service's address
    /// (`conference.<domain of the handle>`), worked out once.
    pub(super) rooms: super::room_list::Rooms,
    pub(super) muc_host: String,
}

/// Whether the session goes on.
pub(super) enum Flow {
    Continue,
    End(Option<StreamErrorCondition>),
}

pub(super) async fn run(signed_in: SignedIn, shared: &Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let SignedIn { mut wire, account } = signed_in;
    let bare = account.handle.to_ascii_lowercase();
    let Some((id, resource)) = wait_for_bind(&mut wire).await else { return };
    let full = format!("{bare}/{resource}");
    let events = Outbox::new(shared.backend.config().outbox_capacity);
    let machine = machine_of(&bare, &resource);
    let token = backend::secrets::random_token(24);
    let signed = shared.backend.sign_in(&account, Dialect::Msnp21, Some(machine), token, None, events.clone()).await;
    let Ok((user, _)) = signed else {
        wire.fail(StreamErrorCondition::InternalServerError).await;
        return;
    };
    let bound =
        Element::builder("bind", NS_BIND).append(Element::builder("jid", NS_BIND).append(full.as_str()).build());
    let muc_host = format!("conference.{}", bare.rsplit_once('@').map_or("localhost", |(_, d)| d));
    let mut session = Session {
        shared: shared.clone(),
        user,
        bare,
        full,
        available: false,
        carbons: false,
        seen: HashMap::new(),
        pushes: Vec::new(),
        rooms: Default::default(),
        muc_host,
    };
    if wire.send(&write::element(&write::iq_result(&id, None, &session.full, Some(bound.build())))).await {
        session.serve(&mut wire, &events, &mut shutdown).await;
    }
    shared.backend.sign_out(&session.user);
}

/// Waits for the resource binding; the stream's end otherwise.
async fn wait_for_bind(wire: &mut Wire<Tls>) -> Option<(String, String)> {
    let element = match wire.next().await {
        Ok(Incoming::Element(e)) => e,
        Ok(_) | Err(End::Closed) => return None,
        Err(End::Fault(c)) => {
            wire.fail(c).await;
            return None;
        }
    };
    match ClientStanza::read(element) {
        Ok(ClientStanza::Query { id, query: Query::Bind { resource }, .. }) => {
            let resource = resource
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty() && r.len() <= MAX_RESOURCE && !r.chars().any(char::is_control))
                .unwrap_or_else(|| format!("mariposa-{}", backend::secrets::random_token(8)));
            Some((id, resource))
        }
        // RFC 6120 section 7.1: nothing else before binding.
        _ => {
            wire.fail(StreamErrorCondition::NotAuthorized).await;
            None
        }
    }
}

/// The machine a resource is, the same each time it binds: a sign-in of
/// the same resource replaces the previous one.
fn machine_of(bare: &str, resource: &str) -> MachineGuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("xmpp\0{bare}\0{resource}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    MachineGuid::from_random(bytes)
}

impl Session {
    async fn serve(&mut self, wire: &mut Wire<Tls>, events: &Outbox<NsEvent>, shutdown: &mut watch::Receiver<bool>) {
        let mut pinged: Option<tokio::time::Instant> = None;
        loop {
            let quiet = tokio::time::sleep(match pinged {
                Some(_) => PING_PATIENCE,
                None => PING_AFTER,
            });
            let flow = tokio::select! {
                incoming = wire.next() => {
                    pinged = None;
                    match incoming {
                        Ok(Incoming::Element(e)) => self.stanza(e, wire).await,
                        Ok(Incoming::Close) => {
                            let _ = wire.send(write::stream_close()).await;
                            Flow::End(None)
                        }
                        Ok(Incoming::Header(_)) => Flow::End(Some(StreamErrorCondition::NotWellFormed)),
                        Err(End::Fault(c)) => Flow::End(Some(c)),
                        Err(End::Closed) => return,
                    }
                }
                event = events.recv() => match event {
                    Some(event) => self.event(event, wire).await,
                    // The queue overflowed: this client is not reading.
                    None => Flow::End(Some(StreamErrorCondition::ResourceConstraint)),
                },
                _ = quiet => match pinged {
                    Some(_) => Flow::End(Some(StreamErrorCondition::ConnectionTimeout)),
                    None => {
                        pinged = Some(tokio::time::Instant::now());
                        let ping = Element::builder("iq", NS_CLIENT)
                            .attr(name("type"), "get")
                            .attr(name("id"), "ping")
                            .attr(name("to"), self.full.as_str())
                            .append(Element::builder("ping", translate::NS_PING).build())
                            .build();
                        self.send(wire, ping).await
                    }
                },
                _ = shutdown.changed() => Flow::End(Some(StreamErrorCondition::SystemShutdown)),
            };
            match flow {
                Flow::Continue => {}
                Flow::End(Some(condition)) => {
                    wire.fail(condition).await;
                    return;
                }
                Flow::End(None) => return,
            }
        }
    }

    /// Sends the roster pushes a request made (RFC 6121 section 2.1.6).
    async fn flush_pushes(&mut self, wire: &mut Wire<Tls>, flow: Flow) -> Flow {
        if !matches!(flow, Flow::Continue) {
            return flow;
        }
        for push in std::mem::take(&mut self.pushes) {
            if let Flow::End(e) = self.send(wire, push).await {
                return Flow::End(e);
            }
        }
        Flow::Continue
    }

    /// Queues the roster push of a contact as the lists have it now.
    async fn push_contact(&mut self, handle: &str) {
        let item = match self.shared.backend.list_snapshot(&self.user).await {
            Ok(snapshot) => match snapshot.list(ListKind::Forward).find(|e| e.handle.eq_ignore_ascii_case(handle)) {
                Some(entry) => translate::roster_item(entry, &snapshot.groups),
                None => translate::removed_item(handle),
            },
            Err(_) => return,
        };
        self.pushes.push(translate::roster_push(&self.full, item));
    }

    pub(super) async fn send(&self, wire: &mut Wire<Tls>, element: Element) -> Flow {
        match wire.send(&write::element(&element)).await {
            true => Flow::Continue,
            false => Flow::End(None),
        }
    }

    /// One stanza from the client.
    async fn stanza(&mut self, element: Element, wire: &mut Wire<Tls>) -> Flow {
        match ClientStanza::read(element) {
            Ok(ClientStanza::Query { id, to, query }) => {
                let from = to.as_ref().map(|t| t.to_string());
                let answer = match self.query(query, to.as_ref()).await {
                    Ok(payload) => write::iq_result(&id, from.as_deref(), &self.full, payload),
                    Err(condition) => write::stanza_error("iq", Some(&id), from.as_deref(), &self.full, condition),
                };
                let flow = self.send(wire, answer).await;
                self.flush_pushes(wire, flow).await
            }
            Ok(ClientStanza::Answer { .. }) => Flow::Continue,
            Ok(ClientStanza::Message(m)) => self.message(m, wire).await,
            Ok(ClientStanza::Presence(p)) => {
                let flow = self.presence(p, wire).await;
                self.flush_pushes(wire, flow).await
            }
            Err(Unreadable::NotAStanza) => Flow::End(Some(StreamErrorCondition::UnsupportedStanzaType)),
            Err(Unreadable::BadFormat) => Flow::End(Some(StreamErrorCondition::BadFormat)),
        }
    }

    /// The account's flood control, as the MSNP front applies it to the
    /// commands that do the same.
    fn allowed(&self, action: Action) -> bool {
        self.shared.backend.allow(&self.user.key, action)
    }

    /// A request; its result's payload, or the error.
    async fn query(&mut self, query: Query, to: Option<&Jid>) -> Result<Option<Element>, StanzaCondition> {
        let changes_lists = matches!(query, Query::RosterSet(_) | Query::Block(_) | Query::Unblock(_));
        if changes_lists && !self.allowed(Action::ListChange) {
            return Err(StanzaCondition::PolicyViolation);
        }
        let backend = &self.shared.backend;
        // Requests to a contact's address: only their vCard is served.
        let for_contact = to.map(|t| t.to_bare().to_string()).filter(|t| *t != self.bare && t.contains('@'));
        match query {
            Query::VCardGet => {
                let friendly = match &for_contact {
                    None => self.user.presence().friendly,
                    Some(contact) => self.friendly_of(contact).await.ok_or(StanzaCondition::ItemNotFound)?,
                };
                Ok(Some(translate::vcard(&friendly)))
            }
            _ if for_contact.is_some() => Err(StanzaCondition::ServiceUnavailable),
            Query::Bind { .. } => Err(StanzaCondition::NotAllowed),
            Query::Session | Query::Ping => Ok(None),
            Query::RosterGet { .. } => {
                let snapshot = backend.list_snapshot(&self.user).await.map_err(condition_of)?;
                let items =
                    snapshot.list(ListKind::Forward).map(|e| translate::roster_item(e, &snapshot.groups)).collect();
                Ok(Some(translate::roster(items)))
            }
            Query::RosterSet(item) => {
                let handle = item.jid.to_string();
                if item.subscription == xmpp_parsers::roster::Subscription::Remove {
                    backend.remove_from_list(&self.user, ListKind::Forward, &handle).await.map_err(condition_of)?;
                    self.push_contact(&handle).await;
                } else {
                    let shown = self.add_contact(&handle).await?;
                    let groups: Vec<String> = item.groups.iter().map(|g| g.0.clone()).collect();
                    self.put_in_groups(&handle, &groups).await?;
                    // The roster name is the user's own name for the contact.
                    if let Some(name) = item.name.as_deref().and_then(shown_name) {
                        backend.set_nickname(&self.user, &handle, &name).await.map_err(condition_of)?;
                    }
                    self.push_contact(&handle).await;
                    // A contact already online is shown at once.
                    if let Some(presence) = shown.and_then(|c| self.note_contact(c)) {
                        self.pushes.push(presence);
                    }
                }
                Ok(None)
            }
            Query::DiscoInfo { .. } if to.is_some_and(|t| t.to_string() == self.muc_host) => Ok(Some(self.muc_info())),
            Query::DiscoInfo { node } => Ok(Some(translate::disco_info(node.as_deref()))),
            Query::DiscoItems { node: None } if to.is_none_or(|t| !t.to_string().starts_with("conference.")) => {
                Ok(Some(self.server_items()))
            }
            Query::DiscoItems { .. } => Ok(Some(Element::builder("query", translate::NS_DISCO_ITEMS).build())),
            Query::BlocklistGet => {
                let items = self
                    .blocked()
                    .into_iter()
                    .map(|key| Element::builder("item", NS_BLOCKING).attr(name("jid"), key).build());
                Ok(Some(Element::builder("blocklist", NS_BLOCKING).append_all(items).build()))
            }
            Query::Block(jids) => {
                for jid in jids {
                    let handle = jid.to_bare().to_string();
                    match backend.add_to_list(&self.user, ListKind::Block, &handle, OppositeList::Accept).await {
                        Ok(_) | Err(ErrorCode::AlreadyThere) => self.pushes.push(self.block_push(&handle, true)),
                        Err(e) => return Err(condition_of(e)),
                    }
                }
                Ok(None)
            }
            Query::Unblock(jids) => {
                let handles: Vec<String> = match jids.is_empty() {
                    // Unblock everyone (XEP-0191 section 3.4).
                    true => self.blocked(),
                    false => jids.iter().map(|j| j.to_bare().to_string()).collect(),
                };
                for handle in handles {
                    match backend.remove_from_list(&self.user, ListKind::Block, &handle).await {
                        Ok(_) | Err(ErrorCode::NotOnList) => self.pushes.push(self.block_push(&handle, false)),
                        Err(e) => return Err(condition_of(e)),
                    }
                }
                Ok(None)
            }
            Query::Carbons { enable } => {
                self.carbons = enable;
                Ok(None)
            }
            Query::Unsupported => Err(StanzaCondition::ServiceUnavailable),
            Query::Malformed => Err(StanzaCondition::BadRequest),
        }
    }

    /// Puts `handle` on the forward and allow lists (what a roster item or
    /// a subscription request means), unless there already.
    async fn add_contact(&self, handle: &str) -> Result<Option<ContactPresence>, StanzaCondition> {
        let backend = &self.shared.backend;
        let mut shown = None;
        for list in [ListKind::Allow, ListKind::Forward] {
            match backend.add_to_list(&self.user, list, handle, OppositeList::Accept).await {
                Ok(outcome) => shown = outcome.initial_presence.or(shown),
                Err(ErrorCode::AlreadyThere) => {}
                Err(e) => return Err(condition_of(e)),
            }
        }
        Ok(shown)
    }

    /// Who the account blocks (the lists in memory: no store read).
    fn blocked(&self) -> Vec<String> {
        self.user.with_lists(|l| l.members(ListKind::Block).map(str::to_string).collect())
    }

    /// The roster groups of a contact, made where they do not exist.
    async fn put_in_groups(&self, handle: &str, names: &[String]) -> Result<(), StanzaCondition> {
        let backend = &self.shared.backend;
        for group in names.iter().take(8) {
            let known = self.user.with_lists(|l| l.groups.iter().find(|g| g.name == *group).map(|g| g.id));
            let id = match known {
                Some(id) => id,
                None => backend.create_group(&self.user, group).await.map_err(condition_of)?.1.id,
            };
            match backend.add_to_group(&self.user, handle, &id.to_string()).await {
                Ok(_) | Err(ErrorCode::AlreadyThere) => {}
                Err(e) => return Err(condition_of(e)),
            }
        }
        Ok(())
    }

    async fn friendly_of(&self, contact: &str) -> Option<String> {
        if let Some(seen) = self.seen.get(contact) {
            return Some(seen.friendly.clone());
        }
        let snapshot = self.shared.backend.list_snapshot(&self.user).await.ok()?;
        snapshot.entries.iter().find(|e| e.handle.eq_ignore_ascii_case(contact)).map(|e| e.friendly.clone())
    }

    async fn message(&mut self, m: Message, wire: &mut Wire<Tls>) -> Flow {
        use xmpp_parsers::message::MessageType;
        if m.to.as_ref().is_some_and(|t| t.domain().as_str() == self.muc_host) {
            return self.room_message(m, wire).await;
        }
        if !matches!(m.type_, MessageType::Chat | MessageType::Normal) {
            return Flow::Continue;
        }
        let Some(to) = m.to.as_ref().map(|t| t.to_bare().to_string()) else { return Flow::Continue };
        let Some(said) = translate::said_in(&m) else { return Flow::Continue };
        // The account's other endpoints are told by the domain (carbons).
        match self.shared.backend.say_to(&self.user, &to, said.clone()).await {
            Ok(()) => Flow::Continue,
            // Typing for someone not there means nothing.
            Err(ErrorCode::NotOnline) if !matches!(said, Said::Text { .. }) => Flow::Continue,
            Err(e) => {
                let id = m.id.as_ref().map(|i| i.0.clone());
                let error = write::stanza_error("message", id.as_deref(), Some(&to), &self.full, condition_of(e));
                self.send(wire, error).await
            }
        }
    }

    async fn presence(&mut self, p: Presence, wire: &mut Wire<Tls>) -> Flow {
        if p.to.as_ref().is_some_and(|t| t.domain().as_str() == self.muc_host) {
            return self.room_presence(p, wire).await;
        }
        let to = p.to.as_ref().map(|t| t.to_bare().to_string()).filter(|t| *t != self.bare);
        let action = match (&p.type_, &to) {
            (PresenceType::None | PresenceType::Unavailable, None) => Some(Action::StateChange),
            (PresenceType::Subscribe | PresenceType::Subscribed, Some(_)) => Some(Action::ListChange),
            (PresenceType::Unsubscribe | PresenceType::Unsubscribed, Some(_)) => Some(Action::ListChange),
            _ => None,
        };
        if action.is_some_and(|a| !self.allowed(a)) {
            let from = to.as_deref();
            let error = write::stanza_error("presence", None, from, &self.full, StanzaCondition::PolicyViolation);
            return self.send(wire, error).await;
        }
        let backend = &self.shared.backend;
        match (p.type_, to) {
            (PresenceType::None, None) => {
                let state = translate::state_of(&p.show);
                let shown = match backend.change_state(&self.user, state, None, None).await {
                    Ok(shown) => shown,
                    Err(_) => return Flow::Continue,
                };
                // A nickname (XEP-0172) in the presence is the friendly name.
                let nick = p.payloads.iter().find(|e| e.is("nick", translate::NS_NICK)).map(|n| n.text());
                if let Some(nick) = nick.as_deref().and_then(shown_name)
                    && nick != self.user.presence().friendly
                {
                    let _ = backend.rename(&self.user, &self.user.handle, &nick).await;
                }
                let status = p.statuses.values().next().cloned().unwrap_or_default();
                let current = self.user.presence().personal_message;
                if msnp::personal::status_of(current.as_deref().unwrap_or("")) != status {
                    let document = msnp::personal::with_status(current.as_deref(), &status);
                    let _ = backend.set_personal_message(&self.user, &document).await;
                }
                if !self.available {
                    self.available = true;
                    for contact in shown {
                        if let Flow::End(e) = self.show_contact(contact, wire).await {
                            return Flow::End(e);
                        }
                    }
                    return self.deliver_offline(wire).await;
                }
                Flow::Continue
            }
            (PresenceType::Unavailable, None) => {
                let _ = backend.change_state(&self.user, OnlineState::Hidden, None, None).await;
                Flow::Continue
            }
            (PresenceType::Subscribe, Some(to)) => {
                let added = self.add_contact(&to).await;
                self.push_contact(&to).await;
                match added {
                    Ok(Some(shown)) => self.show_contact(shown, wire).await,
                    _ => Flow::Continue,
                }
            }
            (PresenceType::Subscribed, Some(to)) => {
                let _ = backend.add_to_list(&self.user, ListKind::Allow, &to, OppositeList::Accept).await;
                Flow::Continue
            }
            (PresenceType::Unsubscribe, Some(to)) => {
                let _ = backend.remove_from_list(&self.user, ListKind::Forward, &to).await;
                self.push_contact(&to).await;
                Flow::Continue
            }
            (PresenceType::Unsubscribed, Some(to)) => {
                let _ = backend.remove_from_list(&self.user, ListKind::Allow, &to).await;
                Flow::Continue
            }
            // Directed presence, probes and errors: nothing to do.
            _ => Flow::Continue,
        }
    }

    /// Shows a contact's presence (with their personal message as status).
    async fn show_contact(&mut self, contact: ContactPresence, wire: &mut Wire<Tls>) -> Flow {
        match self.note_contact(contact) {
            Some(presence) => self.send(wire, presence).await,
            None => Flow::Continue,
        }
    }

    /// Keeps a contact's presence; the stanza that shows it.
    fn note_contact(&mut self, contact: ContactPresence) -> Option<Element> {
        let status = contact.personal_message.as_deref().map(msnp::personal::status_of).unwrap_or_default();
        let line = contact.line;
        let seen = Seen { state: Some(line.state), friendly: line.friendly.clone(), status };
        self.seen.insert(line.handle.to_ascii_lowercase(), seen);
        self.presence_of(&line.handle)
    }

    /// What is known of a contact's presence, as a stanza.
    fn presence_of(&self, handle: &str) -> Option<Element> {
        let key = handle.to_ascii_lowercase();
        let seen = self.seen.get(&key)?;
        let state = seen.state?;
        Some(translate::presence(&key, &self.full, state, Some(&seen.status), Some(&seen.friendly)))
    }

    /// Sends what is known of a contact's presence again.
    async fn resend(&self, handle: &str, wire: &mut Wire<Tls>) -> Flow {
        match self.presence_of(handle) {
            Some(p) => self.send(wire, p).await,
            None => Flow::Continue,
        }
    }

    /// What the domain tells this endpoint.
    async fn event(&mut self, event: NsEvent, wire: &mut Wire<Tls>) -> Flow {
        match event {
            NsEvent::Presence(line) => {
                let key = line.handle.to_ascii_lowercase();
                let seen = self.seen.entry(key).or_default();
                seen.state = Some(line.state);
                seen.friendly = line.friendly.clone();
                self.resend(&line.handle, wire).await
            }
            NsEvent::PersonalMessage { handle, payload, .. } => {
                let seen = self.seen.entry(handle.to_ascii_lowercase()).or_default();
                seen.status = msnp::personal::status_of(&payload);
                self.resend(&handle, wire).await
            }
            NsEvent::Offline { handle } => {
                let key = handle.to_ascii_lowercase();
                self.seen.remove(&key);
                self.send(wire, translate::presence_of_type(&key, &self.full, "unavailable")).await
            }
            NsEvent::ListAdded { list: ListKind::Reverse | ListKind::Pending, handle, friendly, .. } => {
                let key = handle.to_ascii_lowercase();
                if self.user.with_lists(|l| l.bits(&key).contains(ListKind::Forward)) {
                    return Flow::Continue;
                }
                let mut ask = translate::presence_of_type(&key, &self.bare, "subscribe");
                ask.append_child(Element::builder("nick", translate::NS_NICK).append(friendly.as_str()).build());
                self.send(wire, ask).await
            }
            NsEvent::Said { from, from_endpoint, to, said } => {
                let from_key = from.to_ascii_lowercase();
                if from_key != self.user.key {
                    return self.send(wire, translate::message(&from_key, &self.full, &said, "chat")).await;
                }
                // One of this account's own endpoints said it: a carbon for
                // the others that asked for them.
                if !self.carbons || from_endpoint.as_ref() == self.user.machine.as_ref() {
                    return Flow::Continue;
                }
                let sent = translate::message(&self.bare, &to.to_ascii_lowercase(), &said, "chat");
                self.send(wire, translate::sent_carbon(&self.bare, &self.full, sent)).await
            }
            NsEvent::Kick(reason) => Flow::End(Some(match reason {
                Some(OutReason::OtherLogin) => StreamErrorCondition::Conflict,
                Some(OutReason::ServerShutdown) => StreamErrorCondition::SystemShutdown,
                None => StreamErrorCondition::PolicyViolation,
            })),
            NsEvent::OwnListChanged { contact, list, member } => {
                self.own_list_changed(&contact, list, member, wire).await
            }
            NsEvent::OfflineMessagesWaiting { .. } => self.deliver_offline(wire).await,
            NsEvent::GroupChatInvited { group } => self.invited(group, wire).await,
            NsEvent::GroupChatRoster { group, members } => self.roster(group, members, wire).await,
            NsEvent::GroupChatLeft { group, who } => self.left(group, who, wire).await,
            NsEvent::GroupChatSaid { group, from, said, .. } => self.said_in_room(group, from, said, wire).await,
            _ => Flow::Continue,
        }
    }

    /// The account's lists changed elsewhere (another resource, an MSN
    /// client of the account, the web services): the roster push or the
    /// block-list push (XEP-0191) this resource would have had for its own
    /// change.
    async fn own_list_changed(&mut self, contact: &str, list: ListKind, member: bool, wire: &mut Wire<Tls>) -> Flow {
        let push = match list {
            ListKind::Forward => {
                self.push_contact(contact).await;
                return self.flush_pushes(wire, Flow::Continue).await;
            }
            ListKind::Block => self.block_push(contact, member),
            _ => return Flow::Continue,
        };
        self.send(wire, push).await
    }

    /// The block-list push (XEP-0191 section 3.3) of one change, for every
    /// resource, the one that made it included.
    fn block_push(&self, contact: &str, member: bool) -> Element {
        let kind = if member { "block" } else { "unblock" };
        let item = Element::builder("item", NS_BLOCKING).attr(name("jid"), contact.to_ascii_lowercase()).build();
        Element::builder("iq", NS_CLIENT)
            .attr(name("type"), "set")
            .attr(name("id"), format!("push-{}", backend::secrets::random_token(8)))
            .attr(name("to"), self.full.as_str())
            .append(Element::builder(kind, NS_BLOCKING).append(item).build())
            .build()
    }

    /// Offline messages kept for the account: shown with their time, then
    /// deleted, so that each is shown once.
    async fn deliver_offline(&self, wire: &mut Wire<Tls>) -> Flow {
        let backend = &self.shared.backend;
        for kept in backend.pending_offline(&self.user).await {
            let Some(said) = msnp::mime::said_of(&kept.payload) else { continue };
            let mut m = translate::message(&kept.sender.to_ascii_lowercase(), &self.full, &said, "chat");
            m.append_child(translate::delay(&self.bare, kept.sent_at_ms));
            if let Flow::End(e) = self.send(wire, m).await {
                return Flow::End(e);
            }
            backend.delete_offline_by_guid(&self.user, std::slice::from_ref(&kept.guid)).await;
        }
        Flow::Continue
    }
}

/// A name as MSN clients can show it: trimmed, with no control characters,
/// at most 129 characters (the friendly-name limit of MSN clients).
fn shown_name(name: &str) -> Option<String> {
    let name = name.trim();
    let fits = !name.is_empty() && name.chars().count() <= 129 && !name.chars().any(char::is_control);
    fits.then(|| name.to_string())
}

/// The stanza error for a domain refusal.
pub(super) fn condition_of(code: ErrorCode) -> StanzaCondition {
    match code {
        ErrorCode::InvalidUsername | ErrorCode::InvalidParameter => StanzaCondition::JidMalformed,
        ErrorCode::UserTooActive => StanzaCondition::PolicyViolation,
        ErrorCode::ListFull | ErrorCode::TooManyGroups => StanzaCondition::ResourceConstraint,
        ErrorCode::NotOnline => StanzaCondition::RecipientUnavailable,
        ErrorCode::NotOnList | ErrorCode::InvalidGroup => StanzaCondition::ItemNotFound,
        ErrorCode::NotAllowedWhenOffline => StanzaCondition::NotAllowed,
        _ => StanzaCondition::ServiceUnavailable,
    }
}
