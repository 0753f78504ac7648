//! A fixed pool of threads that check Argon2id passwords.
//!
//! Argon2id at the OWASP minimum needs 19 MiB per hash. Run on tokio's
//! blocking pool, each hash could land on a different thread, and glibc keeps
//! a freed 19 MiB in that thread's arena: a Passport login burst left the
//! server hundreds of MiB larger. Here each worker owns its block memory for
//! life, so hashing costs `workers × 19 MiB` once, and never blocks an async
//! worker. Callers wait for admission asynchronously, so a burst queues
//! without threads or memory growing.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::secrets::constant_time_eq;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The pool. Dropping it lets the workers finish and exit.
pub struct PasswordChecker {
    jobs: Mutex<std_mpsc::Sender<Job>>,
    admission: Arc<Semaphore>,
}

impl PasswordChecker {
    /// `workers` threads, each running `on_start` first; at most four checks
    /// queued per worker beyond the ones running.
    pub fn new(workers: usize, on_start: Option<fn()>) -> PasswordChecker {
        let workers = workers.max(1);
        let (tx, rx) = std_mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
                if let Some(start) = on_start {
                    start();
                }
                let mut memory = Vec::new();
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut memory),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password-hashing thread: {e}");
            }
        }
        PasswordChecker { jobs: Mutex::new(tx), admission: Arc::new(Semaphore::new(workers * 5)) }
    }

    /// Whether any of `candidates` matches `hash` (a PHC string). `None`
    /// when the pool has shut down.
    pub async fn verify(&self, candidates: Vec<String>, hash: String) -> Option<bool> {
        let _permit = self.admission.acquire().await.ok()?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let ok = candidates.iter().any(|c| verify_with(memory, c, &hash));
            let _ = tx.send(ok);
        });
        self.jobs.lock().ok()?.send(job).ok()?;
        rx.await.ok()
    }
}

/// Checks one password against a PHC Argon2 hash, hashing into `memory`
/// (grown to the hash's memory cost once, then reused).
pub fn verify_with(memory: &mut Vec<Block>, password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else { return false };
    let Ok(params) = Params::try_from(&parsed) else { return false };
    let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..params.block_count()])
        .is_err()
    {
        return false;
    }
    constant_time_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::hash_password;

    #[test]
    fn agrees_with_the_library_verifier() {
        let hash = hash_password("correct horse").unwrap();
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, "correct horse", &hash));
        assert!(!verify_with(&mut memory, "correct horsf", &hash));
        assert!(!verify_with(&mut memory, "correct horse", "not a hash"));
        // Memory is kept for the next check.
        assert!(!memory.is_empty());
    }

    #[tokio::test]
    async fn the_pool_checks_candidates() {
        let pool = PasswordChecker::new(2, None);
        let hash = hash_password("pw").unwrap();
        assert_eq!(pool.verify(vec!["nope".into(), "pw".into()], hash.clone()).await, Some(true));
        assert_eq!(pool.verify(vec!["nope".into()], hash).await, Some(false));
    }
}
