//! The batch a node hands to its driver, and what the driver restores a node from.

use crate::message::Message;
use crate::reads::ReadState;
use crate::types::{Entry, EntryPayload, HardState, LogIndex, Membership, NodeId, Role, Term};
use alloc::vec;
use alloc::vec::Vec;

/// Everything a node wants done, in the order it must be done (etcd raft calls this `Ready`).
///
/// 1. Send [`Ready::messages`]: they may leave before anything is persisted (a leader's
///    AppendEntries and heartbeats; thesis §10.2.1 lets the leader write its log in parallel).
/// 2. Persist [`Ready::hard_state`] and [`Ready::entries`] durably, atomically with each other.
///    The first entry's index says where the stored log is truncated before appending.
/// 3. Only then send [`Ready::messages_after_persist`] (vote grants, append acknowledgements):
///    they promise that state is durable.
/// 4. Apply [`Ready::committed_entries`] to the state machine, in order.
/// 5. Call [`crate::RaftNode::advance`]. Until then the node hands out no further `Ready`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The new hard state, if it changed since the last `Ready`.
    pub hard_state: Option<HardState>,
    /// Entries to append to stable storage, replacing any stored entries from the first one's
    /// index on.
    pub entries: Vec<Entry>,
    /// Messages that may be sent at once.
    pub messages: Vec<Message>,
    /// Messages that may be sent only after `hard_state` and `entries` are durable.
    pub messages_after_persist: Vec<Message>,
    /// Committed entries to apply, in log order.
    pub committed_entries: Vec<Entry>,
    /// Role, leader or term changed since the last `Ready`: the new values.
    pub soft_state: Option<SoftState>,
    /// Reads given an index (serve each once `index` is applied) or refused.
    pub read_states: Vec<ReadState>,
    /// Leader: read these chunks of your latest snapshot and hand each to
    /// [`crate::RaftNode::send_snapshot_chunk`].
    pub snapshot_chunks_wanted: Vec<SnapshotChunkRequest>,
    /// Follower: snapshot chunks received, to write (in order) to a staging area before the
    /// messages after persist go out. A chunk at offset 0 starts a new staged snapshot
    /// (discard what was staged before).
    ///
    /// When `snapshot_installed` is set, these chunks all belong to that snapshot and the last
    /// of them is its last chunk: the node refuses (does not stage, does not acknowledge) chunks
    /// of any snapshot while an installation waits in the batch not yet handed out, so "stage
    /// the chunks, then install what is staged" installs exactly the snapshot's own bytes
    /// (§5.4.3 State Machine Safety, §7).
    pub snapshot_chunks: Vec<SnapshotChunk>,
    /// Follower: the staged snapshot is complete (after staging this `Ready`'s
    /// `snapshot_chunks`). Make it the current snapshot, delete every stored log entry, restore
    /// the state machine from it, then persist `entries` as usual; `committed_entries` continue
    /// after it.
    pub snapshot_installed: Option<SnapshotMeta>,
    /// What happened since the last `Ready`, for observers.
    pub events: Vec<crate::events::RaftEvent>,
}

/// A leader's request for one chunk of its snapshot, for follower `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotChunkRequest {
    /// The follower the chunk is for.
    pub to: NodeId,
    /// The snapshot (the leader's latest).
    pub meta: SnapshotMeta,
    /// Byte offset of the chunk wanted.
    pub offset: u64,
}

/// One received snapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotChunk {
    /// The snapshot it belongs to.
    pub meta: SnapshotMeta,
    /// Its byte offset (chunks arrive in order, without gaps).
    pub offset: u64,
    /// The bytes.
    pub data: bytes::Bytes,
    /// Whether it is the final chunk.
    pub last: bool,
}

/// What [`crate::RaftNode::snapshot_created`] decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotCreated {
    /// The snapshot, as followers will receive it.
    pub meta: SnapshotMeta,
    /// Storage may delete every entry up to and including this index.
    pub compact_through: LogIndex,
}

impl Ready {
    /// Whether this batch asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.messages_after_persist.is_empty()
            && self.committed_entries.is_empty()
            && self.soft_state.is_none()
            && self.read_states.is_empty()
            && self.snapshot_chunks_wanted.is_empty()
            && self.snapshot_chunks.is_empty()
            && self.snapshot_installed.is_none()
            && self.events.is_empty()
    }
}

/// Who a node thinks it is, for observers; not persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SoftState {
    /// The node's role.
    pub role: Role,
    /// The leader it follows or is, if known.
    pub leader: Option<NodeId>,
    /// Its current term.
    pub term: Term,
}

/// Describes a snapshot: the state machine after applying every entry up to `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SnapshotMeta {
    /// Last index the snapshot covers.
    pub index: LogIndex,
    /// Term of the entry at `index`.
    pub term: Term,
    /// The configuration in effect at `index`.
    pub membership: Membership,
    /// The index of `membership`'s own configuration entry (at most `index`; 0 for a
    /// configuration that no entry carries). Kept so that a restart or a follower installing
    /// the snapshot reports the same [`crate::RaftNode::membership_index`], the compare-and-set
    /// token of membership changes, as the node that compacted the entry (thesis §4.1).
    pub membership_index: LogIndex,
}

/// What a driver read back from stable storage to restart a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The latest snapshot, if any.
    pub snapshot: Option<SnapshotMeta>,
    /// The persisted log entries, contiguous. With a snapshot they must start at or before
    /// `snapshot.index + 1`; entries the snapshot covers are dropped on restore.
    pub entries: Vec<Entry>,
    /// The highest index the state machine already holds (at least the snapshot's index).
    /// Entries after it are handed out again to apply.
    pub applied: LogIndex,
}

impl Restored {
    /// A brand-new, empty node that waits to be contacted by a cluster (to join one).
    pub fn empty() -> Restored {
        Restored::default()
    }
}

/// The starting state of every server of a new cluster (hashicorp's `BootstrapCluster`): a log
/// holding one configuration entry at index 1, term 1, already committed. Every initial member
/// must be bootstrapped with the same `membership`.
pub fn bootstrap(membership: Membership) -> Restored {
    let entry = Entry {
        term: Term(1),
        index: LogIndex(1),
        payload: EntryPayload::Membership(alloc::boxed::Box::new(membership)),
    };
    Restored {
        hard_state: HardState { term: Term(1), voted_for: None, commit: LogIndex(1) },
        snapshot: None,
        entries: vec![entry],
        applied: LogIndex(0),
    }
}

/// Recovery after a permanent loss of quorum (hashicorp's `RecoverCluster`).
///
/// **Unsafe by design.** When a majority of voters is gone for good, no leader can ever be
/// elected again. This rewrites a *stopped* survivor's stored state so that `membership` (for
/// example just the survivors) is in effect: it appends a configuration entry in a new term
/// after the last stored entry. Run it with the same `membership` on every survivor, then start
/// them; the most up-to-date survivor wins the election and commits the new configuration.
///
/// What it can cost: entries that only the lost servers stored, committed or not, are gone,
/// and clients that saw them committed will not see them again. Only an operator who knows
/// the lost servers will never return should run it.
///
/// # Errors
/// [`crate::ConfigError::InconsistentRestore`] if `membership` has no voters.
pub fn recover_cluster(
    mut restored: Restored,
    membership: Membership,
) -> Result<Restored, crate::ConfigError> {
    if membership.voters.is_empty() || membership.is_joint() {
        return Err(crate::ConfigError::InconsistentRestore(
            "recovery needs a plain configuration with voters",
        ));
    }
    let (last_index, last_term) = match (restored.entries.last(), &restored.snapshot) {
        (Some(entry), _) => (entry.index, entry.term),
        (None, Some(meta)) => (meta.index, meta.term),
        (None, None) => (LogIndex(0), Term(0)),
    };
    // A term no server has used, so the new entry can never be mistaken for an old one.
    let term = restored.hard_state.term.max(last_term).next();
    restored.entries.push(Entry {
        term,
        index: last_index.next(),
        payload: EntryPayload::Membership(alloc::boxed::Box::new(membership)),
    });
    restored.hard_state.term = term;
    restored.hard_state.voted_for = None;
    Ok(restored)
}
