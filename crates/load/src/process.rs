//! The server's memory and CPU, read from `/proc` (Linux).

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Usage {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// The anonymous part of it (`RssAnon`): memory the process allocated,
    /// without its executable's resident pages, which vary with what code
    /// has run (docs/PERFORMANCE.md, the idle server's fixed cost).
    pub anon_bytes: u64,
    /// User + system CPU time since the process started, seconds.
    pub cpu_seconds: f64,
}

/// Reads `/proc/PID/status` and `/proc/PID/stat`; `None` where there is no
/// `/proc` or no such process.
pub fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| -> Option<u64> {
        status.lines().find_map(|l| l.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()
    };
    let rss_kib = kib("VmRSS:")?;
    let anon_kib = kib("RssAnon:").unwrap_or(rss_kib);
    let cpu_seconds = cpu_of(&format!("/proc/{pid}/stat"))?;
    Some(Usage { rss_bytes: rss_kib * 1024, anon_bytes: anon_kib * 1024, cpu_seconds })
}

/// The CPU seconds of msnd's password-hashing threads (`argon2-N`): a
/// Passport login's CPU less this is the rest of the login (zero for
/// another server). Read apart from [`usage`], which the sampler calls
/// often: this reads a file per thread.
pub fn hashing_cpu(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("argon2-")))
        .filter_map(|t| cpu_of(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// User + system CPU seconds from a `stat` file (a process's or a thread's).
fn cpu_of(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the state.
    let (utime, stime) = (ticks(11)?, ticks(12)?);
    Some((utime + stime) as f64 / clock_ticks())
}

/// How many files a process holds open (its sockets among them).
pub fn open_files(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The processes whose command name is `name` (`postgres`, `nats-server`).
pub fn named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .collect()
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux we run on; no libc call for one number.
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_its_own_process() {
        if std::path::Path::new("/proc/self/stat").exists() {
            let u = super::usage(std::process::id()).expect("own usage");
            assert!(u.rss_bytes > 0);
            // A thread named as msnd's hashing threads are is counted apart.
            let spin = std::thread::Builder::new()
                .name("argon2-test".into())
                .spawn(|| {
                    let start = std::time::Instant::now();
                    let mut x = 0u64;
                    while start.elapsed() < std::time::Duration::from_millis(300) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                    let hashing = super::hashing_cpu(std::process::id());
                    (hashing, super::usage(std::process::id()).expect("own usage"))
                })
                .unwrap();
            let (hashing, during) = spin.join().unwrap();
            assert!(hashing > 0.0, "{during:?}");
            assert!(hashing <= during.cpu_seconds);
        }
    }
}
