//! The transport under a gateway session: an in-memory byte pipe between
//! the HTTP requests that carry a client's bytes and the ordinary MSNP
//! session that reads and answers them.
//!
//! The session end is an `AsyncRead + AsyncWrite` like a socket. The gateway
//! end knows one thing a socket cannot tell: when the session has read
//! everything posted and asked for more ([`Pipe::answer`]). Sessions answer
//! commands in order and write before they read again, so at that moment
//! every reply to the posted commands is in the pipe, and the HTTP answer
//! can carry them without guessing with a timer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Why bytes could not be posted.
#[derive(Debug, PartialEq, Eq)]
pub enum PostError {
    /// More than the session may have waiting unread.
    Full,
    /// The session has ended.
    Closed,
}

/// What a gateway request waits for before it answers.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Until the session has read and answered what was posted.
    Answered,
    /// Until the session writes anything (a long poll), or a newer request
    /// of the same session takes over (and with it all there is to take).
    Output { superseded_after: u64 },
    /// Not at all.
    Nothing,
}

/// What the session wrote since the last answer.
#[derive(Debug)]
pub struct Taken {
    pub bytes: Bytes,
    /// Where these bytes come in the session's output (1, 2, ...), when
    /// there are any: answers on different connections may cross, and a
    /// client that keeps a poll open while it posts puts them in order by
    /// this.
    pub sequence: Option<u64>,
    /// The session has ended and this was its last output.
    pub closed: bool,
}

#[derive(Default)]
struct State {
    /// Posted by the client, not yet read by the session.
    to_server: BytesMut,
    /// Written by the session, not yet taken by a request.
    to_client: BytesMut,
    reader: Option<Waker>,
    writer: Option<Waker>,
    /// The session found nothing to read since the last post.
    starved: bool,
    /// The gateway gave up on the client: the session reads end of stream.
    client_gone: bool,
    /// The session shut its writing side or was dropped.
    session_gone: bool,
    /// Requests seen, so that a held poll can tell a newer one came.
    requests: u64,
    /// Non-empty takes so far.
    takes: u64,
}

/// Both ends' shared state.
pub struct Pipe {
    state: Mutex<State>,
    changed: Notify,
    max_unread: usize,
    max_unsent: usize,
}

impl Pipe {
    /// A pipe holding at most `max_unread` posted bytes the session has not
    /// read, and `max_unsent` written bytes no request has taken (past that
    /// the session's writes wait, and its write timeout ends a client that
    /// stopped polling, as a full socket would).
    pub fn new(max_unread: usize, max_unsent: usize) -> (Arc<Pipe>, SessionEnd) {
        let pipe = Arc::new(Pipe { state: Mutex::default(), changed: Notify::new(), max_unread, max_unsent });
        (pipe.clone(), SessionEnd(pipe))
    }

    /// Numbers a request of this session; a held poll with an older number
    /// gives way.
    pub fn begin_request(&self) -> u64 {
        let mut state = self.state.lock();
        state.requests += 1;
        let n = state.requests;
        drop(state);
        self.changed.notify_waiters();
        n
    }

    /// Hands the client's bytes to the session.
    pub fn post(&self, bytes: &[u8]) -> Result<(), PostError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock();
        if state.session_gone || state.client_gone {
            return Err(PostError::Closed);
        }
        if state.to_server.len() + bytes.len() > self.max_unread {
            return Err(PostError::Full);
        }
        state.to_server.extend_from_slice(bytes);
        state.starved = false;
        if let Some(w) = state.reader.take() {
            w.wake();
        }
        Ok(())
    }

    /// Waits as `wait` says, at most `limit`, and takes what the session
    /// wrote.
    pub async fn answer(&self, wait: Wait, limit: Duration) -> Taken {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ready(wait) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        self.take(wait)
    }

    fn ready(&self, wait: Wait) -> bool {
        let state = self.state.lock();
        state.session_gone
            || match wait {
                Wait::Answered => state.starved,
                Wait::Output { superseded_after } => !state.to_client.is_empty() || state.requests > superseded_after,
                Wait::Nothing => true,
            }
    }

    fn take(&self, wait: Wait) -> Taken {
        let mut state = self.state.lock();
        // A poll that a newer request overtook leaves everything to that
        // one: the client then reads the session's bytes in order even
        // when the two answers cross on their way back.
        if let Wait::Output { superseded_after } = wait
            && state.requests > superseded_after
        {
            return Taken { bytes: Bytes::new(), sequence: None, closed: false };
        }
        let bytes = state.to_client.split().freeze();
        let sequence = (!bytes.is_empty()).then(|| {
            state.takes += 1;
            state.takes
        });
        // Give the memory back: an idle session should hold no buffer.
        state.to_client = BytesMut::new();
        if let Some(w) = state.writer.take() {
            w.wake();
        }
        Taken { bytes, sequence, closed: state.session_gone }
    }

    /// The client is gone (idle past the limit, or the server stops): the
    /// session reads the end of its stream and signs out as on a dropped
    /// socket.
    pub fn close(&self) {
        let mut state = self.state.lock();
        state.client_gone = true;
        if let Some(w) = state.reader.take() {
            w.wake();
        }
        if let Some(w) = state.writer.take() {
            w.wake();
        }
    }

    /// Whether the session has ended.
    pub fn session_gone(&self) -> bool {
        self.state.lock().session_gone
    }
}

/// The session's end of the pipe; dropping it ends the session's side.
pub struct SessionEnd(Arc<Pipe>);

impl SessionEnd {
    fn finish(&self) {
        self.0.state.lock().session_gone = true;
        self.0.changed.notify_waiters();
    }
}

impl Drop for SessionEnd {
    fn drop(&mut self) {
        self.finish();
    }
}

impl AsyncRead for SessionEnd {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut state = self.0.state.lock();
        if !state.to_server.is_empty() {
            let n = state.to_server.len().min(buf.remaining());
            buf.put_slice(&state.to_server.split_to(n));
            if state.to_server.is_empty() {
                state.to_server = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        if state.client_gone {
            return Poll::Ready(Ok(()));
        }
        state.reader = Some(cx.waker().clone());
        let newly_starved = !state.starved;
        state.starved = true;
        drop(state);
        if newly_starved {
            self.0.changed.notify_waiters();
        }
        Poll::Pending
    }
}

impl AsyncWrite for SessionEnd {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut state = self.0.state.lock();
        if state.client_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = self.0.max_unsent.saturating_sub(state.to_client.len());
        if room == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        state.to_client.extend_from_slice(&data[..n]);
        drop(state);
        self.0.changed.notify_waiters();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.finish();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SOON: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn an_answer_carries_every_reply_to_what_was_posted() {
        let (pipe, mut session) = Pipe::new(1024, 1024);
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            loop {
                let n = session.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                // A reply written in two pieces, with a pause between.
                session.write_all(&buf[..n]).await.unwrap();
                tokio::task::yield_now().await;
                session.write_all(b"!").await.unwrap();
            }
        });
        pipe.post(b"hello").unwrap();
        let taken = pipe.answer(Wait::Answered, SOON).await;
        assert_eq!(&taken.bytes[..], b"hello!");
        assert!(!taken.closed);
        pipe.close();
        echo.await.unwrap();
        assert!(pipe.answer(Wait::Answered, SOON).await.closed);
        assert_eq!(pipe.post(b"x"), Err(PostError::Closed));
    }

    #[tokio::test]
    async fn posts_past_the_unread_limit_are_refused() {
        let (pipe, _session) = Pipe::new(8, 8);
        pipe.post(b"12345678").unwrap();
        assert_eq!(pipe.post(b"9"), Err(PostError::Full));
    }

    #[tokio::test]
    async fn a_session_that_writes_more_than_is_taken_waits() {
        let (pipe, mut session) = Pipe::new(8, 4);
        let writer = tokio::spawn(async move { session.write_all(b"abcdefghij").await.map(|()| session) });
        let mut got = Vec::new();
        while got.len() < 10 {
            let taken = pipe.answer(Wait::Output { superseded_after: u64::MAX }, SOON).await;
            assert!(taken.bytes.len() <= 4);
            got.extend_from_slice(&taken.bytes);
        }
        assert_eq!(got, b"abcdefghij");
        drop(writer.await.unwrap());
        assert!(pipe.session_gone());
    }

    #[tokio::test]
    async fn a_held_poll_gives_way_to_a_newer_request() {
        let (pipe, _session) = Pipe::new(8, 8);
        let first = pipe.begin_request();
        let held = {
            let pipe = pipe.clone();
            tokio::spawn(async move { pipe.answer(Wait::Output { superseded_after: first }, SOON * 10).await })
        };
        tokio::task::yield_now().await;
        pipe.begin_request();
        let taken = tokio::time::timeout(SOON, held).await.expect("released").unwrap();
        assert!(taken.bytes.is_empty());
    }
}
