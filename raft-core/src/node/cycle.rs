//! The Ready cycle: what a node hands its driver in one ordered batch, and what the driver
//! confirms with `advance` (see [`crate::Ready`] for the order).

use super::{Pending, RaftNode};
use crate::message::Message;
use crate::ready::Ready;
use crate::types::Role;
use alloc::vec::Vec;

impl RaftNode {
    // ----- the Ready cycle -------------------------------------------------------------------

    /// Whether [`RaftNode::ready`] would return anything. False while a `Ready` awaits `advance`.
    pub fn has_ready(&self) -> bool {
        if self.pending.is_some() {
            return false;
        }
        self.hard_state() != self.hard_state_handed_out
            || self.soft_state() != self.soft_state_handed_out
            || !self.messages.is_empty()
            || !self.messages_after_persist.is_empty()
            || self.log.unstable_from <= self.log.last_index()
            || self.log.committed > self.log.applied
            || !self.read_states.is_empty()
            || !self.events.is_empty()
            || !self.snapshot_chunks_wanted.is_empty()
            || !self.snapshot_chunks.is_empty()
            || self.snapshot_installed.is_some()
            || (self.role == Role::Leader && (self.needs_flush || self.reads.round_wanted))
    }

    /// Hands out everything to do (see [`Ready`] for the order). Returns an empty batch while an
    /// earlier one awaits [`RaftNode::advance`].
    pub fn ready(&mut self) -> Ready {
        if self.pending.is_some() {
            return Ready::default();
        }
        if self.role == Role::Leader && self.reads.round_wanted {
            // Every read registered since the last batch shares this one round.
            self.broadcast_heartbeat();
        }
        if self.role == Role::Leader && self.needs_flush {
            self.needs_flush = false;
            self.send_appends();
        }
        let hard_state = self.hard_state();
        let soft_state = self.soft_state();
        let entries = self.log.unstable_entries().to_vec();
        let committed_entries = self.log.entries_to_apply().to_vec();
        let pending = Pending {
            hard_state,
            soft_state,
            last_entry: entries.last().map(|e| (e.index, e.term)),
            applied_to: committed_entries.last().map_or(self.log.applied, |e| e.index),
        };
        self.log.unstable_from = self.log.last_index().next();
        self.pending = Some(pending);
        Ready {
            hard_state: (hard_state != self.hard_state_handed_out).then_some(hard_state),
            entries,
            messages: core::mem::take(&mut self.messages),
            messages_after_persist: core::mem::take(&mut self.messages_after_persist),
            committed_entries,
            soft_state: (soft_state != self.soft_state_handed_out).then_some(soft_state),
            read_states: self.take_read_states(),
            snapshot_chunks_wanted: core::mem::take(&mut self.snapshot_chunks_wanted),
            snapshot_chunks: core::mem::take(&mut self.snapshot_chunks),
            snapshot_installed: self.snapshot_installed.take(),
            events: core::mem::take(&mut self.events),
        }
    }

    /// Messages that may leave now, without waiting for the next `Ready`: heartbeats, a
    /// leader's AppendEntries (a leader may send entries before it has persisted them itself,
    /// thesis §10.2.1) and others that promise nothing about durable state. A driver may call
    /// this at any time, in particular while a `Ready` is being persisted, so that replication
    /// and heartbeats do not wait for the disk. Messages that must follow a persist stay queued
    /// for the next `Ready`.
    pub fn take_messages(&mut self) -> Vec<Message> {
        if self.role == Role::Leader && self.reads.round_wanted {
            self.broadcast_heartbeat();
        }
        if self.role == Role::Leader && self.needs_flush {
            self.needs_flush = false;
            self.send_appends();
        }
        core::mem::take(&mut self.messages)
    }

    /// Confirms that the last `Ready` was done: state persisted, messages sent, entries applied.
    pub fn advance(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        self.hard_state_handed_out = pending.hard_state;
        self.soft_state_handed_out = pending.soft_state;
        if let Some((index, term)) = pending.last_entry {
            // The log may have been cut and refilled since; only a matching entry is stable.
            if self.log.matches(index, term) && index > self.log.stable {
                self.log.stable = index;
            }
        }
        self.log.applied = self.log.applied.max(pending.applied_to);
        debug_assert!(self.log.applied <= self.log.committed, "applied <= committed");
        if self.role == Role::Leader && self.log.stable > self.log.committed {
            // The leader counts itself only once its own entries are durable.
            self.maybe_commit();
        }
    }
}
