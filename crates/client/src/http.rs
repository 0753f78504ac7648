//! Just enough HTTP(S) for Passport: a GET with headers, one request per
//! connection, the answer read to the end.
//!
//! Written here rather than with an HTTP client crate on purpose: the two
//! exchanges the client makes (nexus, login; and the SOAP post) are one
//! request each to servers that may answer without a length and close, and
//! the client already has rustls for MSNP over TLS; a full client stack
//! would bring a second runtime of connection pools for three requests.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{ClientError, Result};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A parsed `http://` or `https://` URL.
struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>> {
    let bad = || ClientError::Protocol(format!("bad URL `{url}`"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, p.parse().map_err(|_| bad())?),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    Ok(Url { tls, host: host.trim_start_matches('[').trim_end_matches(']'), port, path })
}

/// The TLS settings: the public roots, plus a CA the user trusts.
fn tls_config(trust_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = trust_ca {
        let pem = std::fs::read(path)?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots
                .add(cert.map_err(|e| ClientError::Tls(e.to_string()))?)
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens TLS over `tcp`, checking the certificate against `host`.
pub(crate) async fn tls_connect(
    host: &str,
    tcp: TcpStream,
    trust_ca: Option<&Path>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(tls_config(trust_ca)?);
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| ClientError::Tls(e.to_string()))?;
    connector.connect(name, tcp).await.map_err(|e| ClientError::Tls(e.to_string()))
}

/// GETs `url` with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)], trust_ca: Option<&Path>) -> Result<Answer> {
    let u = parse_url(url)?;
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", u.path, u.host);
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    send(&u, request.as_bytes(), trust_ca).await
}

/// Connects (with TLS for `https`) and exchanges one request.
async fn send(u: &Url<'_>, request: &[u8], trust_ca: Option<&Path>) -> Result<Answer> {
    let tcp = TcpStream::connect((u.host, u.port)).await?;
    if u.tls {
        exchange(tls_connect(u.host, tcp, trust_ca).await?, request).await
    } else {
        exchange(tcp, request).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Result<Answer> {
    stream.write_all(request).await?;
    let mut raw = Vec::new();
    // Passport answers are small; bound what a hostile server can make us hold.
    let mut limited = (&mut stream).take(1 << 20);
    let _ = limited.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Protocol("incomplete HTTP answer".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Protocol("bad HTTP status line".into()))?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_string(), v.trim().to_string())).collect();
    Ok(Answer { status, headers, body: raw[split + 4..].to_vec() })
}

/// POSTs `body` as `application/x-msn-messenger` (the HTTP gateway's).
pub async fn post(url: &str, body: &[u8], trust_ca: Option<&Path>) -> Result<Answer> {
    let u = parse_url(url)?;
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-msn-messenger\r\nContent-Length: {}\r\n\r\n",
        u.path,
        u.host,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    send(&u, &request, trust_ca).await
}

/// POSTs a SOAP envelope.
pub async fn post_soap(url: &str, action: &str, body: &str, trust_ca: Option<&Path>) -> Result<Answer> {
    let u = parse_url(url)?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"{action}\"\r\nContent-Length: {}\r\n\r\n{body}",
        u.path,
        u.host,
        body.len()
    );
    send(&u, request.as_bytes(), trust_ca).await
}

/// The base of a URL (`scheme://authority`), to build other service URLs.
pub fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    match url[scheme_end..].find('/') {
        Some(i) => Some(&url[..scheme_end + i]),
        None => Some(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("https://login.example.com/login2.srf").unwrap();
        assert!(u.tls && u.host == "login.example.com" && u.port == 443 && u.path == "/login2.srf");
        let u = parse_url("http://127.0.0.1:8080/rdr/pprdr.asp").unwrap();
        assert!(!u.tls && u.port == 8080 && u.path == "/rdr/pprdr.asp");
        assert!(parse_url("ftp://x").is_err());
        assert_eq!(origin("http://127.0.0.1:8080/rdr/pprdr.asp"), Some("http://127.0.0.1:8080"));
    }
}
