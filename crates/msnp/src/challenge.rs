//! CHL/QRY challenges (MSNP6+): the client proves it is a known build by
//! hashing the server's challenge with its product key.
//!
//! Two algorithms: MD5 of challenge + key (MSNP6 to MSNP10) and the MSNP11
//! scheme. Keys are public knowledge, so this identifies builds; it does not
//! authenticate anyone.

use md5::{Digest, Md5};

use crate::Dialect;

/// Which QRY algorithm a dialect uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeAlgorithm {
    /// `md5hex(challenge || key)`
    Md5,
    /// The MSNP11 scheme (see [`msnp11_response`]).
    Msnp11,
}

impl ChallengeAlgorithm {
    /// The algorithm of a dialect; `None` before MSNP6, which has no CHL.
    pub fn for_dialect(dialect: Dialect) -> Option<ChallengeAlgorithm> {
        match (dialect.has_challenges(), dialect.uses_msnp11_challenge()) {
            (false, _) => None,
            (true, false) => Some(ChallengeAlgorithm::Md5),
            (true, true) => Some(ChallengeAlgorithm::Msnp11),
        }
    }
}

/// Known client builds: product id, product key, algorithm.
pub const PRODUCTS: &[(&str, &str, ChallengeAlgorithm)] = &[
    ("msmsgs@msnmsgr.com", "Q1P7W2E4J9R8U3S5", ChallengeAlgorithm::Md5),
    ("PROD0038W!61ZTF9", "VT6PX?UQTM4WM%YR", ChallengeAlgorithm::Md5),
    ("PROD0058#7IL2{QD", "QHDCY@7R1TB6W?5B", ChallengeAlgorithm::Md5),
    ("PROD0061VRRZH@4F", "JXQ6J@TUOGYV@N0M", ChallengeAlgorithm::Md5),
    ("PROD00504RLUG%WL", "I2EBK%PYNLZL5_J4", ChallengeAlgorithm::Md5),
    ("PROD0076ENE8*@AW", "CEQJ8}OE0!WTSWII", ChallengeAlgorithm::Md5),
    ("PROD0090YUAUV{2B", "YMM8C_H7KCQ2S_KL", ChallengeAlgorithm::Msnp11),
    ("PROD0101{0RM?UBW", "CFHUR$52U_{VIX5T", ChallengeAlgorithm::Msnp11),
    // Windows Live Messenger 8.x (MSNP13-15) and 2009 (MSNP16-18): the
    // product ids whose keys are published.
    ("PROD01065C%ZFN6F", "O4BG@C7BWLYQX?5G", ChallengeAlgorithm::Msnp11),
    ("PROD0112J1LW7%NB", "RH96F{PHI8PPX_TJ", ChallengeAlgorithm::Msnp11),
    ("PROD0119GSJUC$18", "ILTXC!4IXB5FB*PX", ChallengeAlgorithm::Msnp11),
    ("PROD0120PW!CCV9@", "C1BX{V4W}Q3*10SM", ChallengeAlgorithm::Msnp11),
];

/// The product key of a product id.
pub fn product_key(product_id: &str) -> Option<&'static str> {
    PRODUCTS.iter().find(|(id, _, _)| *id == product_id).map(|(_, k, _)| *k)
}

/// Lower-case hex of MD5(challenge || secret): the `CHL` answer of
/// MSNP6-10 (secret = the product key) and the MSNP2-7 `USR MD5 S` login
/// response (secret = the password).
pub fn md5_response(challenge: &str, key: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

/// The MSNP11 variant (auth.md 4.3). The challenge text plus the product id
/// is padded with `'0'` only when its length is not already a multiple of 8;
/// the server issues 20-digit challenges so the aligned case never arises.
pub fn msnp11_response(challenge: &str, product_id: &str, key: &str) -> String {
    const M: u64 = 0x7FFF_FFFF;
    const X: u64 = 0x0E79_A9C1;
    let digest: [u8; 16] = {
        let mut h = Md5::new();
        h.update(challenge.as_bytes());
        h.update(key.as_bytes());
        h.finalize().into()
    };
    let h: Vec<u64> = digest.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
    let k: Vec<u64> = h.iter().map(|v| v & M).collect();
    let mut s = format!("{challenge}{product_id}").into_bytes();
    while s.len() % 8 != 0 {
        s.push(b'0');
    }
    let w: Vec<u64> = s.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64).collect();
    let (mut hi, mut lo) = (0u64, 0u64);
    for pair in w.chunks(2) {
        let mut t = (pair[0] * X) % M;
        t = (k[0] * (t + hi) + k[1]) % M;
        hi = (((pair[1] + t) % M) * k[2] + k[3]) % M;
        lo += t + hi;
    }
    hi = (hi + k[1]) % M;
    lo = (lo + k[3]) % M;
    let out = [h[0] ^ hi, h[1] ^ lo, h[2] ^ hi, h[3] ^ lo];
    out.iter().flat_map(|v| (*v as u32).to_le_bytes()).map(|b| format!("{b:02x}")).collect()
}

/// Why a QRY was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QryVerdict {
    Correct,
    Wrong,
    UnknownProduct,
}

/// Checks a QRY answer for the dialect's algorithm.
pub fn verify(dialect: Dialect, challenge: &str, product_id: &str, answer: &[u8]) -> QryVerdict {
    let Some(key) = product_key(product_id) else { return QryVerdict::UnknownProduct };
    let expected = match ChallengeAlgorithm::for_dialect(dialect) {
        Some(ChallengeAlgorithm::Md5) => md5_response(challenge, key),
        Some(ChallengeAlgorithm::Msnp11) => msnp11_response(challenge, product_id, key),
        None => return QryVerdict::Wrong,
    };
    let answer = String::from_utf8_lossy(answer).trim().to_ascii_lowercase();
    if answer.len() == expected.len() && answer.bytes().zip(expected.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0 {
        QryVerdict::Correct
    } else {
        QryVerdict::Wrong
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_login_vectors_from_the_reference() {
        assert_eq!(md5_response("1013928519.693957190", "password"), "7f919fab309532df353c901430df36fa");
        assert_eq!(md5_response("1013928519.693957190", "Secret123"), "e03fb6da3c097283211bd0b7c35d115a");
        assert_eq!(md5_response("1062764229.33190", "hunter2"), "62f9013909827841a84946093271c012");
    }

    // Vectors from ../shared/protocol/vectors/chl.py (auth.md 4.6).
    #[test]
    fn md5_vectors() {
        let c = "15570131571988941333";
        let cases = [
            ("msmsgs@msnmsgr.com", "8f2f5a91b72102cd28355e9fc9000d6e"),
            ("PROD0038W!61ZTF9", "ca90e6a7c94a14aae7b3ae0f6018433e"),
            ("PROD0058#7IL2{QD", "f8a1cd8d90b73fd4a3d3f8fd3341da87"),
            ("PROD0061VRRZH@4F", "769dfe2c4292159189b71837ce37b74e"),
            ("PROD00504RLUG%WL", "49d31aad3b56caeb4bb18a9772c0e8af"),
            ("PROD0076ENE8*@AW", "2d703fdc530d7a958e6ae6ce1c0347c0"),
        ];
        for (id, expected) in cases {
            assert_eq!(md5_response(c, product_key(id).unwrap()), expected, "{id}");
        }
        assert_eq!(md5_response("22210219642164014968", "Q1P7W2E4J9R8U3S5"), "eedf627f65e76d031255a605f5841204");
    }

    #[test]
    fn msnp11_vectors() {
        let cases = [
            ("15570131571988941333", "PROD0090YUAUV{2B", "d8d8cb2c2043a603d8286a3343143ee1"),
            ("15570131571988941333", "PROD0101{0RM?UBW", "a2bcaf5dec2e7407282d443a8e38abd8"),
            ("22210219642164014968", "PROD0090YUAUV{2B", "85ecb0db8f32113df79ce0892b9a102c"),
            ("22210219642164014968", "PROD0101{0RM?UBW", "64812169fe9717715f03c678fa4ab938"),
            ("29409134351025259292", "PROD0090YUAUV{2B", "e08f0c6cdbfa1248c9dbcbd409b651e6"),
            ("29409134351025259292", "PROD0101{0RM?UBW", "5a65e51d0a9135b805e8e9ad77f90539"),
            // Aligned case, padding only when needed (libpurple, Miranda).
            ("123456781234567812345678", "PROD0090YUAUV{2B", "df2af954cc5cbf6f35e7e75e2194b1bd"),
        ];
        for (c, id, expected) in cases {
            assert_eq!(msnp11_response(c, id, product_key(id).unwrap()), expected, "{c} {id}");
        }
    }

    #[test]
    fn verification_by_dialect() {
        let c = "29409134351025259292";
        assert_eq!(
            verify(Dialect::Msnp11, c, "PROD0090YUAUV{2B", b"e08f0c6cdbfa1248c9dbcbd409b651e6"),
            QryVerdict::Correct
        );
        assert_eq!(
            verify(Dialect::Msnp11, c, "PROD0090YUAUV{2B", b"E08F0C6CDBFA1248C9DBCBD409B651E6"),
            QryVerdict::Correct
        );
        assert_eq!(
            verify(Dialect::Msnp8, c, "PROD0090YUAUV{2B", b"e08f0c6cdbfa1248c9dbcbd409b651e6"),
            QryVerdict::Wrong
        );
        assert_eq!(
            verify(Dialect::Msnp8, "15570131571988941333", "msmsgs@msnmsgr.com", b"8f2f5a91b72102cd28355e9fc9000d6e"),
            QryVerdict::Correct
        );
        assert_eq!(verify(Dialect::Msnp8, c, "PROD9999XXXXXXXX", b"00"), QryVerdict::UnknownProduct);
    }
}
