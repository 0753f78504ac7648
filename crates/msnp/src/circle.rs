//! Circles (MSNP18's persistent group chats) on the wire, both ways: the
//! circle id in its GUID and address forms, the membership's role and
//! state numbers, the `application/circles+xml` documents of `PUT`/`NFY`,
//! the routed messages around them, and the signed ticket the address book
//! hands out and `USR SHA A` hands back.
//!
//! A circle is `00000000-0000-0000-0009-<12 hex>`; as a routed address
//! `9:<that>@live.com`, with `;path=IM` when a message is said in it.

use crate::routed::{CIRCLE_NETWORK, Headers, RoutedAddress, RoutedMessage};
use crate::soap::{Element, escape_xml};

/// What every circle GUID starts with.
const GUID_PREFIX: &str = "00000000-0000-0000-0009-";

/// The domain circle addresses are in.
pub const CIRCLE_DOMAIN: &str = "live.com";

/// A circle's id: its twelve hex digits, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CircleId(String);

impl CircleId {
    /// From the twelve hex digits alone (how a store keeps it).
    pub fn from_hex(hex: &str) -> Option<CircleId> {
        (hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| CircleId(hex.to_ascii_lowercase()))
    }

    /// From the GUID form, in either case.
    pub fn parse_guid(guid: &str) -> Option<CircleId> {
        let prefix = guid.get(..GUID_PREFIX.len())?;
        if !prefix.eq_ignore_ascii_case(GUID_PREFIX) {
            return None;
        }
        CircleId::from_hex(&guid[GUID_PREFIX.len()..])
    }

    /// From a routed address `9:<guid>@live.com[;...]`.
    pub fn of_address(address: &RoutedAddress) -> Option<CircleId> {
        if address.network != CIRCLE_NETWORK {
            return None;
        }
        let (guid, domain) = address.name.split_once('@')?;
        domain.eq_ignore_ascii_case(CIRCLE_DOMAIN).then(|| CircleId::parse_guid(guid))?
    }

    pub fn hex(&self) -> &str {
        &self.0
    }

    /// `00000000-0000-0000-0009-<hex>`.
    pub fn guid(&self) -> String {
        format!("{GUID_PREFIX}{}", self.0)
    }

    /// `<guid>@live.com`: the circle as a handle.
    pub fn handle(&self) -> String {
        format!("{}@{CIRCLE_DOMAIN}", self.guid())
    }

    /// `9:<guid>@live.com`.
    pub fn address(&self) -> RoutedAddress {
        RoutedAddress { network: CIRCLE_NETWORK, name: self.handle(), params: Vec::new() }
    }

    /// The CID the address book gives the circle: its 48 bits.
    pub fn cid(&self) -> u64 {
        u64::from_str_radix(&self.0, 16).unwrap_or(0)
    }
}

impl std::fmt::Display for CircleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.guid())
    }
}

/// A member's role (`RelationshipRole`, `CirclePersonalMembership/Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CircleRole {
    /// Made the circle, or was made an administrator: may invite.
    Admin,
    Member,
}

impl CircleRole {
    /// The number of `RelationshipRole`.
    pub fn number(self) -> u8 {
        match self {
            CircleRole::Admin => 1,
            CircleRole::Member => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CircleRole::Admin => "Admin",
            CircleRole::Member => "Member",
        }
    }

    pub fn from_name(name: &str) -> Option<CircleRole> {
        [CircleRole::Admin, CircleRole::Member].into_iter().find(|r| r.name() == name)
    }
}

/// Where a membership stands (`RelationshipState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CircleState {
    /// Invited, not yet answered.
    WaitingResponse,
    Accepted,
}

impl CircleState {
    pub fn number(self) -> u8 {
        match self {
            CircleState::WaitingResponse => 1,
            CircleState::Accepted => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CircleState::WaitingResponse => "WaitingResponse",
            CircleState::Accepted => "Accepted",
        }
    }

    pub fn from_name(name: &str) -> Option<CircleState> {
        [CircleState::WaitingResponse, CircleState::Accepted].into_iter().find(|s| s.name() == name)
    }
}

/// The `application/circles+xml` document of `PUT` and `NFY PUT`: the
/// roster (who is in the circle now), and the circle's presence (its name
/// and personal message).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CircleDocument {
    /// Handles in the roster (`<user><id>1:handle</id></user>`).
    pub roster: Vec<String>,
    /// `<props><presence>`: name and personal message, when present.
    pub presence: Option<CirclePresence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CirclePresence {
    pub name: String,
    pub personal_message: String,
}

/// The most members a roster document may name when read (more than any
/// circle may hold).
pub const MAX_ROSTER: usize = 500;

impl CircleDocument {
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<circle>");
        if !self.roster.is_empty() {
            out.push_str("<roster><id>IM</id>");
            for handle in &self.roster {
                out.push_str(&format!("<user><id>1:{}</id></user>", escape_xml(handle)));
            }
            out.push_str("</roster>");
        }
        if let Some(p) = &self.presence {
            out.push_str(&format!(
                "<props><presence dtype=\"xml\"><Data><UTL></UTL><MFN>{}</MFN><PSM>{}</PSM><CurrentMedia></CurrentMedia></Data></presence></props>",
                escape_xml(&p.name),
                escape_xml(&p.personal_message)
            ));
        }
        out.push_str("</circle>");
        out
    }

    /// Reads a document; `None` if it is not one, or names more than
    /// [`MAX_ROSTER`] users, or a user not on the Messenger network.
    pub fn parse(xml: &[u8]) -> Option<CircleDocument> {
        let root = Element::parse(std::str::from_utf8(xml).ok()?)?;
        if root.name != "circle" {
            return None;
        }
        let mut doc = CircleDocument::default();
        if let Some(roster) = root.child("roster") {
            for user in roster.children_named("user") {
                let id = user.text_at(&["id"])?;
                let handle = id.strip_prefix("1:")?;
                if handle.is_empty() || doc.roster.len() == MAX_ROSTER {
                    return None;
                }
                doc.roster.push(handle.to_string());
            }
        }
        if let Some(data) = root.path(&["props", "presence", "Data"]) {
            doc.presence = Some(CirclePresence {
                name: data.text_at(&["MFN"]).unwrap_or("").to_string(),
                personal_message: data.text_at(&["PSM"]).unwrap_or("").to_string(),
            });
        }
        Some(doc)
    }
}

/// `Content-Type` of circle documents.
pub const CIRCLES_XML: &str = "application/circles+xml";

fn routing(to: &str, from: String) -> Headers {
    Headers::default().with("Routing", "1.0").with("To", to).with("From", from)
}

/// How much of the circle a notification carries (`NotifType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifType {
    /// Everything there is: sent when the member is admitted.
    Full,
    /// What changed.
    Partial,
}

impl NotifType {
    pub fn name(self) -> &'static str {
        match self {
            NotifType::Full => "Full",
            NotifType::Partial => "Partial",
        }
    }
}

/// The payload of `NFY PUT` that tells `to` about a circle: `document` as
/// a publication, or (none) the empty notification that the circle is
/// there to be joined (after `USR SHA A`).
pub fn circle_notification(
    to: &str,
    circle: &CircleId,
    kind: NotifType,
    document: Option<&CircleDocument>,
) -> RoutedMessage {
    roster_notification(to, circle.address().to_string(), kind, document)
}

/// [`circle_notification`] from any group address (a circle, `9:`, or a
/// group conversation, `10:`).
pub fn roster_notification(
    to: &str,
    from: String,
    kind: NotifType,
    document: Option<&CircleDocument>,
) -> RoutedMessage {
    let body = document.map(CircleDocument::to_xml).unwrap_or_default();
    let content = match document {
        Some(_) => Headers::default().with("Publication", "1.0"),
        None => Headers::default().with("Notification", "1.0").with("NotifNum", "0"),
    };
    RoutedMessage {
        routing: routing(&format!("1:{to}"), from),
        reliability: Headers::default().with("Reliability", "1.0").with("Stream", "0"),
        content: content
            .with("Uri", "/circle")
            .with("NotifType", kind.name())
            .with("Content-Type", CIRCLES_XML)
            .with("Content-Length", body.len().to_string()),
        body: body.into_bytes().into(),
    }
}

/// The payload of `NFY DEL` that tells `to` that `who` left the circle's roster.
pub fn left_notification(to: &str, circle: &CircleId, who: &str) -> RoutedMessage {
    left_notification_from(to, circle.address().to_string(), who)
}

/// [`left_notification`] from any group address.
pub fn left_notification_from(to: &str, from: String, who: &str) -> RoutedMessage {
    RoutedMessage {
        routing: routing(&format!("1:{to}"), from),
        reliability: Headers::default().with("Reliability", "1.0").with("Stream", "0"),
        content: Headers::default()
            .with("Notification", "1.0")
            .with("NotifNum", "2")
            .with("Uri", format!("/circle/roster(IM)/user(1:{who})"))
            .with("NotifType", "Partial")
            .with("Content-Type", CIRCLES_XML)
            .with("Content-Length", "0"),
        body: Default::default(),
    }
}

/// Who left, read back from a [`left_notification`].
pub fn left_member(message: &RoutedMessage) -> Option<String> {
    let uri = message.content.get("Uri")?;
    let inner = uri.strip_prefix("/circle/roster(IM)/user(1:")?.strip_suffix(')')?;
    (!inner.is_empty()).then(|| inner.to_string())
}

/// What is said in a circle, as the `Messaging` block names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Said {
    /// Text, with its `X-MMS-IM-Format` when the sender gave one.
    Text {
        text: String,
        format: Option<String>,
    },
    Typing,
    Nudge,
}

/// The most text one circle message may carry: what a switchboard
/// message may (the clients' own limit).
pub const MAX_TEXT: usize = 1_400;

impl Said {
    /// Reads the content of an `SDG` to a circle; `None` for what a circle
    /// does not carry (or text past [`MAX_TEXT`]).
    pub fn of(message: &RoutedMessage) -> Option<Said> {
        match message.content.get("Message-Type")? {
            "Text" => {
                let text = std::str::from_utf8(&message.body).ok()?;
                (text.len() <= MAX_TEXT && !text.is_empty()).then(|| Said::Text {
                    text: text.to_string(),
                    format: message.content.get("X-MMS-IM-Format").map(str::to_string),
                })
            }
            "Nudge" => Some(Said::Nudge),
            "Control" if message.content.get("Message-Subtype") == Some("Typing") => Some(Said::Typing),
            // MSNP21 names the subtype in the type (bitlbee 3.4, WLM 2011).
            "Control/Typing" => Some(Said::Typing),
            _ => None,
        }
    }
}

/// The `SDG` payload that carries `said` in `circle` from one endpoint of
/// `from` (`handle;{guid}` or a bare handle).
pub fn circle_message(circle: &CircleId, from: &str, from_endpoint: Option<&str>, said: &Said) -> RoutedMessage {
    let mut to = circle.address();
    to.params.push(("path".into(), "IM".into()));
    said_message(&to.to_string(), from, from_endpoint, said, SdgStyle::Circle)
}

/// The two shapes of a said message: WLM 2009's circles (`Messaging: 1.0`,
/// typing as a `Message-Subtype`) and MSNP21's person-to-person messages
/// (`Messaging: 2.0`, `Message-Type: Control/Typing`, as bitlbee 3.4 reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdgStyle {
    Circle,
    Direct,
}

/// The `SDG` payload that carries `said` to `to` (a routed address) from
/// one endpoint of `from`.
pub fn said_message(to: &str, from: &str, from_endpoint: Option<&str>, said: &Said, style: SdgStyle) -> RoutedMessage {
    let from = match from_endpoint {
        Some(guid) => format!("1:{from};epid={guid}"),
        None => format!("1:{from}"),
    };
    let version = match style {
        SdgStyle::Circle => "1.0",
        SdgStyle::Direct => "2.0",
    };
    let mut content = Headers::default().with("Messaging", version);
    let body = match said {
        Said::Text { text, format } => {
            content = content
                .with("Content-Length", text.len().to_string())
                .with("Content-Type", "Text/plain; charset=UTF-8")
                .with("Content-Transfer-Encoding", "7bit")
                .with("Message-Type", "Text")
                .with("MIME-Version", "1.0");
            if let Some(f) = format {
                content = content.with("X-MMS-IM-Format", f.as_str());
            }
            text.clone()
        }
        Said::Typing => {
            content = content
                .with("Content-Length", "2")
                .with("Content-Type", "text/x-msmsgscontrol")
                .with("Content-Transfer-Encoding", "7bit");
            content = match style {
                SdgStyle::Circle => content.with("Message-Type", "Control").with("Message-Subtype", "Typing"),
                SdgStyle::Direct => content.with("Message-Type", "Control/Typing"),
            };
            content = content.with("MIME-Version", "1.0");
            "\r\n".to_string()
        }
        Said::Nudge => {
            content = content
                .with("Content-Length", "9")
                .with("Content-Type", "Text/plain; charset=UTF-8")
                .with("Content-Transfer-Encoding", "7bit")
                .with("Message-Type", "Nudge")
                .with("MIME-Version", "1.0");
            "ID: 1\r\n\r\n".to_string()
        }
    };
    RoutedMessage {
        routing: routing(to, from),
        reliability: Headers::default().with("Reliability", "1.0").with("Stream", "0").with("Segment", "0"),
        content,
        body: body.into_bytes().into(),
    }
}

/// The ticket inside a [`SignedTicket`]: whose it is (their CID), the
/// circles it admits them to, and when it was issued (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleTicket {
    pub cid: u64,
    pub circles: Vec<CircleId>,
    pub issued_secs: i64,
}

/// The most circles a ticket may name when read.
pub const MAX_TICKET_CIRCLES: usize = 200;

impl CircleTicket {
    pub fn to_xml(&self) -> String {
        let circles: String = self
            .circles
            .iter()
            .map(|c| format!("<Circle Id=\"{}\" HostedDomain=\"{CIRCLE_DOMAIN}\"/>", c.guid()))
            .collect();
        format!("<Ticket><TS>{}</TS><CID>{}</CID>{circles}</Ticket>", self.issued_secs, self.cid as i64)
    }

    pub fn parse(xml: &[u8]) -> Option<CircleTicket> {
        let root = Element::parse(std::str::from_utf8(xml).ok()?)?;
        if root.name != "Ticket" {
            return None;
        }
        let circles: Vec<CircleId> = root
            .children_named("Circle")
            .map(|c| c.attr("Id").and_then(CircleId::parse_guid))
            .collect::<Option<_>>()?;
        if circles.len() > MAX_TICKET_CIRCLES {
            return None;
        }
        Some(CircleTicket {
            cid: root.text_at(&["CID"])?.parse::<i64>().ok()? as u64,
            circles,
            issued_secs: root.text_at(&["TS"])?.parse().ok()?,
        })
    }
}

/// `<SignedTicket>`: the ticket's bytes and the service's signature over
/// them, both base64. The client does not read either: it hands the whole
/// document back, base64 again, in `USR SHA A`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTicket {
    pub data: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SignedTicket {
    pub fn to_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-16\"?><SignedTicket xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" ver=\"1\" keyVer=\"1\"><Data>{}</Data><Sig>{}</Sig></SignedTicket>",
            crate::base64::encode(&self.data),
            crate::base64::encode(&self.signature)
        )
    }

    pub fn parse(xml: &str) -> Option<SignedTicket> {
        // The declaration says UTF-16 but the text is what was sent: read
        // past the declaration rather than trusting it.
        let body = match xml.trim_start().strip_prefix("<?xml") {
            Some(rest) => &rest[rest.find("?>")? + 2..],
            None => xml,
        };
        let root = Element::parse(body)?;
        if root.name != "SignedTicket" {
            return None;
        }
        Some(SignedTicket {
            data: crate::base64::decode(root.text_at(&["Data"])?)?,
            signature: crate::base64::decode(root.text_at(&["Sig"])?)?,
        })
    }

    /// The argument of `USR SHA A`: the document, base64.
    pub fn to_usr_argument(&self) -> String {
        crate::base64::encode(self.to_xml().as_bytes())
    }

    /// Reads the argument of `USR SHA A`.
    pub fn from_usr_argument(argument: &str) -> Option<SignedTicket> {
        let xml = crate::base64::decode(argument)?;
        SignedTicket::parse(std::str::from_utf8(&xml).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle() -> CircleId {
        CircleId::from_hex("0123456789AB").unwrap()
    }

    #[test]
    fn a_circle_reads_in_each_of_its_forms() {
        let c = circle();
        assert_eq!(c.guid(), "00000000-0000-0000-0009-0123456789ab");
        assert_eq!(CircleId::parse_guid("00000000-0000-0000-0009-0123456789AB"), Some(c.clone()));
        assert_eq!(c.address().to_string(), "9:00000000-0000-0000-0009-0123456789ab@live.com");
        let with_path = RoutedAddress::parse("9:00000000-0000-0000-0009-0123456789ab@live.com;path=IM").unwrap();
        assert_eq!(CircleId::of_address(&with_path), Some(c));
        for bad in [
            "00000000-0000-0000-0000-0123456789ab",
            "00000000-0000-0000-0009-0123456789",
            "00000000-0000-0000-0009-0123456789ag",
        ] {
            assert_eq!(CircleId::parse_guid(bad), None, "{bad}");
        }
        let other_domain = RoutedAddress::parse("9:00000000-0000-0000-0009-0123456789ab@example.com").unwrap();
        assert_eq!(CircleId::of_address(&other_domain), None);
    }

    #[test]
    fn documents_write_and_read_back() {
        let doc = CircleDocument {
            roster: vec!["alice@example.com".into(), "bob@example.com".into()],
            presence: Some(CirclePresence { name: "Friends & co".into(), personal_message: "<hi>".into() }),
        };
        assert_eq!(CircleDocument::parse(doc.to_xml().as_bytes()), Some(doc));
        assert_eq!(CircleDocument::parse(b"<circle><roster><user><id>2:x@y</id></user></roster></circle>"), None);
        assert_eq!(CircleDocument::parse(b"<user/>"), None);
    }

    #[test]
    fn notifications_are_routed_messages_that_read_back() {
        let c = circle();
        let doc = CircleDocument { roster: vec!["alice@example.com".into()], presence: None };
        let put = circle_notification("bob@example.com", &c, NotifType::Partial, Some(&doc));
        let again = RoutedMessage::parse(&put.to_bytes()).unwrap();
        assert_eq!(CircleId::of_address(&again.from().unwrap()), Some(c.clone()));
        assert_eq!(CircleDocument::parse(&again.body), Some(doc));
        let ready = circle_notification("bob@example.com", &c, NotifType::Full, None);
        assert_eq!(RoutedMessage::parse(&ready.to_bytes()).unwrap().content.get("Content-Length"), Some("0"));
        let left = left_notification("bob@example.com", &c, "alice@example.com");
        assert_eq!(left_member(&RoutedMessage::parse(&left.to_bytes()).unwrap()).as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn what_is_said_reads_back() {
        let c = circle();
        for said in [
            Said::Text { text: "hello all".into(), format: Some("FN=Arial; EF=; CO=0; CS=0; PF=0".into()) },
            Said::Typing,
            Said::Nudge,
        ] {
            let m = circle_message(&c, "alice@example.com", Some("{f52973b6-c926-4bad-9ba8-7c1e840e4ab0}"), &said);
            let again = RoutedMessage::parse(&m.to_bytes()).unwrap();
            assert_eq!(Said::of(&again), Some(said));
            assert_eq!(again.to().unwrap().param("path"), Some("IM"));
        }
    }

    #[test]
    fn a_signed_ticket_survives_the_client_round_trip() {
        let ticket = CircleTicket { cid: 42, circles: vec![circle()], issued_secs: 1_700_000_000 };
        assert_eq!(CircleTicket::parse(ticket.to_xml().as_bytes()), Some(ticket.clone()));
        let signed = SignedTicket { data: ticket.to_xml().into_bytes(), signature: vec![1, 2, 3] };
        // The address book sends it escaped inside <CircleTicket>; the
        // client unescapes it and sends it back base64.
        let escaped = escape_xml(&signed.to_xml());
        let unescaped = crate::soap::unescape_xml(&escaped).unwrap();
        let argument = crate::base64::encode(unescaped.as_bytes());
        assert_eq!(SignedTicket::from_usr_argument(&argument), Some(signed));
        assert_eq!(SignedTicket::from_usr_argument("not base64!"), None);
    }
}
