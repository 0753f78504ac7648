//! The payloads of conversation messages: text with its font, typing
//! notifications, nudges.

use msnp::mime::MimeMessage;

/// The font header most clients send (`X-MMS-IM-Format`).
pub const DEFAULT_FORMAT: &str = "FN=Segoe%20UI; EF=; CO=0; CS=0; PF=22";

/// A text message with its format header. Header order matters to some
/// clients (Content-Type second, the format third).
pub fn text(body: &str, format: Option<&str>) -> Vec<u8> {
    MimeMessage::new("text/plain; charset=UTF-8")
        .with_header("X-MMS-IM-Format", format.unwrap_or(DEFAULT_FORMAT))
        .with_body(body.as_bytes().to_vec())
        .to_bytes()
}

/// A typing notification.
pub fn typing(me: &str) -> Vec<u8> {
    MimeMessage::new("text/x-msmsgscontrol").with_header("TypingUser", me).with_body(*b"\r\n").to_bytes()
}

/// A nudge (MSN 7).
pub fn nudge() -> Vec<u8> {
    MimeMessage::new("text/x-msnmsgr-datacast").with_body(*b"ID: 1\r\n\r\n").to_bytes()
}

/// What an incoming payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text {
        text: String,
        format: Option<String>,
        offline_sent: Option<String>,
    },
    Typing,
    Nudge,
    /// An MSNFTP (or other) invitation: its header fields.
    Invitation(MimeMessage),
    /// A P2P packet: the binary body, for `P2P-Dest`.
    P2p {
        dest: String,
        body: Vec<u8>,
    },
    Other,
}

/// Classifies a message payload.
pub fn parse(payload: &[u8]) -> Incoming {
    let Ok(m) = MimeMessage::parse(payload) else { return Incoming::Other };
    match m.content_type().map(str::to_ascii_lowercase).as_deref() {
        Some("text/plain") | None => Incoming::Text {
            text: String::from_utf8_lossy(&m.body).into_owned(),
            format: m.header("X-MMS-IM-Format").map(str::to_string),
            offline_sent: m.header("X-Offline-Sent").map(str::to_string),
        },
        Some("text/x-msmsgscontrol") => Incoming::Typing,
        Some("text/x-msnmsgr-datacast") if String::from_utf8_lossy(&m.body).contains("ID: 1") => Incoming::Nudge,
        Some("text/x-msmsgsinvite") => {
            // The invitation's fields are in its body, as header lines.
            let fields = MimeMessage::parse(&[m.body.as_slice(), b"\r\n"].concat()).unwrap_or_default();
            Incoming::Invitation(fields)
        }
        Some("application/x-msnmsgrp2p") => {
            Incoming::P2p { dest: m.header("P2P-Dest").unwrap_or("").to_string(), body: m.body }
        }
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(
            parse(&text("hi", None)),
            Incoming::Text { text: "hi".into(), format: Some(DEFAULT_FORMAT.into()), offline_sent: None }
        );
        assert_eq!(parse(&typing("a@x.com")), Incoming::Typing);
        assert_eq!(parse(&nudge()), Incoming::Nudge);
        let t = text("x", None);
        let lines: Vec<&str> = std::str::from_utf8(&t).unwrap().split("\r\n").collect();
        assert!(lines[1].starts_with("Content-Type") && lines[2].starts_with("X-MMS-IM-Format"));
    }
}
