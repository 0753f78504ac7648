//! The URL encoding of arguments that may hold spaces or non-ASCII text
//! (draft 5.2 and 5.5): friendly names, group names, MSN objects.
//!
//! We encode the minimum that keeps an argument a single token and 7-bit
//! clean (`%`, space, control characters and every byte >= 0x80) and decode
//! any `%XX` escape. `+` is never a space here.
//!
//! Written here rather than taken from `percent-encoding` on purpose: MSN's
//! set is its own (the clients compare encoded names byte for byte, and the
//! crate's ready-made sets escape more or decode `+`), and decoding must
//! refuse what the crate passes through (a lone `%`).

/// Why an encoded argument could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed percent escape")]
    BadEscape,
    #[error("decoded bytes are not UTF-8")]
    NotUtf8,
}

/// Encodes text for use as a single protocol argument.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b == b'%' || b <= b' ' || b >= 0x7f {
            out.push('%');
            out.push(char::from(HEX[(b >> 4) as usize]));
            out.push(char::from(HEX[(b & 15) as usize]));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes a URL-encoded argument into UTF-8 text.
pub fn decode(arg: &str) -> Result<String, DecodeError> {
    let bytes = arg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value).ok_or(DecodeError::BadEscape)?;
            let lo = bytes.get(i + 2).copied().and_then(hex_value).ok_or(DecodeError::BadEscape)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_only_what_it_must() {
        assert_eq!(encode("Auntie Em"), "Auntie%20Em");
        assert_eq!(encode("100% über"), "100%25%20%C3%BCber");
        assert_eq!(encode("a\r\nb"), "a%0D%0Ab");
        assert_eq!(encode("bob@hotmail.com"), "bob@hotmail.com");
    }

    #[test]
    fn decodes_any_escape() {
        assert_eq!(decode("Alice%20W.").unwrap(), "Alice W.");
        assert_eq!(decode("%c3%bc").unwrap(), "ü");
        assert_eq!(decode("a+b").unwrap(), "a+b");
        assert_eq!(decode("50%"), Err(DecodeError::BadEscape));
        assert_eq!(decode("%zz"), Err(DecodeError::BadEscape));
        assert_eq!(decode("%FF"), Err(DecodeError::NotUtf8));
    }

    #[test]
    fn round_trips() {
        for s in ["", "plain", "with space", "日本語 ✓", "%%%", "tab\there"] {
            assert_eq!(decode(&encode(s)).unwrap(), s);
        }
    }
}
