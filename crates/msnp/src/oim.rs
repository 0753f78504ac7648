//! Offline messages on the wire: the mail-data notification MSNP11+ clients
//! get at sign-in, the message text the `rsi.asmx` web service returns, and
//! the note added when an offline message is delivered through a switchboard.

use crate::mime::MimeMessage;
use crate::soap::escape_xml;
use crate::time::{iso8601, rfc822};

/// One waiting message, as the notification and the web service describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OimEntry {
    pub guid: String,
    pub sender: String,
    pub sender_friendly: String,
    pub sent_at_ms: i64,
    pub size: usize,
}

/// `=?utf-8?B?...?=`: the RFC 2047 form names take in OIM metadata.
pub fn encoded_word(text: &str) -> String {
    format!("=?utf-8?B?{}?=", crate::base64::encode(text.as_bytes()))
}

/// The `<MD>` metadata document listing waiting messages.
pub fn metadata(entries: &[OimEntry]) -> String {
    let mut md =
        String::from("<MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q>");
    for e in entries {
        md.push_str(&format!(
            "<M><T>11</T><S>6</S><RT>{}</RT><RS>0</RS><SZ>{}</SZ><E>{}</E><I>{}</I><F>00000000-0000-0000-0000-000000000009</F><N>{}</N></M>",
            iso8601(e.sent_at_ms.div_euclid(1000)),
            e.size,
            escape_xml(&e.sender),
            escape_xml(&e.guid),
            escape_xml(&encoded_word(&e.sender_friendly)),
        ));
    }
    md.push_str("</MD>");
    md
}

/// The `text/x-msmsgsinitialmdatanotification` sent at sign-in.
pub fn mail_data_notification(entries: &[OimEntry]) -> MimeMessage {
    MimeMessage::new("text/x-msmsgsinitialmdatanotification; charset=UTF-8")
        .with_body(format!("Mail-Data: {}\r\n", metadata(entries)).into_bytes())
}

/// The message as `GetMessage` returns it: mail-style headers and the text
/// body in base64.
pub fn message_text(entry: &OimEntry, recipient: &str, body: &[u8]) -> String {
    format!(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-OIM-Message-Type: OfflineMessage\r\nX-OIM-Sequence-Num: 1\r\nFrom: {} <{}>\r\nTo: <{}>\r\nDate: {}\r\n\r\n{}",
        encoded_word(&entry.sender_friendly),
        entry.sender,
        recipient,
        rfc822(entry.sent_at_ms.div_euclid(1000)),
        crate::base64::encode(body)
    )
}

/// The text of a stored offline message: the body of a text/plain MIME
/// message, or the whole payload when it is not MIME.
pub fn body_text(payload: &[u8]) -> Vec<u8> {
    match MimeMessage::parse(payload) {
        Ok(m) => m.body,
        Err(_) => payload.to_vec(),
    }
}

/// An offline message as delivered through a switchboard: the sender's MIME
/// message with a note of when it was sent at the top of a text body (so
/// that every client shows it) and in an `X-Offline-Sent` header (last, so
/// that clients reading fixed header lines are not confused).
pub fn annotate_for_switchboard(payload: &[u8], sent_at_ms: i64) -> Vec<u8> {
    let when = iso8601(sent_at_ms.div_euclid(1000));
    match MimeMessage::parse(payload) {
        Ok(mut m) if m.content_type().is_none_or(|t| t.eq_ignore_ascii_case("text/plain")) => {
            let note = format!("[Offline message, sent {} UTC]\r\n", when.trim_end_matches('Z').replace('T', " "));
            let mut body = note.into_bytes();
            body.extend_from_slice(&m.body);
            m.body = body;
            m.headers.push(("X-Offline-Sent".into(), when));
            m.to_bytes()
        }
        _ => payload.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(encoded_word("Alice"), "=?utf-8?B?QWxpY2U=?=");
        assert_eq!(encoded_word("über"), "=?utf-8?B?w7xiZXI=?=");
        assert_eq!(encoded_word(""), "=?utf-8?B??=");
    }

    #[test]
    fn metadata_lists_each_message() {
        let e = OimEntry {
            guid: "G1".into(),
            sender: "a@x.com".into(),
            sender_friendly: "A".into(),
            sent_at_ms: 0,
            size: 5,
        };
        let md = metadata(&[e.clone(), OimEntry { guid: "G2".into(), ..e }]);
        assert_eq!(md.matches("<M>").count(), 2);
        assert!(md.contains("<E>a@x.com</E><I>G1</I>"));
        assert!(md.contains("<RT>1970-01-01T00:00:00Z</RT>"));
        let n = mail_data_notification(&[]);
        assert!(String::from_utf8(n.to_bytes()).unwrap().contains("Mail-Data: <MD>"));
    }

    #[test]
    fn switchboard_delivery_notes_the_time() {
        let m = MimeMessage::new("text/plain; charset=UTF-8").with_body(*b"hello");
        let out = MimeMessage::parse(&annotate_for_switchboard(&m.to_bytes(), 1_114_300_664_000)).unwrap();
        assert_eq!(out.body, b"[Offline message, sent 2005-04-23 23:57:44 UTC]\r\nhello");
        assert_eq!(out.headers[1].0, "Content-Type");
        assert_eq!(out.header("X-Offline-Sent"), Some("2005-04-23T23:57:44Z"));
        let typing = MimeMessage::new("text/x-msmsgscontrol").to_bytes();
        assert_eq!(annotate_for_switchboard(&typing, 0), typing);
        assert_eq!(body_text(&m.to_bytes()), b"hello");
    }

    #[test]
    fn get_message_text_is_base64() {
        let e = OimEntry {
            guid: "G".into(),
            sender: "a@x.com".into(),
            sender_friendly: "A".into(),
            sent_at_ms: 0,
            size: 2,
        };
        let t = message_text(&e, "b@x.com", b"hi");
        assert!(t.ends_with("\r\n\r\naGk="));
        assert!(t.contains("From: =?utf-8?B?QQ==?= <a@x.com>"));
    }
}
