//! Reading an XMPP stream (RFC 6120 section 4): bytes in, the stream header,
//! one stanza (or other top-level element) at a time, and the close out.
//!
//! Built on `rxml`, a restricted XML parser: no DTD, no entity but the five
//! predefined ones, no processing instruction, no comment; exactly the
//! "restricted XML" of RFC 6120 section 11.1, so entity-expansion attacks
//! have nothing to expand. The reader bounds what one element may cost
//! ([`MAX_STANZA`], [`MAX_DEPTH`]) and never holds more than the element
//! being read: whitespace between stanzas (keep-alives) is dropped.

use minidom::Element;
use minidom::tree_builder::TreeBuilder;
use rxml::{Parse, RawEvent, RawParser, WithOptions};

use crate::{NS_CLIENT, NS_STREAMS, StreamErrorCondition};

/// The most bytes one top-level element may take on the wire.
pub const MAX_STANZA: usize = 64 * 1024;
/// The deepest nesting inside a stanza.
pub const MAX_DEPTH: usize = 24;
/// The longest name, attribute value or unbroken text piece `rxml` takes
/// whole (longer text arrives in pieces, within [`MAX_STANZA`]).
const MAX_TOKEN: usize = 8 * 1024;

/// What the other side opened its stream with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    /// The domain the stream is for (`to`).
    pub to: Option<String>,
    /// The entity opening it (`from`), unauthenticated.
    pub from: Option<String>,
    pub version: Option<String>,
    /// The stream id, on a stream a server opened.
    pub id: Option<String>,
    pub lang: Option<String>,
}

/// One thing read from a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Header(StreamHeader),
    /// A top-level element: a stanza, or a SASL, STARTTLS or stream-level
    /// element (its namespace says which).
    Element(Element),
    /// `</stream:stream>`.
    Close,
}

/// Reads one stream. After a stream restart (STARTTLS, SASL success) a new
/// reader reads the new stream.
pub struct StreamReader {
    parser: RawParser,
    tree: TreeBuilder,
    /// Bytes of the element being read.
    taken: usize,
    opened: bool,
    closed: bool,
}

impl Default for StreamReader {
    fn default() -> Self {
        StreamReader::new()
    }
}

impl StreamReader {
    pub fn new() -> StreamReader {
        let options = rxml::Options { max_token_length: MAX_TOKEN, ..Default::default() };
        StreamReader {
            parser: RawParser::with_options(options),
            tree: TreeBuilder::new(),
            taken: 0,
            opened: false,
            closed: false,
        }
    }

    /// Reads `bytes`, appending what they complete to `out`. An error is the
    /// condition to close the stream with; the reader is of no further use.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Incoming>) -> Result<(), StreamErrorCondition> {
        while !self.closed {
            let event = match self.parser.parse(&mut bytes, false) {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(()),
                Err(rxml::error::EndOrError::NeedMoreData) => return Ok(()),
                Err(rxml::error::EndOrError::Error(e)) => return Err(condition_of(&e)),
            };
            if let Some(item) = self.take(event)? {
                out.push(item);
            }
        }
        // Nothing may follow the close.
        match bytes.iter().all(u8::is_ascii_whitespace) {
            true => Ok(()),
            false => Err(StreamErrorCondition::NotWellFormed),
        }
    }

    fn take(&mut self, event: RawEvent) -> Result<Option<Incoming>, StreamErrorCondition> {
        let depth = self.tree.depth();
        // Text between stanzas: whitespace keep-alives, nothing else.
        if let RawEvent::Text(_, text) = &event
            && depth <= 1
        {
            return match text.chars().all(|c| c.is_ascii_whitespace()) {
                true => Ok(None),
                false => Err(StreamErrorCondition::NotWellFormed),
            };
        }
        if depth >= 1 {
            self.taken += event.metrics().len();
            if self.taken > MAX_STANZA {
                return Err(StreamErrorCondition::PolicyViolation);
            }
        }
        let head_closes = matches!(event, RawEvent::ElementHeadClose(_));
        let foot = matches!(event, RawEvent::ElementFoot(_));
        if head_closes && depth > MAX_DEPTH {
            return Err(StreamErrorCondition::PolicyViolation);
        }
        self.tree.process_event(event).map_err(|_| StreamErrorCondition::InvalidNamespace)?;
        // Every element in a stream is qualified by a namespace (RFC 6120
        // sections 4.9.3.10 and 8.4). One in none (`xmlns=''`) would also not
        // survive being written again: it would fall into its parent's.
        if head_closes && self.tree.depth() >= 2 && self.tree.top().is_some_and(|e| e.ns().is_empty()) {
            return Err(StreamErrorCondition::InvalidNamespace);
        }
        match (head_closes, foot, self.tree.depth()) {
            // The stream's own header.
            (true, _, 1) if !self.opened => {
                self.opened = true;
                self.taken = 0;
                let root = self.tree.top().ok_or(StreamErrorCondition::NotWellFormed)?;
                if root.name() != "stream" || root.ns() != NS_STREAMS {
                    return Err(StreamErrorCondition::InvalidNamespace);
                }
                let attr = |name: &str| root.attr(name).map(str::to_string);
                let lang = root.attrs().get(rxml::Namespace::xml(), "lang").map(|v| v.to_string());
                let header =
                    StreamHeader { to: attr("to"), from: attr("from"), version: attr("version"), id: attr("id"), lang };
                Ok(Some(Incoming::Header(header)))
            }
            // A top-level element, complete.
            (_, true, 1) => {
                self.taken = 0;
                let element = self.tree.unshift_child().ok_or(StreamErrorCondition::NotWellFormed)?;
                Ok(Some(Incoming::Element(element)))
            }
            // The stream's close.
            (_, true, 0) => {
                self.closed = true;
                Ok(Some(Incoming::Close))
            }
            _ => Ok(None),
        }
    }
}

/// The stream error for what `rxml` refused.
fn condition_of(e: &rxml::Error) -> StreamErrorCondition {
    match e {
        rxml::Error::RestrictedXml(_) => StreamErrorCondition::RestrictedXml,
        rxml::Error::UndeclaredEntity => StreamErrorCondition::RestrictedXml,
        _ => StreamErrorCondition::NotWellFormed,
    }
}

/// Whether a top-level element is a stanza of the client namespace.
pub fn is_stanza(element: &Element) -> bool {
    element.ns() == NS_CLIENT && matches!(element.name(), "message" | "presence" | "iq")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = "<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
        xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xml:lang='en'>";

    fn read(chunks: &[&[u8]]) -> (Vec<Incoming>, Result<(), StreamErrorCondition>) {
        let mut reader = StreamReader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            if let Err(e) = reader.feed(chunk, &mut out) {
                return (out, Err(e));
            }
        }
        (out, Ok(()))
    }

    #[test]
    fn a_stream_reads_as_header_stanzas_and_close_byte_by_byte() {
        let text =
            format!("{OPEN}  <message to='bob@example.com'><body>hi &amp; bye</body></message>\n </stream:stream>");
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        let (items, result) = read(&bytes);
        result.unwrap();
        assert_eq!(items.len(), 3);
        let Incoming::Header(h) = &items[0] else { panic!("{items:?}") };
        assert_eq!(
            (h.to.as_deref(), h.version.as_deref(), h.lang.as_deref()),
            (Some("example.com"), Some("1.0"), Some("en"))
        );
        let Incoming::Element(m) = &items[1] else { panic!() };
        assert!(is_stanza(m));
        assert_eq!(m.get_child("body", NS_CLIENT).unwrap().text(), "hi & bye");
        assert_eq!(items[2], Incoming::Close);
    }

    #[test]
    fn restricted_xml_is_refused() {
        for bad in [
            "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
            "<message><body>&a;</body></message>",
            "<!-- a comment -->",
            "<?pi data?>",
        ] {
            let (_, result) = read(&[OPEN.as_bytes(), bad.as_bytes()]);
            assert!(
                matches!(result, Err(StreamErrorCondition::RestrictedXml | StreamErrorCondition::NotWellFormed)),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn bounds_hold() {
        let big = format!("<message><body>{}</body></message>", "x".repeat(MAX_STANZA));
        assert_eq!(read(&[OPEN.as_bytes(), big.as_bytes()]).1, Err(StreamErrorCondition::PolicyViolation));
        let deep = "<a>".repeat(MAX_DEPTH + 2);
        assert_eq!(read(&[OPEN.as_bytes(), deep.as_bytes()]).1, Err(StreamErrorCondition::PolicyViolation));
        assert_eq!(read(&[OPEN.as_bytes(), b"text<a/>"]).1, Err(StreamErrorCondition::NotWellFormed));
        let wrong = "<stream xmlns='jabber:client'>";
        assert_eq!(read(&[wrong.as_bytes()]).1, Err(StreamErrorCondition::InvalidNamespace));
        assert_eq!(read(&[OPEN.as_bytes(), b"<x:y/>"]).1, Err(StreamErrorCondition::InvalidNamespace));
    }

    /// Found by the `xmpp_stream` fuzz target: `xmlns=''` puts an element in
    /// no namespace, and writing it back would have put it in its parent's.
    #[test]
    fn an_element_in_no_namespace_is_refused_at_any_depth() {
        for bad in ["<auth xmlns=''>biws</auth>", "<message><body xmlns=''>hi</body></message>"] {
            let (items, result) = read(&[OPEN.as_bytes(), bad.as_bytes()]);
            assert_eq!(result, Err(StreamErrorCondition::InvalidNamespace), "{bad}");
            assert_eq!(items.len(), 1, "{bad}: only the header was read");
        }
        let bare = "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><presence/>";
        assert_eq!(read(&[bare.as_bytes()]).1, Err(StreamErrorCondition::InvalidNamespace));
        let other = format!("{OPEN}<message><x xmlns='urn:example'><y/></x></message>");
        assert_eq!(read(&[other.as_bytes()]).1, Ok(()));
    }

    #[test]
    fn many_stanzas_in_one_chunk_and_a_split_one() {
        let text = format!("{OPEN}<presence/><iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq><message");
        let (items, result) = read(&[text.as_bytes(), b"/>"]);
        result.unwrap();
        assert_eq!(items.len(), 4);
    }
}
