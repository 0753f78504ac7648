//! The kernel's floor under one relayed switchboard message on this
//! machine: the server must read each message from the sender's socket and
//! write it to the receiver's, so it makes at least one `recvfrom` and one
//! `sendto` per message (fewer only when several queue on one socket). On
//! loopback the `sendto` also runs the receiving socket's TCP input path.
//! This times exactly that pair on a connected loopback pair, with nothing
//! else around it: what msnd's CPU per relayed message can never go under
//! here (docs/PERFORMANCE.md, the switchboard tail).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use criterion::{Criterion, criterion_group, criterion_main};

/// msn-load's switchboard messages are 150 bytes on the wire.
const MESSAGE: usize = 150;

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let writer = TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
    let (reader, _) = listener.accept().expect("accept");
    writer.set_nodelay(true).expect("nodelay");
    (writer, reader)
}

fn loopback(c: &mut Criterion) {
    let (mut writer, mut reader) = pair();
    let message = [b'x'; MESSAGE];
    let mut buffer = [0u8; MESSAGE];
    c.bench_function("loopback: one 150-byte message sent and received (sendto + recvfrom)", |b| {
        b.iter(|| {
            writer.write_all(&message).expect("send");
            reader.read_exact(&mut buffer).expect("receive");
        })
    });
    // Ten messages in one write and one read: the floor per message when
    // messages queue (the writer batching what waits).
    let batch = [b'x'; MESSAGE * 10];
    let mut batch_buffer = [0u8; MESSAGE * 10];
    c.bench_function("loopback: ten 150-byte messages in one sendto and one recvfrom", |b| {
        b.iter(|| {
            writer.write_all(&batch).expect("send");
            reader.read_exact(&mut batch_buffer).expect("receive");
        })
    });
}

criterion_group!(benches, loopback);
criterion_main!(benches);
