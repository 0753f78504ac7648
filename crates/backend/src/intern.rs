//! One shared copy of each handle key that the lists in memory hold.
//!
//! Every online user's lists name their contacts by handle key, and the same
//! handles recur across many lists: with ten contacts each, 100,000 users
//! hold a million keys for 100,000 handles. Interned, a handle is stored once
//! however many lists hold it, and a list entry costs a pointer.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use parking_lot::Mutex;

const SHARDS: usize = 16;

/// One interned handle. An `Arc` of a boxed `str` rather than an `Arc<str>`:
/// a thin pointer, so each of the many list entries naming the handle keeps
/// 8 bytes instead of 16, for one 16-byte box per handle.
type Shared = Arc<Box<str>>;

/// How the interner's set finds a handle by its text.
#[derive(PartialEq, Eq, Hash)]
struct Interned(Shared);

impl Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The handles held by at least one [`Key`], sharded so that sign-ins on
/// both cores rarely meet.
static INTERNED: LazyLock<Vec<Mutex<HashSet<Interned>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect());

fn shard(key: &str) -> &'static Mutex<HashSet<Interned>> {
    let h = crate::fnv1a(key.as_bytes());
    &INTERNED[(h as usize) % SHARDS]
}

/// A handle key shared with every other list that holds the same handle.
/// Forgotten by the interner when the last `Key` for it is dropped.
/// (Always `Some`; `None` only inside `drop`.)
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key(Option<Shared>);

/// Hashed as its text, so that a map keyed by `Key` is searched by `&str`.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self
    }
}

impl Key {
    pub fn new(key: &str) -> Key {
        let mut set = shard(key).lock();
        if let Some(shared) = set.get(key) {
            return Key(Some(shared.0.clone()));
        }
        let shared: Shared = Arc::new(key.into());
        set.insert(Interned(shared.clone()));
        Key(Some(shared))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        let Some(mine) = self.0.take() else { return };
        // Counted and released under the shard's lock: a new key for the
        // handle is made only under it, and a clone only from a live key,
        // which the count includes. So two owners (the interner and this
        // key) means this is the last key, even when others drop at once.
        let mut set = shard(&mine).lock();
        if Arc::strong_count(&mine) == 2 {
            set.remove(&**mine);
        }
        drop(mine);
    }
}

impl std::ops::Deref for Key {
    type Target = str;

    fn deref(&self) -> &str {
        self.0.as_deref().map(|b| &**b).unwrap_or_default()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// How many handles are interned now (for tests and the curious).
pub fn interned() -> usize {
    INTERNED.iter().map(|s| s.lock().len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(key: &str) -> bool {
        shard(key).lock().contains(key)
    }

    #[test]
    fn one_copy_per_handle_while_any_key_holds_it() {
        let a = Key::new("intern-a@x.com");
        let b = Key::new("intern-a@x.com");
        assert!(Arc::ptr_eq(a.0.as_ref().unwrap(), b.0.as_ref().unwrap()), "the same allocation");
        assert_eq!(std::mem::size_of::<Key>(), 8, "a thin pointer");
        assert_eq!(&*a, "intern-a@x.com");
        drop(a);
        assert!(held("intern-a@x.com"), "b still holds it");
        let c = b.clone();
        drop(b);
        assert!(held("intern-a@x.com"), "c still holds it");
        drop(c);
        assert!(!held("intern-a@x.com"), "forgotten with the last key");
    }

    #[test]
    fn keys_made_and_dropped_on_many_threads_leave_nothing_behind() {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..2_000 {
                        let keys: Vec<Key> =
                            (0..8).map(|i| Key::new(&format!("race{}@x.com", (i + round + t) % 5))).collect();
                        drop(keys);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for i in 0..5 {
            assert!(!held(&format!("race{i}@x.com")));
        }
    }
}
