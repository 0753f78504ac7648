//! MSNSLP/P2P (MSNP9+): the binary packets clients exchange through the
//! switchboard for file transfers and display pictures, the SIP-like SLP
//! messages inside them, and the file context of a transfer invitation.

/// Size of the binary header.
pub const HEADER_LEN: usize = 48;
/// Largest payload in one packet over the switchboard.
pub const MAX_CHUNK: usize = 1202;
/// Flags of file data (as MSN 7 sends them).
pub const FLAGS_FILE_DATA: u32 = 0x0100_0030;
pub const FLAG_ACK: u32 = 0x02;
/// The application id (EUF-GUID) of file transfer.
pub const FILE_TRANSFER_GUID: &str = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}";

/// The 48-byte P2P header (all little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub session_id: u32,
    pub id: u32,
    pub offset: u64,
    pub total: u64,
    pub length: u32,
    pub flags: u32,
    pub ack_id: u32,
    pub ack_sub_id: u32,
    pub ack_size: u64,
}

/// Why a packet could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum P2pError {
    #[error("packet shorter than its header and footer")]
    Short,
    #[error("payload length does not match the packet")]
    BadLength,
    #[error("chunk outside its message")]
    BadOffset,
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.session_id.to_le_bytes());
        b[4..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.total.to_le_bytes());
        b[24..28].copy_from_slice(&self.length.to_le_bytes());
        b[28..32].copy_from_slice(&self.flags.to_le_bytes());
        b[32..36].copy_from_slice(&self.ack_id.to_le_bytes());
        b[36..40].copy_from_slice(&self.ack_sub_id.to_le_bytes());
        b[40..48].copy_from_slice(&self.ack_size.to_le_bytes());
        b
    }

    pub fn parse(b: &[u8]) -> Result<Header, P2pError> {
        if b.len() < HEADER_LEN {
            return Err(P2pError::Short);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Ok(Header {
            session_id: u32_at(0),
            id: u32_at(4),
            offset: u64_at(8),
            total: u64_at(16),
            length: u32_at(24),
            flags: u32_at(28),
            ack_id: u32_at(32),
            ack_sub_id: u32_at(36),
            ack_size: u64_at(40),
        })
    }

    /// Whether this is the last chunk of its message.
    pub fn completes(&self) -> bool {
        self.offset.saturating_add(self.length as u64) >= self.total
    }
}

/// A packet as it travels over the switchboard: header, payload, and a
/// big-endian footer (the application id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub header: Header,
    pub payload: Vec<u8>,
    pub footer: u32,
}

impl Packet {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len() + 4);
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.footer.to_be_bytes());
        out
    }

    /// Reads a switchboard packet, checking that the header's length and
    /// offset agree with the bytes.
    pub fn parse(b: &[u8]) -> Result<Packet, P2pError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(P2pError::Short);
        }
        let header = Header::parse(b)?;
        let payload = &b[HEADER_LEN..b.len() - 4];
        if payload.len() != header.length as usize {
            return Err(P2pError::BadLength);
        }
        if header.offset.checked_add(header.length as u64).is_none_or(|end| end > header.total) {
            return Err(P2pError::BadOffset);
        }
        let footer = u32::from_be_bytes(b[b.len() - 4..].try_into().expect("4 bytes"));
        Ok(Packet { header, payload: payload.to_vec(), footer })
    }
}

/// Splits a message into packets of at most [`MAX_CHUNK`] payload bytes.
pub fn chunks(session_id: u32, id: u32, flags: u32, ack_id: u32, footer: u32, message: &[u8]) -> Vec<Packet> {
    let total = message.len() as u64;
    if message.is_empty() {
        let header = Header { session_id, id, flags, ack_id, ..Default::default() };
        return vec![Packet { header, payload: Vec::new(), footer }];
    }
    message
        .chunks(MAX_CHUNK)
        .enumerate()
        .map(|(i, c)| Packet {
            header: Header {
                session_id,
                id,
                offset: (i * MAX_CHUNK) as u64,
                total,
                length: c.len() as u32,
                flags,
                ack_id,
                ..Default::default()
            },
            payload: c.to_vec(),
            footer,
        })
        .collect()
}

/// The acknowledgement of a complete message.
pub fn ack(acked: &Header, own_id: u32) -> Packet {
    Packet {
        header: Header {
            session_id: acked.session_id,
            id: own_id,
            offset: 0,
            total: acked.total,
            length: 0,
            flags: FLAG_ACK,
            ack_id: acked.id,
            ack_sub_id: acked.ack_id,
            ack_size: acked.total,
        },
        payload: Vec::new(),
        footer: 0,
    }
}

/// An MSNSLP message: a start line, headers, and a body (without the
/// trailing NUL, which [`SlpMessage::to_bytes`] adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlpMessage {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl SlpMessage {
    /// A request (`INVITE`, `BYE`) from `from` to `to`.
    pub fn request(
        method: &str,
        to: &str,
        from: &str,
        branch: &str,
        call_id: &str,
        content_type: &str,
        body: &str,
    ) -> SlpMessage {
        SlpMessage {
            start_line: format!("{method} MSNMSGR:{to} MSNSLP/1.0"),
            headers: vec![
                ("To".into(), format!("<msnmsgr:{to}>")),
                ("From".into(), format!("<msnmsgr:{from}>")),
                ("Via".into(), format!("MSNSLP/1.0/TLP ;branch={branch}")),
                ("CSeq".into(), "0 ".into()),
                ("Call-ID".into(), call_id.into()),
                ("Max-Forwards".into(), "0".into()),
                ("Content-Type".into(), content_type.into()),
            ],
            body: body.into(),
        }
    }

    /// A response (`200 OK`, `603 Decline`) to `request`, from its recipient.
    pub fn response(status: &str, request: &SlpMessage, content_type: &str, body: &str) -> SlpMessage {
        let h = |n: &str| request.header(n).unwrap_or("").to_string();
        SlpMessage {
            start_line: format!("MSNSLP/1.0 {status}"),
            headers: vec![
                ("To".into(), h("From")),
                ("From".into(), h("To")),
                ("Via".into(), h("Via")),
                ("CSeq".into(), "1 ".into()),
                ("Call-ID".into(), h("Call-ID")),
                ("Max-Forwards".into(), "0".into()),
                ("Content-Type".into(), content_type.into()),
            ],
            body: body.into(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
    }

    /// A `Key: value` line of the body.
    pub fn body_field(&self, name: &str) -> Option<&str> {
        self.body
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    }

    /// The method (`INVITE`, `BYE`) or, for a response, the status code.
    pub fn method(&self) -> &str {
        let mut parts = self.start_line.split(' ');
        match parts.next() {
            Some("MSNSLP/1.0") => parts.next().unwrap_or(""),
            Some(m) => m,
            None => "",
        }
    }

    /// The bytes: CRLF lines, `Content-Length` counting the body and its NUL,
    /// then the body and one NUL byte.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start_line);
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len() + 1));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes.push(0);
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Option<SlpMessage> {
        let text = std::str::from_utf8(bytes).ok()?.trim_end_matches('\0');
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let start_line = lines.next()?.to_string();
        if !start_line.contains("MSNSLP/1.0") {
            return None;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| !n.eq_ignore_ascii_case("Content-Length"))
            .map(|(n, v)| (n.trim().to_string(), v.trim_start().to_string()))
            .collect();
        Some(SlpMessage { start_line, headers, body: body.to_string() })
    }
}

/// The file context of a file-transfer INVITE (574 bytes, version 2).
pub fn file_context(name: &str, size: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(574);
    b.extend_from_slice(&574u32.to_le_bytes());
    b.extend_from_slice(&2u32.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    let mut name_bytes: Vec<u8> = name.encode_utf16().take(259).flat_map(|u| u.to_le_bytes()).collect();
    name_bytes.resize(520, 0);
    b.extend_from_slice(&name_bytes);
    b.extend_from_slice(&[0u8; 30]);
    b.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    b
}

/// The file name and size in a file context.
pub fn parse_file_context(b: &[u8]) -> Option<(String, u64)> {
    if b.len() < 540 {
        return None;
    }
    let size = u64::from_le_bytes(b[8..16].try_into().ok()?);
    let units: Vec<u16> =
        b[20..540].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|u| *u != 0).collect();
    Some((String::from_utf16(&units).ok()?, size))
}

/// Where a P2P message sent through a switchboard is going: its
/// `P2P-Dest`, a user or, from MSNP16 (P2P version 2), one endpoint of a
/// user (`handle;{guid}`). `None` for anything else.
pub fn destination(payload: &[u8]) -> Option<crate::endpoint::Address> {
    let message = crate::mime::MimeMessage::parse(payload).ok()?;
    if !message.content_type()?.eq_ignore_ascii_case("application/x-msnmsgrp2p") {
        return None;
    }
    crate::endpoint::Address::parse(message.header("P2P-Dest")?.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2p_destinations_name_a_user_or_an_endpoint() {
        let v2 = b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@x.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}\r\nP2P-Src: al@x.com;{11111111-1111-4111-8111-111111111111}\r\n\r\n\x08\x00\x00\x00";
        let dest = destination(v2).unwrap();
        assert_eq!(dest.to_string(), "bob@x.com;{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}");
        let v1 = b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@x.com\r\n\r\n\x00";
        assert_eq!(destination(v1).unwrap().endpoint, None);
        assert_eq!(
            destination(b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nP2P-Dest: bob@x.com\r\n\r\nhi"),
            None
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    // Vectors from ../shared/protocol/vectors/p2p.py (file-transfer.md 2.13).
    #[test]
    fn ack_vector() {
        let acked = Header { id: 1000, total: 1193, ack_id: 0x1234, length: 1193, ..Default::default() };
        assert_eq!(
            hex(&ack(&acked, 5000).header.to_bytes()),
            "00 00 00 00 88 13 00 00 00 00 00 00 00 00 00 00 a9 04 00 00 00 00 00 00 00 00 00 00 02 00 00 00 e8 03 00 00 34 12 00 00 a9 04 00 00 00 00 00 00"
        );
    }

    #[test]
    fn data_chunk_vector() {
        let p = &chunks(0xBA32_1161, 1002, FLAGS_FILE_DATA, 0x9abc, 2, b"hello world")[0];
        let bytes = p.to_bytes();
        assert_eq!(
            hex(&bytes[..48]),
            "61 11 32 ba ea 03 00 00 00 00 00 00 00 00 00 00 0b 00 00 00 00 00 00 00 0b 00 00 00 30 00 00 01 bc 9a 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
        );
        assert_eq!(&bytes[48..59], b"hello world");
        assert_eq!(&bytes[59..], &[0, 0, 0, 2]);
        assert_eq!(Packet::parse(&bytes).unwrap(), *p);
    }

    #[test]
    fn file_context_vector_and_invite_size() {
        let ctx = file_context("hello.txt", 11);
        assert_eq!(ctx.len(), 574);
        assert_eq!(hex(&ctx[..24]), "3e 02 00 00 02 00 00 00 0b 00 00 00 00 00 00 00 01 00 00 00 68 00 65 00");
        assert_eq!(parse_file_context(&ctx), Some(("hello.txt".into(), 11)));
        let b64 = crate::base64::encode(&ctx);
        assert_eq!(b64.len(), 768);
        assert!(b64.starts_with("PgIAAAIAAAALAAAAAAAAAAEAAABoAGUAbABsAG8A"));
        let body =
            format!("EUF-GUID: {FILE_TRANSFER_GUID}\r\nSessionID: 3123843425\r\nAppID: 2\r\nContext: {b64}\r\n\r\n");
        let invite = SlpMessage::request(
            "INVITE",
            "bob@example.com",
            "alice@example.com",
            "{33517CE4-02FC-4428-B6F4-39927229B722}",
            "{9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}",
            "application/x-msnmsgr-sessionreqbody",
            &body,
        );
        let bytes = invite.to_bytes();
        assert!(std::str::from_utf8(&bytes).unwrap().contains("Content-Length: 865\r\n"));
        let parsed = SlpMessage::parse(&bytes).unwrap();
        assert_eq!(parsed.method(), "INVITE");
        assert_eq!(parsed.body_field("SessionID"), Some("3123843425"));
        assert_eq!(bytes.len(), 1193);
        let ok = SlpMessage::response(
            "200 OK",
            &parsed,
            "application/x-msnmsgr-sessionreqbody",
            "SessionID: 1234567\r\n\r\n",
        );
        assert_eq!(SlpMessage::parse(&ok.to_bytes()).unwrap().method(), "200");
        assert_eq!(ok.header("To"), Some("<msnmsgr:alice@example.com>"));
    }

    #[test]
    fn hostile_packets_are_refused() {
        assert_eq!(Packet::parse(&[0; 10]), Err(P2pError::Short));
        let mut p = chunks(1, 2, 0, 0, 0, b"abc")[0].clone();
        p.header.length = 5;
        assert_eq!(Packet::parse(&p.to_bytes()), Err(P2pError::BadLength));
        let mut p = chunks(1, 2, 0, 0, 0, b"abc")[0].clone();
        p.header.offset = u64::MAX;
        assert_eq!(Packet::parse(&p.to_bytes()), Err(P2pError::BadOffset));
        assert_eq!(SlpMessage::parse(b"garbage"), None);
        assert_eq!(parse_file_context(&[0; 10]), None);
    }
}
