//! One client socket: framed reading with hard limits, buffered writing with
//! a timeout.
//!
//! Reading goes through `FramedRead`, whose buffer survives a cancelled
//! `select!` branch, so no byte is lost when an event or the shutdown signal
//! wins the race. Replies are collected in one buffer and written with one
//! `write_all`, so a client never sees half a command.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use msnp::{Decoder, Dialect, Direction, Frame, FrameError, Limits, Reply};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tokio_util::codec::FramedRead;

/// The `tokio_util` codec over the sans-IO [`Decoder`]. It also notes when
/// the current unfinished frame began, so that the reader can refuse a client
/// that trickles a command forever.
pub struct MsnpCodec {
    decoder: Decoder,
    partial_since: Option<std::time::Instant>,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("a command stayed unfinished too long")]
    PartialLineTimeout,
}

impl tokio_util::codec::Decoder for MsnpCodec {
    type Item = Frame;
    type Error = ReadError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ReadError> {
        let frame = self.decoder.decode(src)?;
        if src.is_empty() && !self.decoder.is_mid_frame() {
            self.partial_since = None;
        } else if frame.is_some() || self.partial_since.is_none() {
            self.partial_since = Some(std::time::Instant::now());
        }
        Ok(frame)
    }
}

/// Either half of a client's byte stream: a TCP socket's, or a TLS
/// session's (or, in tests and fuzzing, an in-memory pipe's). Boxed so that
/// the sessions are written once for every transport.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The reading half of a client connection.
pub struct Reader {
    framed: FramedRead<ReadHalf, MsnpCodec>,
    partial_limit: Duration,
}

impl Reader {
    /// Reads the next frame. `Ok(None)` is a clean end of stream. A frame that
    /// was started but not finished within the partial-line limit is an error.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        loop {
            tokio::select! {
                f = self.framed.next() => return f.transpose(),
                _ = sleep(self.partial_limit / 2) => {
                    let since = self.framed.decoder().partial_since;
                    if since.is_some_and(|t| t.elapsed() >= self.partial_limit) {
                        return Err(ReadError::PartialLineTimeout);
                    }
                }
            }
        }
    }

    /// Changes the framing limits once the connection's role is known.
    pub fn set_limits(&mut self, limits: Limits) {
        self.framed.decoder_mut().decoder.set_limits(limits);
    }
}

/// The writing half: replies are buffered, then flushed in one write.
pub struct Writer {
    half: WriteHalf,
    buf: BytesMut,
    pub dialect: Dialect,
    write_timeout: Duration,
    /// The account whose protocol trace the operator switched on, if this
    /// connection is theirs (`msnd trace`).
    pub trace: Option<String>,
}

impl Writer {
    /// Queues a reply in the connection's dialect.
    pub fn push(&mut self, reply: &Reply) {
        let start = self.buf.len();
        reply.encode(self.dialect, &mut self.buf);
        if let Some(account) = &self.trace {
            trace_bytes(account, "S", &self.buf[start..]);
        }
    }

    /// Traces a command the client sent, if this connection is traced.
    pub fn trace_in(&self, frame: &Frame) {
        if let Some(account) = &self.trace {
            trace_frame(account, "C", frame);
        }
    }

    /// Writes everything queued. A client that does not take its data within
    /// the write timeout is treated as gone.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = self.buf.split().freeze();
        // After a burst (a sign-in's SYN), do not keep its allocation alive
        // for an idle connection: the next reply allocates what it needs.
        if self.buf.capacity() > RETAINED_WRITE_BUFFER {
            self.buf = BytesMut::new();
        }
        match timeout(self.write_timeout, self.half.write_all(&data)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "client is not reading")),
        }
    }

    /// Flushes and closes the sending side.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = timeout(self.write_timeout, self.half.shutdown()).await;
    }
}

/// Logs one frame of a traced connection, secrets masked.
fn trace_frame(account: &str, from: &str, frame: &Frame) {
    let line = msnp::trace::mask_line(&frame.line);
    match &frame.payload {
        Some(p) => {
            let payload = msnp::trace::mask_payload(p);
            tracing::info!(target: "msnp::trace", %account, from, %line, %payload);
        }
        None => tracing::info!(target: "msnp::trace", %account, from, %line),
    }
}

/// Logs encoded server output (one reply may be several frames).
fn trace_bytes(account: &str, from: &str, bytes: &[u8]) {
    let mut decoder = Decoder::new(Direction::ToClient, Limits { max_line: 1 << 20, max_payload: 1 << 20 });
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        trace_frame(account, from, &frame);
    }
}

/// The most write-buffer capacity an idle connection keeps.
const RETAINED_WRITE_BUFFER: usize = 1024;

/// The initial read buffer of a connection: a few command lines.
const READ_BUFFER: usize = 512;

/// How long a write may take and how long a command may stay unfinished.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub partial_line: Duration,
    pub write: Duration,
}

/// A client connection split into its halves.
pub struct Connection {
    pub reader: Reader,
    pub writer: Writer,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Whether the connection arrived over TLS: its referrals then name the
    /// TLS port, so that it never falls back to plain text.
    pub secure: bool,
}

/// Nagle off (replies are whole commands, written once) and keepalive
/// probes on: a peer that vanished without a FIN (cable pulled, NAT dropped
/// the mapping) is found by the kernel's probes and its reads fail.
pub fn tune_tcp(stream: &TcpStream, keepalive: (Duration, Duration)) {
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(keepalive.0).with_interval(keepalive.1).with_retries(3);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

impl Connection {
    /// A TCP client: keepalive probes on, Nagle off.
    pub fn tcp(
        stream: TcpStream,
        limits: Limits,
        timeouts: Timeouts,
        keepalive: (Duration, Duration),
    ) -> io::Result<Connection> {
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        tune_tcp(&stream, keepalive);
        let (read, write) = stream.into_split();
        Ok(Connection::from_halves(Box::new(read), Box::new(write), peer, local, limits, timeouts))
    }

    /// Any other byte stream (TLS, an in-memory pipe), with the addresses
    /// that its transport reports.
    pub fn stream<S>(stream: S, peer: SocketAddr, local: SocketAddr, limits: Limits, timeouts: Timeouts) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Connection::from_halves(Box::new(read), Box::new(write), peer, local, limits, timeouts)
    }

    fn from_halves(
        read: ReadHalf,
        write: WriteHalf,
        peer: SocketAddr,
        local: SocketAddr,
        limits: Limits,
        timeouts: Timeouts,
    ) -> Connection {
        Connection {
            reader: Reader {
                // Start small: most connections idle, and an idle one should
                // not hold tokio-util's default 8 KiB. The buffer grows for
                // the rare large payload.
                framed: FramedRead::with_capacity(
                    read,
                    MsnpCodec { decoder: Decoder::new(Direction::ToServer, limits), partial_since: None },
                    READ_BUFFER,
                ),
                partial_limit: timeouts.partial_line,
            },
            writer: Writer {
                half: write,
                buf: BytesMut::new(),
                dialect: Dialect::Msnp2,
                write_timeout: timeouts.write,
                trace: None,
            },
            peer,
            local,
            secure: false,
        }
    }
}
