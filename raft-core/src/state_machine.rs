//! The state-machine contract: what Raft replicates *into* (hashicorp/raft's `FSM`; thesis ch. 5).
//!
//! Raft only agrees on a sequence of entries. A [`StateMachine`] gives the entries meaning: the
//! driver applies every committed entry to it in log order ([`StateMachine::apply`]), takes
//! point-in-time snapshots of it so the log can be compacted (thesis §5.1), and replaces its
//! whole state from a snapshot a leader sent (InstallSnapshot, thesis §5.1, Figure 5.3).
//!
//! Snapshots travel as a stream of byte chunks whose total size is not known up front: the
//! state machine never has to hold its encoded state in one buffer, and a driver can write the
//! chunks to a file or to InstallSnapshot messages as they come. Each chunk is at most
//! [`SNAPSHOT_CHUNK_BYTES_MAX`] bytes.
//!
//! ```
//! use raft_core::kv::{KvConfig, KvStore};
//! use raft_core::state_machine::{restore_from_chunks, StateMachine};
//! use raft_core::{Entry, EntryPayload, LogIndex, Term};
//!
//! let mut leader = KvStore::new(KvConfig::default()).unwrap();
//! leader.apply(&Entry { term: Term(1), index: LogIndex(1), payload: EntryPayload::Noop });
//!
//! let chunks: Vec<_> = leader.snapshot().collect();
//! let mut follower = KvStore::new(KvConfig::default()).unwrap();
//! restore_from_chunks(&mut follower, &chunks).unwrap();
//! assert_eq!(follower.applied_index(), LogIndex(1));
//! ```

use crate::types::{Entry, LogIndex};
use bytes::Bytes;

/// The largest chunk a [`StateMachine::snapshot`] stream may yield, in bytes.
///
/// Small enough to fit one InstallSnapshot message comfortably, large enough that a snapshot of
/// a few hundred megabytes is a few thousand chunks.
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 64 * 1024;

/// A deterministic application that consumes committed log entries (hashicorp's `FSM`).
///
/// # To ensure correctness
///
/// Raft's state-machine safety (§5.4.3) only promises that every server applies the same
/// entries in the same order. The state machine must turn that into the same state:
///
/// - **Deterministic.** `apply` must depend only on the current state and the entry: no clock,
///   no random numbers, no iteration over a hash map with a random seed, no reading of local
///   configuration that may differ between servers. Time, where needed, must come from the log
///   itself (for example a timestamp the leader put in the command, as the key-value store's
///   session expiry does, thesis §6.3).
/// - **Total.** `apply` must not fail and must not panic on a bad command: the entry is already
///   committed and every replica will apply it. A command that cannot be carried out (garbage
///   bytes, a key too large, an expired session) yields an *error response*, which is part of
///   the replicated outcome like any other response.
/// - **Every entry, once, in order.** The driver calls `apply` for every committed entry,
///   including [`crate::EntryPayload::Noop`] and [`crate::EntryPayload::Membership`] entries, with
///   `entry.index == applied_index().next()`. This is how the state machine knows its
///   [`StateMachine::applied_index`], which a restarted driver uses to skip what was already
///   applied and which [`crate::Restored::applied`] reports back to the engine.
/// - **Point-in-time snapshots.** [`StateMachine::snapshot`] captures the state after exactly
///   `applied_index()` entries. The returned stream owns what it needs, so the driver may keep
///   applying entries while it writes the snapshot out (thesis §5.1.1, snapshotting
///   concurrently; hashicorp's `FSMSnapshot.Persist`).
///   The same state must produce the same bytes on every replica.
/// - **All-or-nothing restore.** A restore is fed chunks in the order the snapshot produced
///   them. Nothing observable changes until [`StateMachine::finish_restore`] succeeds, and then
///   the whole state is replaced at once, `applied_index()` included. Corrupt or truncated data
///   is a typed error that leaves the old state untouched.
pub trait StateMachine {
    /// What applying one entry produces, handed back to the client that proposed it.
    type Response;
    /// A point-in-time snapshot as a stream of chunks, each non-empty and at most
    /// [`SNAPSHOT_CHUNK_BYTES_MAX`] bytes.
    type Snapshot: Iterator<Item = Bytes>;
    /// A restore in progress: receives the chunks of a snapshot, in order.
    type Restore: SnapshotRestore<Error = Self::RestoreError>;
    /// Why a snapshot could not be restored.
    type RestoreError: core::error::Error;

    /// Applies one committed entry and returns its response (hashicorp's `FSM.Apply`).
    ///
    /// # Panics
    ///
    /// May panic if `entry.index` is not `applied_index().next()`: the driver skipped or
    /// repeated an entry, and applying anyway would silently diverge from the other replicas.
    fn apply(&mut self, entry: &Entry) -> Self::Response;

    /// The index of the last entry applied (or restored from a snapshot); 0 before any.
    fn applied_index(&self) -> LogIndex;

    /// Captures the current state, as of [`StateMachine::applied_index`], as a chunk stream.
    fn snapshot(&self) -> Self::Snapshot;

    /// Starts restoring from a snapshot. The current state is not touched until
    /// [`StateMachine::finish_restore`].
    fn begin_restore(&self) -> Self::Restore;

    /// Checks that `restore` received a whole, valid snapshot and, only then, replaces the
    /// current state with it in one step.
    ///
    /// # Errors
    ///
    /// Returns the restore's error if the snapshot was corrupt, truncated or written by an
    /// incompatible version; the current state is then left as it was.
    fn finish_restore(&mut self, restore: Self::Restore) -> Result<(), Self::RestoreError>;
}

/// The receiving end of a snapshot: chunks go in, in the order the snapshot stream produced
/// them. Chunk boundaries need not match the producer's; only the concatenation matters.
pub trait SnapshotRestore {
    /// Why the data is not a valid snapshot.
    type Error;

    /// Takes the next chunk of snapshot bytes.
    ///
    /// # Errors
    ///
    /// Returns an error as soon as the data seen so far cannot be a valid snapshot; the
    /// restore is then poisoned and [`StateMachine::finish_restore`] fails with the same error.
    fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), Self::Error>;
}

/// Restores `state_machine` from a whole sequence of chunks: begin, every chunk, finish.
///
/// # Errors
///
/// Returns the first error the chunks or the final check produce; `state_machine` is then
/// unchanged.
pub fn restore_from_chunks<S, C>(
    state_machine: &mut S,
    chunks: impl IntoIterator<Item = C>,
) -> Result<(), S::RestoreError>
where
    S: StateMachine,
    C: AsRef<[u8]>,
{
    let mut restore = state_machine.begin_restore();
    for chunk in chunks {
        restore.write_chunk(chunk.as_ref())?;
    }
    state_machine.finish_restore(restore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{EntryPayload, Term};
    use alloc::vec::Vec;
    use core::fmt;

    /// The smallest useful state machine: it counts entries, and snapshots the count.
    #[derive(Default)]
    struct Counter {
        applied: LogIndex,
    }

    #[derive(Debug, PartialEq)]
    struct BadCounter;

    impl fmt::Display for BadCounter {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("counter snapshot is not 8 bytes")
        }
    }

    impl core::error::Error for BadCounter {}

    struct CounterRestore(Vec<u8>);

    impl SnapshotRestore for CounterRestore {
        type Error = BadCounter;
        fn write_chunk(&mut self, chunk: &[u8]) -> Result<(), BadCounter> {
            self.0.extend_from_slice(chunk);
            if self.0.len() > 8 {
                return Err(BadCounter);
            }
            Ok(())
        }
    }

    impl StateMachine for Counter {
        type Response = LogIndex;
        type Snapshot = core::iter::Once<Bytes>;
        type Restore = CounterRestore;
        type RestoreError = BadCounter;

        fn apply(&mut self, entry: &Entry) -> LogIndex {
            assert_eq!(entry.index, self.applied.next());
            self.applied = entry.index;
            self.applied
        }
        fn applied_index(&self) -> LogIndex {
            self.applied
        }
        fn snapshot(&self) -> Self::Snapshot {
            core::iter::once(Bytes::copy_from_slice(&self.applied.0.to_le_bytes()))
        }
        fn begin_restore(&self) -> CounterRestore {
            CounterRestore(Vec::new())
        }
        fn finish_restore(&mut self, restore: CounterRestore) -> Result<(), BadCounter> {
            let bytes: [u8; 8] = restore.0.as_slice().try_into().map_err(|_| BadCounter)?;
            self.applied = LogIndex(u64::from_le_bytes(bytes));
            Ok(())
        }
    }

    #[test]
    fn restore_from_chunks_is_all_or_nothing() {
        let mut source = Counter::default();
        for index in 1..=3 {
            source.apply(&Entry { term: Term(1), index: LogIndex(index), payload: EntryPayload::Noop });
        }
        let mut target = Counter::default();
        let bytes: Vec<u8> = source.snapshot().flat_map(|chunk| chunk.to_vec()).collect();
        // Chunk boundaries are the receiver's business: feed one byte at a time.
        restore_from_chunks(&mut target, bytes.chunks(1)).unwrap();
        assert_eq!(target.applied_index(), LogIndex(3));

        let mut untouched = Counter::default();
        assert_eq!(restore_from_chunks(&mut untouched, [&bytes[..4]]), Err(BadCounter));
        assert_eq!(untouched.applied_index(), LogIndex(0));
    }
}
