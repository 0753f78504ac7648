//! A framed MSNP connection to a server, from the client's side.
//!
//! `next_frame` is cancel-safe: the bytes read so far live in the
//! connection's buffer, so an actor can race it in `select!`.

use std::net::SocketAddr;

use bytes::BytesMut;
use msnp::{Decoder, Direction, Frame, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};

/// A plain TCP socket or a TLS session over one.
trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> Stream for S {}

/// One connection to a dispatch, notification or switchboard server.
pub struct Conn {
    stream: Box<dyn Stream>,
    local: Option<SocketAddr>,
    buf: BytesMut,
    decoder: Decoder,
}

impl Conn {
    /// Connects to `addr`, over TLS when the configuration asks for it
    /// (a server's `--msnp-tls-listen` port).
    pub async fn connect(addr: &str, config: &ClientConfig) -> Result<Conn> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        let stream: Box<dyn Stream> = if config.tls {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            Box::new(crate::http::tls_connect(host, tcp, config.trust_ca.as_deref()).await?)
        } else {
            Box::new(tcp)
        };
        Ok(Conn {
            stream,
            local,
            buf: BytesMut::with_capacity(4096),
            // Servers send payloads (profiles, messages, mail data) of a few
            // kilobytes; a megabyte bounds a hostile one.
            decoder: Decoder::new(Direction::ToClient, Limits { max_line: 64 * 1024, max_payload: 1 << 20 }),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Sends one command line.
    pub async fn send_line(&mut self, line: &str) -> Result<()> {
        let mut out = Vec::with_capacity(line.len() + 2);
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Sends a payload command: `line` gets the payload length appended.
    pub async fn send_payload(&mut self, line: &str, payload: &[u8]) -> Result<()> {
        let mut out = format!("{line} {}\r\n", payload.len()).into_bytes();
        out.extend_from_slice(payload);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next command from the server; `Ok(None)` when it closed.
    pub async fn next_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).map_err(|e| ClientError::Protocol(e.to_string()))? {
                return Ok(Some(frame));
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next command, or an error if the server closes or `timeout` passes.
    pub async fn expect_frame(&mut self, timeout: std::time::Duration) -> Result<Frame> {
        match tokio::time::timeout(timeout, self.next_frame()).await {
            Ok(Ok(Some(f))) => Ok(f),
            Ok(Ok(None)) => Err(ClientError::Closed),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClientError::Timeout),
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

/// The numeric error code of a frame, if it is an error reply.
pub fn error_code(frame: &Frame) -> Option<u16> {
    let verb = frame.verb();
    (verb.len() == 3 && verb.bytes().all(|b| b.is_ascii_digit())).then(|| verb.parse().ok()).flatten()
}
