//! Properties of the wire over arbitrary input: the decoder gives the same
//! frames however the bytes are split, never holds more than its limits
//! allow, and the parsers and encoders agree with each other.

use bytes::{Bytes, BytesMut};
use msnp::reply::PresenceLine;
use msnp::request::{NsRequest, SbRequest};
use msnp::{Decoder, Dialect, Direction, Frame, FrameError, Limits, OnlineState, Reply};
use proptest::prelude::*;

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
                msn_object: None,
            };
            Reply::Nln { presence }.encode(dialect, &mut out);
            let mut decoder = Decoder::new(Direction::ToClient, Limits::default());
            let frame = decoder.decode(&mut out).unwrap().expect("one frame");
            prop_assert!(out.is_empty());
            let args = frame.args();
            prop_assert_eq!(frame.verb(), "NLN");
            prop_assert_eq!(args[0], "BSY");
            prop_assert_eq!(args[1], handle.as_str());
            // Names travel URL-encoded: one argument, decoding to the name.
            prop_assert_eq!(msnp::urlencode::decode(args[2]).unwrap(), friendly.clone());
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
