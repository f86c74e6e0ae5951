//! The voter's side of leases and who may speak to this node.
//!
//! **Leases need voters that keep quiet** (thesis §6.4.1, §4.2.3). A leader that heard from a
//! majority in a round sent at tick `t` serves lease reads until `t + T - clock_drift_ticks_max`,
//! counting on every member of that majority to refuse votes for an election timeout `T` after
//! it answered. So a voter withholds (pre-)votes while it has heard from a leader within `T`:
//!
//! - a *restarted* voter does not remember when it last heard from a leader, and before the
//!   crash it may have answered a round a leader still counts. It therefore starts as if it had
//!   just heard from one and withholds votes for its first `T` ticks. It restarts after it
//!   answered, so its quiet period ends no earlier than the one it would have kept, and the
//!   drift bound covers the rest. A node whose stored term is at most 1 (a freshly bootstrapped
//!   or empty one: term 1 is written by `bootstrap`, and every election raises the term to at
//!   least 2) never answered a leader and votes at once, so a new cluster elects as fast as
//!   before. A whole cluster restarting elects after its first election timeout, as it would
//!   anyway: a node's own campaign is never held back, only its votes for others.
//! - a *leadership transfer* overrides the quiet period (thesis §3.10): the leader that sent
//!   TimeoutNow has given its lease up for the rest of its term (`lease_is_valid`). Only a
//!   transfer-flagged request from a voter of this node's configuration counts as one; anyone
//!   else's flag is ignored.
//! - pre-votes are refused while a leader is heard from whether or not check-quorum is on
//!   (thesis §9.6: a pre-vote is granted only to a server that could win, and no server should
//!   while a leader is working). Votes are withheld only with check-quorum (§4.2.3), the
//!   setting under which leases exist.
//!
//! **Who may speak** (issue 11, thesis §4.1, §4.2.3). The thesis lets servers handle RPCs
//! without consulting their configuration: a server accepts AppendEntries from a leader not in
//! its configuration (otherwise a new server could never be added) and even votes for such a
//! candidate, because a voter whose log lags may not know the members added after it, and its
//! vote may be what the cluster needs (for example: `{A,B,C}` became `{C,D,E}` through
//! one-at-a-time changes that C missed; with E down only C's vote can elect D). So this node
//! keeps that rule for requests that may come from such a leader or candidate, and refuses
//! what only a member can legitimately send:
//!
//! - vote responses from anyone who is not a voter of this node's configuration (a candidate
//!   only asks its voters, and a stranger's vote never counts);
//! - answers (append, heartbeat, snapshot and read-index responses) in a term higher than this
//!   node's from a non-member: nobody asked a stranger, and letting one raise the term is how a
//!   removed server disrupts a cluster;
//! - vote requests from a non-member whose log is not at least as up to date as this node's
//!   (§5.4.1): the vote would be refused anyway, so dropping the request loses nothing, and it
//!   no longer raises this node's term. A non-member with an up-to-date log is heard out, for
//!   the reason above, still subject to the quiet period.
//!
//! A forged message from a member with credentials is the transport's business (native-node
//! authenticates every frame); the core only guarantees it never panics and never saturates.

use super::RaftNode;
use crate::error::StepError;
use crate::message::{CampaignReason, Message, MessageBody, VoteKind};
use crate::types::{NodeId, Role, Term};

/// Where `leader_contact_tick` starts: as if a leader had just been heard from, unless the
/// stored term shows no leader can ever have been acknowledged (see the module docs).
pub(super) fn contact_at_start(stored_term: Term) -> Option<u64> {
    (stored_term > Term(1)).then_some(0)
}

impl RaftNode {
    /// Whether this node heard from a leader within the last election timeout (a leader
    /// counts as hearing from itself; a restarted node as having heard at its start).
    pub(super) fn heard_from_leader_recently(&self) -> bool {
        if self.role == Role::Leader {
            return true;
        }
        let timeout = self.config.election_timeout_ticks;
        self.leader_contact_tick.is_some_and(|tick| self.ticks.saturating_sub(tick) < timeout)
    }

    /// Whether a vote request from a later term is ignored (neither answered nor allowed to
    /// raise this node's term).
    pub(super) fn withholds_vote(&self, candidate: NodeId, kind: VoteKind, reason: CampaignReason) -> bool {
        let transfer = kind == VoteKind::Vote
            && reason == CampaignReason::LeadershipTransfer
            && self.membership().is_voter(candidate);
        if transfer || !self.heard_from_leader_recently() {
            return false;
        }
        match kind {
            VoteKind::PreVote => true,
            VoteKind::Vote => self.config.check_quorum,
        }
    }

    /// Refuses what only a member of this node's configuration may send (see the module docs).
    pub(super) fn screen_sender(&self, message: &Message) -> Result<(), StepError> {
        let from = message.from;
        let membership = self.membership();
        let refused = match &message.body {
            MessageBody::VoteResponse { .. } => !membership.is_voter(from),
            MessageBody::AppendResponse { .. }
            | MessageBody::HeartbeatResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::ReadIndexResponse { .. } => message.term > self.term && !membership.contains(from),
            MessageBody::VoteRequest { last_log_index, last_log_term, .. } => {
                !membership.contains(from) && !self.log.is_up_to_date(*last_log_index, *last_log_term)
            }
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. }
            | MessageBody::TimeoutNow
            | MessageBody::ReadIndex { .. } => false,
        };
        if refused {
            return Err(StepError::NotAMember { from });
        }
        if matches!(message.body, MessageBody::TimeoutNow) && message.term > self.term {
            // TimeoutNow follows the target's acknowledgement of the whole log in the leader's
            // term, so the target already knows that term: a later one is forged or broken.
            return Err(StepError::Malformed("TimeoutNow from a term this node never joined"));
        }
        Ok(())
    }
}
