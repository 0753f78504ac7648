//! The wire's hot paths: decoding and parsing a command line and a MSG, and
//! encoding presence and a relayed message.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use msnp::reply::PresenceLine;
use msnp::request::{NsRequest, SbRequest};
use msnp::{Decoder, Dialect, Direction, Limits, OnlineState, Reply};

const BODY: &str = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nX-MMS-IM-Format: FN=Segoe%20UI; EF=; CO=0; CS=0; PF=22\r\n\r\nHello! How are you today? This message is about 150 bytes long.";

fn wire(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));

    let line = b"CHG 12 AWY 268435492\r\n";
    g.bench_function("decode+parse CHG", |b| {
        let mut decoder = Decoder::new(Direction::ToServer, Limits::default());
        b.iter(|| {
            let mut buf = BytesMut::from(&line[..]);
            let frame = decoder.decode(&mut buf).unwrap().unwrap();
            black_box(NsRequest::parse(&frame, Dialect::Msnp11).unwrap());
        })
    });

    let msg = format!("MSG 7 N {}\r\n{BODY}", BODY.len());
    g.bench_function("decode+parse MSG (150 B)", |b| {
        let mut decoder = Decoder::new(Direction::ToServer, Limits::default());
        b.iter(|| {
            let mut buf = BytesMut::from(msg.as_bytes());
            let frame = decoder.decode(&mut buf).unwrap().unwrap();
            black_box(SbRequest::parse(&frame).unwrap());
        })
    });

    let presence = PresenceLine {
        state: OnlineState::Away,
        handle: "alice@example.com".into(),
        friendly: "Alice%20in%20Wonderland".into(),
        client_id: 268435492,
        extended_caps: 0,
        msn_object: None,
    };
    g.bench_function("encode NLN", |b| {
        let mut out = BytesMut::with_capacity(256);
        b.iter(|| {
            out.clear();
            Reply::Nln { presence: presence.clone() }.encode(Dialect::Msnp11, &mut out);
            black_box(&out);
        })
    });

    let payload = Bytes::from_static(BODY.as_bytes());
    g.bench_function("encode MSG (150 B)", |b| {
        let mut out = BytesMut::with_capacity(512);
        b.iter(|| {
            out.clear();
            Reply::Msg { handle: "alice@example.com".into(), friendly: "Alice".into(), payload: payload.clone() }
                .encode(Dialect::Msnp11, &mut out);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);
