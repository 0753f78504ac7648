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
use std::time::{Duration, Instant};

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

/// The round trips of each connection of one MSNP11 Passport login as
/// msn-load makes it: dispatch (`VER`, `CVR`, `USR` to `XFR`), notification
/// (`VER`, `CVR`, `USR I`, `USR S` with the sign-in's lists, `OUT`), the
/// nexus and the login service (one HTTP request each). Request and answer
/// sizes are close to the real ones; the list answer of a user with ten
/// contacts is about 1 KiB.
const PASSPORT_LOGIN: [&[(usize, usize)]; 4] = [
    &[(30, 30), (60, 50), (40, 60)],
    &[(30, 30), (60, 50), (40, 120), (420, 1100), (5, 0)],
    &[(120, 330)],
    &[(400, 900)],
];

/// One login's connections, both ends in this thread: connect, accept, each
/// request written and read, each answer written and read, then both ends
/// closed. Nothing ever waits, so this is the kernel's TCP work alone,
/// without a single thread woken. Only the server end's calls are timed
/// (`accept`, its reads and writes, its close), which is what msnd's CPU
/// per login contains; on loopback its `sendto` also runs the client end's
/// receive path, as it does under msn-load.
fn passport_login_connections(c: &mut Criterion) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().expect("address");
    let out = [b'x'; 2048];
    let mut buffer = [0u8; 2048];
    c.bench_function("loopback: the server's end of one Passport login's 4 connections and 10 round trips", |b| {
        b.iter_custom(|iterations| {
            let mut server_time = Duration::ZERO;
            for _ in 0..iterations {
                for exchanges in PASSPORT_LOGIN {
                    let mut client = TcpStream::connect(address).expect("connect");
                    client.set_nodelay(true).expect("nodelay");
                    let t = Instant::now();
                    let (mut server, _) = listener.accept().expect("accept");
                    server.set_nodelay(true).expect("nodelay");
                    server_time += t.elapsed();
                    for &(request, answer) in exchanges {
                        client.write_all(&out[..request]).expect("request");
                        let t = Instant::now();
                        server.read_exact(&mut buffer[..request]).expect("read request");
                        if answer > 0 {
                            server.write_all(&out[..answer]).expect("answer");
                        }
                        server_time += t.elapsed();
                        client.read_exact(&mut buffer[..answer]).expect("read answer");
                    }
                    drop(client);
                    let t = Instant::now();
                    let _ = server.read(&mut buffer);
                    drop(server);
                    server_time += t.elapsed();
                }
            }
            server_time
        })
    });
}

criterion_group!(benches, loopback, passport_login_connections);
criterion_main!(benches);
