//! A leader's view of one follower: how far its log matches and how to send it more.
//!
//! Flow control follows the shape etcd raft made standard: a follower starts in `Probe`
//! (one AppendEntries at a time, until one is accepted) and moves to `Replicate` (pipelined
//! AppendEntries, bounded by an in-flight window of messages and bytes).

use crate::types::LogIndex;
use alloc::collections::VecDeque;

/// How the leader sends to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The match point is unknown: send one probe, wait for its answer or a heartbeat reply.
    Probe,
    /// The follower is known to match: stream entries, up to the in-flight window.
    Replicate,
    /// The follower needs entries this leader compacted: a snapshot is being streamed.
    Snapshot,
}

/// One AppendEntries still unacknowledged.
#[derive(Clone, Copy, Debug)]
struct Inflight {
    /// Last index the message carried.
    last_index: LogIndex,
    /// Entry bytes it carried.
    bytes: u64,
}

/// The in-flight window of one follower: bounded in messages and in bytes.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    queue: VecDeque<Inflight>,
    bytes: u64,
    messages_max: usize,
    bytes_max: u64,
}

impl Inflights {
    pub(crate) fn new(messages_max: usize, bytes_max: u64) -> Inflights {
        Inflights { queue: VecDeque::new(), bytes: 0, messages_max, bytes_max }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.queue.len() >= self.messages_max || self.bytes >= self.bytes_max
    }

    pub(crate) fn add(&mut self, last_index: LogIndex, bytes: u64) {
        self.queue.push_back(Inflight { last_index, bytes });
        self.bytes += bytes;
    }

    /// Frees every message whose entries are all at or below `index`.
    pub(crate) fn free_to(&mut self, index: LogIndex) {
        while let Some(front) = self.queue.front() {
            if front.last_index > index {
                break;
            }
            self.bytes -= front.bytes;
            self.queue.pop_front();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// The leader's record of one follower (Figure 2's nextIndex and matchIndex, plus flow control).
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) match_index: LogIndex,
    /// Next index to send. Invariant: `match_index < next_index`.
    pub(crate) next_index: LogIndex,
    /// Probe or replicate.
    pub(crate) state: ProgressState,
    /// In probe state: a probe is out, send nothing more until an answer or a heartbeat reply.
    pub(crate) probe_sent: bool,
    /// Unacknowledged AppendEntries in replicate state.
    pub(crate) inflights: Inflights,
    /// Heard from since the last check-quorum round.
    pub(crate) recent_active: bool,
    /// A heartbeat answer showed the follower behind while nothing is left to send: some
    /// AppendEntries may have been lost. Send one empty AppendEntries at `next_index - 1`;
    /// a rejection of it sends the follower back to probing from where it really is.
    pub(crate) check_lost_entries: bool,
    /// In snapshot state: the snapshot being sent, the offset acknowledged so far, whether a
    /// chunk is out, and when it was sent (to resend a lost one).
    pub(crate) snapshot_index: LogIndex,
    pub(crate) snapshot_offset: u64,
    pub(crate) chunk_outstanding: bool,
    pub(crate) chunk_sent_tick: u64,
    /// The latest heartbeat round it answered (reads are confirmed by rounds).
    pub(crate) acked_round: u64,
    /// Tick count at which the leader last heard from it.
    pub(crate) last_contact_tick: u64,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, messages_max: usize, bytes_max: u64) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflights: Inflights::new(messages_max, bytes_max),
            recent_active: false,
            check_lost_entries: false,
            acked_round: 0,
            snapshot_index: LogIndex(0),
            snapshot_offset: 0,
            chunk_outstanding: false,
            chunk_sent_tick: 0,
            last_contact_tick: 0,
        }
    }

    /// Whether the leader must hold back further AppendEntries.
    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.is_full(),
            ProgressState::Snapshot => true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflights.clear();
        self.next_index = self.next_index.max(self.match_index.next());
    }

    /// Starts streaming the snapshot that ends at `index`.
    pub(crate) fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflights.clear();
        self.snapshot_index = index;
        self.snapshot_offset = 0;
        self.chunk_outstanding = false;
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.probe_sent = false;
        self.inflights.clear();
        self.next_index = self.match_index.next();
    }

    /// Records an acceptance up to `index`. Returns false for a stale acknowledgement.
    pub(crate) fn accept(&mut self, index: LogIndex) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index.next());
        updated
    }

    /// Records that a message ending at `last_index` was sent.
    pub(crate) fn sent(&mut self, last_index: LogIndex, bytes: u64, entry_count: usize) {
        match self.state {
            ProgressState::Replicate => {
                if entry_count > 0 {
                    self.next_index = last_index.next();
                    self.inflights.add(last_index, bytes);
                }
            }
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Snapshot => {}
        }
    }

    /// Handles a rejection of the AppendEntries sent with `prev_log_index == rejected_index`.
    /// `match_hint` is the highest index the leader now believes may match. Returns false when
    /// the rejection is stale (it answers a message older than the current state).
    pub(crate) fn reject(&mut self, rejected_index: LogIndex, match_hint: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected_index <= self.match_index {
                    return false;
                }
                // Entries past the match point are lost or conflict: fall back to probing.
                self.become_probe();
                self.next_index = match_hint.min(rejected_index).next().max(self.match_index.next());
                true
            }
            // A rejection of an AppendEntries sent before the snapshot started.
            ProgressState::Snapshot => false,
            ProgressState::Probe => {
                if self.next_index.prev() != rejected_index {
                    return false;
                }
                self.next_index = match_hint.min(rejected_index).next().max(self.match_index.next());
                self.probe_sent = false;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_window_bounds_messages_and_bytes() {
        let mut window = Inflights::new(2, 100);
        window.add(LogIndex(5), 10);
        assert!(!window.is_full());
        window.add(LogIndex(9), 10);
        assert!(window.is_full());
        window.free_to(LogIndex(5));
        assert_eq!(window.len(), 1);
        window.add(LogIndex(20), 200);
        assert!(window.is_full(), "byte bound applies too");
    }

    #[test]
    fn stale_rejection_is_ignored() {
        let mut progress = Progress::new(LogIndex(11), 4, 1000);
        progress.accept(LogIndex(10));
        progress.become_replicate();
        assert!(!progress.reject(LogIndex(9), LogIndex(3)));
        assert_eq!(progress.next_index, LogIndex(11));
        assert!(progress.reject(LogIndex(12), LogIndex(11)));
        assert_eq!(progress.state, ProgressState::Probe);
        assert_eq!(progress.next_index, LogIndex(12));
    }
}
