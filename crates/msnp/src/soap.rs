//! SOAP for the web services: a small bounded tree ([`Element`]) and the
//! envelope around it ([`Envelope`]) that every request and answer of the
//! services is read through, and escaping text for answers.
//!
//! `quick-xml`'s namespace-aware pull parser does the reading: names are
//! matched by their local part whatever prefix a client used (clients of
//! different eras disagree), the namespace is kept where it matters,
//! entities and character references are resolved (XML's five and numeric
//! ones only: a DTD is refused, so no entity can expand), and a document
//! that is not well-formed XML yields nothing. Bounded by the body limit of
//! the HTTP reader, by [`MAX_DEPTH`] and by [`MAX_NODES`].

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// Deeper nesting than any SOAP envelope of the service has: a document
/// past it is refused rather than walked.
pub const MAX_DEPTH: usize = 32;

/// The most elements an [`Element`] tree may hold: far more than any
/// request of the services (an address book change names a few contacts).
pub const MAX_NODES: usize = 4096;

/// An element of a parsed document: its local name, namespace, attributes
/// (by local name), text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub namespace: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Parses a whole document into a tree; `None` if it is not well-formed,
    /// holds a DTD, or passes [`MAX_DEPTH`] or [`MAX_NODES`].
    pub fn parse(xml: &str) -> Option<Element> {
        let mut reader = NsReader::from_str(xml);
        let mut stack: Vec<Element> = Vec::new();
        let mut nodes = 0usize;
        let mut root = None;
        loop {
            let (ns, event) = reader.read_resolved_event().ok()?;
            let namespace = match ns {
                ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
                _ => None,
            };
            match event {
                Event::Start(ref start) | Event::Empty(ref start) => {
                    nodes += 1;
                    if nodes > MAX_NODES || stack.len() >= MAX_DEPTH || root.is_some() {
                        return None;
                    }
                    let mut element = Element {
                        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                        namespace,
                        ..Element::default()
                    };
                    // `<>`: quick-xml reads it as a nameless element; XML
                    // has no such thing.
                    if element.name.is_empty() {
                        return None;
                    }
                    for a in start.attributes() {
                        let a = a.ok()?;
                        if a.key.as_namespace_binding().is_some() {
                            continue;
                        }
                        let name = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
                        element.attributes.push((name, a.unescape_value().ok()?.into_owned()));
                    }
                    if matches!(event, Event::Start(_)) {
                        stack.push(element);
                    } else {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(element),
                            None => root = Some(element),
                        }
                    }
                }
                Event::End(_) => {
                    let done = stack.pop()?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => root = Some(done),
                    }
                }
                Event::Text(t) => {
                    let text = t.xml_content().ok()?;
                    match stack.last_mut() {
                        Some(e) => e.text.push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => return None,
                    }
                }
                Event::CData(c) => stack.last_mut()?.text.push_str(&c.decode().ok()?),
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref().ok()? {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&r.decode().ok()?)?.to_string(),
                    };
                    stack.last_mut()?.text.push_str(&text);
                }
                Event::DocType(_) => return None,
                Event::Eof => return if stack.is_empty() { root } else { None },
                _ => {}
            }
        }
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, n| e.child(n))
    }

    /// The first element with this local name, this one or below (depth first).
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// Every element with this local name below this one (depth first,
    /// not inside another of the same name).
    pub fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
        for c in &self.children {
            if c.name == name {
                out.push(c);
            } else {
                c.find_all(name, out);
            }
        }
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The trimmed text of the child at this path.
    pub fn text_at(&self, names: &[&str]) -> Option<&str> {
        self.path(names).map(|e| e.text.trim())
    }
}

/// The SOAP 1.1 envelope namespace.
pub const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// A SOAP 1.1 request read: its header and body (each may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub header: Element,
    pub body: Element,
}

impl Envelope {
    /// Parses a request: the root must be a SOAP 1.1 `Envelope` (in its
    /// namespace) with a `Body`.
    pub fn parse(xml: &str) -> Option<Envelope> {
        let root = Element::parse(xml)?;
        if root.name != "Envelope" || root.namespace.as_deref() != Some(ENVELOPE_NS) {
            return None;
        }
        let in_ns = |e: &&Element| e.namespace.as_deref() == Some(ENVELOPE_NS);
        let body = root.children_named("Body").find(in_ns)?.clone();
        let header = root.children_named("Header").find(in_ns).cloned().unwrap_or_default();
        Some(Envelope { header, body })
    }

    /// The operation: the first element of the body.
    pub fn operation(&self) -> Option<&Element> {
        self.body.children.first()
    }
}

/// A SOAP 1.1 envelope around `body`, with `header` (none if empty): the one
/// shape every request and answer of the services is written in. The
/// prefix is `soap:` because clients of the time match it literally (aMSN
/// reads `soap:Envelope:soap:Body:...`); `xsi` is declared for the
/// `xsi:type` attributes the answers carry.
pub fn envelope(header: &str, body: &str) -> String {
    let header = if header.is_empty() { String::new() } else { format!("<soap:Header>{header}</soap:Header>") };
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ns}" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#,
            "{header}<soap:Body>{body}</soap:Body></soap:Envelope>"
        ),
        ns = ENVELOPE_NS,
        header = header,
        body = body
    )
}

/// A fault's envelope: `faultcode` as given (a QName, its prefix declared by
/// the caller in `detail` or standard), the text escaped, and `detail`
/// (already XML) when not empty.
pub fn fault(code: &str, text: &str, detail: &str) -> String {
    let detail = if detail.is_empty() { String::new() } else { format!("<detail>{detail}</detail>") };
    envelope(
        "",
        &format!(
            "<soap:Fault><faultcode>{code}</faultcode><faultstring>{}</faultstring>{detail}</soap:Fault>",
            escape_xml(text)
        ),
    )
}

/// Replaces the five XML entities and numeric character references.
pub fn unescape_xml(s: &str) -> Option<String> {
    quick_xml::escape::unescape(s).ok().map(|c| c.into_owned())
}

/// Escapes text for XML content and attribute values.
pub fn escape_xml(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nameless_element_is_not_xml() {
        // Found by the soap_and_lists fuzz target.
        assert_eq!(Element::parse("<>0l</>"), None);
        assert_eq!(Element::parse("<a><></></a>"), None);
    }

    #[test]
    fn a_tree_keeps_names_namespaces_attributes_and_text() {
        let xml = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><ABAuthHeader xmlns="http://www.msn.com/webservices/AddressBook"><TicketToken>t=a&amp;p=b</TicketToken></ABAuthHeader></soap:Header><soap:Body><ABFindAll xmlns="http://www.msn.com/webservices/AddressBook"><abId>00000000-0000-0000-0000-000000000000</abId><deltasOnly> true </deltasOnly><x a="1" b='&lt;'/></ABFindAll></soap:Body></soap:Envelope>"#;
        let e = Envelope::parse(xml).unwrap();
        assert_eq!(e.header.text_at(&["ABAuthHeader", "TicketToken"]), Some("t=a&p=b"));
        let op = e.operation().unwrap();
        assert_eq!(op.name, "ABFindAll");
        assert_eq!(op.namespace.as_deref(), Some("http://www.msn.com/webservices/AddressBook"));
        assert_eq!(op.text_at(&["deltasOnly"]), Some("true"));
        assert_eq!(op.child("x").unwrap().attr("b"), Some("<"));
        assert!(op.attr("xmlns").is_none(), "namespace declarations are not attributes");
        // Not SOAP 1.1: another namespace, no body, a DTD, too many nodes.
        assert!(Envelope::parse("<Envelope><Body/></Envelope>").is_none());
        assert!(
            Envelope::parse(r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>"#)
                .is_none()
        );
        assert!(Envelope::parse(r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>"#).is_none());
        let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><x>&b;</x>"#;
        assert!(Element::parse(bomb).is_none());
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_NODES));
        assert!(Element::parse(&wide).is_none());
        assert!(Element::parse("<a/><b/>").is_none(), "two roots");
        assert!(Element::parse("<a>").is_none());
    }

    #[test]
    fn namespaces_are_resolved_and_malformed_documents_yield_nothing() {
        // Any prefix, or a default namespace: the local name is what counts.
        let a = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x:t xmlns:x="urn:a">one</x:t></s:Body></s:Envelope>"#;
        let b = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><t>one</t></Body></Envelope>"#;
        let t = |xml: &str| Envelope::parse(xml).and_then(|e| e.body.find("t").map(|t| t.text.clone()));
        assert_eq!(t(a).as_deref(), Some("one"));
        assert_eq!(t(b).as_deref(), Some("one"));
        // CDATA and character references are text.
        assert_eq!(Element::parse("<a><![CDATA[x<y]]>&#x41;&lt;</a>").map(|a| a.text).as_deref(), Some("x<yA<"));
        // Not well-formed: mismatched tags, an unclosed element, an unknown
        // entity, too deep.
        assert_eq!(Element::parse("<a><t>x</a></t>"), None);
        assert_eq!(Element::parse("<a><t>x</t>"), None);
        assert_eq!(Element::parse("<t>&bogus;</t>"), None);
        let deep = format!("{}<t>x</t>{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert_eq!(Element::parse(&deep), None);
        assert_eq!(escape_xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
