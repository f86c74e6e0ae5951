//! Linearizable reads without writing to the log (thesis §6.4).
//!
//! **ReadIndex**: the leader notes its commit index as the read index, confirms with one
//! heartbeat round that a majority still follows it, and the read is served once the state
//! machine has applied the read index. Reads that arrive together share one round. A leader
//! that has not yet committed an entry of its own term parks reads until it has (§6.4 step 1),
//! because before that its commit index may be behind the cluster's.
//!
//! **Lease reads** (§6.4.1): a leader that heard from a majority in a round sent at tick `t`
//! knows no other leader can be elected before `t + T` on the followers' clocks, because they
//! ignore vote requests for an election timeout after hearing from a leader (§4.2.3). With
//! clocks that may run apart by at most `clock_drift_ticks_max` per election timeout, it serves
//! reads without a round until `t + T - clock_drift_ticks_max`. A leader that has sent
//! TimeoutNow gives up its lease: the transfer's election overrides the followers' leases.
//!
//! **Stale reads** answer from whatever the replica has applied, with no check at all.

use crate::types::{LogIndex, NodeId};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

/// How a read is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReadMode {
    /// ReadIndex with a heartbeat round: linearizable under any timing.
    Linearizable,
    /// A leader lease: linearizable if clocks drift no more than configured.
    Lease,
    /// Whatever this replica has applied: may go back in time.
    Stale,
}

/// Why a read could not be given an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReadError {
    /// No leader is known to forward the read to.
    NoLeader,
    /// The leader lost its leadership (or the node its leader) before the read was confirmed.
    LeadershipLost,
    /// Too many reads are waiting; retry later.
    TooManyPending,
    /// A follower got no answer from its leader within an election timeout.
    TimedOut,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NoLeader => f.write_str("no leader known"),
            ReadError::LeadershipLost => f.write_str("leadership lost before the read was confirmed"),
            ReadError::TooManyPending => f.write_str("too many reads pending; retry later"),
            ReadError::TimedOut => f.write_str("no answer from the leader in time"),
        }
    }
}

impl core::error::Error for ReadError {}

/// The answer to [`crate::RaftNode::read`]: serve the read once the state machine has applied
/// `index` (or at once for stale reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReadState {
    /// The id the caller gave the read.
    pub request_id: u64,
    /// The read index, or why there is none.
    pub result: Result<LogIndex, ReadError>,
}

/// At most this many reads wait at a leader; more are refused with `TooManyPending`.
pub const PENDING_READS_MAX: usize = 65_536;

/// Heartbeat rounds remembered for lease reads.
const ROUNDS_REMEMBERED_MAX: usize = 64;

/// A read waiting at the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingRead {
    pub(crate) request_id: u64,
    /// `None` for a read made on the leader itself, else the follower that forwarded it.
    pub(crate) requester: Option<NodeId>,
    /// The round whose majority acknowledgement confirms it (0 while parked).
    pub(crate) round: u64,
    pub(crate) index: LogIndex,
}

/// A leader's reads in progress, and the heartbeat rounds that confirm them.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadTracker {
    /// Waiting for their round, in round order.
    pub(crate) waiting: VecDeque<PendingRead>,
    /// Waiting for the leader to commit an entry of its own term.
    pub(crate) parked: Vec<PendingRead>,
    /// (round, tick it was sent at), most recent last.
    rounds_sent: VecDeque<(u64, u64)>,
    /// A read is waiting for a round that has not been sent yet.
    pub(crate) round_wanted: bool,
}

impl ReadTracker {
    pub(crate) fn pending(&self) -> usize {
        self.waiting.len() + self.parked.len()
    }

    pub(crate) fn round_sent(&mut self, round: u64, tick: u64) {
        if self.rounds_sent.len() == ROUNDS_REMEMBERED_MAX {
            self.rounds_sent.pop_front();
        }
        self.rounds_sent.push_back((round, tick));
        self.round_wanted = false;
    }

    /// The tick at which `round` was sent, if it is recent enough to be remembered.
    pub(crate) fn sent_tick(&self, round: u64) -> Option<u64> {
        self.rounds_sent.iter().find(|(r, _)| *r == round).map(|(_, tick)| *tick)
    }

    /// Removes and returns every read confirmed by a majority acknowledging `round`.
    pub(crate) fn confirmed(&mut self, round: u64) -> Vec<PendingRead> {
        let mut done = Vec::new();
        while self.waiting.front().is_some_and(|read| read.round <= round) {
            done.extend(self.waiting.pop_front());
        }
        done
    }

    /// Removes every read, for failing them when leadership ends.
    pub(crate) fn drain(&mut self) -> Vec<PendingRead> {
        let mut all: Vec<PendingRead> = self.waiting.drain(..).collect();
        all.append(&mut self.parked);
        self.round_wanted = false;
        self.rounds_sent.clear();
        all
    }
}
