//! The request target of an HTTP request, parsed and normalised once.
//!
//! Every decision about a request (which service answers it, whether a
//! password may arrive on it over plain HTTP) is taken on the path this
//! module gives, and the axum router is handed the same path, so that no
//! spelling of a target (absolute form, a fragment, `%2F`, `..`, `//`) can
//! be routed one way and checked another.

/// A request target: `/path?query`, `http://host/path?query`, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// The normalised path: starts with `/`, no dot segments, no empty
    /// segments, unreserved percent-escapes decoded.
    pub path: String,
    pub query: Option<String>,
    /// The host (without port) named by an absolute-form target.
    pub host: Option<String>,
}

/// The Passport login paths. Some clients (msnp11-sdk) take the whole
/// `PassportURLs` value after `DALogin=` as the URL, fields after it
/// included; they ask for `/login2.srf,DARealm=...`, which is still the
/// login service.
const LOGIN_PATHS: [&str; 3] = ["/login2.srf", "/login.srf", "/ppsecure/login.srf"];

impl RequestTarget {
    /// Parses a target as it appears on the request line. `None` for a
    /// target no HTTP/1.1 client sends (RFC 9112 section 3.2).
    pub fn parse(raw: &str) -> Option<RequestTarget> {
        if raw == "*" {
            return Some(RequestTarget { path: "*".into(), query: None, host: None });
        }
        let raw = raw.split('#').next().unwrap_or("");
        let (host, origin) = match scheme_rest(raw) {
            Some(rest) => {
                let (authority, origin) = match rest.find(['/', '?']) {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                (Some(host_of(authority)?), origin)
            }
            None => (None, raw),
        };
        let (path, query) = match origin.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (origin, None),
        };
        let path = if path.is_empty() && host.is_some() { "/" } else { path };
        if !path.starts_with('/') {
            return None;
        }
        let mut path = normalise_path(path)?;
        if let Some(login) = LOGIN_PATHS.iter().find(|p| path.strip_prefix(**p).is_some_and(|r| r.starts_with(','))) {
            path = login.to_string();
        }
        Some(RequestTarget { path, query, host })
    }

    /// The origin-form target (`/path?query`) to hand on.
    pub fn origin_form(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

/// What follows `http://` or `https://` (any case), if the target is in
/// absolute form.
fn scheme_rest(raw: &str) -> Option<&str> {
    let (scheme, rest) = raw.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(rest)
}

/// The host of a `Host` header or an authority: lower-cased, without port
/// or user info; `None` if it is not a plausible host name or address (it
/// is echoed into URLs we send, so nothing else may pass).
pub fn host_of(authority: &str) -> Option<String> {
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return None;
        }
        return Some(format!("[{}]", inside.to_ascii_lowercase()));
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let plausible = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['.', '-']);
    plausible.then(|| host.to_ascii_lowercase())
}

/// Decodes percent-escapes of unreserved characters, drops empty and `.`
/// segments and resolves `..` (never above the root). An escape that is
/// malformed, or that decodes to `/`, `\` or a control byte, makes the
/// path invalid: those exist only to confuse routers.
fn normalise_path(path: &str) -> Option<String> {
    // Bytes, not chars: a path may carry raw UTF-8 (clients ought to escape
    // it, some do not), which must come out as it went in.
    let mut decoded: Vec<u8> = Vec::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                decoded.push(v);
            } else if v == b'/' || v == b'\\' || v < 0x20 || v == 0x7f {
                return None;
            } else {
                decoded.push(b'%');
                decoded.extend_from_slice(hex.to_ascii_uppercase().as_bytes());
            }
            i += 3;
            continue;
        }
        if b < 0x20 || b == 0x7f || b == b'\\' {
            return None;
        }
        decoded.push(b);
        i += 1;
    }
    // Only ASCII was decoded, so the bytes are still the UTF-8 they were.
    let decoded = String::from_utf8(decoded).ok()?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() || (decoded.ends_with('/') && !segments.is_empty()) {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(raw: &str) -> Option<String> {
        RequestTarget::parse(raw).map(|t| t.path)
    }

    #[test]
    fn raw_utf8_in_a_path_comes_out_as_it_went_in() {
        assert_eq!(path("/edmin/l/qn\u{456}/").as_deref(), Some("/edmin/l/qn\u{456}/"));
        assert_eq!(path("/caf\u{e9}/../x").as_deref(), Some("/x"));
    }

    #[test]
    fn every_form_real_clients_send_names_the_same_path() {
        for raw in [
            "/login2.srf",
            "https://localhost/login2.srf",
            "HTTP://127.0.0.1:8080/login2.srf",
            "/login2.srf#x",
            "//login2.srf",
            "/./login2.srf",
            "/x/../login2.srf",
            "/%6Cogin2.srf",
            "/login2.srf,DARealm=Passport.Net,DAReg=http://localhost/signup",
        ] {
            assert_eq!(path(raw).as_deref(), Some("/login2.srf"), "{raw}");
        }
        let t = RequestTarget::parse("http://Example.COM:80/signup?invite=a#frag").unwrap();
        assert_eq!(
            (t.path.as_str(), t.query.as_deref(), t.host.as_deref()),
            ("/signup", Some("invite=a"), Some("example.com"))
        );
        assert_eq!(t.origin_form(), "/signup?invite=a");
        assert_eq!(path("http://localhost").as_deref(), Some("/"));
        assert_eq!(path("/../../etc").as_deref(), Some("/etc"));
        assert_eq!(path("/admin/").as_deref(), Some("/admin/"));
    }

    #[test]
    fn targets_meant_to_confuse_are_refused() {
        for raw in ["login2.srf", "", "/a%2Fb", "/a%5cb", "/a\\b", "/%zz", "/%4", "ftp://x/y", "http://bad host/"] {
            assert_eq!(path(raw), None, "{raw:?}");
        }
        assert_eq!(path("/a%20b").as_deref(), Some("/a%20b"), "reserved escapes stay escaped");
    }

    #[test]
    fn any_target_parses_or_is_refused_and_a_parsed_path_is_already_normal() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6d61_7269);
        let alphabet = b"/.%2fF5cC:?#@[]a-_~\\x00 ,";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let raw: String = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char).collect();
            let raw = if rng.gen_bool(0.3) { format!("http://h{raw}") } else { raw };
            if let Some(t) = RequestTarget::parse(&raw) {
                assert!(t.path.starts_with('/') || t.path == "*", "{raw:?} -> {t:?}");
                let again = RequestTarget::parse(&t.path).map(|t| t.path);
                assert!(again.as_deref() == Some(t.path.as_str()) || t.path == "*", "{raw:?}: {t:?} then {again:?}");
                assert!(!t.path.contains("/../") && !t.path.contains("//"), "{raw:?} -> {}", t.path);
            }
        }
    }

    #[test]
    fn hosts_are_plain_names_or_addresses() {
        assert_eq!(host_of("LocalHost:1863").as_deref(), Some("localhost"));
        assert_eq!(host_of("[::1]:80").as_deref(), Some("[::1]"));
        assert_eq!(host_of("user@mariposa.example").as_deref(), Some("mariposa.example"));
        for bad in ["", ":80", "a b", "x\"y", "-x", "[zz]", "évil"] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
    }
}
