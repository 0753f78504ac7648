//! The notification session: one task owns the connection, sends requests
//! for the [`Client`] handle, answers challenges, pings, and turns the
//! server's notifications into [`Event`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use msnp::challenge::{md5_response, msnp11_response};
use msnp::request::{AdcTarget, NsRequest};
use msnp::{Dialect, Frame, ListKind, OnlineState, PrivacyMode, PromptMode, Reply, TrId};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::config::ClientConfig;
use crate::conn::Conn;
use crate::contacts;
use crate::conversation::Conversation;
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::login::{self, apply_sync_reply};
use crate::sb;
use crate::shared::{Command, Shared};
use crate::state::{Contact, State};
use msnp::addressbook::Operation;
use msnp::user::UserDocument;

/// A signed-in client. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

/// The product id the client's offline messages name: MSN Messenger 7.5's,
/// whose key computes the lock key.
const OIM_PRODUCT_ID: &str = "PROD0090YUAUV{2B";

impl Client {
    /// Signs in and syncs; events arrive on the returned receiver until the
    /// session ends (`Event::SignedOut`).
    pub async fn sign_in(config: ClientConfig) -> Result<(Client, mpsc::UnboundedReceiver<Event>)> {
        let logged = login::sign_in(&config).await?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let (commands, rx) = mpsc::channel(64);
        let contacts = logged.state.forward_list().count();
        let dialect = config.dialect;
        let shared = Arc::new(Shared {
            config,
            dialect,
            state: std::sync::Mutex::new(logged.state),
            events: events_tx,
            conversations: Default::default(),
            direct: Default::default(),
            next_id: AtomicU64::new(1),
            commands,
            switchboard_requests: AsyncMutex::new(()),
            offline_read: AsyncMutex::new(Default::default()),
            circles: Default::default(),
            circle_refresh: AsyncMutex::new(()),
        });
        let handle = shared.me().0;
        shared.emit(Event::SignedIn { handle, dialect: dialect.to_string(), contacts });
        tokio::spawn(run(logged.conn, logged.next_trid, shared.clone(), rx));
        if dialect.has_circles() {
            refresh_circles(&shared);
        }
        Ok((Client { shared }, events))
    }

    /// A snapshot of what the client knows.
    pub fn state(&self) -> State {
        self.shared.state.lock().expect("state lock").clone()
    }

    /// The forward list, sorted by handle.
    pub fn contacts(&self) -> Vec<Contact> {
        self.state().forward_list().cloned().collect()
    }

    pub fn dialect(&self) -> Dialect {
        self.shared.dialect
    }

    /// The client id announced with `CHG` (MSNP8+): P2P-capable (MSNC4)
    /// from MSNP9, where P2P file transfer exists.
    fn client_id(&self) -> Option<u32> {
        let d = self.shared.dialect;
        match (d.presence_has_client_id(), d.has_p2p()) {
            (false, _) => None,
            (true, true) => Some(0x4000_0000),
            (true, false) => Some(0),
        }
    }

    /// Sets my state (`CHG`). The first call also brings the initial presence
    /// of my contacts.
    pub async fn set_state(&self, state: OnlineState) -> Result<()> {
        if self.shared.dialect.presence_in_documents() {
            let doc = UserDocument { status: Some(state), ..UserDocument::default() };
            self.publish(doc).await?;
            self.shared.state.lock().expect("state lock").my_state = state;
            return Ok(());
        }
        let client_id = self.client_id();
        self.shared
            .request(move |trid| NsRequest::Chg { trid, state, client_id, extended_caps: 0, msn_object: None })
            .await?;
        self.shared.state.lock().expect("state lock").my_state = state;
        Ok(())
    }

    /// Changes my friendly name.
    pub async fn set_name(&self, name: &str) -> Result<()> {
        let friendly = name.to_string();
        if self.shared.dialect.presence_in_documents() {
            self.publish(UserDocument { friendly: Some(friendly), ..UserDocument::default() }).await?;
        } else if self.shared.dialect.uses_guids() {
            self.shared.request(|trid| NsRequest::Prp { trid, kind: "MFN".into(), value: Some(friendly) }).await?;
        } else {
            let handle = self.shared.me().0;
            self.shared.request(|trid| NsRequest::Rea { trid, handle, friendly }).await?;
        }
        self.shared.state.lock().expect("state lock").friendly = name.to_string();
        Ok(())
    }

    /// Sets my personal message (MSNP11+).
    pub async fn set_personal_message(&self, text: &str) -> Result<()> {
        if !self.shared.dialect.has_personal_message() {
            return Err(ClientError::Protocol(format!("{} has no personal messages", self.shared.dialect)));
        }
        if self.shared.dialect.presence_in_documents() {
            self.publish(UserDocument { personal_message: Some(text.to_string()), ..UserDocument::default() }).await?;
        } else {
            let payload =
                format!("<Data><PSM>{}</PSM><CurrentMedia></CurrentMedia></Data>", msnp::soap::escape_xml(text));
            self.shared.request(|trid| NsRequest::Uux { trid, payload: payload.into() }).await?;
        }
        self.shared.state.lock().expect("state lock").personal_message = Some(text.to_string());
        Ok(())
    }

    /// Publishes what `doc` says of me to my `/user` (MSNP21).
    async fn publish(&self, doc: UserDocument) -> Result<()> {
        let me = self.shared.me().0;
        let machine = self.shared.config.machine.clone();
        let message = msnp::user::publication(&me, &machine, &doc);
        self.shared.request(move |trid| NsRequest::Put { trid, payload: message.to_bytes() }).await?;
        Ok(())
    }

    /// The one-contact list document of `ADL`/`RML` (MSNP13+).
    fn list_document(list: ListKind, handle: &str) -> bytes::Bytes {
        let doc = msnp::adl::ListDocument {
            initial: false,
            contacts: vec![msnp::adl::ListEntry {
                handle: handle.to_string(),
                lists: list.bit(),
                network: msnp::adl::MESSENGER_NETWORK,
                friendly: None,
            }],
        };
        bytes::Bytes::from(doc.encode())
    }

    async fn add_to(&self, list: ListKind, handle: &str, friendly: &str) -> Result<()> {
        let (h, f) = (handle.to_string(), friendly.to_string());
        let reply = if self.shared.dialect.lists_over_soap() {
            return self.add_over_soap(list, handle, friendly).await;
        } else if self.shared.dialect.uses_guids() {
            let friendly = (list == ListKind::Forward).then_some(f);
            self.shared
                .request(move |trid| NsRequest::Adc { trid, list, target: AdcTarget::Handle { handle: h, friendly } })
                .await?
        } else {
            self.shared.request(move |trid| NsRequest::Add { trid, list, handle: h, friendly: f, group: None }).await?
        };
        let guid = match reply {
            Reply::Add { guid, .. } => guid,
            _ => None,
        };
        self.note_added(list, handle, friendly, guid);
        Ok(())
    }

    /// The client's view after an add the server accepted.
    fn note_added(&self, list: ListKind, handle: &str, friendly: &str, guid: Option<String>) {
        let mut state = self.shared.state.lock().expect("state lock");
        let c = state.contact_mut(handle);
        c.set(list, true);
        if list == ListKind::Forward {
            c.friendly = friendly.to_string();
            c.guid = guid.or(c.guid.take());
        }
    }

    /// MSNP13+, as Windows Live Messenger does it: a contact goes into the
    /// address book (`ABContactAdd`, allowed as well unless blocked) and is
    /// then named in an `ADL`, whose `ILN` shows their presence; the allow
    /// and block lists are memberships (`AddMember`).
    async fn add_over_soap(&self, list: ListKind, handle: &str, friendly: &str) -> Result<()> {
        use msnp::addressbook::{Answer, MemberRef, Role};
        let ticket = self.state().web_token.clone();
        let config = &self.shared.config;
        let blocked = self.state().contact(handle).is_some_and(|c| c.on(ListKind::Block));
        let op = match (list, Role::of_list(list)) {
            (ListKind::Forward, _) => {
                Operation::ContactAdd { handle: handle.to_string(), messenger_user: true, allow: true }
            }
            (_, Some(role @ (Role::Allow | Role::Block))) => {
                Operation::AddMember { role, members: vec![MemberRef::Handle(handle.to_string())] }
            }
            _ => return Err(ClientError::Protocol("only the server changes that list".into())),
        };
        let answer = login::address_book(config, &ticket, &op).await?;
        let guid = match Answer::parse(&answer) {
            Some(Answer::Guid { guid, .. }) => Some(guid),
            _ => None,
        };
        self.note_added(list, handle, friendly, guid);
        // `EnableAllowListManagement`: the service allowed the new contact too.
        if list == ListKind::Forward && !blocked {
            self.note_added(ListKind::Allow, handle, friendly, None);
        }
        if list == ListKind::Forward {
            let payload = Self::list_document(list, handle);
            self.shared.request(move |trid| NsRequest::Adl { trid, payload }).await?;
        }
        Ok(())
    }

    /// MSNP13+: out of the address book (`ABContactDelete`), or off a
    /// membership (`DeleteMember`).
    async fn remove_over_soap(&self, list: ListKind, handle: &str) -> Result<()> {
        use msnp::addressbook::{MemberRef, Role};
        let ticket = self.state().web_token.clone();
        let op = match list {
            ListKind::Forward => {
                let guid = self
                    .state()
                    .contact(handle)
                    .and_then(|c| c.guid.clone())
                    .ok_or_else(|| ClientError::Protocol(format!("{handle} is not on the contact list")))?;
                Operation::ContactDelete { guids: vec![guid] }
            }
            _ => match Role::of_list(list) {
                Some(role @ (Role::Allow | Role::Block)) => {
                    Operation::DeleteMember { role, members: vec![MemberRef::Handle(handle.to_string())] }
                }
                _ => return Err(ClientError::Protocol("only the server changes that list".into())),
            },
        };
        login::address_book(&self.shared.config, &ticket, &op).await?;
        let mut state = self.shared.state.lock().expect("state lock");
        state.contact_mut(handle).set(list, false);
        state.prune();
        Ok(())
    }

    async fn remove_from(&self, list: ListKind, handle: &str) -> Result<()> {
        if self.shared.dialect.lists_over_soap() {
            return self.remove_over_soap(list, handle).await;
        }
        let target = match (list, self.shared.dialect.uses_guids()) {
            (ListKind::Forward, true) => self
                .state()
                .contact(handle)
                .and_then(|c| c.guid.clone())
                .ok_or_else(|| ClientError::Protocol(format!("{handle} is not on the contact list")))?,
            _ => handle.to_string(),
        };
        self.shared.request(move |trid| NsRequest::Rem { trid, list, target, group: None }).await?;
        let mut state = self.shared.state.lock().expect("state lock");
        state.contact_mut(handle).set(list, false);
        state.prune();
        Ok(())
    }

    /// Adds someone to my contact list.
    pub async fn add_contact(&self, handle: &str, friendly: &str) -> Result<()> {
        self.add_to(ListKind::Forward, handle, friendly).await
    }

    /// Removes someone from my contact list.
    pub async fn remove_contact(&self, handle: &str) -> Result<()> {
        self.remove_from(ListKind::Forward, handle).await
    }

    /// Blocks someone: off the allow list, onto the block list.
    pub async fn block(&self, handle: &str) -> Result<()> {
        if self.state().contact(handle).is_some_and(|c| c.on(ListKind::Allow)) {
            self.remove_from(ListKind::Allow, handle).await?;
        }
        self.add_to(ListKind::Block, handle, handle).await
    }

    /// Allows someone: off the block list, onto the allow list.
    pub async fn allow(&self, handle: &str) -> Result<()> {
        if self.state().contact(handle).is_some_and(|c| c.on(ListKind::Block)) {
            self.remove_from(ListKind::Block, handle).await?;
        }
        self.add_to(ListKind::Allow, handle, handle).await
    }

    /// Sets who may see me and talk to me (`BLP`).
    pub async fn set_privacy(&self, mode: PrivacyMode) -> Result<()> {
        self.shared.request(move |trid| NsRequest::Blp { trid, mode }).await?;
        self.shared.state.lock().expect("state lock").privacy = mode;
        Ok(())
    }

    /// Sets whether my client should ask about people who add me (`GTC`).
    pub async fn set_prompt(&self, mode: PromptMode) -> Result<()> {
        self.shared.request(move |trid| NsRequest::Gtc { trid, mode }).await?;
        self.shared.state.lock().expect("state lock").prompt = mode;
        Ok(())
    }

    /// Creates a contact group (MSNP7+); returns its id.
    pub async fn add_group(&self, name: &str) -> Result<String> {
        let group_name = name.to_string();
        let id = match self.shared.request(|trid| NsRequest::Adg { trid, name: group_name }).await? {
            Reply::Adg { group, .. } if self.shared.dialect.uses_guids() => group.guid,
            Reply::Adg { group, .. } => group.id.to_string(),
            other => return Err(ClientError::Protocol(format!("{other:?} answering ADG"))),
        };
        self.shared
            .state
            .lock()
            .expect("state lock")
            .groups
            .push(crate::state::Group { id: id.clone(), name: name.into() });
        Ok(id)
    }

    /// Starts a conversation with someone; `Event::Joined` tells when they
    /// are in it.
    pub async fn start_conversation(&self, handle: &str) -> Result<Conversation> {
        if !self.shared.dialect.has_switchboard() {
            return Ok(crate::direct::conversation_with(&self.shared, handle, false));
        }
        sb::call(&self.shared, handle).await
    }

    /// A conversation by id (from the events).
    pub fn conversation(&self, id: u64) -> Option<Conversation> {
        self.shared.conversations.lock().expect("conversations lock").get(&id).cloned()
    }

    /// Leaves a message for someone offline, through the offline-message web
    /// service next to the Passport service (`login_url`'s host). The
    /// service first answers with a lock-key challenge, which the client
    /// answers with its product key and sends again, as Messenger did.
    pub async fn send_offline_message(&self, to: &str, text: &str) -> Result<()> {
        use msnp::oim::{STORE2_ACTION, StoreRequest, encoded_word, lock_key, parse_store_fault};
        let base = login::login_origin(&self.shared.config)?;
        let (me, friendly, token) = {
            let s = self.shared.state.lock().expect("state lock");
            (s.handle.clone(), s.friendly.clone(), s.web_token.clone())
        };
        let mut request = StoreRequest {
            from: me,
            from_friendly: Some(encoded_word(&friendly)),
            to: to.to_string(),
            ticket: format!("t={token}&p="),
            app_id: OIM_PRODUCT_ID.to_string(),
            lock_key: String::new(),
            sequence: 1,
            content: String::from_utf8_lossy(&crate::message::text(text, None)).into_owned(),
        };
        let url = format!("{base}/OimWS/oim.asmx");
        let trust = self.shared.config.trust_ca.as_deref();
        for _attempt in 0..2 {
            let answer = crate::http::post_soap(&url, STORE2_ACTION, &request.to_xml(), trust).await?;
            if answer.status == 200 {
                return Ok(());
            }
            let fault = parse_store_fault(&String::from_utf8_lossy(&answer.body));
            match fault {
                Some((_, Some(challenge))) if request.lock_key.is_empty() => {
                    request.lock_key = lock_key(&challenge, OIM_PRODUCT_ID).unwrap_or_default();
                }
                Some((code, _)) => return Err(ClientError::Protocol(format!("offline message refused: {code}"))),
                None => return Err(ClientError::Protocol(format!("offline message refused: {}", answer.status))),
            }
        }
        Err(ClientError::Protocol("offline message refused: the lock key was not taken".into()))
    }

    /// My circles (MSNP18's group chats), as the address book last listed them.
    pub fn circles(&self) -> Vec<crate::state::Circle> {
        self.shared.circles.lock().expect("circles lock").clone()
    }

    /// Makes a circle I administer, and joins it; returns its GUID.
    pub async fn create_circle(&self, name: &str) -> Result<String> {
        crate::circles::create(&self.shared, name).await
    }

    /// Invites someone into a circle I administer.
    pub async fn invite_to_circle(&self, circle: &str, handle: &str) -> Result<()> {
        crate::circles::invite(&self.shared, circle, handle).await
    }

    /// Accepts (and joins) or declines an invitation into a circle.
    pub async fn answer_circle(&self, circle: &str, accept: bool) -> Result<()> {
        crate::circles::answer(&self.shared, circle, accept).await
    }

    /// Leaves a circle for good.
    pub async fn leave_circle(&self, circle: &str) -> Result<()> {
        crate::circles::leave(&self.shared, circle).await
    }

    /// Says something in a circle I joined.
    pub async fn say_in_circle(&self, circle: &str, text: &str) -> Result<()> {
        crate::circles::say(&self.shared, circle, text).await
    }

    /// Signs out (`OUT`) and ends every conversation.
    pub async fn sign_out(&self) {
        let conversations: Vec<Conversation> =
            self.shared.conversations.lock().expect("conversations lock").values().cloned().collect();
        for c in conversations {
            c.leave().await;
        }
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::SignOut(tx)).await.is_ok() {
            let _ = tokio::time::timeout(self.shared.config.timeout, rx).await;
        }
    }
}

/// Answers a challenge with the product key of our dialect's algorithm.
fn qry(dialect: Dialect, challenge: &str) -> (&'static str, String) {
    if dialect.uses_msnp11_challenge() {
        let id = "PROD0090YUAUV{2B";
        (id, msnp11_response(challenge, id, msnp::challenge::product_key(id).expect("known product")))
    } else {
        let id = "msmsgs@msnmsgr.com";
        (id, md5_response(challenge, msnp::challenge::product_key(id).expect("known product")))
    }
}

/// The session task.
async fn run(mut conn: Conn, mut next_trid: u32, shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    let dialect = shared.dialect;
    let mut pending: HashMap<TrId, Pending> = HashMap::new();
    let mut ping_every = Duration::from_secs(50);
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    let mut signing_out: Option<oneshot::Sender<()>> = None;
    let reason = loop {
        tokio::select! {
            command = commands.recv(), if signing_out.is_none() => match command {
                Some(Command::Request(r)) => {
                    let request = (r.make)(take_trid(&mut next_trid));
                    let frame = request.to_frame(dialect);
                    match conn.send_frame(&frame).await {
                        Ok(()) => {
                            let verb = frame.verb().to_string();
                            pending.insert(request.trid().unwrap_or(0), Pending { verb, reply: r.reply });
                        }
                        Err(e) => { let _ = r.reply.send(Err(e)); }
                    }
                }
                Some(Command::Send(make)) => {
                    let request = make(take_trid(&mut next_trid));
                    if let Err(e) = conn.send(&request, dialect).await {
                        tracing::debug!("not sent: {e}");
                    }
                }
                Some(Command::SignOut(done)) => {
                    let _ = conn.send(&NsRequest::Out, dialect).await;
                    signing_out = Some(done);
                }
                None => break "signed out".to_string(),
            },
            frame = conn.next_frame() => match frame {
                Ok(Some(f)) => match Reply::parse(&f, dialect) {
                    Ok(Reply::Out { reason }) => break reason.map_or("signed out", |r| r.code()).to_string(),
                    Ok(reply) => handle(&shared, &mut conn, &mut next_trid, &mut pending, &mut ping_every, &f, reply).await,
                    // What this client cannot read it leaves alone.
                    Err(e) => tracing::debug!("{e}"),
                },
                Ok(None) | Err(_) => break if signing_out.is_some() { "signed out".into() } else { "connection lost".into() },
            },
            _ = tokio::time::sleep_until(next_ping) => {
                let _ = conn.send(&NsRequest::Png, dialect).await;
                next_ping = tokio::time::Instant::now() + ping_every;
            }
        }
    };
    for (_, waiting) in pending.drain() {
        let _ = waiting.reply.send(Err(ClientError::Closed));
    }
    if let Some(done) = signing_out {
        let _ = done.send(());
    }
    if let Some(dir) = &shared.config.cache_dir {
        let state = shared.state.lock().expect("state lock").clone();
        let _ = crate::cache::save(dir, &state);
    }
    shared.emit(Event::SignedOut { reason });
}

/// A request waiting for its reply, which names the same verb and TrID.
struct Pending {
    verb: String,
    reply: oneshot::Sender<Result<Reply>>,
}

/// The next TrID, never 0 (the TrID of the server's own notifications).
fn take_trid(next: &mut TrId) -> TrId {
    let trid = *next;
    *next = next.wrapping_add(1).max(1);
    trid
}

/// Someone put me on their contact list.
fn added_by(shared: &Shared, handle: String, friendly: String) {
    let needs_answer = {
        let mut s = shared.state.lock().expect("state lock");
        let c = s.contact_mut(&handle);
        c.set(ListKind::Reverse, true);
        !c.on(ListKind::Allow) && !c.on(ListKind::Block)
    };
    shared.emit(Event::AddedBy { handle, friendly, needs_answer });
}

/// Someone took me off their contact list.
fn removed_by(shared: &Shared, handle: String) {
    {
        let mut s = shared.state.lock().expect("state lock");
        s.contact_mut(&handle).set(ListKind::Reverse, false);
        s.prune();
    }
    shared.emit(Event::RemovedBy { handle });
}

async fn handle(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    next_trid: &mut TrId,
    pending: &mut HashMap<TrId, Pending>,
    ping_every: &mut Duration,
    frame: &Frame,
    reply: Reply,
) {
    let dialect = shared.dialect;
    // A reply to a request of ours: its TrID, and its verb (an ILN carries
    // the TrID of the CHG that brought it) or an error.
    let trid = reply.trid().filter(|t| *t != 0);
    if let Some(t) = trid
        && pending.get(&t).is_some_and(|p| p.verb == frame.verb() || matches!(reply, Reply::Error { .. }))
    {
        let waiting = pending.remove(&t).expect("checked");
        let answer = match reply {
            Reply::Error { code, .. } => Err(ClientError::Server(code.code())),
            reply => Ok(reply),
        };
        let _ = waiting.reply.send(answer);
        return;
    }
    match reply {
        Reply::Iln { presence: p, .. } | Reply::Nln { presence: p } => contacts::presence(shared, p),
        Reply::Fln { handle } => contacts::offline(shared, handle),
        // The service's own messages; text ones are for the user to read,
        // offline-message notices (MSNP13+) say what to fetch; the profile,
        // mail and maintenance notices are other types.
        Reply::Msg { handle, payload, .. } if handle == "Hotmail" => {
            let Ok(message) = msnp::mime::MimeMessage::parse(&payload) else { return };
            let kind = message.content_type().unwrap_or_default().to_ascii_lowercase();
            if kind.starts_with("text/plain") {
                let text = String::from_utf8_lossy(&message.body).into_owned();
                shared.emit(Event::ServiceMessage { text });
            } else if dialect.reads_offline_messages_over_soap()
                && (kind.starts_with("text/x-msmsgsinitialmdatanotification")
                    || kind.starts_with("text/x-msmsgsoimnotification"))
                && let Some(entries) = msnp::oim::parse_metadata(&String::from_utf8_lossy(&message.body))
            {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = read_offline_messages(&shared, entries).await {
                        tracing::warn!("cannot read offline messages: {e}");
                    }
                });
            }
        }
        Reply::Ubx { handle, payload } => {
            contacts::personal_message(shared, handle, msnp::personal::status_of(&String::from_utf8_lossy(&payload)))
        }
        Reply::Add { list: ListKind::Reverse, handle, friendly, .. } => {
            let friendly = if friendly.is_empty() { handle.clone() } else { friendly };
            added_by(shared, handle, friendly);
        }
        // MSNP13+ tell of someone adding or removing me with a document.
        Reply::ReverseListChange { added, payload } => {
            let Ok(doc) = msnp::adl::ListDocument::parse(&payload) else { return };
            for c in doc.contacts {
                if added {
                    let friendly = c.friendly.unwrap_or_else(|| c.handle.clone());
                    added_by(shared, c.handle, friendly);
                } else {
                    removed_by(shared, c.handle);
                }
            }
        }
        Reply::Rem { list: ListKind::Reverse, handle, .. } => removed_by(shared, handle),
        Reply::Rng { session_id, address, cookie, caller, .. } => {
            sb::answer(shared, session_id, address, cookie, caller)
        }
        Reply::Chl { challenge } => {
            let (id, answer) = qry(dialect, &challenge);
            let request = NsRequest::Qry { trid: take_trid(next_trid), product_id: id.into(), payload: answer.into() };
            let _ = conn.send(&request, dialect).await;
        }
        Reply::Qng { interval } => *ping_every = login::ping_interval(interval),
        // The address book changed: for a client with circles, they may have.
        Reply::Not { .. } if dialect.has_circles() => refresh_circles(shared),
        Reply::Nfy { removal, payload } => on_routed(shared, removal, false, &payload),
        Reply::Sdg { payload } => on_routed(shared, false, true, &payload),
        sync @ (Reply::Gtc { .. }
        | Reply::Blp { .. }
        | Reply::Prp { .. }
        | Reply::Lsg { .. }
        | Reply::Lst { .. }
        | Reply::SyncContact(_)) => apply_sync_reply(&sync, &mut shared.state.lock().expect("state lock")),
        _ => {}
    }
}

/// Reads offline messages from the web service (`rsi.asmx`), oldest first,
/// deletes them there, and only then shows them: the server keeps a message
/// until the client deletes it, so one shown and not deleted would come
/// back. If reading or deleting fails nothing is shown, and the messages
/// come again with the next notice or sign-in.
async fn read_offline_messages(shared: &Arc<Shared>, mut entries: Vec<msnp::oim::OimEntry>) -> Result<()> {
    use msnp::oim::{InboxCall, InboxRequest, content_text, parse_get_message_response};
    let url = format!("{}/rsi/rsi.asmx", login::login_origin(&shared.config)?);
    let trust = shared.config.trust_ca.as_deref();
    let ticket = shared.state.lock().expect("state lock").web_token.clone();
    let mut read = shared.offline_read.lock().await;
    entries.retain(|e| !read.contains(&e.guid));
    entries.sort_by_key(|e| e.sent_at_ms);
    let mut fetched = Vec::new();
    for entry in entries {
        let call = InboxCall { ticket: ticket.clone(), request: InboxRequest::GetMessage { guid: entry.guid.clone() } };
        let answer = crate::http::post_soap(&url, &call.action(), &call.to_xml(), trust).await?;
        let text = parse_get_message_response(&String::from_utf8_lossy(&answer.body))
            .and_then(|t| content_text(&t))
            .ok_or_else(|| {
                ClientError::Protocol(format!("offline message {} unreadable ({})", entry.guid, answer.status))
            })?;
        fetched.push((entry, text));
    }
    if fetched.is_empty() {
        return Ok(());
    }
    let guids = fetched.iter().map(|(e, _)| e.guid.clone()).collect();
    let call = InboxCall { ticket, request: InboxRequest::DeleteMessages { guids } };
    let answer = crate::http::post_soap(&url, &call.action(), &call.to_xml(), trust).await?;
    if answer.status != 200 {
        return Err(ClientError::Protocol(format!("offline messages not deleted ({})", answer.status)));
    }
    for (entry, text) in fetched {
        read.insert(entry.guid);
        shared.emit(Event::OfflineMessage {
            from: entry.sender,
            friendly: entry.sender_friendly,
            text: String::from_utf8_lossy(&text).into_owned(),
            sent: msnp::time::iso8601(entry.sent_at_ms.div_euclid(1000)),
        });
    }
    Ok(())
}

/// Reads the circles again and joins new ones, beside the session task.
fn refresh_circles(shared: &Arc<Shared>) {
    let shared = shared.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::circles::refresh(&shared).await {
            tracing::warn!("cannot read circles: {e}");
        }
    });
}

/// A contact's presence (`NLN`, or `ILN` after `CHG`).
/// A routed notification or message: a circle's, or (MSNP21) a person's.
fn on_routed(shared: &Arc<Shared>, removal: bool, sdg: bool, payload: &[u8]) {
    let Ok(message) = msnp::routed::RoutedMessage::parse(payload) else { return };
    let circle = |a: Option<msnp::routed::RoutedAddress>| a.is_some_and(|a| a.network == msnp::routed::CIRCLE_NETWORK);
    if circle(message.to()) || circle(message.from()) {
        crate::circles::on_routed(shared, removal, sdg, message);
    } else {
        crate::direct::on_routed(shared, removal, sdg, message);
    }
}
