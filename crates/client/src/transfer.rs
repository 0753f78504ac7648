//! File transfer, both ways a conversation can carry it:
//!
//! - **MSNFTP** (MSN 3-5): a `text/x-msmsgsinvite` invitation through the
//!   switchboard, then a direct TCP connection between the clients.
//! - **MSNSLP/P2P** (MSNP9+): SLP messages and the data in binary P2P
//!   packets through the switchboard itself, so no direct connection is
//!   needed.
//!
//! When the receiver cannot connect to the sender directly, it says so and
//! both sides switch to P2P where the dialect has it. Received files are
//! checked against the SHA-256 the sender announced (an extra field other
//! clients ignore).
//!
//! Over 700 lines on purpose: MSNFTP and P2P share one transfer table, one
//! fallback from the first to the second and one progress and checksum path.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use msnp::mime::MimeMessage;
use msnp::msnftp::{BlockHeader, Command, MAX_BLOCK, RECEIVED_OK};
use msnp::p2p::{self, FILE_TRANSFER_GUID, FLAGS_FILE_DATA, Header, Packet, SlpMessage};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

pub use crate::conversation::Method;
use crate::event::Event;
use crate::shared::Shared;

/// The `Application-GUID` of an MSNFTP file invitation.
const MSNFTP_GUID: &str = "{5D3E02AB-6190-11d3-BBBB-00C04F795683}";
/// The largest SLP message we reassemble from a peer.
const MAX_SLP: u64 = 64 * 1024;
/// Progress is reported about this often.
const PROGRESS_STEP: u64 = 256 * 1024;

/// What the conversation task must do for the transfers.
pub(crate) enum Action {
    /// Send an invitation message (`MSG N`).
    Invitation(Vec<u8>),
    /// Queue a P2P packet (`MSG D`, in order, one at a time).
    P2p(Packet),
    Emit(Event),
}

/// Reports from the tasks that run direct connections.
pub(crate) enum Report {
    /// The receiver could not connect to the sender.
    DirectFailed { transfer: u64, reason: String },
}

enum Transfer {
    FtpOut {
        cookie: String,
        path: PathBuf,
        size: u64,
        cancel: Option<oneshot::Sender<Stop>>,
    },
    FtpIn {
        cookie: String,
        name: String,
        size: u64,
        sha: Option<String>,
        dest: Option<PathBuf>,
        cancel: Option<oneshot::Sender<Stop>>,
    },
    P2pOut {
        session: u32,
        invite: SlpMessage,
        path: PathBuf,
        size: u64,
        file: Option<std::fs::File>,
        sent: u64,
        data_id: u32,
    },
    P2pIn {
        session: u32,
        invite: SlpMessage,
        size: u64,
        sha: Option<String>,
        dest: Option<PathBuf>,
        file: Option<std::fs::File>,
        received: u64,
        reported: u64,
    },
}

/// A transfer the receiver accepted over MSNFTP whose direct connection
/// failed: the P2P offer the sender makes instead is taken automatically.
struct Fallback {
    transfer: u64,
    name: String,
    size: u64,
    dest: PathBuf,
}

/// The transfers of one conversation.
pub(crate) struct Transfers {
    shared: Arc<Shared>,
    conversation: u64,
    me: String,
    items: HashMap<u64, (String, Transfer)>,
    slp_in: HashMap<u32, (u64, Vec<u8>)>,
    next_message_id: u32,
    fallbacks: Vec<(String, Fallback)>,
    reports: mpsc::UnboundedSender<Report>,
    local_ip: Option<std::net::IpAddr>,
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn guid() -> String {
    let b: [u8; 16] = rand::thread_rng().r#gen();
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{{{}-{}-{}-{}-{}}}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn invitation(fields: &[(&str, String)]) -> Vec<u8> {
    let mut body = String::new();
    for (n, v) in fields {
        body.push_str(&format!("{n}: {v}\r\n"));
    }
    body.push_str("\r\n");
    MimeMessage::new("text/x-msmsgsinvite; charset=UTF-8").with_body(body.into_bytes()).to_bytes()
}

impl Transfers {
    pub fn new(
        shared: Arc<Shared>,
        conversation: u64,
        me: String,
        reports: mpsc::UnboundedSender<Report>,
        local_ip: Option<std::net::IpAddr>,
    ) -> Transfers {
        Transfers {
            shared,
            conversation,
            me,
            items: HashMap::new(),
            slp_in: HashMap::new(),
            next_message_id: rand::thread_rng().gen_range(1000..u32::MAX / 2),
            fallbacks: Vec::new(),
            reports,
            local_ip,
        }
    }

    fn message_id(&mut self) -> u32 {
        self.next_message_id = self.next_message_id.wrapping_add(1);
        self.next_message_id
    }

    fn failed(&mut self, transfer: u64, reason: impl Into<String>) -> Action {
        self.items.remove(&transfer);
        Action::Emit(Event::FileFailed { transfer, reason: reason.into() })
    }

    /// Offers a file to `peer`.
    pub fn send(&mut self, transfer: u64, peer: &str, path: &Path, method: Method) -> std::io::Result<Vec<Action>> {
        let size = std::fs::metadata(path)?.len();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
        let sha = sha256_file(path)?;
        match method {
            Method::Msnftp => {
                let cookie = rand::thread_rng().gen_range(100_000u32..u32::MAX / 2).to_string();
                let payload = invitation(&[
                    ("Application-Name", "File Transfer".into()),
                    ("Application-GUID", MSNFTP_GUID.into()),
                    ("Invitation-Command", "INVITE".into()),
                    ("Invitation-Cookie", cookie.clone()),
                    ("Application-File", name.clone()),
                    ("Application-FileSize", size.to_string()),
                    ("X-SHA256", sha),
                ]);
                self.items.insert(
                    transfer,
                    (peer.to_string(), Transfer::FtpOut { cookie, path: path.to_path_buf(), size, cancel: None }),
                );
                Ok(vec![Action::Invitation(payload)])
            }
            Method::P2p => {
                let session: u32 = rand::thread_rng().gen_range(1..u32::MAX);
                let context = msnp::base64::encode(&p2p::file_context(&name, size));
                let body = format!(
                    "EUF-GUID: {FILE_TRANSFER_GUID}\r\nSessionID: {session}\r\nAppID: 2\r\nContext: {context}\r\nX-SHA256: {sha}\r\n\r\n"
                );
                let invite = SlpMessage::request(
                    "INVITE",
                    peer,
                    &self.me,
                    &guid(),
                    &guid(),
                    "application/x-msnmsgr-sessionreqbody",
                    &body,
                );
                let id = self.message_id();
                let packets = p2p::chunks(0, id, 0, rand::random(), 0, &invite.to_bytes());
                self.items.insert(
                    transfer,
                    (
                        peer.to_string(),
                        Transfer::P2pOut {
                            session,
                            invite,
                            path: path.to_path_buf(),
                            size,
                            file: None,
                            sent: 0,
                            data_id: 0,
                        },
                    ),
                );
                Ok(packets.into_iter().map(Action::P2p).collect())
            }
        }
    }

    /// Accepts an offered file into `dest`.
    pub fn accept(&mut self, transfer: u64, dest: PathBuf) -> Vec<Action> {
        match self.items.get_mut(&transfer) {
            Some((_, Transfer::FtpIn { cookie, dest: d, .. })) => {
                *d = Some(dest);
                vec![Action::Invitation(invitation(&[
                    ("Invitation-Command", "ACCEPT".into()),
                    ("Invitation-Cookie", cookie.clone()),
                    ("Launch-Application", "FALSE".into()),
                    ("Request-Data", "IP-Address:".into()),
                ]))]
            }
            Some((peer, Transfer::P2pIn { session, invite, dest: d, file, .. })) => {
                let opened = std::fs::File::create(&dest);
                let peer = peer.clone();
                match opened {
                    Ok(f) => {
                        *file = Some(f);
                        *d = Some(dest);
                        let ok = SlpMessage::response(
                            "200 OK",
                            invite,
                            "application/x-msnmsgr-sessionreqbody",
                            &format!("SessionID: {session}\r\n\r\n"),
                        );
                        let _ = peer;
                        self.slp_packets(&ok)
                    }
                    Err(e) => {
                        let mut actions = self.decline(transfer);
                        actions.push(Action::Emit(Event::FileFailed {
                            transfer,
                            reason: format!("cannot write {}: {e}", dest.display()),
                        }));
                        actions
                    }
                }
            }
            _ => vec![Action::Emit(Event::FileFailed { transfer, reason: "no such offer".into() })],
        }
    }

    /// Declines an offered file.
    pub fn decline(&mut self, transfer: u64) -> Vec<Action> {
        match self.items.remove(&transfer) {
            Some((_, Transfer::FtpIn { cookie, .. })) => vec![Action::Invitation(invitation(&[
                ("Invitation-Command", "CANCEL".into()),
                ("Invitation-Cookie", cookie),
                ("Cancel-Code", "REJECT".into()),
            ]))],
            Some((_, Transfer::P2pIn { session, invite, .. })) => self.slp_decline(&invite, session),
            _ => Vec::new(),
        }
    }

    /// An SLP message as P2P packets on the signalling session (0).
    fn slp_packets(&mut self, message: &SlpMessage) -> Vec<Action> {
        let id = self.message_id();
        p2p::chunks(0, id, 0, rand::random(), 0, &message.to_bytes()).into_iter().map(Action::P2p).collect()
    }

    /// The `BYE` that ends an MSNSLP session.
    fn slp_bye(&mut self, peer: &str, invite: &SlpMessage) -> Vec<Action> {
        let bye = SlpMessage::request(
            "BYE",
            peer,
            &self.me,
            &guid(),
            invite.header("Call-ID").unwrap_or(""),
            "application/x-msnmsgr-sessionclosebody",
            "\r\n",
        );
        self.slp_packets(&bye)
    }

    /// `603 Decline` to an MSNSLP session invitation.
    fn slp_decline(&mut self, invite: &SlpMessage, session: u32) -> Vec<Action> {
        let no = SlpMessage::response(
            "603 Decline",
            invite,
            "application/x-msnmsgr-sessionreqbody",
            &format!("SessionID: {session}\r\n\r\n"),
        );
        self.slp_packets(&no)
    }

    /// Stops a transfer in progress (or withdraws an offer).
    pub fn cancel(&mut self, transfer: u64) -> Vec<Action> {
        let Some((peer, t)) = self.items.remove(&transfer) else { return Vec::new() };
        let mut actions = Vec::new();
        match t {
            Transfer::FtpOut { cookie, cancel, .. } | Transfer::FtpIn { cookie, cancel, .. } => {
                // A running connection reports its own end; an offer does not run.
                if !stop(cancel) {
                    actions.push(Action::Emit(Event::FileFailed { transfer, reason: "cancelled".into() }));
                }
                actions.push(Action::Invitation(invitation(&[
                    ("Invitation-Command", "CANCEL".into()),
                    ("Invitation-Cookie", cookie),
                    ("Cancel-Code", "OUTBANDCANCEL".into()),
                ])));
            }
            Transfer::P2pOut { invite, .. } | Transfer::P2pIn { invite, .. } => {
                actions.push(Action::Emit(Event::FileFailed { transfer, reason: "cancelled".into() }));
                actions.extend(self.slp_bye(&peer, &invite));
            }
        }
        actions
    }

    /// An MSNFTP invitation message from `from`.
    pub fn on_invitation(&mut self, from: &str, fields: &MimeMessage) -> Vec<Action> {
        let cookie = fields.header("Invitation-Cookie").unwrap_or("").to_string();
        let found = self.items.iter().find_map(|(id, (_, t))| match t {
            Transfer::FtpOut { cookie: c, .. } | Transfer::FtpIn { cookie: c, .. } if *c == cookie => Some(*id),
            _ => None,
        });
        match (fields.header("Invitation-Command"), found) {
            // NetMeeting, voice, remote assistance...: not something we run.
            (Some("INVITE"), None)
                if !fields.header("Application-GUID").is_some_and(|g| g.eq_ignore_ascii_case(MSNFTP_GUID)) =>
            {
                vec![Action::Invitation(invitation(&[
                    ("Invitation-Command", "CANCEL".into()),
                    ("Invitation-Cookie", cookie),
                    ("Cancel-Code", "REJECT_NOT_INSTALLED".into()),
                ]))]
            }
            (Some("INVITE"), None) => {
                let size: u64 = fields.header("Application-FileSize").and_then(|s| s.parse().ok()).unwrap_or(0);
                let name = fields.header("Application-File").unwrap_or("file").to_string();
                let transfer = self.shared.fresh_id();
                let sha = fields.header("X-SHA256").map(str::to_string);
                self.items.insert(
                    transfer,
                    (
                        from.to_string(),
                        Transfer::FtpIn { cookie, name: name.clone(), size, sha, dest: None, cancel: None },
                    ),
                );
                vec![Action::Emit(Event::FileOffer {
                    conversation: self.conversation,
                    transfer,
                    from: from.to_string(),
                    name,
                    size,
                    method: "msnftp".into(),
                })]
            }
            (Some("ACCEPT"), Some(transfer)) => self.on_accept(transfer, fields),
            (Some("CANCEL"), Some(transfer)) => {
                let code = fields.header("Cancel-Code").unwrap_or("CANCEL").to_string();
                let (peer, t) = self.items.remove(&transfer).expect("found");
                match t {
                    Transfer::FtpOut { path, cancel, .. }
                        if matches!(code.as_str(), "FAIL" | "FTTIMEOUT") && self.shared.dialect.has_p2p() =>
                    {
                        // The listener is no longer needed; its task ends quietly.
                        if let Some(c) = cancel {
                            let _ = c.send(Stop::Quietly);
                        }
                        let mut actions = vec![Action::Emit(Event::FileFallback {
                            transfer,
                            reason: format!(
                                "{peer} could not connect to us directly; sending through the switchboard instead"
                            ),
                        })];
                        match self.send(transfer, &peer, &path, Method::P2p) {
                            Ok(more) => actions.extend(more),
                            Err(e) => actions.push(Action::Emit(Event::FileFailed { transfer, reason: e.to_string() })),
                        }
                        actions
                    }
                    Transfer::FtpOut { cancel, .. } | Transfer::FtpIn { cancel, .. } => {
                        // A running connection reports its own end.
                        if stop(cancel) {
                            return Vec::new();
                        }
                        let reason = if code == "REJECT" {
                            "declined by the receiver".to_string()
                        } else {
                            format!("cancelled by the peer ({code})")
                        };
                        vec![Action::Emit(Event::FileFailed { transfer, reason })]
                    }
                    other => {
                        self.items.insert(transfer, (peer, other));
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    /// An MSNFTP ACCEPT: from the receiver (we listen and tell it where), or
    /// from the sender (we connect).
    fn on_accept(&mut self, transfer: u64, fields: &MimeMessage) -> Vec<Action> {
        let shared = self.shared.clone();
        let me = self.me.clone();
        let Some((peer, t)) = self.items.get_mut(&transfer) else { return Vec::new() };
        match t {
            Transfer::FtpOut { cookie, path, size, cancel, .. } if cancel.is_none() => {
                let ip = self
                    .shared
                    .config
                    .transfer_address
                    .or(self.local_ip)
                    .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
                let advertised = self.shared.config.transfer_advertise.unwrap_or(ip);
                let listener = match std::net::TcpListener::bind(SocketAddr::new(ip, 0)).and_then(|l| {
                    l.set_nonblocking(true)?;
                    TcpListener::from_std(l)
                }) {
                    Ok(l) => l,
                    Err(e) => return vec![self.failed(transfer, format!("cannot listen for the transfer: {e}"))],
                };
                let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
                let auth: u32 = rand::thread_rng().gen_range(1..i32::MAX as u32);
                let (tx, rx) = oneshot::channel();
                *cancel = Some(tx);
                tokio::spawn(msnftp_send(shared, transfer, listener, path.clone(), *size, peer.clone(), auth, rx));
                vec![Action::Invitation(invitation(&[
                    ("Invitation-Command", "ACCEPT".into()),
                    ("Invitation-Cookie", cookie.clone()),
                    ("IP-Address", advertised.to_string()),
                    ("Port", port.to_string()),
                    ("AuthCookie", auth.to_string()),
                    ("Launch-Application", "FALSE".into()),
                    ("Request-Data", "IP-Address:".into()),
                ]))]
            }
            Transfer::FtpIn { size, sha, dest: Some(dest), cancel, .. } if cancel.is_none() => {
                let (Some(ip), Some(port), Some(auth)) =
                    (fields.header("IP-Address"), fields.header("Port"), fields.header("AuthCookie"))
                else {
                    return Vec::new();
                };
                let address = format!("{ip}:{port}");
                let (tx, rx) = oneshot::channel();
                *cancel = Some(tx);
                tokio::spawn(msnftp_receive(
                    shared,
                    transfer,
                    address,
                    me,
                    auth.to_string(),
                    dest.clone(),
                    *size,
                    sha.clone(),
                    rx,
                    self.reports.clone(),
                ));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The direct connection of an accepted MSNFTP transfer failed.
    pub fn direct_failed(&mut self, transfer: u64, reason: String) -> Vec<Action> {
        let Some((peer, Transfer::FtpIn { cookie, name, size, dest, .. })) = self.items.remove(&transfer) else {
            return Vec::new();
        };
        let event = match dest {
            Some(dest) if self.shared.dialect.has_p2p() => {
                // The sender will offer it again through the switchboard;
                // that offer is taken without asking the user twice.
                self.fallbacks.push((peer, Fallback { transfer, name, size, dest }));
                Event::FileFallback {
                    transfer,
                    reason: format!("{reason}; asking the sender to send through the switchboard"),
                }
            }
            _ => Event::FileFailed {
                transfer,
                reason: format!("{reason}; this dialect has no switchboard path for files"),
            },
        };
        vec![
            Action::Emit(event),
            Action::Invitation(invitation(&[
                ("Invitation-Command", "CANCEL".into()),
                ("Invitation-Cookie", cookie),
                ("Cancel-Code", "FAIL".into()),
            ])),
        ]
    }

    /// A P2P packet addressed to us.
    pub fn on_p2p(&mut self, from: &str, body: &[u8]) -> Vec<Action> {
        let Ok(packet) = Packet::parse(body) else { return Vec::new() };
        let h = packet.header;
        if h.flags & p2p::FLAG_ACK != 0 {
            return self.on_ack(&h);
        }
        if h.session_id != 0 {
            return self.on_data(from, &packet);
        }
        // An SLP message, perhaps in several chunks.
        if h.total > MAX_SLP {
            return Vec::new();
        }
        let entry = self.slp_in.entry(h.id).or_insert_with(|| (h.total, vec![0u8; h.total as usize]));
        let end = (h.offset + h.length as u64) as usize;
        if end > entry.1.len() {
            self.slp_in.remove(&h.id);
            return Vec::new();
        }
        entry.1[h.offset as usize..end].copy_from_slice(&packet.payload);
        if !h.completes() {
            return Vec::new();
        }
        let (_, bytes) = self.slp_in.remove(&h.id).expect("present");
        let mut actions = vec![Action::P2p(p2p::ack(&h, self.message_id()))];
        if let Some(slp) = SlpMessage::parse(&bytes) {
            actions.extend(self.on_slp(from, slp));
        }
        actions
    }

    fn on_slp(&mut self, from: &str, slp: SlpMessage) -> Vec<Action> {
        let call_id = slp.header("Call-ID").unwrap_or("").to_string();
        let find = |items: &HashMap<u64, (String, Transfer)>| {
            items.iter().find_map(|(id, (_, t))| match t {
                Transfer::P2pOut { invite, .. } | Transfer::P2pIn { invite, .. }
                    if invite.header("Call-ID") == Some(call_id.as_str()) =>
                {
                    Some(*id)
                }
                _ => None,
            })
        };
        match slp.method() {
            "INVITE" if slp.header("Content-Type") == Some("application/x-msnmsgr-transreqbody") => {
                // A direct-connection offer: we stay on the switchboard.
                let nonce = guid();
                let body = format!("Bridge: TCPv1\r\nListening: false\r\nNonce: {nonce}\r\n\r\n");
                let ok = SlpMessage::response("200 OK", &slp, "application/x-msnmsgr-transrespbody", &body);
                self.slp_packets(&ok)
            }
            "INVITE" if slp.body_field("EUF-GUID").is_some_and(|g| g.eq_ignore_ascii_case(FILE_TRANSFER_GUID)) => {
                let session: u32 = slp.body_field("SessionID").and_then(|s| s.parse().ok()).unwrap_or(0);
                let context =
                    slp.body_field("Context").and_then(msnp::base64::decode).and_then(|c| p2p::parse_file_context(&c));
                let Some((name, size)) = context else { return Vec::new() };
                let sha = slp.body_field("X-SHA256").map(str::to_string);
                let incoming = Transfer::P2pIn {
                    session,
                    invite: slp,
                    size,
                    sha,
                    dest: None,
                    file: None,
                    received: 0,
                    reported: 0,
                };
                // The same file we asked for over MSNFTP and are now getting
                // over the switchboard: accept it where that one was going.
                let pos = self
                    .fallbacks
                    .iter()
                    .position(|(p, f)| p.eq_ignore_ascii_case(from) && f.name == name && f.size == size);
                if let Some(i) = pos {
                    let (_, f) = self.fallbacks.remove(i);
                    self.items.insert(f.transfer, (from.to_string(), incoming));
                    return self.accept(f.transfer, f.dest);
                }
                let transfer = self.shared.fresh_id();
                self.items.insert(transfer, (from.to_string(), incoming));
                vec![Action::Emit(Event::FileOffer {
                    conversation: self.conversation,
                    transfer,
                    from: from.to_string(),
                    name,
                    size,
                    method: "p2p".into(),
                })]
            }
            // Display pictures, emoticons, webcam...: we offer none of them.
            "INVITE" if slp.header("Content-Type") == Some("application/x-msnmsgr-sessionreqbody") => {
                let session: u32 = slp.body_field("SessionID").and_then(|s| s.parse().ok()).unwrap_or(0);
                self.slp_decline(&slp, session)
            }
            "200" => {
                let Some(transfer) = find(&self.items) else { return Vec::new() };
                if let Some((_, Transfer::P2pOut { path, file, data_id, .. })) = self.items.get_mut(&transfer) {
                    match std::fs::File::open(&*path) {
                        Ok(f) => {
                            *file = Some(f);
                            self.next_message_id = self.next_message_id.wrapping_add(1);
                            *data_id = self.next_message_id;
                        }
                        Err(e) => return vec![self.failed(transfer, format!("cannot read the file: {e}"))],
                    }
                }
                Vec::new()
            }
            "603" => match find(&self.items) {
                Some(transfer) => vec![self.failed(transfer, "declined by the receiver")],
                None => Vec::new(),
            },
            "BYE" => match find(&self.items) {
                Some(transfer) => {
                    let done = matches!(self.items.get(&transfer), Some((_, Transfer::P2pIn { received, size, .. })) if received >= size);
                    if done { Vec::new() } else { vec![self.failed(transfer, "cancelled by the peer")] }
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn on_data(&mut self, _from: &str, packet: &Packet) -> Vec<Action> {
        let h = packet.header;
        let found = self.items.iter().find_map(|(id, (_, t))| match t {
            Transfer::P2pIn { session, .. } if *session == h.session_id => Some(*id),
            _ => None,
        });
        let Some(transfer) = found else { return Vec::new() };
        let Some((_, Transfer::P2pIn { size, sha, dest, file, received, reported, .. })) =
            self.items.get_mut(&transfer)
        else {
            return Vec::new();
        };
        let Some(f) = file.as_mut() else { return Vec::new() };
        if h.total != *size || f.seek(SeekFrom::Start(h.offset)).and_then(|_| f.write_all(&packet.payload)).is_err() {
            return vec![self.failed(transfer, "could not write the received data")];
        }
        *received += packet.payload.len() as u64;
        let mut actions = Vec::new();
        if *received - *reported >= PROGRESS_STEP || h.completes() {
            *reported = *received;
            actions.push(Action::Emit(Event::FileProgress { transfer, done: *received, total: *size }));
        }
        if !h.completes() {
            return actions;
        }
        let _ = f.flush();
        let (dest, sha, size) = (dest.clone().expect("accepted"), sha.clone(), *size);
        self.items.remove(&transfer);
        let id = self.message_id();
        actions.push(Action::P2p(p2p::ack(&h, id)));
        actions.push(Action::Emit(finish_received(transfer, &dest, size, sha.as_deref())));
        actions
    }

    fn on_ack(&mut self, h: &Header) -> Vec<Action> {
        let found = self.items.iter().find_map(|(id, (_, t))| match t {
            Transfer::P2pOut { data_id, .. } if *data_id != 0 && *data_id == h.ack_id => Some(*id),
            _ => None,
        });
        let Some(transfer) = found else { return Vec::new() };
        let (peer, t) = self.items.remove(&transfer).expect("found");
        let Transfer::P2pOut { invite, path, size, .. } = t else { return Vec::new() };
        let sha = sha256_file(&path).unwrap_or_default();
        let mut actions = self.slp_bye(&peer, &invite);
        actions.push(Action::Emit(Event::FileDone {
            transfer,
            path: Some(path.display().to_string()),
            size,
            sha256: sha,
            verified: true,
        }));
        actions
    }

    /// The next data packet of a P2P file being sent, if any: data is made
    /// one packet at a time, as the switchboard acknowledges the previous one.
    pub fn next_data(&mut self) -> Option<(Packet, Option<Event>)> {
        let (transfer, (_, t)) = self
            .items
            .iter_mut()
            .find(|(_, (_, t))| matches!(t, Transfer::P2pOut { file: Some(_), sent, size, .. } if sent < size))?;
        let Transfer::P2pOut { session, size, file, sent, data_id, .. } = t else { return None };
        let mut buf = vec![0u8; p2p::MAX_CHUNK.min((*size - *sent) as usize)];
        let f = file.as_mut()?;
        if f.seek(SeekFrom::Start(*sent)).and_then(|_| f.read_exact(&mut buf)).is_err() {
            return None;
        }
        let header = Header {
            session_id: *session,
            id: *data_id,
            offset: *sent,
            total: *size,
            length: buf.len() as u32,
            flags: FLAGS_FILE_DATA,
            ack_id: rand::random(),
            ..Default::default()
        };
        let before = *sent;
        *sent += buf.len() as u64;
        let progress = (*sent / PROGRESS_STEP != before / PROGRESS_STEP || *sent == *size)
            .then_some(Event::FileProgress { transfer: *transfer, done: *sent, total: *size });
        Some((Packet { header, payload: buf, footer: 2 }, progress))
    }
}

/// Tells a running connection task to stop; returns whether one was running
/// (it then reports the end itself).
fn stop(cancel: Option<oneshot::Sender<Stop>>) -> bool {
    cancel.is_some_and(|c| c.send(Stop::Cancel).is_ok())
}

/// How a connection task is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The user or the peer cancelled: report it.
    Cancel,
    /// The transfer goes on another way: end without a report.
    Quietly,
}

/// Checks a received file and reports it.
fn finish_received(transfer: u64, dest: &Path, size: u64, expected: Option<&str>) -> Event {
    let sha = sha256_file(dest).unwrap_or_default();
    match expected {
        Some(e) if !e.eq_ignore_ascii_case(&sha) => {
            Event::FileFailed { transfer, reason: format!("checksum mismatch: expected {e}, got {sha}") }
        }
        _ => Event::FileDone {
            transfer,
            path: Some(dest.display().to_string()),
            size,
            sha256: sha,
            verified: expected.is_some(),
        },
    }
}

/// The sender's side of an MSNFTP connection.
#[allow(clippy::too_many_arguments)]
async fn msnftp_send(
    shared: Arc<Shared>,
    transfer: u64,
    listener: TcpListener,
    path: PathBuf,
    size: u64,
    peer: String,
    auth: u32,
    mut cancel: oneshot::Receiver<Stop>,
) {
    let result = async {
        let (stream, _) = tokio::select! {
            a = tokio::time::timeout(Duration::from_secs(60), listener.accept()) => a.map_err(|_| "the receiver never connected".to_string())?.map_err(|e| e.to_string())?,
            stop = &mut cancel => return Err(if stop == Ok(Stop::Quietly) { String::new() } else { "cancelled".to_string() }),
        };
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        async fn next_line(
            lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        ) -> Result<Option<Command>, String> {
            let line = lines.next_line().await.map_err(|e| e.to_string())?.ok_or("the receiver hung up")?;
            Ok(Command::parse(&line))
        }
        if next_line(&mut lines).await? != Some(Command::Ver) {
            return Err("the receiver does not speak MSNFTP".into());
        }
        write.write_all(Command::Ver.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        match next_line(&mut lines).await? {
            Some(Command::Usr { handle, cookie }) if handle.eq_ignore_ascii_case(&peer) && cookie == auth.to_string() => {}
            _ => return Err("the receiver did not authenticate".into()),
        }
        write.write_all(Command::Fil { size }.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        if next_line(&mut lines).await? != Some(Command::Tfr) {
            return Err("the receiver did not ask for the file".into());
        }
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; MAX_BLOCK];
        let mut sent = 0u64;
        while sent < size {
            let n = file.read(&mut buf[..MAX_BLOCK.min((size - sent) as usize)]).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the file got shorter".into());
            }
            let mut block = BlockHeader::Data(n).to_bytes().to_vec();
            block.extend_from_slice(&buf[..n]);
            tokio::select! {
                w = write.write_all(&block) => if let Err(e) = w {
                    // The receiver may have said why before it hung up.
                    let why = tokio::time::timeout(Duration::from_secs(1), next_line(&mut lines)).await;
                    return Err(match why {
                        Ok(Ok(Some(Command::Ccl))) => "cancelled by the receiver".into(),
                        _ => format!("the connection broke: {e}"),
                    });
                },
                _ = &mut cancel => {
                    let _ = write.write_all(&BlockHeader::Cancel.to_bytes()).await;
                    return Err("cancelled".into());
                }
            }
            let before = sent;
            sent += n as u64;
            if sent / PROGRESS_STEP != before / PROGRESS_STEP || sent == size {
                shared.emit(Event::FileProgress { transfer, done: sent, total: size });
            }
        }
        let bye = tokio::select! {
            l = next_line(&mut lines) => l?,
            _ = &mut cancel => return Err("cancelled".into()),
        };
        match bye {
            Some(Command::Bye { code: RECEIVED_OK }) => Ok(()),
            Some(Command::Ccl) => Err("cancelled by the receiver".into()),
            other => Err(format!("the receiver ended with {other:?}")),
        }
    }
    .await;
    shared.emit(match result {
        Ok(()) => Event::FileDone {
            transfer,
            path: Some(path.display().to_string()),
            size,
            sha256: sha256_file(&path).unwrap_or_default(),
            verified: true,
        },
        // Stopped quietly: the transfer goes on through the switchboard.
        Err(reason) if reason.is_empty() => return,
        Err(reason) => Event::FileFailed { transfer, reason },
    });
}

/// The receiver's side of an MSNFTP connection.
#[allow(clippy::too_many_arguments)]
async fn msnftp_receive(
    shared: Arc<Shared>,
    transfer: u64,
    address: String,
    me: String,
    auth: String,
    dest: PathBuf,
    size: u64,
    sha: Option<String>,
    mut cancel: oneshot::Receiver<Stop>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let stream = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let _ = reports.send(Report::DirectFailed {
                transfer,
                reason: format!("could not connect directly to the sender at {address}: {e}"),
            });
            return;
        }
        Err(_) => {
            let _ = reports.send(Report::DirectFailed {
                transfer,
                reason: format!("could not connect directly to the sender at {address}: timed out"),
            });
            return;
        }
    };
    let result = async {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        write.write_all(Command::Ver.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        reader.read_line(&mut line).await.map_err(|e| e.to_string())?;
        if Command::parse(&line) != Some(Command::Ver) {
            return Err("the sender does not speak MSNFTP".to_string());
        }
        let usr = Command::Usr { handle: me.clone(), cookie: auth.clone() };
        write.write_all(usr.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        line.clear();
        reader.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let Some(Command::Fil { size: announced }) = Command::parse(&line) else {
            return Err("no FIL from the sender".into());
        };
        if announced != size {
            return Err(format!("the sender announced {announced} bytes, not {size}"));
        }
        write.write_all(Command::Tfr.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        let mut file =
            tokio::fs::File::create(&dest).await.map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        let mut received = 0u64;
        let mut buf = vec![0u8; MAX_BLOCK];
        while received < size {
            let mut head = [0u8; 3];
            tokio::select! {
                r = reader.read_exact(&mut head) => { r.map_err(|e| e.to_string())?; }
                _ = &mut cancel => {
                    let _ = write.write_all(Command::Ccl.to_line().as_bytes()).await;
                    return Err("cancelled".to_string());
                }
            }
            let n = match BlockHeader::parse(head) {
                Some(BlockHeader::Cancel) => return Err("cancelled by the sender".into()),
                Some(BlockHeader::Data(n)) if received + n as u64 <= size => n,
                _ => return Err("a malformed data block".into()),
            };
            reader.read_exact(&mut buf[..n]).await.map_err(|e| e.to_string())?;
            file.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
            let before = received;
            received += n as u64;
            if received / PROGRESS_STEP != before / PROGRESS_STEP || received == size {
                shared.emit(Event::FileProgress { transfer, done: received, total: size });
            }
        }
        file.flush().await.map_err(|e| e.to_string())?;
        write.write_all(Command::Bye { code: RECEIVED_OK }.to_line().as_bytes()).await.map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    shared.emit(match result {
        Ok(()) => finish_received(transfer, &dest, size, sha.as_deref()),
        Err(reason) => Event::FileFailed { transfer, reason },
    });
}
