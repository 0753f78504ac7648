//! The session directory on the bus.
//!
//! Every sign-in and sign-out is written to the JetStream key-value bucket
//! `<cluster>_sessions`, which keeps the directory for nodes that start
//! later. The other nodes do not watch the bucket: each write would be one
//! message to every node, and in a run of 100,000 sign-ins on nine nodes
//! that traffic was the bus's largest cost. Instead one task per node
//! writes whatever sign-ins and sign-outs are waiting, all at once, and
//! then tells every node the lot in one signed message on `<cluster>.seats`
//! (so the batches grow with the load, and nothing waits when it is
//! light). A node reads the whole bucket when it starts and again whenever
//! its connection to the bus comes back, since batches sent while it was
//! away are lost to it. Each change carries its bucket revision, so
//! [`Seats`] orders them whichever way they came.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};

use crate::bus_seal::{BusSeal, Stream, opened};
use crate::seats::{Seat, SeatChange, Seats, rounds};

/// Changes told in one message: about 200 bytes each, far under the 1 MiB
/// a NATS message may carry.
const MOST_PER_BATCH: usize = 512;

/// What the directory's writer does, in order.
pub enum SeatWrite {
    Seat(String, Seat),
    /// Ends the seat only if it is still this sign-in's (`node`, `session`):
    /// a newer sign-in elsewhere must stay.
    Unseat {
        key: String,
        node: String,
        session: u64,
    },
    /// Answered once everything queued before it is written and told.
    Flush(oneshot::Sender<()>),
}

impl SeatWrite {
    fn key(&self) -> &str {
        match self {
            SeatWrite::Seat(key, _) | SeatWrite::Unseat { key, .. } => key,
            SeatWrite::Flush(_) => "",
        }
    }
}

/// The subject a bucket entry is signed for.
fn entry_subject(key: &str) -> String {
    format!("seat.{key}")
}

/// Bucket keys: handles hold `@` and other characters NATS keys may not,
/// so they travel hex-encoded.
fn bucket_key(handle_key: &str) -> String {
    hex::encode(handle_key.as_bytes())
}

fn handle_of_bucket_key(key: &str) -> Option<String> {
    String::from_utf8(hex::decode(key).ok()?).ok()
}

/// The first wait before failed writes are tried again; it doubles with
/// each batch that fails again, up to [`RETRY_MOST`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MOST: Duration = Duration::from_secs(2);

/// What one write to the bucket came to.
enum Written {
    /// Written: the change to tell every node.
    Changed(SeatChange),
    /// Nothing to write (the seat was already someone else's, or gone).
    Unchanged,
    /// The bus did not answer (a timeout, a lost connection): to be tried
    /// again, or a sign-in would stay unknown to the other nodes for good.
    Failed,
}

/// Writes the queued sign-ins and sign-outs, and tells every node what was
/// written on `subject`, until the queue closes. A write the bus did not
/// answer is tried again, before anything queued after it for the same
/// user, until it is written; a flush is answered once nothing queued
/// before it is waiting to be tried again.
pub async fn writer(
    client: async_nats::Client,
    bucket: kv::Store,
    mut queue: mpsc::UnboundedReceiver<SeatWrite>,
    seats: Arc<Seats>,
    seal: Arc<BusSeal>,
    subject: String,
) {
    // Failed writes, in the order they were queued; tried first.
    let mut again: Vec<SeatWrite> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut pause = RETRY_FIRST;
    loop {
        let mut waiting = std::mem::take(&mut again);
        if waiting.is_empty() {
            match queue.recv().await {
                Some(first) => waiting.push(first),
                None => return,
            }
        }
        while waiting.len() < MOST_PER_BATCH {
            match queue.try_recv() {
                Ok(write) => waiting.push(write),
                Err(_) => break,
            }
        }
        let mut writes = Vec::with_capacity(waiting.len());
        for write in waiting {
            match write {
                SeatWrite::Flush(done) => flushes.push(done),
                write => writes.push(write),
            }
        }
        let mut changes = Vec::with_capacity(writes.len());
        // Users with a write that failed: their later writes wait behind it.
        let mut held_back: HashSet<String> = HashSet::new();
        for round in rounds(writes, SeatWrite::key) {
            let (now, later): (Vec<_>, Vec<_>) = round.into_iter().partition(|w| !held_back.contains(w.key()));
            again.extend(later);
            let written = futures::future::join_all(now.iter().map(|w| write(&bucket, &seats, &seal, w))).await;
            for (w, written) in now.into_iter().zip(written) {
                match written {
                    // Held here at once, so that a sign-out in the next
                    // round knows the revision it is conditional on.
                    Written::Changed(change) => {
                        seats.apply(change.clone());
                        changes.push(change);
                    }
                    Written::Unchanged => {}
                    Written::Failed => {
                        held_back.insert(w.key().to_string());
                        again.push(w);
                    }
                }
            }
        }
        if !changes.is_empty() {
            match serde_json::to_vec(&changes) {
                Ok(body) => {
                    let frame = seal.seal(Stream::Seats, &subject, &body);
                    if let Err(e) = client.publish(subject.clone(), frame.into()).await {
                        tracing::warn!("cluster: cannot tell the directory's changes: {e}");
                    }
                }
                Err(e) => tracing::error!("cluster: cannot encode the directory's changes: {e}"),
            }
        }
        if again.is_empty() {
            pause = RETRY_FIRST;
            if !flushes.is_empty() {
                let _ = client.flush().await;
                for done in flushes.drain(..) {
                    let _ = done.send(());
                }
            }
        } else {
            tracing::warn!("cluster: {} directory writes failed; trying again in {pause:?}", again.len());
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MOST);
        }
    }
}

/// One write to the bucket, and the change it made.
async fn write(bucket: &kv::Store, seats: &Seats, seal: &BusSeal, write: &SeatWrite) -> Written {
    match write {
        SeatWrite::Seat(key, seat) => {
            let Ok(body) = serde_json::to_vec(seat) else { return Written::Unchanged };
            let value = seal.seal(Stream::Seats, &entry_subject(key), &body);
            match bucket.put(bucket_key(key), value.into()).await {
                Ok(revision) => Written::Changed(SeatChange { key: key.clone(), revision, seat: Some(seat.clone()) }),
                Err(e) => {
                    tracing::debug!("cluster: cannot record a sign-in: {e}");
                    Written::Failed
                }
            }
        }
        SeatWrite::Unseat { key, node, session } => {
            let name = bucket_key(key);
            // A signed empty value, written only if nobody wrote since the
            // seat's own write: a sign-in elsewhere in between stays.
            let empty = || seal.seal(Stream::Seats, &entry_subject(key), b"");
            // The seat's revision as this node last heard it: if that is
            // still the bucket's, one write does it, with no read first.
            if let Some(known) = seats.revision_of(key, node, *session)
                && let Ok(revision) = bucket.update(name.clone(), empty().into(), known).await
            {
                return Written::Changed(SeatChange { key: key.clone(), revision, seat: None });
            }
            // Someone wrote since, or the seat's revision is not known here:
            // what the bucket holds decides.
            let entry = match bucket.entry(name.clone()).await {
                Ok(Some(entry)) => entry,
                Ok(None) => return Written::Unchanged,
                Err(e) => {
                    tracing::debug!("cluster: cannot read a seat to end it: {e}");
                    return Written::Failed;
                }
            };
            let Some(seat) = seal
                .open_state(&entry_subject(key), &entry.value)
                .ok()
                .and_then(|body| serde_json::from_slice::<Seat>(body).ok())
            else {
                return Written::Unchanged;
            };
            if seat.node != *node || seat.session != *session {
                return Written::Unchanged;
            }
            // Fails too if someone wrote since the read: tried again, the
            // bucket decides anew.
            match bucket.update(name, empty().into(), entry.revision).await {
                Ok(revision) => Written::Changed(SeatChange { key: key.clone(), revision, seat: None }),
                Err(e) => {
                    tracing::debug!("cluster: cannot end a seat: {e}");
                    Written::Failed
                }
            }
        }
        SeatWrite::Flush(_) => Written::Unchanged,
    }
}

/// Applies the batches other nodes tell (and this node's own) until the
/// subscription ends.
pub async fn listen(
    mut batches: async_nats::Subscriber,
    seats: Arc<Seats>,
    seal: Arc<BusSeal>,
    rejected: Arc<AtomicU64>,
) {
    while let Some(message) = batches.next().await {
        let Some(body) = opened(&seal, &rejected, Stream::Seats, message.subject.as_str(), &message.payload) else {
            continue;
        };
        match serde_json::from_slice::<Vec<SeatChange>>(body) {
            Ok(changes) => {
                for change in changes {
                    seats.apply(change);
                }
            }
            Err(e) => tracing::warn!("cluster: unreadable directory changes: {e}"),
        }
    }
}

/// Keeps `seats` whole: reads the bucket now (then says so on `loaded`)
/// and again whenever batches may have been lost (a reconnection to the
/// bus, messages the client dropped), told on `batches_lost` (the first
/// connection counts as one too).
pub async fn keep_whole(
    bucket: kv::Store,
    seats: Arc<Seats>,
    seal: Arc<BusSeal>,
    rejected: Arc<AtomicU64>,
    mut batches_lost: mpsc::UnboundedReceiver<()>,
    loaded: oneshot::Sender<()>,
) {
    let mut loaded = Some(loaded);
    loop {
        // Losses told before this read began are covered by it.
        while batches_lost.try_recv().is_ok() {}
        match read_bucket(&bucket, &seats, &seal, &rejected).await {
            Ok(read) => tracing::debug!("cluster: read {read} directory entries"),
            Err(e) => tracing::warn!("cluster: cannot read the session directory: {e}"),
        }
        if let Some(done) = loaded.take() {
            let _ = done.send(());
        }
        if batches_lost.recv().await.is_none() {
            return;
        }
    }
}

/// Reads every entry of the bucket into `seats`; returns how many.
pub async fn read_bucket(
    bucket: &kv::Store,
    seats: &Seats,
    seal: &BusSeal,
    rejected: &AtomicU64,
) -> Result<usize, async_nats::Error> {
    // A watch of an empty bucket yields nothing to say it has caught up.
    if bucket.status().await?.values() == 0 {
        return Ok(0);
    }
    let mut watch = bucket.watch_with_history(">").await?;
    let mut read = 0;
    while let Some(entry) = watch.next().await {
        let entry = entry?;
        read += 1;
        if let Some(change) = change_of_entry(&entry, seal, rejected) {
            seats.apply(change);
        }
        // The last entry that existed when the watch began.
        if entry.delta == 0 {
            break;
        }
    }
    Ok(read)
}

/// The change a bucket entry records. Deletes, purges and the signed empty
/// value of a sign-out all end a seat; a value not signed by a node is
/// refused and changes nothing.
fn change_of_entry(entry: &kv::Entry, seal: &BusSeal, rejected: &AtomicU64) -> Option<SeatChange> {
    let key = handle_of_bucket_key(&entry.key)?;
    let seat = match entry.operation {
        kv::Operation::Put => match seal.open_state(&entry_subject(&key), &entry.value) {
            Ok(body) => serde_json::from_slice::<Seat>(body).ok(),
            Err(why) => {
                rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("cluster: refused a directory entry ({why:?})");
                return None;
            }
        },
        _ => None,
    };
    Some(SeatChange { key, revision: entry.revision, seat })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_round_trip_and_are_valid_nats_keys() {
        for handle in ["alice@example.com", "o'neil+x@host.example", "ü@x.y"] {
            let key = bucket_key(handle);
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(handle_of_bucket_key(&key).as_deref(), Some(handle));
        }
    }
}
