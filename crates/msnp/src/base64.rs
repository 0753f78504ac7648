//! Base64 (RFC 4648, standard alphabet): the P2P file context, offline
//! message bodies and RFC 2047 names all use it, in both directions. The
//! `base64` crate does the work; this module fixes the leniency clients need.

use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Reading what clients send: padding or not, and non-zero trailing bits
/// (some MSNSLP stacks leave them).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64, padding optional; surrounding whitespace and trailing
/// NULs (MSNSLP bodies end in one) are ignored. `None` on any other byte.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    LENIENT.decode(s.trim().trim_end_matches('\0')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", &[0xff, 0, 0x80, 1]] {
            assert_eq!(decode(&encode(data)).unwrap(), data);
        }
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello", "without padding");
        assert_eq!(decode(" aGVsbG8=\0\0").unwrap(), b"hello", "an MSNSLP body's NULs");
        assert_eq!(decode("!!!"), None);
    }
}
