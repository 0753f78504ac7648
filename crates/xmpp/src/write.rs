//! What is written on a stream: stream headers and features, the TLS and
//! SASL steps, stream errors, stanza errors, and any element.

use minidom::Element;

use crate::sasl::SaslError;
use crate::{NS_BIND, NS_CLIENT, NS_SASL, NS_SESSION, NS_STANZA_ERRORS, NS_STREAM_ERRORS, NS_STREAMS, NS_TLS};

/// A server's stream header for `domain`, answering a client.
pub fn server_header(domain: &str, id: &str, to: Option<&str>) -> String {
    let to = to.map(|t| format!(" to='{}'", escape(t))).unwrap_or_default();
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}' \
         id='{}' from='{}'{to} version='1.0' xml:lang='en'>",
        escape(id),
        escape(domain)
    )
}

/// A client's stream header to `domain`.
pub fn client_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='{NS_CLIENT}' xmlns:stream='{NS_STREAMS}' \
         to='{}' version='1.0' xml:lang='en'>",
        escape(domain)
    )
}

/// What a server offers at each stage of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features<'a> {
    /// Before TLS: STARTTLS, required.
    StartTls,
    /// Inside TLS (or where TLS is not offered), before authentication.
    Sasl { mechanisms: &'a [&'a str] },
    /// After authentication: resource binding (and the old session,
    /// optional), with the server's entity capabilities (XEP-0115) as
    /// `(node, ver)`.
    Bind { caps: Option<(&'a str, &'a str)> },
}

pub fn features(features: Features<'_>) -> String {
    let inner = match features {
        Features::StartTls => format!("<starttls xmlns='{NS_TLS}'><required/></starttls>"),
        Features::Sasl { mechanisms } => {
            let list: String = mechanisms.iter().map(|m| format!("<mechanism>{m}</mechanism>")).collect();
            format!("<mechanisms xmlns='{NS_SASL}'>{list}</mechanisms>")
        }
        Features::Bind { caps } => {
            let caps = caps
                .map(|(node, ver)| {
                    format!(
                        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{}' ver='{}'/>",
                        escape(node),
                        escape(ver)
                    )
                })
                .unwrap_or_default();
            format!("<bind xmlns='{NS_BIND}'/><session xmlns='{NS_SESSION}'><optional/></session>{caps}")
        }
    };
    format!("<stream:features>{inner}</stream:features>")
}

pub fn proceed() -> String {
    format!("<proceed xmlns='{NS_TLS}'/>")
}

pub fn sasl_challenge(data: &[u8]) -> String {
    format!("<challenge xmlns='{NS_SASL}'>{}</challenge>", base64(data))
}

pub fn sasl_success(data: &[u8]) -> String {
    format!("<success xmlns='{NS_SASL}'>{}</success>", base64(data))
}

pub fn sasl_failure(error: SaslError) -> String {
    format!("<failure xmlns='{NS_SASL}'><{}/></failure>", error.condition())
}

/// The client's SASL steps.
pub fn sasl_auth(mechanism: &str, data: &[u8]) -> String {
    format!("<auth xmlns='{NS_SASL}' mechanism='{mechanism}'>{}</auth>", base64(data))
}

pub fn sasl_response(data: &[u8]) -> String {
    format!("<response xmlns='{NS_SASL}'>{}</response>", base64(data))
}

pub fn starttls() -> String {
    format!("<starttls xmlns='{NS_TLS}'/>")
}

/// A stream error, and the stream's end after it.
pub fn stream_error(condition: crate::StreamErrorCondition) -> String {
    format!("<stream:error><{condition} xmlns='{NS_STREAM_ERRORS}'/></stream:error></stream:stream>")
}

pub fn stream_close() -> &'static str {
    "</stream:stream>"
}

/// The kind of a stanza error (RFC 6120 section 8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

/// The stanza error conditions Mariposa answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanzaCondition {
    BadRequest,
    FeatureNotImplemented,
    Forbidden,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    PolicyViolation,
    RecipientUnavailable,
    RegistrationRequired,
    ResourceConstraint,
    ServiceUnavailable,
    InternalServerError,
}

impl StanzaCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaCondition::BadRequest => "bad-request",
            StanzaCondition::FeatureNotImplemented => "feature-not-implemented",
            StanzaCondition::Forbidden => "forbidden",
            StanzaCondition::ItemNotFound => "item-not-found",
            StanzaCondition::JidMalformed => "jid-malformed",
            StanzaCondition::NotAcceptable => "not-acceptable",
            StanzaCondition::NotAllowed => "not-allowed",
            StanzaCondition::PolicyViolation => "policy-violation",
            StanzaCondition::RecipientUnavailable => "recipient-unavailable",
            StanzaCondition::RegistrationRequired => "registration-required",
            StanzaCondition::ResourceConstraint => "resource-constraint",
            StanzaCondition::ServiceUnavailable => "service-unavailable",
            StanzaCondition::InternalServerError => "internal-server-error",
        }
    }

    /// The type RFC 6120 section 8.3.3 gives each condition.
    pub fn error_type(self) -> ErrorType {
        match self {
            StanzaCondition::Forbidden | StanzaCondition::NotAllowed | StanzaCondition::RegistrationRequired => {
                ErrorType::Auth
            }
            StanzaCondition::BadRequest
            | StanzaCondition::JidMalformed
            | StanzaCondition::NotAcceptable
            | StanzaCondition::PolicyViolation => ErrorType::Modify,
            StanzaCondition::RecipientUnavailable | StanzaCondition::ResourceConstraint => ErrorType::Wait,
            _ => ErrorType::Cancel,
        }
    }
}

/// A stanza error in answer to a stanza of `kind` (`iq`, `message`,
/// `presence`) with `id`, to `to`, from `from`.
pub fn stanza_error(kind: &str, id: Option<&str>, from: Option<&str>, to: &str, condition: StanzaCondition) -> Element {
    let error = Element::builder("error", NS_CLIENT)
        .attr(name("type"), condition.error_type().as_str())
        .append(Element::builder(condition.as_str(), NS_STANZA_ERRORS).build())
        .build();
    let mut stanza = Element::builder(kind, NS_CLIENT).attr(name("type"), "error").attr(name("to"), to);
    if let Some(id) = id {
        stanza = stanza.attr(name("id"), id);
    }
    if let Some(from) = from {
        stanza = stanza.attr(name("from"), from);
    }
    stanza.append(error).build()
}

/// An `iq` result to `to` for request `id`, with its payload if any; from
/// the address the request was sent to, if it named one (RFC 6120 section
/// 8.1.2.1: clients match answers by it).
pub fn iq_result(id: &str, from: Option<&str>, to: &str, payload: Option<Element>) -> Element {
    let mut iq =
        Element::builder("iq", NS_CLIENT).attr(name("type"), "result").attr(name("id"), id).attr(name("to"), to);
    if let Some(from) = from {
        iq = iq.attr(name("from"), from);
    }
    match payload {
        Some(p) => iq.append(p).build(),
        None => iq.build(),
    }
}

/// An attribute name (every name used here is a valid NCName).
pub fn name(n: &'static str) -> rxml::NcName {
    rxml::NcName::try_from(n).expect("a valid attribute name")
}

/// An element as it goes on the wire.
pub fn element(e: &Element) -> String {
    String::from(e)
}

fn base64(data: &[u8]) -> String {
    use base64::Engine;
    if data.is_empty() {
        // RFC 6120 section 6.4.2: "=" stands for an empty response.
        return "=".into();
    }
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Escapes text for an attribute value or element text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Incoming, StreamReader};

    /// What the server writes reads back with the stream reader.
    #[test]
    fn what_is_written_reads_back() {
        let mut text = server_header("example.com", "abc", Some("a'b"));
        text.push_str(&features(Features::Sasl { mechanisms: &["SCRAM-SHA-1", "PLAIN"] }));
        text.push_str(&element(&stanza_error("iq", Some("7"), None, "a@b.c/r", StanzaCondition::ServiceUnavailable)));
        text.push_str(&element(&iq_result("8", Some("b.c"), "a@b.c/r", None)));
        text.push_str(&sasl_success(b""));
        text.push_str(&stream_error(crate::StreamErrorCondition::PolicyViolation));
        let mut out = Vec::new();
        StreamReader::new().feed(text.as_bytes(), &mut out).unwrap();
        let Incoming::Header(h) = &out[0] else { panic!() };
        assert_eq!((h.id.as_deref(), h.to.as_deref()), (Some("abc"), Some("a'b")));
        let Incoming::Element(f) = &out[1] else { panic!() };
        assert_eq!(f.name(), "features");
        let Incoming::Element(e) = &out[2] else { panic!() };
        assert_eq!(e.attr("type"), Some("error"));
        assert!(e.get_child("error", NS_CLIENT).unwrap().has_child("service-unavailable", NS_STANZA_ERRORS));
        assert_eq!(out.len(), 7);
        assert_eq!(out[6], Incoming::Close);
    }
}
