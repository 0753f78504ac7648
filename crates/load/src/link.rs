//! One raw MSNP connection of a simulated user, and signing in on it.
//!
//! Deliberately thin: a buffered reader around `msnp::Decoder` and a write
//! half. The load tool holds tens of thousands of these, so each costs a
//! socket, a small buffer and (once split) two tasks.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::BytesMut;
use msnp::{Decoder, Dialect, Direction, Frame, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The product id and key the load tool answers `CHL` with (MSNP11's).
pub const PRODUCT_ID: &str = "PROD0090YUAUV{2B";
const PRODUCT_KEY: &str = "YMM8C_H7KCQ2S_KL";

/// The reading half: frames from the server.
pub struct Reader {
    read: OwnedReadHalf,
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

/// A connection: both halves.
pub struct Link {
    pub reader: Reader,
    pub write: OwnedWriteHalf,
}

impl Link {
    pub async fn connect(addr: &str) -> anyhow::Result<Link> {
        let stream = connect_spread(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (read, write) = stream.into_split();
        let limits = Limits { max_line: 8192, max_payload: 64 * 1024 };
        Ok(Link {
            reader: Reader {
                read,
                decoder: Decoder::new(Direction::ToClient, limits),
                buf: BytesMut::with_capacity(1024),
            },
            write,
        })
    }

    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.write.write_all(format!("{line}\r\n").as_bytes()).await?;
        Ok(())
    }

    /// Reads past asynchronous lines (presence, CHL answered here) to the
    /// reply with `trid`; a numeric error reply fails.
    pub async fn reply(&mut self, trid: u32, wait: Duration) -> anyhow::Result<Frame> {
        loop {
            let f = self.reader.expect(wait).await?;
            if f.verb() == "CHL" {
                let challenge = f.args().get(1).map(|s| s.to_string()).unwrap_or_default();
                self.write.write_all(qry(0, &challenge).as_bytes()).await?;
                continue;
            }
            let args = f.args();
            if args.first().and_then(|t| t.parse::<u32>().ok()) != Some(trid) {
                continue;
            }
            if f.verb().parse::<u16>().is_ok() {
                bail!("server answered `{}`", f.line);
            }
            return Ok(f);
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

/// The `QRY` that answers a challenge (a command with its payload).
pub fn qry(trid: u32, challenge: &str) -> String {
    let answer = msnp::challenge::msnp11_response(challenge, PRODUCT_ID, PRODUCT_KEY);
    format!("QRY {trid} {PRODUCT_ID} 32\r\n{answer}")
}

/// Where and how to sign in.
#[derive(Debug, Clone)]
pub struct Target {
    /// The dispatch (or notification) server, `host:port`.
    pub server: String,
    pub dialect: Dialect,
    /// The Passport nexus, for MSNP8+.
    pub login_url: Option<String>,
    pub timeout: Duration,
}

/// Signs in completely: VER, INF or CVR, USR (following `XFR NS`), SYN and
/// `CHG NLN`. Returns the notification connection once the `CHG` is
/// answered, which the server does only after the whole sync, and the list
/// version the `SYN` reply named.
pub async fn sign_in(target: &Target, handle: &str, password: &str) -> anyhow::Result<(Link, String)> {
    let mut addr = target.server.clone();
    let d = target.dialect;
    let passport = d.auth_scheme() == msnp::dialect::AuthScheme::Twn;
    for _referral in 0..3 {
        let mut link = Link::connect(&addr).await?;
        link.send(&format!("VER 1 {d} CVR0")).await?;
        link.reply(1, target.timeout).await?;
        if passport {
            link.send(&format!("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 msmsgs {handle}")).await?;
            link.reply(2, target.timeout).await?;
            link.send(&format!("USR 3 TWN I {handle}")).await?;
        } else {
            link.send("INF 2").await?;
            link.reply(2, target.timeout).await?;
            link.send(&format!("USR 3 MD5 I {handle}")).await?;
        }
        let usr = link.reply(3, target.timeout).await?;
        let args = usr.args();
        if usr.verb() == "XFR" {
            addr = args.get(2).context("XFR without an address")?.to_string();
            continue;
        }
        let challenge = args.get(3).context("USR without a challenge")?.to_string();
        let answer = if passport {
            let mut config = client::ClientConfig::new(&target.server, handle, password);
            config.login_url = target.login_url.clone();
            config.timeout = target.timeout;
            client::login::passport_ticket(&config, &challenge).await?
        } else {
            msnp::challenge::md5_response(&challenge, password)
        };
        let scheme = d.auth_scheme().package();
        link.send(&format!("USR 4 {scheme} S {answer}")).await?;
        link.reply(4, target.timeout).await?;
        let syn = if d.sync_has_two_versions() { "SYN 5 0 0" } else { "SYN 5 0" };
        let chg = if d.presence_has_client_id() { "CHG 6 NLN 0" } else { "CHG 6 NLN" };
        link.write.write_all(format!("{syn}\r\n{chg}\r\n").as_bytes()).await?;
        let synced = link.reply(5, target.timeout).await?;
        let version = synced.args().get(1).unwrap_or(&"0").to_string();
        link.reply(6, target.timeout).await?;
        return Ok((link, version));
    }
    bail!("referred more than three times")
}
