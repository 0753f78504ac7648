//! The terminal messenger, driven with real key events on ratatui's test
//! backend, against the real server and a second real client: log in, open a
//! chat, send, receive, see typing, send a file, answer someone who added you.

mod common;

use std::time::Duration;

use client::{Client, ClientConfig, Event};
use common::*;
use msn::app::App;
use msnp::{Dialect, OnlineState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::UnboundedReceiver;

fn config(server: &TestServer, name: &str) -> ClientConfig {
    let mut c = ClientConfig::new(&server.dispatch.to_string(), &format!("{name}@example.com"), &format!("pw-{name}"));
    c.dialect = Dialect::Msnp11;
    c.login_url = Some(format!("http://{}/rdr/pprdr.asp", server.http.unwrap()));
    c
}

struct Screen {
    app: App,
    events: UnboundedReceiver<Event>,
    terminal: Terminal<TestBackend>,
}

impl Screen {
    async fn new(server: &TestServer, name: &str, downloads: &std::path::Path) -> Screen {
        let (client, events) = Client::sign_in(config(server, name)).await.unwrap();
        client.set_state(OnlineState::Online).await.unwrap();
        let mut app = App::new(client, None, downloads.to_path_buf());
        app.ask_pending();
        Screen { app, events, terminal: Terminal::new(TestBackend::new(110, 30)).unwrap() }
    }

    /// Feeds pending client events to the app and draws; returns the screen text.
    async fn draw(&mut self) -> String {
        while let Ok(e) = self.events.try_recv() {
            self.app.on_event(e).await;
        }
        self.terminal.draw(|f| self.app.render(f)).unwrap();
        let buffer = self.terminal.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    async fn key(&mut self, code: KeyCode) {
        self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE)).await;
    }

    async fn ctrl(&mut self, c: char) {
        self.app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)).await;
    }

    async fn alt(&mut self, c: char) {
        self.app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)).await;
    }

    async fn type_line(&mut self, line: &str) {
        for c in line.chars() {
            self.key(KeyCode::Char(c)).await;
        }
        self.key(KeyCode::Enter).await;
    }

    /// Draws until the screen shows `needle`: after each draw it waits for
    /// the next client event (events arrive asynchronously), for 10 s at most.
    async fn wait_for(&mut self, needle: &str) -> String {
        let mut text = String::new();
        let shown = self
            .wait_until(|_, drawn| {
                text = drawn.to_string();
                drawn.contains(needle)
            })
            .await;
        if shown {
            return text;
        }
        panic!("the screen never showed `{needle}`:\n{}", self.draw().await);
    }

    /// Waits until the tab `title` (shown or not) has a line containing `needle`.
    async fn wait_for_line(&mut self, title: &str, needle: &str) {
        if !self.wait_until(|app, _| app.transcript(title).iter().any(|l| l.contains(needle))).await {
            panic!("the tab {title} never showed `{needle}`: {:?}", self.app.transcript(title));
        }
    }

    /// Draws until `done` holds for the app and the screen text, waiting for
    /// the next client event between draws; false after 10 s.
    async fn wait_until(&mut self, mut done: impl FnMut(&App, &str) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.draw().await;
            if done(&self.app, &text) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => self.app.on_event(e).await,
                _ => return false,
            }
        }
    }
}

#[tokio::test]
async fn the_tui_logs_in_chats_shows_typing_and_sends_a_file() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    // Bob uses the library; Alice the terminal app.
    let (bob, mut bob_events) = Client::sign_in(config(&server, "bob")).await.unwrap();
    bob.set_state(OnlineState::Busy).await.unwrap();
    let mut alice = Screen::new(&server, "alice", downloads.path()).await;

    // Log in: the contact list is there; add Bob with a command.
    alice.type_line("/add bob@example.com").await;
    let screen = alice.wait_for("Busy").await;
    assert!(screen.contains("bob@example.com"), "{screen}");
    // Bob's client was told; he adds Alice back and she is asked about him.
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(Event::AddedBy { handle, .. }) = bob_events.recv().await {
                    return handle;
                }
            }
        })
        .await,
        Ok(h) if h == "alice@example.com"
    ));
    bob.add_contact("alice@example.com", "Alice").await.unwrap();
    alice.wait_for("Someone added you").await;
    // Letters typed while the question shows are typing, not answers.
    for c in "ab".chars() {
        alice.key(KeyCode::Char(c)).await;
    }
    let screen = alice.draw().await;
    assert!(screen.contains("Someone added you") && !screen.contains("allowed bob@example.com"), "{screen}");
    assert_eq!(alice.app.input, "ab");
    alice.key(KeyCode::Backspace).await;
    alice.key(KeyCode::Backspace).await;
    alice.alt('a').await;
    let screen = alice.draw().await;
    assert!(screen.contains("allowed bob@example.com"), "{screen}");

    // Open a chat from the contact list: Enter on the selected contact.
    alice.key(KeyCode::Enter).await;
    alice.wait_for("Conversation with bob@example.com").await;
    alice.wait_for("bob@example.com joined").await;
    let bob_chat = loop {
        match bob_events.recv().await {
            Some(Event::ConversationStarted { conversation, .. }) => break bob.conversation(conversation).unwrap(),
            Some(_) => continue,
            None => panic!("bob's session ended"),
        }
    };

    // Send: typing reaches Bob first, then the message.
    alice.type_line("hello from the terminal").await;
    alice.wait_for("alice@example.com: hello from the terminal").await;
    let mut saw_typing = false;
    loop {
        match bob_events.recv().await {
            Some(Event::Typing { from, .. }) if from == "alice@example.com" => saw_typing = true,
            Some(Event::Message { text, .. }) => {
                assert_eq!(text, "hello from the terminal");
                break;
            }
            _ => {}
        }
    }
    assert!(saw_typing, "Alice's keystrokes sent a typing notification");

    // Receive, and see Bob typing.
    bob_chat.send_typing("bob@example.com").await.unwrap();
    alice.wait_for("bob@example.com is typing").await;
    bob_chat.send_text("hi Alice!").await.unwrap();
    alice.wait_for("bob@example.com: hi Alice!").await;

    // Send a file with /send; Bob accepts; the tab shows it done.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "meeting at noon\n".repeat(5000)).unwrap();
    alice.type_line(&format!("/send {}", file.display())).await;
    alice.wait_for("offering notes.txt").await;
    let offer = loop {
        if let Some(Event::FileOffer { transfer, .. }) = bob_events.recv().await {
            break transfer;
        }
    };
    bob_chat.accept_file(offer, &dir.path().join("got.txt")).await.unwrap();
    alice.wait_for("transfer done").await;
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(dir.path().join("got.txt")).unwrap());

    // And a file offered to Alice: /accept puts it in her downloads.
    let back = dir.path().join("reply.txt");
    std::fs::write(&back, "thanks!").unwrap();
    bob_chat.send_file(&back).await.unwrap();
    alice.wait_for("offers reply.txt").await;
    alice.type_line("/accept").await;
    let got = downloads.path().join("reply.txt");
    let done = alice
        .wait_until(|app, _| {
            app.transcript("bob@example.com").iter().any(|l| l.contains("transfer done") && l.contains("reply.txt"))
        })
        .await;
    assert!(done, "the received file is shown as done");
    assert_eq!(std::fs::read(&got).unwrap(), b"thanks!");
    assert_eq!(alice.app.transcript("bob@example.com").iter().filter(|l| l.starts_with("bob@example.com:")).count(), 1);
}

/// The README's quick start with two terminals: Bob leaves Alice a message
/// while she is away; she signs in, reads it and answers in the same tab;
/// they go on across a second switchboard, each in one tab per person.
#[tokio::test]
async fn the_quick_start_offline_message_reply_and_second_switchboard() {
    let server = TestServer::start();
    users(&server, &["alice", "bob"]);
    let downloads = tempfile::tempdir().unwrap();
    let mut bob = Screen::new(&server, "bob", downloads.path()).await;
    bob.type_line("/add alice@example.com").await;
    bob.wait_for("alice@example.com").await;
    bob.type_line("/chat alice@example.com").await;
    bob.wait_for_line("alice@example.com", "alice@example.com is offline: what you type is left as an offline message")
        .await;
    bob.type_line("are you there?").await;
    bob.wait_for_line("alice@example.com", "left as an offline message").await;

    let mut alice = Screen::new(&server, "alice", downloads.path()).await;
    alice.wait_for_line("bob@example.com", "bob@example.com: are you there?").await;
    // Bob's tab follows Alice's presence.
    bob.wait_for_line("alice@example.com", "alice@example.com is online now: what you type starts a conversation")
        .await;
    // The list shows the name she signed in with, the handle beside it.
    bob.key(KeyCode::Esc).await;
    let list = bob.draw().await;
    assert!(list.contains("Alice <alice@example.com>"), "{list}");
    bob.ctrl('n').await;

    // Alice answers in the conversation the offline message opened.
    // She is asked about Bob, who added her, and allows him.
    alice.wait_for("Someone added you").await;
    alice.alt('a').await;
    alice.ctrl('n').await;
    alice.type_line("yes, just back").await;
    alice.wait_for_line("bob@example.com", "alice@example.com: yes, just back").await;
    assert!(!alice.app.transcript("bob@example.com").iter().any(|l| l.contains("not delivered")));
    bob.wait_for_line("alice@example.com", "alice@example.com: yes, just back").await;
    assert_eq!(bob.app.tab_titles().iter().filter(|t| *t == "alice@example.com").count(), 1, "one tab for Alice");

    // Bob answers: a real conversation now.
    bob.type_line("welcome back").await;
    alice.wait_for_line("bob@example.com", "bob@example.com: welcome back").await;

    // Alice's side starts a new switchboard: Bob's invitation lands in the
    // tab he has, and what he types goes there.
    bob.app.status.clear();
    let started = alice.app.client.start_conversation("bob@example.com").await.unwrap();
    assert!(bob.wait_until(|app, _| app.status.contains("alice@example.com started a conversation")).await);
    assert_eq!(bob.app.tab_titles().iter().filter(|t| *t == "alice@example.com").count(), 1, "still one tab for Alice");
    bob.type_line("same tab").await;
    let mut on_new = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !on_new {
        let Ok(Some(e)) = tokio::time::timeout_at(deadline, alice.events.recv()).await else { break };
        if let Event::Message { conversation, text, .. } = &e
            && *conversation == started.id
            && text == "same tab"
        {
            on_new = true;
        }
        alice.app.on_event(e).await;
    }
    assert!(on_new, "Bob's message reached Alice through the new switchboard");

    // Alice closes the window; Bob's next message calls her back in.
    started.leave().await;
    bob.wait_for_line("alice@example.com", "alice@example.com left").await;
    bob.type_line("come back").await;
    bob.wait_for_line("alice@example.com", "bob@example.com: come back").await;
    alice.wait_for_line("bob@example.com", "bob@example.com: come back").await;
    assert_eq!(bob.app.tab_titles().iter().filter(|t| *t == "alice@example.com").count(), 1);
    assert_eq!(alice.app.tab_titles().iter().filter(|t| *t == "bob@example.com").count(), 1);
}
