//! A reference in-memory storage that follows the driver's contract (etcd's `MemoryStorage`,
//! hashicorp's `InmemStore`).
//!
//! It holds what a real driver keeps on disk: the hard state, the log entries, the latest
//! snapshot with its bytes, and a staging area for a snapshot being received. Each method is
//! one step of the contract in [`crate::ready::Ready`], so a driver (or a test) is a short loop:
//!
//! ```
//! use raft_core::storage::MemoryStorage;
//! use raft_core::{bootstrap, Config, Membership, NodeId, RaftNode};
//!
//! let membership = Membership::with_voters([NodeId(1)]);
//! let mut storage = MemoryStorage::from_restored(bootstrap(membership));
//! let mut node = RaftNode::new(Config::new(NodeId(1), 7), storage.restored(Default::default())).unwrap();
//! node.campaign();
//! let proposed = loop {
//!     if node.role() == raft_core::Role::Leader {
//!         break node.propose(raft_core::Bytes::from_static(b"x")).unwrap();
//!     }
//!     let ready = node.ready();
//!     // 1. send ready.messages   2. persist   3. send ready.messages_after_persist
//!     storage.persist(&ready);
//!     // 4. apply ready.committed_entries   5. advance
//!     node.advance();
//! };
//! let ready = node.ready();
//! storage.persist(&ready);
//! node.advance();
//! assert_eq!(storage.entries().last().map(|e| e.index), Some(proposed.index));
//! ```
//!
//! "Durable" here means "in this struct": a process that keeps the `MemoryStorage` across a
//! simulated crash models a disk; dropping it models a wiped one.

use crate::ready::{Ready, Restored, SnapshotChunkRequest, SnapshotCreated, SnapshotMeta};
use crate::types::{Entry, HardState, LogIndex};
use alloc::vec::Vec;
use bytes::Bytes;

/// Everything a node's driver must keep durable, in memory. Fields are public so that tests can
/// inject the faults a disk has (a lost write, a truncated log); the methods keep them coherent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStorage {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The persisted log entries, contiguous, starting after the snapshot (or at its trailing
    /// entries: entries up to the snapshot may remain until compacted).
    pub entries: Vec<Entry>,
    /// The latest snapshot and its bytes.
    pub snapshot: Option<(SnapshotMeta, Bytes)>,
    /// The bytes of a snapshot being received, chunk by chunk.
    pub staging: Vec<u8>,
}

impl MemoryStorage {
    /// Storage holding what [`crate::bootstrap`] or [`Restored::empty`] describe (a snapshot's
    /// bytes are not part of a `Restored`; add them with [`MemoryStorage::snapshot`]).
    pub fn from_restored(restored: Restored) -> MemoryStorage {
        MemoryStorage {
            hard_state: restored.hard_state,
            entries: restored.entries,
            snapshot: restored.snapshot.map(|meta| (meta, Bytes::new())),
            staging: Vec::new(),
        }
    }

    /// What to restart a node from. `applied` is the index the driver's state machine holds
    /// (at least the snapshot's index once restored from it; raised to it here).
    pub fn restored(&self, applied: LogIndex) -> Restored {
        let snapshot = self.snapshot.as_ref().map(|(meta, _)| meta.clone());
        let applied = snapshot.as_ref().map_or(applied, |meta| applied.max(meta.index));
        Restored { hard_state: self.hard_state, snapshot, entries: self.entries.clone(), applied }
    }

    /// The persisted hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The persisted entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The latest snapshot and its bytes.
    pub fn snapshot(&self) -> Option<&(SnapshotMeta, Bytes)> {
        self.snapshot.as_ref()
    }

    /// Step 2 of the contract for one [`Ready`]: stage received snapshot chunks, install a
    /// completed snapshot (its log is dropped), then store the hard state and entries (the first
    /// entry's index says where the stored log is cut). Returns the installed snapshot's bytes,
    /// from which the driver restores its state machine before applying `committed_entries`.
    pub fn persist(&mut self, ready: &Ready) -> Option<Bytes> {
        // The node never puts chunks after the installed snapshot's last chunk into a `Ready`
        // that installs it (see `Ready::snapshot_chunks`), so staging everything first and then
        // installing the staged bytes installs exactly that snapshot.
        for chunk in &ready.snapshot_chunks {
            if chunk.offset == 0 {
                self.staging.clear();
            }
            // Chunks arrive in order without gaps (the node checks offsets); a stray one is
            // ignored rather than corrupting the staged bytes.
            if chunk.offset == self.staging.len() as u64 {
                self.staging.extend_from_slice(&chunk.data);
            }
        }
        let installed = ready.snapshot_installed.as_ref().map(|meta| {
            let data = Bytes::from(core::mem::take(&mut self.staging));
            self.snapshot = Some((meta.clone(), data.clone()));
            self.entries.clear();
            data
        });
        if let Some(hard_state) = ready.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(first) = ready.entries.first() {
            // The stored log is in index order, so the entries before `first` are a prefix
            // found by binary search: no scan of a log that may hold many thousands of entries
            // (a learner tab's, between compactions) on every `Ready`. A search rather than
            // arithmetic on the oldest index keeps the cut right even for a log a test has
            // damaged on purpose (the fields are public).
            let keep = self.entries.partition_point(|e| e.index < first.index);
            self.entries.truncate(keep);
            self.entries.extend(ready.entries.iter().cloned());
        }
        installed
    }

    /// Stores a snapshot the driver took (with its bytes) as [`crate::RaftNode::snapshot_created`]
    /// described it, and deletes the entries it allows.
    pub fn compact(&mut self, created: &SnapshotCreated, data: Bytes) {
        self.snapshot = Some((created.meta.clone(), data));
        let covered = self.entries.partition_point(|e| e.index <= created.compact_through);
        self.entries.drain(..covered);
    }

    /// Leader: the chunk a [`SnapshotChunkRequest`] asks for, at most `chunk_bytes_max` bytes
    /// (at least 1), and whether it is the last; `None` if the request is for a snapshot this
    /// storage no longer holds (the node then starts over with the newer one).
    pub fn snapshot_chunk(
        &self,
        request: &SnapshotChunkRequest,
        chunk_bytes_max: usize,
    ) -> Option<(Bytes, bool)> {
        let (meta, data) = self.snapshot.as_ref()?;
        if *meta != request.meta {
            return None;
        }
        let start = usize::try_from(request.offset).map_or(data.len(), |offset| offset.min(data.len()));
        let end = start.saturating_add(chunk_bytes_max.max(1)).min(data.len());
        Some((data.slice(start..end), end == data.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ready::SnapshotChunk;
    use crate::types::{EntryPayload, Membership, Term};

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: EntryPayload::Noop }
    }

    #[test]
    fn persist_cuts_the_stored_log_at_the_first_new_entry() {
        let mut storage = MemoryStorage::default();
        let ready = Ready { entries: alloc::vec![entry(1, 1), entry(2, 1), entry(3, 1)], ..Ready::default() };
        storage.persist(&ready);
        let ready = Ready { entries: alloc::vec![entry(2, 2)], ..Ready::default() };
        storage.persist(&ready);
        let terms: Vec<u64> = storage.entries().iter().map(|e| e.term.0).collect();
        assert_eq!(terms, [1, 2]);
    }

    #[test]
    fn persist_after_compaction_cuts_by_index_not_by_position() {
        // Compacted: the stored log starts at 11. A new entry 13 keeps 11 and 12; one before
        // the oldest stored entry replaces them all.
        let mut storage =
            MemoryStorage { entries: (11..=15).map(|i| entry(i, 1)).collect(), ..MemoryStorage::default() };
        storage.persist(&Ready { entries: alloc::vec![entry(13, 2)], ..Ready::default() });
        let stored: Vec<(u64, u64)> = storage.entries().iter().map(|e| (e.index.0, e.term.0)).collect();
        assert_eq!(stored, [(11, 1), (12, 1), (13, 2)]);
        storage.persist(&Ready { entries: alloc::vec![entry(9, 3)], ..Ready::default() });
        let stored: Vec<(u64, u64)> = storage.entries().iter().map(|e| (e.index.0, e.term.0)).collect();
        assert_eq!(stored, [(9, 3)]);
        storage.persist(&Ready { entries: alloc::vec![entry(10, 3), entry(11, 3)], ..Ready::default() });
        assert_eq!(storage.entries().len(), 3);
    }

    fn stored(storage: &MemoryStorage) -> Vec<(u64, u64)> {
        storage.entries().iter().map(|e| (e.index.0, e.term.0)).collect()
    }

    #[test]
    fn persist_overwrites_a_suffix_appends_and_repeats_idempotently() {
        let mut storage = MemoryStorage::default();
        storage.persist(&Ready { entries: (1..=6).map(|i| entry(i, 1)).collect(), ..Ready::default() });
        // A new leader's entries 4..=5 replace the old 4..=6 (§5.3: a conflicting suffix goes).
        storage.persist(&Ready { entries: alloc::vec![entry(4, 2), entry(5, 2)], ..Ready::default() });
        assert_eq!(stored(&storage), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]);
        // Entries after the last stored one are appended.
        storage.persist(&Ready { entries: alloc::vec![entry(6, 2)], ..Ready::default() });
        assert_eq!(stored(&storage), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]);
        // The same batch persisted twice changes nothing.
        let again = Ready { entries: alloc::vec![entry(5, 2), entry(6, 2)], ..Ready::default() };
        storage.persist(&again);
        storage.persist(&again);
        assert_eq!(stored(&storage), [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]);
        // Overwriting from the very first stored entry replaces the whole log.
        storage.persist(&Ready { entries: alloc::vec![entry(1, 3)], ..Ready::default() });
        assert_eq!(stored(&storage), [(1, 3)]);
        // A Ready without entries leaves the log alone.
        storage.persist(&Ready::default());
        assert_eq!(stored(&storage), [(1, 3)]);
    }

    #[test]
    fn compaction_drops_exactly_the_covered_prefix_and_persist_cuts_after_it() {
        let mut storage = MemoryStorage::default();
        storage.persist(&Ready { entries: (1..=10).map(|i| entry(i, 1)).collect(), ..Ready::default() });
        let meta = |index: u64| SnapshotMeta {
            index: LogIndex(index),
            term: Term(1),
            membership: Membership::default(),
            membership_index: LogIndex(0),
        };
        let created = |index: u64| SnapshotCreated { meta: meta(index), compact_through: LogIndex(index) };
        storage.compact(&created(4), Bytes::from_static(b"s4"));
        assert_eq!(stored(&storage).first(), Some(&(5, 1)));
        assert_eq!(storage.entries().len(), 6);
        // Compacting to an index already compacted away, or beyond the log, is safe.
        storage.compact(&created(2), Bytes::from_static(b"s2"));
        assert_eq!(storage.entries().len(), 6);
        // After compaction the cut is by index, not by position: 7 keeps 5 and 6.
        storage.persist(&Ready { entries: alloc::vec![entry(7, 2)], ..Ready::default() });
        assert_eq!(stored(&storage), [(5, 1), (6, 1), (7, 2)]);
        storage.compact(&created(20), Bytes::from_static(b"s20"));
        assert!(storage.entries().is_empty());
        storage.persist(&Ready { entries: alloc::vec![entry(21, 2)], ..Ready::default() });
        assert_eq!(stored(&storage), [(21, 2)]);
    }

    #[test]
    fn persist_cuts_where_a_scan_of_the_whole_log_would() {
        // The old cut (a scan keeping every entry below the first new index) is the model; a
        // fixed linear congruential sequence picks the logs and batches, so this is
        // deterministic. Covers cuts before, inside and after the stored log, and logs with
        // gaps (the fields are public: tests damage logs on purpose).
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        for _ in 0..2_000 {
            let start = 1 + next(20);
            let mut indexes: Vec<u64> = (start..start + next(30)).collect();
            if next(4) == 0 && !indexes.is_empty() {
                let hole = next(indexes.len() as u64) as usize;
                indexes.remove(hole);
            }
            let log: Vec<Entry> = indexes.iter().map(|&i| entry(i, 1)).collect();
            let first = 1 + next(60);
            let batch: Vec<Entry> = (first..first + 1 + next(5)).map(|i| entry(i, 2)).collect();
            let mut model = log.clone();
            model.retain(|e| e.index < batch[0].index);
            model.extend(batch.iter().cloned());
            let mut storage = MemoryStorage { entries: log, ..MemoryStorage::default() };
            storage.persist(&Ready { entries: batch, ..Ready::default() });
            assert_eq!(storage.entries, model);
        }
    }

    #[test]
    fn a_snapshot_is_staged_installed_and_served_in_chunks() {
        let meta = SnapshotMeta {
            index: LogIndex(5),
            term: Term(2),
            membership: Membership::default(),
            membership_index: LogIndex(0),
        };
        let mut storage = MemoryStorage { entries: alloc::vec![entry(1, 1)], ..MemoryStorage::default() };
        let chunk = |offset: u64, data: &'static [u8], last| SnapshotChunk {
            meta: meta.clone(),
            offset,
            data: Bytes::from_static(data),
            last,
        };
        let ready = Ready {
            snapshot_chunks: alloc::vec![chunk(0, b"abc", false), chunk(3, b"de", true)],
            ..Ready::default()
        };
        assert_eq!(storage.persist(&ready), None);
        let ready = Ready { snapshot_installed: Some(meta.clone()), ..Ready::default() };
        assert_eq!(storage.persist(&ready), Some(Bytes::from_static(b"abcde")));
        assert!(storage.entries().is_empty());
        assert_eq!(storage.restored(LogIndex(0)).applied, LogIndex(5));
        let request = SnapshotChunkRequest { to: crate::NodeId(2), meta: meta.clone(), offset: 3 };
        assert_eq!(storage.snapshot_chunk(&request, 16), Some((Bytes::from_static(b"de"), true)));
        let request = SnapshotChunkRequest { offset: 0, ..request };
        assert_eq!(storage.snapshot_chunk(&request, 2), Some((Bytes::from_static(b"ab"), false)));
    }
}
