//! A raw XMPP client for the tests: the `xmpp` crate's wire over TCP and
//! TLS, each step visible to the test.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use xmpp::stream::{Incoming, StreamReader};
use xmpp::{Element, NS_CLIENT};

use super::*;

/// How long a test waits for anything.
const PATIENCE: Duration = Duration::from_secs(10);

/// One side of a stream, plain or TLS.
pub struct XmppStream<S> {
    pub io: S,
    reader: StreamReader,
    ready: VecDeque<Incoming>,
    /// The stream error or fault that ended it, if one did.
    pub fault: Option<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> XmppStream<S> {
    pub fn new(io: S) -> XmppStream<S> {
        XmppStream { io, reader: StreamReader::new(), ready: VecDeque::new(), fault: None }
    }

    pub async fn send(&mut self, text: &str) {
        self.io.write_all(text.as_bytes()).await.expect("writing to msnd");
        // TLS keeps what was written until flushed.
        self.io.flush().await.expect("writing to msnd");
    }

    /// The next thing the server sent; `None` when the socket closed.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            let mut buf = vec![0u8; 8192];
            let n = tokio::time::timeout(PATIENCE, self.io.read(&mut buf)).await.expect("msnd answered in time");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    let mut items = Vec::new();
                    if let Err(e) = self.reader.feed(&buf[..n], &mut items) {
                        self.fault = Some(e.to_string());
                    }
                    self.ready.extend(items);
                }
            }
        }
    }

    /// The next element (skipping nothing).
    pub async fn element(&mut self) -> Element {
        match self.next().await {
            Some(Incoming::Element(e)) => e,
            other => panic!("expected an element, got {other:?}"),
        }
    }

    /// Elements until one that `wanted` accepts.
    pub async fn until(&mut self, wanted: impl Fn(&Element) -> bool) -> Element {
        loop {
            let e = self.element().await;
            if wanted(&e) {
                return e;
            }
        }
    }

    /// The condition of the stream error the server ends with.
    pub async fn stream_error(&mut self) -> String {
        loop {
            match self.next().await {
                Some(Incoming::Element(e)) if e.name() == "error" && e.ns() == xmpp::NS_STREAMS => {
                    return e.children().next().map(|c| c.name().to_string()).unwrap_or_default();
                }
                Some(_) => continue,
                None => panic!("the stream closed without an error"),
            }
        }
    }

    pub fn restart(&mut self) {
        self.reader = StreamReader::new();
        self.ready.clear();
    }

    /// Opens a stream to `domain` and reads the header and features.
    pub async fn open(&mut self, domain: &str) -> Element {
        self.send(&xmpp::write::client_header(domain)).await;
        assert!(matches!(self.next().await, Some(Incoming::Header(_))), "a stream header");
        self.element().await
    }
}

pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A signed-in, bound XMPP client.
pub struct Jabber {
    pub stream: XmppStream<Tls>,
    /// Its full JID.
    pub jid: String,
    next_id: u32,
}

/// How a test client authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Mechanism {
    Plain,
    Scram,
}

/// A TCP connection to the XMPP listener.
pub async fn connect(server: &TestServer) -> XmppStream<TcpStream> {
    XmppStream::new(TcpStream::connect(server.xmpp.expect("an xmpp listener")).await.unwrap())
}

/// Connects, opens the stream and upgrades it to TLS.
pub async fn secure(server: &TestServer, domain: &str) -> XmppStream<Tls> {
    let mut plain = connect(server).await;
    let features = plain.open(domain).await;
    assert!(features.has_child("starttls", xmpp::NS_TLS), "STARTTLS offered: {}", String::from(&features));
    plain.send(&xmpp::write::starttls()).await;
    let proceed = plain.element().await;
    assert_eq!(proceed.name(), "proceed");
    let tls = tls_connector(server).connect("localhost".try_into().unwrap(), plain.io).await.expect("TLS");
    XmppStream::new(tls)
}

/// Authenticates on a secured stream; the SASL failure's condition if refused.
pub async fn authenticate(
    stream: &mut XmppStream<Tls>,
    domain: &str,
    user: &str,
    password: &str,
    mechanism: Mechanism,
) -> Result<(), String> {
    let features = stream.open(domain).await;
    let mechanisms = features.get_child("mechanisms", xmpp::NS_SASL).expect("SASL offered");
    let offered: Vec<String> = mechanisms.children().map(|m| m.text()).collect();
    let answer = match mechanism {
        Mechanism::Plain => {
            assert!(offered.iter().any(|m| m == "PLAIN"), "{offered:?}");
            let plain = xmpp::sasl::Plain { authzid: None, authcid: user.into(), password: password.into() };
            stream.send(&xmpp::write::sasl_auth("PLAIN", &plain.encode())).await;
            stream.element().await
        }
        Mechanism::Scram => {
            assert!(offered.iter().any(|m| m == "SCRAM-SHA-1"), "{offered:?}");
            let (mut client, first) = xmpp::sasl::ScramClient::new(user, password, "rOprNGfwEbeRWgbNEkqO");
            stream.send(&xmpp::write::sasl_auth("SCRAM-SHA-1", &first)).await;
            let challenge = stream.element().await;
            if challenge.name() != "challenge" {
                return Err(failure(&challenge));
            }
            let reply = client.answer(&b64(&challenge.text())).map_err(|e| e.to_string())?;
            stream.send(&xmpp::write::sasl_response(&reply)).await;
            let last = stream.element().await;
            if last.name() == "success" {
                assert!(client.server_verified(&b64(&last.text())), "the server proved it knows the password");
            }
            last
        }
    };
    match answer.name() {
        "success" => Ok(()),
        _ => Err(failure(&answer)),
    }
}

fn failure(e: &Element) -> String {
    e.children().next().map(|c| c.name().to_string()).unwrap_or_else(|| String::from(e))
}

fn b64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap_or_default()
}

impl Jabber {
    /// `name@example.com` signed in (with `mechanism`) and bound to `resource`.
    pub async fn sign_in(server: &TestServer, name: &str, resource: &str, mechanism: Mechanism) -> Jabber {
        let mut stream = secure(server, "example.com").await;
        authenticate(&mut stream, "example.com", name, &format!("pw-{name}"), mechanism).await.expect("signed in");
        stream.restart();
        let features = stream.open("example.com").await;
        assert!(features.has_child("bind", xmpp::NS_BIND));
        stream
            .send(&format!(
                "<iq type='set' id='bind'><bind xmlns='{}'><resource>{resource}</resource></bind></iq>",
                xmpp::NS_BIND
            ))
            .await;
        let bound = stream.element().await;
        assert_eq!(bound.attr("type"), Some("result"), "{}", String::from(&bound));
        let jid =
            bound.get_child("bind", xmpp::NS_BIND).and_then(|b| b.get_child("jid", xmpp::NS_BIND)).unwrap().text();
        Jabber { stream, jid, next_id: 0 }
    }

    /// Signed in, its roster read and its first presence sent; returns the
    /// roster and the contacts' presences that followed.
    pub async fn online(server: &TestServer, name: &str, resource: &str) -> (Jabber, Element) {
        let mut j = Jabber::sign_in(server, name, resource, Mechanism::Plain).await;
        let roster = j.query("get", "<query xmlns='jabber:iq:roster'/>").await;
        j.send("<presence/>").await;
        (j, roster)
    }

    pub async fn send(&mut self, xml: &str) {
        self.stream.send(xml).await;
    }

    /// Sends an `iq` of `kind` with `payload` and waits for its answer
    /// (skipping anything else that arrives first).
    pub async fn query(&mut self, kind: &str, payload: &str) -> Element {
        self.query_to(None, kind, payload).await
    }

    pub async fn query_to(&mut self, to: Option<&str>, kind: &str, payload: &str) -> Element {
        self.next_id += 1;
        let id = format!("q{}", self.next_id);
        let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
        self.send(&format!("<iq type='{kind}' id='{id}'{to}>{payload}</iq>")).await;
        self.stream.until(|e| e.name() == "iq" && e.attr("id") == Some(&id)).await
    }

    /// The next stanza named `name` (`message`, `presence`, `iq`).
    pub async fn next_named(&mut self, name: &str) -> Element {
        self.stream.until(|e| e.name() == name).await
    }

    /// The next chat message with a body; its sender and text.
    pub async fn next_said(&mut self) -> (String, String) {
        let m = self.stream.until(|e| e.name() == "message" && e.has_child("body", NS_CLIENT)).await;
        (m.attr("from").unwrap_or_default().to_string(), m.get_child("body", NS_CLIENT).unwrap().text())
    }

    /// The next presence from `contact`.
    pub async fn presence_of(&mut self, contact: &str) -> Element {
        self.stream.until(|e| e.name() == "presence" && e.attr("from") == Some(contact)).await
    }
}

/// A test server with the XMPP front on.
pub fn server_with_xmpp() -> TestServer {
    TestServer::start_with(&["--xmpp-listen", "127.0.0.1:0", "--challenges", "off"])
}

/// A chat message to `to` with `body`.
pub fn chat(to: &str, body: &str) -> String {
    format!(
        "<message to='{to}' type='chat' id='m{}'><body>{}</body></message>",
        rand::random::<u32>(),
        xmpp::write::escape(body)
    )
}
