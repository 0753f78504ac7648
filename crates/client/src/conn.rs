//! A framed MSNP connection to a server, from the client's side.
//!
//! `next_frame` is cancel-safe: the bytes read so far live in the
//! connection's buffer, so an actor can race it in `select!`.

use std::net::SocketAddr;

use bytes::BytesMut;
use msnp::request::{NsRequest, SbRequest};
use msnp::{Decoder, Dialect, Direction, Frame, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
pub use crate::gateway::ServerKind;

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
    /// (a server's `--msnp-tls-listen` port), or through the configured
    /// HTTP gateway, which needs to know what kind of server it opens.
    pub async fn connect(addr: &str, kind: ServerKind, config: &ClientConfig) -> Result<Conn> {
        if let Some(url) = &config.http_gateway {
            let pipe = crate::gateway::open(url, addr, kind, config.trust_ca.clone());
            return Ok(Conn::over(Box::new(pipe), None));
        }
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        let stream: Box<dyn Stream> = if config.tls {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
            Box::new(crate::http::tls_connect(host, tcp, config.trust_ca.as_deref()).await?)
        } else {
            Box::new(tcp)
        };
        Ok(Conn::over(stream, local))
    }

    fn over(stream: Box<dyn Stream>, local: Option<SocketAddr>) -> Conn {
        Conn {
            stream,
            local,
            buf: BytesMut::with_capacity(4096),
            // Servers send payloads (profiles, messages, mail data) of a few
            // kilobytes; a megabyte bounds a hostile one.
            decoder: Decoder::new(Direction::ToClient, Limits { max_line: 64 * 1024, max_payload: 1 << 20 }),
        }
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// Sends a request in the connection's dialect.
    pub async fn send(&mut self, request: &NsRequest, dialect: Dialect) -> Result<()> {
        self.send_frame(&request.to_frame(dialect)).await
    }

    /// Sends a request to a switchboard.
    pub async fn send_sb(&mut self, request: &SbRequest) -> Result<()> {
        self.send_frame(&request.to_frame()).await
    }

    /// Sends a frame (line, CRLF, payload).
    pub async fn send_frame(&mut self, frame: &Frame) -> Result<()> {
        self.stream.write_all(&frame.to_bytes()).await?;
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
