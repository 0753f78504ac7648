//! The XMPP wire (RFC 6120, RFC 6121 and the extensions Mariposa serves),
//! in both directions and without I/O, as `msnp` is for MSNP: the bounded
//! stream reader ([`stream`]), what is written on a stream ([`write`]),
//! SASL ([`sasl`]), and the requests a client sends, typed ([`request`]).
//!
//! Stanzas are `minidom` elements read by `rxml` (restricted XML, bounded);
//! their typed forms are the `xmpp-parsers` ones.

pub mod request;
pub mod sasl;
pub mod stream;
pub mod write;

pub use minidom::Element;
pub use xmpp_parsers;
pub use xmpp_parsers::jid;

pub const NS_CLIENT: &str = "jabber:client";
pub const NS_STREAMS: &str = "http://etherx.jabber.org/streams";
pub const NS_STREAM_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const NS_STANZA_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";

/// Why a stream is closed (RFC 6120 section 4.9.3), the ones Mariposa uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamErrorCondition {
    #[error("bad-format")]
    BadFormat,
    #[error("conflict")]
    Conflict,
    #[error("connection-timeout")]
    ConnectionTimeout,
    #[error("host-unknown")]
    HostUnknown,
    #[error("improper-addressing")]
    ImproperAddressing,
    #[error("internal-server-error")]
    InternalServerError,
    #[error("invalid-namespace")]
    InvalidNamespace,
    #[error("not-authorized")]
    NotAuthorized,
    #[error("not-well-formed")]
    NotWellFormed,
    #[error("policy-violation")]
    PolicyViolation,
    #[error("resource-constraint")]
    ResourceConstraint,
    #[error("restricted-xml")]
    RestrictedXml,
    #[error("system-shutdown")]
    SystemShutdown,
    #[error("unsupported-stanza-type")]
    UnsupportedStanzaType,
    #[error("unsupported-version")]
    UnsupportedVersion,
}

impl StreamErrorCondition {
    /// Reads a condition back (the client side of a stream error).
    pub fn from_name(name: &str) -> Option<StreamErrorCondition> {
        use StreamErrorCondition::*;
        [
            BadFormat,
            Conflict,
            ConnectionTimeout,
            HostUnknown,
            ImproperAddressing,
            InternalServerError,
            InvalidNamespace,
            NotAuthorized,
            NotWellFormed,
            PolicyViolation,
            ResourceConstraint,
            RestrictedXml,
            SystemShutdown,
            UnsupportedStanzaType,
            UnsupportedVersion,
        ]
        .into_iter()
        .find(|c| c.to_string() == name)
    }
}
