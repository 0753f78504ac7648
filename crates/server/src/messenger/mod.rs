//! The web messenger: chat from a browser at `/messenger`, served by msnd
//! on its HTTP and HTTPS listeners, as a client of the same network.
//!
//! - `routes`: the pages (sign-in, the messenger, sign-out), the embedded
//!   assets and contacts' pictures, on the axum router.
//! - `socket`: the live channel, one WebSocket per page (`webchat` frames),
//!   taken over from the HTTP front after the handshake.
//! - `page`: one page's sign-in, an endpoint of the account like an MSNP21
//!   machine; its frames are turned into domain calls (one `match`) and
//!   the domain's events into frames. A page outlives its socket for a
//!   while, so that one that lost its connection comes back to what it
//!   missed.
//! - `translate`: states and contacts between the domain and the frames.

mod assets;
mod html;
mod page;
mod routes;
mod socket;
mod translate;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

pub use routes::routes;
pub use socket::{SOCKET_PATH, serve_socket};

/// The cookie a signed-in browser holds.
const COOKIE: &str = "msnd_messenger";
/// How long a browser stays signed in without signing in again.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a page's sign-in waits for it to come back after its socket
/// closed (a network drop, a laptop lid) before signing out.
const COME_BACK_WITHIN: Duration = Duration::from_secs(60);
/// How many message ids of an account are remembered, so that a message a
/// page sends again after a drop is not delivered twice.
const REMEMBERED_SENDS: usize = 256;
/// How long they are remembered.
const REMEMBER_SENDS_FOR: Duration = Duration::from_secs(600);
/// The most pages one account may have open at once.
const MAX_PAGES_PER_ACCOUNT: usize = 8;

/// The live pages of this node, by the name the server gave each.
pub struct Pages {
    open: parking_lot::Mutex<HashMap<String, PageHandle>>,
    sent: parking_lot::Mutex<SentIds>,
    tracker: TaskTracker,
    shutdown: watch::Receiver<bool>,
}

/// Ids of messages pages sent, per account, with when they came.
#[derive(Default)]
struct SentIds {
    by_account: HashMap<String, VecDeque<(String, Instant)>>,
    /// When accounts whose ids had all expired were last dropped.
    swept: Option<Instant>,
}

/// How a socket reaches a page's task.
#[derive(Clone)]
struct PageHandle {
    /// The account's key.
    account: String,
    /// The browser session it was opened under ([`session_id`]).
    session: String,
    input: mpsc::Sender<page::Input>,
}

/// A session cookie's id among the pages: a digest, so that the cookies
/// themselves are not kept.
fn session_id(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Pages {
    pub fn new(tracker: TaskTracker, shutdown: watch::Receiver<bool>) -> Pages {
        Pages { open: Default::default(), sent: Default::default(), tracker, shutdown }
    }

    /// The page `name` of `account`, if it is still open.
    fn find(&self, name: &str, account: &str) -> Option<PageHandle> {
        self.open.lock().get(name).filter(|p| p.account == account).cloned()
    }

    fn count_of(&self, account: &str) -> usize {
        self.open.lock().values().filter(|p| p.account == account).count()
    }

    /// Ends the pages of a browser session that signs out.
    fn sign_out_session(&self, token: &str) {
        let session = session_id(token);
        for page in self.open.lock().values().filter(|p| p.session == session) {
            let _ = page.input.try_send(page::Input::SignOut);
        }
    }

    fn insert(&self, name: String, handle: PageHandle) {
        self.open.lock().insert(name, handle);
    }

    fn remove(&self, name: &str) {
        self.open.lock().remove(name);
    }

    /// Whether `id` is new for `account` (then it is remembered): a message
    /// id seen before is one a page sends again.
    fn first_send(&self, account: &str, id: &str) -> bool {
        let now = Instant::now();
        let mut guard = self.sent.lock();
        let SentIds { by_account: sent, swept } = &mut *guard;
        // Accounts that sent nothing for a while are dropped at most once a
        // minute, not on every message.
        if swept.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60)) {
            sent.retain(|_, ids| ids.back().is_some_and(|(_, at)| now.duration_since(*at) < REMEMBER_SENDS_FOR));
            *swept = Some(now);
        }
        let ids = sent.entry(account.to_string()).or_default();
        while ids.front().is_some_and(|(_, at)| now.duration_since(*at) >= REMEMBER_SENDS_FOR) {
            ids.pop_front();
        }
        if ids.iter().any(|(seen, _)| seen == id) {
            return false;
        }
        if ids.len() == REMEMBERED_SENDS {
            ids.pop_front();
        }
        ids.push_back((id.to_string(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_acted_on_once_per_account() {
        let (_tx, rx) = watch::channel(false);
        let pages = Pages::new(TaskTracker::new(), rx);
        assert!(pages.first_send("a@example.com", "m1"));
        assert!(!pages.first_send("a@example.com", "m1"));
        assert!(pages.first_send("b@example.com", "m1"), "ids are per account");
        for n in 0..REMEMBERED_SENDS {
            pages.first_send("a@example.com", &format!("x{n}"));
        }
        assert!(pages.first_send("a@example.com", "m1"), "the oldest is forgotten past the limit");
    }
}
