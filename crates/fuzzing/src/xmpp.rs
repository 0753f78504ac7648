//! The XMPP front's parsers: the bounded stream reader, the stanzas a client
//! sends, and the SASL exchanges.

use xmpp::request::ClientStanza;
use xmpp::sasl::{Plain, ScramClient, ScramFirst, ScramServer};
use xmpp::stream::{Incoming, MAX_STANZA, StreamReader};

/// A client's stream opening, so that the input reaches the stanza level.
const OPEN: &[u8] = b"<?xml version='1.0'?><stream:stream to='example.com' version='1.0' \
    xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

fn read(pieces: impl Iterator<Item = Vec<u8>>) -> (Vec<Incoming>, Option<xmpp::StreamErrorCondition>) {
    let mut reader = StreamReader::new();
    let mut out = Vec::new();
    for piece in pieces {
        if let Err(e) = reader.feed(&piece, &mut out) {
            return (out, Some(e));
        }
    }
    (out, None)
}

/// The input after a stream header, whole and in pieces (sizes from its
/// first byte): the same elements and the same error either way; every
/// element bounded, typed without panic, and written back to what reads
/// as the same element. The input alone (a header of its own) and as SASL
/// payloads, too.
pub fn xmpp_stream(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else { return };
    let step = usize::from(first % 32) + 1;
    let whole: Vec<u8> = [OPEN, input].concat();
    let (items, error) = read(std::iter::once(whole.clone()));
    let (pieces, piece_error) = read(whole.chunks(step).map(<[u8]>::to_vec));
    // A fault found in pieces may come after elements the whole read also
    // completed first; the elements read before the fault agree.
    assert_eq!(error, piece_error, "step {step}");
    assert_eq!(items, pieces, "step {step}");
    for item in &items {
        let Incoming::Element(element) = item else { continue };
        let written = String::from(element);
        assert!(written.len() <= MAX_STANZA * 6, "an element past its bound: {} bytes", written.len());
        let again = read(std::iter::once([OPEN, written.as_bytes()].concat()));
        assert_eq!(again.1, None, "{written}");
        assert_eq!(again.0.get(1), Some(item), "{written}");
        let _ = ClientStanza::read(element.clone());
    }
    let _ = read(std::iter::once(data.to_vec()));
    let _ = Plain::parse(data);
    if let Ok(first) = ScramFirst::parse(data) {
        let (server, _) = ScramServer::new(first, "nonce", b"salt", 4096);
        let _ = server.read_final(data);
    }
    let (mut client, _) = ScramClient::new("user", "pencil", "abc");
    let _ = client.answer(data);
    let _ = client.server_verified(data);
}
