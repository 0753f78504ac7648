//! The priority of the password-hashing threads: the one system call about
//! them the domain cannot make (it forbids `unsafe`), so msnd hands the
//! backend this function to run at each thread's start.

/// Lowers the calling thread's priority (nice +10); msnd's password-hashing
/// threads call it first. With both cores busy, a burst of Passport logins
/// then slows down rather than stalling the presence and messages of users
/// already online, and an idle core still gives the hashing all of itself.
/// Best effort: where the system refuses, the thread keeps its priority.
pub fn yield_to_connections() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: two system calls about the calling thread; no memory is
        // passed to the kernel.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10) };
        if result != 0 {
            tracing::debug!("cannot lower the hashing threads' priority: {}", std::io::Error::last_os_error());
        }
    }
}
