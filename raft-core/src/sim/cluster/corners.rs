//! Corners of issue 10 that the random faults almost never reach, each made reachable by a
//! reactive fault that looks at the cluster's state (see [`crate::sim::Adversary`]), and the
//! per-step probe rule ([`crate::sim::rules`], `probe-advances`) that sees the hot reject loop.
//!
//! - **A restarted voter must stay quiet** (defect 3, thesis §6.4.1): followers that just
//!   answered a leader's heartbeat round are crashed and restarted at once, enough of them for a
//!   rival's majority, while the leader, partitioned away, keeps serving lease reads; the rival
//!   campaigns as soon as they are back. A restarted voter that grants votes at once lets the
//!   rival commit while the lease still counts its answer (`read-index-fresh`).
//! - **The same index, another configuration** (defect 1, thesis §4.1): the configuration
//!   entry a deposed leader appended is overwritten by the majority's next leader with another
//!   configuration entry at that very index (writes first fill the gap up to it).
//! - **The hint on the compaction point** (defect 4, §5.3, §7): a deposed leader keeps taking
//!   writes (a long divergent tail), and a leader that gets a rejection snapshots when its
//!   compaction point would fall inside the follower's divergent tail, below its hint.
//!
//! Every fault is written into the script as ordinary inputs, drawn from the adversary's own
//! random stream.

use super::{Liveness, Simulation};
use crate::message::{AppendOutcome, Message, MessageBody};
use crate::node::MembershipChange;
use crate::reads::ReadMode;
use crate::sim::hash::trace_combine;
use crate::sim::rules::ProbeView;
use crate::sim::script::Input;
use crate::types::{LogIndex, NodeId, Role, Term};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use bytes::Bytes;

/// Writes that fill a new leader's log up to the index of a competing configuration, at most.
const FILL_MAX: u64 = 64;

/// A configuration entry a deposed leader appended, which the majority's next leader is to
/// overwrite with another configuration entry at the same index.
#[derive(Clone, Debug)]
struct Competing {
    deposed: NodeId,
    term: Term,
    index: LogIndex,
    removed: NodeId,
}

/// What the corner faults remember between steps.
#[derive(Clone, Debug, Default)]
pub(crate) struct CornerState {
    competing: Option<Competing>,
    /// No restart-the-ackers episode before this time.
    ackers_quiet_until_ms: u64,
    /// No new burst of writes at a deposed leader before this time.
    deposed_writes_until_ms: u64,
}

/// A rejection on its way into a leader, with the leader's view of the follower before it.
pub(super) struct Rejection {
    follower: NodeId,
    rejected: LogIndex,
    before: ProbeView,
}

fn probe_view(raft: &crate::node::RaftNode, follower: NodeId) -> Option<ProbeView> {
    raft.follower_progress().find(|p| p.id == follower).map(|p| ProbeView {
        state: p.state,
        next_index: p.next_index,
        match_index: p.match_index,
    })
}

impl CornerState {
    /// The deposed `leader` of `term` appended a configuration removing `removed` at `index`:
    /// the majority's next leader is to put another configuration at that index.
    pub(super) fn competing_appended(
        &mut self,
        leader: NodeId,
        term: Term,
        index: LogIndex,
        removed: NodeId,
    ) {
        self.competing = Some(Competing { deposed: leader, term, index, removed });
    }
}

impl Simulation {
    /// `message` is about to be handled by server `k`: if it is a rejection for the leader
    /// of its term, note the leader's view of the follower for [`Simulation::rejection_handled`].
    pub(super) fn rejection_arriving(&self, k: usize, message: &Message) -> Option<Rejection> {
        let MessageBody::AppendResponse { outcome: AppendOutcome::Rejected { rejected_index, .. } } =
            &message.body
        else {
            return None;
        };
        let raft = self.nodes[k].raft.as_ref()?;
        if raft.role() != Role::Leader || raft.term() != message.term {
            return None;
        }
        let before = probe_view(raft, message.from)?;
        Some(Rejection { follower: message.from, rejected: *rejected_index, before })
    }

    /// The rejection noted by [`Simulation::rejection_arriving`] was handled: check the
    /// `probe-advances` rule.
    pub(super) fn rejection_handled(&mut self, k: usize, rejection: Rejection) {
        let Some(raft) = self.nodes[k].raft.as_ref().filter(|r| r.role() == Role::Leader) else {
            return;
        };
        let Some(after) = probe_view(raft, rejection.follower) else {
            return;
        };
        let (leader, compacted, now) = (raft.id(), raft.snapshot_index(), self.now_ms);
        let rules = &mut self.rules;
        rules.probe_rejected(
            &mut self.checker,
            leader,
            rejection.follower,
            rejection.rejected,
            rejection.before,
            after,
            compacted,
            now,
        );
    }

    /// The key an adversary's read asks for: empty, which [`Input::Read`] resolves to the key a
    /// kv client last wrote (so the read can miss that write).
    pub(super) fn adversary_read_key() -> Bytes {
        Bytes::new()
    }

    /// A leader was just cut off from its majority (see `adversary_on_partition`): it keeps
    /// taking writes from the clients that still reach it, a long uncommitted tail.
    pub(super) fn deposed_leader_writes(&mut self, leader: NodeId) {
        let now = self.now_ms;
        if !self.config.adversary.deposed_leader_writes
            || now < self.corners.deposed_writes_until_ms
            || now >= self.faults_end_ms
        {
            return;
        }
        let until = now + self.adversary_rng.range(100, 801);
        self.corners.deposed_writes_until_ms = until;
        let mut time = now;
        while time < until {
            let data = Bytes::copy_from_slice(&(u64::MAX / 4 + time).to_le_bytes());
            self.schedule(time, Input::ProposeTo { node: leader, data });
            time += 5;
        }
    }

    /// Server `k` leads after a step: if it is the majority's next leader and has committed an
    /// entry of its term, fill its log with writes up to the competing configuration's index
    /// and propose another configuration there.
    pub(super) fn competing_follow_up(&mut self, k: usize) {
        let Some(competing) = self.corners.competing.clone() else {
            return;
        };
        let Some(raft) = self.nodes[k].raft.as_ref() else {
            return;
        };
        let (id, term, last) = (raft.id(), raft.term(), raft.last_index());
        if id == competing.deposed || term <= competing.term {
            return;
        }
        if self.now_ms >= self.faults_end_ms {
            self.corners.competing = None; // The calm tail: no new faults.
            return;
        }
        if last >= competing.index {
            self.corners.competing = None; // Too late: this leader's log is past it.
            return;
        }
        if raft.term_at(raft.commit_index()) != Some(term) || raft.membership_index() > raft.commit_index() {
            return; // Not yet allowed to change the configuration (thesis §4.1).
        }
        let fill = competing.index.0 - last.0 - 1;
        let voters: Vec<NodeId> = raft.membership().voters.iter().copied().collect();
        let removed = competing.removed;
        self.corners.competing = None;
        let choices: Vec<NodeId> = voters.iter().copied().filter(|&v| v != removed && v != id).collect();
        if fill > FILL_MAX || choices.is_empty() || raft.membership().is_joint() {
            return;
        }
        let victim = choices[self.adversary_rng.range(0, choices.len() as u64) as usize];
        let now = self.now_ms;
        self.trace_hash = trace_combine(self.trace_hash, &(now, 'c', id.0, fill, victim.0));
        for n in 0..fill {
            let data = Bytes::copy_from_slice(&(u64::MAX / 8 + now + n).to_le_bytes());
            self.schedule(now, Input::ProposeTo { node: id, data });
        }
        let change = |change| Input::ChangeMembership { change };
        self.schedule(now, change(MembershipChange::RemoveServer(victim)));
        // Undone later, as the membership nemesis does.
        let back = now + self.adversary_rng.range(300, 1_500);
        let everyone: BTreeSet<NodeId> = self.config.node_ids().collect();
        self.schedule(back, change(MembershipChange::ReplaceVoters(everyone)));
        self.schedule(back + 400, change(MembershipChange::AddVoter(victim)));
    }

    /// A rejection from `follower` is on its way to `leader`, with the follower's hint at
    /// `hint_index`: if the leader's next snapshot would compact its log to a point inside the
    /// follower's divergent tail, at or below the hint, take it right before the rejection
    /// arrives (at `deliver_ms`).
    pub(super) fn snapshot_at_divergence(
        &mut self,
        leader: NodeId,
        follower: NodeId,
        hint_index: LogIndex,
        deliver_ms: u64,
    ) {
        let (Some(l), Some(f)) = (self.index(leader), self.index(follower)) else {
            return;
        };
        let (Some(lr), Some(fr)) = (self.nodes[l].raft.as_ref(), self.nodes[f].raft.as_ref()) else {
            return;
        };
        if lr.role() != Role::Leader || self.now_ms >= self.faults_end_ms {
            return;
        }
        let applied = self.nodes[l].machine.applied;
        let compact = LogIndex(applied.0.saturating_sub(self.config.snapshot_trailing_entries));
        if compact <= lr.snapshot_index() || compact > hint_index {
            return;
        }
        // The first index past the follower's commit where the two logs differ.
        let mut diverges = None;
        let mut i = fr.commit_index().next();
        while i <= fr.last_index().min(compact) {
            if fr.term_at(i) != lr.term_at(i) {
                diverges = Some(i);
                break;
            }
            i = i.next();
        }
        if diverges.is_some_and(|d| d <= compact) {
            self.trace_hash = trace_combine(self.trace_hash, &(self.now_ms, 'd', leader.0, compact));
            self.schedule(deliver_ms, Input::Snapshot(leader));
        }
    }

    /// A heartbeat answer is leaving a follower for its leader: maybe crash that follower and
    /// as many others as a rival needs for a majority, restart them at once, partition the
    /// leader away while it serves lease reads, and have the rival campaign.
    pub(super) fn maybe_restart_ackers(&mut self, message: &Message) {
        let chance = u64::from(self.config.adversary.restart_ackers_per_mille);
        if chance == 0
            || !matches!(message.body, MessageBody::HeartbeatResponse { .. })
            || self.now_ms < self.corners.ackers_quiet_until_ms
            || self.now_ms >= self.faults_end_ms
        {
            return;
        }
        let (leader, acker) = (message.to, message.from);
        let Some(raft) = self.index(leader).and_then(|k| self.nodes[k].raft.as_ref()) else {
            return;
        };
        if raft.role() != Role::Leader || raft.term() != message.term || raft.membership().is_joint() {
            return;
        }
        let voters: Vec<NodeId> = raft.membership().voters.iter().copied().collect();
        if voters.len() < 3 || !voters.contains(&leader) || !voters.contains(&acker) {
            return;
        }
        if !self.adversary_rng.chance(chance, 1000) {
            return;
        }
        // Running followers, most up-to-date log first: the first one is the rival.
        let mut followers: Vec<(Term, LogIndex, NodeId)> = voters
            .iter()
            .filter(|&&id| id != leader)
            .filter_map(|&id| {
                let node = self.node(id)?;
                let raft = node.raft.as_ref().filter(|_| node.liveness() == Liveness::Up)?;
                Some((raft.term_at(raft.last_index()).unwrap_or(Term(0)), raft.last_index(), id))
            })
            .collect();
        followers.sort_by(|a, b| b.cmp(a));
        let Some(&(_, _, rival)) = followers.first() else {
            return;
        };
        let needed = voters.len() / 2; // The rival and these make a majority.
        let mut restarted: Vec<NodeId> = Vec::new();
        if acker != rival {
            restarted.push(acker);
        }
        for &(_, _, id) in &followers[1..] {
            if restarted.len() < needed && !restarted.contains(&id) {
                restarted.push(id);
            }
        }
        if restarted.len() < needed {
            return;
        }
        let now = self.now_ms;
        self.corners.ackers_quiet_until_ms = now + 2_000;
        let ids: Vec<u64> = restarted.iter().map(|id| id.0).collect();
        self.trace_hash = trace_combine(self.trace_hash, &(now, 'q', leader.0, rival.0, &ids));
        self.schedule(now, Input::Partition { side: alloc::vec![leader] });
        let heal_ms = now + self.adversary_rng.range(300, 801);
        self.schedule(heal_ms, Input::Heal);
        let mut back_ms = now;
        for &id in &restarted {
            let restart_ms = now + self.adversary_rng.range(1, 16);
            back_ms = back_ms.max(restart_ms);
            self.schedule(now, Input::Crash(id));
            self.schedule(restart_ms, Input::Restart(id));
        }
        let campaign_ms = back_ms + self.adversary_rng.range(0, 4);
        self.schedule(campaign_ms, Input::Campaign(rival));
        for step in 0..40 {
            let read =
                Input::Read { node: leader, key: Simulation::adversary_read_key(), mode: ReadMode::Lease };
            self.schedule(now + 5 + 4 * step, read);
        }
    }
}
