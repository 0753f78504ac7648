//! One raw MSNP connection of a simulated user, and signing in on it.
//!
//! Deliberately thin: a buffered reader around `msnp::Decoder` and a write
//! half. The load tool holds tens of thousands of these, so each costs a
//! socket, a small buffer and (once split) two tasks.

use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::BytesMut;
use msnp::endpoint::MachineGuid;
use msnp::request::{NsRequest, SbRequest, SyncVersion};
use msnp::signin::{Action, SignIn};
use msnp::{Decoder, Dialect, Direction, ErrorCode, Frame, Limits, ListKind, OnlineState, Reply, TrId};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The product id and key the load tool answers `CHL` with (MSNP11's).
pub const PRODUCT_ID: &str = "PROD0090YUAUV{2B";
const PRODUCT_KEY: &str = "YMM8C_H7KCQ2S_KL";

/// The reading half: frames from the server.
pub struct Reader {
    read: Box<dyn AsyncRead + Send + Unpin>,
    decoder: Decoder,
    buf: BytesMut,
}

impl Reader {
    /// The next frame; `None` when the server closed the connection.
    pub async fn next(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf)? {
                return Ok(Some(f));
            }
            if self.buf.capacity() - self.buf.len() < 512 {
                self.buf.reserve(4096);
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next frame within `wait`, failing on close or timeout.
    pub async fn expect(&mut self, wait: Duration) -> anyhow::Result<Frame> {
        tokio::time::timeout(wait, self.next())
            .await
            .map_err(|_| anyhow!("no answer within {wait:?}"))??
            .ok_or_else(|| anyhow!("the server closed the connection"))
    }
}

/// The server answered a request with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub ErrorCode);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the server answered {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// A connection: both halves, and how to read what the server says.
pub struct Link {
    pub reader: Reader,
    pub write: Box<dyn AsyncWrite + Send + Unpin>,
    pub dialect: Dialect,
    /// A switchboard connection (its `USR` reply has the switchboard's shape).
    pub switchboard: bool,
}

impl Reader {
    /// The next reply within `wait`, read in `dialect`.
    pub async fn expect_reply(&mut self, wait: Duration, dialect: Dialect, switchboard: bool) -> anyhow::Result<Reply> {
        let f = self.expect(wait).await?;
        let reply = if switchboard { Reply::parse_from_switchboard(&f, dialect) } else { Reply::parse(&f, dialect) };
        Ok(reply?)
    }
}

impl Link {
    /// A notification (or dispatch) connection, through `gateway` if given.
    pub async fn connect(addr: &str, dialect: Dialect, gateway: Option<&str>) -> anyhow::Result<Link> {
        Self::open(addr, dialect, false, gateway).await
    }

    /// A switchboard connection, through `gateway` if given.
    pub async fn connect_switchboard(addr: &str, dialect: Dialect, gateway: Option<&str>) -> anyhow::Result<Link> {
        Self::open(addr, dialect, true, gateway).await
    }

    async fn open(addr: &str, dialect: Dialect, switchboard: bool, gateway: Option<&str>) -> anyhow::Result<Link> {
        type Halves = (Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncWrite + Send + Unpin>);
        let (read, write): Halves = match gateway {
            Some(url) => {
                use client::conn::ServerKind;
                let kind = if switchboard { ServerKind::Switchboard } else { ServerKind::Notification };
                let (read, write) = tokio::io::split(client::gateway::open(url, addr, kind, None));
                (Box::new(read), Box::new(write))
            }
            None => {
                let stream = connect_spread(addr).await.with_context(|| format!("connecting to {addr}"))?;
                stream.set_nodelay(true)?;
                let (read, write) = stream.into_split();
                (Box::new(read), Box::new(write))
            }
        };
        let limits = Limits { max_line: 8192, max_payload: 64 * 1024 };
        Ok(Link {
            reader: Reader {
                read,
                decoder: Decoder::new(Direction::ToClient, limits),
                buf: BytesMut::with_capacity(1024),
            },
            write,
            dialect,
            switchboard,
        })
    }

    /// Sends a request to a notification server.
    pub async fn send(&mut self, request: &NsRequest) -> anyhow::Result<()> {
        self.write.write_all(&request.to_frame(self.dialect).to_bytes()).await?;
        Ok(())
    }

    /// Sends a request to a switchboard.
    pub async fn send_sb(&mut self, request: &SbRequest) -> anyhow::Result<()> {
        self.write.write_all(&request.to_frame().to_bytes()).await?;
        Ok(())
    }

    /// The next reply within `wait`.
    pub async fn next_reply(&mut self, wait: Duration) -> anyhow::Result<Reply> {
        self.reader.expect_reply(wait, self.dialect, self.switchboard).await
    }

    /// Reads past asynchronous lines (presence, CHL answered here) to the
    /// reply with `trid`; an error reply fails with [`Refused`].
    pub async fn reply(&mut self, trid: TrId, wait: Duration) -> anyhow::Result<Reply> {
        self.reply_seeing(trid, wait, |_| {}).await
    }

    /// [`Link::reply`], showing `seen` every other reply on the way.
    pub async fn reply_seeing(
        &mut self,
        trid: TrId,
        wait: Duration,
        mut seen: impl FnMut(&Reply),
    ) -> anyhow::Result<Reply> {
        loop {
            match self.next_reply(wait).await? {
                Reply::Chl { challenge } => self.send(&qry(0, &challenge)).await?,
                reply if reply.trid() != Some(trid) => seen(&reply),
                Reply::Error { code, .. } => return Err(Refused(code).into()),
                reply => return Ok(reply),
            }
        }
    }
}

/// Connects from a rotating loopback source address when the server is on
/// loopback: one source address has only ~28,000 ephemeral ports towards one
/// server port, and a run may hold 100,000 connections.
async fn connect_spread(addr: &str) -> std::io::Result<TcpStream> {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let target: Option<SocketAddr> = addr.parse().ok();
    match target {
        Some(t) if t.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) % 64;
            let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + n as u8)), 0);
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(source)?;
            socket.connect(t).await
        }
        _ => TcpStream::connect(addr).await,
    }
}

/// The `QRY` that answers a challenge.
pub fn qry(trid: TrId, challenge: &str) -> NsRequest {
    let answer = msnp::challenge::msnp11_response(challenge, PRODUCT_ID, PRODUCT_KEY);
    NsRequest::Qry { trid, product_id: PRODUCT_ID.into(), payload: answer.into_bytes().into() }
}

/// Where and how to sign in.
#[derive(Debug, Clone)]
pub struct Target {
    /// The dispatch (or notification) server, `host:port`.
    pub server: String,
    pub dialect: Dialect,
    /// The Passport nexus, for MSNP8+.
    pub login_url: Option<String>,
    /// A CA to trust for the login URL's HTTPS services.
    pub trust_ca: Option<std::path::PathBuf>,
    pub timeout: Duration,
    /// The HTTP gateway every connection goes through, if any.
    pub gateway: Option<String>,
}

/// Signs in completely: VER, INF or CVR, USR (following `XFR NS`), SYN and
/// `CHG NLN`. Returns the notification connection once the `CHG` is
/// answered, which the server does only after the whole sync, and how many
/// people are on the user's forward list (what the sync listed: any
/// server's, whatever its list versions look like).
pub async fn sign_in(target: &Target, handle: &str, password: &str) -> anyhow::Result<(Link, usize)> {
    let d = target.dialect;
    let gateway = target.gateway.as_deref();
    let mut link = Link::connect(&target.server, d, gateway).await?;
    let client_version = ["0x0409", "winnt", "5.1", "i386", "MSNMSGR", "7.5.0324", "msmsgs"];
    // MSNP16+ name the machine; each simulated user keeps one, as a person
    // signing in again from the same computer does.
    let machine = sha2::Sha256::digest(handle.as_bytes())[..16].try_into().expect("16 of 32 bytes");
    let mut signing = SignIn::new(d, handle, password, &client_version).on_machine(MachineGuid::from_random(machine));
    // What the web services (nexus, RST, address book) are asked with.
    let mut web = client::ClientConfig::new(&target.server, handle, password);
    web.login_url = target.login_url.clone();
    web.trust_ca = target.trust_ca.clone();
    web.timeout = target.timeout;
    let mut contacts_ticket = String::new();
    let mut action = signing.start();
    let signed = loop {
        action = match action {
            Action::Send(request) => {
                link.send(&request).await?;
                signing.receive(&link.reader.expect(target.timeout).await?)?
            }
            Action::Receive => signing.receive(&link.reader.expect(target.timeout).await?)?,
            Action::Connect(address) => {
                link = Link::connect(&address, d, gateway).await?;
                signing.connected()
            }
            Action::FetchTicket(challenge) => signing.ticket(client::login::passport_ticket(&web, &challenge).await?),
            Action::FetchSsoToken { policy } => {
                let tokens = client::login::sso_tokens(&web, &policy).await?;
                contacts_ticket = tokens.contacts;
                signing.sso_token(tokens.messenger, &tokens.secret, rand::random())
            }
            Action::Done(signed) => break signed,
        };
    };
    if d.lists_over_soap() {
        let contacts_ticket = client::login::address_book_ticket(contacts_ticket, &signed.profile);
        let forward = lists_from_web_services(&mut link, &web, &contacts_ticket, signed.next_trid, target).await?;
        return Ok((link, forward));
    }
    // SYN and CHG in one write; the CHG is answered after the whole sync.
    let (syn, chg) = (signed.next_trid, signed.next_trid + 1);
    let version = if d.sync_has_two_versions() {
        SyncVersion::Timestamps("0".into(), "0".into())
    } else {
        SyncVersion::Serial(0)
    };
    let client_id = d.presence_has_client_id().then_some(0);
    let mut batch = NsRequest::Syn { trid: syn, version }.to_frame(d).to_bytes();
    batch.extend(
        NsRequest::Chg { trid: chg, state: OnlineState::Online, client_id, extended_caps: 0, msn_object: None }
            .to_frame(d)
            .to_bytes(),
    );
    link.write.write_all(&batch).await?;
    // The sync's lines come before the CHG's answer; count the forward list.
    let (mut forward, mut refused) = (0, None);
    link.reply_seeing(chg, target.timeout, |reply| match reply {
        Reply::Lst { trid, list: ListKind::Forward, item: Some(_), .. } if *trid == syn => forward += 1,
        Reply::SyncContact(c) if c.bits & 1 != 0 => forward += 1,
        Reply::Error { code, trid: Some(t) } if *t == syn => refused = Some(*code),
        _ => {}
    })
    .await?;
    if let Some(code) = refused {
        return Err(Refused(code).into());
    }
    Ok((link, forward))
}

/// What an MSNP13+ client does where older ones sync: fetch the lists from
/// the membership and address book services, send them in one `ADL`, then
/// `CHG`, whose answer comes after the `ADL`'s. Returns the size of the
/// forward list, as the address book gave it.
async fn lists_from_web_services(
    link: &mut Link,
    web: &client::ClientConfig,
    contacts_ticket: &str,
    trid: TrId,
    target: &Target,
) -> anyhow::Result<usize> {
    let d = target.dialect;
    let mut lists = client::State::default();
    client::login::fetch_lists(web, contacts_ticket, &mut lists).await?;
    let forward = lists.contacts.values().filter(|c| c.lists & ListKind::Forward.bit() != 0).count();
    let (adl, chg) = (trid, trid + 1);
    let payload = bytes::Bytes::from(client::login::initial_list_document(&lists).encode());
    let mut batch = NsRequest::Adl { trid: adl, payload }.to_frame(d).to_bytes();
    batch.extend(
        NsRequest::Chg {
            trid: chg,
            state: OnlineState::Online,
            client_id: Some(0),
            extended_caps: 0,
            msn_object: None,
        }
        .to_frame(d)
        .to_bytes(),
    );
    link.write.write_all(&batch).await?;
    let mut refused = None;
    link.reply_seeing(chg, target.timeout, |reply| {
        if let Reply::Error { code, trid: Some(t) } = reply
            && *t == adl
        {
            refused = Some(*code);
        }
    })
    .await?;
    match refused {
        Some(code) => Err(Refused(code).into()),
        None => Ok(forward),
    }
}
