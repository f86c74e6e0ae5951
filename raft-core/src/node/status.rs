//! What observers may ask a node (the playground, metrics, tests): nothing here changes it.

use super::{FollowerProgress, RaftNode, Stats};
use crate::config::Config;
use crate::events::{RaftEvent, Status};
use crate::ready::SoftState;
use crate::types::{Entry, HardState, LogIndex, Membership, NodeId, Role, Term};

impl RaftNode {
    // ----- observers -------------------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Who this node voted for in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The leader this node follows (or itself), if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> LogIndex {
        self.log.committed
    }

    /// Highest index handed out to apply and acknowledged by `advance`.
    pub fn applied_index(&self) -> LogIndex {
        self.log.applied
    }

    /// Index of the last entry in the log.
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// Term of the last entry in the log.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// Highest index the driver has confirmed durable.
    pub fn stable_index(&self) -> LogIndex {
        self.log.stable
    }

    /// The log's compaction point: entries up to it are no longer in the log. It may lag the
    /// latest snapshot's index by `snapshot_trailing_entries` (see [`RaftNode::latest_snapshot`]).
    pub fn snapshot_index(&self) -> LogIndex {
        self.log.compacted_index()
    }

    /// The term of the entry at `index`, if the log still holds it.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term(index)
    }

    /// The entries the log holds (after the snapshot), in order.
    pub fn entries(&self) -> &[Entry] {
        self.log.all_entries()
    }

    /// The configuration in effect: the latest one in the log, committed or not (thesis §4.1).
    pub fn membership(&self) -> &Membership {
        self.log.membership().1
    }

    /// The hard state as it is now (possibly not yet persisted).
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: self.voted_for, commit: self.log.committed }
    }

    /// The soft state as it is now.
    pub fn soft_state(&self) -> SoftState {
        SoftState { role: self.role, leader: self.leader, term: self.term }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ticks this node has counted since it started.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// The timer that ends this node's role, and the timeout it counts towards; the playground
    /// draws it as the election timer's arc. Followers and candidates: ticks since they last
    /// heard from a leader or campaigned, towards their randomized election timeout (§5.2).
    /// Leaders with check-quorum: ticks since a majority last answered, towards the election
    /// timeout at which the leader steps down (thesis §6.2); without check-quorum, `(0, 0)`.
    /// A node that does not campaign ([`crate::Config::campaigns`]): `(ticks since it last
    /// heard from a leader or granted a vote, 0)`, since no timeout ends its role.
    pub fn election_timer(&self) -> (u64, u64) {
        if !self.config.campaigns {
            // No timer ends a non-campaigning follower's role: the timeout never fires.
            return (self.election_elapsed, 0);
        }
        if self.role != Role::Leader {
            return (self.election_elapsed, self.election_timeout_randomized);
        }
        if !self.config.check_quorum {
            return (0, 0);
        }
        let timeout = self.config.election_timeout_ticks;
        (self.quorum_silence_ticks().min(timeout), timeout)
    }

    /// Votes received in the current (pre-)election: (voter, granted).
    pub fn votes(&self) -> impl Iterator<Item = (NodeId, bool)> + '_ {
        self.votes.iter().map(|(&id, &granted)| (id, granted))
    }

    /// Leader only: the progress of every other member.
    pub fn follower_progress(&self) -> impl Iterator<Item = FollowerProgress> + '_ {
        self.progress.iter().map(|(&id, pr)| FollowerProgress {
            id,
            match_index: pr.match_index,
            next_index: pr.next_index,
            state: pr.state(),
            inflight: pr.inflights.len(),
            ticks_since_contact: self.ticks.saturating_sub(pr.last_contact_tick),
            acked_round: pr.acked_round,
            leader_round: self.round,
        })
    }

    /// Whether this node may campaign: a voter of its latest configuration, or a voter of its
    /// committed configuration that the latest (uncommitted) one removes. Thesis §4.2.2: such
    /// a server "should still start new elections, as it might still be needed until the C_new
    /// entry is committed"; it counts only the votes of its latest configuration, so never its
    /// own (`tally_votes`). Without this a leader that appended its own removal and then lost
    /// its majority deadlocks a cluster whose other voters' logs are behind its own: they need
    /// its vote, it refuses them (§5.4.1), and it never campaigns.
    pub(super) fn is_promotable(&self) -> bool {
        let me = self.config.id;
        self.membership().is_voter(me)
            || (self.membership_index() > self.log.committed
                && self.log.membership_at(self.log.committed).is_voter(me))
    }

    pub(super) fn set_role(&mut self, role: Role) {
        if self.role != role {
            self.role = role;
            self.events.push(RaftEvent::RoleChanged { role, term: self.term });
        }
    }

    pub(super) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.events.push(RaftEvent::LeaderChanged { leader, term: self.term });
        }
    }

    /// Everything an operator asks about, in one snapshot.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.log.committed,
            applied_index: self.log.applied,
            last_index: self.log.last_index(),
            snapshot_index: self.snapshot.as_ref().map_or(LogIndex(0), |m| m.index),
            membership: self.membership().clone(),
            membership_index: self.membership_index(),
            ticks_since_leader_contact: if self.role == Role::Leader { 0 } else { self.election_elapsed },
            followers: self.follower_progress().collect(),
        }
    }
}
