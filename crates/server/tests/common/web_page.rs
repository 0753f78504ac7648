//! A messenger page without a browser: the session cookie from the sign-in
//! form, and the live channel over a real WebSocket (tokio-tungstenite),
//! each frame visible to the test.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{WebSocketStream, client_async};
use webchat::{ClientFrame, Numbered, ServerFrame, VERSION};

use super::{TestServer, post_form};

const WAIT: Duration = Duration::from_secs(20);

/// Signs in through the form: the cookie (`name=value`).
pub async fn session_cookie(server: &TestServer, name: &str) -> String {
    let email = format!("{name}@example.com");
    let password = format!("pw-{name}");
    let answer = post_form(server, "/messenger/login", &[("email", &email), ("password", &password)], None).await;
    assert_eq!(answer.status, 303, "signing in to the messenger");
    let set = answer.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("set-cookie")).expect("a cookie").1.clone();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

/// Opens the socket with these headers: the socket, or the HTTP status it
/// was refused with.
pub async fn open_socket(
    http: SocketAddr,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<WebSocketStream<TcpStream>, u16> {
    let mut request = format!("ws://localhost:{}/messenger/socket", http.port()).into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Host", format!("localhost:{}", http.port()).parse().unwrap());
    if let Some(cookie) = cookie {
        headers.insert("Cookie", cookie.parse().unwrap());
    }
    if let Some(origin) = origin {
        headers.insert("Origin", origin.parse().unwrap());
    }
    let stream = TcpStream::connect(http).await.unwrap();
    match client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// A page on the live channel.
pub struct Page {
    pub ws: WebSocketStream<TcpStream>,
    pub name: String,
    pub last_seen: u64,
}

impl Page {
    /// A new page of a signed-in browser; its welcome read.
    pub async fn open(server: &TestServer, cookie: &str) -> Page {
        Page::come_back(server, cookie, None).await.0
    }

    /// The page `(name, last_seen)` coming back: the page, and whether the
    /// server resumed it.
    pub async fn come_back(server: &TestServer, cookie: &str, from: Option<(&str, u64)>) -> (Page, bool) {
        let http = server.http.unwrap();
        let origin = format!("http://localhost:{}", http.port());
        let mut ws = open_socket(http, Some(cookie), Some(&origin)).await.expect("the socket opens");
        let hello = ClientFrame::Hello {
            version: VERSION,
            page: from.map(|(n, _)| n.to_string()),
            last_seen: from.map(|(_, s)| s),
        };
        ws.send(Message::text(hello.encode())).await.unwrap();
        let mut page = Page { ws, name: String::new(), last_seen: from.map_or(0, |(_, s)| s) };
        match page.next().await {
            ServerFrame::Welcome { page: name, resumed, .. } => {
                page.name = name;
                if !resumed {
                    // A page that starts over is numbered from the start.
                    page.last_seen = 0;
                }
                (page, resumed)
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Sends anything at all (hostile tests); false once the socket is gone.
    pub async fn send_raw(&mut self, message: Message) -> bool {
        self.ws.send(message).await.is_ok()
    }

    pub async fn send(&mut self, frame: ClientFrame) {
        self.ws.send(Message::text(frame.encode())).await.unwrap();
    }

    /// The next frame; numbered ones are remembered as seen.
    pub async fn next(&mut self) -> ServerFrame {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame in time");
            match message {
                Some(Ok(Message::Text(text))) => {
                    let numbered = Numbered::parse(text.as_str()).expect("a frame of the protocol");
                    if numbered.seq > 0 {
                        assert!(numbered.seq > self.last_seen, "frame {} shown twice", numbered.seq);
                        self.last_seen = numbered.seq;
                    }
                    return numbered.frame;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    }

    /// The first frame `want` picks, skipping others.
    pub async fn until<T>(&mut self, want: impl Fn(&ServerFrame) -> Option<T>) -> T {
        loop {
            if let Some(found) = want(&self.next().await) {
                return found;
            }
        }
    }

    /// The close code the server ended the socket with.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("the close in time") {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("the socket broke instead of closing: {e}"),
            }
        }
    }

    /// Acknowledges everything seen.
    pub async fn ack(&mut self) {
        let seq = self.last_seen;
        self.send(ClientFrame::Ack { seq }).await;
    }
}
