//! The live channel: the HTTP front hands over a connection that asks for
//! a WebSocket at [`SOCKET_PATH`]; it is checked (same origin, a live
//! session cookie), upgraded, and tied to a page.
//!
//! The handshake is done here (RFC 6455 section 4.2) rather than by an HTTP
//! stack because msnd's HTTP front is its own (see `http`); tungstenite
//! then reads and writes the frames, bounded at `webchat::MAX_FRAME`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use webchat::{ClientFrame, MAX_FRAME, Unreadable, VERSION};

use super::page::{self, HELLO_WITHIN, Input};
use super::{PageHandle, Pages};
use crate::shared::Shared;

/// Where pages open their socket.
pub const SOCKET_PATH: &str = "/messenger/socket";
/// How often the server pings a quiet socket, and how long it waits for
/// anything before it counts the socket as gone.
const PING_EVERY: Duration = Duration::from_secs(25);
const SILENT_FOR: Duration = Duration::from_secs(70);
/// Frames a page may send in a second before its socket is closed (typing
/// notices and acknowledgements included; messages have the account's own
/// flood control as well).
const MAX_FRAMES_PER_SECOND: u32 = 40;
/// The GUID of RFC 6455 section 1.3.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The `Sec-WebSocket-Accept` for a key.
fn accept_key(key: &str) -> String {
    let digest = Sha1::new().chain_update(key.as_bytes()).chain_update(WEBSOCKET_GUID.as_bytes()).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A refused handshake's answer: the status and any header lines.
fn refusal(status: u16, reason: &str, headers: &str) -> String {
    format!("HTTP/1.1 {status} {reason}\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")
}

/// Serves one connection that asked for the messenger's socket.
/// `nothing_more` says no bytes came after the request (a client may not
/// send frames before it is answered).
pub async fn serve_socket<S>(
    mut stream: S,
    method: &str,
    headers: &[(String, String)],
    nothing_more: bool,
    shared: &Arc<Shared>,
    pages: &Arc<Pages>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut map = axum::http::HeaderMap::new();
    for (n, v) in headers {
        if let (Ok(n), Ok(v)) = (axum::http::HeaderName::try_from(n.as_str()), axum::http::HeaderValue::from_str(v)) {
            map.append(n, v);
        }
    }
    let key = header(headers, "Sec-WebSocket-Key")
        .filter(|k| base64::engine::general_purpose::STANDARD.decode(k.trim()).is_ok_and(|b| b.len() == 16));
    let upgrade = method == "GET"
        && has_token(header(headers, "Upgrade"), "websocket")
        && has_token(header(headers, "Connection"), "upgrade")
        && nothing_more;
    let answer = match (upgrade, key, header(headers, "Sec-WebSocket-Version")) {
        (false, _, _) | (_, None, _) => Err(refusal(400, "Bad Request", "")),
        (true, Some(_), version) if version.map(str::trim) != Some("13") => {
            Err(refusal(426, "Upgrade Required", "Sec-WebSocket-Version: 13\r\n"))
        }
        // A page of another site cannot open a socket with our cookie.
        _ if !super::routes::same_origin(&map, true) => Err(refusal(403, "Forbidden", "")),
        (true, Some(key), _) => Ok(key.trim().to_string()),
    };
    let key = match answer {
        Ok(key) => key,
        Err(refused) => {
            let _ = stream.write_all(refused.as_bytes()).await;
            return;
        }
    };
    let token = super::routes::session_token(&map).map(str::to_string);
    let account = match &token {
        Some(token) => shared.backend.web_session(token).await,
        None => None,
    };
    let (Some(account), Some(token)) = (account, token) else {
        let _ = stream.write_all(refusal(401, "Unauthorized", "").as_bytes()).await;
        return;
    };
    let switching = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(&key)
    );
    if stream.write_all(switching.as_bytes()).await.is_err() {
        return;
    }
    let config = WebSocketConfig::default().max_message_size(Some(MAX_FRAME)).max_frame_size(Some(MAX_FRAME));
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, Some(config)).await;

    // The first frame says which page this is.
    let hello = match tokio::time::timeout(HELLO_WITHIN, ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => ClientFrame::parse(text.as_str()),
        _ => return close(&mut ws, CloseCode::Policy, "hello first").await,
    };
    let (page_name, last_seen) = match hello {
        Ok(ClientFrame::Hello { version: VERSION, page, last_seen }) => (page, last_seen),
        Ok(ClientFrame::Hello { .. }) => return close(&mut ws, CloseCode::Protocol, "unknown version").await,
        _ => return close(&mut ws, CloseCode::Policy, "hello first").await,
    };
    let key = account.handle.to_ascii_lowercase();
    let session = super::session_id(&token);
    let found = page_name.as_deref().and_then(|name| pages.find(name, &key));
    let (page, last_seen) = match found {
        Some(page) => (page, last_seen),
        None => match page::open(shared, pages, &account, session).await {
            Ok((_, page)) => (page, None),
            Err(_) => return close(&mut ws, CloseCode::Again, "too many pages").await,
        },
    };
    let (out, mut frames) = mpsc::channel(page::SOCKET_QUEUE);
    if page.input.send(Input::Attach { last_seen, out }).await.is_err() {
        return close(&mut ws, CloseCode::Away, "the page ended").await;
    }
    relay(&mut ws, &page, &mut frames).await;
    let _ = page.input.try_send(Input::Detach);
}

/// Carries frames both ways until either side ends.
async fn relay<S>(ws: &mut WebSocketStream<S>, page: &PageHandle, frames: &mut mpsc::Receiver<String>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.reset();
    let mut heard = tokio::time::Instant::now();
    let (mut second, mut in_second) = (tokio::time::Instant::now(), 0u32);
    loop {
        tokio::select! {
            incoming = ws.next() => {
                heard = tokio::time::Instant::now();
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => return close(ws, CloseCode::Unsupported, "text frames only").await,
                    Some(Ok(Message::Close(_))) | None => return,
                    Some(Ok(_)) => continue,
                    Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(_))) => {
                        return close(ws, CloseCode::Size, "frame too large").await;
                    }
                    Some(Err(_)) => return,
                };
                if second.elapsed() >= Duration::from_secs(1) {
                    (second, in_second) = (tokio::time::Instant::now(), 0);
                }
                in_second += 1;
                if in_second > MAX_FRAMES_PER_SECOND {
                    return close(ws, CloseCode::Policy, "too many frames").await;
                }
                match ClientFrame::parse(text.as_str()) {
                    Ok(frame) => {
                        if page.input.send(Input::Frame(frame)).await.is_err() {
                            return close(ws, CloseCode::Normal, "").await;
                        }
                    }
                    Err(Unreadable::TooLarge) => return close(ws, CloseCode::Size, "frame too large").await,
                    Err(_) => return close(ws, CloseCode::Invalid, "not a frame of this protocol").await,
                }
            }
            out = frames.recv() => match out {
                Some(text) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        return;
                    }
                }
                // The page ended (its last frame was sent), or it dropped
                // this socket for not reading.
                None => return close(ws, CloseCode::Normal, "").await,
            },
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_FOR || ws.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() })).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_accept_key_is_the_rfcs() {
        // RFC 6455 section 1.3's example.
        assert_eq!(super::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}
