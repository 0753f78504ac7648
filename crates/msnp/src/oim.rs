//! Offline messages on the wire: the mail-data notification MSNP11+ clients
//! get at sign-in, the message text the `rsi.asmx` web service returns, the
//! note added when an offline message is delivered through a switchboard,
//! and `oim.asmx`'s store request with its lock-key challenge, both ways.

use crate::mime::MimeMessage;
use crate::soap::{Envelope, escape_xml};
use crate::time::{iso8601, rfc822};

/// The namespace of `oim.asmx`'s messages and faults.
pub const OIM_NS: &str = "http://messenger.msn.com/ws/2004/09/oim/";
/// `StoreMessage` (MSN Messenger 7.5) and `Store2` (Windows Live Messenger):
/// one request, two actions.
pub const STORE_ACTION: &str = "http://messenger.msn.com/ws/2004/09/oim/StoreMessage";
pub const STORE2_ACTION: &str = "http://messenger.live.com/ws/2006/09/oim/Store2";

/// A message left through `oim.asmx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    pub from: String,
    /// The sender's name as an RFC 2047 encoded word, as clients send it.
    pub from_friendly: Option<String>,
    pub to: String,
    /// The sender's ticket (`t=...&p=...`).
    pub ticket: String,
    /// The client's product id, whose key computes the lock key.
    pub app_id: String,
    /// The answer to the lock-key challenge; empty on a first attempt.
    pub lock_key: String,
    pub sequence: u32,
    /// The message: mail-style headers, then the text (base64 from WLM).
    pub content: String,
}

impl StoreRequest {
    /// Reads a store request: the header's `From`, `To`, `Ticket` and
    /// `Sequence`, the body's `Content`.
    pub fn parse(xml: &str) -> Option<StoreRequest> {
        let envelope = Envelope::parse(xml)?;
        let (header, body) = (&envelope.header, &envelope.body);
        let from = header.child("From")?;
        let ticket = header.child("Ticket")?;
        Some(StoreRequest {
            from: from.attr("memberName")?.to_string(),
            from_friendly: from.attr("friendlyName").map(str::to_string),
            to: header.child("To")?.attr("memberName")?.to_string(),
            ticket: ticket.attr("passport")?.to_string(),
            app_id: ticket.attr("appid").unwrap_or_default().to_string(),
            lock_key: ticket.attr("lockkey").unwrap_or_default().to_string(),
            sequence: header.text_at(&["Sequence", "MessageNumber"]).and_then(|n| n.parse().ok()).unwrap_or(1),
            content: body.child("Content")?.text.clone(),
        })
    }

    /// The envelope, as a client posts it.
    pub fn to_xml(&self) -> String {
        let friendly = match &self.from_friendly {
            Some(f) => format!(r#" friendlyName="{}""#, escape_xml(f)),
            None => String::new(),
        };
        let header = format!(
            concat!(
                r#"<From memberName="{from}"{friendly} xml:lang="en-US" proxy="MSNMSGR" xmlns="{ns}" msnpVer="MSNP15" buildVer="8.5.1288.816"/>"#,
                r#"<To memberName="{to}" xmlns="{ns}"/><Ticket passport="{ticket}" appid="{app}" lockkey="{lock}" xmlns="{ns}"/>"#,
                r#"<Sequence xmlns="http://schemas.xmlsoap.org/ws/2003/03/rm"><Identifier xmlns="http://schemas.xmlsoap.org/ws/2002/07/utility">http://messenger.msn.com</Identifier><MessageNumber>{seq}</MessageNumber></Sequence>"#
            ),
            from = escape_xml(&self.from),
            friendly = friendly,
            ns = OIM_NS,
            to = escape_xml(&self.to),
            ticket = escape_xml(&self.ticket),
            app = escape_xml(&self.app_id),
            lock = escape_xml(&self.lock_key),
            seq = self.sequence,
        );
        let body = format!(
            r#"<MessageType xmlns="{ns}">text</MessageType><Content xmlns="{ns}">{content}</Content>"#,
            ns = OIM_NS,
            // XML reads a bare CR as a line end; a reference keeps it.
            content = escape_xml(&self.content).replace('\r', "&#13;"),
        );
        crate::soap::envelope(&header, &body)
    }
}

/// The answer to a stored message.
pub fn store_response() -> String {
    crate::soap::envelope(
        "",
        &format!(r#"<StoreResponse xmlns="{OIM_NS}"><PointsConsumed>0</PointsConsumed></StoreResponse>"#),
    )
}

/// A fault of `oim.asmx`; with a challenge, the `AuthenticationFailed`
/// that asks the sender to compute its lock key ([`lock_key`]) and retry.
/// The code is in the service's namespace (`q0:`), as the service wrote it.
pub fn store_fault(code: &str, text: &str, lock_key_challenge: Option<&str>) -> String {
    let detail = match lock_key_challenge {
        Some(c) => format!(
            r#"<detail><TweenerChallenge xmlns="{OIM_NS}">ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1033,id=507</TweenerChallenge><LockKeyChallenge xmlns="{OIM_NS}">{}</LockKeyChallenge></detail>"#,
            escape_xml(c)
        ),
        None => String::new(),
    };
    crate::soap::envelope(
        "",
        &format!(
            r#"<soap:Fault xmlns:q0="{OIM_NS}"><faultcode>q0:{}</faultcode><faultstring>{}</faultstring>{detail}</soap:Fault>"#,
            escape_xml(code),
            escape_xml(text)
        ),
    )
}

/// Reads a fault back: its code (without prefix) and lock-key challenge.
pub fn parse_store_fault(xml: &str) -> Option<(String, Option<String>)> {
    let envelope = Envelope::parse(xml)?;
    let fault = envelope.body.find("Fault")?;
    let code = fault.text_at(&["faultcode"])?;
    let code = code.rsplit(':').next().unwrap_or(code).to_string();
    Some((code, fault.text_at(&["detail", "LockKeyChallenge"]).map(str::to_string)))
}

/// The lock key: the MSNP11 challenge answer over the service's challenge
/// with the client's product id and key; `None` for a product not known.
pub fn lock_key(challenge: &str, app_id: &str) -> Option<String> {
    let key = crate::challenge::product_key(app_id)?;
    Some(crate::challenge::msnp11_response(challenge, app_id, key))
}

/// The `Content` a Windows Live Messenger client sends: headers, then the
/// text in base64 in lines of 76.
pub fn store_content(text: &[u8], run_id: &str, sequence: u32) -> String {
    let encoded = crate::base64::encode(text);
    let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\nX-OIM-Message-Type: OfflineMessage\r\nX-OIM-Run-Id: {{{run_id}}}\r\nX-OIM-Sequence-Num: {sequence}\r\n\r\n{}",
        lines.join("\r\n")
    )
}

/// The text of a `Content`: its body after the mail-style headers, decoded
/// from base64 when the headers say so (WLM), as it is otherwise (MSN 7.5
/// and this project's client send a MIME text message). `None` if a base64
/// body does not decode.
pub fn content_text(content: &str) -> Option<Vec<u8>> {
    let (head, body) = match content.find("\r\n\r\n") {
        Some(i) => (&content[..i], &content[i + 4..]),
        None => match content.find("\n\n") {
            Some(i) => (&content[..i], &content[i + 2..]),
            None => ("", content),
        },
    };
    let base64 = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("Content-Transfer-Encoding") && value.trim().eq_ignore_ascii_case("base64")
        })
    });
    if base64 {
        let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        crate::base64::decode(&compact)
    } else {
        Some(body.as_bytes().to_vec())
    }
}

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

/// Reads a `<MD>` metadata document back (found anywhere in `text`: a
/// `Mail-Data:` notice body or a `GetMetadata` answer).
pub fn parse_metadata(text: &str) -> Option<Vec<OimEntry>> {
    let start = text.find("<MD>")?;
    let end = text[start..].find("</MD>")? + start + "</MD>".len();
    let md = crate::soap::Element::parse(&text[start..end])?;
    let field = |m: &crate::soap::Element, name: &str| m.text_at(&[name]).unwrap_or_default().to_string();
    Some(
        md.children_named("M")
            .map(|m| OimEntry {
                guid: field(m, "I"),
                sender: field(m, "E"),
                sender_friendly: decode_encoded_word(&field(m, "N")),
                sent_at_ms: crate::time::parse_timestamp_ms(&field(m, "RT")).unwrap_or(0),
                size: field(m, "SZ").parse().unwrap_or(0),
            })
            .collect(),
    )
}

/// Reads `=?utf-8?B?...?=` back; other text is returned as it is.
pub fn decode_encoded_word(word: &str) -> String {
    let inner = word.strip_prefix("=?").and_then(|w| w.strip_suffix("?="));
    let decoded = inner.and_then(|w| {
        let mut parts = w.splitn(3, '?');
        let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
        encoding.eq_ignore_ascii_case("B").then(|| crate::base64::decode(text))?
    });
    match decoded {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => word.to_string(),
    }
}

/// The namespace of `rsi.asmx`, the offline-message inbox.
pub const RSI_NS: &str = "http://www.hotmail.msn.com/ws/2004/09/oim/rsi";

/// The most messages one `DeleteMessages` may name (the mailbox holds
/// fewer).
pub const MAX_DELETE: usize = 100;

/// What a client asks `rsi.asmx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxRequest {
    GetMetadata,
    GetMessage { guid: String },
    DeleteMessages { guids: Vec<String> },
}

/// A call to `rsi.asmx`: the caller's ticket (`PassportCookie`) and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCall {
    pub ticket: String,
    pub request: InboxRequest,
}

impl InboxRequest {
    fn name(&self) -> &'static str {
        match self {
            InboxRequest::GetMetadata => "GetMetadata",
            InboxRequest::GetMessage { .. } => "GetMessage",
            InboxRequest::DeleteMessages { .. } => "DeleteMessages",
        }
    }
}

impl InboxCall {
    /// Reads a call: the `t` of the header's `PassportCookie`, the body's
    /// operation.
    pub fn parse(xml: &str) -> Option<InboxCall> {
        let envelope = Envelope::parse(xml)?;
        let ticket = envelope.header.find("PassportCookie")?.text_at(&["t"])?.to_string();
        let op = envelope.operation()?;
        let request = match op.name.as_str() {
            "GetMetadata" => InboxRequest::GetMetadata,
            "GetMessage" => InboxRequest::GetMessage { guid: op.text_at(&["messageId"])?.to_string() },
            "DeleteMessages" => {
                let guids: Vec<String> =
                    op.child("messageIds")?.children_named("messageId").map(|m| m.text.trim().to_string()).collect();
                if guids.is_empty() || guids.len() > MAX_DELETE {
                    return None;
                }
                InboxRequest::DeleteMessages { guids }
            }
            _ => return None,
        };
        Some(InboxCall { ticket, request })
    }

    /// The SOAP action a client names.
    pub fn action(&self) -> String {
        format!("{RSI_NS}/{}", self.request.name())
    }

    /// The envelope, as a client posts it.
    pub fn to_xml(&self) -> String {
        let body = match &self.request {
            InboxRequest::GetMetadata => format!(r#"<GetMetadata xmlns="{RSI_NS}" />"#),
            InboxRequest::GetMessage { guid } => format!(
                r#"<GetMessage xmlns="{RSI_NS}"><messageId>{}</messageId><alsoMarkAsRead>false</alsoMarkAsRead></GetMessage>"#,
                escape_xml(guid)
            ),
            InboxRequest::DeleteMessages { guids } => {
                let ids: String = guids.iter().map(|g| format!("<messageId>{}</messageId>", escape_xml(g))).collect();
                format!(r#"<DeleteMessages xmlns="{RSI_NS}"><messageIds>{ids}</messageIds></DeleteMessages>"#)
            }
        };
        let cookie =
            format!(r#"<PassportCookie xmlns="{RSI_NS}"><t>{}</t><p></p></PassportCookie>"#, escape_xml(&self.ticket));
        crate::soap::envelope(&cookie, &body)
    }
}

/// The answers of `rsi.asmx`, as the body of a SOAP envelope.
pub fn get_metadata_response(entries: &[OimEntry]) -> String {
    format!(r#"<GetMetadataResponse xmlns="{RSI_NS}">{}</GetMetadataResponse>"#, metadata(entries))
}

pub fn get_message_response(text: &str) -> String {
    format!(
        r#"<GetMessageResponse xmlns="{RSI_NS}"><GetMessageResult>{}</GetMessageResult></GetMessageResponse>"#,
        // Line ends as they are: aMSN's XML reader knows no character
        // references, and every client takes LF or CRLF here.
        escape_xml(text)
    )
}

pub fn delete_messages_response() -> String {
    format!(r#"<DeleteMessagesResponse xmlns="{RSI_NS}" />"#)
}

/// Reads a `GetMessage` answer back: the message text.
pub fn parse_get_message_response(xml: &str) -> Option<String> {
    Some(Envelope::parse(xml)?.body.find("GetMessageResult")?.text.clone())
}

/// The `text/x-msmsgsoimnotification` sent when messages arrive for a
/// client that is signed in (hidden, or thought offline by the sender).
pub fn arrival_notification(entries: &[OimEntry]) -> MimeMessage {
    MimeMessage::new("text/x-msmsgsoimnotification; charset=UTF-8")
        .with_body(format!("Mail-Data: {}\r\n", metadata(entries)).into_bytes())
}

/// The message as `GetMessage` returns it: mail-style headers and the text
/// body in base64. `sequence` numbers the sender's messages in the order
/// they were left (clients sort by it); the run id is the message's own;
/// `X-OriginalArrivalTime` is read by aMSN, which shows nothing without it.
pub fn message_text(entry: &OimEntry, recipient: &str, body: &[u8], sequence: u32) -> String {
    format!(
        concat!(
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n",
            "X-OIM-Message-Type: OfflineMessage\r\nX-OIM-Run-Id: {{{run}}}\r\nX-OIM-Sequence-Num: {seq}\r\n",
            "From: {name} <{from}>\r\nTo: <{to}>\r\nX-OriginalArrivalTime: {arrival}\r\nDate: {date}\r\n\r\n{body}"
        ),
        run = entry.guid,
        seq = sequence,
        name = encoded_word(&entry.sender_friendly),
        from = entry.sender,
        to = recipient,
        arrival = arrival_time(entry.sent_at_ms),
        date = rfc822(entry.sent_at_ms.div_euclid(1000)),
        body = crate::base64::encode(body)
    )
}

/// `22 Mar 2007 00:29:46.0233 (UTC) FILETIME=[2D6C1A90:01C76C17]`: the
/// time in words and as a Windows FILETIME (100 ns since 1601), low half
/// first.
fn arrival_time(ms: i64) -> String {
    let filetime = (ms + 11_644_473_600_000).max(0) as u64 * 10_000;
    format!(
        "{}.{:04} (UTC) FILETIME=[{:08X}:{:08X}]",
        crate::time::mail_date(ms.div_euclid(1000)),
        ms.rem_euclid(1000) * 10,
        filetime as u32,
        filetime >> 32
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
    fn store_requests_and_faults_read_back() {
        let request = StoreRequest {
            from: "a@x.com".into(),
            from_friendly: Some(encoded_word("A & B")),
            to: "b@x.com".into(),
            ticket: "t=tok&p=x".into(),
            app_id: "PROD0119GSJUC$18".into(),
            lock_key: String::new(),
            sequence: 3,
            content: store_content("héllo <there>".as_bytes(), "E4A2A10B-6D1B-4C8F-9E0C-2B7B0E8F1A2C", 3),
        };
        let read = StoreRequest::parse(&request.to_xml()).unwrap();
        assert_eq!(read, request);
        assert_eq!(content_text(&read.content).unwrap(), "héllo <there>".as_bytes());
        assert_eq!(content_text("MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nplain").unwrap(), b"plain");
        assert_eq!(content_text("Content-Transfer-Encoding: base64\n\n*not base64*"), None);
        let fault = store_fault("AuthenticationFailed", "Lock key <needed>", Some("1850937852"));
        assert_eq!(parse_store_fault(&fault), Some(("AuthenticationFailed".into(), Some("1850937852".into()))));
        assert_eq!(
            parse_store_fault(&store_fault("QuotaExceeded", "full", None)),
            Some(("QuotaExceeded".into(), None))
        );
        assert!(Envelope::parse(&store_response()).is_some());
        // The lock key is the MSNP11 challenge answer (the CHL test vector).
        assert_eq!(
            lock_key("22210219642164014968", "PROD0090YUAUV{2B").as_deref(),
            Some("85ecb0db8f32113df79ce0892b9a102c")
        );
        assert_eq!(lock_key("1", "PROD-unknown"), None);
    }

    #[test]
    fn inbox_calls_and_answers_read_back() {
        for request in [
            InboxRequest::GetMetadata,
            InboxRequest::GetMessage { guid: "G-1".into() },
            InboxRequest::DeleteMessages { guids: vec!["G-1".into(), "G-2".into()] },
        ] {
            let call = InboxCall { ticket: "tok&en".into(), request };
            assert_eq!(InboxCall::parse(&call.to_xml()), Some(call.clone()));
            assert!(call.action().starts_with(RSI_NS));
        }
        let e = OimEntry {
            guid: "G".into(),
            sender: "a@x.com".into(),
            sender_friendly: "Ä & B".into(),
            sent_at_ms: 1_114_300_664_000,
            size: 2,
        };
        let wrap = |body: String| crate::soap::envelope("", &body);
        assert_eq!(parse_metadata(&get_metadata_response(std::slice::from_ref(&e))), Some(vec![e.clone()]));
        let notice = String::from_utf8(arrival_notification(std::slice::from_ref(&e)).to_bytes()).unwrap();
        assert_eq!(parse_metadata(&notice), Some(vec![e.clone()]));
        let text = message_text(&e, "b@x.com", "hi there".as_bytes(), 1);
        let read = parse_get_message_response(&wrap(get_message_response(&text))).unwrap();
        assert_eq!(read, text.replace("\r\n", "\n"), "XML reads CRLF as LF");
        assert_eq!(content_text(&read).unwrap(), b"hi there");
        let too_many: Vec<String> = (0..=MAX_DELETE).map(|i| i.to_string()).collect();
        let call = InboxCall { ticket: "t".into(), request: InboxRequest::DeleteMessages { guids: too_many } };
        assert_eq!(InboxCall::parse(&call.to_xml()), None);
    }

    #[test]
    fn encoded_words() {
        assert_eq!(encoded_word("Alice"), "=?utf-8?B?QWxpY2U=?=");
        assert_eq!(encoded_word("über"), "=?utf-8?B?w7xiZXI=?=");
        assert_eq!(decode_encoded_word(&encoded_word("über")), "über");
        assert_eq!(decode_encoded_word("plain"), "plain");
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
        let t = message_text(&e, "b@x.com", b"hi", 2);
        assert!(t.contains("X-OIM-Sequence-Num: 2\r\nFrom"), "{t}");
        assert!(t.contains("X-OIM-Run-Id: {G}\r\n"), "{t}");
        // 100 ns since 1601, low half first (computed independently).
        assert_eq!(arrival_time(1_174_523_386_023), "22 Mar 2007 00:29:46.0230 (UTC) FILETIME=[31497B70:01C76C19]");
        assert!(t.ends_with("\r\n\r\naGk="));
        assert!(t.contains("From: =?utf-8?B?QQ==?= <a@x.com>"));
    }
}
