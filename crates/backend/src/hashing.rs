//! A fixed pool of threads that check Argon2id passwords.
//!
//! Argon2id at the OWASP minimum needs 19 MiB per hash. Run on tokio's
//! blocking pool, each hash could land on a different thread, and glibc keeps
//! a freed 19 MiB in that thread's arena: a Passport login burst left the
//! server hundreds of MiB larger. Here each worker owns its block memory
//! while logins keep coming, so a burst costs `workers × 19 MiB` once, and
//! never blocks an async worker; a worker idle for [`GIVE_BACK_AFTER`] frees
//! it, so a quiet server does not carry it (a small server's memory per user
//! would otherwise be mostly this). Callers wait for admission
//! asynchronously, so a burst queues without threads or memory growing.
//!
//! The first worker takes every check; the others are helpers that take one
//! only when [`HELP_AT`] checks wait. A steady trickle of logins then hashes
//! on one core and leaves the other to the connections (beside chat traffic
//! a second hashing thread doubled its latency tail; it is the hash's CPU
//! that hurts, not its memory or priority, see docs/PERFORMANCE.md), while
//! a burst still gets every thread and the full rate.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::secrets::{SecretError, constant_time_eq};

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// How long a worker keeps its block memory with nothing to do.
const GIVE_BACK_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Waiting checks at which the helpers start taking them: one waiting
/// behind the first worker's is a wait of one hash at most; two are a queue.
pub const HELP_AT: usize = 2;

/// What a worker is given to do next.
enum Next {
    Job(Job),
    /// Nothing came within the wait.
    Idle,
    Closed,
}

/// Work waiting for a worker. Logins go first: a burst of sign-ups or
/// password changes (each a fresh hash) waits behind them, so it can slow
/// only itself, never someone signing in.
#[derive(Default)]
struct Queues {
    logins: VecDeque<Job>,
    new_hashes: VecDeque<Job>,
    closed: bool,
}

impl Queues {
    fn waiting(&self) -> usize {
        self.logins.len() + self.new_hashes.len()
    }
}

/// Which of the pool's threads a worker is.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// Takes every job.
    First,
    /// Takes a job only when [`HELP_AT`] wait.
    Helper,
}

struct Shared {
    queues: Mutex<Queues>,
    /// The first worker waits here.
    ready: Condvar,
    /// The helpers wait here, woken only when a queue forms.
    backlog: Condvar,
}

impl Shared {
    fn push(&self, job: Job, urgent: bool) -> Option<()> {
        let mut q = self.queues.lock().ok()?;
        if q.closed {
            return None;
        }
        if urgent {
            q.logins.push_back(job)
        } else {
            q.new_hashes.push_back(job)
        }
        let queue_formed = q.waiting() >= HELP_AT;
        drop(q);
        self.ready.notify_one();
        if queue_formed {
            self.backlog.notify_one();
        }
        Some(())
    }

    /// The next job for a worker of `role`, logins first, waiting at most
    /// `patience`.
    fn next(&self, role: Role, patience: std::time::Duration) -> Next {
        let Ok(mut q) = self.queues.lock() else { return Next::Closed };
        let deadline = std::time::Instant::now() + patience;
        let signal = if role == Role::First { &self.ready } else { &self.backlog };
        loop {
            let takes = role == Role::First || q.waiting() >= HELP_AT;
            if takes && let Some(job) = q.logins.pop_front().or_else(|| q.new_hashes.pop_front()) {
                return Next::Job(job);
            }
            if q.closed {
                return Next::Closed;
            }
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else { return Next::Idle };
            q = match signal.wait_timeout(q, left) {
                Ok((q, _)) => q,
                Err(_) => return Next::Closed,
            };
        }
    }
}

/// The pool. Dropping it lets the workers finish and exit.
pub struct PasswordChecker {
    shared: Arc<Shared>,
    admission: Arc<Semaphore>,
    new_hash_admission: Arc<Semaphore>,
}

impl Drop for PasswordChecker {
    fn drop(&mut self) {
        if let Ok(mut q) = self.shared.queues.lock() {
            q.closed = true;
        }
        self.shared.ready.notify_all();
        self.shared.backlog.notify_all();
    }
}

impl PasswordChecker {
    /// `workers` threads, each running `on_start` first; at most four checks
    /// (and as many new hashes) queued per worker beyond the ones running.
    pub fn new(workers: usize, on_start: Option<fn()>) -> PasswordChecker {
        let workers = workers.max(1);
        let shared =
            Arc::new(Shared { queues: Mutex::new(Queues::default()), ready: Condvar::new(), backlog: Condvar::new() });
        for n in 0..workers {
            let shared = shared.clone();
            let role = if n == 0 { Role::First } else { Role::Helper };
            let spawned = std::thread::Builder::new().name(format!("argon2-{n}")).spawn(move || {
                if let Some(start) = on_start {
                    start();
                }
                let mut memory = Vec::new();
                loop {
                    match shared.next(role, GIVE_BACK_AFTER) {
                        Next::Job(job) => job(&mut memory),
                        // Freed (a 19 MiB allocation goes back to the system
                        // at once); the next check allocates it again.
                        Next::Idle => memory = Vec::new(),
                        Next::Closed => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password-hashing thread: {e}");
            }
        }
        PasswordChecker {
            shared,
            admission: Arc::new(Semaphore::new(workers * 5)),
            new_hash_admission: Arc::new(Semaphore::new(workers * 5)),
        }
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
        self.shared.push(job, true)?;
        rx.await.ok()
    }

    /// Runs another slow login check (a SCRAM proof's key derivation) on
    /// the same threads and admission as a password check. `None` when the
    /// pool has shut down.
    pub async fn run<T: Send + 'static>(&self, check: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.admission.acquire().await.ok()?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |_| {
            let _ = tx.send(check());
        });
        self.shared.push(job, true)?;
        rx.await.ok()
    }

    /// A new Argon2id hash of `password` (sign-up, password change), on the
    /// same threads but behind every waiting login check. `None` when the
    /// pool has shut down.
    pub async fn hash(&self, password: String) -> Option<Result<String, SecretError>> {
        let _permit = self.new_hash_admission.acquire().await.ok()?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |_| {
            let _ = tx.send(crate::secrets::hash_password(&password));
        });
        self.shared.push(job, false)?;
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
        let made = pool.hash("fresh".into()).await.unwrap().unwrap();
        assert_eq!(pool.verify(vec!["fresh".into()], made).await, Some(true));
    }

    /// The names of the threads that ran `jobs` checks started together
    /// (each holding its thread for `hold`), or one after another.
    async fn threads_used(pool: &Arc<PasswordChecker>, jobs: usize, together: bool) -> Vec<String> {
        let hold = std::time::Duration::from_millis(20);
        let run = |pool: Arc<PasswordChecker>| async move {
            pool.run(move || {
                std::thread::sleep(hold);
                std::thread::current().name().unwrap_or("").to_string()
            })
            .await
            .unwrap()
        };
        let mut names = Vec::new();
        if together {
            let all: Vec<_> = (0..jobs).map(|_| tokio::spawn(run(pool.clone()))).collect();
            for job in all {
                names.push(job.await.unwrap());
            }
        } else {
            for _ in 0..jobs {
                names.push(run(pool.clone()).await);
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// Logins one at a time hash on the first thread only; a burst that
    /// queues gets the helpers too.
    #[tokio::test]
    async fn helpers_hash_only_when_checks_queue() {
        let pool = Arc::new(PasswordChecker::new(2, None));
        assert_eq!(threads_used(&pool, 6, false).await, ["argon2-0"]);
        assert_eq!(threads_used(&pool, 8, true).await, ["argon2-0", "argon2-1"]);
        // Back to one at a time: the first thread alone again.
        assert_eq!(threads_used(&pool, 4, false).await, ["argon2-0"]);
    }

    /// With the one worker busy, a login check queued after a new hash still
    /// runs before it.
    #[tokio::test]
    async fn a_login_check_overtakes_waiting_new_hashes() {
        let pool = Arc::new(PasswordChecker::new(1, None));
        let hash = hash_password("pw").unwrap();
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel();
        // Occupy the worker until told to go on.
        pool.shared
            .push(
                Box::new(move |_| {
                    let _ = started_tx.send(());
                    let _ = hold_rx.recv();
                }),
                true,
            )
            .unwrap();
        started_rx.await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let sign_ups: Vec<_> = (0..3)
            .map(|i| {
                let (pool, order) = (pool.clone(), order.clone());
                tokio::spawn(async move {
                    pool.hash(format!("new-{i}")).await;
                    order.lock().unwrap().push("sign-up");
                })
            })
            .collect();
        // Every sign-up is queued before the login arrives.
        while pool.shared.queues.lock().unwrap().new_hashes.len() < 3 {
            tokio::task::yield_now().await;
        }
        let login = {
            let (pool, order) = (pool.clone(), order.clone());
            tokio::spawn(async move {
                assert_eq!(pool.verify(vec!["pw".into()], hash).await, Some(true));
                order.lock().unwrap().push("login");
            })
        };
        while pool.shared.queues.lock().unwrap().logins.is_empty() {
            tokio::task::yield_now().await;
        }
        hold_tx.send(()).unwrap();
        login.await.unwrap();
        for s in sign_ups {
            s.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "login");
    }
}
