//! One open messenger page: an endpoint of its account (with MSNP21's
//! semantics, as a Jabber resource is), which outlives its socket.
//!
//! What the server sends is numbered and kept until the page acknowledges
//! it, so that a page whose connection dropped comes back (`hello` with the
//! last number it saw) to exactly what it missed. An offline message is
//! deleted from the store only once the page acknowledged it: one the page
//! never received is offered again at its next sign-in, and none is shown
//! twice. The page's frames become domain calls in one `match` (`frame`),
//! the domain's events frames in another (`event`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use backend::limits::Action;
use backend::lists::{ListEntry, OppositeList};
use backend::outbox::Outbox;
use backend::presence::{ContactPresence, NsEvent, OnlineUser};
use backend::store::Account;
use msnp::circle::Said;
use msnp::endpoint::MachineGuid;
use msnp::multiparty::GroupId;
use msnp::reply::OutReason;
use msnp::{Dialect, ErrorCode, ListKind, OnlineState};
use tokio::sync::{mpsc, watch};
use webchat::{ClientFrame, Member, Numbered, ServerFrame, State, VERSION};

use super::translate::{self, shown};
use super::{COME_BACK_WITHIN, MAX_PAGES_PER_ACCOUNT, PageHandle, Pages};
use crate::shared::Shared;

/// The most frames kept for a page that has not acknowledged them; past
/// it the page is not keeping up and its sign-in ends.
const MAX_KEPT: usize = 2_000;
/// Frames queued for the socket; past it the socket is dropped (the page
/// comes back and is sent what it missed).
pub(super) const SOCKET_QUEUE: usize = 256;

/// What reaches a page's task.
pub(super) enum Input {
    /// A socket (new, or the page coming back) that reads from `out`.
    Attach {
        last_seen: Option<u64>,
        out: mpsc::Sender<String>,
    },
    Frame(ClientFrame),
    /// The socket closed.
    Detach,
    /// The browser signed out.
    SignOut,
}

/// What this page has seen of a contact.
#[derive(Debug, Clone, Default)]
struct Seen {
    state: Option<State>,
    personal: String,
}

struct Page {
    shared: Arc<Shared>,
    pages: Arc<Pages>,
    user: Arc<OnlineUser>,
    name: String,
    out: Option<mpsc::Sender<String>>,
    next_seq: u64,
    kept: VecDeque<Numbered>,
    /// Offline messages shown, by guid, with the frame that showed them:
    /// deleted from the store once that frame is acknowledged.
    offline_shown: Vec<(u64, String)>,
    offline_seen: HashSet<String>,
    entries: HashMap<String, ListEntry>,
    seen: HashMap<String, Seen>,
    groups: HashSet<GroupId>,
}

/// Opens a page for `account`: signs it in and starts its task.
pub(super) async fn open(
    shared: &Arc<Shared>,
    pages: &Arc<Pages>,
    account: &Account,
    session: String,
) -> Result<(String, PageHandle), ErrorCode> {
    let key = account.handle.to_ascii_lowercase();
    if pages.count_of(&key) >= MAX_PAGES_PER_ACCOUNT {
        return Err(ErrorCode::TooManySessions);
    }
    let events = Outbox::new(shared.backend.config().outbox_capacity);
    let machine = MachineGuid::from_random(rand::random());
    let token = backend::secrets::random_token(24);
    let (user, _) =
        shared.backend.sign_in(account, Dialect::Msnp21, Some(machine), token, None, events.clone()).await?;
    let name = backend::secrets::random_token(24);
    let (input, inputs) = mpsc::channel(64);
    let handle = PageHandle { account: key, session, input };
    pages.insert(name.clone(), handle.clone());
    let mut page = Page {
        shared: shared.clone(),
        pages: pages.clone(),
        user,
        name: name.clone(),
        out: None,
        next_seq: 1,
        kept: VecDeque::new(),
        offline_shown: Vec::new(),
        offline_seen: HashSet::new(),
        entries: HashMap::new(),
        seen: HashMap::new(),
        groups: HashSet::new(),
    };
    let shutdown = pages.shutdown.clone();
    pages.tracker.spawn(async move {
        page.run(events, inputs, shutdown).await;
        page.pages.remove(&page.name);
        page.shared.backend.sign_out(&page.user);
    });
    Ok((name, handle))
}

/// Whether the page goes on.
enum Flow {
    Continue,
    End,
}

impl Page {
    async fn run(
        &mut self,
        events: Outbox<NsEvent>,
        mut inputs: mpsc::Receiver<Input>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if !self.start().await {
            return;
        }
        loop {
            let away = async {
                match self.out {
                    Some(_) => std::future::pending().await,
                    None => tokio::time::sleep(COME_BACK_WITHIN).await,
                }
            };
            let flow = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => self.event(event).await,
                    // The queue overflowed: the page did not keep up.
                    None => self.bye("too_slow"),
                },
                input = inputs.recv() => match input {
                    Some(Input::Attach { last_seen, out }) => self.attach(last_seen, out).await,
                    Some(Input::Frame(frame)) => self.frame(frame).await,
                    Some(Input::Detach) => {
                        self.out = None;
                        Flow::Continue
                    }
                    Some(Input::SignOut) | None => self.bye("signed_out"),
                },
                _ = away => Flow::End,
                _ = shutdown.changed() => self.bye("shutdown"),
            };
            if let Flow::End = flow {
                return;
            }
        }
    }

    /// Goes online and shows the contacts who are.
    async fn start(&mut self) -> bool {
        let shown = match self.shared.backend.change_state(&self.user, OnlineState::Online, None, None).await {
            Ok(shown) => shown,
            Err(_) => return false,
        };
        for contact in shown {
            self.note(contact);
        }
        true
    }

    fn note(&mut self, contact: ContactPresence) {
        let personal = contact.personal_message.as_deref().map(msnp::personal::status_of).unwrap_or_default();
        let seen = Seen { state: shown(contact.line.state), personal };
        self.seen.insert(contact.line.handle.to_ascii_lowercase(), seen);
    }

    /// Sends a frame, numbered and kept unless it only tells the moment.
    fn emit(&mut self, frame: ServerFrame) -> Flow {
        let numbered = if frame.kept_for_resume() {
            let numbered = Numbered { seq: self.next_seq, frame };
            self.next_seq += 1;
            self.kept.push_back(numbered.clone());
            if self.kept.len() > MAX_KEPT {
                tracing::debug!(page = %self.name, "messenger: a page did not acknowledge what it was sent");
                self.kept.clear();
                return self.bye("too_slow");
            }
            numbered
        } else {
            Numbered { seq: 0, frame }
        };
        self.deliver(&numbered);
        Flow::Continue
    }

    /// Puts a frame on the socket, if there is one that reads; one that
    /// does not is dropped (the page comes back for what it missed).
    fn deliver(&mut self, numbered: &Numbered) {
        let Some(out) = &self.out else { return };
        if out.try_send(numbered.encode()).is_err() {
            self.out = None;
        }
    }

    /// The last frame: sent if a socket is there, and the page ends.
    fn bye(&mut self, reason: &str) -> Flow {
        self.deliver(&Numbered { seq: 0, frame: ServerFrame::Bye { reason: reason.to_string() } });
        Flow::End
    }

    fn me(&self) -> webchat::Me {
        let p = self.user.presence();
        webchat::Me {
            handle: self.user.handle.to_ascii_lowercase(),
            name: p.friendly,
            personal: p.personal_message.as_deref().map(msnp::personal::status_of).unwrap_or_default(),
            state: shown(p.state).unwrap_or(State::Online),
        }
    }

    /// A socket for this page: what it missed, or everything from the start.
    async fn attach(&mut self, last_seen: Option<u64>, out: mpsc::Sender<String>) -> Flow {
        let resumable =
            last_seen.is_some_and(|n| n < self.next_seq && self.kept.front().is_none_or(|first| first.seq <= n + 1));
        self.out = Some(out);
        let welcome =
            ServerFrame::Welcome { version: VERSION, page: self.name.clone(), resumed: resumable, me: self.me() };
        self.deliver(&Numbered { seq: 0, frame: welcome });
        if let (true, Some(n)) = (resumable, last_seen) {
            self.acknowledged(n).await;
            let missed: Vec<Numbered> = self.kept.iter().cloned().collect();
            for numbered in &missed {
                self.deliver(numbered);
            }
            return Flow::Continue;
        }
        self.kept.clear();
        self.offline_shown.clear();
        self.offline_seen.clear();
        self.start_over().await
    }

    /// The whole state for a page that starts (again) from nothing.
    async fn start_over(&mut self) -> Flow {
        let snapshot = match self.shared.backend.list_snapshot(&self.user).await {
            Ok(snapshot) => snapshot,
            Err(_) => return self.bye("unavailable"),
        };
        self.entries = snapshot.entries.iter().map(|e| (e.handle.to_ascii_lowercase(), e.clone())).collect();
        let contacts = snapshot.entries.iter().map(|e| self.contact(e)).collect();
        let groups = snapshot.groups.iter().map(translate::group).collect();
        if let Flow::End = self.emit(ServerFrame::Roster { groups, contacts }) {
            return Flow::End;
        }
        let waiting: Vec<(String, String)> = snapshot
            .entries
            .iter()
            .filter(|e| awaits_answer(e.lists))
            .map(|e| (e.handle.to_ascii_lowercase(), e.friendly.clone()))
            .collect();
        for (handle, name) in waiting {
            if let Flow::End = self.emit(ServerFrame::AddedBy { handle, name }) {
                return Flow::End;
            }
        }
        for group in self.groups.clone() {
            self.shared.backend.join_group_chat(&self.user, &group).await.ok();
        }
        self.show_offline_messages().await
    }

    fn contact(&self, entry: &ListEntry) -> webchat::Contact {
        let seen = self.seen.get(&entry.handle.to_ascii_lowercase()).cloned().unwrap_or_default();
        translate::contact(entry, seen.state, &seen.personal)
    }

    /// Sends a contact as they are now. After a list change their lists
    /// and groups are taken from the account's lists in memory; the store is
    /// read only for someone this page has not seen yet (for their name).
    async fn refresh(&mut self, handle: &str, lists_changed: bool) -> Flow {
        let key = handle.to_ascii_lowercase();
        if lists_changed {
            let now = self.user.with_lists(|l| l.contact(&key).map(|c| (c.bits, c.groups.iter().collect())));
            let Some((bits, groups)) = now.filter(|(bits, _)| bits.0 != 0) else {
                self.entries.remove(&key);
                return self.emit(ServerFrame::ContactRemoved { handle: key });
            };
            match self.entries.get_mut(&key) {
                Some(entry) => (entry.lists, entry.groups) = (bits, groups),
                None => {
                    let Ok(snapshot) = self.shared.backend.list_snapshot(&self.user).await else {
                        return Flow::Continue;
                    };
                    let Some(entry) = snapshot.entries.into_iter().find(|e| e.handle.eq_ignore_ascii_case(&key)) else {
                        return Flow::Continue;
                    };
                    self.entries.insert(key.clone(), entry);
                }
            }
        }
        match self.entries.get(&key) {
            Some(entry) => {
                let contact = self.contact(entry);
                self.emit(ServerFrame::Contact { contact })
            }
            None => Flow::Continue,
        }
    }

    /// Offline messages not shown yet on this page.
    async fn show_offline_messages(&mut self) -> Flow {
        let me = self.user.handle.to_ascii_lowercase();
        for kept in self.shared.backend.pending_offline(&self.user).await {
            if !self.offline_seen.insert(kept.guid.clone()) {
                continue;
            }
            let Some(Said::Text { text, .. }) = msnp::mime::said_of(&kept.payload) else { continue };
            let from = kept.sender.to_ascii_lowercase();
            let frame =
                ServerFrame::Message { from, to: me.clone(), text, at: kept.sent_at_ms, offline: true, group: None };
            if let Flow::End = self.emit(frame) {
                return Flow::End;
            }
            self.offline_shown.push((self.next_seq - 1, kept.guid));
        }
        Flow::Continue
    }

    /// The page has everything up to `seq`: forget it, and delete the
    /// offline messages it showed.
    async fn acknowledged(&mut self, seq: u64) {
        while self.kept.front().is_some_and(|f| f.seq <= seq) {
            self.kept.pop_front();
        }
        let (done, later): (Vec<_>, Vec<_>) = self.offline_shown.drain(..).partition(|(s, _)| *s <= seq);
        self.offline_shown = later;
        let guids: Vec<String> = done.into_iter().map(|(_, g)| g).collect();
        if !guids.is_empty() {
            self.shared.backend.delete_offline_by_guid(&self.user, &guids).await;
        }
    }

    fn refused(&mut self, id: Option<String>, code: ErrorCode) -> Flow {
        self.emit(ServerFrame::Refused { id, code: code.code(), reason: reason(code).to_string() })
    }

    fn allowed(&self, action: Action) -> bool {
        self.shared.backend.allow(&self.user.key, action)
    }

    fn is_online(&self, handle: &str) -> bool {
        self.seen.get(&handle.to_ascii_lowercase()).is_some_and(|s| s.state.is_some())
    }

    /// One frame from the page.
    async fn frame(&mut self, frame: ClientFrame) -> Flow {
        let backend = self.shared.backend.clone();
        let changes_lists = matches!(
            frame,
            ClientFrame::AddContact { .. }
                | ClientFrame::RemoveContact { .. }
                | ClientFrame::Block { .. }
                | ClientFrame::Allow { .. }
        );
        if changes_lists && !self.allowed(Action::ListChange) {
            return self.refused(None, ErrorCode::UserTooActive);
        }
        let changes_me = matches!(
            frame,
            ClientFrame::SetState { .. } | ClientFrame::SetName { .. } | ClientFrame::SetPersonal { .. }
        );
        if changes_me && !self.allowed(Action::StateChange) {
            return self.refused(None, ErrorCode::UserTooActive);
        }
        let me = self.user.handle.to_ascii_lowercase();
        match frame {
            ClientFrame::Hello { .. } => Flow::Continue,
            ClientFrame::Ack { seq } => {
                self.acknowledged(seq).await;
                Flow::Continue
            }
            ClientFrame::SetState { state } => {
                match backend.change_state(&self.user, translate::state_of(state), None, None).await {
                    Ok(_) => self.emit(ServerFrame::Me { me: self.me() }),
                    Err(e) => self.refused(None, e),
                }
            }
            ClientFrame::SetName { name } => match backend.rename(&self.user, &me, name.trim()).await {
                Ok(_) => self.emit(ServerFrame::Me { me: self.me() }),
                Err(e) => self.refused(None, e),
            },
            ClientFrame::SetPersonal { text } => {
                let current = self.user.presence().personal_message;
                let document = msnp::personal::with_status(current.as_deref(), text.trim());
                match backend.set_personal_message(&self.user, &document).await {
                    Ok(()) => self.emit(ServerFrame::Me { me: self.me() }),
                    Err(e) => self.refused(None, e),
                }
            }
            ClientFrame::AddContact { handle } => {
                let mut shown = None;
                for list in [ListKind::Allow, ListKind::Forward] {
                    match backend.add_to_list(&self.user, list, &handle, OppositeList::Accept).await {
                        Ok(outcome) => shown = outcome.initial_presence.or(shown),
                        Err(ErrorCode::AlreadyThere) => {}
                        Err(e) => return self.refused(None, e),
                    }
                }
                if let Some(contact) = shown {
                    self.note(contact);
                }
                self.refresh(&handle, true).await
            }
            ClientFrame::RemoveContact { handle } => {
                match backend.remove_from_list(&self.user, ListKind::Forward, &handle).await {
                    Ok(_) | Err(ErrorCode::NotOnList) => self.refresh(&handle, true).await,
                    Err(e) => self.refused(None, e),
                }
            }
            ClientFrame::Block { handle } => self.move_between(&handle, ListKind::Allow, ListKind::Block).await,
            ClientFrame::Allow { handle } => self.move_between(&handle, ListKind::Block, ListKind::Allow).await,
            ClientFrame::Send { id, to, text } => {
                if !self.pages.first_send(&self.user.key, &id) {
                    return self.emit(ServerFrame::Sent { id, at: now_ms(), offline: false });
                }
                let offline = !self.is_online(&to);
                match backend.say_to(&self.user, &to, translate::text(text)).await {
                    Ok(()) => self.emit(ServerFrame::Sent { id, at: now_ms(), offline }),
                    Err(e) => self.refused(Some(id), e),
                }
            }
            ClientFrame::Typing { to } => {
                let _ = backend.say_to(&self.user, &to, Said::Typing).await;
                Flow::Continue
            }
            ClientFrame::Nudge { to } => match backend.say_to(&self.user, &to, Said::Nudge).await {
                Ok(()) | Err(ErrorCode::NotOnline) => Flow::Continue,
                Err(e) => self.refused(None, e),
            },
            ClientFrame::GroupStart { id, invite } => {
                let group = match backend.create_group_chat(&self.user) {
                    Ok(group) => group,
                    Err(e) => return self.refused(Some(id), e),
                };
                self.groups.insert(group.clone());
                if let Err(e) = backend.join_group_chat(&self.user, &group).await {
                    return self.refused(Some(id), e);
                }
                if let Flow::End = self.emit(ServerFrame::GroupStarted { id: id.clone(), group: group.guid().into() }) {
                    return Flow::End;
                }
                for handle in invite {
                    if let Err(e) = backend.invite_to_group_chat(&self.user, &group, &handle).await
                        && let Flow::End = self.refused(Some(id.clone()), e)
                    {
                        return Flow::End;
                    }
                }
                Flow::Continue
            }
            ClientFrame::GroupInvite { group, handle } => match self.group(&group) {
                Some(g) => match backend.invite_to_group_chat(&self.user, &g, &handle).await {
                    Ok(()) => Flow::Continue,
                    Err(e) => self.refused(None, e),
                },
                None => self.refused(None, ErrorCode::InvalidCircleMembership),
            },
            ClientFrame::GroupSend { id, group, text } => {
                let Some(g) = self.group(&group) else {
                    return self.refused(Some(id), ErrorCode::InvalidCircleMembership);
                };
                if !self.pages.first_send(&self.user.key, &id) {
                    return self.emit(ServerFrame::Sent { id, at: now_ms(), offline: false });
                }
                match backend.say_in_group_chat(&self.user, &g, translate::text(text)).await {
                    Ok(()) => self.emit(ServerFrame::Sent { id, at: now_ms(), offline: false }),
                    Err(e) => self.refused(Some(id), e),
                }
            }
            ClientFrame::GroupTyping { group } => {
                if let Some(g) = self.group(&group) {
                    let _ = backend.say_in_group_chat(&self.user, &g, Said::Typing).await;
                }
                Flow::Continue
            }
            ClientFrame::GroupLeave { group } => {
                if let Some(g) = self.group(&group) {
                    let _ = backend.leave_group_chat(&self.user, &g).await;
                    self.groups.remove(&g);
                }
                Flow::Continue
            }
            ClientFrame::SignOut => self.bye("signed_out"),
        }
    }

    /// A group conversation this page is in, by its id on the wire.
    fn group(&self, id: &str) -> Option<GroupId> {
        GroupId::of_guid(id).filter(|g| self.groups.contains(g))
    }

    /// Blocking (allow → block) or allowing (block → allow) someone.
    async fn move_between(&mut self, handle: &str, from: ListKind, to: ListKind) -> Flow {
        let backend = self.shared.backend.clone();
        match backend.add_to_list(&self.user, to, handle, OppositeList::Accept).await {
            Ok(_) | Err(ErrorCode::AlreadyThere) => {}
            Err(e) => return self.refused(None, e),
        }
        match backend.remove_from_list(&self.user, from, handle).await {
            Ok(_) | Err(ErrorCode::NotOnList) => self.refresh(handle, true).await,
            Err(e) => self.refused(None, e),
        }
    }

    /// What the domain tells this endpoint.
    async fn event(&mut self, event: NsEvent) -> Flow {
        let me = self.user.key.clone();
        match event {
            NsEvent::Presence(line) => {
                let key = line.handle.to_ascii_lowercase();
                self.seen.entry(key.clone()).or_default().state = shown(line.state);
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.friendly = line.friendly;
                }
                self.refresh(&key, false).await
            }
            NsEvent::PersonalMessage { handle, payload, .. } => {
                let key = handle.to_ascii_lowercase();
                self.seen.entry(key.clone()).or_default().personal = msnp::personal::status_of(&payload);
                self.refresh(&key, false).await
            }
            NsEvent::Offline { handle } => {
                let key = handle.to_ascii_lowercase();
                self.seen.remove(&key);
                self.refresh(&key, false).await
            }
            NsEvent::ListAdded { list, handle, friendly, .. } => {
                let flow = self.refresh(&handle, true).await;
                let key = handle.to_ascii_lowercase();
                let asks = matches!(list, ListKind::Reverse | ListKind::Pending)
                    && self.user.with_lists(|l| awaits_answer(l.bits(&key)));
                match (flow, asks) {
                    (Flow::Continue, true) => self.emit(ServerFrame::AddedBy { handle: key, name: friendly }),
                    (flow, _) => flow,
                }
            }
            NsEvent::ListRemoved { handle, .. } => self.refresh(&handle, true).await,
            NsEvent::OwnListChanged { contact, .. } => self.refresh(&contact, true).await,
            NsEvent::Said { from, from_endpoint, to, said } => {
                let from = from.to_ascii_lowercase();
                if from == me && from_endpoint.as_ref() == self.user.machine.as_ref() {
                    return Flow::Continue;
                }
                let to = to.to_ascii_lowercase();
                self.said(from, to, None, said)
            }
            NsEvent::OfflineMessagesWaiting { .. } => self.show_offline_messages().await,
            NsEvent::GroupChatInvited { group } => {
                // Joined at once, as MSN clients answered a switchboard ring.
                self.groups.insert(group.clone());
                match self.shared.backend.join_group_chat(&self.user, &group).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => {
                        self.groups.remove(&group);
                        Flow::Continue
                    }
                }
            }
            NsEvent::GroupChatRoster { group, members } => {
                if !self.groups.contains(&group) {
                    return Flow::Continue;
                }
                let members = members.iter().map(|m| self.member(m)).collect();
                self.emit(ServerFrame::GroupMembers { group: group.guid().into(), members })
            }
            NsEvent::GroupChatLeft { group, who } => {
                let handle = who.to_ascii_lowercase();
                self.emit(ServerFrame::GroupLeft { group: group.guid().into(), handle })
            }
            NsEvent::GroupChatSaid { group, from, from_endpoint, said } => {
                let from = from.to_ascii_lowercase();
                if from == me && from_endpoint.as_ref() == self.user.machine.as_ref() {
                    return Flow::Continue;
                }
                self.said(from, me, Some(group.guid().to_string()), said)
            }
            NsEvent::Kick(reason) => self.bye(match reason {
                Some(OutReason::OtherLogin) => "other_login",
                Some(OutReason::ServerShutdown) => "shutdown",
                None => "kicked",
            }),
            _ => Flow::Continue,
        }
    }

    fn said(&mut self, from: String, to: String, group: Option<String>, said: Said) -> Flow {
        match said {
            Said::Text { text, .. } => {
                self.emit(ServerFrame::Message { from, to, text, at: now_ms(), offline: false, group })
            }
            Said::Typing => self.emit(ServerFrame::Typing { from, group }),
            Said::Nudge => self.emit(ServerFrame::Nudge { from, group }),
        }
    }

    fn member(&self, handle: &str) -> Member {
        let key = handle.to_ascii_lowercase();
        let name = if key == self.user.key {
            self.user.presence().friendly
        } else {
            self.entries.get(&key).map(|e| e.friendly.clone()).unwrap_or_else(|| key.clone())
        };
        Member { handle: key, name }
    }
}

/// Whether someone who added one waits for an answer: on the reverse (or
/// pending) list and on neither the allow nor the block list, MSN's rule
/// for asking.
fn awaits_answer(bits: backend::lists::ListBits) -> bool {
    (bits.contains(ListKind::Reverse) || bits.contains(ListKind::Pending))
        && !bits.contains(ListKind::Allow)
        && !bits.contains(ListKind::Block)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Words for a person for a refusal.
fn reason(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UserTooActive => "You are going too fast; wait a moment.",
        ErrorCode::InvalidUsername | ErrorCode::InvalidParameter => "That is not a Messenger address.",
        ErrorCode::ListFull => "Your contact list is full.",
        ErrorCode::AlreadyThere => "They are on your list already.",
        ErrorCode::NotOnline => "They are not online.",
        ErrorCode::TooManySessions => "Too many conversations or windows are open.",
        ErrorCode::NotAllowedWhenOffline => "Not while you appear offline.",
        _ => "That did not work. Try again.",
    }
}

/// How long the page has to say `hello` after the socket opens.
pub(super) const HELLO_WITHIN: Duration = Duration::from_secs(10);
