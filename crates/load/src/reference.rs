//! The machine's pace: a fixed piece of CPU work timed before each run, so
//! that figures taken on different days or machines can be told apart from
//! a regression. A run's figure divided by its reference is comparable
//! across machines of the same kind; a change in that ratio is the
//! server's, a change in the reference alone is the machine's.

use std::time::Instant;

use sha2::{Digest, Sha256};

/// Bytes hashed and numbers sorted by one round of the work.
const HASHED: usize = 32 << 20;
const SORTED: usize = 1 << 20;

/// The work itself: SHA-256 over 32 MiB in 4 KiB pieces (the shape of
/// parsing and sealing), then sorting a million pseudo-random numbers (the
/// shape of allocation and branchy code). Returns a digest so that none of
/// it can be optimised away.
fn work() -> u64 {
    let block = [0x5au8; 4096];
    let mut hasher = Sha256::new();
    for _ in 0..HASHED / block.len() {
        hasher.update(block);
    }
    let digest = hasher.finalize();
    let mut state = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    let mut numbers: Vec<u64> = (0..SORTED)
        .map(|_| {
            // xorshift: cheap, deterministic.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        })
        .collect();
    numbers.sort_unstable();
    numbers[SORTED / 2]
}

/// The work's time on one core, in milliseconds: the best of three, so
/// that a moment's noise from other processes counts as little as it can.
pub fn milliseconds() -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(work());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_work_is_the_same_every_time() {
        assert_eq!(super::work(), super::work());
    }
}
