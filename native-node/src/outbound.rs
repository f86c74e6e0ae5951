//! Outbound peer messages, with the entries of an AppendEntries encoded once for every peer
//! that is sent the same ones (issue #13's 8-tab figure).
//!
//! A leader sends each `Ready`'s new entries to every follower and learner tab in one
//! AppendEntries each (thesis §10.2.1: the same entries, cloned per peer by raft-core). Encoding
//! every copy with postcard was most of the leader's cost per extra peer. Here the transport
//! hands the messages of one batch to [`EntriesCache::outbound`], which notices that a message
//! carries the same entries as the previous one (same indexes and terms, the very same payload
//! buffers) and lets both share one [`SharedEntries`]; whichever connection seals first
//! encodes them, the others reuse the bytes.
//!
//! To a peer whose handshake asked for them (a tab of this build), [`Outbound::seal`] sends a
//! `RaftShared` frame ([`crate::peer_auth::shared`]): the message without entries as its head
//! and each shared list as one part, whose SHA-256 is computed once and cached beside its
//! encoding, so each connection's HMAC reads only the small head and the parts' digests. To any
//! other peer it builds exactly the `Raft` frame [`crate::peer_auth::Sealer::seal`] would (the
//! same bytes, checked by the tests below). Either way the tag binds that connection's session
//! key and sequence number: only encodings and digests are shared, never a tag.

use crate::peer_auth::{part_digest, FrameKind, Sealer, SharedPart};
use crate::peer_liveness::PeerQueue;
use bytes::Bytes;
use raft_core::{Entry, EntryPayload, LogIndex, Message, MessageBody, Term};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Largest entries (as raft-core counts them) of one merged AppendEntries: raft-core's default
/// `message_bytes_max`, so a merged message is no larger than one the core could have made.
pub const MERGE_BYTES_MAX: u64 = 1 << 20;

/// Shortest time between two writes of entries to a learner tab (other messages, heartbeats,
/// snapshot chunks and read answers, do not wait). Its appends queue meanwhile and leave
/// merged: a learner does not count toward commit (thesis §4.2.1), so it may lag by this much,
/// and the leader writes, seals and hears answers far less often per tab.
pub const LEARNER_WRITE_INTERVAL: Duration = Duration::from_millis(10);

/// The entries of one AppendEntries, shared by every peer that is sent them.
pub struct SharedEntries {
    entries: Vec<Entry>,
    /// What the entries count for in raft-core's byte limits.
    size_bytes: u64,
    /// `postcard(entries)` without its length prefix (every entry, in order), made by the first
    /// sealer.
    encoded: OnceLock<Vec<u8>>,
    /// SHA-256 of `encoded`, as a `RaftShared` frame's tag binds it: hashed once for every
    /// connection that is sent these entries.
    digest: OnceLock<[u8; 32]>,
}

impl SharedEntries {
    fn new(entries: Vec<Entry>) -> SharedEntries {
        let size_bytes = entries.iter().map(Entry::size_bytes).sum();
        SharedEntries { entries, size_bytes, encoded: OnceLock::new(), digest: OnceLock::new() }
    }

    fn encoded(&self) -> &[u8] {
        self.encoded.get_or_init(|| {
            // postcard only fails on types serde cannot describe; entries can.
            let mut items = Vec::new();
            for entry in &self.entries {
                items = postcard::to_extend(entry, items).unwrap_or_default();
            }
            items
        })
    }

    fn part(&self) -> SharedPart<'_> {
        let encoded = self.encoded();
        (encoded, self.digest.get_or_init(|| part_digest(encoded)))
    }

    /// The last entry's index and term.
    fn last(&self) -> Option<(LogIndex, Term)> {
        self.entries.last().map(|entry| (entry.index, entry.term))
    }
}

/// A message waiting in a peer's queue.
pub struct Outbound {
    /// The message; if `shared` is not empty, it is an AppendEntries whose `entries` are empty
    /// and live there, in order.
    message: Message,
    shared: Vec<Arc<SharedEntries>>,
}

impl From<Message> for Outbound {
    fn from(message: Message) -> Outbound {
        Outbound { message, shared: Vec::new() }
    }
}

/// postcard's varint of `value` (lengths and the integers of our messages).
fn varint(value: u64) -> ([u8; 10], usize) {
    let mut bytes = [0u8; 10];
    let len = postcard::to_slice(&value, &mut bytes).map_or(0, |written| written.len());
    (bytes, len)
}

impl Outbound {
    /// The message's recipient.
    pub fn to(&self) -> raft_core::NodeId {
        self.message.to
    }

    /// Whether this is an AppendEntries with entries (one that may wait to be merged).
    pub fn carries_entries(&self) -> bool {
        !self.shared.is_empty()
    }

    /// This connection's frame of the message: what `sealer.seal(FrameKind::Raft, &message)`
    /// makes, without encoding shared entries again.
    pub fn seal(&self, sealer: &mut Sealer) -> Bytes {
        let MessageBody::AppendEntries { leader_commit, .. } = &self.message.body else {
            return Bytes::from(sealer.seal(FrameKind::Raft, &self.message));
        };
        if self.shared.is_empty() {
            return Bytes::from(sealer.seal(FrameKind::Raft, &self.message));
        }
        if sealer.peer_reads_shared() {
            // The message (without entries) is the head, each shared list one part: only the
            // head and the parts' cached digests go through this connection's HMAC.
            let head = postcard::to_allocvec(&self.message).unwrap_or_default();
            let parts: Vec<SharedPart<'_>> = self.shared.iter().map(|shared| shared.part()).collect();
            return Bytes::from(sealer.seal_shared(&head, &parts));
        }
        // The message with no entries encodes as `head ‖ [0] ‖ commit`: postcard writes fields
        // in order, `entries` as a varint length then the items, and `leader_commit` (a varint)
        // is the last field of the last field. Swap the empty list for the shared entries.
        let empty = postcard::to_allocvec(&self.message).unwrap_or_default();
        let commit_len = varint(leader_commit.0).1;
        let Some(split) = empty.len().checked_sub(commit_len + 1).filter(|split| empty[*split] == 0) else {
            // Not the layout above (cannot happen with these types): encode it all.
            return Bytes::from(sealer.seal(FrameKind::Raft, &self.whole()));
        };
        let count: usize = self.shared.iter().map(|shared| shared.entries.len()).sum();
        let (length, length_len) = varint(count as u64);
        let mut parts: Vec<&[u8]> = Vec::with_capacity(self.shared.len() + 3);
        parts.push(&empty[..split]);
        parts.push(&length[..length_len]);
        parts.extend(self.shared.iter().map(|shared| shared.encoded()));
        parts.push(&empty[split + 1..]);
        Bytes::from(sealer.seal_parts(FrameKind::Raft, &parts))
    }

    /// The message with its entries in place.
    fn whole(&self) -> Message {
        let mut message = self.message.clone();
        if let MessageBody::AppendEntries { entries, .. } = &mut message.body {
            entries.extend(self.shared.iter().flat_map(|shared| shared.entries.iter().cloned()));
        }
        message
    }

    /// Appends `next`'s entries to this message's if both are AppendEntries of one leader and
    /// term to one peer, `next`'s entries continue this one's (its `prev_log_index` and
    /// `prev_log_term` are this one's last entry) and the entries together count at most
    /// `bytes_max`: the one AppendEntries the leader would have sent had it waited (§5.3), with
    /// the later commit index. Otherwise gives `next` back.
    pub fn merge(&mut self, next: Outbound, bytes_max: u64) -> Result<(), Outbound> {
        let last = self.shared.last().and_then(|shared| shared.last());
        let size: u64 = self.shared.iter().chain(&next.shared).map(|shared| shared.size_bytes).sum();
        let MessageBody::AppendEntries { prev_log_index, prev_log_term, leader_commit: next_commit, .. } =
            next.message.body
        else {
            return Err(next);
        };
        let continues = last == Some((prev_log_index, prev_log_term)) && !next.shared.is_empty();
        let same_sender = (self.message.from, self.message.to, self.message.term)
            == (next.message.from, next.message.to, next.message.term);
        let MessageBody::AppendEntries { leader_commit, .. } = &mut self.message.body else {
            return Err(next);
        };
        // A reader of `RaftShared` frames refuses more parts (one per list) than this.
        let parts = self.shared.len() + next.shared.len();
        if !continues || !same_sender || size > bytes_max || parts > crate::peer_auth::SHARED_PARTS_MAX {
            return Err(next);
        }
        *leader_commit = (*leader_commit).max(next_commit);
        self.shared.extend(next.shared);
        Ok(())
    }
}

/// How many recent entry lists [`EntriesCache`] remembers: a follower that is behind gets other
/// entries than the rest, and must not make the peers after it encode theirs again.
const CACHED_ENTRY_LISTS: usize = 4;

/// Remembers the entries of the last AppendEntries queued, so that the next message with the
/// same entries (the next peer's, in the same `Ready`) shares them.
#[derive(Default)]
pub struct EntriesCache {
    recent: Mutex<std::collections::VecDeque<Arc<SharedEntries>>>,
}

impl EntriesCache {
    /// `message` ready to queue, its entries shared with a recent message's if they are the
    /// same ones.
    pub fn outbound(&self, mut message: Message) -> Outbound {
        let MessageBody::AppendEntries { entries, .. } = &mut message.body else {
            return Outbound::from(message);
        };
        if entries.is_empty() {
            return Outbound::from(message);
        }
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let shared = match recent.iter().find(|shared| same_entries(&shared.entries, entries)) {
            Some(shared) => {
                entries.clear();
                shared.clone()
            }
            None => {
                let shared = Arc::new(SharedEntries::new(std::mem::take(entries)));
                if recent.len() == CACHED_ENTRY_LISTS {
                    recent.pop_front();
                }
                recent.push_back(shared.clone());
                shared
            }
        };
        Outbound { message, shared: vec![shared] }
    }
}

/// Whether `a` and `b` are the same entries: the same indexes and terms and the very same
/// payload buffers (clones of one log's entries). Anything else counts as different, which only
/// costs an encoding.
fn same_entries(a: &[Entry], b: &[Entry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.index == b.index
                && a.term == b.term
                && match (&a.payload, &b.payload) {
                    (EntryPayload::Noop, EntryPayload::Noop) => true,
                    (EntryPayload::Command(a), EntryPayload::Command(b)) => {
                        a.as_ptr() == b.as_ptr() && a.len() == b.len()
                    }
                    (EntryPayload::Membership(a), EntryPayload::Membership(b)) => a == b,
                    _ => false,
                }
        })
}

/// Takes `first` and up to `count_max - 1` more messages queued now (not older than
/// `stale_after`) for one write; with `merge_bytes_max`, consecutive AppendEntries that continue
/// each other travel as one (see [`Outbound::merge`]). Returns them with the stale messages
/// dropped on the way.
pub fn drain(
    first: Outbound,
    queue: &PeerQueue<Outbound>,
    stale_after: Duration,
    count_max: usize,
    merge_bytes_max: Option<u64>,
) -> (Vec<Outbound>, u64) {
    let mut batch = vec![first];
    let mut stale_total = 0;
    let mut taken = 1;
    while taken < count_max {
        let (next, stale) = queue.try_pop(stale_after);
        stale_total += stale;
        let Some(next) = next else { break };
        taken += 1;
        let last = batch.last_mut().unwrap_or_else(|| unreachable!("the batch starts with `first`"));
        match merge_bytes_max {
            Some(bytes_max) => {
                if let Err(next) = last.merge(next, bytes_max) {
                    batch.push(next);
                }
            }
            None => batch.push(next),
        }
    }
    (batch, stale_total)
}

#[cfg(test)]
mod review;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer_auth::{Side, Transcript};
    use raft_core::{LogIndex, Membership, NodeId, Term};

    /// The connection of peer `dialler` to node 1 (also the `review` tests').
    pub(super) fn transcript(dialler: u64) -> Transcript {
        Transcript {
            acceptor_nonce: [7; 16],
            dialler_nonce: [dialler as u8; 16],
            cluster_id: "c".into(),
            acceptor: NodeId(dialler),
            dialler: NodeId(1),
        }
    }

    fn entries(payloads: &[Bytes]) -> Vec<Entry> {
        let mut entries: Vec<Entry> = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| Entry {
                term: Term(3),
                index: LogIndex(1_000 + i as u64),
                payload: EntryPayload::Command(payload.clone()),
            })
            .collect();
        entries.push(Entry {
            term: Term(3),
            index: LogIndex(1_000 + payloads.len() as u64),
            payload: EntryPayload::Noop,
        });
        entries.push(Entry {
            term: Term(3),
            index: LogIndex(1_001 + payloads.len() as u64),
            payload: EntryPayload::Membership(Box::new(Membership::with_voters([NodeId(1), NodeId(2)]))),
        });
        entries
    }

    fn append(to: u64, entries: Vec<Entry>, commit: u64) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(to),
            term: Term(3),
            body: MessageBody::AppendEntries {
                prev_log_index: LogIndex(999),
                prev_log_term: Term(2),
                entries,
                leader_commit: LogIndex(commit),
            },
        }
    }

    #[test]
    fn shared_entries_seal_into_the_frame_of_the_whole_message_for_every_peer() {
        let payloads: Vec<Bytes> = (0..40).map(|i| Bytes::from(vec![i as u8; 300])).collect();
        let cache = EntriesCache::default();
        // Commit indexes whose varints take 1 to 10 bytes, peers with small and tab-sized ids.
        for (n, commit) in [0, 1, 127, 128, 16_384, 1 << 40, u64::MAX].into_iter().enumerate() {
            for to in [2, 3, (1 << 32) + 5] {
                let message = append(to, entries(&payloads), commit);
                let outbound = cache.outbound(message.clone());
                assert_eq!(outbound.shared.len(), 1);
                let mut ours = transcript(to).session(b"secret", Side::Dialler).sealer;
                let mut whole = transcript(to).session(b"secret", Side::Dialler).sealer;
                let mut opener = transcript(to).session(b"secret", Side::Acceptor).opener;
                for _ in 0..2 {
                    let frame = outbound.seal(&mut ours);
                    assert_eq!(frame, Bytes::from(whole.seal(FrameKind::Raft, &message)), "{n} {to}");
                    assert_eq!(opener.open::<Message>(&frame, FrameKind::Raft).unwrap(), message);
                }
            }
        }
    }

    #[test]
    fn a_frame_sealed_from_shared_entries_opens_only_on_its_own_connection() {
        let payloads: Vec<Bytes> = (0..5).map(|i| Bytes::from(vec![i as u8; 10])).collect();
        let cache = EntriesCache::default();
        let to_tab = cache.outbound(append(7, entries(&payloads), 1_003));
        let to_other = cache.outbound(append(8, entries(&payloads), 1_003));
        assert!(Arc::ptr_eq(&to_tab.shared[0], &to_other.shared[0]));
        let frame = to_tab.seal(&mut transcript(7).session(b"secret", Side::Dialler).sealer);
        let mut own = transcript(7).session(b"secret", Side::Acceptor).opener;
        let mut other = transcript(8).session(b"secret", Side::Acceptor).opener;
        assert!(other.open::<Message>(&frame, FrameKind::Raft).is_err(), "another connection's key");
        assert_eq!(
            own.open::<Message>(&frame, FrameKind::Raft).unwrap(),
            append(7, entries(&payloads), 1_003)
        );
        assert!(own.open::<Message>(&frame, FrameKind::Raft).is_err(), "a replay");
    }

    #[test]
    fn a_peer_that_reads_shared_frames_gets_the_whole_message_with_each_list_hashed_once() {
        let payloads: Vec<Bytes> = (0..20).map(|i| Bytes::from(vec![i as u8; 100])).collect();
        let cache = EntriesCache::default();
        let queue = PeerQueue::<Outbound>::new(16);
        let first = cache.outbound(append_from(9, 5, run(6, 10), 4));
        queue.push(cache.outbound(append_from(9, 10, run(11, 12), 8)));
        let (batch, _) = drain(first, &queue, Duration::from_secs(60), 16, Some(1 << 20));
        let merged = &batch[0];
        assert_eq!(merged.shared.len(), 2);
        for commit in [0, 1_003, u64::MAX] {
            for to in [7, (1 << 32) + 5] {
                let message = append(to, entries(&payloads), commit);
                let outbound = cache.outbound(message.clone());
                let mut sealer = transcript(to).session(b"secret", Side::Dialler).sealer;
                sealer.set_peer_reads_shared(true);
                let mut opener = transcript(to).session(b"secret", Side::Acceptor).opener;
                opener.set_reads_shared(true);
                for _ in 0..2 {
                    let frame = outbound.seal(&mut sealer);
                    assert_eq!(frame[1], FrameKind::RaftShared as u8);
                    assert_eq!(opener.open_message(&frame).unwrap(), message);
                }
            }
        }
        // Hashed once, by the first connection: the digest is the cached one.
        let shared = cache.outbound(append(7, entries(&payloads), 1)).shared[0].clone();
        assert_eq!(shared.digest.get(), Some(&part_digest(shared.encoded())));
        // A merged message: one part per list, in order.
        let mut sealer = transcript(9).session(b"secret", Side::Dialler).sealer;
        sealer.set_peer_reads_shared(true);
        let frame = merged.seal(&mut sealer);
        let mut opener = transcript(9).session(b"secret", Side::Acceptor).opener;
        opener.set_reads_shared(true);
        assert_eq!(opener.open_message(&frame).unwrap(), append_from(9, 5, run(6, 12), 8));
        // A peer that did not ask for them gets the `Raft` frame, as before.
        let mut old = transcript(9).session(b"secret", Side::Dialler).sealer;
        assert_eq!(merged.seal(&mut old)[1], FrameKind::Raft as u8);
    }

    fn append_from(to: u64, prev: u64, entries: Vec<Entry>, commit: u64) -> Message {
        let mut message = append(to, entries, commit);
        if let MessageBody::AppendEntries { prev_log_index, prev_log_term, .. } = &mut message.body {
            *prev_log_index = LogIndex(prev);
            *prev_log_term = Term(3);
        }
        message
    }

    /// Entries `first..=last` of term 3.
    fn run(first: u64, last: u64) -> Vec<Entry> {
        (first..=last)
            .map(|index| Entry {
                term: Term(3),
                index: LogIndex(index),
                payload: EntryPayload::Command(Bytes::from(vec![index as u8; 20])),
            })
            .collect()
    }

    #[test]
    fn consecutive_appends_merge_into_the_one_append_the_leader_would_have_sent() {
        let queue = PeerQueue::<Outbound>::new(16);
        let cache = EntriesCache::default();
        queue.push(cache.outbound(append_from(9, 10, run(11, 12), 8)));
        queue.push(cache.outbound(append_from(9, 12, run(13, 20), 11)));
        let first = cache.outbound(append_from(9, 5, run(6, 10), 4));
        let (batch, stale) = drain(first, &queue, Duration::from_secs(60), 16, Some(1 << 20));
        assert_eq!((batch.len(), stale), (1, 0));
        let merged = append_from(9, 5, run(6, 20), 11);
        let mut ours = transcript(9).session(b"secret", Side::Dialler).sealer;
        let mut whole = transcript(9).session(b"secret", Side::Dialler).sealer;
        let frame = batch[0].seal(&mut ours);
        assert_eq!(frame, Bytes::from(whole.seal(FrameKind::Raft, &merged)));
        let mut opener = transcript(9).session(b"secret", Side::Acceptor).opener;
        assert_eq!(opener.open::<Message>(&frame, FrameKind::Raft).unwrap(), merged);
    }

    #[test]
    fn appends_that_do_not_continue_each_other_are_not_merged() {
        let cache = EntriesCache::default();
        let forever = Duration::from_secs(60);
        let heartbeat = Message {
            from: NodeId(1),
            to: NodeId(9),
            term: Term(3),
            body: MessageBody::Heartbeat { commit: LogIndex(1), context: 1 },
        };
        let mut other_term = append_from(9, 10, run(11, 12), 8);
        other_term.term = Term(4);
        let cases: Vec<(&str, Vec<Message>, u64)> = vec![
            ("a gap", vec![append_from(9, 11, run(12, 13), 8)], 1 << 20),
            ("another term", vec![other_term], 1 << 20),
            ("another peer", vec![append_from(8, 10, run(11, 12), 8)], 1 << 20),
            ("too many bytes", vec![append_from(9, 10, run(11, 12), 8)], 100),
            ("a heartbeat between", vec![heartbeat, append_from(9, 10, run(11, 12), 8)], 1 << 20),
            ("a probe", vec![append_from(9, 10, Vec::new(), 8)], 1 << 20),
        ];
        for (case, queued, bytes_max) in cases {
            let queue = PeerQueue::<Outbound>::new(16);
            let expected = queued.len() + 1;
            for message in queued {
                queue.push(cache.outbound(message));
            }
            let first = cache.outbound(append_from(9, 5, run(6, 10), 4));
            let (batch, _) = drain(first, &queue, forever, 16, Some(bytes_max));
            assert_eq!(batch.len(), expected, "{case}");
        }
        // Without merging (native voters), every message travels as it was made.
        let queue = PeerQueue::<Outbound>::new(16);
        queue.push(cache.outbound(append_from(9, 10, run(11, 12), 8)));
        let (batch, _) = drain(cache.outbound(append_from(9, 5, run(6, 10), 4)), &queue, forever, 16, None);
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn only_the_very_same_entries_are_shared() {
        let payloads: Vec<Bytes> = (0..3).map(|i| Bytes::from(vec![i as u8; 10])).collect();
        let cache = EntriesCache::default();
        let first = cache.outbound(append(2, entries(&payloads), 5));
        // Equal bytes in other buffers, as a log rewritten after a leader change might hold:
        // not shared (and still sealed right).
        let copies: Vec<Bytes> = payloads.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let second = cache.outbound(append(3, entries(&copies), 5));
        assert!(!Arc::ptr_eq(&first.shared[0], &second.shared[0]));
        // Fewer entries, or another term: not shared.
        let mut fewer = entries(&payloads);
        fewer.pop();
        let third = cache.outbound(append(4, fewer.clone(), 5));
        assert!(!Arc::ptr_eq(&first.shared[0], &third.shared[0]));
        let mut other_term = fewer.clone();
        other_term[0].term = Term(4);
        assert!(!same_entries(&fewer, &other_term));
        let mut sealer = transcript(4).session(b"secret", Side::Dialler).sealer;
        let mut whole = transcript(4).session(b"secret", Side::Dialler).sealer;
        assert_eq!(third.seal(&mut sealer), Bytes::from(whole.seal(FrameKind::Raft, &append(4, fewer, 5))));
        // Messages without entries are queued as they are.
        let probe = cache.outbound(append(2, Vec::new(), 5));
        assert!(probe.shared.is_empty());
        let heartbeat = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: MessageBody::Heartbeat { commit: LogIndex(5), context: 9 },
        };
        assert!(cache.outbound(heartbeat).shared.is_empty());
    }
}
