//! Snapshots and log compaction (§7, thesis ch. 5): when to take one, compacting after it,
//! and streaming one to a follower in chunks whose total size nobody needs to know up front.

use super::RaftNode;
use crate::message::MessageBody;
use crate::ready::{SnapshotChunk, SnapshotChunkRequest, SnapshotCreated, SnapshotMeta};
use crate::types::{LogIndex, Membership, NodeId};
use bytes::Bytes;
use core::fmt;

/// Why [`RaftNode::snapshot_created`] refused a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The state machine has not applied that index yet.
    NotApplied {
        /// The highest applied index.
        applied: LogIndex,
    },
    /// The node already holds a snapshot at least this recent.
    Stale {
        /// The current snapshot's index.
        current: LogIndex,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::NotApplied { applied } => write!(f, "snapshot beyond the applied index {applied}"),
            SnapshotError::Stale { current } => write!(f, "a snapshot at index {current} already exists"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// A follower's snapshot in the middle of its transfer.
#[derive(Clone, Debug)]
pub(super) struct Incoming {
    /// Who sends it, and in which term: chunks are resumed by offset only from the same leader,
    /// since nothing promises that two leaders' snapshot bytes at one index are the same
    /// (a state machine's encoding need not be canonical).
    leader: NodeId,
    term: crate::types::Term,
    meta: SnapshotMeta,
    /// The offset expected next.
    next_offset: u64,
}

/// How sending a snapshot to a follower ended, as the driver saw it (etcd's `ReportSnapshot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotStatus {
    /// Every chunk left. Nothing changes: the follower's answer moves the leader on.
    Finished,
    /// A chunk could not be sent (the connection failed, the snapshot could not be read).
    Failed,
}

impl RaftNode {
    /// The index to snapshot at, once the policy (`snapshot_interval_entries`) says it is time.
    pub fn snapshot_wanted(&self) -> Option<LogIndex> {
        let interval = self.config.snapshot_interval_entries;
        let last = self.snapshot.as_ref().map_or(LogIndex(0), |m| m.index);
        (interval > 0 && self.log.applied.0.saturating_sub(last.0) >= interval).then_some(self.log.applied)
    }

    /// The latest snapshot this node holds.
    pub fn latest_snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }

    /// The configuration in effect at `index` (the last one appended at or before it).
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        self.log.membership_at(index).clone()
    }

    /// What a snapshot of the state machine as of `index` says about the log: the term at
    /// `index` and the configuration in force there with its entry's index (§7, thesis §4.1).
    /// `None` when the log no longer knows `index`'s term.
    pub fn snapshot_meta_at(&self, index: LogIndex) -> Option<SnapshotMeta> {
        let term = self.log.term(index)?;
        let (membership_index, membership) = self.log.membership_with_index_at(index);
        Some(SnapshotMeta { index, term, membership: membership.clone(), membership_index })
    }

    /// The driver has durably stored a snapshot of its state machine as of `index` (on demand,
    /// or because [`RaftNode::snapshot_wanted`] asked). The log is compacted behind it, keeping
    /// `snapshot_trailing_entries` for slow followers.
    ///
    /// `index` may be any index the state machine has applied: one acknowledged by
    /// [`RaftNode::advance`], or one handed out in the `committed_entries` of the `Ready` being
    /// worked on, so that a driver can snapshot from inside its apply loop (after applying
    /// `index`, before `advance`). The snapshot proves the entries up to `index` applied, so
    /// the node counts them as applied from then on.
    ///
    /// # Errors
    /// [`SnapshotError`] if `index` was not handed out to apply yet or is not newer than the
    /// current snapshot.
    pub fn snapshot_created(&mut self, index: LogIndex) -> Result<SnapshotCreated, SnapshotError> {
        let handed_out = self.pending.as_ref().map_or(self.log.applied, |p| p.applied_to);
        if index > handed_out {
            return Err(SnapshotError::NotApplied { applied: handed_out });
        }
        let current = self.snapshot.as_ref().map_or(self.log.compacted_index(), |m| m.index);
        if index <= current {
            return Err(SnapshotError::Stale { current });
        }
        let meta = self
            .snapshot_meta_at(index)
            .ok_or(SnapshotError::Stale { current: self.log.compacted_index() })?;
        self.snapshot = Some(meta.clone());
        // Invariant: applied <= handed out <= committed. `advance` later raises it to the rest.
        debug_assert!(index <= self.log.committed);
        self.log.applied = self.log.applied.max(index);
        let compact = LogIndex(index.0.saturating_sub(self.config.snapshot_trailing_entries));
        if compact > self.log.compacted_index() {
            self.log.compact_to(compact);
        }
        Ok(SnapshotCreated { meta, compact_through: self.log.compacted_index() })
    }

    /// Leader: asks the driver for the chunk `to` needs next.
    pub(super) fn request_snapshot_chunk(&mut self, to: NodeId) {
        let ticks = self.ticks;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let Some(sending) = pr.snapshot_sending() else {
            return;
        };
        match self.snapshot.as_ref().filter(|m| m.index == sending.index) {
            Some(meta) => {
                sending.chunk_outstanding = true;
                sending.chunk_sent_tick = ticks;
                let request = SnapshotChunkRequest { to, meta: meta.clone(), offset: sending.offset };
                self.snapshot_chunks_wanted.push(request);
            }
            None => {
                // The snapshot was replaced by a newer one: start over with it.
                pr.become_probe();
                self.needs_flush = true;
            }
        }
    }

    /// Leader: the driver read a chunk asked for in [`crate::Ready::snapshot_chunks_wanted`].
    /// Chunks for a snapshot or an offset no longer wanted are ignored.
    pub fn send_snapshot_chunk(
        &mut self,
        to: NodeId,
        snapshot_index: LogIndex,
        offset: u64,
        data: Bytes,
        last: bool,
    ) {
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let wanted = self.role == super::Role::Leader
            && pr.snapshot_sending().is_some_and(|s| s.index == snapshot_index && s.offset == offset);
        let Some(meta) = self.snapshot.clone().filter(|m| wanted && m.index == snapshot_index) else {
            return;
        };
        self.send(
            to,
            MessageBody::InstallSnapshot { meta: alloc::boxed::Box::new(meta), offset, data, last },
        );
    }

    /// Leader: the driver tells how sending a snapshot to `peer` ended (etcd's
    /// `ReportSnapshot`). On [`SnapshotStatus::Failed`] the transfer is given up and the follower
    /// is probed again once it answers a heartbeat, when a new snapshot is started if it still
    /// needs one (§7). Ignored on a non-leader, for a peer this leader does not track, or for a
    /// follower not receiving a snapshot.
    pub fn report_snapshot(&mut self, peer: NodeId, status: SnapshotStatus) {
        if self.role != super::Role::Leader || status == SnapshotStatus::Finished {
            return;
        }
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.snapshot_failed();
        }
    }

    /// Leader: a follower acknowledged a chunk (or the whole snapshot).
    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: LogIndex,
        next_offset: u64,
        done: bool,
    ) {
        if !self.note_answer(from) {
            return;
        }
        let round = self.round;
        let Some(pr) = self.progress.get_mut(&from) else { return };
        let Some(sending) = pr.snapshot_sending().filter(|s| s.index == snapshot_index) else {
            return;
        };
        if !done {
            sending.offset = next_offset;
            sending.chunk_outstanding = false;
            self.request_snapshot_chunk(from);
            return;
        }
        // Installed, or the follower had committed past it already: either way its log
        // matches ours up to the snapshot index (committed entries never differ).
        pr.accept(snapshot_index, round);
        pr.become_probe();
        pr.next_index = snapshot_index.next().max(pr.match_index.next());
        self.stats.snapshots_sent += 1;
        self.needs_flush = true;
        if snapshot_index > self.log.committed {
            self.maybe_commit();
        }
    }

    /// Follower: one chunk from the leader. Chunks must arrive in order; any other answer tells
    /// the leader where to resume.
    pub(super) fn handle_install_snapshot(
        &mut self,
        leader: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        last: bool,
    ) {
        let snapshot_index = meta.index;
        if meta.index <= self.log.committed {
            // A stale snapshot never rolls a node back (§7): we already hold all it covers.
            self.incoming_snapshot = None;
            let body = MessageBody::InstallSnapshotResponse { snapshot_index, next_offset: 0, done: true };
            self.send_after_persist(leader, body);
            return;
        }
        if self.snapshot_installed.is_some() {
            // A snapshot completed in the batch not yet handed out. A driver stages a `Ready`'s
            // chunks and then installs "the staged snapshot", so chunks of any snapshot after
            // the last one of the installed snapshot would be installed as its bytes (§5.4.3
            // State Machine Safety, §7). Refuse the chunk: not staged, not acknowledged; the
            // leader resends it after its chunk timeout, by when this batch has gone out.
            self.stats.snapshot_chunks_deferred += 1;
            return;
        }
        let term = self.term;
        let expected = match &self.incoming_snapshot {
            Some(incoming) if incoming.meta == meta && incoming.leader == leader && incoming.term == term => {
                incoming.next_offset
            }
            // A new snapshot, or the same one from another leader: start over.
            _ => 0,
        };
        if offset != expected {
            let body =
                MessageBody::InstallSnapshotResponse { snapshot_index, next_offset: expected, done: false };
            self.send(leader, body);
            return;
        }
        let next_offset = offset + data.len() as u64;
        self.snapshot_chunks.push(SnapshotChunk { meta: meta.clone(), offset, data, last });
        if last {
            self.incoming_snapshot = None;
            self.install_snapshot(meta);
        } else {
            self.incoming_snapshot = Some(Incoming { leader, term, meta, next_offset });
        }
        // The chunk must be on disk before it is acknowledged.
        let body = MessageBody::InstallSnapshotResponse { snapshot_index, next_offset, done: last };
        self.send_after_persist(leader, body);
    }

    /// Swaps the log for the snapshot, keeping entries after it if they match (§7).
    fn install_snapshot(&mut self, meta: SnapshotMeta) {
        let membership_before = self.membership().clone();
        self.log.install_snapshot(meta.index, meta.term, (meta.membership_index, meta.membership.clone()));
        if *self.membership() != membership_before {
            self.report_membership();
        }
        self.stats.snapshots_installed += 1;
        self.events.push(crate::events::RaftEvent::SnapshotInstalled { index: meta.index });
        self.snapshot_installed = Some(meta.clone());
        self.snapshot = Some(meta);
    }
}
