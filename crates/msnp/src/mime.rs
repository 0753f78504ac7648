//! The MIME-style payloads carried by `MSG` (draft 8.8): a block of
//! `Name: value` header lines, an empty line, then a body.

/// Why a payload is not a MIME message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("header block is not terminated by an empty line")]
    Unterminated,
    #[error("header line without a colon")]
    BadHeader,
    #[error("header block is not UTF-8")]
    NotUtf8,
}

/// A parsed or to-be-sent message payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MimeMessage {
    /// Headers in order; names keep their case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl MimeMessage {
    /// A message with `MIME-Version: 1.0` and the given content type.
    pub fn new(content_type: &str) -> MimeMessage {
        MimeMessage {
            headers: vec![("MIME-Version".into(), "1.0".into()), ("Content-Type".into(), content_type.into())],
            body: Vec::new(),
        }
    }

    /// Appends a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> MimeMessage {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> MimeMessage {
        self.body = body.into();
        self
    }

    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The content type without parameters, e.g. `text/plain`.
    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type").map(|v| v.split(';').next().unwrap_or("").trim())
    }

    /// Parses a payload. Header lines may end in CRLF or LF; the first empty
    /// line ends the headers and everything after it is the body.
    pub fn parse(payload: &[u8]) -> Result<MimeMessage, MimeError> {
        let mut headers = Vec::new();
        let mut rest = payload;
        loop {
            let nl = rest.iter().position(|&b| b == b'\n').ok_or(MimeError::Unterminated)?;
            let raw = &rest[..nl];
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            rest = &rest[nl + 1..];
            if raw.is_empty() {
                break;
            }
            let line = std::str::from_utf8(raw).map_err(|_| MimeError::NotUtf8)?;
            let (name, value) = line.split_once(':').ok_or(MimeError::BadHeader)?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(MimeMessage { headers, body: rest.to_vec() })
    }

    /// Encodes with CRLF line ends and exactly one space after each colon.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// What a switchboard message says, when it is one a conversation without
/// a switchboard carries (text, typing, a nudge); `None` for the rest
/// (invitations, P2P data, ink).
pub fn said_of(payload: &[u8]) -> Option<crate::circle::Said> {
    use crate::circle::{MAX_TEXT, Said};
    let m = MimeMessage::parse(payload).ok()?;
    match m.content_type()? {
        "text/plain" => {
            let text = std::str::from_utf8(&m.body).ok()?;
            (!text.is_empty() && text.len() <= MAX_TEXT)
                .then(|| Said::Text { text: text.to_string(), format: m.header("X-MMS-IM-Format").map(str::to_string) })
        }
        "text/x-msmsgscontrol" => m.header("TypingUser").map(|_| Said::Typing),
        "text/x-msnmsgr-datacast" => {
            let body = String::from_utf8_lossy(&m.body);
            body.lines().any(|l| l.trim() == "ID: 1").then_some(Said::Nudge)
        }
        _ => None,
    }
}

/// The switchboard message that says `said` from `handle`.
pub fn message_of(said: &crate::circle::Said, handle: &str) -> Vec<u8> {
    use crate::circle::Said;
    let m = match said {
        Said::Text { text, format } => {
            let m = MimeMessage::new("text/plain; charset=UTF-8");
            let m = match format {
                Some(f) => m.with_header("X-MMS-IM-Format", f.as_str()),
                None => m,
            };
            m.with_body(text.as_bytes())
        }
        Said::Typing => MimeMessage::new("text/x-msmsgscontrol").with_header("TypingUser", handle).with_body(*b"\r\n"),
        Said::Nudge => MimeMessage::new("text/x-msnmsgr-datacast").with_body(*b"ID: 1\r\n\r\n"),
    };
    m.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn said_things_cross_between_switchboard_messages_and_back() {
        use crate::circle::Said;
        for said in [
            Said::Text { text: "hi there".into(), format: Some("FN=Arial; EF=; CO=0; CS=0; PF=0".into()) },
            Said::Text { text: "plain".into(), format: None },
            Said::Typing,
            Said::Nudge,
        ] {
            assert_eq!(said_of(&message_of(&said, "alice@example.com")), Some(said));
        }
        let invite = MimeMessage::new("text/x-msmsgsinvite; charset=UTF-8").with_body(*b"Application-Name: x\r\n");
        assert_eq!(said_of(&invite.to_bytes()), None);
        assert_eq!(said_of(b"no headers"), None);
        let empty = MimeMessage::new("text/plain").to_bytes();
        assert_eq!(said_of(&empty), None);
    }

    #[test]
    fn msnp2_profile_is_95_bytes() {
        // The MSNP2 login profile from the reference transcript.
        let m = MimeMessage::new("text/x-msmsgsprofile; charset=UTF-8").with_header("LoginTime", "1726321960");
        assert_eq!(m.to_bytes().len(), 95);
        assert_eq!(MimeMessage::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn typing_notification_is_90_bytes() {
        let m =
            MimeMessage::new("text/x-msmsgscontrol").with_header("TypingUser", "alice@hotmail.com").with_body(*b"\r\n");
        assert_eq!(m.to_bytes().len(), 90);
        let parsed = MimeMessage::parse(&m.to_bytes()).unwrap();
        assert_eq!(parsed.content_type(), Some("text/x-msmsgscontrol"));
        assert_eq!(parsed.header("typinguser"), Some("alice@hotmail.com"));
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(MimeMessage::parse(b"no end"), Err(MimeError::Unterminated));
        assert_eq!(MimeMessage::parse(b"nocolon\r\n\r\n"), Err(MimeError::BadHeader));
    }
}

/// The login profile the notification server sends after `USR ... OK`
/// (`text/x-msmsgsprofile`). MSNP2 carries only the login time; later
/// dialects add the Passport profile fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfile {
    /// Unix time of the sign-in.
    pub login_time: u64,
    pub email: String,
    /// The 64-bit member id, split into the two profile fields.
    pub member_id: u64,
    pub client_ip: String,
    pub client_port: u16,
    /// The Passport cookie (`MSPAuth`), conventionally the ticket's `t=`
    /// token followed by `$$`.
    pub mspauth: String,
}

impl LoginProfile {
    /// The profile payload in the shape of `dialect`.
    pub fn to_message(&self, dialect: crate::Dialect) -> MimeMessage {
        let mut m = MimeMessage::new("text/x-msmsgsprofile; charset=UTF-8")
            .with_header("LoginTime", self.login_time.to_string());
        if dialect.profile_has_account_fields() {
            m = m
                .with_header("EmailEnabled", "0")
                .with_header("MemberIdHigh", (self.member_id >> 32).to_string())
                .with_header("MemberIdLow", (self.member_id as u32 as i32).to_string())
                .with_header("lang_preference", "1033")
                .with_header("preferredEmail", self.email.clone());
            for field in ["country", "PostalCode", "Gender"] {
                m = m.with_header(field, "");
            }
            m = m.with_header("Kid", "0");
            for field in ["Age", "BDayPre", "Birthday", "Wallet"] {
                m = m.with_header(field, "");
            }
            m = m.with_header("Flags", "1027").with_header("sid", "507");
            if dialect.profile_has_kv() {
                m = m.with_header("kv", "5");
            }
            m = m.with_header("MSPAuth", format!("{}$$", self.mspauth));
        }
        if dialect.profile_has_client_address() {
            m = m
                .with_header("ClientIP", self.client_ip.clone())
                .with_header("ClientPort", self.client_port.to_string());
        }
        if dialect.uses_guids() {
            m = m.with_header("ABCHMigrated", "1");
        }
        if dialect.has_points_of_presence() {
            m = m.with_header("MPOPEnabled", "1");
        }
        m
    }
}
