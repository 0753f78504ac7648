//! Framing: turning a byte stream into command lines and payloads.
//!
//! A command is one CRLF-terminated line. A few commands (per direction) carry
//! a payload whose byte length is their last argument; the payload follows the
//! line's CRLF immediately and has no terminator of its own (draft 5.2).
//!
//! The [`Decoder`] owns no buffer: callers feed it a `BytesMut` that they fill
//! from the socket, so it can sit inside a `tokio_util` codec (where the buffer
//! lives in the framed reader and a cancelled read loses nothing) or in a
//! fuzzer. Limits are checked before anything is buffered: a peer that
//! announces a payload beyond the limit is refused at the line, and a line
//! that never ends is refused once it passes the line limit.

use bytes::{Buf, Bytes, BytesMut};

/// Which side sends the stream being decoded. The set of payload-carrying
/// commands differs: `UUX` carries a payload only from a client, `UBX`, `GCF`
/// and `NOT` only from a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: decoded by servers.
    ToServer,
    /// Server to client: decoded by clients.
    ToClient,
}

impl Direction {
    /// Whether a command verb carries a payload in this direction.
    pub fn has_payload(self, verb: &[u8]) -> bool {
        match self {
            Direction::ToServer => {
                matches!(
                    verb,
                    b"MSG"
                        | b"QRY"
                        | b"UUX"
                        | b"SDC"
                        | b"ADL"
                        | b"RML"
                        | b"FQY"
                        | b"UUN"
                        | b"UUM"
                        | b"PUT"
                        | b"SDG"
                        | b"DEL"
                )
            }
            Direction::ToClient => {
                matches!(
                    verb,
                    b"MSG"
                        | b"NOT"
                        | b"UBX"
                        | b"GCF"
                        | b"IPG"
                        | b"ADL"
                        | b"RML"
                        | b"FQY"
                        | b"UBN"
                        | b"UBM"
                        | b"NFY"
                        | b"SDG"
                        | b"PUT"
                        | b"DEL"
                )
            }
        }
    }
}

/// Limits that bound the memory one peer can make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line, without its CRLF.
    pub max_line: usize,
    /// Largest payload announced by a payload command.
    pub max_payload: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_line: 4096, max_payload: 1664 }
    }
}

/// One decoded command: its line (without CRLF) and, for payload commands,
/// the payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub line: String,
    pub payload: Option<Bytes>,
}

impl Frame {
    /// The three-letter verb (or error number), if the line has one.
    pub fn verb(&self) -> &str {
        self.line.split(' ').find(|s| !s.is_empty()).unwrap_or("")
    }

    /// The arguments after the verb, split on runs of spaces and tabs.
    pub fn args(&self) -> Vec<&str> {
        self.line.split([' ', '\t']).filter(|s| !s.is_empty()).skip(1).collect()
    }

    /// Encodes the frame back to bytes: the line, CRLF, then the payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.line.len() + 2 + self.payload.as_ref().map_or(0, |p| p.len()));
        out.extend_from_slice(self.line.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(p) = &self.payload {
            out.extend_from_slice(p);
        }
        out
    }
}

/// Why a stream cannot be decoded further. Every variant means the stream is
/// out of step or hostile, and the connection should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("command line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("payload of {announced} bytes exceeds the limit of {limit}")]
    PayloadTooLarge { announced: usize, limit: usize },
    #[error("payload command without a valid length")]
    BadPayloadLength,
}

/// The framing state machine. See the module documentation.
#[derive(Debug, Clone)]
pub struct Decoder {
    direction: Direction,
    limits: Limits,
    /// A line already read whose payload has not fully arrived.
    awaiting_payload: Option<(String, usize)>,
}

impl Decoder {
    pub fn new(direction: Direction, limits: Limits) -> Decoder {
        Decoder { direction, limits, awaiting_payload: None }
    }

    /// Changes the limits, e.g. once a connection's role is known.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Whether a command line was read whose payload has not fully arrived.
    pub fn is_mid_frame(&self) -> bool {
        self.awaiting_payload.is_some()
    }

    /// Takes the next complete frame from `buf`, or `Ok(None)` when more bytes
    /// are needed. Consumed bytes are removed from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            if let Some((_, len)) = &self.awaiting_payload {
                let len = *len;
                if buf.len() < len {
                    buf.reserve(len - buf.len());
                    return Ok(None);
                }
                let (line, _) = self.awaiting_payload.take().expect("checked above");
                let payload = buf.split_to(len).freeze();
                return Ok(Some(Frame { line, payload: Some(payload) }));
            }

            let search = buf.len().min(self.limits.max_line + 2);
            let Some(newline) = buf[..search].iter().position(|&b| b == b'\n') else {
                if buf.len() > self.limits.max_line + 1 {
                    return Err(FrameError::LineTooLong { limit: self.limits.max_line });
                }
                return Ok(None);
            };
            let mut line_end = newline;
            if line_end > 0 && buf[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            if line_end > self.limits.max_line {
                return Err(FrameError::LineTooLong { limit: self.limits.max_line });
            }
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            buf.advance(newline + 1);
            if line.trim().is_empty() {
                // Stray blank lines between commands are harmless noise.
                continue;
            }

            let verb = line.split([' ', '\t']).find(|s| !s.is_empty()).unwrap_or("");
            if !self.direction.has_payload(verb.as_bytes()) {
                return Ok(Some(Frame { line, payload: None }));
            }
            let last = line.split([' ', '\t']).filter(|s| !s.is_empty()).skip(1).last();
            // A server acknowledges list payloads with `ADL trid OK`: no payload.
            if self.direction == Direction::ToClient && last == Some("OK") {
                return Ok(Some(Frame { line, payload: None }));
            }
            let len = last
                .filter(|s| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or(FrameError::BadPayloadLength)?;
            if len > self.limits.max_payload {
                return Err(FrameError::PayloadTooLarge { announced: len, limit: self.limits.max_payload });
            }
            self.awaiting_payload = Some((line, len));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(Direction::ToServer, Limits { max_line: 64, max_payload: 16 })
    }

    fn all(d: &mut Decoder, input: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = d.decode(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn splits_lines_and_payloads() {
        let frames = all(&mut decoder(), b"VER 1 MSNP2\r\nMSG 2 N 5\r\nhello\r\nOUT\n").unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].line, "VER 1 MSNP2");
        assert_eq!(frames[1].payload.as_deref(), Some(&b"hello"[..]));
        assert_eq!(frames[2].line, "OUT");
    }

    #[test]
    fn payload_may_arrive_byte_by_byte() {
        let mut d = decoder();
        let mut buf = BytesMut::new();
        let input = b"MSG 2 A 4\r\nab\r\nPNG\r\n";
        let mut frames = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].payload.as_deref(), Some(&b"ab\r\n"[..]));
        assert_eq!(frames[1].line, "PNG");
    }

    #[test]
    fn refuses_oversized_payload_before_buffering_it() {
        assert_eq!(
            all(&mut decoder(), b"MSG 2 A 17\r\n"),
            Err(FrameError::PayloadTooLarge { announced: 17, limit: 16 })
        );
        assert_eq!(all(&mut decoder(), b"MSG 2 A 99999999999999\r\n"), Err(FrameError::BadPayloadLength));
        assert_eq!(all(&mut decoder(), b"MSG 2 A -1\r\n"), Err(FrameError::BadPayloadLength));
        assert_eq!(all(&mut decoder(), b"MSG\r\n"), Err(FrameError::BadPayloadLength));
    }

    #[test]
    fn refuses_endless_lines() {
        let long = vec![b'A'; 100];
        assert_eq!(all(&mut decoder(), &long), Err(FrameError::LineTooLong { limit: 64 }));
        let mut exact = vec![b'A'; 64];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(all(&mut decoder(), &exact).unwrap().len(), 1);
        let mut over = vec![b'A'; 65];
        over.extend_from_slice(b"\r\n");
        assert!(all(&mut decoder(), &over).is_err());
    }

    #[test]
    fn direction_decides_payload_commands() {
        let mut client_side = Decoder::new(Direction::ToClient, Limits::default());
        let frames = all(&mut client_side, b"UUX 8 0\r\nUBX a@b.c 2\r\nhi").unwrap();
        assert_eq!(frames[0].payload, None);
        assert_eq!(frames[1].payload.as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn args_split_on_runs_of_spaces() {
        let f = Frame { line: "ADD  5 FL\ta@b.c  A".into(), payload: None };
        assert_eq!(f.verb(), "ADD");
        assert_eq!(f.args(), ["5", "FL", "a@b.c", "A"]);
    }
}
