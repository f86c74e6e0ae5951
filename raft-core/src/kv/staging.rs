//! A streamed restore in progress ([`crate::kv::CommandBody::RestoreChunk`]): the pieces applied
//! so far, decoded as they arrive, and the rules that end a restore its proposer abandoned.
//!
//! The staging is part of the store's replicated state, so it is part of every snapshot
//! (`crate::kv::snapshot` writes it after the store's own records). A snapshot must capture the
//! whole state machine state at its index (thesis §5.1, Raft §7): were the staging left out, a
//! replica restarted from a snapshot taken between a restore's first and last pieces would
//! replay only the later pieces, refuse the last one and keep the old store while every other
//! replica swapped the new one in. Carrying it costs nothing when no restore is staged (no
//! record is written), needs no driver to remember anything, and keeps compaction going while
//! a large restore streams in. (The alternative, every driver deferring its snapshots while a
//! restore is staged, lets whoever keeps a restore staged grow every replica's log.)
//!
//! Every rule here is decided from the log alone (piece sequence numbers and the log clock, the
//! largest proposer timestamp applied), so every replica keeps or drops a staged restore at the
//! same entry.

use crate::kv::limits::{RESTORE_IDLE_MS, RESTORE_PIECES_MAX, RESTORE_STAGED_MS_MAX};
use crate::kv::snapshot::KvRestore;

/// The pieces of a streamed restore received so far, decoded as they arrive: memory grows with
/// the store being built, never with a second copy of the raw snapshot.
#[derive(Clone, Debug)]
pub(crate) struct StagedRestore {
    /// Chosen by the proposer; the same for every piece.
    pub(crate) id: u64,
    /// The sequence number the next piece must carry.
    pub(crate) next_sequence: u64,
    /// Snapshot bytes staged so far.
    pub(crate) bytes: u64,
    /// The log clock when the first piece was applied, for [`RESTORE_STAGED_MS_MAX`].
    pub(crate) first_ms: u64,
    /// The log clock when the last piece was applied, for [`RESTORE_IDLE_MS`].
    pub(crate) last_ms: u64,
    /// The backup being decoded (a user's backup: its own staging, if any, is ignored).
    pub(crate) restore: KvRestore,
}

impl StagedRestore {
    /// A restore whose first piece is being applied at log clock `clock_ms`.
    pub(crate) fn start(id: u64, clock_ms: u64, restore: KvRestore) -> StagedRestore {
        StagedRestore { id, next_sequence: 0, bytes: 0, first_ms: clock_ms, last_ms: clock_ms, restore }
    }

    /// Why this restore can no longer finish at log clock `clock_ms`, if it cannot: idle for
    /// over [`RESTORE_IDLE_MS`] since its last piece (its proposer gave up or lost leadership),
    /// staged for over [`RESTORE_STAGED_MS_MAX`] since its first piece, or
    /// [`RESTORE_PIECES_MAX`] pieces without the last one. The last two bound its life from its
    /// first piece, so a proposer that keeps sending small pieces cannot keep it staged (and
    /// its memory held) for ever; the piece count holds even while nothing moves the log clock.
    pub(crate) fn expired(&self, clock_ms: u64) -> Option<&'static str> {
        if clock_ms.saturating_sub(self.last_ms) > RESTORE_IDLE_MS {
            Some("idle for longer than RESTORE_IDLE_MS of log clock")
        } else if clock_ms.saturating_sub(self.first_ms) > RESTORE_STAGED_MS_MAX {
            Some("staged for longer than RESTORE_STAGED_MS_MAX of log clock")
        } else if self.next_sequence >= RESTORE_PIECES_MAX {
            Some("RESTORE_PIECES_MAX pieces without the last one")
        } else {
            None
        }
    }
}
