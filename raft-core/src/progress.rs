//! A leader's view of one follower: how far its log matches and how to send it more.
//!
//! Flow control is an explicit state machine, the shape etcd raft made standard, in which every
//! state can make progress again after the loss of any message (§5.3: "the leader retries
//! AppendEntries indefinitely"):
//!
//! | state | sends | leaves it | recovers from loss by |
//! |---|---|---|---|
//! | [`Flow::Probe`] | one AppendEntries, then waits | an acceptance: `Replicate` | a heartbeat answer (or nothing to wait for) re-arms the probe |
//! | [`Flow::Replicate`] | AppendEntries pipelined within the in-flight window | a rejection, or an answered heartbeat round that shows the window lost: `Probe` | falling back to `Probe` from the match point |
//! | [`Flow::Snapshot`] | snapshot chunks, one at a time (§7) | the follower's final answer, or a reported failure: `Probe` | resending a chunk unanswered for two heartbeat intervals |
//!
//! A driver may also say a peer is unreachable or a snapshot send failed
//! ([`crate::RaftNode::report_unreachable`], [`crate::RaftNode::report_snapshot`]); both move
//! the follower to `Probe` at once rather than after the next heartbeat.

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

/// How the leader sends to one follower now, with the data only that state needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// The match point is unknown: one AppendEntries is out at a time.
    Probe {
        /// A probe is out: send nothing more until an answer or a heartbeat answer.
        probe_sent: bool,
    },
    /// The follower is known to match: stream entries, up to the in-flight window.
    Replicate {
        /// The leader's heartbeat round when the window last moved (the first message into an
        /// empty window, or an acceptance that freed some). A follower that answers a later
        /// round while the window has not moved since lost what is in it, or lost the answers.
        window_round: u64,
    },
    /// The follower needs entries the leader compacted: a snapshot is being streamed (§7).
    Snapshot(SnapshotSending),
}

/// A snapshot on its way to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotSending {
    /// Last index the snapshot being sent covers (not the leader's compaction point, which may
    /// lag it by the trailing entries).
    pub(crate) index: LogIndex,
    /// The offset the follower acknowledged so far.
    pub(crate) offset: u64,
    /// A chunk is out and unanswered.
    pub(crate) chunk_outstanding: bool,
    /// When the outstanding chunk was asked for, to resend a lost one.
    pub(crate) chunk_sent_tick: u64,
}

/// What a heartbeat answer from a lagging follower calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Nothing to do.
    None,
    /// AppendEntries may be sent again.
    Send,
    /// The snapshot chunk must be asked for again.
    ResendChunk,
}

/// The leader's record of one follower (Figure 2's nextIndex and matchIndex, plus flow control).
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) match_index: LogIndex,
    /// Next index to send. Invariant: `match_index < next_index`.
    pub(crate) next_index: LogIndex,
    /// Flow-control state.
    pub(crate) flow: Flow,
    /// Unacknowledged AppendEntries. Invariant: empty unless `flow` is `Replicate`.
    pub(crate) inflights: Inflights,
    /// A heartbeat answer showed the follower behind while nothing is left to send: some
    /// AppendEntries may have been lost. Send one empty AppendEntries at `next_index - 1`;
    /// a rejection of it sends the follower back to probing from where it really is.
    pub(crate) check_lost_entries: bool,
    /// The latest heartbeat round it answered (reads are confirmed by rounds).
    pub(crate) acked_round: u64,
    /// Tick count at which the leader last heard from it (check-quorum, thesis §6.2).
    pub(crate) last_contact_tick: u64,
}

impl Progress {
    pub(crate) fn new(next_index: LogIndex, messages_max: usize, bytes_max: u64) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            flow: Flow::Probe { probe_sent: false },
            inflights: Inflights::new(messages_max, bytes_max),
            check_lost_entries: false,
            acked_round: 0,
            last_contact_tick: 0,
        }
    }

    /// The state, for observers.
    pub(crate) fn state(&self) -> ProgressState {
        match self.flow {
            Flow::Probe { .. } => ProgressState::Probe,
            Flow::Replicate { .. } => ProgressState::Replicate,
            Flow::Snapshot(_) => ProgressState::Snapshot,
        }
    }

    /// The snapshot being sent, in the snapshot state.
    pub(crate) fn snapshot_sending(&mut self) -> Option<&mut SnapshotSending> {
        match &mut self.flow {
            Flow::Snapshot(sending) => Some(sending),
            _ => None,
        }
    }

    /// Whether the leader must hold back further AppendEntries.
    pub(crate) fn is_paused(&self) -> bool {
        match self.flow {
            Flow::Probe { probe_sent } => probe_sent,
            Flow::Replicate { .. } => self.inflights.is_full(),
            Flow::Snapshot(_) => true,
        }
    }

    /// Back to probing from the match point; nothing is believed in flight any more, so what
    /// follows the match point is sent again.
    pub(crate) fn become_probe(&mut self) {
        self.flow = Flow::Probe { probe_sent: false };
        self.inflights.clear();
        self.next_index = self.match_index.next();
    }

    /// Starts streaming the snapshot that ends at `index`; its first chunk is asked for now.
    pub(crate) fn become_snapshot(&mut self, index: LogIndex, tick: u64) {
        self.flow = Flow::Snapshot(SnapshotSending {
            index,
            offset: 0,
            chunk_outstanding: true,
            chunk_sent_tick: tick,
        });
        self.inflights.clear();
    }

    pub(crate) fn become_replicate(&mut self, round: u64) {
        self.flow = Flow::Replicate { window_round: round };
        self.inflights.clear();
        self.next_index = self.match_index.next();
    }

    /// Records an acceptance up to `index` during heartbeat round `round`, and moves the state
    /// on. Returns false for a stale acknowledgement.
    pub(crate) fn accept(&mut self, index: LogIndex, round: u64) -> bool {
        let updated = index > self.match_index;
        self.next_index = self.next_index.max(index.next());
        if !updated {
            return false;
        }
        self.match_index = index;
        match &mut self.flow {
            Flow::Probe { .. } => self.become_replicate(round),
            Flow::Replicate { window_round } => {
                *window_round = round;
                self.inflights.free_to(index);
            }
            // Caught up from the log after all (an answer from before the snapshot).
            Flow::Snapshot(sending) if index >= sending.index => self.become_replicate(round),
            Flow::Snapshot(_) => {}
        }
        true
    }

    /// Records that a message ending at `last_index` was sent during heartbeat round `round`.
    pub(crate) fn sent(&mut self, last_index: LogIndex, bytes: u64, entry_count: usize, round: u64) {
        match &mut self.flow {
            Flow::Replicate { window_round } => {
                if entry_count > 0 {
                    if self.inflights.len() == 0 {
                        *window_round = round;
                    }
                    self.next_index = last_index.next();
                    self.inflights.add(last_index, bytes);
                }
            }
            Flow::Probe { probe_sent } => *probe_sent = true,
            Flow::Snapshot(_) => {}
        }
    }

    /// Handles a rejection of the AppendEntries sent with `prev_log_index == rejected_index`.
    /// `match_hint` is the highest index the leader now believes may match. Returns false when
    /// the rejection is stale (it answers a message older than the current state).
    pub(crate) fn reject(&mut self, rejected_index: LogIndex, match_hint: LogIndex) -> bool {
        match self.flow {
            Flow::Replicate { .. } => {
                if rejected_index <= self.match_index {
                    return false;
                }
                // Entries past the match point are lost or conflict: fall back to probing.
                self.become_probe();
                self.next_index = match_hint.min(rejected_index).next().max(self.match_index.next());
                true
            }
            // A rejection of an AppendEntries sent before the snapshot started.
            Flow::Snapshot(_) => false,
            Flow::Probe { .. } => {
                if self.next_index.prev() != rejected_index {
                    return false;
                }
                self.next_index = match_hint.min(rejected_index).next().max(self.match_index.next());
                self.flow = Flow::Probe { probe_sent: false };
                true
            }
        }
    }

    /// The follower answered heartbeat round `round` while its log is behind the leader's
    /// `last_index`: whatever should have brought it up to date may have been lost. Decides
    /// how this state makes progress again. `tick` is now; a chunk unanswered for
    /// `chunk_resend_ticks` is deemed lost.
    pub(crate) fn recover(
        &mut self,
        round: u64,
        last_index: LogIndex,
        tick: u64,
        chunk_resend_ticks: u64,
    ) -> Recovery {
        match &mut self.flow {
            // Resend the probe: the last one or its answer may have been lost.
            Flow::Probe { probe_sent } => {
                *probe_sent = false;
                Recovery::Send
            }
            // The follower answered a round sent after the window last moved and acknowledged
            // nothing in it meanwhile: the messages or their answers were lost. Without this a
            // full window would never free again (only acceptances free it).
            Flow::Replicate { window_round } if self.inflights.len() > 0 && round > *window_round => {
                self.become_probe();
                Recovery::Send
            }
            Flow::Replicate { .. } => {
                self.check_lost_entries = self.next_index > last_index;
                Recovery::Send
            }
            Flow::Snapshot(sending) => {
                let waited = tick.saturating_sub(sending.chunk_sent_tick);
                if !sending.chunk_outstanding || waited >= chunk_resend_ticks {
                    Recovery::ResendChunk
                } else {
                    Recovery::None
                }
            }
        }
    }

    /// The driver reports the follower unreachable (a connection failed): whatever is in flight
    /// is presumed lost.
    pub(crate) fn unreachable(&mut self) {
        match &mut self.flow {
            Flow::Replicate { .. } => self.become_probe(),
            // The probe out stays out: the next heartbeat answer re-arms it, so an unreachable
            // follower is not sent a stream of probes.
            Flow::Probe { .. } => {}
            // The chunk out is presumed lost: the next heartbeat answer asks for it again.
            Flow::Snapshot(sending) => sending.chunk_outstanding = false,
        }
    }

    /// The driver could not send the snapshot: give it up and probe once the follower answers
    /// a heartbeat (a new snapshot is started then if it still needs one).
    pub(crate) fn snapshot_failed(&mut self) {
        if matches!(self.flow, Flow::Snapshot(_)) {
            self.become_probe();
            self.flow = Flow::Probe { probe_sent: true };
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

    /// cargo-mutants `progress.rs:69:24` (`-=` with `+=` or `/=` in `free_to`): an acknowledged
    /// message gives its bytes back to the window. The mutants kept (or garbled) them, so the
    /// byte bound filled with acknowledged bytes and held back a follower that had taken
    /// everything.
    #[test]
    fn freed_messages_give_their_bytes_back_to_the_window() {
        let mut window = Inflights::new(8, 100);
        window.add(LogIndex(1), 60);
        window.add(LogIndex(2), 30);
        window.free_to(LogIndex(1));
        assert_eq!(window.bytes, 30);
        window.free_to(LogIndex(2));
        assert_eq!(window.bytes, 0);
        window.add(LogIndex(3), 90);
        assert!(!window.is_full(), "90 of 100 bytes in flight");
    }

    /// cargo-mutants `progress.rs:216:29` (`>` with `>=` in `accept`): an acceptance at the
    /// match point (a duplicate or late answer) acknowledges nothing: it is stale, and a
    /// probing follower stays probing. The mutant took it as progress and streamed.
    #[test]
    fn an_acceptance_at_the_match_point_is_stale() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        assert!(progress.accept(LogIndex(5), 1));
        progress.become_probe();
        assert!(!progress.accept(LogIndex(5), 2));
        assert_eq!(progress.state(), ProgressState::Probe);
    }

    /// cargo-mutants `progress.rs:229:40` (the guard replaced with `true` or `false`) and
    /// `229:46` (`>=` with `<`) in `accept`: an acceptance from before a snapshot ends the
    /// snapshot only if it covers it (§7: the follower needs the snapshot for what it lacks).
    #[test]
    fn only_an_acceptance_covering_the_snapshot_ends_it() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.become_snapshot(LogIndex(50), 7);
        assert!(progress.accept(LogIndex(20), 1));
        assert_eq!(progress.state(), ProgressState::Snapshot, "21..=50 still need the snapshot");
        assert!(progress.accept(LogIndex(50), 2));
        assert_eq!(progress.state(), ProgressState::Replicate);
        assert_eq!(progress.next_index, LogIndex(51));
    }

    /// cargo-mutants `progress.rs:239:32` (`>` with `>=` in `sent`): an empty AppendEntries (a
    /// check of entries in flight) takes no room in the window. The mutant counted it, so two
    /// such checks filled a two-message window and held back the entries.
    #[test]
    fn an_empty_append_takes_no_room_in_the_window() {
        let mut progress = Progress::new(LogIndex(1), 2, 1000);
        progress.accept(LogIndex(4), 1);
        progress.sent(LogIndex(4), 0, 0, 1);
        progress.sent(LogIndex(4), 0, 0, 1);
        assert_eq!(progress.inflights.len(), 0);
        assert!(!progress.is_paused());
        assert_eq!(progress.next_index, LogIndex(5));
    }

    /// cargo-mutants `progress.rs:240:45` (`==` with `!=` in `sent`): the window moves with the
    /// first message into an empty window, not with the ones after it (else a window lost long
    /// ago would look fresh to `recover`, and one just sent would look lost).
    #[test]
    fn the_window_moves_with_its_first_message_only() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.accept(LogIndex(1), 1);
        progress.sent(LogIndex(2), 10, 1, 3);
        progress.sent(LogIndex(3), 10, 1, 4);
        assert_eq!(progress.flow, Flow::Replicate { window_round: 3 });
    }

    /// cargo-mutants `progress.rs:299:70` (`>` with `>=` in `recover`): an empty window has
    /// lost nothing, so a follower behind with everything sent acknowledged is sent more
    /// entries, still streaming. The mutant sent it back to probing (one message per round
    /// trip until the next acceptance).
    #[test]
    fn an_empty_window_is_never_counted_lost() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.accept(LogIndex(1), 1);
        progress.sent(LogIndex(2), 10, 1, 1);
        progress.accept(LogIndex(2), 1);
        assert_eq!(progress.recover(5, LogIndex(9), 0, 4), Recovery::Send);
        assert_eq!(progress.state(), ProgressState::Replicate);
    }

    /// cargo-mutants `progress.rs:304:59` (`>` with `==`, `<` or `>=` in `recover`): a follower
    /// behind while everything up to the leader's last entry was sent gets a check of the
    /// entries in flight (an empty AppendEntries, whose rejection sends it back to probing); one
    /// with entries still to send just gets them.
    #[test]
    fn only_a_follower_sent_everything_gets_a_check_of_entries_in_flight() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.accept(LogIndex(1), 3);
        progress.sent(LogIndex(3), 20, 2, 3);
        assert_eq!(progress.recover(3, LogIndex(3), 0, 4), Recovery::Send);
        assert!(progress.check_lost_entries, "everything was sent: check what got lost");
        progress.check_lost_entries = false;
        assert_eq!(progress.recover(3, LogIndex(5), 0, 4), Recovery::Send);
        assert!(!progress.check_lost_entries, "entries 4 and 5 are still to send");
        assert_eq!(progress.recover(3, LogIndex(4), 0, 4), Recovery::Send);
        assert!(!progress.check_lost_entries, "entry 4 is still to send");
    }

    #[test]
    fn stale_rejection_is_ignored() {
        let mut progress = Progress::new(LogIndex(11), 4, 1000);
        progress.accept(LogIndex(10), 1);
        assert_eq!(progress.state(), ProgressState::Replicate);
        assert!(!progress.reject(LogIndex(9), LogIndex(3)));
        assert_eq!(progress.next_index, LogIndex(11));
        assert!(progress.reject(LogIndex(12), LogIndex(11)));
        assert_eq!(progress.state(), ProgressState::Probe);
        assert_eq!(progress.next_index, LogIndex(12));
    }

    /// Every state makes progress after the loss of any message (§5.3).
    #[test]
    fn a_lost_window_falls_back_to_probe_once_a_later_round_is_answered() {
        let mut progress = Progress::new(LogIndex(1), 2, 1000);
        progress.accept(LogIndex(1), 3);
        progress.sent(LogIndex(2), 10, 1, 3);
        progress.sent(LogIndex(3), 10, 1, 3);
        assert!(progress.is_paused(), "window full");
        // An answer to the round the window was sent in proves nothing.
        assert_eq!(progress.recover(3, LogIndex(3), 0, 4), Recovery::Send);
        assert_eq!(progress.state(), ProgressState::Replicate);
        assert!(progress.is_paused());
        // A later round answered with nothing acknowledged: the window was lost.
        assert_eq!(progress.recover(4, LogIndex(3), 0, 4), Recovery::Send);
        assert_eq!(progress.state(), ProgressState::Probe);
        assert!(!progress.is_paused());
        assert_eq!(progress.next_index, LogIndex(2));
    }

    #[test]
    fn an_acceptance_moves_the_window_so_a_later_round_does_not_count_it_lost() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.accept(LogIndex(1), 1);
        progress.sent(LogIndex(2), 10, 1, 1);
        progress.sent(LogIndex(3), 10, 1, 1);
        progress.accept(LogIndex(2), 2);
        assert_eq!(progress.recover(2, LogIndex(3), 0, 4), Recovery::Send);
        assert_eq!(progress.state(), ProgressState::Replicate);
    }

    #[test]
    fn a_failed_snapshot_waits_for_a_heartbeat_answer_before_probing() {
        let mut progress = Progress::new(LogIndex(1), 4, 1000);
        progress.become_snapshot(LogIndex(50), 7);
        assert_eq!(progress.recover(1, LogIndex(60), 8, 4), Recovery::None, "the chunk is young");
        assert_eq!(progress.recover(1, LogIndex(60), 11, 4), Recovery::ResendChunk);
        progress.snapshot_failed();
        assert_eq!(progress.state(), ProgressState::Probe);
        assert!(progress.is_paused());
        assert_eq!(progress.recover(2, LogIndex(60), 12, 4), Recovery::Send);
        assert!(!progress.is_paused());
    }
}
