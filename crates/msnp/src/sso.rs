//! MSNP15 single sign-on, sans I/O: the login blob a client sends with
//! `USR ... SSO S`, which proves it holds the session key (the
//! `BinarySecret`) the RST service issued with its `messengerclear.live.com`
//! ticket, bound to the nonce the server sent with `USR ... SSO S`.
//!
//! The algorithm is fixed by the clients (the Windows "RPS" key derivation):
//! two keys derived from the secret with HMAC-SHA1, an HMAC-SHA1 of the
//! nonce under the first, the nonce encrypted with 3DES-CBC under the
//! second, all behind a 28-byte little-endian header.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The policy the server names in `USR ... SSO S`; the client echoes it as
/// the `PolicyReference` of its `messengerclear.live.com` token request.
pub const POLICY: &str = "MBI_KEY_OLD";

/// The service whose token `USR ... SSO S` carries, and whose RST answer
/// holds the session key.
pub const MESSENGER_SERVICE: &str = "messengerclear.live.com";

/// Bytes of the session key (`BinarySecret`).
pub const SECRET_LEN: usize = 24;

/// Bytes of the random nonce before base64 (64 characters after).
pub const NONCE_LEN: usize = 48;

const HEADER_LEN: usize = 28;
const IV_LEN: usize = 8;
const HASH_LEN: usize = 20;
/// `CRYPT_MODE_CBC`, `CALG_3DES`, `CALG_SHA1`, as the header names them.
const MODE_CBC: u32 = 1;
const ALG_3DES: u32 = 0x6603;
const ALG_SHA1: u32 = 0x8004;
/// The longest nonce a blob may cover: what a server sends and a little.
const MAX_NONCE: usize = 256;

type HmacSha1 = Hmac<Sha1>;

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = <HmacSha1 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The key derivation: 24 bytes from `key` and a label.
fn derive(key: &[u8], magic: &[u8]) -> [u8; 24] {
    let h1 = hmac(key, &[magic]);
    let h2 = hmac(key, &[&h1, magic]);
    let h3 = hmac(key, &[&h1]);
    let h4 = hmac(key, &[&h3, magic]);
    let mut out = [0u8; 24];
    out[..20].copy_from_slice(&h2);
    out[20..].copy_from_slice(&h4[..4]);
    out
}

/// The two keys the blob is made with: (hash key, encryption key).
fn session_keys(secret: &[u8]) -> ([u8; 24], [u8; 24]) {
    (
        derive(secret, b"WS-SecureConversationSESSION KEY HASH"),
        derive(secret, b"WS-SecureConversationSESSION KEY ENCRYPTION"),
    )
}

/// The login blob, raw: header, `iv`, the HMAC of the nonce (its base64
/// text, as sent, not decoded) and the nonce encrypted.
pub fn login_blob_bytes(secret: &[u8], nonce: &str, iv: [u8; 8]) -> Vec<u8> {
    let (hash_key, cipher_key) = session_keys(secret);
    let hash = hmac(&hash_key, &[nonce.as_bytes()]);
    let cipher = cbc::Encryptor::<des::TdesEde3>::new(&cipher_key.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(nonce.as_bytes());
    let mut blob = Vec::with_capacity(HEADER_LEN + IV_LEN + HASH_LEN + cipher.len());
    for field in [HEADER_LEN as u32, MODE_CBC, ALG_3DES, ALG_SHA1, IV_LEN as u32, HASH_LEN as u32, cipher.len() as u32]
    {
        blob.extend_from_slice(&field.to_le_bytes());
    }
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&hash);
    blob.extend_from_slice(&cipher);
    blob
}

/// The login blob as `USR ... SSO S` carries it (base64). The client picks
/// `iv` at random.
pub fn login_blob(secret: &[u8], nonce: &str, iv: [u8; 8]) -> String {
    STANDARD.encode(login_blob_bytes(secret, nonce, iv))
}

/// Whether `blob` (base64) proves the session key `secret` over `nonce`.
/// Anything malformed is simply not a proof. The comparison takes the same
/// time wherever the blob differs.
pub fn verify_login_blob(secret: &[u8], nonce: &str, blob: &str) -> bool {
    if nonce.len() > MAX_NONCE || blob.len() > 4 * (HEADER_LEN + IV_LEN + HASH_LEN + MAX_NONCE + 8) / 3 + 4 {
        return false;
    }
    let Ok(given) = STANDARD.decode(blob.trim()) else { return false };
    let Some(iv) = given.get(HEADER_LEN..HEADER_LEN + IV_LEN).and_then(|iv| <[u8; 8]>::try_from(iv).ok()) else {
        return false;
    };
    let expected = login_blob_bytes(secret, nonce, iv);
    expected.len() == given.len() && expected.iter().zip(&given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A fresh nonce for `USR ... SSO S`, from `random` bytes the caller drew.
pub fn nonce(random: &[u8; NONCE_LEN]) -> String {
    STANDARD.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the protocol reference (msnp13-21.md, section 1.2):
    /// secret bytes 0..23, nonce base64(bytes 100..147), iv 01..08.
    #[test]
    fn the_reference_vector() {
        let secret: Vec<u8> = (0u8..24).collect();
        assert_eq!(STANDARD.encode(&secret), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX");
        let nonce_bytes: [u8; NONCE_LEN] = std::array::from_fn(|i| 100 + i as u8);
        let nonce = nonce(&nonce_bytes);
        assert_eq!(nonce, "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoOEhYaHiImKi4yNjo+QkZKT");
        let (hash_key, cipher_key) = session_keys(&secret);
        assert_eq!(hex::encode(hash_key), "06af2ac1f46df3fde6e65fef60a13bd21eabb69f09a542c0");
        assert_eq!(hex::encode(cipher_key), "2dd0114b936beb17cc1d7fa10191010bb4b7b487404c43e3");
        let blob = login_blob(&secret, &nonce, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            blob,
            "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAECAwQFBgcItXNIEVaVsP/pv42kC3V5Rrb3wZSoymykwhrkVOciyC/YVMf9sCDJgH6jjPOrjiPmFmEYdaiUmxC6RMg/9Tpgzaa3eFHCTSx4uajw4Av9YO19X2LCY7MHgR0+7d4="
        );
        assert_eq!(STANDARD.decode(&blob).unwrap().len(), 128);
        assert!(verify_login_blob(&secret, &nonce, &blob));
    }

    #[test]
    fn a_blob_proves_only_its_own_key_and_nonce() {
        let secret = [7u8; SECRET_LEN];
        let nonce = nonce(&[9u8; NONCE_LEN]);
        let blob = login_blob(&secret, &nonce, [3; 8]);
        assert!(verify_login_blob(&secret, &nonce, &blob));
        assert!(!verify_login_blob(&[8u8; SECRET_LEN], &nonce, &blob), "another key");
        assert!(!verify_login_blob(&secret, &super::nonce(&[1u8; NONCE_LEN]), &blob), "another nonce");
        let mut raw = STANDARD.decode(&blob).unwrap();
        raw[60] ^= 1;
        assert!(!verify_login_blob(&secret, &nonce, &STANDARD.encode(&raw)), "a flipped bit");
        raw.truncate(40);
        assert!(!verify_login_blob(&secret, &nonce, &STANDARD.encode(&raw)), "cut short");
        for junk in ["", "not base64!", "HAAAAA", &"A".repeat(100_000)] {
            assert!(!verify_login_blob(&secret, &nonce, junk), "{junk:.20}");
        }
    }
}
