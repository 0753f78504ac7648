//! The terminal messenger: state, keys, drawing.
//!
//! Tab 0 is the contact list, grouped and coloured by presence; every
//! conversation has a tab of its own. The input line takes messages and
//! `/commands` (see [`HELP`]).
//!
//! Over 700 lines on purpose: the TUI's state, key handling and drawing are
//! one state machine over one `App`; the drawing half could move out when a
//! second view appears.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use client::{Client, Event};
use msnp::OnlineState;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Wrap};

use crate::history::History;

/// The commands of the input line.
pub const HELP: &str = "/chat HANDLE  /invite HANDLE  /circle NAME  /join CIRCLE  /leave [CIRCLE]  /status online|busy|away|brb|phone|lunch|idle|hidden  /name NAME  /psm TEXT  /add HANDLE  /remove HANDLE  /block HANDLE  /allow HANDLE  /send PATH  /accept [PATH]  /decline  /cancel  /search TEXT  /close  /quit  — Ctrl-N/Ctrl-P switch tabs, Esc to contacts";

/// A transfer shown in a tab.
#[derive(Debug, Clone)]
struct TransferView {
    id: u64,
    name: String,
    done: u64,
    total: u64,
}

/// One conversation tab.
#[derive(Debug, Clone)]
struct Tab {
    title: String,
    conversation: Option<u64>,
    lines: Vec<(String, String)>,
    typing: Option<(String, Instant)>,
    transfer: Option<TransferView>,
    offer: Option<(u64, String, u64)>,
    /// Messages typed before the other side joined.
    queued: Vec<String>,
    /// The other side was invited and has not joined yet.
    inviting: bool,
    /// The tab last said the other side is offline.
    said_offline: bool,
    /// The circle (its GUID) this tab speaks in, for a circle's tab.
    circle: Option<String>,
}

impl Tab {
    fn new(title: &str) -> Tab {
        Tab {
            title: title.into(),
            conversation: None,
            lines: Vec::new(),
            typing: None,
            transfer: None,
            offer: None,
            queued: Vec::new(),
            inviting: false,
            said_offline: false,
            circle: None,
        }
    }

    fn note(&mut self, text: impl Into<String>) {
        self.lines.push(("*".into(), text.into()));
    }
}

/// The app.
pub struct App {
    pub client: Client,
    me: String,
    history: Option<History>,
    tabs: Vec<Tab>,
    active: usize,
    selected: usize,
    /// The input line.
    pub input: String,
    /// The last notification.
    pub status: String,
    /// People who added me and whom I have not answered.
    prompts: VecDeque<String>,
    pub quit: bool,
    last_typing_sent: Option<Instant>,
    download_dir: PathBuf,
    /// The circle (by name) the user just made or joined: its tab is shown
    /// when it opens.
    focus_circle: Option<String>,
}

fn state_name(s: OnlineState) -> &'static str {
    match s {
        OnlineState::Online => "online",
        OnlineState::Busy => "busy",
        OnlineState::Idle => "idle",
        OnlineState::BeRightBack => "be right back",
        OnlineState::Away => "away",
        OnlineState::OnThePhone => "on the phone",
        OnlineState::OutToLunch => "out to lunch",
        OnlineState::Hidden => "appear offline",
        OnlineState::Offline => "offline",
    }
}

/// Parses a state as people type it.
pub fn parse_state(s: &str) -> Option<OnlineState> {
    Some(match s.to_ascii_lowercase().as_str() {
        "online" | "nln" => OnlineState::Online,
        "busy" | "bsy" => OnlineState::Busy,
        "away" | "awy" => OnlineState::Away,
        "brb" => OnlineState::BeRightBack,
        "phone" | "phn" => OnlineState::OnThePhone,
        "lunch" | "lun" => OnlineState::OutToLunch,
        "idle" | "idl" => OnlineState::Idle,
        "hidden" | "invisible" | "hdn" => OnlineState::Hidden,
        _ => return None,
    })
}

fn colour(s: OnlineState) -> Color {
    match s {
        OnlineState::Online => Color::Green,
        OnlineState::Busy | OnlineState::OnThePhone => Color::Red,
        OnlineState::Away | OnlineState::BeRightBack | OnlineState::Idle | OnlineState::OutToLunch => Color::Yellow,
        OnlineState::Hidden | OnlineState::Offline => Color::DarkGray,
    }
}

fn size_text(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

impl App {
    pub fn new(client: Client, history: Option<History>, download_dir: PathBuf) -> App {
        let me = client.state().handle;
        App {
            client,
            me,
            history,
            tabs: vec![Tab::new("Contacts")],
            active: 0,
            selected: 0,
            input: String::new(),
            status: "Signed in. Type /help for commands.".into(),
            prompts: VecDeque::new(),
            quit: false,
            last_typing_sent: None,
            download_dir,
            focus_circle: None,
        }
    }

    /// Queues the people who added me while I was away, to ask about them.
    pub fn ask_pending(&mut self) {
        for c in self.client.state().needs_answer() {
            if !self.prompts.contains(&c.handle) {
                self.prompts.push_back(c.handle.clone());
            }
        }
    }

    fn tab_of(&mut self, conversation: u64) -> Option<&mut Tab> {
        self.tabs.iter_mut().find(|t| t.conversation == Some(conversation))
    }

    fn tab_of_circle(&mut self, circle: &str) -> Option<&mut Tab> {
        self.tabs.iter_mut().find(|t| t.circle.as_deref() == Some(circle))
    }

    /// A circle by its name or GUID, as typed.
    fn circle_named(&self, name: &str) -> Option<client::Circle> {
        self.client.circles().into_iter().find(|c| c.name.eq_ignore_ascii_case(name) || c.id.eq_ignore_ascii_case(name))
    }

    /// Shows the circle `name`'s tab when it opens.
    fn focus(&mut self, name: &str) -> &mut Self {
        self.focus_circle = Some(name.to_string());
        self
    }

    fn tab_of_transfer(&mut self, transfer: u64) -> Option<&mut Tab> {
        self.tabs.iter_mut().find(|t| {
            t.transfer.as_ref().is_some_and(|x| x.id == transfer) || t.offer.as_ref().is_some_and(|o| o.0 == transfer)
        })
    }

    fn record(&self, with: &str, from: &str, text: &str) {
        if let Some(h) = &self.history {
            let _ = h.record(with, from, text);
        }
    }

    /// Takes in an event from the client.
    pub async fn on_event(&mut self, event: Event) {
        match event {
            Event::SignedIn { handle, dialect, .. } => self.status = format!("Signed in as {handle} ({dialect})"),
            Event::Presence { handle, state, .. } => {
                let s = OnlineState::from_code(&state).map(state_name).unwrap_or("online");
                self.status = format!("{handle} is {s}");
                if let Some(t) = self.tabs.iter_mut().skip(1).find(|t| t.title.eq_ignore_ascii_case(&handle))
                    && t.said_offline
                {
                    t.said_offline = false;
                    t.note(format!("{handle} is {s} now: what you type starts a conversation"));
                }
            }
            Event::Offline { handle } => {
                self.status = format!("{handle} went offline");
                if let Some(t) = self.tabs.iter_mut().skip(1).find(|t| t.title.eq_ignore_ascii_case(&handle))
                    && !t.said_offline
                {
                    t.said_offline = true;
                    t.note(format!("{handle} is offline: what you type is left as an offline message"));
                }
            }
            Event::PersonalMessage { .. } | Event::RemovedBy { .. } => {}
            Event::AddedBy { handle, needs_answer, .. } => {
                self.status = format!("{handle} added you to their contact list");
                if needs_answer && !self.prompts.contains(&handle) {
                    self.prompts.push_back(handle);
                }
            }
            Event::ConversationStarted { conversation, with, invited_by } => {
                let peer = invited_by.clone().or_else(|| with.first().cloned()).unwrap_or_default();
                // One tab per contact, across switchboards: a new invitation
                // from the same person lands in their tab, and what is typed
                // there goes to the new conversation. A group conversation
                // (someone else already in it) gets a tab of its own.
                let one_to_one = with.len() <= 1;
                let existing = self.tabs.iter().position(|t| {
                    t.title.eq_ignore_ascii_case(&peer)
                        && (t.conversation.is_none() || one_to_one)
                        && t.conversation != Some(conversation)
                });
                let i = match existing {
                    Some(i) => i,
                    None => match self.tab_of(conversation) {
                        Some(_) => return,
                        None => {
                            self.tabs.push(Tab::new(&peer));
                            self.tabs.len() - 1
                        }
                    },
                };
                let replaced = self.tabs[i].conversation.replace(conversation);
                if let Some(old) = replaced.and_then(|id| self.client.conversation(id)) {
                    old.leave().await;
                }
                self.tabs[i].inviting = false;
                if let Some(by) = invited_by {
                    self.status = format!("{by} started a conversation");
                }
            }
            Event::Joined { conversation, handle, .. } => {
                let queued = match self.tab_of(conversation) {
                    Some(t) => {
                        // A conversation another of my machines opened is
                        // named after whoever comes into it.
                        if t.title.is_empty() {
                            t.title = handle.clone();
                        }
                        t.note(format!("{handle} joined"));
                        t.inviting = false;
                        std::mem::take(&mut t.queued)
                    }
                    None => Vec::new(),
                };
                for text in queued {
                    self.send_in(conversation, &text).await;
                }
            }
            Event::Left { conversation, handle, idle } => {
                if let Some(t) = self.tab_of(conversation) {
                    t.note(if idle { format!("{handle} left (idle)") } else { format!("{handle} left") });
                }
            }
            Event::ConversationEnded { conversation } => {
                if let Some(t) = self.tab_of(conversation) {
                    t.conversation = None;
                    t.note("conversation ended; typing again starts a new one");
                }
            }
            Event::Message { conversation, from, text, offline_sent, .. } => {
                let peer = self.tab_of(conversation).map(|t| t.title.clone()).unwrap_or_else(|| from.clone());
                let shown = match &offline_sent {
                    Some(_) => text.lines().skip(1).collect::<Vec<_>>().join("\n"),
                    None => text.clone(),
                };
                if let Some(t) = self.tab_of(conversation) {
                    t.typing = None;
                    if let Some(sent) = offline_sent {
                        t.note(format!("offline message, sent {sent}"));
                    }
                    t.lines.push((from.clone(), shown.clone()));
                }
                self.record(&peer, &from, &shown);
            }
            Event::OfflineMessage { from, text, sent, .. } => {
                // In the sender's tab, opened if need be: replying there
                // calls them, or leaves an offline message in turn.
                let i = match self.tabs.iter().skip(1).position(|t| t.title.eq_ignore_ascii_case(&from)) {
                    Some(i) => i + 1,
                    None => {
                        self.tabs.push(Tab::new(&from));
                        self.tabs.len() - 1
                    }
                };
                let when = sent.trim_end_matches('Z').replace('T', " ");
                self.tabs[i].note(format!("offline message, sent {when} UTC"));
                self.tabs[i].lines.push((from.clone(), text.clone()));
                self.status = format!("{from} left you an offline message");
                self.record(&from, &from, &text);
            }
            Event::Typing { conversation, from } => {
                if let Some(t) = self.tab_of(conversation) {
                    t.typing = Some((from, Instant::now()));
                }
            }
            Event::Nudge { conversation, from } => {
                if let Some(t) = self.tab_of(conversation) {
                    t.note(format!("{from} sent a nudge"));
                }
            }
            Event::FileOffer { conversation, transfer, from, name, size, .. } => {
                if let Some(t) = self.tab_of(conversation) {
                    t.note(format!("{from} offers {name} ({}): /accept or /decline", size_text(size)));
                    t.offer = Some((transfer, name, size));
                }
            }
            Event::FileProgress { transfer, done, total } => {
                if let Some(t) = self.tab_of_transfer(transfer) {
                    match &mut t.transfer {
                        Some(x) => {
                            x.done = done;
                            x.total = total;
                        }
                        None => t.transfer = Some(TransferView { id: transfer, name: String::new(), done, total }),
                    }
                }
            }
            Event::FileDone { transfer, path, size, verified, .. } => {
                if let Some(t) = self.tab_of_transfer(transfer) {
                    let check = if verified { ", checksum verified" } else { "" };
                    t.note(format!("transfer done: {} ({}{check})", path.unwrap_or_default(), size_text(size)));
                    t.transfer = None;
                    t.offer = None;
                }
            }
            Event::FileFallback { transfer, reason } => {
                if let Some(t) = self.tab_of_transfer(transfer) {
                    t.note(reason);
                }
            }
            Event::FileFailed { transfer, reason } => {
                if let Some(t) = self.tab_of_transfer(transfer) {
                    t.note(format!("transfer failed: {reason}"));
                    t.transfer = None;
                    t.offer = None;
                }
            }
            Event::CircleInvitation { name, by, .. } => {
                self.status = format!("{by} invites you into the circle {name}: /join {name} or /leave {name}");
            }
            Event::CircleJoined { circle, name } => {
                if self.tab_of_circle(&circle).is_none() {
                    let mut tab = Tab::new(&format!("#{name}"));
                    tab.circle = Some(circle.clone());
                    tab.note(format!("you are in the circle {name}: what you type is said to everyone in it"));
                    self.tabs.push(tab);
                }
                if self.focus_circle.as_deref().is_some_and(|f| f.eq_ignore_ascii_case(&name)) {
                    self.focus_circle = None;
                    self.active = self.tabs.iter().position(|t| t.circle.as_deref() == Some(&circle)).unwrap_or(0);
                }
                self.status = format!("joined the circle {name}");
            }
            Event::CircleRoster { circle, members } => {
                if let Some(t) = self.tab_of_circle(&circle) {
                    t.note(format!("here now: {}", members.join(", ")));
                }
            }
            Event::CircleMessage { circle, from, text } => {
                if let Some(t) = self.tab_of_circle(&circle) {
                    let title = t.title.clone();
                    t.lines.push((from.clone(), text.clone()));
                    self.record(&title, &from, &text);
                }
            }
            Event::CircleLeft { circle, handle } => {
                if let Some(t) = self.tab_of_circle(&circle) {
                    t.note(format!("{handle} left the circle"));
                }
            }
            Event::ServiceMessage { text } => self.status = format!("From the service: {text}"),
            Event::SignedOut { reason } => {
                self.status = match reason.as_str() {
                    "OTH" => "Signed out: you signed in somewhere else".into(),
                    "SSD" => "Signed out: the server is shutting down".into(),
                    other => format!("Signed out: {other}"),
                };
            }
        }
    }

    async fn send_in(&mut self, conversation: u64, text: &str) {
        let Some(c) = self.client.conversation(conversation) else { return };
        let result = c.send_text(text).await;
        let me = self.me.clone();
        let peer = self.tab_of(conversation).map(|t| t.title.clone()).unwrap_or_default();
        match result {
            Ok(()) => {
                if let Some(t) = self.tab_of(conversation) {
                    t.lines.push((me.clone(), text.to_string()));
                }
                self.record(&peer, &me, text);
            }
            Err(e) => {
                if let Some(t) = self.tab_of(conversation) {
                    t.note(format!("not delivered: {e}"));
                }
            }
        }
    }

    /// Opens (or shows) a conversation with `handle`.
    pub async fn open_chat(&mut self, handle: &str) {
        if let Some(i) = self.tabs.iter().position(|t| t.title.eq_ignore_ascii_case(handle)) {
            self.active = i;
            if self.tabs[i].conversation.is_some() {
                return;
            }
        } else {
            self.tabs.push(Tab::new(handle));
            self.active = self.tabs.len() - 1;
        }
        match self.client.start_conversation(handle).await {
            Ok(c) => {
                let i = self.active;
                self.tabs[i].conversation = Some(c.id);
                self.tabs[i].inviting = true;
            }
            Err(e) if e.code() == Some(217) => {
                let i = self.active;
                self.tabs[i].said_offline = true;
                self.tabs[i].note(format!("{handle} is offline: what you type is left as an offline message"));
            }
            Err(e) => {
                let i = self.active;
                self.tabs[i].note(format!("could not start the conversation: {e}"));
            }
        }
    }

    async fn send_typed(&mut self, text: String) {
        let i = self.active;
        if i == 0 {
            self.status = "Pick a contact (Enter) or /chat HANDLE first".into();
            return;
        }
        let peer = self.tabs[i].title.clone();
        if let Some(circle) = self.tabs[i].circle.clone() {
            let me = self.me.clone();
            match self.client.say_in_circle(&circle, &text).await {
                Ok(()) => {
                    self.tabs[i].lines.push((me.clone(), text.clone()));
                    self.record(&peer, &me, &text);
                }
                Err(e) => self.tabs[i].note(format!("not said: {e}")),
            }
            return;
        }
        match self.tabs[i].conversation {
            Some(id) => {
                let conversation = self.client.conversation(id);
                let alone = conversation.as_ref().is_some_and(|c| c.participants().is_empty());
                if !alone {
                    self.send_in(id, &text).await;
                    return;
                }
                self.tabs[i].queued.push(text);
                // The other side left: the next message calls them back in.
                if !self.tabs[i].inviting
                    && let Some(c) = conversation
                {
                    self.tabs[i].inviting = true;
                    if let Err(e) = c.invite(&peer).await {
                        self.tabs[i].inviting = false;
                        let queued = std::mem::take(&mut self.tabs[i].queued);
                        self.tabs[i].conversation = None;
                        c.leave().await;
                        if e.code() == Some(217) {
                            // Gone offline meanwhile: left for later instead.
                            for text in queued {
                                Box::pin(self.send_typed(text)).await;
                            }
                        } else {
                            self.tabs[i].note(format!("could not call {peer} back: {e}"));
                        }
                    }
                }
            }
            None => {
                // Not in a conversation: start one if they are online, else
                // leave an offline message.
                let online = self.client.state().contact(&peer).is_some_and(|c| c.state.is_visible());
                if online {
                    self.tabs[i].queued.push(text);
                    self.open_chat(&peer).await;
                } else {
                    match self.client.send_offline_message(&peer, &text).await {
                        Ok(()) => {
                            let me = self.me.clone();
                            self.tabs[i].lines.push((me.clone(), text.clone()));
                            self.tabs[i].note("left as an offline message");
                            self.record(&peer, &me, &text);
                        }
                        Err(e) => self.tabs[i].note(format!("could not leave an offline message: {e}")),
                    }
                }
            }
        }
    }

    async fn command(&mut self, line: &str) {
        let (cmd, arg) = line.split_once(' ').map(|(c, a)| (c, a.trim())).unwrap_or((line, ""));
        let i = self.active;
        let conversation = self.tabs[i].conversation.and_then(|id| self.client.conversation(id));
        let result: Result<String, String> = match cmd {
            "/help" => Ok(HELP.into()),
            "/quit" => {
                self.quit = true;
                Ok("bye".into())
            }
            "/chat" if !arg.is_empty() => {
                self.open_chat(arg).await;
                Ok(format!("chat with {arg}"))
            }
            "/status" => match parse_state(arg) {
                Some(s) => self
                    .client
                    .set_state(s)
                    .await
                    .map(|_| format!("you are {}", state_name(s)))
                    .map_err(|e| e.to_string()),
                None => Err("states: online busy away brb phone lunch idle hidden".into()),
            },
            "/name" if !arg.is_empty() => {
                self.client.set_name(arg).await.map(|_| format!("your name is now {arg}")).map_err(|e| e.to_string())
            }
            "/psm" => self
                .client
                .set_personal_message(arg)
                .await
                .map(|_| "personal message set".into())
                .map_err(|e| e.to_string()),
            "/add" if !arg.is_empty() => {
                self.client.add_contact(arg, arg).await.map(|_| format!("added {arg}")).map_err(|e| e.to_string())
            }
            "/remove" if !arg.is_empty() => {
                self.client.remove_contact(arg).await.map(|_| format!("removed {arg}")).map_err(|e| e.to_string())
            }
            "/block" if !arg.is_empty() => {
                self.client.block(arg).await.map(|_| format!("blocked {arg}")).map_err(|e| e.to_string())
            }
            "/allow" if !arg.is_empty() => {
                self.client.allow(arg).await.map(|_| format!("allowed {arg}")).map_err(|e| e.to_string())
            }
            "/invite" if !arg.is_empty() && self.tabs[i].circle.is_some() => {
                let circle = self.tabs[i].circle.clone().unwrap_or_default();
                self.client
                    .invite_to_circle(&circle, arg)
                    .await
                    .map(|_| format!("invited {arg} into the circle"))
                    .map_err(|e| e.to_string())
            }
            "/circle" if !arg.is_empty() => self
                .focus(arg)
                .client
                .create_circle(arg)
                .await
                .map(|_| format!("made the circle {arg}"))
                .map_err(|e| e.to_string()),
            "/join" if !arg.is_empty() => match self.circle_named(arg) {
                Some(c) => self
                    .focus(&c.name)
                    .client
                    .answer_circle(&c.id, true)
                    .await
                    .map(|_| format!("accepted the circle {}", c.name))
                    .map_err(|e| e.to_string()),
                None => Err(format!("no circle named {arg}")),
            },
            "/leave" => {
                let circle = match arg {
                    "" => self.tabs[i].circle.as_ref().and_then(|id| self.circle_named(id)),
                    name => self.circle_named(name),
                };
                match circle {
                    // An invitation is declined, a membership left.
                    Some(c) => {
                        let done = match c.invited_by {
                            Some(_) => self.client.answer_circle(&c.id, false).await,
                            None => self.client.leave_circle(&c.id).await,
                        };
                        if done.is_ok() {
                            self.tabs.retain(|t| t.circle.as_deref() != Some(c.id.as_str()));
                            self.active = self.active.min(self.tabs.len() - 1);
                        }
                        done.map(|_| format!("left the circle {}", c.name)).map_err(|e| e.to_string())
                    }
                    None => Err("not a circle: /leave NAME".into()),
                }
            }
            "/invite" if !arg.is_empty() => match conversation {
                Some(c) => c.invite(arg).await.map(|_| format!("invited {arg}")).map_err(|e| e.to_string()),
                None => Err("not in a conversation".into()),
            },
            "/send" if !arg.is_empty() => match conversation {
                Some(c) => match c.send_file(std::path::Path::new(arg)).await {
                    Ok(id) => {
                        let name = std::path::Path::new(arg)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        self.tabs[i].transfer = Some(TransferView { id, name: name.clone(), done: 0, total: 0 });
                        self.tabs[i].note(format!("offering {name}"));
                        Ok(format!("offering {name}"))
                    }
                    Err(e) => Err(e.to_string()),
                },
                None => Err("not in a conversation".into()),
            },
            "/accept" => match (conversation, self.tabs[i].offer.clone()) {
                (Some(c), Some((id, name, size))) => {
                    let dest = if arg.is_empty() { self.download_dir.join(&name) } else { PathBuf::from(arg) };
                    let _ = std::fs::create_dir_all(dest.parent().unwrap_or(&self.download_dir));
                    self.tabs[i].transfer = Some(TransferView { id, name, done: 0, total: size });
                    c.accept_file(id, &dest)
                        .await
                        .map(|_| format!("receiving into {}", dest.display()))
                        .map_err(|e| e.to_string())
                }
                _ => Err("no file offered here".into()),
            },
            "/decline" => match (conversation, self.tabs[i].offer.take()) {
                (Some(c), Some((id, name, _))) => {
                    c.decline_file(id).await.map(|_| format!("declined {name}")).map_err(|e| e.to_string())
                }
                _ => Err("no file offered here".into()),
            },
            "/cancel" => match (conversation, self.tabs[i].transfer.as_ref().map(|t| t.id)) {
                (Some(c), Some(id)) => {
                    c.cancel_transfer(id).await.map(|_| "cancelled".into()).map_err(|e| e.to_string())
                }
                _ => Err("no transfer running here".into()),
            },
            "/search" if !arg.is_empty() => {
                let found = self.history.as_ref().map(|h| h.search(arg)).unwrap_or_default();
                let n = found.len();
                let tab = &mut self.tabs[i];
                for e in found.iter().rev().take(20).rev() {
                    tab.note(format!("[history with {}] {}: {}", e.with, e.from, e.text));
                }
                Ok(format!("{n} lines match `{arg}`"))
            }
            "/close" if i > 0 => {
                if let Some(c) = conversation {
                    c.leave().await;
                }
                self.tabs.remove(i);
                self.active = 0;
                Ok("closed".into())
            }
            _ => Err(format!("unknown or incomplete command `{cmd}`; /help lists them")),
        };
        self.status = match result {
            Ok(s) => s,
            Err(e) => format!("error: {e}"),
        };
    }

    /// Takes in a key.
    pub async fn on_key(&mut self, key: KeyEvent) {
        // The question about someone who added you is answered with Alt and
        // a letter (or Esc, later): it may appear while you type, and plain
        // letters must neither be lost nor allow or block anyone.
        if let Some(handle) = self.prompts.front().cloned() {
            let alt = key.modifiers.contains(KeyModifiers::ALT);
            let answer = match key.code {
                KeyCode::Char('a') if alt => {
                    Some(self.client.allow(&handle).await.map(|_| format!("allowed {handle}")))
                }
                KeyCode::Char('b') if alt => {
                    Some(self.client.block(&handle).await.map(|_| format!("blocked {handle}")))
                }
                KeyCode::Char('l') if alt => Some(Ok(format!("{handle}: decide later"))),
                KeyCode::Esc => Some(Ok(format!("{handle}: decide later"))),
                _ => None,
            };
            if let Some(r) = answer {
                self.prompts.pop_front();
                self.status = r.unwrap_or_else(|e| format!("error: {e}"));
                return;
            }
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('n') if ctrl => self.active = (self.active + 1) % self.tabs.len(),
            KeyCode::Char('p') if ctrl => self.active = (self.active + self.tabs.len() - 1) % self.tabs.len(),
            KeyCode::Esc => self.active = 0,
            KeyCode::Up if self.active == 0 => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down if self.active == 0 => {
                self.selected = (self.selected + 1).min(self.client.contacts().len().saturating_sub(1))
            }
            KeyCode::Enter if self.input.is_empty() && self.active == 0 => {
                if let Some(c) = self.sorted_contacts().get(self.selected).cloned() {
                    self.open_chat(&c.handle).await;
                }
            }
            KeyCode::Enter => {
                let line = std::mem::take(&mut self.input);
                if line.starts_with('/') {
                    self.command(&line).await;
                } else if !line.is_empty() {
                    self.send_typed(line).await;
                }
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) => {
                self.input.push(c);
                let typing_due = self.last_typing_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(4));
                let conversation = self.tabs[self.active].conversation.and_then(|id| self.client.conversation(id));
                if self.active > 0
                    && !self.input.starts_with('/')
                    && typing_due
                    && let Some(conv) = conversation
                {
                    let _ = conv.send_typing(&self.me).await;
                    self.last_typing_sent = Some(Instant::now());
                }
            }
            _ => {}
        }
    }

    /// The forward list: online first (by state), then offline, by name.
    fn sorted_contacts(&self) -> Vec<client::Contact> {
        let mut contacts = self.client.contacts();
        let rank = |s: OnlineState| match s {
            OnlineState::Online => 0,
            OnlineState::Busy | OnlineState::OnThePhone => 1,
            OnlineState::Away | OnlineState::BeRightBack | OnlineState::Idle | OnlineState::OutToLunch => 2,
            _ => 3,
        };
        contacts.sort_by(|a, b| {
            rank(a.state)
                .cmp(&rank(b.state))
                .then(a.display_name().to_lowercase().cmp(&b.display_name().to_lowercase()))
        });
        contacts
    }

    /// Draws the app.
    pub fn render(&self, f: &mut Frame) {
        let [top, main, extra, input, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(2),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let state = self.client.state();
        let mut tabs = vec![Span::styled(
            format!(" {} ({}) ", state.friendly, state_name(state.my_state)),
            Style::new().add_modifier(Modifier::BOLD),
        )];
        for (i, t) in self.tabs.iter().enumerate() {
            let style = if i == self.active {
                Style::new().fg(Color::Black).bg(Color::Cyan)
            } else {
                Style::new().fg(Color::Cyan)
            };
            let typing = t.typing.as_ref().is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(6));
            tabs.push(Span::raw(" "));
            tabs.push(Span::styled(format!("[{}{}]", t.title, if typing { " ✎" } else { "" }), style));
        }
        f.render_widget(Paragraph::new(Line::from(tabs)), top);

        if self.active == 0 {
            self.render_contacts(f, main);
        } else {
            self.render_chat(f, main, extra);
        }
        let title = if self.active == 0 { "Command (/help)" } else { "Message" };
        f.render_widget(
            Paragraph::new(self.input.as_str()).block(Block::default().borders(Borders::ALL).title(title)),
            input,
        );
        f.render_widget(Paragraph::new(self.status.as_str()).style(Style::new().fg(Color::Gray)), status);

        if let Some(handle) = self.prompts.front() {
            let area = centered(f.area(), 60, 5);
            f.render_widget(Clear, area);
            let text = format!(
                "{handle} added you to their contact list.\n[Alt-a] allow  [Alt-b] block  [Alt-l] or [Esc] later"
            );
            f.render_widget(
                Paragraph::new(text).block(Block::default().borders(Borders::ALL).title("Someone added you")),
                area,
            );
        }
    }

    fn render_contacts(&self, f: &mut Frame, area: Rect) {
        let contacts = self.sorted_contacts();
        let mut items = Vec::new();
        let mut last_group = "";
        // The selection counts contacts, not the group headers between them.
        let mut selected_row = None;
        for (n, c) in contacts.iter().enumerate() {
            let group = match c.state {
                OnlineState::Online => "Online",
                OnlineState::Busy | OnlineState::OnThePhone => "Busy",
                OnlineState::Away | OnlineState::BeRightBack | OnlineState::Idle | OnlineState::OutToLunch => "Away",
                _ => "Offline",
            };
            if group != last_group {
                items.push(ListItem::new(Line::styled(
                    format!("— {group} —"),
                    Style::new().add_modifier(Modifier::BOLD),
                )));
                last_group = group;
            }
            if n == self.selected {
                selected_row = Some(items.len());
            }
            let psm =
                c.personal_message.as_deref().filter(|p| !p.is_empty()).map(|p| format!(" — {p}")).unwrap_or_default();
            let name = match c.display_name() {
                n if n.eq_ignore_ascii_case(&c.handle) || n.is_empty() => c.handle.clone(),
                n => format!("{n} <{}>", c.handle),
            };
            items.push(ListItem::new(Line::styled(
                format!("● {name} {}{psm}", state_name(c.state)),
                Style::new().fg(colour(c.state)),
            )));
        }
        let mut list_state = ListState::default();
        list_state.select(selected_row);
        let title = format!("Contacts ({})", contacts.len());
        let list = List::new(items)
            .block(Block::default().borders(Borders::ALL).title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        f.render_stateful_widget(list, area, &mut list_state);
    }

    fn render_chat(&self, f: &mut Frame, area: Rect, extra: Rect) {
        let tab = &self.tabs[self.active];
        let lines: Vec<Line> = tab
            .lines
            .iter()
            .map(|(from, text)| {
                if from == "*" {
                    Line::styled(format!("* {text}"), Style::new().fg(Color::DarkGray))
                } else {
                    let style =
                        if *from == self.me { Style::new().fg(Color::Cyan) } else { Style::new().fg(Color::Magenta) };
                    Line::from(vec![Span::styled(format!("{from}: "), style), Span::raw(text.clone())])
                }
            })
            .collect();
        let height = area.height.saturating_sub(2) as usize;
        let scroll = lines.len().saturating_sub(height) as u16;
        let offline = self.client.state().contact(&tab.title).is_none_or(|c| !c.state.is_visible());
        let here = tab.circle.as_ref().and_then(|id| self.client.circles().into_iter().find(|c| c.id == *id));
        let title = match (here, tab.conversation) {
            (Some(c), _) => format!("Circle {} ({} here)", c.name, c.roster.len().max(1)),
            (None, Some(_)) => format!("Conversation with {}", tab.title),
            (None, None) if offline => format!("{} (offline: messages are left for later)", tab.title),
            (None, None) => format!("{} (not connected)", tab.title),
        };
        f.render_widget(
            Paragraph::new(lines)
                .block(Block::default().borders(Borders::ALL).title(title))
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0)),
            area,
        );
        let [typing, gauge] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(extra);
        if let Some((who, at)) = &tab.typing
            && at.elapsed() < Duration::from_secs(6)
        {
            f.render_widget(
                Paragraph::new(format!("{who} is typing…")).style(Style::new().fg(Color::DarkGray)),
                typing,
            );
        }
        if let Some(t) = &tab.transfer {
            let ratio = if t.total > 0 { (t.done as f64 / t.total as f64).clamp(0.0, 1.0) } else { 0.0 };
            let label = format!("{} {} / {}", t.name, size_text(t.done), size_text(t.total));
            f.render_widget(
                Gauge::default().ratio(ratio).label(label).gauge_style(Style::new().fg(Color::Green)),
                gauge,
            );
        }
    }

    /// The titles of the open tabs, the contact list first.
    pub fn tab_titles(&self) -> Vec<String> {
        self.tabs.iter().map(|t| t.title.clone()).collect()
    }

    /// The text of the conversation tab with `title`, for tests and logs.
    pub fn transcript(&self, title: &str) -> Vec<String> {
        self.tabs
            .iter()
            .find(|t| t.title.eq_ignore_ascii_case(title))
            .map(|t| t.lines.iter().map(|(f, x)| format!("{f}: {x}")).collect())
            .unwrap_or_default()
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}
