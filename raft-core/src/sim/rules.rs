//! Per-step checks of the rules that Raft's safety rests on, beside the end properties of
//! [`crate::sim::Checker`]: an end property is broken only when an unlucky schedule follows a
//! broken rule, a rule is seen broken at the step that breaks it.
//!
//! - **Votes are durable** (Figure 2, "persist before you speak"): when a granted vote or a
//!   candidate's own vote request leaves a server, its disk holds that term and that vote.
//! - **One vote per term** (§5.2): no server grants votes to two candidates in one term, across
//!   restarts, and its recorded vote never changes within a term.
//! - **Acknowledged entries are durable**: an AppendEntries acceptance never covers more than the
//!   server's disk holds.
//! - **matchIndex never goes down** in a leader's view of a follower within its term.
//! - **A leader commits only by counting replicas of an entry of its own term** (§5.4.2,
//!   Figure 8), and **only what a majority stores** (of both halves of a joint configuration,
//!   thesis §4.3), counted here from the servers' disks, not with the core's quorum code.
//! - **A configuration change waits for an entry of the leader's term to commit** (the fix for
//!   the single-server change bug, thesis §4.1).
//! - **A running server's state never goes back** (§7: a stale snapshot never rolls it back).
//! - **A linearizable or lease read index covers everything committed before the read was
//!   asked** (thesis §6.4), whichever server asked.
//! - **A rejected probe moves the leader back** (§5.3, Figure 2: "decrement nextIndex and
//!   retry"; §7): once a leader handled a follower's rejection of the AppendEntries it is
//!   waiting on, with `prevLogIndex` p, it never sends that follower p as `prevLogIndex` again
//!   (its next index is at most p, or p is compacted and a snapshot follows). Re-probing p is the
//!   hot AppendEntries/reject loop of a livelock that never sends the snapshot (issue 10,
//!   defect 4).

use crate::sim::checker::Checker;
use crate::types::{LogIndex, Membership, NodeId, Term};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;

/// What the rule checks remember between steps.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    /// (voter, term) → the candidate it granted its vote to, over the whole run.
    granted: BTreeMap<(NodeId, Term), NodeId>,
    /// voter → (term, vote) last seen in memory, per incarnation.
    recorded: BTreeMap<NodeId, (Term, Option<NodeId>)>,
    /// leader → (term, follower → matchIndex) last seen.
    matched: BTreeMap<NodeId, (Term, BTreeMap<NodeId, LogIndex>)>,
    /// server → (term, led, commit index) last seen.
    commits: BTreeMap<NodeId, (Term, bool, LogIndex)>,
    /// Client read request id → the highest index committed anywhere when it was asked.
    read_floors: BTreeMap<u64, LogIndex>,
    /// leader → (configuration index, configuration) at the end of its last step.
    memberships: BTreeMap<NodeId, (LogIndex, Membership)>,
}

/// A leader's view of one follower, just before and just after it handled that follower's
/// rejection (see [`Rules::probe_rejected`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProbeView {
    /// Probe, replicate or snapshot.
    pub(crate) state: crate::progress::ProgressState,
    /// The follower's next index in the leader's view.
    pub(crate) next_index: LogIndex,
    /// The follower's match index in the leader's view.
    pub(crate) match_index: LogIndex,
}

/// What [`Rules::observe`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The server leads a term it was not seen leading before.
    pub(crate) became_leader: bool,
    /// The server leads and its commit index moved within the term.
    pub(crate) commit_advanced: bool,
}

/// A server's disk as far as the rules look at it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Disk<'a> {
    pub(crate) id: NodeId,
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    /// The stored log's entries, as (index, term).
    pub(crate) entries: &'a [crate::types::Entry],
    /// The stored snapshot's (index, term).
    pub(crate) snapshot: Option<(LogIndex, Term)>,
}

impl Disk<'_> {
    /// Whether the disk holds the entry (index, term), in its log or under its snapshot.
    pub(crate) fn holds(&self, index: LogIndex, term: Term) -> bool {
        if self.snapshot.is_some_and(|(at, _)| index <= at) {
            // A snapshot only ever covers committed entries.
            return true;
        }
        let Some(first) = self.entries.first() else {
            return false;
        };
        let Some(offset) = index.0.checked_sub(first.index.0) else {
            return false;
        };
        self.entries.get(offset as usize).is_some_and(|e| e.index == index && e.term == term)
    }

    /// The last index the disk holds.
    pub(crate) fn last_index(&self) -> LogIndex {
        self.entries.last().map(|e| e.index).or(self.snapshot.map(|(i, _)| i)).unwrap_or(LogIndex(0))
    }
}

/// Whether the servers whose disks hold (index, term) form a majority of `voters`, counted
/// here rather than with [`crate::quorum`] so that a bug there cannot hide from the check.
fn majority_holds(voters: &BTreeSet<NodeId>, disks: &[Disk<'_>], index: LogIndex, term: Term) -> bool {
    if voters.is_empty() {
        return true;
    }
    let holding =
        voters.iter().filter(|id| disks.iter().any(|d| d.id == **id && d.holds(index, term))).count();
    2 * holding > voters.len()
}

impl Rules {
    /// A server sent `granted` for `candidate` in `term`; `disk` is its disk at that moment.
    pub(crate) fn vote_sent(
        &mut self,
        checker: &mut Checker,
        disk: &Disk<'_>,
        candidate: NodeId,
        term: Term,
        time_ms: u64,
    ) {
        let voter = disk.id;
        // A server may move to a later term before the batch holding its vote is written; the
        // later term on disk then keeps it from voting in this one again.
        if disk.term < term || (disk.term == term && disk.voted_for != Some(candidate)) {
            let detail = format!(
                "node {voter} sent its vote for {candidate} in term {term} with term {} and vote {:?} on disk",
                disk.term, disk.voted_for
            );
            checker.flag("vote-durable", time_ms, detail);
        }
        if candidate == voter {
            return;
        }
        match self.granted.get(&(voter, term)) {
            Some(&earlier) if earlier != candidate => {
                let detail =
                    format!("node {voter} voted for {earlier} and then for {candidate} in term {term}");
                checker.flag("one-vote-per-term", time_ms, detail);
            }
            Some(_) => {}
            None => {
                self.granted.insert((voter, term), candidate);
            }
        }
    }

    /// A server persisted a hard state holding `voted_for` in `term`.
    pub(crate) fn vote_persisted(
        &mut self,
        checker: &mut Checker,
        voter: NodeId,
        term: Term,
        voted_for: Option<NodeId>,
        time_ms: u64,
    ) {
        let Some(candidate) = voted_for else {
            return;
        };
        if candidate == voter {
            return;
        }
        match self.granted.get(&(voter, term)) {
            Some(&earlier) if earlier != candidate => {
                let detail = format!(
                    "node {voter} stored a vote for {candidate} in term {term} after voting for {earlier}"
                );
                checker.flag("one-vote-per-term", time_ms, detail);
            }
            Some(_) => {}
            None => {
                self.granted.insert((voter, term), candidate);
            }
        }
    }

    /// A server accepted entries up to `match_index` in `term`; `disk` is its disk as the answer
    /// leaves. (A server that moved to a later term before writing them may have dropped them:
    /// its answer is from a term it left, which only matters if no leader of a later term
    /// exists, and the later term on disk says one does.)
    pub(crate) fn ack_sent(
        &mut self,
        checker: &mut Checker,
        disk: &Disk<'_>,
        term: Term,
        match_index: LogIndex,
        time_ms: u64,
    ) {
        if disk.term <= term && match_index > disk.last_index() {
            let detail = format!(
                "node {} acknowledged entries up to {match_index} with {} on disk",
                disk.id,
                disk.last_index()
            );
            checker.flag("ack-durable", time_ms, detail);
        }
    }

    /// A server (re)started: its memory starts from its disk.
    pub(crate) fn started(&mut self, id: NodeId) {
        self.recorded.remove(&id);
        self.matched.remove(&id);
        self.commits.remove(&id);
    }

    /// Looks at a running server after a step. Returns whether it just started leading a term,
    /// and whether it leads and its commit index moved within its term (then the caller checks
    /// the commit with [`Rules::leader_committed`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn observe(
        &mut self,
        checker: &mut Checker,
        id: NodeId,
        term: Term,
        voted_for: Option<NodeId>,
        leader_of: Option<(&Membership, &mut dyn Iterator<Item = (NodeId, LogIndex)>)>,
        commit: LogIndex,
        time_ms: u64,
    ) -> Observed {
        match self.recorded.insert(id, (term, voted_for)) {
            Some((before, Some(was))) if before == term && voted_for != Some(was) => {
                let detail = format!("node {id} changed its vote in term {term} from {was} to {voted_for:?}");
                checker.flag("one-vote-per-term", time_ms, detail);
            }
            _ => {}
        }
        let leads = leader_of.is_some();
        let before = self.commits.insert(id, (term, leads, commit));
        let Some((membership, progress)) = leader_of else {
            self.matched.remove(&id);
            return Observed::default();
        };
        let observed = match before {
            Some((before_term, true, before_commit)) if before_term == term => {
                Observed { became_leader: false, commit_advanced: commit > before_commit }
            }
            _ => Observed { became_leader: true, commit_advanced: false },
        };
        let (seen_term, seen) = self.matched.entry(id).or_insert_with(|| (term, BTreeMap::new()));
        if *seen_term != term {
            *seen_term = term;
            seen.clear();
        }
        let mut count = 0;
        for (follower, match_index) in progress {
            count += 1;
            match seen.get_mut(&follower) {
                Some(was) => {
                    if match_index < *was {
                        let detail = format!(
                            "leader {id} of term {term} saw follower {follower}'s matchIndex go from {was} to {match_index}"
                        );
                        checker.flag("match-monotonic", time_ms, detail);
                    }
                    *was = match_index;
                }
                None => {
                    seen.insert(follower, match_index);
                }
            }
        }
        if count != seen.len() {
            // A follower that left the configuration (and may come back) starts over.
            let members = membership.members();
            seen.retain(|follower, _| members.contains(follower));
        }
        observed
    }

    /// A leader's commit index moved to `commit` within its term `term`: the entry there must
    /// be of that term and stored on a majority of (both halves of) its configuration.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn leader_committed(
        &mut self,
        checker: &mut Checker,
        id: NodeId,
        term: Term,
        membership: &Membership,
        commit: LogIndex,
        term_at_commit: Option<Term>,
        disks: &[Disk<'_>],
        time_ms: u64,
    ) {
        let Some(entry_term) = term_at_commit else {
            return;
        };
        if entry_term != term {
            let detail = format!(
                "leader {id} of term {term} committed index {commit} of term {entry_term} by counting replicas"
            );
            checker.flag("commit-own-term", time_ms, detail);
        }
        let incoming = majority_holds(&membership.voters, disks, commit, entry_term);
        let outgoing = majority_holds(&membership.voters_outgoing, disks, commit, entry_term);
        // The step may have committed under the configuration it started with, then appended
        // another: either one's majorities will do.
        let before = self.memberships.get(&id).is_some_and(|(_, m)| {
            majority_holds(&m.voters, disks, commit, entry_term)
                && majority_holds(&m.voters_outgoing, disks, commit, entry_term)
        });
        if (!incoming || !outgoing) && !before {
            let half = if incoming { "outgoing" } else { "incoming" };
            let holding: alloc::vec::Vec<u64> =
                disks.iter().filter(|d| d.holds(commit, entry_term)).map(|d| d.id.0).collect();
            let detail = format!(
                "leader {id} of term {term} committed index {commit} that no majority of the {half} voters stores (voters {:?}, outgoing {:?}, stored on {holding:?})",
                membership.voters.iter().map(|v| v.0).collect::<alloc::vec::Vec<_>>(),
                membership.voters_outgoing.iter().map(|v| v.0).collect::<alloc::vec::Vec<_>>(),
            );
            checker.flag("commit-quorum", time_ms, detail);
        }
    }

    /// A leader's configuration (at `index`) after a step.
    pub(crate) fn leader_membership(&mut self, id: NodeId, index: LogIndex, membership: &Membership) {
        if self.memberships.get(&id).is_none_or(|(at, _)| *at != index) {
            self.memberships.insert(id, (index, membership.clone()));
        }
    }

    /// A leader appended a configuration entry of its term `term` while its commit index held
    /// an entry of `term_at_commit`.
    pub(crate) fn membership_appended(
        &mut self,
        checker: &mut Checker,
        id: NodeId,
        term: Term,
        index: LogIndex,
        term_at_commit: Option<Term>,
        time_ms: u64,
    ) {
        if term_at_commit != Some(term) {
            let detail = format!(
                "leader {id} of term {term} appended a configuration at {index} before committing an entry of its term"
            );
            checker.flag("membership-own-term", time_ms, detail);
        }
    }

    /// A running server's state machine was replaced by a snapshot at `index` after it had
    /// applied `applied`.
    pub(crate) fn snapshot_installed(
        &mut self,
        checker: &mut Checker,
        id: NodeId,
        index: LogIndex,
        applied: LogIndex,
        time_ms: u64,
    ) {
        if index < applied {
            let detail = format!("node {id} installed a snapshot at {index} after applying {applied}");
            checker.flag("snapshot-rollback", time_ms, detail);
        }
    }

    /// Leader `leader` (compacted through `compacted`) handled `follower`'s rejection of an
    /// AppendEntries whose `prevLogIndex` was `rejected`; `before` and `after` are its view of
    /// the follower around the step. If the rejection was of the probe or window the leader
    /// was waiting on, the leader must have moved below `rejected`, or be about to send a
    /// snapshot (§5.3, §7).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn probe_rejected(
        &mut self,
        checker: &mut Checker,
        leader: NodeId,
        follower: NodeId,
        rejected: LogIndex,
        before: ProbeView,
        after: ProbeView,
        compacted: LogIndex,
        time_ms: u64,
    ) {
        use crate::progress::ProgressState;
        let current = match before.state {
            ProgressState::Probe => before.next_index.prev() == rejected,
            ProgressState::Replicate => rejected > before.match_index,
            ProgressState::Snapshot => false,
        };
        // A follower that acknowledged `rejected` and then refused it lost acknowledged
        // entries: `ack-durable`'s business, not this rule's.
        if !current || before.match_index >= rejected {
            return;
        }
        let moved_back = after.next_index <= rejected;
        let snapshot_next = after.state == ProgressState::Snapshot || rejected < compacted;
        if !moved_back && !snapshot_next {
            let detail = format!(
                "leader {leader} will probe follower {follower} at {rejected} again right after {follower} rejected it (next index {}, compacted through {compacted}): a reject loop that never sends a snapshot",
                after.next_index
            );
            checker.flag("probe-advances", time_ms, detail);
        }
    }

    /// A linearizable or lease read was asked while `committed` was the highest index committed
    /// anywhere.
    pub(crate) fn read_asked(&mut self, request_id: u64, committed: LogIndex) {
        self.read_floors.insert(request_id, committed);
    }

    /// A read index came for `request_id` (or the read failed: `index` is `None`).
    pub(crate) fn read_answered(
        &mut self,
        checker: &mut Checker,
        id: NodeId,
        request_id: u64,
        index: Option<LogIndex>,
        time_ms: u64,
    ) {
        let Some(floor) = self.read_floors.remove(&request_id) else {
            return;
        };
        if let Some(index) = index {
            if index < floor {
                let detail = format!(
                    "node {id} gave read index {index} although {floor} was committed when the read was asked"
                );
                checker.flag("read-index-fresh", time_ms, detail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, EntryPayload};

    fn entries(terms: &[u64]) -> alloc::vec::Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(k, &t)| Entry {
                term: Term(t),
                index: LogIndex(k as u64 + 1),
                payload: EntryPayload::Noop,
            })
            .collect()
    }

    fn disk(id: u64, log: &[Entry]) -> Disk<'_> {
        Disk { id: NodeId(id), term: Term(1), voted_for: None, entries: log, snapshot: None }
    }

    #[test]
    fn flags_a_vote_sent_before_it_is_on_disk() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let on_disk = Disk { voted_for: None, term: Term(2), ..disk(1, &[]) };
        rules.vote_sent(&mut checker, &on_disk, NodeId(2), Term(2), 1);
        assert_eq!(checker.violations()[0].property, "vote-durable");
    }

    #[test]
    fn flags_two_votes_in_one_term_across_a_restart() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let first = Disk { voted_for: Some(NodeId(2)), term: Term(2), ..disk(1, &[]) };
        rules.vote_sent(&mut checker, &first, NodeId(2), Term(2), 1);
        rules.started(NodeId(1));
        let second = Disk { voted_for: Some(NodeId(3)), term: Term(2), ..disk(1, &[]) };
        rules.vote_sent(&mut checker, &second, NodeId(3), Term(2), 2);
        assert_eq!(checker.violations().last().map(|v| v.property), Some("one-vote-per-term"));
    }

    #[test]
    fn flags_a_vote_that_changes_within_a_term() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let id = NodeId(1);
        for voted in [Some(NodeId(2)), Some(NodeId(3))] {
            rules.observe(&mut checker, id, Term(4), voted, None, LogIndex(0), 1);
        }
        assert_eq!(checker.violations()[0].property, "one-vote-per-term");
    }

    #[test]
    fn flags_match_index_going_down_and_old_term_commits() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let log = entries(&[1, 1, 2]);
        let disks = [disk(1, &log), disk(2, &log), disk(3, &log[..1])];
        let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
        let mut up = [(NodeId(2), LogIndex(2))].into_iter();
        let first = rules.observe(
            &mut checker,
            NodeId(1),
            Term(3),
            None,
            Some((&membership, &mut up)),
            LogIndex(1),
            1,
        );
        assert!(first.became_leader && checker.violations().is_empty());
        let mut down = [(NodeId(2), LogIndex(1))].into_iter();
        let second = rules.observe(
            &mut checker,
            NodeId(1),
            Term(3),
            None,
            Some((&membership, &mut down)),
            LogIndex(2),
            2,
        );
        assert_eq!(second, Observed { became_leader: false, commit_advanced: true });
        // Index 2 holds an entry of term 1, committed in term 3: by counting replicas.
        rules.leader_committed(
            &mut checker,
            NodeId(1),
            Term(3),
            &membership,
            LogIndex(2),
            Some(Term(1)),
            &disks,
            2,
        );
        let flagged: alloc::vec::Vec<_> = checker.violations().iter().map(|v| v.property).collect();
        assert!(flagged.contains(&"match-monotonic"), "{flagged:?}");
        assert!(flagged.contains(&"commit-own-term"), "{flagged:?}");
    }

    #[test]
    fn flags_a_joint_commit_without_the_outgoing_majority() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let long = entries(&[1, 2]);
        let short = entries(&[1]);
        let disks = [disk(1, &long), disk(2, &long), disk(3, &short), disk(4, &short), disk(5, &short)];
        let membership = Membership {
            voters: [NodeId(1), NodeId(2)].into_iter().collect(),
            voters_outgoing: [1, 2, 3, 4, 5].into_iter().map(NodeId).collect(),
            learners: BTreeSet::new(),
            promoting: BTreeSet::new(),
        };
        rules.leader_committed(
            &mut checker,
            NodeId(1),
            Term(2),
            &membership,
            LogIndex(2),
            Some(Term(2)),
            &disks,
            2,
        );
        assert_eq!(checker.violations()[0].property, "commit-quorum");
    }

    #[test]
    fn flags_a_leader_that_probes_the_rejected_index_again() {
        use crate::progress::ProgressState;
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        let view = |state, next, matched| ProbeView {
            state,
            next_index: LogIndex(next),
            match_index: LogIndex(matched),
        };
        let probing_11 = view(ProgressState::Probe, 11, 3);
        // Moved back below 10, or on to a snapshot: fine.
        for after in [view(ProgressState::Probe, 8, 3), view(ProgressState::Snapshot, 11, 3)] {
            rules.probe_rejected(
                &mut checker,
                NodeId(1),
                NodeId(2),
                LogIndex(10),
                probing_11,
                after,
                LogIndex(10),
                1,
            );
        }
        // A stale rejection (of an earlier probe) changes nothing and is not judged.
        rules.probe_rejected(
            &mut checker,
            NodeId(1),
            NodeId(2),
            LogIndex(12),
            probing_11,
            probing_11,
            LogIndex(10),
            1,
        );
        // 10 is compacted: the next send is a snapshot whatever the next index says.
        rules.probe_rejected(
            &mut checker,
            NodeId(1),
            NodeId(2),
            LogIndex(10),
            probing_11,
            probing_11,
            LogIndex(11),
            1,
        );
        assert!(checker.violations().is_empty(), "{:?}", checker.violations());
        // The compaction point itself, probed again: the livelock of issue 10, defect 4.
        rules.probe_rejected(
            &mut checker,
            NodeId(1),
            NodeId(2),
            LogIndex(10),
            probing_11,
            probing_11,
            LogIndex(10),
            2,
        );
        assert_eq!(checker.violations()[0].property, "probe-advances");
    }

    #[test]
    fn flags_a_stale_read_index_and_a_rollback() {
        let (mut rules, mut checker) = (Rules::default(), Checker::new());
        rules.read_asked(7, LogIndex(5));
        rules.read_answered(&mut checker, NodeId(1), 7, Some(LogIndex(4)), 1);
        rules.snapshot_installed(&mut checker, NodeId(1), LogIndex(3), LogIndex(9), 2);
        let flagged: alloc::vec::Vec<_> = checker.violations().iter().map(|v| v.property).collect();
        assert_eq!(flagged, ["read-index-fresh", "snapshot-rollback"]);
    }
}
