//! Presence as documents (MSNP21): the `application/user+xml` document a
//! client publishes with `PUT` to `/user`, and the `NFY PUT`/`NFY DEL`
//! notifications that tell its watchers.
//!
//! ```text
//! <user><s n="IM"><Status>NLN</Status><CurrentMedia/></s>
//!   <s n="PE"><FriendlyName>Alice</FriendlyName><PSM>hi</PSM><UserTileLocation/><MachineGuid>{…}</MachineGuid></s>
//!   <sep n="IM" epid="{…}"><Capabilities>2789003324:48</Capabilities></sep>
//!   <sep n="PD" epid="{…}"><ClientType>1</ClientType><EpName>Laptop</EpName><Idle>false</Idle><State>NLN</State></sep></user>
//! ```
//! A publication names only what changed; every field is optional.

use crate::circle::NotifType;
use crate::endpoint::{Capabilities, MachineGuid};
use crate::reply::PresenceLine;
use crate::routed::{Headers, RoutedMessage};
use crate::soap::{Element, escape_xml};
use crate::types::OnlineState;

/// `Content-Type` of user documents.
pub const USER_XML: &str = "application/user+xml";

/// The `Uri` of a user's own presence.
pub const USER_URI: &str = "/user";

/// The longest text field (name, personal message, media) kept from a
/// document; the rest is refused with the document.
pub const MAX_FIELD: usize = 1024;

/// What one user document says; `None` where it says nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserDocument {
    pub status: Option<OnlineState>,
    pub friendly: Option<String>,
    pub personal_message: Option<String>,
    pub current_media: Option<String>,
    /// The display picture's MSN object, as XML (not URL-encoded).
    pub msn_object: Option<String>,
    /// The publishing endpoint (its `epid`, or the `MachineGuid` field).
    pub machine: Option<MachineGuid>,
    pub capabilities: Option<Capabilities>,
    pub endpoint_name: Option<String>,
}

impl UserDocument {
    /// Reads a document; `None` if it is not a well-formed `<user>` or a
    /// field is over [`MAX_FIELD`] or malformed.
    pub fn parse(xml: &[u8]) -> Option<UserDocument> {
        let root = Element::parse(std::str::from_utf8(xml).ok()?)?;
        if root.name != "user" {
            return None;
        }
        let mut doc = UserDocument::default();
        let field = |e: &Element, name: &str| -> Option<Option<String>> {
            match e.child(name) {
                Some(c) if c.text.len() > MAX_FIELD => None,
                Some(c) => Some(Some(c.text.clone())),
                None => Some(None),
            }
        };
        for service in root.children_named("s") {
            match service.attr("n") {
                Some("IM") => {
                    if let Some(status) = field(service, "Status")? {
                        doc.status = Some(OnlineState::from_code(status.trim())?);
                    }
                    doc.current_media = field(service, "CurrentMedia")?;
                }
                Some("PE") => {
                    doc.friendly = field(service, "FriendlyName")?;
                    doc.personal_message = field(service, "PSM")?;
                    doc.msn_object = field(service, "UserTileLocation")?.filter(|t| !t.is_empty());
                    if let Some(guid) = field(service, "MachineGuid")?.filter(|g| !g.is_empty()) {
                        doc.machine = Some(MachineGuid::parse(&guid)?);
                    }
                }
                _ => {}
            }
        }
        for endpoint in root.children_named("sep") {
            if let Some(epid) = endpoint.attr("epid") {
                doc.machine = Some(MachineGuid::parse(epid)?);
            }
            match endpoint.attr("n") {
                Some("IM") => {
                    if let Some(caps) = field(endpoint, "Capabilities")? {
                        doc.capabilities = Some(Capabilities::parse(caps.trim())?);
                    }
                }
                Some("PD") => doc.endpoint_name = field(endpoint, "EpName")?,
                _ => {}
            }
        }
        Some(doc)
    }

    /// Writes the document (only what it says).
    pub fn to_xml(&self) -> String {
        let text = |name: &str, value: &Option<String>| match value {
            Some(v) => format!("<{name}>{}</{name}>", escape_xml(v)),
            None => String::new(),
        };
        let epid = self.machine.as_ref().map(|m| format!(" epid=\"{}\"", m.as_str())).unwrap_or_default();
        let mut xml = String::from("<user>");
        if self.status.is_some() || self.current_media.is_some() {
            let status = self.status.map(|s| s.code().to_string());
            xml.push_str(&format!(
                "<s n=\"IM\">{}{}</s>",
                text("Status", &status),
                text("CurrentMedia", &self.current_media)
            ));
        }
        // The machine is also named inside `PE`, as Windows Live Messenger
        // writes it, so a document with no endpoint section keeps it.
        if self.friendly.is_some()
            || self.personal_message.is_some()
            || self.msn_object.is_some()
            || self.machine.is_some()
        {
            let machine = self.machine.as_ref().map(|m| m.as_str().to_string());
            xml.push_str(&format!(
                "<s n=\"PE\">{}{}{}{}</s>",
                text("FriendlyName", &self.friendly),
                text("PSM", &self.personal_message),
                text("UserTileLocation", &self.msn_object),
                text("MachineGuid", &machine)
            ));
        }
        if let Some(caps) = self.capabilities {
            xml.push_str(&format!("<sep n=\"IM\"{epid}><Capabilities>{}</Capabilities></sep>", caps.with_extended()));
        }
        if self.endpoint_name.is_some() {
            xml.push_str(&format!("<sep n=\"PD\"{epid}>{}</sep>", text("EpName", &self.endpoint_name)));
        }
        xml.push_str("</user>");
        xml
    }

    /// What a presence line says, as a document.
    pub fn of_presence(presence: &PresenceLine) -> UserDocument {
        UserDocument {
            status: Some(presence.state),
            friendly: Some(presence.friendly.clone()),
            msn_object: presence.msn_object.as_deref().and_then(|o| crate::urlencode::decode(o).ok()),
            capabilities: Some(Capabilities { basic: presence.client_id, extended: presence.extended_caps }),
            ..UserDocument::default()
        }
    }
}

/// The routing block of a notification to `to` about `from`.
fn routing(to: &str, from: &str) -> Headers {
    Headers::default().with("Routing", "1.0").with("To", format!("1:{to}")).with("From", format!("1:{from}"))
}

/// The `NFY PUT` payload that tells `to` what `from` published (`Full` for
/// what a watcher is told first, `Partial` for a change).
pub fn presence_notification(to: &str, from: &str, document: &UserDocument, kind: NotifType) -> RoutedMessage {
    notification(to, from, kind, document.to_xml())
}

/// The `NFY DEL` payload that tells `to` that `from` signed out.
pub fn offline_notification(to: &str, from: &str) -> RoutedMessage {
    notification(to, from, NotifType::Partial, "<user><s n=\"IM\"/><s n=\"PE\"/></user>".to_string())
}

/// A notification about `from`'s `/user` to `to`, carrying `body`.
fn notification(to: &str, from: &str, kind: NotifType, body: String) -> RoutedMessage {
    RoutedMessage {
        routing: routing(to, from),
        reliability: Headers::default().with("Reliability", "1.0"),
        content: Headers::default()
            .with("Notification", "1.0")
            .with("NotifNum", "0")
            .with("Uri", USER_URI)
            .with("NotifType", kind.name())
            .with("Content-Type", USER_XML)
            .with("Content-Length", body.len().to_string()),
        body: body.into_bytes().into(),
    }
}

/// The `PUT` payload that publishes `document` as `handle`'s presence,
/// from its endpoint `machine`.
pub fn publication(handle: &str, machine: &MachineGuid, document: &UserDocument) -> RoutedMessage {
    let body = document.to_xml();
    RoutedMessage {
        routing: Headers::default()
            .with("Routing", "1.0")
            .with("To", format!("1:{handle}"))
            .with("From", format!("1:{handle};epid={}", machine.as_str())),
        reliability: Headers::default().with("Reliability", "1.0"),
        content: Headers::default()
            .with("Publication", "1.0")
            .with("Uri", USER_URI)
            .with("Content-Type", USER_XML)
            .with("Content-Length", body.len().to_string()),
        body: body.into_bytes().into(),
    }
}

/// The document a `PUT` publishes about its sender, if it is one
/// (`Uri: /user`, `application/user+xml`, addressed to the sender).
pub fn published(message: &RoutedMessage) -> Option<UserDocument> {
    let uri = message.content.get("Uri")?;
    if uri != USER_URI {
        return None;
    }
    UserDocument::parse(&message.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BITLBEE: &str = "<user><s n=\"PE\"><UserTileLocation></UserTileLocation><FriendlyName>Bob &amp; co</FriendlyName><PSM>at lunch</PSM><DDP></DDP><Scene></Scene><ASN></ASN><ColorScheme>-3</ColorScheme><BDG></BDG><RUM></RUM><RUL></RUL><RLT>0</RLT><RID></RID><SUL></SUL><MachineGuid>{b171be3e-1111-2222-3333-444455556666}</MachineGuid></s><s n=\"IM\"><Status>AWY</Status><CurrentMedia></CurrentMedia></s><sep n=\"PD\"><ClientType>1</ClientType><EpName>host</EpName><Idle>false</Idle><State>AWY</State></sep><sep n=\"PE\"><VER>BitlBee:3.4.2</VER><TYP>1</TYP><Capabilities>49152:0</Capabilities></sep><sep n=\"IM\"><Capabilities>49152:0</Capabilities></sep></user>";

    #[test]
    fn bitlbee_s_publication_reads() {
        let doc = UserDocument::parse(BITLBEE.as_bytes()).unwrap();
        assert_eq!(doc.status, Some(OnlineState::Away));
        assert_eq!(doc.friendly.as_deref(), Some("Bob & co"));
        assert_eq!(doc.personal_message.as_deref(), Some("at lunch"));
        assert_eq!(doc.msn_object, None);
        assert_eq!(doc.capabilities, Some(Capabilities { basic: 49152, extended: 0 }));
        assert_eq!(doc.endpoint_name.as_deref(), Some("host"));
        assert_eq!(
            doc.machine.as_ref().map(|m| m.as_str().to_string()).as_deref(),
            Some("{b171be3e-1111-2222-3333-444455556666}")
        );
    }

    #[test]
    fn a_document_reads_back_as_written() {
        let doc = UserDocument {
            status: Some(OnlineState::Busy),
            friendly: Some("Alice <3".into()),
            personal_message: Some("x & y".into()),
            current_media: Some(String::new()),
            msn_object: Some("<msnobj Creator=\"a\"/>".into()),
            machine: MachineGuid::parse("{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"),
            capabilities: Some(Capabilities { basic: 1, extended: 2 }),
            endpoint_name: Some("Laptop".into()),
        };
        assert_eq!(UserDocument::parse(doc.to_xml().as_bytes()), Some(doc));
        assert_eq!(UserDocument::parse(b"<user/>"), Some(UserDocument::default()));
        // A machine named only in `PE` (no endpoint section) is kept.
        let only_machine = UserDocument {
            machine: MachineGuid::parse("{b342be3e-1111-2222-3333-444455556666}"),
            ..UserDocument::default()
        };
        assert_eq!(UserDocument::parse(only_machine.to_xml().as_bytes()), Some(only_machine));
    }

    #[test]
    fn hostile_documents_are_refused() {
        assert_eq!(UserDocument::parse(b"<circle/>"), None);
        assert_eq!(UserDocument::parse(b"<user><s n=\"IM\"><Status>XYZ</Status></s></user>"), None);
        assert_eq!(UserDocument::parse(b"<user><sep n=\"IM\" epid=\"nope\"/></user>"), None);
        let long = format!("<user><s n=\"PE\"><PSM>{}</PSM></s></user>", "a".repeat(MAX_FIELD + 1));
        assert_eq!(UserDocument::parse(long.as_bytes()), None);
        assert_eq!(UserDocument::parse(b"<!DOCTYPE x [<!ENTITY a \"b\">]><user/>"), None);
    }

    #[test]
    fn notifications_are_what_bitlbee_reads() {
        let doc =
            UserDocument { status: Some(OnlineState::Online), friendly: Some("Bob".into()), ..Default::default() };
        let m = presence_notification("alice@example.com", "bob@example.com", &doc, NotifType::Full);
        let bytes = m.to_bytes();
        // bitlbee splits at blank lines: routing, reliability, content, body;
        // it takes the address after `1:` from `From`, and the `Uri`.
        let parts: Vec<&[u8]> = split_blocks(&bytes);
        assert!(String::from_utf8_lossy(parts[0]).contains("From: 1:bob@example.com"));
        assert!(String::from_utf8_lossy(parts[2]).contains("Uri: /user"));
        assert_eq!(UserDocument::parse(parts[3]), Some(doc));
        let gone = offline_notification("alice@example.com", "bob@example.com");
        assert_eq!(published(&gone), Some(UserDocument::default()));
    }

    fn split_blocks(bytes: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = bytes;
        for _ in 0..3 {
            let i = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            out.push(&rest[..i]);
            rest = &rest[i + 4..];
        }
        out.push(rest);
        out
    }
}
