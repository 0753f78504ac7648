//! Reading HTTP/1.x requests the way old clients send them: no version,
//! no headers, absolute-form targets, LF line ends; bounded head and body,
//! and what was read past one request kept for the next on a kept-alive
//! connection.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::request_target::{RequestTarget, host_of};

/// Largest request head we read.
const MAX_HEAD: usize = 16 * 1024;
/// Largest request body we read.
pub(super) const MAX_BODY: usize = 64 * 1024;
/// A parsed request.
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: RequestTarget,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to keep the connection for another request
    /// (`Connection: Keep-Alive`; Pidgin also sends `Proxy-Connection`).
    pub(super) fn wants_keep_alive(&self) -> bool {
        ["Connection", "Proxy-Connection"]
            .iter()
            .filter_map(|name| self.header(name))
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("keep-alive")))
    }

    /// The normalised path every decision is taken on.
    pub(super) fn path(&self) -> &str {
        &self.target.path
    }

    /// The host name the client used to reach us: the absolute-form
    /// target's, else the `Host` header's (RFC 9112 section 3.2.2).
    pub(super) fn host(&self) -> Option<String> {
        self.target.host.clone().or_else(|| self.header("Host").and_then(host_of))
    }
}

/// Why no request was read.
pub(super) enum Unread {
    /// Not HTTP, cut short, or a head over the limit.
    Malformed,
    /// A body announced over [`MAX_BODY`] (413).
    TooLarge,
    /// The client closed the connection between requests.
    Closed,
}

/// Reads one request. `unread` holds bytes read past the previous request
/// on a kept-alive connection and keeps those read past this one.
pub(super) async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    unread: &mut Vec<u8>,
) -> Result<Request, Unread> {
    let none = || Unread::Malformed;
    let mut buf = std::mem::take(unread);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if let Some(i) = find(&buf, b"\n\n") {
            break i + 2;
        }
        if buf.len() >= MAX_HEAD {
            return Err(none());
        }
        // Read into the buffer itself: no chunk on the stack, which would
        // make every idle kept-alive connection's task that much larger.
        buf.reserve(2048);
        let n = stream.read_buf(&mut buf).await.map_err(|_| none())?;
        if n == 0 {
            return Err(if buf.is_empty() { Unread::Closed } else { none() });
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| none())?;
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut request_line = lines.next().ok_or_else(none)?.split(' ').filter(|s| !s.is_empty());
    let method = request_line.next().ok_or_else(none)?.to_string();
    let target = request_line.next().and_then(RequestTarget::parse).ok_or_else(none)?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(Unread::TooLarge);
    }
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(8192)];
        let n = stream.read(&mut chunk).await.map_err(|_| none())?;
        if n == 0 {
            return Err(none());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    *unread = body.split_off(length);
    Ok(Request { method, target, headers, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
