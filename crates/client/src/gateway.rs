//! MSNP through an HTTP polling gateway (`/gateway/gateway.dll`), for
//! networks where port 1863 is blocked.
//!
//! The connection hands the session one end of an in-memory pipe; a task
//! on the other end posts what the session writes (`Action=open` first,
//! then `SessionID=`) and long-polls (`Action=poll&Lifespan=`) for what the
//! server says. A post made while a poll is held overtakes it; the server
//! then leaves everything to the post, and the task reads the poll's answer
//! before the post's, so bytes arrive in order. Every request is one
//! connection, like the rest of the client's HTTP.

use std::path::PathBuf;

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinSet;

use crate::error::{ClientError, Result};
use crate::http::{Answer, post};

/// Which kind of server a gateway session is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// Dispatch or notification (`Server=NS`).
    Notification,
    /// Switchboard (`Server=SB`).
    Switchboard,
}

/// The header the server numbers its answers with (see the module's
/// comment); a server without it is answered in order anyway.
const SEQUENCE_HEADER: &str = "X-Mariposa-Sequence";
/// How long a poll may be held by the server.
const LIFESPAN_SECS: u64 = 20;
/// What one post carries at most.
const MAX_POST: usize = 16 * 1024;

/// The gateway's URL: `base` as given when it names the gateway, or with
/// the gateway's path added to a bare `http(s)://host[:port]`.
pub fn gateway_url(base: &str) -> String {
    if base.contains("/gateway/") {
        base.to_string()
    } else {
        format!("{}/gateway/gateway.dll", base.trim_end_matches('/'))
    }
}

/// Opens a gateway session to `address` and returns the pipe end that
/// carries it. The session's task ends when either side closes.
pub fn open(url: &str, address: &str, kind: ServerKind, trust_ca: Option<PathBuf>) -> DuplexStream {
    let (mine, theirs) = tokio::io::duplex(64 * 1024);
    let server = match kind {
        ServerKind::Notification => "NS",
        ServerKind::Switchboard => "SB",
    };
    let open = format!("Action=open&Server={server}&IP={address}");
    tokio::spawn(carry(gateway_url(url), open, theirs, trust_ca));
    mine
}

/// The session's task: posts, polls, and writes answers into the pipe.
///
/// One post at a time, so the server reads the commands in the order they
/// were written; a poll is held open only while nothing else is in flight,
/// and a post may overtake it. Answers are put in order by the server's
/// sequence numbers before they go into the pipe.
async fn carry(url: String, open: String, mut pipe: DuplexStream, trust_ca: Option<PathBuf>) {
    let result: Result<()> = async {
        let mut buf = vec![0u8; MAX_POST];
        // Nothing to poll for before the client's first command.
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let answer = post(&format!("{url}?{open}"), &buf[..n], trust_ca.as_deref()).await?;
        let mut order = Reorder::default();
        let Some(mut session) = order.deliver(answer, &mut pipe).await? else { return Ok(()) };
        let mut in_flight: JoinSet<(bool, Result<Answer>)> = JoinSet::new();
        let mut posting = false;
        let mut unsent: Vec<u8> = Vec::new();
        loop {
            if !posting && !unsent.is_empty() {
                let send_url = format!("{url}?SessionID={session}");
                let (body, trust) = (std::mem::take(&mut unsent), trust_ca.clone());
                in_flight.spawn(async move { (false, post(&send_url, &body, trust.as_deref()).await) });
                posting = true;
            }
            if in_flight.is_empty() {
                let poll_url = format!("{url}?Action=poll&SessionID={session}&Lifespan={LIFESPAN_SECS}");
                let trust = trust_ca.clone();
                in_flight.spawn(async move { (true, post(&poll_url, &[], trust.as_deref()).await) });
            }
            tokio::select! {
                Some(done) = in_flight.join_next() => {
                    let (was_poll, answer) = done.map_err(|e| ClientError::Protocol(e.to_string()))?;
                    posting &= was_poll;
                    match order.deliver(answer?, &mut pipe).await? {
                        Some(next) => session = next,
                        None => return Ok(()),
                    }
                }
                n = pipe.read(&mut buf), if unsent.len() < MAX_POST => {
                    let n = n?;
                    if n == 0 {
                        return Ok(());
                    }
                    unsent.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        tracing::debug!("gateway session ended: {e}");
    }
    let _ = pipe.shutdown().await;
}

/// Answers held back until those before them in the session's output came.
#[derive(Default)]
struct Reorder {
    delivered: u64,
    waiting: BTreeMap<u64, Vec<u8>>,
}

impl Reorder {
    /// Takes in an answer and writes whatever is now in order into the
    /// pipe; the session id to use next, or `None` once the gateway closed
    /// the session.
    async fn deliver(&mut self, answer: Answer, pipe: &mut DuplexStream) -> Result<Option<String>> {
        let next = session_after(&answer)?;
        let sequence = answer.header(SEQUENCE_HEADER).and_then(|n| n.parse::<u64>().ok());
        match sequence {
            Some(n) if n > self.delivered => {
                self.waiting.insert(n, answer.body);
            }
            // A server that does not number its answers answers one
            // request at a time, in order.
            None => pipe.write_all(&answer.body).await?,
            Some(_) => return Err(ClientError::Protocol("the gateway repeated an answer".into())),
        }
        while let Some(body) = self.waiting.remove(&(self.delivered + 1)) {
            pipe.write_all(&body).await?;
            self.delivered += 1;
        }
        if self.waiting.len() > 64 {
            return Err(ClientError::Protocol("the gateway's answers lost their order".into()));
        }
        Ok(next)
    }
}

/// The session id an answer says to use next, or `None` when it closed
/// the session.
fn session_after(answer: &Answer) -> Result<Option<String>> {
    if answer.status != 200 {
        return Err(ClientError::Protocol(format!("the gateway answered HTTP {}", answer.status)));
    }
    let header = answer
        .header("X-MSN-Messenger")
        .ok_or_else(|| ClientError::Protocol("the gateway's answer has no X-MSN-Messenger".into()))?;
    let mut session = None;
    for part in header.split(';').map(str::trim) {
        if part == "Session=close" {
            return Ok(None);
        }
        if let Some(id) = part.strip_prefix("SessionID=") {
            session = Some(id.to_string());
        }
    }
    session.map(Some).ok_or_else(|| ClientError::Protocol("the gateway named no session".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_gets_the_gateway_path() {
        assert_eq!(gateway_url("http://127.0.0.1:80"), "http://127.0.0.1:80/gateway/gateway.dll");
        assert_eq!(gateway_url("https://gw.example/"), "https://gw.example/gateway/gateway.dll");
        assert_eq!(gateway_url("http://h/gateway/gateway.dll"), "http://h/gateway/gateway.dll");
    }

    fn answer(header: &str, sequence: Option<u64>, body: &[u8]) -> Answer {
        let mut headers = vec![("X-MSN-Messenger".to_string(), header.to_string())];
        headers.extend(sequence.map(|n| (SEQUENCE_HEADER.to_string(), n.to_string())));
        Answer { status: 200, headers, body: body.to_vec() }
    }

    #[tokio::test]
    async fn answers_go_into_the_pipe_in_the_server_s_order_until_it_closes() {
        let (mut client, mut pipe) = tokio::io::duplex(1024);
        let mut order = Reorder::default();
        // The second answer arrives first; it waits for the first.
        let next = order.deliver(answer("SessionID=ab.1; GW-IP=h", Some(2), b"B\r\n"), &mut pipe).await.unwrap();
        assert_eq!(next.as_deref(), Some("ab.1"));
        order.deliver(answer("SessionID=ab.1; GW-IP=h", None, b""), &mut pipe).await.unwrap();
        order.deliver(answer("SessionID=ab.1; GW-IP=h", Some(1), b"A\r\n"), &mut pipe).await.unwrap();
        let closing = answer("SessionID=ab.1; GW-IP=h; Session=close", Some(3), b"OUT\r\n");
        assert!(order.deliver(closing, &mut pipe).await.unwrap().is_none());
        let mut got = vec![0u8; 11];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"A\r\nB\r\nOUT\r\n");
        let refused = Answer { status: 400, headers: vec![], body: vec![] };
        assert!(order.deliver(refused, &mut pipe).await.is_err());
        let repeated = answer("SessionID=ab.1; GW-IP=h", Some(2), b"B\r\n");
        assert!(order.deliver(repeated, &mut pipe).await.is_err());
    }
}
