//! The notification session: one task owns the connection, sends requests
//! for the [`Client`] handle, answers challenges, pings, and turns the
//! server's notifications into [`Event`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use msnp::challenge::{md5_response, msnp11_response};
use msnp::{Dialect, Frame, ListKind, OnlineState, PrivacyMode, PromptMode, urlencode};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

use crate::config::ClientConfig;
use crate::conn::{Conn, error_code};
use crate::error::{ClientError, Result};
use crate::event::Event;
use crate::login::{self, apply_sync_line};
use crate::sb::{self, Conversation};
use crate::state::{Contact, State};

/// A request for the session task: the line after the TrID, an optional
/// payload, and where to send the reply.
struct Request {
    verb: &'static str,
    rest: String,
    payload: Option<Vec<u8>>,
    reply: oneshot::Sender<Result<Frame>>,
}

enum Command {
    Request(Request),
    SignOut(oneshot::Sender<()>),
}

/// What the client's tasks share.
pub(crate) struct Shared {
    pub config: ClientConfig,
    pub dialect: Dialect,
    pub state: std::sync::Mutex<State>,
    pub events: mpsc::UnboundedSender<Event>,
    pub conversations: std::sync::Mutex<HashMap<u64, Conversation>>,
    pub next_id: AtomicU64,
    commands: mpsc::Sender<Command>,
    /// Serialises `XFR SB` so each answer goes to its own call.
    pub switchboard_requests: AsyncMutex<()>,
}

impl Shared {
    pub fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    pub fn me(&self) -> (String, String) {
        let s = self.state.lock().expect("state lock");
        (s.handle.clone(), s.friendly.clone())
    }

    /// A fresh id for a conversation or a transfer.
    pub fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&self, verb: &'static str, rest: String, payload: Option<Vec<u8>>) -> Result<Frame> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request(Request { verb, rest, payload, reply: tx }))
            .await
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(self.config.timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout),
        }
    }
}

/// A signed-in client. Cheap to clone; every clone drives the same session.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
}

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
            next_id: AtomicU64::new(1),
            commands,
            switchboard_requests: AsyncMutex::new(()),
        });
        let handle = shared.me().0;
        shared.emit(Event::SignedIn { handle, dialect: dialect.to_string(), contacts });
        tokio::spawn(run(logged.conn, logged.next_trid, shared.clone(), rx));
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
        let rest = match self.client_id() {
            Some(id) => format!("{state} {id}"),
            None => state.to_string(),
        };
        self.shared.request("CHG", rest, None).await?;
        self.shared.state.lock().expect("state lock").my_state = state;
        Ok(())
    }

    /// Changes my friendly name.
    pub async fn set_name(&self, name: &str) -> Result<()> {
        let encoded = urlencode::encode(name);
        if self.shared.dialect.uses_guids() {
            self.shared.request("PRP", format!("MFN {encoded}"), None).await?;
        } else {
            let me = self.shared.me().0;
            self.shared.request("REA", format!("{me} {encoded}"), None).await?;
        }
        self.shared.state.lock().expect("state lock").friendly = name.to_string();
        Ok(())
    }

    /// Sets my personal message (MSNP11+).
    pub async fn set_personal_message(&self, text: &str) -> Result<()> {
        if !self.shared.dialect.has_personal_message() {
            return Err(ClientError::Protocol(format!("{} has no personal messages", self.shared.dialect)));
        }
        let payload = format!("<Data><PSM>{}</PSM><CurrentMedia></CurrentMedia></Data>", msnp::soap::escape_xml(text));
        self.shared.request("UUX", String::new(), Some(payload.into_bytes())).await?;
        self.shared.state.lock().expect("state lock").personal_message = Some(text.to_string());
        Ok(())
    }

    async fn add_to(&self, list: ListKind, handle: &str, friendly: &str) -> Result<()> {
        let reply = if self.shared.dialect.uses_guids() {
            let rest = if list == ListKind::Forward {
                format!("FL N={handle} F={}", urlencode::encode(friendly))
            } else {
                format!("{list} N={handle}")
            };
            self.shared.request("ADC", rest, None).await?
        } else {
            self.shared.request("ADD", format!("{list} {handle} {}", urlencode::encode(friendly)), None).await?
        };
        let guid = reply.args().iter().find_map(|a| a.strip_prefix("C=")).map(str::to_string);
        let mut state = self.shared.state.lock().expect("state lock");
        let c = state.contact_mut(handle);
        c.set(list, true);
        if list == ListKind::Forward {
            c.friendly = friendly.to_string();
            c.guid = guid.or(c.guid.take());
        }
        Ok(())
    }

    async fn remove_from(&self, list: ListKind, handle: &str) -> Result<()> {
        let target = match (list, self.shared.dialect.uses_guids()) {
            (ListKind::Forward, true) => self
                .state()
                .contact(handle)
                .and_then(|c| c.guid.clone())
                .ok_or_else(|| ClientError::Protocol(format!("{handle} is not on the contact list")))?,
            _ => handle.to_string(),
        };
        self.shared.request("REM", format!("{list} {target}"), None).await?;
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
        self.shared.request("BLP", mode.code().to_string(), None).await?;
        self.shared.state.lock().expect("state lock").privacy = mode;
        Ok(())
    }

    /// Sets whether my client should ask about people who add me (`GTC`).
    pub async fn set_prompt(&self, mode: PromptMode) -> Result<()> {
        self.shared.request("GTC", mode.code().to_string(), None).await?;
        self.shared.state.lock().expect("state lock").prompt = mode;
        Ok(())
    }

    /// Creates a contact group (MSNP7+); returns its id.
    pub async fn add_group(&self, name: &str) -> Result<String> {
        let encoded = urlencode::encode(name);
        let rest = if self.shared.dialect.uses_guids() { encoded } else { format!("{encoded} 0") };
        let reply = self.shared.request("ADG", rest, None).await?;
        let a = reply.args();
        let id = if self.shared.dialect.uses_guids() { a.get(2) } else { a.get(3) }
            .ok_or_else(|| ClientError::Protocol(reply.line.clone()))?
            .to_string();
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
        sb::call(&self.shared, handle).await
    }

    /// A conversation by id (from the events).
    pub fn conversation(&self, id: u64) -> Option<Conversation> {
        self.shared.conversations.lock().expect("conversations lock").get(&id).cloned()
    }

    /// Leaves a message for someone offline, through the offline-message web
    /// service next to the Passport service (`login_url`'s host).
    pub async fn send_offline_message(&self, to: &str, text: &str) -> Result<()> {
        let base = self
            .shared
            .config
            .login_url
            .as_deref()
            .and_then(crate::http::origin)
            .ok_or_else(|| ClientError::Protocol("offline messages need the login URL".into()))?
            .to_string();
        let (me, friendly, token) = {
            let s = self.shared.state.lock().expect("state lock");
            (s.handle.clone(), s.friendly.clone(), s.web_token.clone())
        };
        let content = msnp::soap::escape_xml(&String::from_utf8_lossy(&crate::message::text(text, None)));
        let envelope = format!(
            concat!(
                r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>"#,
                r#"<From memberName="{}" friendlyName="{}" xml:lang="en-US" proxy="MSNMSGR" msnpVer="{}" buildVer="8.1"/>"#,
                r#"<To memberName="{}"/><Ticket passport="t={}&amp;p=" appid="PROD0090YUAUV{{2B" lockkey=""/><Sequence><MessageNumber>1</MessageNumber></Sequence>"#,
                r#"</soap:Header><soap:Body><MessageType xmlns="http://messenger.msn.com/ws/2004/09/oim/">text</MessageType>"#,
                r#"<Content xmlns="http://messenger.msn.com/ws/2004/09/oim/">{}</Content></soap:Body></soap:Envelope>"#
            ),
            me,
            msnp::soap::escape_xml(&msnp::oim::encoded_word(&friendly)),
            self.shared.dialect,
            to,
            token,
            content
        );
        let answer = crate::http::post_soap(
            &format!("{base}/OimWS/oim.asmx"),
            "http://messenger.msn.com/ws/2004/09/oim/StoreMessage",
            &envelope,
            self.shared.config.trust_ca.as_deref(),
        )
        .await?;
        if answer.status == 200 {
            return Ok(());
        }
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        let fault = msnp::soap::element_text(&body, "faultcode").unwrap_or_else(|| answer.status.to_string());
        Err(ClientError::Protocol(format!("offline message refused: {fault}")))
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

/// Extracts the text of a personal message payload.
fn psm_text(payload: &[u8]) -> String {
    let xml = String::from_utf8_lossy(payload);
    msnp::soap::element_text(&xml, "PSM").unwrap_or_default()
}

/// The session task.
async fn run(mut conn: Conn, mut next_trid: u32, shared: Arc<Shared>, mut commands: mpsc::Receiver<Command>) {
    let dialect = shared.dialect;
    let mut pending: HashMap<u32, (&'static str, oneshot::Sender<Result<Frame>>)> = HashMap::new();
    let mut ping_every = Duration::from_secs(50);
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    let mut signing_out: Option<oneshot::Sender<()>> = None;
    let reason = loop {
        tokio::select! {
            command = commands.recv(), if signing_out.is_none() => match command {
                Some(Command::Request(r)) => {
                    let trid = next_trid;
                    next_trid = next_trid.wrapping_add(1).max(1);
                    let line = if r.rest.is_empty() { format!("{} {trid}", r.verb) } else { format!("{} {trid} {}", r.verb, r.rest) };
                    let sent = match &r.payload {
                        Some(p) => conn.send_payload(&line, p).await,
                        None => conn.send_line(&line).await,
                    };
                    match sent {
                        Ok(()) => { pending.insert(trid, (r.verb, r.reply)); }
                        Err(e) => { let _ = r.reply.send(Err(e)); }
                    }
                }
                Some(Command::SignOut(done)) => {
                    let _ = conn.send_line("OUT").await;
                    signing_out = Some(done);
                }
                None => break "signed out".to_string(),
            },
            frame = conn.next_frame() => match frame {
                Ok(Some(f)) => {
                    if f.verb() == "OUT" {
                        let why = f.args().first().map(|r| r.to_string()).unwrap_or_else(|| "signed out".into());
                        break why;
                    }
                    handle(&shared, dialect, &mut conn, &mut next_trid, &mut pending, &mut ping_every, f).await;
                }
                Ok(None) | Err(_) => break if signing_out.is_some() { "signed out".into() } else { "connection lost".into() },
            },
            _ = tokio::time::sleep_until(next_ping) => {
                let _ = conn.send_line("PNG").await;
                next_ping = tokio::time::Instant::now() + ping_every;
            }
        }
    };
    for (_, (_, reply)) in pending.drain() {
        let _ = reply.send(Err(ClientError::Closed));
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

async fn handle(
    shared: &Arc<Shared>,
    dialect: Dialect,
    conn: &mut Conn,
    next_trid: &mut u32,
    pending: &mut HashMap<u32, (&'static str, oneshot::Sender<Result<Frame>>)>,
    ping_every: &mut Duration,
    f: Frame,
) {
    let a = f.args();
    let trid = a.first().and_then(|t| t.parse::<u32>().ok());
    if let Some(code) = error_code(&f) {
        if let Some((_, reply)) = trid.and_then(|t| pending.remove(&t)) {
            let _ = reply.send(Err(ClientError::Server(code)));
        }
        return;
    }
    if let Some(t) = trid.filter(|t| *t != 0)
        && pending.get(&t).is_some_and(|(verb, _)| *verb == f.verb())
    {
        let (_, reply) = pending.remove(&t).expect("checked");
        let _ = reply.send(Ok(f));
        return;
    }
    match f.verb() {
        "ILN" => presence(shared, dialect, &a[1..]),
        "NLN" => presence(shared, dialect, &a),
        "FLN" => {
            if let Some(handle) = a.first() {
                if let Some(c) = shared.state.lock().expect("state lock").contacts.get_mut(&handle.to_ascii_lowercase())
                {
                    c.state = OnlineState::Offline;
                    c.presence_name = None;
                }
                shared.emit(Event::Offline { handle: handle.to_string() });
            }
        }
        // The service's own messages; text ones are for the user to read
        // (the profile, mail and maintenance notices are other types).
        "MSG" if a.first() == Some(&"Hotmail") => {
            if let Some(message) = f.payload.as_deref().and_then(|p| msnp::mime::MimeMessage::parse(p).ok())
                && message.content_type().is_some_and(|t| t.starts_with("text/plain"))
            {
                let text = String::from_utf8_lossy(&message.body).into_owned();
                shared.emit(Event::ServiceMessage { text });
            }
        }
        "UBX" => {
            if let Some(handle) = a.first() {
                let text = psm_text(f.payload.as_deref().unwrap_or_default());
                if let Some(c) = shared.state.lock().expect("state lock").contacts.get_mut(&handle.to_ascii_lowercase())
                {
                    c.personal_message = Some(text.clone());
                }
                shared.emit(Event::PersonalMessage { handle: handle.to_string(), text });
            }
        }
        "ADD" | "ADC" if a.get(1) == Some(&"RL") => {
            let (handle, friendly) = if f.verb() == "ADC" {
                let h = a.iter().find_map(|x| x.strip_prefix("N=")).unwrap_or("");
                let fr = a.iter().find_map(|x| x.strip_prefix("F=")).unwrap_or(h);
                (h.to_string(), urlencode::decode(fr).unwrap_or_else(|_| fr.to_string()))
            } else {
                let h = a.get(3).unwrap_or(&"").to_string();
                let fr = a
                    .get(4)
                    .map(|x| urlencode::decode(x).unwrap_or_else(|_| x.to_string()))
                    .unwrap_or_else(|| h.clone());
                (h, fr)
            };
            let needs_answer = {
                let mut s = shared.state.lock().expect("state lock");
                let c = s.contact_mut(&handle);
                c.set(ListKind::Reverse, true);
                !c.on(ListKind::Allow) && !c.on(ListKind::Block)
            };
            shared.emit(Event::AddedBy { handle, friendly, needs_answer });
        }
        "REM" if a.get(1) == Some(&"RL") => {
            let handle = a.last().map(|h| h.trim_start_matches("N=").to_string()).unwrap_or_default();
            {
                let mut s = shared.state.lock().expect("state lock");
                s.contact_mut(&handle).set(ListKind::Reverse, false);
                s.prune();
            }
            shared.emit(Event::RemovedBy { handle });
        }
        "RNG" => {
            // RNG session-id address CKI cookie caller friendly
            if let (Some(session), Some(address), Some(cookie), Some(caller)) =
                (a.first(), a.get(1), a.get(3), a.get(4))
            {
                sb::answer(shared, session, address, cookie, caller);
            }
        }
        "CHL" => {
            if let Some(challenge) = a.get(1) {
                let (id, answer) = qry(dialect, challenge);
                let t = *next_trid;
                *next_trid = next_trid.wrapping_add(1).max(1);
                let _ = conn.send_payload(&format!("QRY {t} {id}"), answer.as_bytes()).await;
            }
        }
        "QNG" => *ping_every = login::ping_interval(&f),
        "GTC" | "BLP" | "PRP" | "LSG" | "LST" => {
            apply_sync_line(dialect, &f, &mut shared.state.lock().expect("state lock"))
        }
        _ => {}
    }
}

/// `NLN state handle friendly [client-id [object]]` (and ILN without its TrID).
fn presence(shared: &Shared, _dialect: Dialect, a: &[&str]) {
    let (Some(state), Some(handle), Some(friendly)) = (a.first(), a.get(1), a.get(2)) else { return };
    let Some(state) = OnlineState::from_code(state) else { return };
    let friendly = urlencode::decode(friendly).unwrap_or_else(|_| friendly.to_string());
    {
        let mut s = shared.state.lock().expect("state lock");
        let c = s.contact_mut(handle);
        c.state = state;
        c.presence_name = Some(friendly.clone());
        c.client_id = a.get(3).and_then(|id| id.parse().ok()).unwrap_or(0);
    }
    shared.emit(Event::Presence { handle: handle.to_string(), friendly, state: state.code().to_string() });
}
