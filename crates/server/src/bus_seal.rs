//! Signed frames on the cluster bus.
//!
//! Anyone who can publish on the NATS server (another tenant of a shared
//! one, a leaked credential) could otherwise deliver any event to any user
//! as any node, end sign-ins, or replay what it recorded. Every frame is
//! signed with a key derived from the server key all nodes share, and
//! bound to the subject it was sent on; frames that carry events are also
//! fresh (sent within [`FRESHNESS`]) and seen once (each sender numbers its
//! frames on each [`Stream`]; a receiver remembers the last [`WINDOW`]
//! numbers of each sender on each).
//!
//! The window is per stream because a receiver reads each stream in a task
//! of its own: when one falls behind (a burst of envelopes while requests
//! keep flowing) its frames are numbers the sender has long passed on the
//! others, and one window for all of them refused them as replays (146
//! presence and list events lost on one node in a 6,000-user run).
//!
//! A frame: `mac (32) | epoch (8) | sequence (8) | sent, Unix ms (8) | body`,
//! the MAC being HMAC-SHA256 over `subject 0x00 epoch sequence sent body`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

const MAC_LEN: usize = 32;
const HEADER_LEN: usize = MAC_LEN + 24;

/// How old (or how far ahead, for clock skew) a frame may be.
pub const FRESHNESS: Duration = Duration::from_secs(60);

/// Frame numbers remembered per sender: frames of one sender may arrive
/// this far out of order (they travel on several subjects).
pub const WINDOW: u64 = 4096;

/// What a receiver reads in one task, in the order its senders sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// One-way envelopes to this node.
    Envelopes,
    /// Envelopes to every node.
    Broadcasts,
    /// Questions to this node.
    Requests,
    /// Answers to this node's questions.
    Replies,
    Heartbeats,
    /// The session directory's batches.
    Seats,
}

/// How many [`Stream`]s there are.
const STREAMS: usize = 6;

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    BadSignature,
    Stale,
    Replayed,
}

/// Signs what this node sends and checks what it receives.
pub struct BusSeal {
    key: [u8; 32],
    /// Tells this run of the node from its earlier ones (its numbers start
    /// again at zero).
    epoch: u64,
    /// Numbers frames per stream: frames of one stream sent from different
    /// tasks (heartbeats sent at once, obituaries queued) may arrive out of
    /// order, and only that stream's own frames may come between.
    sequences: [AtomicU64; STREAMS],
    /// By sender (its epoch) and stream.
    seen: Mutex<HashMap<(u64, Stream), Seen>>,
}

/// One sender's (one epoch's) recent frame numbers.
struct Seen {
    highest: u64,
    /// Bit `i` set: frame `highest - i` was seen.
    bits: Vec<u64>,
    last: Instant,
}

impl Seen {
    fn new(sequence: u64) -> Seen {
        let mut s = Seen { highest: sequence, bits: vec![0; (WINDOW / 64) as usize], last: Instant::now() };
        s.bits[0] = 1;
        s
    }

    /// Records `sequence`; false if it was seen or is too old to tell.
    fn record(&mut self, sequence: u64) -> bool {
        self.last = Instant::now();
        if sequence > self.highest {
            let shift = sequence - self.highest;
            self.shift(shift);
            self.highest = sequence;
            self.bits[0] |= 1;
            return true;
        }
        let age = self.highest - sequence;
        if age >= WINDOW {
            return false;
        }
        let (word, bit) = ((age / 64) as usize, age % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return false;
        }
        self.bits[word] |= 1 << bit;
        true
    }

    /// Ages every remembered number by `n`.
    fn shift(&mut self, n: u64) {
        if n >= WINDOW {
            self.bits.iter_mut().for_each(|w| *w = 0);
            return;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let len = self.bits.len();
        for i in (0..len).rev() {
            let from = i.checked_sub(words);
            let mut v = from.map_or(0, |f| self.bits[f] << bits);
            if bits > 0
                && let Some(f) = from.and_then(|f| f.checked_sub(1))
            {
                v |= self.bits[f] >> (64 - bits);
            }
            self.bits[i] = v;
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl BusSeal {
    pub fn new(key: [u8; 32]) -> BusSeal {
        BusSeal { key, epoch: rand::random(), sequences: Default::default(), seen: Mutex::new(HashMap::new()) }
    }

    fn mac(&self, subject: &str, header: &[u8], body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(subject.as_bytes());
        mac.update(&[0]);
        mac.update(header);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The frame that carries `body` on `subject`, numbered on `stream`
    /// (the receiver reads `subject` as that stream).
    pub fn seal(&self, stream: Stream, subject: &str, body: &[u8]) -> Vec<u8> {
        let sequence = self.sequences[stream as usize].fetch_add(1, Ordering::Relaxed);
        let mut header = [0u8; 24];
        header[..8].copy_from_slice(&self.epoch.to_be_bytes());
        header[8..16].copy_from_slice(&sequence.to_be_bytes());
        header[16..].copy_from_slice(&now_ms().to_be_bytes());
        let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
        frame.extend_from_slice(&self.mac(subject, &header, body));
        frame.extend_from_slice(&header);
        frame.extend_from_slice(body);
        frame
    }

    /// The body of a frame signed for `subject`, checked only for its
    /// signature (directory entries: they are state, not events, and an
    /// old one says no more than the directory did then).
    pub fn open_state<'a>(&self, subject: &str, frame: &'a [u8]) -> Result<&'a [u8], Refusal> {
        if frame.len() < HEADER_LEN {
            return Err(Refusal::Malformed);
        }
        let (mac, rest) = frame.split_at(MAC_LEN);
        let (header, body) = rest.split_at(24);
        let expected = self.mac(subject, header, body);
        if !backend::secrets::constant_time_eq(mac, &expected) {
            return Err(Refusal::BadSignature);
        }
        Ok(body)
    }

    /// The body of a frame received on `subject`, read on `stream`:
    /// signed, fresh, and not seen before.
    pub fn open<'a>(&self, stream: Stream, subject: &str, frame: &'a [u8]) -> Result<&'a [u8], Refusal> {
        let body = self.open_state(subject, frame)?;
        let field = |at: usize| header_field(frame, at).expect("a signed frame has its header");
        let (epoch, sequence, sent) = (field(0), field(8), field(16));
        let now = now_ms();
        let skew = FRESHNESS.as_millis() as u64;
        if sent + skew < now || sent > now + skew {
            return Err(Refusal::Stale);
        }
        let mut seen = self.seen.lock();
        // Senders not heard for twice the freshness window are forgotten:
        // any frame of theirs old enough to replay is refused as stale.
        if seen.len() > 64 * STREAMS {
            seen.retain(|_, s| s.last.elapsed() < FRESHNESS * 2);
        }
        match seen.get_mut(&(epoch, stream)) {
            Some(s) => {
                if s.record(sequence) {
                    Ok(body)
                } else {
                    Err(Refusal::Replayed)
                }
            }
            None => {
                seen.insert((epoch, stream), Seen::new(sequence));
                Ok(body)
            }
        }
    }
}

/// The body of a frame received on the bus, or `None` (counted, logged)
/// for one that is not a current, signed frame of a node of this cluster.
pub fn opened<'a>(
    seal: &BusSeal,
    rejected: &AtomicU64,
    stream: Stream,
    subject: &str,
    payload: &'a [u8],
) -> Option<&'a [u8]> {
    match seal.open(stream, subject, payload) {
        Ok(body) => Some(body),
        Err(why) => {
            rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%subject, "cluster: refused a frame on the bus ({why:?})");
            None
        }
    }
}

/// How long ago a frame that opened was sealed, by the sender's clock
/// (`None` for one too short to tell).
pub fn age(frame: &[u8]) -> Option<Duration> {
    let sent = header_field(frame, 16)?;
    Some(Duration::from_millis(now_ms().saturating_sub(sent)))
}

/// The header's number at `at` (0: epoch, 8: sequence, 16: sent).
fn header_field(frame: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(frame.get(MAC_LEN + at..MAC_LEN + at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heartbeats go to NATS at once while an obituary waits in the
    /// node's queue; thousands of envelopes sealed in between must not
    /// push the late one out of the heartbeats' window (29 frames on the
    /// heartbeat subject were refused as replays in a 100,000-user run when
    /// one counter numbered every stream).
    #[test]
    fn a_streams_frames_are_numbered_apart_from_the_others() {
        let (a, b) = (BusSeal::new([4; 32]), BusSeal::new([4; 32]));
        let queued = a.seal(Stream::Heartbeats, "c.heartbeat", b"obituary");
        for _ in 0..WINDOW + 10 {
            a.seal(Stream::Envelopes, "c.node.n2", b"presence");
        }
        let sent_at_once = a.seal(Stream::Heartbeats, "c.heartbeat", b"beat");
        assert!(b.open(Stream::Heartbeats, "c.heartbeat", &sent_at_once).is_ok());
        assert_eq!(b.open(Stream::Heartbeats, "c.heartbeat", &queued), Ok(&b"obituary"[..]));
        assert_eq!(b.open(Stream::Heartbeats, "c.heartbeat", &queued), Err(Refusal::Replayed));
    }

    #[test]
    fn a_frame_tells_how_long_ago_it_was_sealed() {
        let seal = BusSeal::new([3; 32]);
        let mut frame = seal.seal(Stream::Heartbeats, "c.heartbeat", b"{}");
        assert!(age(&frame).unwrap() < FRESHNESS);
        // Sealed three seconds ago.
        let three_seconds_ago = (now_ms() - 3_000).to_be_bytes();
        frame[MAC_LEN + 16..HEADER_LEN].copy_from_slice(&three_seconds_ago);
        assert!(age(&frame).unwrap() >= Duration::from_secs(3));
        assert_eq!(age(b"short"), None);
    }

    #[test]
    fn a_frame_opens_once_on_its_subject_with_its_key() {
        let (a, b) = (BusSeal::new([7; 32]), BusSeal::new([7; 32]));
        let frame = a.seal(Stream::Envelopes, "c.node.n1", b"hello");
        assert_eq!(
            b.open(Stream::Envelopes, "c.node.n2", &frame),
            Err(Refusal::BadSignature),
            "moved to another subject"
        );
        assert_eq!(b.open(Stream::Envelopes, "c.node.n1", &frame), Ok(&b"hello"[..]));
        assert_eq!(b.open(Stream::Envelopes, "c.node.n1", &frame), Err(Refusal::Replayed));
        assert_eq!(
            BusSeal::new([8; 32]).open(Stream::Envelopes, "c.node.n1", &frame),
            Err(Refusal::BadSignature),
            "another key"
        );
        let mut changed = frame.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(b.open(Stream::Envelopes, "c.node.n1", &changed), Err(Refusal::BadSignature));
        assert_eq!(b.open(Stream::Envelopes, "c.node.n1", b"short"), Err(Refusal::Malformed));
        assert_eq!(b.open(Stream::Envelopes, "c.node.n1", b"{\"Deliver\":{}}"), Err(Refusal::Malformed));
    }

    #[test]
    fn frames_may_arrive_out_of_order_within_the_window_but_never_twice() {
        let (a, b) = (BusSeal::new([1; 32]), BusSeal::new([1; 32]));
        let frames: Vec<Vec<u8>> = (0..WINDOW + 10).map(|i| a.seal(Stream::Requests, "s", &i.to_be_bytes())).collect();
        // Every other one first, then the rest: all accepted once.
        for f in frames.iter().step_by(2).chain(frames.iter().skip(1).step_by(2)) {
            if b.open(Stream::Requests, "s", f).is_err() {
                // Only the oldest, out of the window by the time they come.
                let n = u64::from_be_bytes(b.open_state("s", f).unwrap().try_into().unwrap());
                assert!(n < 12, "frame {n} refused");
            }
        }
        for f in &frames[frames.len() - 100..] {
            assert_eq!(b.open(Stream::Requests, "s", f), Err(Refusal::Replayed));
        }
    }

    #[test]
    fn a_sender_that_restarts_is_a_new_epoch() {
        let b = BusSeal::new([2; 32]);
        let first = BusSeal::new([2; 32]);
        assert!(b.open(Stream::Requests, "s", &first.seal(Stream::Requests, "s", b"x")).is_ok());
        let restarted = BusSeal::new([2; 32]);
        assert!(
            b.open(Stream::Requests, "s", &restarted.seal(Stream::Requests, "s", b"x")).is_ok(),
            "sequence 0 again, in a new epoch"
        );
    }

    #[test]
    fn the_window_shifts_across_word_boundaries() {
        let mut s = Seen::new(0);
        for n in [1, 63, 64, 65, 130, 200] {
            assert!(s.record(n));
        }
        for n in [0, 1, 63, 64, 65, 130, 200] {
            assert!(!s.record(n), "{n} accepted twice");
        }
        assert!(s.record(129) && s.record(2));
    }

    /// A stream read late (its task fell behind) while the same sender's
    /// frames on another stream were read on time: its frames are far
    /// behind the sender's latest number, and still accepted, once.
    #[test]
    fn a_stream_that_falls_behind_keeps_its_frames() {
        let (a, b) = (BusSeal::new([3; 32]), BusSeal::new([3; 32]));
        let late: Vec<Vec<u8>> = (0..100).map(|_| a.seal(Stream::Envelopes, "c.node.n1", b"presence")).collect();
        for _ in 0..2 * WINDOW {
            assert!(b.open(Stream::Requests, "c.request.n1", &a.seal(Stream::Requests, "c.request.n1", b"?")).is_ok());
        }
        for frame in &late {
            assert_eq!(b.open(Stream::Envelopes, "c.node.n1", frame), Ok(&b"presence"[..]));
        }
        for frame in &late {
            assert_eq!(b.open(Stream::Envelopes, "c.node.n1", frame), Err(Refusal::Replayed));
        }
    }
}
