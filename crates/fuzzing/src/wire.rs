//! The stateless targets: the parsers of `msnp`, one per input format.

use bytes::BytesMut;
use msnp::mime::MimeMessage;
use msnp::p2p::{Packet, SlpMessage};
use msnp::request::{NsRequest, SbRequest};
use msnp::{Decoder, Dialect, Direction, Frame, Limits, Reply};

/// Limits small enough that the fuzzer reaches them.
const LIMITS: Limits = Limits { max_line: 256, max_payload: 512 };

/// Frames a byte stream as a server does.
fn frames(data: &[u8], direction: Direction, limits: Limits) -> Vec<Frame> {
    let mut decoder = Decoder::new(direction, limits);
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        out.push(frame);
    }
    out
}

/// The command parsers, requests and replies: every frame parses in every
/// dialect without panic, and whatever parses encodes back to a value that
/// parses the same.
pub fn command_parser(data: &[u8]) {
    for frame in frames(data, Direction::ToServer, Limits::default()) {
        for dialect in Dialect::ALL {
            if let Ok(request) = NsRequest::parse(&frame, dialect) {
                let again = NsRequest::parse(&request.to_frame(dialect), dialect);
                assert_eq!(again.as_ref(), Ok(&request), "{dialect} {:?}", frame.line);
            }
        }
        if let Ok(request) = SbRequest::parse(&frame) {
            assert_eq!(SbRequest::parse(&request.to_frame()), Ok(request), "{:?}", frame.line);
        }
    }
    // The same bytes as a server's: whatever reads as a reply encodes back
    // to one frame that reads the same.
    for frame in frames(data, Direction::ToClient, Limits::default()) {
        for dialect in Dialect::ALL {
            for read in [Reply::parse, Reply::parse_from_switchboard] {
                if let Ok(reply) = read(&frame, dialect) {
                    let again = frames(&reply.to_bytes(dialect), Direction::ToClient, Limits::default());
                    assert_eq!(again.len(), 1, "{dialect} {:?}", frame.line);
                    assert_eq!(read(&again[0], dialect).as_ref(), Ok(&reply), "{dialect} {:?}", frame.line);
                }
            }
        }
    }
}

/// The framing: the same frames and the same error whether the bytes come
/// at once or in pieces (sizes taken from the input's first byte), and
/// never more buffered than the limits allow.
pub fn framing(data: &[u8]) {
    let Some((&first, input)) = data.split_first() else { return };
    let step = usize::from(first % 16) + 1;
    for direction in [Direction::ToServer, Direction::ToClient] {
        let mut whole = Decoder::new(direction, LIMITS);
        let mut buf = BytesMut::from(input);
        let mut expected = Vec::new();
        let expected_end = loop {
            match whole.decode(&mut buf) {
                Ok(Some(f)) => expected.push(f),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };

        let mut pieces = Decoder::new(direction, LIMITS);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut end = None;
        'feed: for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                match pieces.decode(&mut buf) {
                    Ok(Some(f)) => got.push(f),
                    Ok(None) => break,
                    Err(e) => {
                        end = Some(e);
                        break 'feed;
                    }
                }
            }
            assert!(buf.len() <= LIMITS.max_line + 2 + LIMITS.max_payload + step, "buffered {} bytes", buf.len());
        }
        assert_eq!(got, expected);
        assert_eq!(end, expected_end);
    }
}

/// MIME payloads and routed messages (`SDG`/`PUT`/`NFY`): parsing never
/// panics, and a parsed message re-encodes to one that parses the same.
pub fn mime(data: &[u8]) {
    if let Ok(message) = MimeMessage::parse(data) {
        let again = MimeMessage::parse(&message.to_bytes()).expect("an encoded message parses");
        assert_eq!(again, message);
    }
    if let Ok(routed) = msnp::routed::RoutedMessage::parse(data) {
        assert_eq!(msnp::routed::RoutedMessage::parse(&routed.to_bytes()).as_ref(), Ok(&routed));
        for address in [routed.to(), routed.from()].into_iter().flatten() {
            assert_eq!(msnp::routed::RoutedAddress::parse(&address.to_string()).as_ref(), Some(&address));
            let _ = msnp::circle::CircleId::of_address(&address);
        }
    }
}

/// The Passport side: the `Authorization` header and the RST request body.
pub fn passport(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(credentials) = msnp::passport::parse_authorization(text) {
        assert!(!credentials.password_candidates().is_empty());
    }
    let _ = msnp::passport::parse_rst_request(text);
}

/// The XML of MSNP13+: list documents (`ADL`/`RML`/`FQY`), SOAP envelopes
/// of the address book and RST (both directions), the SSO login blob, and
/// MSNP21's user documents and said messages.
/// A document that parses encodes to one that parses the same.
pub fn soap_and_lists(data: &[u8]) {
    if let Ok(doc) = msnp::adl::ListDocument::parse(data) {
        let again = msnp::adl::ListDocument::parse(doc.encode().as_bytes()).expect("an encoded document parses");
        assert_eq!(again, doc);
        let _ = doc.check_client_lists();
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(tree) = msnp::soap::Element::parse(text) {
        assert!(!tree.name.is_empty());
    }
    // A request read as an operation writes back to the same operation.
    if let Some(request) = msnp::addressbook::parse_request(text)
        && let Ok(op) = msnp::addressbook::Operation::parse(&request.operation)
    {
        let again = msnp::addressbook::parse_request(&msnp::addressbook::request(
            request.ticket.as_deref().unwrap_or_default(),
            &op.to_xml(),
        ))
        .expect("an encoded request parses");
        assert_eq!(msnp::addressbook::Operation::parse(&again.operation), Ok(op));
    }
    let _ = msnp::addressbook::Answer::parse(text);
    let _ = msnp::addressbook::Fault::parse(text);
    let _ = msnp::addressbook::parse_changed_notice(text);
    // The offline-message services: requests read back as written.
    if let Some(store) = msnp::oim::StoreRequest::parse(text) {
        assert_eq!(msnp::oim::StoreRequest::parse(&store.to_xml()).as_ref(), Some(&store));
        let _ = msnp::oim::content_text(&store.content);
    }
    if let Some(call) = msnp::oim::InboxCall::parse(text) {
        assert_eq!(msnp::oim::InboxCall::parse(&call.to_xml()).as_ref(), Some(&call));
    }
    if let Ok(request) = msnp::storage::Request::parse(text) {
        assert_eq!(msnp::storage::Request::parse(&request.to_xml()).as_ref(), Ok(&request));
    }
    let _ = msnp::storage::parse_get_profile_response(text);
    let _ = msnp::storage::parse_fault(text);
    let _ = msnp::personal::status_of(text);
    let _ = msnp::oim::parse_metadata(text);
    let _ = msnp::oim::parse_store_fault(text);
    let _ = msnp::oim::parse_get_message_response(text);
    let _ = msnp::addressbook::parse_find_membership_response(text);
    let _ = msnp::addressbook::parse_ab_find_all_response(text);
    let _ = msnp::passport::parse_rst_response(text);
    // Circles: their documents, tickets and address book answers.
    let _ = msnp::circle::CircleDocument::parse(data);
    if let Some(ticket) = msnp::circle::CircleTicket::parse(data) {
        assert_eq!(msnp::circle::CircleTicket::parse(ticket.to_xml().as_bytes()), Some(ticket));
    }
    if let Some(signed) = msnp::circle::SignedTicket::parse(text) {
        assert_eq!(msnp::circle::SignedTicket::from_usr_argument(&signed.to_usr_argument()), Some(signed));
    }
    let _ = msnp::addressbook::parse_circle_result(text);
    let _ = msnp::addressbook::parse_circle_book_response(text);
    let _ = msnp::addressbook::parse_create_circle_response(text);
    if let Ok(message) = msnp::routed::RoutedMessage::parse(data) {
        let _ = msnp::circle::left_member(&message);
        let _ = msnp::user::published(&message);
        let _ = msnp::multiparty::roster_of(&message);
        if let Some(group) = message.to().as_ref().and_then(msnp::multiparty::GroupId::of_address) {
            let again = msnp::routed::RoutedAddress::parse(&group.address()).expect("a group address parses");
            assert_eq!(msnp::multiparty::GroupId::of_address(&again), Some(group));
        }
        // What is said crosses to a switchboard message and back unchanged.
        if let Some(said) = msnp::circle::Said::of(&message) {
            assert_eq!(msnp::mime::said_of(&msnp::mime::message_of(&said, "a@b.c")), Some(said));
        }
    }
    // The directory and WhatsUp (MSNP21): requests read back as written.
    if let Some(request) = msnp::directory::GetMany::parse(text) {
        assert_eq!(msnp::directory::GetMany::parse(&request.to_xml()), Some(request));
    }
    let _ = msnp::directory::parse_get_many_response(text);
    let _ = msnp::directory::recent_activity_request(text);
    // MSNP21 user documents read back as written.
    if let Some(doc) = msnp::user::UserDocument::parse(data) {
        assert_eq!(msnp::user::UserDocument::parse(doc.to_xml().as_bytes()), Some(doc));
    }
    if let Some(said) = msnp::mime::said_of(data) {
        assert_eq!(msnp::mime::said_of(&msnp::mime::message_of(&said, "a@b.c")), Some(said));
    }
    let nonce = msnp::sso::nonce(&[7; msnp::sso::NONCE_LEN]);
    assert!(!msnp::sso::verify_login_blob(&[1; msnp::sso::SECRET_LEN], &nonce, text) || text.len() > 100);
}

/// P2P (MSNSLP) binary packets and the SLP text inside them.
pub fn p2p(data: &[u8]) {
    if let Ok(packet) = Packet::parse(data) {
        assert_eq!(Packet::parse(&packet.to_bytes()).ok().as_ref(), Some(&packet));
        let _ = packet.header.completes();
        let _ = SlpMessage::parse(&packet.payload);
        let _ = msnp::p2p::parse_file_context(&packet.payload);
    }
    let _ = SlpMessage::parse(data);
    // Version 2 (MSNP16+): whatever reads writes back to the same packet.
    if let Ok(packet) = msnp::p2pv2::Packet::parse(data) {
        let again = packet.to_bytes().expect("a packet that was read can be written");
        assert_eq!(msnp::p2pv2::Packet::parse(&again).as_ref(), Ok(&packet));
    }
}

/// The query part of a request line's target, or the whole line.
fn target_query(line: &str) -> &str {
    line.split_once('?').map_or(line, |(_, q)| q.split(' ').next().unwrap_or(""))
}

/// What reaches the HTTP front and the cluster bus from outside: request
/// targets (parsed and normalised once, for routing and the loopback rule
/// alike), the gateway's query parameters, and bus frames (checked before anything reads them).
pub fn web_and_bus(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let line = text.lines().next().unwrap_or("");
        if let Some(target) = server::request_target::RequestTarget::parse(line) {
            let path = &target.path;
            if path != "*" {
                assert!(path.starts_with('/'), "{line:?} -> {path:?}");
                assert!(!path.contains("//") && !path.contains('#'), "{line:?} -> {path:?}");
                assert!(!path.split('/').any(|s| s == "." || s == ".."), "{line:?} -> {path:?}");
                // Normalising is idempotent: the router sees what the rule saw.
                let again = server::request_target::RequestTarget::parse(&target.origin_form()).expect("reparses");
                assert_eq!(&again.path, path, "{line:?}");
            }
        }
        let _ = server::request_target::host_of(line);
        // The gateway's query: every value it keeps is a piece of the query.
        let query = target_query(line);
        let p = server::gateway::Parameters::parse(query);
        for value in [p.action, p.server, p.session_id].into_iter().flatten() {
            assert!(query.contains(value) && !value.contains('&'), "{query:?} -> {value:?}");
        }
    }
    let seal = server::bus_seal::BusSeal::new([9; 32]);
    let _ = seal.open(server::bus_seal::Stream::Envelopes, "c.node.n1", data);
    let _ = seal.open_state("seat.x", data);
    // A frame it sealed itself opens once, whatever the body.
    let frame = seal.seal(server::bus_seal::Stream::Envelopes, "c.node.n1", data);
    assert_eq!(seal.open(server::bus_seal::Stream::Envelopes, "c.node.n1", &frame), Ok(data));
    assert!(seal.open(server::bus_seal::Stream::Envelopes, "c.node.n1", &frame).is_err());
}
