//! The little SOAP the services of MSNP8-12 clients need: reading a few
//! elements and attributes out of an envelope, and escaping text for one.
//!
//! `quick-xml`'s namespace-aware pull parser does the reading: names are
//! matched by their local part whatever prefix or namespace a client used
//! (clients of different eras disagree), entities and character
//! references are resolved, and a document that is not well-formed XML
//! yields nothing. No tree is built: one pass, bounded by the body limit
//! of the HTTP reader and by [`MAX_DEPTH`].

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};

/// Deeper nesting than any SOAP envelope of the service has: a document
/// past it is refused rather than walked.
pub const MAX_DEPTH: usize = 32;

/// One step of a document: an element's start (or empty) tag, its end,
/// or a piece of text (entities and character references resolved).
enum Step<'x> {
    Open(BytesStart<'x>),
    Empty(BytesStart<'x>),
    Close,
    Text(String),
}

/// Walks `xml`, calling `visit` with each step until it returns `false`.
/// Returns `false` if the part walked is not well-formed (or too deep).
fn walk<'x>(xml: &'x str, mut visit: impl FnMut(Step<'x>, usize) -> bool) -> bool {
    let mut reader = NsReader::from_str(xml);
    let mut depth = 0usize;
    loop {
        let step = match reader.read_event() {
            Ok(Event::Start(start)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return false;
                }
                Step::Open(start)
            }
            Ok(Event::Empty(start)) => Step::Empty(start),
            Ok(Event::End(_)) => {
                depth -= 1;
                Step::Close
            }
            Ok(Event::Text(t)) => match t.xml_content() {
                Ok(t) => Step::Text(t.into_owned()),
                Err(_) => return false,
            },
            Ok(Event::CData(c)) => match c.decode() {
                Ok(t) => Step::Text(t.into_owned()),
                Err(_) => return false,
            },
            Ok(Event::GeneralRef(r)) => match (r.resolve_char_ref(), r.decode()) {
                (Ok(Some(c)), _) => Step::Text(c.to_string()),
                (Ok(None), Ok(name)) => match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(t) => Step::Text(t.to_string()),
                    None => return false,
                },
                _ => return false,
            },
            Ok(Event::Eof) => return depth == 0,
            Ok(_) => continue,
            Err(_) => return false,
        };
        if !visit(step, depth) {
            return true;
        }
    }
}

fn local_name_is(start: &BytesStart<'_>, local: &str) -> bool {
    start.local_name().as_ref() == local.as_bytes()
}

/// The text of every element with this local name (an outermost one: an
/// element inside another of the same name is part of its text).
pub fn element_texts(xml: &str, local: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The depth of the element being read, and its text so far.
    let mut reading: Option<(usize, String)> = None;
    let well_formed = walk(xml, |step, depth| {
        match (step, &mut reading) {
            (Step::Open(start), None) if local_name_is(&start, local) => reading = Some((depth, String::new())),
            (Step::Empty(start), None) if local_name_is(&start, local) => out.push(String::new()),
            (Step::Text(t), Some((_, text))) => text.push_str(&t),
            (Step::Close, Some((at, _))) if depth + 1 == *at => {
                out.extend(reading.take().map(|(_, text)| text));
            }
            _ => {}
        }
        true
    });
    if well_formed { out } else { Vec::new() }
}

/// The first element with this local name.
pub fn element_text(xml: &str, local: &str) -> Option<String> {
    element_texts(xml, local).into_iter().next()
}

/// The value of `attribute` on the first element with local name `element`,
/// in a well-formed document.
pub fn attribute(xml: &str, element: &str, attribute: &str) -> Option<String> {
    let mut found = None;
    let mut seen = false;
    let well_formed = walk(xml, |step, _| {
        if let Step::Open(start) | Step::Empty(start) = step
            && !seen
            && local_name_is(&start, element)
        {
            seen = true;
            found = start
                .attributes()
                .flatten()
                .find(|a| a.key.local_name().as_ref() == attribute.as_bytes())
                .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
        }
        true
    });
    found.filter(|_| well_formed)
}

/// Replaces the five XML entities and numeric character references.
pub fn unescape_xml(s: &str) -> Option<String> {
    quick_xml::escape::unescape(s).ok().map(|c| c.into_owned())
}

/// Escapes text for XML content and attribute values.
pub fn escape_xml(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// An OIM `StoreMessage` request (MSNP13 shape), as our client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMessage {
    pub from: String,
    pub from_friendly: Option<String>,
    pub to: String,
    /// The sender's web ticket (`t=...&p=...` or the bare token).
    pub ticket: String,
    /// The message: a MIME text message.
    pub content: String,
}

/// Parses a `StoreMessage` envelope.
pub fn parse_store_message(xml: &str) -> Option<StoreMessage> {
    Some(StoreMessage {
        from: attribute(xml, "From", "memberName")?,
        from_friendly: attribute(xml, "From", "friendlyName"),
        to: attribute(xml, "To", "memberName")?,
        ticket: attribute(xml, "Ticket", "passport")?,
        content: element_text(xml, "Content")?,
    })
}

/// The web ticket in a `PassportCookie` header (`<t>...</t>`).
pub fn passport_cookie(xml: &str) -> Option<String> {
    element_text(xml, "t")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_attributes() {
        let xml = r#"<soap:Envelope><soap:Header><From memberName="alice@x.com" friendlyName="=?utf-8?B?QWxpY2U=?=" xml:lang="en-US"/><To memberName='bob@x.com'/><Ticket passport="t=abc&amp;p=def" appid="X"/></soap:Header><soap:Body><MessageType>text</MessageType><Content>MIME-Version: 1.0&#13;&#10;hi</Content></soap:Body></soap:Envelope>"#;
        let m = parse_store_message(xml).unwrap();
        assert_eq!(m.from, "alice@x.com");
        assert_eq!(m.to, "bob@x.com");
        assert_eq!(m.ticket, "t=abc&p=def");
        assert_eq!(m.content, "MIME-Version: 1.0\r\nhi");
        assert_eq!(attribute(xml, "From", "nothere"), None);
        assert_eq!(passport_cookie("<PassportCookie><t>tok</t><p>x</p></PassportCookie>").as_deref(), Some("tok"));
        assert_eq!(parse_store_message("<a/>"), None);
        assert_eq!(attribute("<From memberName=unquoted/>", "From", "memberName"), None);
    }

    #[test]
    fn namespaces_are_resolved_and_malformed_documents_yield_nothing() {
        // Any prefix, or a default namespace: the local name is what counts.
        let a = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x:t xmlns:x="urn:a">one</x:t></s:Body></s:Envelope>"#;
        let b = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><t>one</t></Body></Envelope>"#;
        assert_eq!(element_text(a, "t").as_deref(), Some("one"));
        assert_eq!(element_text(b, "t").as_deref(), Some("one"));
        // CDATA and character references are text.
        assert_eq!(element_text("<a><![CDATA[x<y]]>&#x41;&lt;</a>", "a").as_deref(), Some("x<yA<"));
        // Not well-formed: mismatched tags, an unclosed element, an unknown
        // entity, too deep.
        assert_eq!(element_text("<a><t>x</a></t>", "t"), None);
        assert_eq!(element_text("<a><t>x</t>", "t"), None);
        assert_eq!(element_text("<t>&bogus;</t>", "t"), None);
        let deep = format!("{}<t>x</t>{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert_eq!(element_text(&deep, "t"), None);
        assert_eq!(escape_xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
