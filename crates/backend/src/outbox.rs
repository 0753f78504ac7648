//! The queue of events waiting for one connection.
//!
//! A tokio bounded channel allocates its first block of 32 slots when it is
//! created: about 3 KiB per signed-in user for an `NsEvent` queue that is
//! empty nearly all the time. This queue allocates only while something is
//! waiting and gives the memory back as soon as it drains.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use parking_lot::Mutex;

/// A bounded single-consumer queue. Clones share the queue: any clone may
/// push; one task receives.
pub struct Outbox<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    queue: Mutex<VecDeque<T>>,
    /// The one receiver's waker. Not a `Notify`: waiting on one keeps a
    /// `Notified` of 80-odd bytes in every idle connection's future; this
    /// keeps the waker here, and the receiving future is a reference.
    ready: AtomicWaker,
    capacity: usize,
    /// An item was refused for want of room: the receiver is not keeping
    /// up, and its connection is to close once the queue is drained.
    overflowed: AtomicBool,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Outbox { inner: self.inner.clone() }
    }
}

impl<T> std::fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("len", &self.len()).field("capacity", &self.inner.capacity).finish()
    }
}

impl<T> Outbox<T> {
    /// A queue that refuses items beyond `capacity`.
    pub fn new(capacity: usize) -> Outbox<T> {
        Outbox {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                ready: AtomicWaker::new(),
                capacity: capacity.max(1),
                overflowed: AtomicBool::new(false),
            }),
        }
    }

    /// Queues an item, or gives it back when the queue is full (the
    /// receiver is not keeping up; it is then told so by [`Outbox::recv`]).
    pub fn try_push(&self, item: T) -> Result<(), T> {
        {
            let mut q = self.inner.queue.lock();
            if q.len() >= self.inner.capacity {
                self.inner.overflowed.store(true, Ordering::Relaxed);
                drop(q);
                self.inner.ready.wake();
                return Err(item);
            }
            q.push_back(item);
        }
        // The receiver checks the queue again after registering its waker,
        // so no wake-up is lost when it is not waiting yet.
        self.inner.ready.wake();
        Ok(())
    }

    /// The next item, waiting for one; `None` once an item was refused for
    /// want of room and everything queued before has been taken (the one
    /// signal a receiver needs, so that an idle connection waits on one
    /// future, not two). Cancel-safe: an item is taken only in the same poll
    /// that returns it.
    pub fn recv(&self) -> impl Future<Output = Option<T>> + '_ {
        std::future::poll_fn(move |cx| self.poll_recv(cx))
    }

    /// [`Outbox::recv`] as a poll.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(ready) = self.ready_now() {
            return Poll::Ready(ready);
        }
        self.inner.ready.register(cx.waker());
        // Again: an item pushed before the waker was registered woke no one.
        match self.ready_now() {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    /// What `recv` returns if it need not wait.
    fn ready_now(&self) -> Option<Option<T>> {
        if let Some(item) = self.pop() {
            return Some(Some(item));
        }
        self.inner.overflowed.load(Ordering::Relaxed).then_some(None)
    }

    /// Wakes the receiver with nothing new in the queue, for it to look at
    /// something else it waits on.
    pub fn wake(&self) {
        self.inner.ready.wake();
    }

    /// The next item if one is waiting.
    pub fn pop(&self) -> Option<T> {
        let mut q = self.inner.queue.lock();
        let item = q.pop_front();
        // A drained queue keeps nothing: even four slots of a large event
        // are half a kilobyte, kept by every user who ever received one,
        // and an allocation per burst of events costs far less.
        if q.is_empty() && q.capacity() > 0 {
            *q = VecDeque::new();
        }
        item
    }

    pub fn len(&self) -> usize {
        self.inner.queue.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_and_in_order() {
        let q = Outbox::new(2);
        assert!(q.try_push(1).is_ok());
        assert!(q.try_push(2).is_ok());
        assert_eq!(q.try_push(3), Err(3));
        assert_eq!((q.pop(), q.pop(), q.pop()), (Some(1), Some(2), None));
    }

    #[tokio::test]
    async fn an_overflow_is_told_after_what_was_queued_before_it() {
        let q = Outbox::new(2);
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        assert_eq!(q.try_push(3), Err(3));
        assert_eq!(q.recv().await, Some(1));
        assert_eq!(q.recv().await, Some(2));
        assert_eq!(q.recv().await, None, "then the overflow");
    }

    #[test]
    fn gives_memory_back_after_a_burst() {
        let q = Outbox::new(1000);
        for i in 0..500 {
            q.try_push(i).unwrap();
        }
        while q.pop().is_some() {}
        assert_eq!(q.inner.queue.lock().capacity(), 0);
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_none_is_lost() {
        let q = Outbox::new(100);
        let tx = q.clone();
        let sender = tokio::spawn(async move {
            for i in 0..50 {
                tx.try_push(i).unwrap();
                if i % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let mut got = Vec::new();
        while got.len() < 50 {
            got.push(tokio::time::timeout(Duration::from_secs(5), q.recv()).await.expect("woken").expect("an item"));
        }
        sender.await.unwrap();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    }

    /// The receiver's waker is registered, then the queue checked again:
    /// items pushed from another thread at any moment wake it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushes_from_another_thread_never_leave_the_receiver_asleep() {
        let q = Outbox::new(100_000);
        let tx = q.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..20_000 {
                tx.try_push(i).unwrap();
                if i % 1_000 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < 20_000 {
            let item = tokio::time::timeout(Duration::from_secs(10), q.recv()).await.expect("woken");
            assert_eq!(item, Some(next));
            next += 1;
        }
        sender.join().unwrap();
    }
}
