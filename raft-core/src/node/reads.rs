//! The read paths of a node (thesis §6.4): ReadIndex rounds, leases, forwarding from followers.
//! See [`crate::reads`] for the reasoning.

use super::RaftNode;
use crate::message::MessageBody;
use crate::quorum;
use crate::reads::{PendingRead, ReadError, ReadMode, ReadState, PENDING_READS_MAX};
use crate::types::{LogIndex, NodeId, Role};
use alloc::vec::Vec;

impl RaftNode {
    /// Asks for a read index. The answer comes in [`crate::Ready::read_states`] under
    /// `request_id`: serve the read once the state machine has applied that index.
    ///
    /// A follower forwards linearizable and lease reads to its leader; a leader confirms with
    /// a heartbeat round (or its lease). Stale reads are answered at once with the applied index.
    pub fn read(&mut self, request_id: u64, mode: ReadMode) {
        if mode == ReadMode::Stale {
            let index = self.log.applied;
            self.read_states.push(ReadState { request_id, result: Ok(index) });
            return;
        }
        if self.role != Role::Leader {
            match self.leader {
                Some(_) if self.forwarded_reads.len() >= PENDING_READS_MAX => {
                    self.read_states.push(ReadState { request_id, result: Err(ReadError::TooManyPending) });
                }
                Some(leader) => {
                    self.forwarded_reads.push((request_id, self.ticks));
                    self.send(leader, MessageBody::ReadIndex { request_id });
                }
                None => self.read_states.push(ReadState { request_id, result: Err(ReadError::NoLeader) }),
            }
            return;
        }
        if mode == ReadMode::Lease && self.lease_is_valid() {
            let index = self.log.committed;
            self.read_states.push(ReadState { request_id, result: Ok(index) });
            return;
        }
        self.register_read(request_id, None);
    }

    /// hashicorp's `VerifyLeader`: confirms with one heartbeat round that this node still
    /// leads. The answer comes in [`crate::Ready::read_states`] under `request_id`: `Ok` once a
    /// majority answered, an error if this node is not (or stops being) the leader.
    pub fn verify_leader(&mut self, request_id: u64) {
        if self.role != Role::Leader {
            let error = if self.leader.is_some() { ReadError::LeadershipLost } else { ReadError::NoLeader };
            self.read_states.push(ReadState { request_id, result: Err(error) });
            return;
        }
        self.register_read(request_id, None);
    }

    /// hashicorp's `Barrier`: the returned index covers every entry committed before the call,
    /// so once the state machine has applied it, all earlier operations are applied. It is a
    /// linearizable read index; like [`RaftNode::read`] it is answered in `read_states`.
    pub fn barrier(&mut self, request_id: u64) {
        self.read(request_id, ReadMode::Linearizable);
    }

    /// Whether this leader's lease covers the current tick (thesis §6.4.1).
    ///
    /// Never after this leader sent TimeoutNow in its term, even once the transfer is
    /// abandoned: the message may be delivered late and its election overrides the followers'
    /// leases, and no answer this leader could get tells it the target's campaign is over.
    /// ReadIndex still works meanwhile.
    pub fn lease_is_valid(&self) -> bool {
        if self.role != Role::Leader || !self.config.check_quorum || self.transfer.is_some() {
            return false;
        }
        if self.timeout_now_sent_term == Some(self.term) {
            return false;
        }
        if !self.committed_own_term() {
            return false;
        }
        let Some(round) = self.quorum_acked_round() else {
            return false;
        };
        let Some(sent) = self.reads.sent_tick(round) else {
            return false;
        };
        let lease_ticks = self.config.election_timeout_ticks - self.config.clock_drift_ticks_max;
        self.ticks < sent + lease_ticks
    }

    pub(super) fn committed_own_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }

    /// The latest heartbeat round a majority has answered (`u64::MAX` in a one-voter cluster).
    fn quorum_acked_round(&self) -> Option<u64> {
        let me = self.config.id;
        let progress = &self.progress;
        let round = quorum::committed_index(self.membership(), |id| {
            if id == me {
                LogIndex(u64::MAX)
            } else {
                LogIndex(progress.get(&id).map_or(0, |pr| pr.acked_round))
            }
        });
        (round.0 > 0).then_some(round.0)
    }

    /// Queues a read at the leader, for this node (`requester == None`) or a follower.
    pub(super) fn register_read(&mut self, request_id: u64, requester: Option<NodeId>) {
        if self.reads.pending() >= PENDING_READS_MAX {
            self.answer_read(PendingRead { request_id, requester, round: 0, index: LogIndex(0) }, None);
            return;
        }
        let read = PendingRead { request_id, requester, round: self.round + 1, index: self.log.committed };
        if !self.committed_own_term() {
            // §6.4 step 1: until an entry of this term commits, the commit index may lag.
            self.reads.parked.push(read);
            return;
        }
        if self.quorum_acked_round() == Some(u64::MAX) {
            // The only voter: nobody else can lead.
            self.answer_read(read, Some(read.index));
            return;
        }
        self.reads.waiting.push_back(read);
        self.reads.round_wanted = true;
    }

    /// After this leader commits an entry of its own term: the parked reads can take a round.
    pub(super) fn unpark_reads(&mut self) {
        if self.reads.parked.is_empty() || !self.committed_own_term() {
            return;
        }
        for read in core::mem::take(&mut self.reads.parked) {
            self.register_read(read.request_id, read.requester);
        }
    }

    /// After a heartbeat answer: release every read whose round a majority confirmed.
    pub(super) fn release_reads(&mut self) {
        let Some(round) = self.quorum_acked_round() else {
            return;
        };
        for read in self.reads.confirmed(round) {
            self.answer_read(read, Some(read.index));
        }
    }

    fn answer_read(&mut self, read: PendingRead, index: Option<LogIndex>) {
        match read.requester {
            None => {
                let result = index.ok_or(ReadError::LeadershipLost);
                self.read_states.push(ReadState { request_id: read.request_id, result });
            }
            Some(follower) => {
                self.send(follower, MessageBody::ReadIndexResponse { request_id: read.request_id, index });
            }
        }
    }

    /// Leadership (or the leader followed) changed: every read in progress fails, so that
    /// clients retry instead of waiting forever.
    pub(super) fn fail_reads(&mut self) {
        for read in self.reads.drain() {
            self.answer_read(read, None);
        }
        for (request_id, _) in core::mem::take(&mut self.forwarded_reads) {
            self.read_states.push(ReadState { request_id, result: Err(ReadError::LeadershipLost) });
        }
    }

    /// A forwarded read whose request or answer was lost would wait forever: after an election
    /// timeout it fails, and the client retries.
    pub(super) fn expire_forwarded_reads(&mut self) {
        let deadline = self.config.election_timeout_ticks;
        let ticks = self.ticks;
        let read_states = &mut self.read_states;
        self.forwarded_reads.retain(|&(request_id, sent)| {
            let alive = ticks.saturating_sub(sent) < deadline;
            if !alive {
                read_states.push(ReadState { request_id, result: Err(ReadError::TimedOut) });
            }
            alive
        });
    }

    /// A follower's answer from the leader.
    pub(super) fn handle_read_index_response(&mut self, request_id: u64, index: Option<LogIndex>) {
        let Some(position) = self.forwarded_reads.iter().position(|&(id, _)| id == request_id) else {
            return; // Already failed, or never ours.
        };
        self.forwarded_reads.swap_remove(position);
        let result = index.ok_or(ReadError::LeadershipLost);
        self.read_states.push(ReadState { request_id, result });
    }

    /// Reads in flight, for observers: (waiting at this leader, forwarded by this follower).
    pub fn pending_reads(&self) -> (usize, usize) {
        (self.reads.pending(), self.forwarded_reads.len())
    }

    pub(super) fn take_read_states(&mut self) -> Vec<ReadState> {
        core::mem::take(&mut self.read_states)
    }
}
