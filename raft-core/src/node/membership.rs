//! Changing who is in the cluster (thesis ch. 4) and handing leadership over (thesis §3.10).
//!
//! - One change at a time, each naming the configuration index it expects (compare-and-set).
//! - A leader first commits an entry of its own term (the fix for the 2015 single-server
//!   change bug), and a configuration counts as soon as it is appended (§4.1).
//! - A new voter catches up as a learner in rounds and is promoted automatically once a round
//!   finishes within an election timeout (§4.2.1).
//! - Any change of the voter set in one step goes through joint consensus C_old,new (§4.3),
//!   which the leader leaves on its own once C_old,new commits.
//! - A leader that removes itself leads until the change commits, then steps down (§4.2.2).

use super::RaftNode;
use crate::error::ProposeError;
use crate::events::RaftEvent;
use crate::message::MessageBody;
use crate::progress::Progress;
use crate::types::{EntryPayload, LogIndex, Membership, NodeId, Role};
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use core::fmt;

/// Catch-up rounds a new voter gets before the leader gives up on promoting it; the whole
/// catch-up may also take at most this many election timeouts.
pub const CATCH_UP_ROUNDS_MAX: u32 = 10;

/// A requested change of the cluster's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MembershipChange {
    /// Add a voter. It joins as a learner, catches up, and is promoted automatically (§4.2.1).
    AddVoter(NodeId),
    /// Add a member that receives the log but never votes.
    AddLearner(NodeId),
    /// Turn a voter into a learner.
    DemoteVoter(NodeId),
    /// Remove a server in any role.
    RemoveServer(NodeId),
    /// Replace the voter set in one step, through joint consensus (§4.3). Learners that become
    /// voters stop being learners; other learners stay. Every new voter must already be a
    /// member: a brand-new server would enter the joint configuration with an empty log and
    /// could hold up every commit while it catches up (§4.2.1), so add it with `AddLearner`
    /// first and let it catch up.
    ReplaceVoters(BTreeSet<NodeId>),
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// Only the leader changes the configuration.
    NotLeader {
        /// The current leader as far as this node knows.
        leader: Option<NodeId>,
    },
    /// The configuration is not the one the caller expected (compare-and-set failed).
    ConfigurationChanged {
        /// Index of the configuration in effect.
        current: LogIndex,
    },
    /// An earlier change has not committed yet (or a joint change is being left, or a new
    /// voter is still catching up: then only `RemoveServer` and `DemoteVoter` may go ahead).
    ChangeInProgress,
    /// The leader has not committed an entry of its own term yet; retry shortly.
    LeaderNotReady,
    /// A leadership transfer is in progress.
    LeadershipTransferInProgress,
    /// The change would change nothing (for example adding a voter that already votes).
    NoChange,
    /// The change would leave the cluster without voters.
    NoVotersLeft,
    /// The server is not a member.
    NotAMember(NodeId),
    /// The leader's uncommitted-bytes window is full; retry after some commit.
    TooManyUncommitted,
    /// `ReplaceVoters` names a server that is not a member yet: add it as a learner first, so
    /// that it catches up before it counts in a majority (§4.2.1).
    JoinAsLearnerFirst(NodeId),
    /// The change adds a voter that never campaigns, or takes away one that does, and would
    /// leave the voters that campaign no majority of the voters (see
    /// [`RaftNode::set_peer_campaigns`]): such a cluster cannot elect a leader while they are
    /// down, and may not even while they are up.
    CampaigningMinority,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipError::NotLeader { leader: Some(id) } => write!(f, "not the leader; node {id} leads"),
            MembershipError::NotLeader { leader: None } => f.write_str("not the leader; no leader known"),
            MembershipError::ConfigurationChanged { current } => {
                write!(f, "configuration changed; the current one is at index {current}")
            }
            MembershipError::ChangeInProgress => f.write_str("another configuration change is in progress"),
            MembershipError::LeaderNotReady => {
                f.write_str("leader has not committed an entry of its term yet")
            }
            MembershipError::LeadershipTransferInProgress => f.write_str("leadership transfer in progress"),
            MembershipError::NoChange => f.write_str("the change would change nothing"),
            MembershipError::NoVotersLeft => f.write_str("the change would leave no voters"),
            MembershipError::NotAMember(id) => write!(f, "node {id} is not a member"),
            MembershipError::TooManyUncommitted => f.write_str("too many uncommitted bytes; retry later"),
            MembershipError::JoinAsLearnerFirst(id) => {
                write!(f, "node {id} is not a member; add it as a learner first so it catches up")
            }
            MembershipError::CampaigningMinority => f.write_str(
                "the voters that campaign would no longer be a majority of the voters, and without them no leader can be elected",
            ),
        }
    }
}

impl core::error::Error for MembershipError {}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferError {
    /// Only the leader transfers leadership.
    NotLeader {
        /// The current leader as far as this node knows.
        leader: Option<NodeId>,
    },
    /// A transfer is already under way.
    InProgress,
    /// The target is not a voter (or is this leader itself).
    NotAVoter(NodeId),
    /// No other voter that campaigns exists.
    NoTarget,
    /// The target is a voter that never campaigns ([`RaftNode::set_peer_campaigns`]), so it
    /// would ignore TimeoutNow.
    DoesNotCampaign(NodeId),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::NotLeader { leader: Some(id) } => write!(f, "not the leader; node {id} leads"),
            TransferError::NotLeader { leader: None } => f.write_str("not the leader; no leader known"),
            TransferError::InProgress => f.write_str("a leadership transfer is already in progress"),
            TransferError::NotAVoter(id) => write!(f, "node {id} is not another voter"),
            TransferError::NoTarget => f.write_str("no other campaigning voter to transfer to"),
            TransferError::DoesNotCampaign(id) => {
                write!(f, "node {id} is a voter that never campaigns; it cannot take over")
            }
        }
    }
}

impl core::error::Error for TransferError {}

/// A server catching up before it becomes a voter (thesis §4.2.1). Leader-local: what survives
/// a change of leader is the server's place in [`Membership::promoting`], from which every new
/// leader starts the catch-up over. A leader that inherits a promotion (it did not append the
/// `AddVoter` itself) gives it one election timeout only: a round finished within it promotes
/// the server, otherwise the promotion is withdrawn. So a promotion is carried out or reported
/// ([`RaftEvent::CatchUpAbandoned`]) within `CATCH_UP_ROUNDS_MAX` election timeouts of the
/// leader that started it, or one election timeout of any later leader, however often the
/// leader changes (issue 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct CatchUp {
    id: NodeId,
    /// The round ends when the server's log reaches this index.
    round_end: LogIndex,
    round_started_tick: u64,
    rounds: u32,
    started_tick: u64,
    /// The outcome, once decided: the configuration entry to append as soon as nothing else is
    /// pending (one change at a time).
    decided: Option<Outcome>,
    /// A [`RaftEvent::PromotionDeferred`] was reported for this catch-up.
    deferral_reported: bool,
    /// Started by a leader that did not append the `AddVoter`: one election timeout only.
    inherited: bool,
}

/// How a catch-up ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// A round finished within an election timeout: make the server a voter.
    Promote,
    /// It did not keep up, or promoting it would leave the campaigning voters a minority: it
    /// stays a learner and its promotion is withdrawn.
    Withdraw,
}

impl RaftNode {
    /// Index of the configuration entry in effect (pass it to
    /// [`RaftNode::change_membership`] as the expected index).
    pub fn membership_index(&self) -> LogIndex {
        self.log.membership().0
    }

    /// The server being caught up to become a voter, if any.
    pub fn catching_up(&self) -> Option<NodeId> {
        self.catch_up.map(|c| c.id)
    }

    /// The server a leadership transfer is handing over to, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer
    }

    /// Starts a configuration change. `expected_index` must be the current
    /// [`RaftNode::membership_index`]. Returns the index of the appended configuration entry
    /// (for `AddVoter`, of the learner entry; the promotion follows by itself).
    ///
    /// # Errors
    /// [`MembershipError`] says why nothing was appended.
    pub fn change_membership(
        &mut self,
        change: MembershipChange,
        expected_index: LogIndex,
    ) -> Result<LogIndex, MembershipError> {
        if self.role != Role::Leader {
            return Err(MembershipError::NotLeader { leader: self.leader });
        }
        if self.transfer.is_some() {
            return Err(MembershipError::LeadershipTransferInProgress);
        }
        let current_index = self.membership_index();
        if expected_index != current_index {
            return Err(MembershipError::ConfigurationChanged { current: current_index });
        }
        // One change at a time is about *uncommitted* configuration entries (thesis §4.1): a
        // pending promotion is a committed promise, so removing a server (the promoting one
        // included, which withdraws its promotion in the same entry) or demoting a voter may
        // go ahead; other changes wait for the promotion so that it is not starved.
        let promotion_pending = self.catch_up.is_some() || !self.membership().promoting.is_empty();
        let allowed_while_promoting =
            matches!(change, MembershipChange::RemoveServer(_) | MembershipChange::DemoteVoter(_));
        if current_index > self.log.committed
            || self.membership().is_joint()
            || (promotion_pending && !allowed_while_promoting)
        {
            return Err(MembershipError::ChangeInProgress);
        }
        if !self.committed_own_term() {
            return Err(MembershipError::LeaderNotReady);
        }
        let current = self.membership().clone();
        let mut next = current.clone();
        let added = match &change {
            MembershipChange::AddVoter(id) => Some(*id),
            _ => None,
        };
        match change {
            MembershipChange::AddVoter(id) => {
                if current.voters.contains(&id) {
                    return Err(MembershipError::NoChange);
                }
                // Replicated, so that whoever leads carries the promotion out (§4.2.1).
                next.learners.insert(id);
                next.promoting.insert(id);
            }
            MembershipChange::AddLearner(id) => {
                if current.contains(id) {
                    return Err(MembershipError::NoChange);
                }
                next.learners.insert(id);
            }
            MembershipChange::DemoteVoter(id) => {
                if !next.voters.remove(&id) {
                    return Err(MembershipError::NotAMember(id));
                }
                next.learners.insert(id);
            }
            MembershipChange::RemoveServer(id) => {
                if !current.contains(id) {
                    return Err(MembershipError::NotAMember(id));
                }
                next.voters.remove(&id);
                next.learners.remove(&id);
                next.promoting.remove(&id);
            }
            MembershipChange::ReplaceVoters(voters) => {
                if voters == current.voters {
                    return Err(MembershipError::NoChange);
                }
                if let Some(&stranger) = voters.iter().find(|&&id| !current.contains(id)) {
                    return Err(MembershipError::JoinAsLearnerFirst(stranger));
                }
                next.learners.retain(|id| !voters.contains(id));
                next.promoting.retain(|id| !voters.contains(id));
                next.voters_outgoing = current.voters.clone();
                next.voters = voters;
            }
        }
        if next.voters.is_empty() {
            return Err(MembershipError::NoVotersLeft);
        }
        // Judged twice (§4.2.1): with every promotion under way counted as the voter it will
        // be, and with each counted only where that is worse, since a promotion may still be
        // withdrawn (`CatchUpAbandoned`). A change allowed only because a campaigning server is
        // being promoted would leave the campaigning voters a minority once that promotion is
        // withdrawn, with no change of the operator's left to refuse.
        for view in [PromotionView::Hopeful, PromotionView::Worst] {
            let deficit_after = self.campaign_deficit(&next, view);
            if deficit_after >= 0 && deficit_after > self.campaign_deficit(&current, view) {
                return Err(MembershipError::CampaigningMinority);
            }
        }
        let index = self.append_membership(next).map_err(|error| match error {
            ProposeError::NotLeader { leader } => MembershipError::NotLeader { leader },
            ProposeError::LeadershipTransferInProgress => MembershipError::LeadershipTransferInProgress,
            ProposeError::TooManyUncommitted => MembershipError::TooManyUncommitted,
        })?;
        // A new voter starts catching up at once (its learner entry is part of what it must
        // catch up on), with the full allowance: this leader promised it.
        self.advance_catch_up();
        if let Some(catch_up) = self.catch_up.as_mut() {
            if added.is_some_and(|id| id == catch_up.id) {
                catch_up.inherited = false;
            }
        }
        Ok(index)
    }

    fn append_membership(&mut self, membership: Membership) -> Result<LogIndex, ProposeError> {
        let index = self.propose_payload(EntryPayload::Membership(Box::new(membership)))?.index;
        self.stats.membership_changes += 1;
        Ok(index)
    }

    /// Leader: track exactly the members of the configuration in effect.
    pub(super) fn sync_progress_with_membership(&mut self) {
        let me = self.config.id;
        let members = self.membership().members();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index().next();
        for id in members {
            if id != me && !self.progress.contains_key(&id) {
                let mut pr =
                    Progress::new(next, self.config.inflight_messages_max, self.config.inflight_bytes_max);
                pr.last_contact_tick = self.ticks;
                self.progress.insert(id, pr);
            }
        }
        if self.catch_up.is_some_and(|c| !self.membership().promoting.contains(&c.id)) {
            self.catch_up = None;
        }
        if self.transfer.is_some_and(|t| !self.membership().is_voter(t)) {
            self.transfer = None;
        }
    }

    /// Leader, after its commit index moved: leave a committed joint configuration, and step
    /// down once a configuration without this server as voter has committed.
    pub(super) fn on_commit_membership(&mut self) {
        if self.role != Role::Leader || self.membership_index() > self.log.committed {
            return;
        }
        if self.membership().is_joint() {
            let mut next = self.membership().clone();
            next.voters_outgoing.clear();
            self.append_protocol_entry(EntryPayload::Membership(Box::new(next)));
            self.stats.membership_changes += 1;
            return;
        }
        if !self.membership().is_voter(self.config.id) {
            // §4.2.2: the removed leader has done its job; let the others elect a leader.
            self.become_follower(self.term, None);
            return;
        }
        // A promotion waiting for this commit goes now rather than at the next tick.
        if self.catch_up.is_some_and(|c| c.decided.is_some()) {
            self.advance_catch_up();
        }
    }

    /// Leader: start, advance and finish the catch-up of a learner waiting to be promoted
    /// (thesis §4.2.1). Called on every tick, acknowledgement and commit. A decided outcome is
    /// never dropped: it waits until its configuration entry may be appended, and the wait is
    /// reported once as [`RaftEvent::PromotionDeferred`].
    pub(super) fn advance_catch_up(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let catch_up = match self.catch_up {
            Some(catch_up) => catch_up,
            None => {
                // A promotion in the configuration and no catch-up: asked for by AddVoter just
                // now, or left over by an earlier leader. Start (over) from here.
                let Some(id) = self.membership().next_promotion() else {
                    return;
                };
                CatchUp {
                    id,
                    round_end: self.log.last_index(),
                    round_started_tick: self.ticks,
                    rounds: 1,
                    started_tick: self.ticks,
                    decided: None,
                    deferral_reported: false,
                    // `change_membership` clears it for this leader's own `AddVoter`.
                    inherited: true,
                }
            }
        };
        self.catch_up = self.catch_up_step(catch_up);
    }

    /// One step of a catch-up; returns it if it goes on.
    fn catch_up_step(&mut self, mut catch_up: CatchUp) -> Option<CatchUp> {
        let id = catch_up.id;
        if !self.membership().promoting.contains(&id) || !self.membership().learners.contains(&id) {
            // Settled by a configuration entry: ours, or a change that removed the server.
            return None;
        }
        let match_index = self.progress.get(&id)?.match_index;
        if catch_up.decided.is_none() {
            catch_up.decided = self.catch_up_outcome(&mut catch_up, match_index);
            if catch_up.decided == Some(Outcome::Withdraw) {
                self.events.push(RaftEvent::CatchUpAbandoned { id });
            }
        }
        let Some(mut outcome) = catch_up.decided else {
            return Some(catch_up);
        };
        if outcome == Outcome::Promote && self.promotion_leaves_campaigning_minority(id) {
            // Re-judged at the last moment: the driver may have learned after the `AddVoter`
            // that this server never campaigns (`set_peer_campaigns`), and the check in
            // `change_membership` saw the belief of that time.
            outcome = Outcome::Withdraw;
            catch_up.decided = Some(outcome);
            self.events.push(RaftEvent::CatchUpAbandoned { id });
        }
        if !self.may_append_membership() {
            if !catch_up.deferral_reported && outcome == Outcome::Promote {
                catch_up.deferral_reported = true;
                self.events.push(RaftEvent::PromotionDeferred { id });
            }
            return Some(catch_up);
        }
        let mut next = self.membership().clone();
        next.promoting.remove(&id);
        if outcome == Outcome::Promote {
            next.learners.remove(&id);
            next.voters.insert(id);
        }
        // A protocol entry: neither the uncommitted-bytes window nor anything else may drop it.
        self.append_protocol_entry(EntryPayload::Membership(Box::new(next)));
        self.stats.membership_changes += 1;
        None
    }

    /// Whether completing the promotion of `id` would leave the campaigning voters a minority
    /// where withdrawing it would not (thesis §4.2.1, §3.10: a cluster whose campaigning voters
    /// are a minority cannot elect a leader once one of them fails). Judged with the beliefs of
    /// now, in the [`PromotionView::Worst`] view of [`RaftNode::change_membership`].
    fn promotion_leaves_campaigning_minority(&self, id: NodeId) -> bool {
        if self.peer_campaigns(id) {
            return false;
        }
        let mut promoted = self.membership().clone();
        promoted.promoting.remove(&id);
        promoted.learners.remove(&id);
        promoted.voters.insert(id);
        let mut withdrawn = self.membership().clone();
        withdrawn.promoting.remove(&id);
        let deficit = self.campaign_deficit(&promoted, PromotionView::Worst);
        deficit >= 0 && deficit > self.campaign_deficit(&withdrawn, PromotionView::Worst)
    }

    /// Whether the outcome of a catch-up is decided: promote after a round that finished within
    /// an election timeout, withdraw after too many rounds or too long.
    fn catch_up_outcome(&self, catch_up: &mut CatchUp, match_index: LogIndex) -> Option<Outcome> {
        let total_ticks = self.ticks.saturating_sub(catch_up.started_tick);
        let timeouts = if catch_up.inherited { 1 } else { u64::from(CATCH_UP_ROUNDS_MAX) };
        if total_ticks > timeouts * self.config.election_timeout_ticks {
            // Unreachable or too slow: it stays a learner.
            return Some(Outcome::Withdraw);
        }
        if match_index < catch_up.round_end {
            return None;
        }
        let round_ticks = self.ticks.saturating_sub(catch_up.round_started_tick);
        if round_ticks <= self.config.election_timeout_ticks {
            return Some(Outcome::Promote);
        }
        if catch_up.rounds >= CATCH_UP_ROUNDS_MAX {
            return Some(Outcome::Withdraw);
        }
        catch_up.rounds += 1;
        catch_up.round_end = self.log.last_index();
        catch_up.round_started_tick = self.ticks;
        None
    }

    /// Whether this leader may append a configuration entry now: one change at a time, only
    /// after committing an entry of its own term, not during a leadership transfer.
    fn may_append_membership(&self) -> bool {
        self.membership_index() <= self.log.committed
            && !self.membership().is_joint()
            && self.committed_own_term()
            && self.transfer.is_none()
    }

    /// Hands leadership to `target`, or to the most up-to-date other voter (thesis §3.10):
    /// proposals are refused meanwhile, the target is brought up to date and then told to
    /// campaign at once with TimeoutNow. Abandoned after an election timeout.
    ///
    /// # Errors
    /// [`TransferError`] if this is not the leader, a transfer runs, or the target is invalid.
    pub fn transfer_leadership(&mut self, target: Option<NodeId>) -> Result<NodeId, TransferError> {
        if self.role != Role::Leader {
            return Err(TransferError::NotLeader { leader: self.leader });
        }
        if self.transfer.is_some() {
            return Err(TransferError::InProgress);
        }
        let me = self.config.id;
        let target = match target {
            Some(id) if self.non_campaigning_peers.contains(&id) => {
                return Err(TransferError::DoesNotCampaign(id))
            }
            Some(id) if id != me && self.membership().is_voter(id) && self.progress.contains_key(&id) => id,
            Some(id) => return Err(TransferError::NotAVoter(id)),
            None => {
                let membership = self.membership();
                let non_campaigning = &self.non_campaigning_peers;
                self.progress
                    .iter()
                    .filter(|(id, _)| membership.is_voter(**id) && !non_campaigning.contains(id))
                    .max_by_key(|(id, pr)| (pr.match_index, core::cmp::Reverse(**id)))
                    .map(|(id, _)| *id)
                    .ok_or(TransferError::NoTarget)?
            }
        };
        self.transfer = Some(target);
        self.transfer_elapsed = 0;
        self.events.push(RaftEvent::TransferStarted { target });
        let last_index = self.log.last_index();
        if let Some(pr) = self.progress.get_mut(&target) {
            if pr.match_index < last_index && pr.next_index > last_index {
                // Entries believed in flight may be lost: check now rather than at the next
                // heartbeat, so the handover is quick.
                pr.check_lost_entries = true;
            }
        }
        self.maybe_send_timeout_now();
        self.needs_flush = true;
        Ok(target)
    }

    /// Tells this node whether `peer` campaigns (its [`crate::Config::campaigns`], which this
    /// node cannot see). As leader it never picks a peer that does not as a transfer target
    /// (thesis §3.10): [`RaftNode::transfer_leadership`] refuses it by name with
    /// [`TransferError::DoesNotCampaign`] and skips it when choosing; a transfer already
    /// handing over to it is abandoned ([`RaftEvent::TransferAbandoned`]). Call it on every
    /// node, since any may lead; it is kept across role changes and not replicated. A peer
    /// nobody was told about is assumed to campaign; if it does not, it ignores TimeoutNow and
    /// the transfer is abandoned after an election timeout, so the call only saves that wait.
    /// This node's own id is ignored: its own behaviour is its `Config::campaigns`.
    pub fn set_peer_campaigns(&mut self, peer: NodeId, campaigns: bool) {
        if peer == self.config.id {
            return;
        }
        if campaigns {
            self.non_campaigning_peers.remove(&peer);
            return;
        }
        self.non_campaigning_peers.insert(peer);
        if self.transfer == Some(peer) {
            self.transfer = None;
            self.events.push(RaftEvent::TransferAbandoned { target: peer });
        }
    }

    /// Voters (with the servers being promoted, as `view` says) that never campaign, minus those
    /// that do: the campaigning voters are a majority exactly when it is negative. A change that
    /// makes it non-negative and larger in either view is refused
    /// ([`MembershipError::CampaigningMinority`]); one that lowers it (adds a campaigning
    /// voter, removes one that does not) is always allowed. The automatic steps of a promotion
    /// never raise the [`PromotionView::Worst`] figure: completing one adds a voter already
    /// counted if it does not campaign, withdrawing one removes a campaigner not counted.
    fn campaign_deficit(&self, membership: &Membership, view: PromotionView) -> i64 {
        let counted = |id: &&NodeId| match view {
            PromotionView::Hopeful => true,
            PromotionView::Worst => !self.peer_campaigns(**id),
        };
        membership
            .voters
            .iter()
            .chain(membership.promoting.iter().filter(|id| !membership.voters.contains(id)).filter(counted))
            .map(|&id| if self.peer_campaigns(id) { -1 } else { 1 })
            .sum()
    }

    /// Whether this node believes `peer` campaigns (see [`RaftNode::set_peer_campaigns`]); for
    /// its own id, its `Config::campaigns`.
    pub fn peer_campaigns(&self, peer: NodeId) -> bool {
        if peer == self.config.id {
            return self.config.campaigns;
        }
        !self.non_campaigning_peers.contains(&peer)
    }

    /// Sends TimeoutNow once the transfer target holds the whole log.
    pub(super) fn maybe_send_timeout_now(&mut self) {
        let Some(target) = self.transfer else {
            return;
        };
        let caught_up = self.progress.get(&target).is_some_and(|pr| pr.match_index == self.log.last_index());
        if caught_up {
            // From now on the target may win an election in the next term at any moment (a
            // delayed TimeoutNow still counts), overriding the followers' leases: this leader's
            // lease is gone for the rest of its term (thesis §3.10, §6.4.1).
            self.timeout_now_sent_term = Some(self.term);
            self.send(target, MessageBody::TimeoutNow);
            self.stats.leader_transfers += 1;
        }
    }

    /// Leader tick: give up a transfer that took longer than an election timeout.
    pub(super) fn tick_transfer(&mut self) {
        if self.transfer.is_none() {
            return;
        }
        self.transfer_elapsed += 1;
        if self.transfer_elapsed >= self.config.election_timeout_ticks {
            if let Some(target) = self.transfer.take() {
                self.events.push(RaftEvent::TransferAbandoned { target });
            }
        }
    }
}

/// How [`RaftNode::campaign_deficit`] counts the servers being promoted (thesis §4.2.1: a
/// promotion completes only if the server catches up, and is withdrawn otherwise).
#[derive(Clone, Copy)]
enum PromotionView {
    /// Every promotion under way completes.
    Hopeful,
    /// Each promotion ends whichever way is worse for the campaigning majority: a
    /// non-campaigning server becomes a voter, a campaigning one is withdrawn.
    Worst,
}
