//! One client socket: framed reading with hard limits, buffered writing with
//! a timeout.
//!
//! Reading frames through the sans-IO [`Decoder`] out of a buffer that
//! survives a cancelled `select!` branch and holds no memory between
//! commands. Replies are collected in one buffer and written with one
//! `write_all`, so a client never sees half a command.

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use msnp::{Decoder, Dialect, Direction, Frame, FrameError, Limits, Reply};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Sleep, sleep_until, timeout};

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

/// Either half of a client's byte stream: a TCP socket's, or a TLS
/// session's (or, in tests and fuzzing, an in-memory pipe's). Boxed so that
/// the sessions are written once for every transport.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The reading half of a client connection.
///
/// Bytes are read into a small buffer on the stack and only what a frame
/// still needs is kept on the heap: between commands `buf` is empty and
/// holds no allocation, so an idle connection costs no read buffer. (The
/// one copy is a few hundred bytes per command; a read system call costs far
/// more.) `buf` survives a cancelled `select!` branch, so no byte is lost
/// when an event or the shutdown signal wins the race.
pub struct Reader {
    half: ReadHalf,
    buf: BytesMut,
    decoder: Decoder,
    /// The client closed its sending side.
    eof: bool,
    /// Bytes read from the client so far.
    bytes_read: u64,
    /// When the unfinished frame in `buf` began.
    partial_since: Option<tokio::time::Instant>,
    partial_limit: Duration,
    /// Armed only while a command is unfinished: an idle connection holds
    /// no timer and is never woken by one, and a command that arrives whole
    /// costs no timer-wheel insertion.
    partial_timer: Option<Pin<Box<Sleep>>>,
}

/// How much one read takes from the socket at most.
const READ_CHUNK: usize = 4096;

impl Reader {
    /// Reads the next frame. `Ok(None)` is a clean end of stream. A frame that
    /// was started but not finished within the partial-line limit is an error.
    /// Cancel-safe: bytes already read stay in the buffer.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadError> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame>, ReadError>> {
        loop {
            if let Some(frame) = self.decode()? {
                return Poll::Ready(Ok(Some(frame)));
            }
            if self.eof {
                return Poll::Ready(match self.partial_since {
                    None => Ok(None),
                    Some(_) => Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
                });
            }
            // Uninitialised: zeroing 4 KiB on every poll would cost more
            // than the copy out of it.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut read = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.half).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => self.eof = true,
                Poll::Ready(Ok(())) => {
                    self.bytes_read += read.filled().len() as u64;
                    self.buf.extend_from_slice(read.filled());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return self.poll_partial_timer(cx),
            }
        }
    }

    /// The next frame if one is already buffered complete (the client
    /// pipelined it), without reading: a session answers every such command
    /// before it writes, so that a burst costs one write.
    pub fn buffered(&mut self) -> Result<Option<Frame>, ReadError> {
        self.decode()
    }

    /// Frames what is buffered, noting when an unfinished frame began and
    /// giving the buffer's memory back once everything in it is framed.
    fn decode(&mut self) -> Result<Option<Frame>, ReadError> {
        let frame = self.decoder.decode(&mut self.buf)?;
        if self.buf.is_empty() && !self.decoder.is_mid_frame() {
            self.partial_since = None;
            if self.buf.capacity() > 0 {
                self.buf = BytesMut::new();
            }
        } else if frame.is_some() || self.partial_since.is_none() {
            self.partial_since = Some(tokio::time::Instant::now());
        }
        Ok(frame)
    }

    /// Waits out the partial-line limit while a frame is unfinished.
    fn poll_partial_timer(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Frame>, ReadError>> {
        let Some(since) = self.partial_since else {
            self.partial_timer = None;
            return Poll::Pending;
        };
        let due = since + self.partial_limit;
        let timer = self.partial_timer.get_or_insert_with(|| Box::pin(sleep_until(due)));
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ReadError::PartialLineTimeout)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// How many bytes the client has sent so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Where in the client's byte stream the frames handed out so far end:
    /// a frame with `position() > mark` holds bytes read after `mark` was
    /// [`Reader::bytes_read`].
    pub fn position(&self) -> u64 {
        self.bytes_read - self.buf.len() as u64
    }

    /// Changes the framing limits once the connection's role is known.
    pub fn set_limits(&mut self, limits: Limits) {
        self.decoder.set_limits(limits);
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

    /// Whether replies wait to be written.
    pub fn has_unsent(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Writes everything queued. A client that does not take its data within
    /// the write timeout is treated as gone.
    ///
    /// The buffer is given back after every write: a connection is idle
    /// nearly all the time, and a buffer kept for the next reply (or, worse,
    /// the tail of one that still pins the whole allocation of a sign-in's
    /// `SYN`, as `split` did) would cost every idle user kilobytes. An
    /// allocation per write costs far less than its system call.
    pub async fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let written = timeout(self.write_timeout, self.half.write_all(&self.buf)).await;
        self.buf = BytesMut::new();
        match written {
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

/// Whether a connection goes on after a request or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// The most queued events, or pipelined commands, answered in one write.
pub const BATCH: usize = 64;

/// A request's answer as a boxed future: each session's `handle` is far
/// larger than its idle loop, and boxing keeps every idle task small.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

/// Answers `first`, then every command the client pipelined behind it that
/// is already buffered (up to [`BATCH`], and while `more` allows: no event
/// waiting, room to relay), so that the burst costs one write.
pub async fn answer_pipelined<S>(
    session: &mut S,
    first: Frame,
    (reader, writer, peer): (&mut Reader, &mut Writer, SocketAddr),
    answer: for<'a> fn(&'a mut S, Frame, &'a mut Writer) -> Answer<'a>,
    more: impl Fn(&S) -> bool,
) -> Flow {
    let mut flow = answer(session, first, writer).await;
    for _ in 0..BATCH {
        if flow != Flow::Continue || !more(session) {
            break;
        }
        match reader.buffered() {
            Ok(Some(frame)) => flow = answer(session, frame, writer).await,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(peer = %peer, "closing: {e}");
                flow = Flow::Close;
            }
        }
    }
    flow
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
    /// The TCP socket under a plain connection, for asking the kernel what
    /// the client has acknowledged. Owned by the halves, which live as long
    /// as this connection.
    socket: Option<std::os::fd::RawFd>,
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
        let socket = std::os::fd::AsRawFd::as_raw_fd(&stream);
        let (read, write) = stream.into_split();
        let mut conn = Connection::from_halves(Box::new(read), Box::new(write), peer, local, limits, timeouts);
        conn.socket = Some(socket);
        Ok(conn)
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
                half: read,
                buf: BytesMut::new(),
                decoder: Decoder::new(Direction::ToServer, limits),
                eof: false,
                bytes_read: 0,
                partial_since: None,
                partial_limit: timeouts.partial_line,
                partial_timer: None,
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
            socket: None,
        }
    }

    /// The two halves alone, for a session that keeps the addresses itself
    /// (its idle memory is the halves, not the whole connection twice over).
    pub fn into_halves(self) -> (Reader, Writer) {
        (self.reader, self.writer)
    }

    /// Whether the client's TCP stack has acknowledged every byte written to
    /// it; `None` when the transport cannot tell (TLS, in-memory).
    pub fn all_acknowledged(&self) -> Option<bool> {
        let fd = self.socket?;
        let mut unacknowledged: libc::c_int = 0;
        // SAFETY: `fd` is the socket the halves own, open while `self` lives;
        // TIOCOUTQ (SIOCOUTQ) writes one int: the bytes not yet acknowledged.
        let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut unacknowledged) };
        (r == 0).then_some(unacknowledged == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn reader(stream: tokio::io::DuplexStream) -> Reader {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let timeouts = Timeouts { partial_line: Duration::from_secs(5), write: Duration::from_secs(5) };
        let limits = Limits { max_line: 1024, max_payload: 64 * 1024 };
        Connection::stream(stream, addr, addr, limits, timeouts).reader
    }

    #[tokio::test]
    async fn frames_arrive_whole_however_the_bytes_are_split() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut r = reader(server);
        let mut wire = Vec::new();
        for i in 0..500 {
            let payload = vec![b'a' + (i % 26) as u8; 100 + (i * 37) % 3000];
            wire.extend_from_slice(format!("MSG {i} D {}\r\n", payload.len()).as_bytes());
            wire.extend_from_slice(&payload);
        }
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(777) {
                client.write_all(piece).await.unwrap();
            }
            client.shutdown().await.unwrap();
        });
        for i in 0..500 {
            let f = r.next().await.unwrap().expect("a frame");
            assert_eq!(f.args()[0], i.to_string());
            assert_eq!(f.payload.unwrap().len(), 100 + (i * 37) % 3000);
        }
        assert!(r.next().await.unwrap().is_none());
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_frame_finished_after_a_pause_arrives() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut r = reader(server);
        let writer = tokio::spawn(async move {
            for _ in 0..20 {
                client.write_all(b"MSG 1 D 10\r\n12345").await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                client.write_all(b"67890").await.unwrap();
            }
        });
        for _ in 0..20 {
            let f = tokio::time::timeout(Duration::from_secs(2), r.next()).await.expect("in time").unwrap().unwrap();
            assert_eq!(f.payload.unwrap().len(), 10);
        }
        writer.await.unwrap();
    }
}
