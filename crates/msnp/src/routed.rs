//! Routed messages: the payload of `SDG`, `PUT`, `DEL` and `NFY` (MSNP18
//! circles, then all of MSNP21). Three header blocks, each ended by an
//! empty line (`Routing: 1.0` with `To`/`From`, `Reliability: 1.0`, then
//! `Messaging: 2.0` or `Publication: 1.0` with the content's headers), then
//! the body. Addresses are `network:name[;key=value...]`, e.g.
//! `9:00000000-0000-0000-0009-0123456789ab@live.com;path=IM` for a circle or
//! `1:alice@example.com;epid={guid}` for one endpoint of a Messenger user.

use bytes::Bytes;

/// Most header lines one block may hold.
pub const MAX_HEADERS: usize = 32;

/// Why a routed message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoutedError {
    #[error("fewer than three header blocks")]
    MissingBlock,
    #[error("a header line without a colon, or not UTF-8")]
    BadHeader,
    #[error("more than {MAX_HEADERS} headers in a block")]
    TooManyHeaders,
}

/// One block of `Name: value` lines, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The first value of a header, by name without case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Headers {
        self.0.push((name.to_string(), value.into()));
        self
    }

    fn parse(block: &[u8]) -> Result<Headers, RoutedError> {
        let text = std::str::from_utf8(block).map_err(|_| RoutedError::BadHeader)?;
        let mut headers = Vec::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            // A stray CR or LF would end a block early once written again.
            if line.contains(['\r', '\n']) {
                return Err(RoutedError::BadHeader);
            }
            if headers.len() == MAX_HEADERS {
                return Err(RoutedError::TooManyHeaders);
            }
            let (name, value) = line.split_once(':').ok_or(RoutedError::BadHeader)?;
            if name.is_empty() || name.contains(' ') {
                return Err(RoutedError::BadHeader);
            }
            headers.push((name.to_string(), value.trim_start().to_string()));
        }
        Ok(Headers(headers))
    }

    fn write(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.0 {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A routed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutedMessage {
    pub routing: Headers,
    pub reliability: Headers,
    /// `Messaging: 2.0` (SDG) or `Publication: 1.0` (PUT, NFY) and the
    /// content's headers.
    pub content: Headers,
    pub body: Bytes,
}

impl RoutedMessage {
    /// Reads a payload: three blocks, each ended by an empty line, then
    /// the body.
    pub fn parse(payload: &[u8]) -> Result<RoutedMessage, RoutedError> {
        let mut rest = payload;
        let mut blocks = Vec::with_capacity(3);
        for _ in 0..3 {
            let end = find(rest, b"\r\n\r\n").ok_or(RoutedError::MissingBlock)?;
            // Each block names itself (`Routing: 1.0` ...): none is empty.
            let block = Headers::parse(&rest[..end + 2])?;
            if block.0.is_empty() {
                return Err(RoutedError::MissingBlock);
            }
            blocks.push(block);
            rest = &rest[end + 4..];
        }
        let content = blocks.pop().unwrap_or_default();
        let reliability = blocks.pop().unwrap_or_default();
        let routing = blocks.pop().unwrap_or_default();
        Ok(RoutedMessage { routing, reliability, content, body: Bytes::copy_from_slice(rest) })
    }

    /// Writes the payload: the inverse of [`RoutedMessage::parse`].
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(256 + self.body.len());
        for block in [&self.routing, &self.reliability, &self.content] {
            block.write(&mut out);
        }
        out.extend_from_slice(&self.body);
        Bytes::from(out)
    }

    /// The `To` address.
    pub fn to(&self) -> Option<RoutedAddress> {
        RoutedAddress::parse(self.routing.get("To")?)
    }

    /// The `From` address.
    pub fn from(&self) -> Option<RoutedAddress> {
        RoutedAddress::parse(self.routing.get("From")?)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `network:name` with `;key=value` parameters (`epid`, `path`, `via`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedAddress {
    pub network: u32,
    pub name: String,
    pub params: Vec<(String, String)>,
}

/// The network id of circles (persistent group chats, MSNP18).
pub const CIRCLE_NETWORK: u32 = 9;

impl RoutedAddress {
    pub fn parse(s: &str) -> Option<RoutedAddress> {
        let mut parts = s.trim().split(';');
        let (network, name) = parts.next()?.split_once(':')?;
        let network = network.parse().ok()?;
        if name.is_empty() {
            return None;
        }
        let params = parts
            .map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Option<Vec<_>>>()?;
        Some(RoutedAddress { network, name: name.to_string(), params })
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for RoutedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.network, self.name)?;
        for (k, v) in &self.params {
            write!(f, ";{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDG: &[u8] = b"Routing: 1.0\r\nTo: 9:00000000-0000-0000-0009-0123456789ab@live.com;path=IM\r\nFrom: 1:alice@example.com;epid={f52973b6-c926-4bad-9ba8-7c1e840e4ab0}\r\n\r\nReliability: 1.0\r\n\r\nMessaging: 2.0\r\nMessage-Type: Text\r\nContent-Length: 5\r\nContent-Type: Text/plain; charset=UTF-8\r\n\r\nhello";

    #[test]
    fn a_circle_message_reads_and_writes_back() {
        let m = RoutedMessage::parse(SDG).unwrap();
        assert_eq!(m.content.get("message-type"), Some("Text"));
        assert_eq!(&m.body[..], b"hello");
        let to = m.to().unwrap();
        assert_eq!((to.network, to.param("path")), (CIRCLE_NETWORK, Some("IM")));
        assert_eq!(
            crate::circle::CircleId::of_address(&to).map(|c| c.hex().to_string()).as_deref(),
            Some("0123456789ab")
        );
        assert_eq!(m.from().unwrap().param("epid"), Some("{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"));
        assert_eq!(&m.to_bytes()[..], SDG);
        assert_eq!(RoutedMessage::parse(&m.to_bytes()), Ok(m));
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(RoutedMessage::parse(b"Routing: 1.0\r\n\r\n"), Err(RoutedError::MissingBlock));
        assert_eq!(RoutedMessage::parse(b"\r\n\r\nA: 1\r\n\r\nB: 2\r\n\r\n"), Err(RoutedError::MissingBlock));
        assert_eq!(RoutedMessage::parse(b"A: 1\rX\r\n\r\nB: 2\r\n\r\nC: 3\r\n\r\n"), Err(RoutedError::BadHeader));
        assert_eq!(RoutedMessage::parse(b"nonsense\r\n\r\n\r\n\r\n\r\n\r\n"), Err(RoutedError::BadHeader));
        let many: String = (0..40).map(|i| format!("H{i}: x\r\n")).collect();
        let flood = format!("{many}\r\n\r\n\r\n");
        assert_eq!(RoutedMessage::parse(flood.as_bytes()), Err(RoutedError::TooManyHeaders));
        assert_eq!(RoutedAddress::parse("alice@example.com"), None);
        let circle = |a: &str| crate::circle::CircleId::of_address(&RoutedAddress::parse(a).unwrap());
        assert_eq!(circle("9:someone@live.com"), None);
        assert_eq!(circle("1:00000000-0000-0000-0009-0123456789ab@live.com"), None);
    }
}
