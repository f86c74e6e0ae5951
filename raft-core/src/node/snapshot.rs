//! Snapshots and log compaction (§7, thesis ch. 5): when to take one, compacting after it,
//! and streaming one to a follower in chunks whose total size nobody needs to know up front.

use super::RaftNode;
use crate::message::MessageBody;
use crate::progress::ProgressState;
use crate::ready::{SnapshotChunk, SnapshotChunkRequest, SnapshotCreated, SnapshotMeta};
use crate::types::{EntryPayload, LogIndex, Membership, NodeId};
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
        self.memberships.iter().rev().find(|(i, _)| *i <= index).map(|(_, m)| m.clone()).unwrap_or_default()
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
        let current = self.snapshot.as_ref().map_or(self.log.snapshot_index(), |m| m.index);
        if index <= current {
            return Err(SnapshotError::Stale { current });
        }
        let term = self.log.term(index).ok_or(SnapshotError::Stale { current: self.log.snapshot_index() })?;
        let meta = SnapshotMeta { index, term, membership: self.membership_at(index) };
        self.snapshot = Some(meta.clone());
        // Invariant: applied <= handed out <= committed. `advance` later raises it to the rest.
        debug_assert!(index <= self.log.committed);
        self.log.applied = self.log.applied.max(index);
        let compact = LogIndex(index.0.saturating_sub(self.config.snapshot_trailing_entries));
        if compact > self.log.snapshot_index() {
            // Keep the configuration in effect at the compaction point; older ones go.
            let keep_from = self.memberships.iter().rposition(|(i, _)| *i <= compact).unwrap_or(0);
            self.memberships.drain(..keep_from);
            self.log.compact_to(compact);
        }
        Ok(SnapshotCreated { meta, compact_through: self.log.snapshot_index() })
    }

    /// Leader: asks the driver for the chunk `to` needs next.
    pub(super) fn request_snapshot_chunk(&mut self, to: NodeId) {
        let ticks = self.ticks;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let Some(meta) = self.snapshot.as_ref().filter(|m| m.index == pr.snapshot_index) else {
            // The snapshot was replaced by a newer one: start over with it.
            pr.become_probe();
            self.needs_flush = true;
            return;
        };
        pr.chunk_outstanding = true;
        pr.chunk_sent_tick = ticks;
        let request = SnapshotChunkRequest { to, meta: meta.clone(), offset: pr.snapshot_offset };
        self.snapshot_chunks_wanted.push(request);
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
        let Some(pr) = self.progress.get(&to) else {
            return;
        };
        let wanted = self.role == super::Role::Leader
            && pr.state == ProgressState::Snapshot
            && pr.snapshot_index == snapshot_index
            && pr.snapshot_offset == offset;
        let Some(meta) = self.snapshot.clone().filter(|m| wanted && m.index == snapshot_index) else {
            return;
        };
        self.send(
            to,
            MessageBody::InstallSnapshot { meta: alloc::boxed::Box::new(meta), offset, data, last },
        );
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
        let Some(pr) = self.progress.get_mut(&from) else { return };
        if pr.state != ProgressState::Snapshot || pr.snapshot_index != snapshot_index {
            return;
        }
        if done {
            // Installed, or the follower had committed past it already: either way its log
            // matches ours up to the snapshot index (committed entries never differ).
            pr.accept(snapshot_index);
            pr.become_probe();
            pr.next_index = snapshot_index.next().max(pr.match_index.next());
            self.stats.snapshots_sent += 1;
            self.needs_flush = true;
            if snapshot_index > self.log.committed {
                self.maybe_commit();
            }
            return;
        }
        pr.snapshot_offset = next_offset;
        pr.chunk_outstanding = false;
        self.request_snapshot_chunk(from);
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
        let expected = match &self.incoming_snapshot {
            Some((receiving, next)) if *receiving == meta => *next,
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
            self.incoming_snapshot = Some((meta, next_offset));
        }
        // The chunk must be on disk before it is acknowledged.
        let body = MessageBody::InstallSnapshotResponse { snapshot_index, next_offset, done: last };
        self.send_after_persist(leader, body);
    }

    /// Swaps the log for the snapshot, keeping entries after it if they match (§7).
    fn install_snapshot(&mut self, meta: SnapshotMeta) {
        self.log.install_snapshot(meta.index, meta.term);
        let log = &self.log;
        let mut memberships = alloc::vec![(meta.index, meta.membership.clone())];
        for entry in log.all_entries() {
            if let EntryPayload::Membership(m) = &entry.payload {
                memberships.push((entry.index, (**m).clone()));
            }
        }
        self.memberships = memberships;
        self.stats.snapshots_installed += 1;
        self.events.push(crate::events::RaftEvent::SnapshotInstalled { index: meta.index });
        self.snapshot_installed = Some(meta.clone());
        self.snapshot = Some(meta);
    }
}
