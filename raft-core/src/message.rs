//! The messages Raft servers exchange (§5, Figure 2; pre-vote from thesis §9.6).
//!
//! Every message carries the sender's term. The receiving [`crate::RaftNode::step`] handles the
//! term first (§5.1: a higher term makes it a follower, a stale one is dropped or answered) and
//! only then dispatches on the body.

use crate::ready::SnapshotMeta;
use crate::types::{Entry, LogIndex, NodeId, Term};
use alloc::vec::Vec;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One message between two servers of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's term, or for a pre-vote request the term it would campaign in.
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// Whether a vote is the real thing (§5.2) or a pre-vote that changes no state (thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// Would you vote for me if I started an election? Changes neither side's term.
    PreVote,
    /// RequestVote: vote for me in this term.
    Vote,
}

/// Why a server campaigns; a transfer's campaign may override a follower's leader lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CampaignReason {
    /// Its election timer fired, or the application asked it to campaign.
    ElectionTimeout,
    /// The leader asked it to take over with TimeoutNow (thesis §3.10).
    LeadershipTransfer,
}

/// The outcome of an AppendEntries at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The follower's log now matches the leader's up to `match_index`.
    Accepted {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The consistency check failed at `rejected_index` (the request's `prev_log_index`).
    ///
    /// `hint_index` and `hint_term` let the leader skip a whole term per round trip instead of
    /// one entry: `hint_index` is the last follower entry that may match, `hint_term` its term.
    Rejected {
        /// The `prev_log_index` of the rejected request.
        rejected_index: LogIndex,
        /// The largest follower index that may still match the leader's log.
        hint_index: LogIndex,
        /// The follower's term at `hint_index`.
        hint_term: Term,
    },
}

/// The body of a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageBody {
    /// RequestVote or PreVote (§5.2, thesis §9.6).
    VoteRequest {
        /// Pre-vote or real vote.
        kind: VoteKind,
        /// Why the sender campaigns.
        reason: CampaignReason,
        /// Index of the candidate's last log entry (§5.4.1).
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry (§5.4.1).
        last_log_term: Term,
    },
    /// The answer to a [`MessageBody::VoteRequest`].
    VoteResponse {
        /// Pre-vote or real vote, copied from the request.
        kind: VoteKind,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// AppendEntries (§5.3): new entries after `prev_log_index`, or none as a probe.
    AppendEntries {
        /// Index of the entry just before `entries`.
        prev_log_index: LogIndex,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to append, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
    },
    /// The answer to an [`MessageBody::AppendEntries`].
    AppendResponse {
        /// Whether the entries matched, and how far.
        outcome: AppendOutcome,
    },
    /// A leader's periodic proof of life (§5.2). Carries a commit index the follower is known to
    /// have reached, so it can be applied without a log check.
    Heartbeat {
        /// `min(leader commit, follower match)`.
        commit: LogIndex,
        /// An opaque round number echoed in the response (used by reads).
        context: u64,
    },
    /// The answer to a [`MessageBody::Heartbeat`].
    HeartbeatResponse {
        /// The heartbeat's context, echoed.
        context: u64,
    },
    /// Start an election now, skipping pre-vote and leases: the leader is handing over
    /// (thesis §3.10).
    TimeoutNow,
    /// One chunk of a snapshot, streamed to a follower that needs compacted entries (§7).
    /// Chunks go in order; the total size is not known until the `last` one.
    InstallSnapshot {
        /// The snapshot being sent (boxed: it is large and rare, and every message would
        /// otherwise be as big as this one).
        meta: alloc::boxed::Box<SnapshotMeta>,
        /// Byte offset of this chunk in the snapshot.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// Whether this is the final chunk.
        last: bool,
    },
    /// The answer to an [`MessageBody::InstallSnapshot`]: where to go on from, or done.
    InstallSnapshotResponse {
        /// Index of the snapshot being received.
        snapshot_index: LogIndex,
        /// The offset the follower expects next (after a lost chunk: where to resume).
        next_offset: u64,
        /// The snapshot is installed, or the follower already had everything it covers.
        done: bool,
    },
    /// A follower asks the leader for a read index on behalf of its client (thesis §6.4).
    ReadIndex {
        /// The follower's id for the read, echoed back.
        request_id: u64,
    },
    /// The leader's answer to [`MessageBody::ReadIndex`]: the confirmed read index, or `None`
    /// if it could not confirm one.
    ReadIndexResponse {
        /// The follower's id for the read.
        request_id: u64,
        /// The read index.
        index: Option<LogIndex>,
    },
}

impl MessageBody {
    /// A short name of the message kind, for logs, counters and the playground.
    pub fn kind_name(&self) -> &'static str {
        match self {
            MessageBody::VoteRequest { kind: VoteKind::PreVote, .. } => "PreVote",
            MessageBody::VoteRequest { kind: VoteKind::Vote, .. } => "RequestVote",
            MessageBody::VoteResponse { kind: VoteKind::PreVote, .. } => "PreVoteResponse",
            MessageBody::VoteResponse { kind: VoteKind::Vote, .. } => "RequestVoteResponse",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendResponse { .. } => "AppendEntriesResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }

    /// Whether this body is the answer to another message.
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            MessageBody::VoteResponse { .. }
                | MessageBody::AppendResponse { .. }
                | MessageBody::HeartbeatResponse { .. }
                | MessageBody::ReadIndexResponse { .. }
                | MessageBody::InstallSnapshotResponse { .. }
        )
    }
}
