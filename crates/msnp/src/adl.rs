//! The list document of MSNP13+ `ADL`, `RML` and `FQY`:
//! `<ml l="1"><d n="example.com"><c n="bob" l="3" t="1"/></d></ml>`.
//!
//! Contacts are grouped by domain; `l` holds the list bits (FL=1, AL=2,
//! BL=4, RL=8 from the server only), `t` the network (1 = Messenger), `f`
//! a URL-encoded friendly name the server adds when it tells of a reverse
//! list change. The parser is bounded by the payload it is given (the
//! frame limit) and by [`MAX_CONTACTS`]; it walks the document once with
//! `quick-xml` and builds no tree. No DTD, no entities beyond XML's five.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::error::ErrorCode;
use crate::soap::escape_xml;
use crate::urlencode;

/// The most contacts one document may name (clients send at most a few
/// hundred per `ADL`, in batches).
pub const MAX_CONTACTS: usize = 500;

/// The Messenger network (`t="1"`).
pub const MESSENGER_NETWORK: u32 = 1;

/// The list bits a client may name in `ADL`/`RML`: forward, allow, block.
pub const CLIENT_LIST_BITS: u8 = 1 | 2 | 4;

/// One contact of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// `user@domain`, as the client wrote it.
    pub handle: String,
    /// List bits (`l`); 0 in `FQY`, which names none.
    pub lists: u8,
    /// Network id (`t`; 1 when absent).
    pub network: u32,
    /// The friendly name, decoded (`f`, server to client only).
    pub friendly: Option<String>,
}

/// A whole list document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListDocument {
    /// `<ml l="1">`: the list the client shows right after sign-in.
    pub initial: bool,
    pub contacts: Vec<ListEntry>,
}

fn attr(start: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, ErrorCode> {
    for a in start.attributes() {
        let a = a.map_err(|_| ErrorCode::BadListXml)?;
        if a.key.as_ref() == name {
            return a.unescape_value().map(|v| Some(v.into_owned())).map_err(|_| ErrorCode::BadListXml);
        }
    }
    Ok(None)
}

/// The part of a handle an attribute may hold: no `@`, no spaces, not empty.
fn name_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 129 && !s.contains(['@', ' ', '\t', '\r', '\n'])
}

impl ListDocument {
    /// Parses a document a client sent. `240` for anything not shaped like
    /// one; `241` for a domain named twice or an empty one.
    pub fn parse(payload: &[u8]) -> Result<ListDocument, ErrorCode> {
        let text = std::str::from_utf8(payload).map_err(|_| ErrorCode::BadListXml)?;
        let mut reader = Reader::from_str(text);
        let mut doc = ListDocument::default();
        let mut domains: Vec<String> = Vec::new();
        // Where we are: 0 outside, 1 in <ml>, 2 in <d>, 3 in <c>.
        let mut depth = 0u8;
        let mut domain = String::new();
        let mut domain_contacts = 0usize;
        let mut seen_root = false;
        loop {
            let event = reader.read_event().map_err(|_| ErrorCode::BadListXml)?;
            let (start, empty) = match event {
                Event::Start(s) => (s, false),
                Event::Empty(s) => (s, true),
                Event::End(_) => {
                    if depth == 2 && domain_contacts == 0 {
                        // A domain with nobody in it.
                        return Err(ErrorCode::BadListXml);
                    }
                    depth = depth.checked_sub(1).ok_or(ErrorCode::BadListXml)?;
                    continue;
                }
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => continue,
                Event::Decl(_) if !seen_root => continue,
                Event::Eof if seen_root && depth == 0 => return Ok(doc),
                _ => return Err(ErrorCode::BadListXml),
            };
            match (depth, start.name().as_ref()) {
                (0, b"ml") if !seen_root => {
                    seen_root = true;
                    doc.initial = attr(&start, b"l")?.as_deref() == Some("1");
                    if empty {
                        continue;
                    }
                }
                (1, b"d") => {
                    let name = attr(&start, b"n")?.ok_or(ErrorCode::BadListXml)?;
                    if !name_part(&name) {
                        return Err(ErrorCode::BadListXml);
                    }
                    if domains.iter().any(|d| d.eq_ignore_ascii_case(&name)) {
                        return Err(ErrorCode::InvalidListXml);
                    }
                    if empty {
                        return Err(ErrorCode::BadListXml);
                    }
                    domains.push(name.clone());
                    domain = name;
                    domain_contacts = 0;
                }
                (2, b"c") => {
                    let user = attr(&start, b"n")?.ok_or(ErrorCode::BadListXml)?;
                    if !name_part(&user) {
                        return Err(ErrorCode::BadListXml);
                    }
                    let lists = match attr(&start, b"l")? {
                        Some(l) => l.parse::<u8>().map_err(|_| ErrorCode::BadListXml)?,
                        None => 0,
                    };
                    let network = match attr(&start, b"t")? {
                        Some(t) => t.parse::<u32>().map_err(|_| ErrorCode::BadListXml)?,
                        None => MESSENGER_NETWORK,
                    };
                    let friendly = match attr(&start, b"f")? {
                        Some(f) => Some(urlencode::decode(&f).map_err(|_| ErrorCode::BadListXml)?),
                        None => None,
                    };
                    if doc.contacts.len() >= MAX_CONTACTS {
                        return Err(ErrorCode::InvalidListXml);
                    }
                    doc.contacts.push(ListEntry { handle: format!("{user}@{domain}"), lists, network, friendly });
                    domain_contacts += 1;
                    if empty {
                        continue;
                    }
                }
                // MSNP21 names the lists per service, on a child:
                // `<c n="bob" t="1"><s n="IM" l="3"/></c>`.
                (3, b"s") => {
                    let lists = match attr(&start, b"l")? {
                        Some(l) => l.parse::<u8>().map_err(|_| ErrorCode::BadListXml)?,
                        None => 0,
                    };
                    let contact = doc.contacts.last_mut().ok_or(ErrorCode::BadListXml)?;
                    contact.lists |= lists;
                    if empty {
                        continue;
                    }
                }
                _ => return Err(ErrorCode::BadListXml),
            }
            depth += 1;
        }
    }

    /// Checks a document a client sent with `ADL` or `RML`: every contact
    /// names at least one list and only lists a client may (241 otherwise).
    pub fn check_client_lists(&self) -> Result<(), ErrorCode> {
        let bad = self.contacts.iter().any(|c| c.lists == 0 || c.lists & !CLIENT_LIST_BITS != 0);
        if bad { Err(ErrorCode::InvalidListXml) } else { Ok(()) }
    }

    /// Writes the document, contacts grouped by domain in first-seen order.
    pub fn encode(&self) -> String {
        let mut domains: Vec<(&str, Vec<(&str, &ListEntry)>)> = Vec::new();
        for c in &self.contacts {
            let (user, domain) = c.handle.rsplit_once('@').unwrap_or((&c.handle, ""));
            match domains.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) => list.push((user, c)),
                None => domains.push((domain, vec![(user, c)])),
            }
        }
        let mut out = String::from(if self.initial { "<ml l=\"1\">" } else { "<ml>" });
        for (domain, contacts) in domains {
            out.push_str(&format!("<d n=\"{}\">", escape_xml(domain)));
            for (user, c) in contacts {
                out.push_str(&format!("<c n=\"{}\"", escape_xml(user)));
                if c.lists != 0 {
                    out.push_str(&format!(" l=\"{}\"", c.lists));
                }
                out.push_str(&format!(" t=\"{}\"", c.network));
                if let Some(f) = &c.friendly {
                    out.push_str(&format!(" f=\"{}\"", escape_xml(&urlencode::encode(f))));
                }
                out.push_str("/>");
            }
            out.push_str("</d>");
        }
        out.push_str("</ml>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(handle: &str, lists: u8) -> ListEntry {
        ListEntry { handle: handle.into(), lists, network: 1, friendly: None }
    }

    #[test]
    fn msnp21_lists_on_service_children_read() {
        let doc = ListDocument::parse(
            br#"<ml l="1"><d n="example.com"><c n="bob" t="1"><s n="IM" l="3"/><s n="PE" l="3"/></c><c n="carol" t="1"><s n="IM" l="1"></s></c></d></ml>"#,
        )
        .unwrap();
        assert_eq!(doc.contacts, [entry("bob@example.com", 3), entry("carol@example.com", 1)]);
        assert_eq!(
            ListDocument::parse(br#"<ml><d n="x.com"><c n="a"><s l="1"><s/></s></c></d></ml>"#),
            Err(ErrorCode::BadListXml)
        );
    }

    #[test]
    fn reads_what_clients_send() {
        let doc = ListDocument::parse(
            br#"<ml l="1"><d n="example.com"><c n="bob" l="3" t="1" /><c n="carol" l="4" t="1"/></d><d n="hotmail.com"><c n="dave" l="1" t="1"/></d></ml>"#,
        )
        .unwrap();
        assert!(doc.initial);
        assert_eq!(
            doc.contacts,
            [entry("bob@example.com", 3), entry("carol@example.com", 4), entry("dave@hotmail.com", 1)]
        );
        assert_eq!(doc.check_client_lists(), Ok(()));
        // FQY names no lists; whitespace and a declaration are fine.
        let fqy =
            ListDocument::parse(b"<?xml version=\"1.0\"?>\r\n<ml>\r\n <d n=\"x.com\"><c n=\"y\" /></d></ml>").unwrap();
        assert_eq!(fqy.contacts, [ListEntry { lists: 0, ..entry("y@x.com", 0) }]);
        assert!(ListDocument::parse(b"<ml/>").unwrap().contacts.is_empty());
    }

    #[test]
    fn round_trips_with_names() {
        let doc = ListDocument {
            initial: false,
            contacts: vec![
                ListEntry { friendly: Some("Bob & <Co> 100%".into()), lists: 8, ..entry("bob@example.com", 8) },
                entry("eve@other.org", 8),
                entry("al@example.com", 8),
            ],
        };
        let text = doc.encode();
        assert!(text.starts_with("<ml><d n=\"example.com\"><c n=\"bob\" l=\"8\" t=\"1\" f=\"Bob%20"), "{text}");
        let back = ListDocument::parse(text.as_bytes()).unwrap();
        assert_eq!(back.contacts.len(), 3);
        assert_eq!(back.contacts[0], doc.contacts[0]);
        assert_eq!(back.check_client_lists(), Err(ErrorCode::InvalidListXml), "RL is the server's");
    }

    #[test]
    fn refuses_what_is_not_a_list() {
        for bad in [
            &b""[..],
            b"<ml>",
            b"<ml><d n=\"x.com\"></d></ml>",
            b"<ml><d n=\"x.com\"/></ml>",
            b"<ml><d><c n=\"a\" l=\"1\"/></d></ml>",
            b"<ml><d n=\"x.com\"><c l=\"1\"/></d></ml>",
            b"<ml><d n=\"x.com\"><c n=\"a@b\" l=\"1\"/></d></ml>",
            b"<ml><d n=\"x.com\"><c n=\"a\" l=\"one\"/></d></ml>",
            b"<ml><c n=\"a\" l=\"1\"/></ml>",
            b"<ml><d n=\"x.com\"><c n=\"a\" l=\"1\"><c n=\"b\"/></c></d></ml>",
            b"<ml></ml><ml></ml>",
            b"<x/>",
            b"<!DOCTYPE ml [<!ENTITY a \"aaaa\">]><ml/>",
            b"<ml><d n=\"x.com\"><c n=\"&a;\" l=\"1\"/></d></ml>",
            b"\xff\xfe",
        ] {
            assert_eq!(ListDocument::parse(bad), Err(ErrorCode::BadListXml), "{}", String::from_utf8_lossy(bad));
        }
        let twice = b"<ml><d n=\"x.com\"><c n=\"a\" l=\"1\"/></d><d n=\"X.com\"><c n=\"b\" l=\"1\"/></d></ml>";
        assert_eq!(ListDocument::parse(twice), Err(ErrorCode::InvalidListXml));
        let many: String = (0..=MAX_CONTACTS).map(|i| format!("<c n=\"u{i}\" l=\"1\"/>")).collect();
        let many = format!("<ml><d n=\"x.com\">{many}</d></ml>");
        assert_eq!(ListDocument::parse(many.as_bytes()), Err(ErrorCode::InvalidListXml));
        let zero = ListDocument::parse(b"<ml><d n=\"x.com\"><c n=\"a\" l=\"0\"/></d></ml>").unwrap();
        assert_eq!(zero.check_client_lists(), Err(ErrorCode::InvalidListXml));
    }
}
