//! Secrets at rest and on the wire.
//!
//! MD5 login (MSNP2-7) needs the server to compute MD5(challenge + password),
//! so a one-way hash cannot serve it. We keep two things per account:
//! - an Argon2id hash, for every login where the password itself arrives
//!   (the Passport service of later dialects, the CLI);
//! - the password sealed with XChaCha20-Poly1305 under a server key that
//!   lives in its own file in the data dir (mode 0600), bound to the account's
//!   handle as associated data so rows cannot be swapped.
//!
//! Stealing the database alone yields neither passwords nor MD5 equivalents;
//! stealing the database and the key file yields the passwords of accounts
//! with MD5 login. docs/SECURITY.md discusses the trade-off.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, SaltString};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// Errors of key handling and sealing.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or write the server key {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("server key {path} is readable by other users (mode {mode:o}); run `chmod 600` on it")]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("server key {path} is malformed")]
    Malformed { path: PathBuf },
    #[error("sealed secret does not open with this server key")]
    Unseal,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

const KEY_FILE: &str = "server.key";
const NONCE_LEN: usize = 24;

/// The server's secret key for sealing MD5 secrets, shared by every node of
/// a cluster (and so also the root of the key that signs the bus).
#[derive(Clone)]
pub struct ServerKey {
    cipher: XChaCha20Poly1305,
    /// The bus's signing key, derived from the key file.
    bus_key: [u8; 32],
    /// The key behind the challenges a web service derives rather than
    /// remembers (the OIM lock key's), derived from the key file.
    challenge_key: [u8; 32],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

impl ServerKey {
    /// Loads `server.key` from the data dir, creating it (mode 0600) on first
    /// use. Refuses a key file that group or others can read.
    pub fn load_or_create(data_dir: &Path) -> Result<ServerKey, SecretError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| SecretError::Io { path: path.clone(), source };
        match fs::read(&path) {
            Ok(bytes) => {
                check_permissions(&path)?;
                let hex_text = String::from_utf8(bytes).map_err(|_| SecretError::Malformed { path: path.clone() })?;
                let key = hex::decode(hex_text.trim()).map_err(|_| SecretError::Malformed { path: path.clone() })?;
                if key.len() != 32 {
                    return Err(SecretError::Malformed { path });
                }
                Ok(ServerKey::from_bytes(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&path).map_err(io)?;
                file.write_all(hex::encode(key).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                Ok(ServerKey::from_bytes(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_bytes(key: &[u8]) -> ServerKey {
        // A separate key for the bus: a sealed secret and a bus message can
        // never be mistaken for each other.
        let bus_key = Sha256::new().chain_update(b"mariposa cluster bus v1\0").chain_update(key).finalize().into();
        let challenge_key = Sha256::new().chain_update(b"mariposa challenges v1\0").chain_update(key).finalize().into();
        ServerKey { cipher: XChaCha20Poly1305::new_from_slice(key).expect("32-byte key"), bus_key, challenge_key }
    }

    /// The key that signs messages between nodes.
    pub fn bus_key(&self) -> [u8; 32] {
        self.bus_key
    }

    /// A challenge for `subject` that every node holding this key derives
    /// alike and none has to remember: ten decimal digits, as the real
    /// service's were.
    pub fn challenge_for(&self, purpose: &str, subject: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.challenge_key)
            .chain_update(purpose.as_bytes())
            .chain_update(b"\0")
            .chain_update(subject.as_bytes())
            .finalize();
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        format!("{:010}", n)
    }

    /// A signature over `data` for `purpose` (HMAC-SHA-256 under a key
    /// derived from the key file): what the service hands out and checks
    /// when it comes back (the circle ticket), on any node.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.challenge_key).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether `signature` is [`ServerKey::sign`]'s over `data`, compared in
    /// constant time.
    pub fn verify(&self, purpose: &str, data: &[u8], signature: &[u8]) -> bool {
        constant_time_eq(&self.sign(purpose, data), signature)
    }

    /// Seals a password for the account with this handle key.
    pub fn seal(&self, handle_key: &str, password: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: password.as_bytes(), aad: handle_key.as_bytes() })
            .expect("encryption of a short message cannot fail");
        [&nonce[..], &sealed].concat()
    }

    /// Opens a sealed password; fails if it was sealed under another key or
    /// for another account.
    pub fn open(&self, handle_key: &str, sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Unseal);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: handle_key.as_bytes() })
            .map_err(|_| SecretError::Unseal)?;
        String::from_utf8(plain).map_err(|_| SecretError::Unseal)
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        fs::metadata(path).map_err(|source| SecretError::Io { path: path.to_path_buf(), source })?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SecretError::InsecurePermissions { path: path.to_path_buf(), mode: mode & 0o777 });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), SecretError> {
    Ok(())
}

/// Hashes a password with Argon2id (19 MiB, 2 passes: the OWASP minimum).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random token of `digits` decimal digits, for challenges, cookies
/// and session ids.
///
/// Drawn from the thread's CSPRNG (ChaCha, seeded and reseeded from the
/// operating system) rather than from the system call behind `OsRng` for
/// every digit: a login asks for about 50 digits, and 50 system calls were a
/// measurable part of its CPU.
pub fn random_digits(digits: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..digits).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// A random (version 4) GUID in the lower-case `8-4-4-4-12` form MSNP10+ uses.
pub fn new_guid() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A random `u32` from the operating system's CSPRNG.
pub fn random_u32() -> u32 {
    OsRng.next_u32()
}

/// A random string of `len` letters and digits from the operating system's
/// CSPRNG (web sessions and their anti-forgery tokens).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    rand::rngs::OsRng.sample_iter(&rand::distributions::Alphanumeric).take(len).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_binds_key_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::load_or_create(dir.path()).unwrap();
        let sealed = key.seal("a@x.com", "hunter2");
        assert_eq!(key.open("a@x.com", &sealed).unwrap(), "hunter2");
        assert!(key.open("b@x.com", &sealed).is_err());
        let again = ServerKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.open("a@x.com", &sealed).unwrap(), "hunter2");
        let other = tempfile::tempdir().unwrap();
        assert!(ServerKey::load_or_create(other.path()).unwrap().open("a@x.com", &sealed).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_world_readable_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        ServerKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(ServerKey::load_or_create(dir.path()), Err(SecretError::InsecurePermissions { .. })));
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("pw").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let mut memory = Vec::new();
        assert!(crate::hashing::verify_with(&mut memory, "pw", &h));
        assert!(!crate::hashing::verify_with(&mut memory, "pW", &h));
    }

    #[test]
    fn guids_have_the_msnp10_shape() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(g.matches('-').count(), 4);
        assert_ne!(g, new_guid());
    }

    #[test]
    fn random_digits_are_digits() {
        let d = random_digits(20);
        assert_eq!(d.len(), 20);
        assert!(d.bytes().all(|b| b.is_ascii_digit()));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
