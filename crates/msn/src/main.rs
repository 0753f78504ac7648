//! `msn`: a terminal MSN Messenger, and commands for scripts and bots.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use client::transfer::Method;
use client::{Client, Event};
use msn::app::{App, parse_state};
use msn::history::History;
use msn::settings::{self, Given, Settings};
use msnp::OnlineState;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Parser)]
#[command(name = "msn", version, about = "A terminal MSN Messenger")]
struct Cli {
    /// The server (dispatch), HOST:PORT.
    #[arg(long, global = true, env = "MSN_SERVER")]
    server: Option<String>,
    /// Your account (e-mail address).
    #[arg(long, global = true, env = "MSN_ACCOUNT")]
    account: Option<String>,
    /// The Passport nexus for MSNP8+ (e.g. https://host/rdr/pprdr.asp).
    #[arg(long, global = true, env = "MSN_LOGIN_URL")]
    login_url: Option<String>,
    /// The protocol version to speak, 2-18 or 21 [default: 11]; 15+ sign in with single sign-on and read the lists from the address book; 16+ stay signed in on several machines at once; 21 chats without switchboards.
    #[arg(long, global = true)]
    dialect: Option<u8>,
    /// A CA certificate (PEM) to trust for the Passport service.
    #[arg(long, global = true)]
    trust_ca: Option<PathBuf>,
    /// Speak MSNP over TLS: for a server's --msnp-tls-listen port.
    #[arg(long, global = true)]
    tls: bool,
    /// Speak MSNP through an HTTP polling gateway (http(s)://HOST[:PORT]),
    /// for networks where only web traffic passes.
    #[arg(long, global = true, env = "MSN_HTTP_GATEWAY")]
    http_gateway: Option<String>,
    /// The config file [default: ~/.config/msn/config.toml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Where history and the list cache are kept [default: ~/.local/share/msn].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Read the password as one line from standard input.
    #[arg(long, global = true)]
    password_stdin: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The interactive messenger (the default).
    Chat,
    /// Sends a message (left as an offline message if they are offline).
    Send { to: String, text: String },
    /// Sends a file and waits until it has arrived.
    SendFile {
        to: String,
        path: PathBuf,
        /// msnftp (direct connection) or p2p (through the switchboard) [default: p2p from MSNP9].
        #[arg(long)]
        method: Option<String>,
    },
    /// Sets your status and stays signed in (until interrupted or --for).
    Status {
        state: String,
        #[arg(long = "for")]
        seconds: Option<u64>,
    },
    /// Lists your contacts and their status.
    Contacts {
        #[arg(long)]
        json: bool,
    },
    /// Adds a contact.
    Add {
        handle: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Removes a contact.
    Remove { handle: String },
    /// Blocks someone.
    Block { handle: String },
    /// Allows someone.
    Allow { handle: String },
    /// Prints every event as one JSON object per line.
    Listen {
        /// Stop after this many events.
        #[arg(long)]
        count: Option<usize>,
        /// Accept offered files into this directory.
        #[arg(long)]
        accept_files: Option<PathBuf>,
    },
    /// Searches the local conversation history.
    History { query: String },
}

fn given(cli: &Cli) -> Given {
    Given {
        server: cli.server.clone(),
        account: cli.account.clone(),
        dialect: cli.dialect,
        login_url: cli.login_url.clone(),
        trust_ca: cli.trust_ca.clone(),
        tls: cli.tls,
        http_gateway: cli.http_gateway.clone(),
        data_dir: cli.data_dir.clone(),
        config: cli.config.clone(),
        password_stdin: cli.password_stdin,
    }
}

async fn sign_in(settings: &Settings, given: &Given) -> anyhow::Result<(Client, UnboundedReceiver<Event>)> {
    let password = settings::password(given)?;
    let (client, events) = Client::sign_in(settings.client_config(password))
        .await
        .with_context(|| format!("cannot sign in to {} as {}", settings.server, settings.account))?;
    Ok((client, events))
}

async fn wait_for<T>(
    events: &mut UnboundedReceiver<Event>,
    secs: u64,
    mut pick: impl FnMut(&Event) -> Option<anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(e) = events.recv().await {
            if let Some(r) = pick(&e) {
                return r;
            }
        }
        bail!("the session ended")
    })
    .await
    .context("timed out")?
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let given = given(&cli);
    let settings = settings::resolve(&given)?;
    match cli.command.unwrap_or(Command::Chat) {
        Command::History { query } => {
            for e in History::new(&settings.data_dir, &settings.account).search(&query) {
                println!("{}\t{}\t{}: {}", e.time, e.with, e.from, e.text);
            }
            Ok(())
        }
        Command::Chat => interactive(&settings, &given).await,
        command => {
            let (client, mut events) = sign_in(&settings, &given).await?;
            let result = one_shot(command, &settings, &client, &mut events).await;
            client.sign_out().await;
            result
        }
    }
}

async fn one_shot(
    command: Command,
    settings: &Settings,
    client: &Client,
    events: &mut UnboundedReceiver<Event>,
) -> anyhow::Result<()> {
    let history = History::new(&settings.data_dir, &settings.account);
    match command {
        Command::Send { to, text } => {
            client.set_state(OnlineState::Online).await?;
            match client.start_conversation(&to).await {
                Ok(chat) => {
                    wait_for(events, 30, |e| matches!(e, Event::Joined { .. }).then_some(Ok(()))).await?;
                    chat.send_text(&text).await?;
                    chat.leave().await;
                    println!("sent to {to}");
                }
                Err(e) if e.code() == Some(217) => {
                    client.send_offline_message(&to, &text).await?;
                    println!("{to} is offline: left an offline message");
                }
                Err(e) => return Err(e.into()),
            }
            let _ = history.record(&to, &settings.account, &text);
        }
        Command::SendFile { to, path, method } => {
            let method = match method.as_deref() {
                None => None,
                Some("msnftp") => Some(Method::Msnftp),
                Some("p2p") => Some(Method::P2p),
                Some(m) => bail!("unknown method {m} (msnftp, p2p)"),
            };
            client.set_state(OnlineState::Online).await?;
            let chat = client.start_conversation(&to).await?;
            wait_for(events, 30, |e| matches!(e, Event::Joined { .. }).then_some(Ok(()))).await?;
            let id = chat.send_file_with(&path, method).await?;
            eprintln!("offered {} to {to}", path.display());
            wait_for(events, 3600, |e| match e {
                Event::FileProgress { transfer, done, total } if *transfer == id => {
                    eprint!("\r{done}/{total} bytes");
                    let _ = std::io::stderr().flush();
                    None
                }
                Event::FileDone { transfer, sha256, .. } if *transfer == id => {
                    eprintln!();
                    println!("sent {} (sha256 {sha256})", path.display());
                    Some(Ok(()))
                }
                Event::FileFailed { transfer, reason } if *transfer == id => Some(Err(anyhow::anyhow!("{reason}"))),
                Event::FileFallback { transfer, reason } if *transfer == id => {
                    eprintln!("\n{reason}");
                    None
                }
                _ => None,
            })
            .await?;
            chat.leave().await;
        }
        Command::Status { state, seconds } => {
            let s = parse_state(&state).context("states: online busy away brb phone lunch idle hidden")?;
            client.set_state(s).await?;
            println!("{} is {state}", settings.account);
            match seconds {
                Some(n) => tokio::time::sleep(Duration::from_secs(n)).await,
                None => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        Command::Contacts { json } => {
            // Go online (hidden) to hear who is online.
            client.set_state(OnlineState::Hidden).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            for c in client.contacts() {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"handle": c.handle, "name": c.friendly, "state": c.state.code(), "personal_message": c.personal_message, "groups": c.groups})
                    );
                } else {
                    println!("{:<30} {:<4} {}", c.handle, c.state.code(), c.friendly);
                }
            }
        }
        Command::Add { handle, name } => {
            client.add_contact(&handle, name.as_deref().unwrap_or(&handle)).await?;
            println!("added {handle}");
        }
        Command::Remove { handle } => {
            client.remove_contact(&handle).await?;
            println!("removed {handle}");
        }
        Command::Block { handle } => {
            client.block(&handle).await?;
            println!("blocked {handle}");
        }
        Command::Allow { handle } => {
            client.allow(&handle).await?;
            println!("allowed {handle}");
        }
        Command::Listen { count, accept_files } => {
            client.set_state(OnlineState::Online).await?;
            let mut printed = 0;
            let stdout = std::io::stdout();
            loop {
                let event = tokio::select! {
                    e = events.recv() => match e { Some(e) => e, None => break },
                    _ = tokio::signal::ctrl_c() => break,
                };
                if let (Some(dir), Event::FileOffer { conversation, transfer, name, .. }) = (&accept_files, &event)
                    && let Some(c) = client.conversation(*conversation)
                {
                    let _ = std::fs::create_dir_all(dir);
                    let _ = c.accept_file(*transfer, &dir.join(name)).await;
                }
                if let Event::Message { from, text, .. } | Event::OfflineMessage { from, text, .. } = &event {
                    let _ = history.record(from, from, text);
                }
                let mut out = stdout.lock();
                let _ = writeln!(out, "{}", serde_json::to_string(&event)?);
                let _ = out.flush();
                printed += 1;
                if count.is_some_and(|n| printed >= n) || matches!(event, Event::SignedOut { .. }) {
                    break;
                }
            }
        }
        Command::Chat | Command::History { .. } => unreachable!("handled by the caller"),
    }
    Ok(())
}

/// The terminal messenger: raw mode, the alternate screen, and a loop over
/// keys and client events.
async fn interactive(settings: &Settings, given: &Given) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
    let (client, mut events) = sign_in(settings, given).await?;
    client.set_state(OnlineState::Online).await?;
    let history = History::new(&settings.data_dir, &settings.account);
    let mut app = App::new(client.clone(), Some(history), settings.data_dir.join("downloads"));
    app.ask_pending();
    let (keys_tx, mut keys) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if let TermEvent::Key(k) = e
                && k.kind == KeyEventKind::Press
                && keys_tx.send(k).is_err()
            {
                break;
            }
        }
    });
    let mut terminal = ratatui::init();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let result: anyhow::Result<()> = async {
        while !app.quit {
            terminal.draw(|f| app.render(f))?;
            tokio::select! {
                Some(k) = keys.recv() => app.on_key(k).await,
                Some(e) = events.recv() => app.on_event(e).await,
                _ = tick.tick() => {}
            }
        }
        Ok(())
    }
    .await;
    ratatui::restore();
    client.sign_out().await;
    result
}
