//! Properties of the wire over arbitrary input: the decoder gives the same
//! frames however the bytes are split, never holds more than its limits
//! allow, and the parsers and encoders agree with each other.

use bytes::{Bytes, BytesMut};
use msnp::reply::PresenceLine;
use msnp::request::{NsRequest, SbRequest};
use msnp::{Decoder, Dialect, Direction, Frame, FrameError, Limits, OnlineState, Reply};
use proptest::prelude::*;

mod strategies;

const LIMITS: Limits = Limits { max_line: 64, max_payload: 32 };

/// Feeds `input` in the given chunk sizes; returns the frames and whether it
/// ended in an error.
fn decode_chunked(input: &[u8], chunks: &[usize], direction: Direction) -> (Vec<Frame>, Option<FrameError>) {
    let mut decoder = Decoder::new(direction, LIMITS);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = input;
    let mut sizes = chunks.iter().cycle();
    loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        // Never more buffered than a line, its CRLF and one payload.
        assert!(buf.len() <= LIMITS.max_line + 2 + LIMITS.max_payload + 64, "buffered {}", buf.len());
        if rest.is_empty() {
            return (frames, None);
        }
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

/// Bytes that look like MSNP often enough to reach the interesting paths.
fn msnp_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"MSG 1 N 5\r\nhello".to_vec()),
        Just(b"MSG 2 A 40\r\n".to_vec()),
        Just(b"VER 1 MSNP8 CVR0\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"QRY 3 PROD0090YUAUV{2B 32\r\n".to_vec()),
        Just(b"UUX 4 999999999999\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..80),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn decoding_does_not_depend_on_how_bytes_arrive(
        input in msnp_like(),
        chunks in proptest::collection::vec(1usize..20, 1..10),
    ) {
        for direction in [Direction::ToServer, Direction::ToClient] {
            let whole = decode_chunked(&input, &[usize::MAX], direction);
            let split = decode_chunked(&input, &chunks, direction);
            prop_assert_eq!(whole, split);
        }
    }

    #[test]
    fn parsers_never_panic(line in "[ -~]{0,80}", payload in proptest::collection::vec(any::<u8>(), 0..40)) {
        let with_payload = Frame { line: line.clone(), payload: Some(Bytes::from(payload)) };
        let without = Frame { line, payload: None };
        for frame in [&with_payload, &without] {
            for dialect in Dialect::ALL {
                let _ = NsRequest::parse(frame, dialect);
            }
            let _ = SbRequest::parse(frame);
        }
    }

    #[test]
    fn encoded_presence_decodes_to_one_line_with_its_fields(
        handle in "[a-z0-9.]{1,20}@[a-z]{1,10}\\.com",
        friendly in "[ -~]{1,30}",
        client_id in any::<u32>(),
    ) {
        for dialect in Dialect::ALL {
            let mut out = BytesMut::new();
            let presence = PresenceLine {
                state: OnlineState::Busy,
                handle: handle.clone(),
                friendly: friendly.clone(),
                client_id,
                extended_caps: 0,
                msn_object: None,
            };
            Reply::Nln { presence }.encode(dialect, &mut out);
            let mut decoder = Decoder::new(Direction::ToClient, Limits::default());
            let frame = decoder.decode(&mut out).unwrap().expect("one frame");
            prop_assert!(out.is_empty());
            let args = frame.args();
            prop_assert_eq!(frame.verb(), "NLN");
            prop_assert_eq!(args[0], "BSY");
            // MSNP18 names the network in front of the handle, MSNP14-17
            // after it.
            if dialect.prefixes_network_to_handles() {
                prop_assert_eq!(args[1], format!("1:{handle}"));
            } else {
                prop_assert_eq!(args[1], handle.as_str());
            }
            let at = if dialect.presence_has_network_id() && !dialect.prefixes_network_to_handles() {
                prop_assert_eq!(args[2], "1");
                3
            } else {
                2
            };
            // Names travel URL-encoded: one argument, decoding to the name.
            prop_assert_eq!(msnp::urlencode::decode(args[at]).unwrap(), friendly.clone());
        }
    }

    #[test]
    fn p2p_v2_packets_that_read_write_back_the_same(bytes in proptest::collection::vec(any::<u8>(), 0..300), shape in 0u8..4) {
        // Random bytes rarely make a packet: give half of them valid lengths.
        let mut b = bytes;
        if shape > 1 && b.len() >= 24 {
            b[0] = 8 + 4 * (shape % 2);
            b[2] = 0;
            b[3] = (b.len() - usize::from(b[0])).min(255) as u8;
            let at = usize::from(b[0]);
            b[at] = 8;
        }
        if let Ok(packet) = msnp::p2pv2::Packet::parse(&b) {
            let again = packet.to_bytes().expect("what was read can be written");
            prop_assert_eq!(msnp::p2pv2::Packet::parse(&again), Ok(packet));
        }
    }

    #[test]
    fn a_relayed_message_decodes_to_its_payload(payload in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut out = BytesMut::new();
        Reply::Msg { handle: "a@b.com".into(), friendly: "A".into(), payload: Bytes::from(payload.clone()) }
            .encode(Dialect::Msnp2, &mut out);
        let mut decoder = Decoder::new(Direction::ToClient, Limits { max_line: 4096, max_payload: 2048 });
        let frame = decoder.decode(&mut out).unwrap().expect("one frame");
        prop_assert_eq!(frame.line, format!("MSG a@b.com A {}", payload.len()));
        prop_assert_eq!(frame.payload.as_deref(), Some(&payload[..]));
    }
}

// ---- parse(encode(x)) == x for every request shape of every dialect ----

use msnp::endpoint::{Address, MachineGuid};
use msnp::request::{AdcTarget, SyncVersion, UsrStep};
use msnp::types::{AckMode, ListKind, PrivacyMode, PromptMode};
use strategies::{list, name, payload, state, token};

/// Every request a client can send to a notification server in `dialect`.
fn machine() -> impl Strategy<Value = MachineGuid> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(|g| MachineGuid::parse(&g).unwrap())
}

/// A user or one of its endpoints (`handle;{guid}`).
fn address() -> impl Strategy<Value = Address> {
    (
        token().prop_filter("no ';' or network prefix", |t| !t.contains(';') && !t.starts_with("1:")),
        proptest::option::of(machine()),
    )
        .prop_map(|(handle, endpoint)| Address { handle, endpoint })
}

fn ns_request(dialect: Dialect) -> impl Strategy<Value = NsRequest> {
    let t = any::<u32>;
    let usr =
        prop_oneof![
            token().prop_map(|handle| UsrStep::Md5Initiate { handle }),
            token().prop_map(|response| UsrStep::Md5Response { response }),
            token().prop_map(|handle| UsrStep::TwnInitiate { handle }),
            token().prop_map(|ticket| UsrStep::TwnResponse { ticket }),
            token().prop_map(|handle| UsrStep::SsoInitiate { handle }),
            (token(), token(), proptest::option::of(machine()))
                .prop_map(|(ticket, blob, machine)| UsrStep::SsoResponse { ticket, blob, machine }),
        ];
    let sync = if dialect.uses_guids() {
        (token(), token()).prop_map(|(a, b)| SyncVersion::Timestamps(a, b)).boxed()
    } else {
        any::<u32>().prop_map(SyncVersion::Serial).boxed()
    };
    let add = (t(), list(), token(), name(387), any::<u32>()).prop_map(move |(trid, list, handle, friendly, g)| {
        let group = (dialect.has_groups() && list == ListKind::Forward).then_some(g);
        NsRequest::Add { trid, list, handle, friendly, group }
    });
    let adc_target = prop_oneof![
        (token(), proptest::option::of(name(387)))
            .prop_map(|(handle, friendly)| AdcTarget::Handle { handle, friendly }),
        (token(), token()).prop_map(|(contact_guid, group_guid)| AdcTarget::Group { contact_guid, group_guid }),
    ];
    let rem_target = token().prop_filter("not N=", |t| !t.starts_with("N="));
    let chg = (t(), state(), proptest::option::of((any::<u32>(), any::<u32>(), proptest::option::of(token()))))
        .prop_map(move |(trid, state, extra)| NsRequest::Chg {
            trid,
            state,
            client_id: extra.as_ref().map(|e| e.0),
            // Written only where the dialect has `caps:capsEx`.
            extended_caps: extra.as_ref().filter(|_| dialect.capabilities_with_extended()).map_or(0, |e| e.1),
            msn_object: extra.and_then(|e| e.2),
        });
    let lists_and_groups = prop_oneof![
        (t(), sync).prop_map(|(trid, version)| NsRequest::Syn { trid, version }),
        (t(), list()).prop_map(|(trid, list)| NsRequest::Lst { trid, list }),
        t().prop_map(|trid| NsRequest::Lsg { trid }),
        (t(), prop::sample::select(vec![PromptMode::Ask, PromptMode::DontAsk]))
            .prop_map(|(trid, mode)| NsRequest::Gtc { trid, mode }),
        (t(), prop::sample::select(vec![PrivacyMode::AllowUnlisted, PrivacyMode::BlockUnlisted]))
            .prop_map(|(trid, mode)| NsRequest::Blp { trid, mode }),
        add,
        (t(), list(), adc_target).prop_map(|(trid, list, target)| NsRequest::Adc { trid, list, target }),
        (t(), list(), rem_target, proptest::option::of(token()))
            .prop_map(|(trid, list, target, group)| NsRequest::Rem { trid, list, target, group }),
        (t(), name(61)).prop_map(|(trid, name)| NsRequest::Adg { trid, name }),
        (t(), token()).prop_map(|(trid, group)| NsRequest::Rmg { trid, group }),
        (t(), token(), name(61)).prop_map(|(trid, group, name)| NsRequest::Reg { trid, group, name }),
    ];
    let profile = prop_oneof![
        (t(), token(), proptest::option::of(name(387))).prop_map(|(trid, kind, value)| NsRequest::Prp {
            trid,
            kind,
            value
        }),
        (t(), token(), token(), token()).prop_map(|(trid, contact_guid, kind, value)| NsRequest::Sbp {
            trid,
            contact_guid,
            kind,
            value
        }),
        chg,
        (t(), token(), name(387)).prop_map(|(trid, handle, friendly)| NsRequest::Rea { trid, handle, friendly }),
        (t(), token(), payload()).prop_map(|(trid, product_id, payload)| NsRequest::Qry { trid, product_id, payload }),
        (t(), payload()).prop_map(|(trid, payload)| NsRequest::Uux { trid, payload }),
    ];
    let session = prop_oneof![
        Just(NsRequest::Out),
        Just(NsRequest::Png),
        proptest::option::of(t()).prop_map(|trid| NsRequest::Msg { trid }),
        (t(), proptest::collection::vec(token(), 1..5)).prop_map(|(trid, dialects)| NsRequest::Ver { trid, dialects }),
        t().prop_map(|trid| NsRequest::Inf { trid }),
        (t(), proptest::collection::vec(token(), 0..8)).prop_map(|(trid, args)| NsRequest::Cvr { trid, args }),
        (t(), usr).prop_map(|(trid, step)| NsRequest::Usr { trid, step }),
        t().prop_map(|trid| NsRequest::XfrSb { trid }),
        (t(), token()).prop_map(|(trid, file)| NsRequest::Gcf { trid, file }),
        (t(), token()).prop_map(|(trid, service)| NsRequest::Url { trid, service }),
        t().prop_map(|trid| NsRequest::Sdc { trid }),
        (t(), token()).prop_map(|(trid, email)| NsRequest::Snd { trid, email }),
        (t(), any::<bool>()).prop_map(|(trid, on)| NsRequest::Ims { trid, on }),
        t().prop_map(|trid| NsRequest::Fnd { trid }),
    ];
    // MSNP13+: list documents and notifications to other clients.
    let live = prop_oneof![
        (t(), payload()).prop_map(|(trid, payload)| NsRequest::Adl { trid, payload }),
        (t(), payload()).prop_map(|(trid, payload)| NsRequest::Rml { trid, payload }),
        (t(), payload()).prop_map(|(trid, payload)| NsRequest::Fqy { trid, payload }),
        (t(), address(), any::<u32>(), payload()).prop_map(|(trid, to, kind, payload)| NsRequest::Uun {
            trid,
            to,
            kind,
            payload
        }),
        (t(), token(), any::<u32>(), any::<u32>(), payload())
            .prop_map(|(trid, to, network, kind, payload)| { NsRequest::Uum { trid, to, network, kind, payload } }),
    ];
    // MSNP18: circles.
    let circles = if dialect.has_circles() {
        prop_oneof![
            (t(), payload()).prop_map(|(trid, payload)| NsRequest::Put { trid, payload }),
            (t(), payload()).prop_map(|(trid, payload)| NsRequest::Sdg { trid, payload }),
            (t(), payload()).prop_map(|(trid, payload)| NsRequest::Del { trid, payload }),
            (t(), token()).prop_map(|(trid, ticket)| NsRequest::Usr { trid, step: UsrStep::CircleTicket { ticket } }),
        ]
        .boxed()
    } else {
        (t(), payload()).prop_map(|(trid, payload)| NsRequest::Adl { trid, payload }).boxed()
    };
    prop_oneof![session, lists_and_groups, profile, live, circles]
}

fn sb_request() -> impl Strategy<Value = SbRequest> {
    let ack =
        prop::sample::select(vec![AckMode::Unacknowledged, AckMode::NegativeOnly, AckMode::Always, AckMode::Data]);
    prop_oneof![
        Just(SbRequest::Out),
        (any::<u32>(), address(), token()).prop_map(|(trid, handle, cookie)| SbRequest::Usr { trid, handle, cookie }),
        (any::<u32>(), address(), token(), any::<u32>()).prop_map(|(trid, handle, cookie, session_id)| {
            SbRequest::Ans { trid, handle, cookie, session_id: session_id.into() }
        }),
        (any::<u32>(), token()).prop_map(|(trid, handle)| SbRequest::Cal { trid, handle }),
        (any::<u32>(), ack, payload()).prop_map(|(trid, ack, payload)| SbRequest::Msg { trid, ack, payload }),
    ]
}

/// Encodes a frame to bytes and decodes it back as a server would.
fn through_the_wire(frame: &Frame) -> Frame {
    let mut decoder = Decoder::new(Direction::ToServer, Limits { max_line: 4096, max_payload: 4096 });
    let mut buf = BytesMut::from(&frame.to_bytes()[..]);
    let decoded = decoder.decode(&mut buf).expect("valid framing").expect("one whole frame");
    assert!(buf.is_empty(), "bytes left over: {buf:?}");
    decoded
}

fn dialect_and_ns_request() -> impl Strategy<Value = (Dialect, NsRequest)> {
    prop::sample::select(Dialect::ALL.to_vec()).prop_flat_map(|d| (Just(d), ns_request(d)))
}

proptest! {
    #[test]
    fn every_notification_request_survives_encode_and_parse((dialect, request) in dialect_and_ns_request()) {
        let frame = through_the_wire(&request.to_frame(dialect));
        prop_assert_eq!(NsRequest::parse(&frame, dialect), Ok(request));
    }

    #[test]
    fn every_switchboard_request_survives_encode_and_parse(request in sb_request()) {
        let frame = through_the_wire(&request.to_frame());
        prop_assert_eq!(SbRequest::parse(&frame), Ok(request));
    }
}
