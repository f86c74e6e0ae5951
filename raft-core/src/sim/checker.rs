//! Raft's safety properties (§5.2–5.4, Figure 3), checked as a run goes.
//!
//! - **Election safety**: at most one leader per term.
//! - **Log matching**: two logs with an entry of the same index and term are identical up to it.
//!   Checked with a hash chain: each entry's chain hash covers every entry before it, so two
//!   nodes agree on a prefix exactly when they agree on the chain hash at its end (with a
//!   64-bit hash, up to a collision).
//! - **Leader completeness**: a leader holds every entry committed before its term.
//! - **State-machine safety**: no two nodes apply different entries at one index.
//! - **Commit monotonicity**: a node's commit index never goes down while it runs.

use crate::sim::hash::{combine, stable_hash, trace_combine};
use crate::types::{Entry, LogIndex, NodeId, Term};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which property: `election-safety`, `log-matching`, `leader-completeness`,
    /// `state-machine-safety`, `commit-monotonic`, `applied-order` or `restore`.
    pub property: &'static str,
    /// Simulated time when it was seen.
    pub time_ms: u64,
    /// What exactly was seen.
    pub detail: String,
}

/// The hash of one entry's content (term and payload, not its position).
pub fn entry_hash(entry: &Entry) -> u64 {
    stable_hash(&(entry.term, &entry.payload))
}

/// The checker's record of the whole cluster.
#[derive(Clone, Debug, Default)]
pub struct Checker {
    /// Term → the node that led it.
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) → chain hash, first seen on any node.
    chains: Chains,
    /// committed_terms[i - 1]: term of the entry committed at index i.
    committed_terms: Vec<Term>,
    /// commit_seen_in[i - 1]: the lowest term of a node seen knowing index i committed. A node
    /// learns of a commit from a leader of its own term or an earlier one, so this is never below
    /// the term in which the entry really was committed (see `check_leader_completeness`).
    commit_seen_in: Vec<Term>,
    /// Term → the highest index of an entry of that term seen stored by a majority of that
    /// term's leader's configuration, each member having acknowledged it (durably) in that term:
    /// committed in that term (§5.4.2) whether or not anyone learned it. `commit_seen_in` only
    /// sees commits someone learned; this sees the ones whose leader died or was cut off first.
    stored_by_quorum: BTreeMap<Term, LogIndex>,
    /// applied[i - 1]: chain hash of the state machine after applying index i (it covers every
    /// entry up to i, so a snapshot can be checked by its chain hash alone).
    applied: Vec<u64>,
    violations: Vec<Violation>,
    /// Turns the log-matching check off: for tests that prove other checks catch bugs.
    log_matching_disabled: bool,
    /// Checks whose violations are not recorded (see [`Checker::ignore`]).
    ignored: &'static [&'static str],
}

/// Every check the simulator makes during a run (the checker's properties and the per-step
/// rules), by the name a [`Violation`] carries. `budget` is not one: a run over its budget is
/// always stopped.
pub const CHECKS: &[&str] = &[
    "ack-durable",
    "applied-order",
    "campaigning-majority",
    "commit-monotonic",
    "commit-own-term",
    "commit-quorum",
    "configuration-follows-log",
    "election-safety",
    "leader-completeness",
    "liveness",
    "log-matching",
    "match-monotonic",
    "membership-own-term",
    "one-vote-per-term",
    "probe-advances",
    "read-index-fresh",
    "restore",
    "snapshot-rollback",
    "state-machine-safety",
    "vote-durable",
];

/// The chain hash of every (index, term) seen, first seen on any node. Almost every index only
/// ever holds one term, so the first term seen at each index sits in a vector addressed by the
/// index (a lookup per appended entry on every node), and the rare others in a map.
#[derive(Clone, Debug, Default)]
struct Chains {
    /// `first[i - 1]`: the first (term, chain hash) seen at index i.
    first: Vec<(Term, u64)>,
    others: BTreeMap<(LogIndex, Term), u64>,
}

impl Chains {
    fn get(&self, index: LogIndex, term: Term) -> Option<u64> {
        match self.slot(index).and_then(|slot| self.first.get(slot)) {
            Some(&(first_term, chain)) if first_term == term => Some(chain),
            _ => self.others.get(&(index, term)).copied(),
        }
    }

    /// Records a chain hash for an (index, term) not recorded yet.
    fn insert(&mut self, index: LogIndex, term: Term, chain: u64) {
        match self.slot(index) {
            // Entries are appended in index order, so the next index extends the vector; an
            // index beyond it (a log with a gap, which the checker flags anyway) or a second
            // term at a known index goes to the map.
            Some(slot) if slot == self.first.len() => self.first.push((term, chain)),
            _ => {
                self.others.insert((index, term), chain);
            }
        }
    }

    fn slot(&self, index: LogIndex) -> Option<usize> {
        usize::try_from(index.0.checked_sub(1)?).ok()
    }
}

/// The checker's per-node record.
#[derive(Clone, Debug, Default)]
pub struct NodeTrack {
    /// The log's chain hash at `chain_base` (a snapshot's index, or 0).
    chain_base_hash: u64,
    chain_base: LogIndex,
    /// chain[k]: chain hash of the node's log at index `chain_base + 1 + k`.
    chain: Vec<u64>,
    /// Last index the node applied (in this incarnation).
    applied: LogIndex,
    /// Chain hash of what the node's state machine applied.
    applied_chain: u64,
    /// Commit index last seen in this incarnation.
    commit: LogIndex,
    /// The term the node led when last seen, if it led. A term, not a flag, so that a leader is
    /// checked (§5.4) in every term it is seen leading: a driver that looks less often than
    /// after every step or tick could see it lead one term and, deposed and re-elected between
    /// two looks, the next. (The simulator and the `protocol` fuzz target look after every
    /// message and tick, and no single one makes a leader lead again, so this is hardening.)
    led_term: Option<Term>,
}

impl NodeTrack {
    /// The last index the node applied in this incarnation (as the checker saw it).
    pub fn applied(&self) -> LogIndex {
        self.applied
    }
}

impl Checker {
    /// A checker that has seen nothing.
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Every violation seen so far, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Highest index known committed anywhere.
    pub fn committed_index(&self) -> LogIndex {
        LogIndex(self.committed_terms.len() as u64)
    }

    pub(crate) fn flag(&mut self, property: &'static str, time_ms: u64, detail: String) {
        if self.ignored.contains(&property) {
            return;
        }
        self.violations.push(Violation { property, time_ms, detail });
    }

    /// Stops recording violations of `checks` (names from [`CHECKS`]): to show that another
    /// checker, such as the linearizability check of the clients' history, catches a planted
    /// bug on its own (issue 19). The run then goes on past what those checks would flag.
    pub fn ignore(&mut self, checks: &'static [&'static str]) {
        self.ignored = checks;
    }

    /// A node (re)starts with `entries` in storage after `base` (its snapshot index).
    pub fn node_started(
        &mut self,
        track: &mut NodeTrack,
        snapshot: Option<(LogIndex, Term, u64)>,
        entries: &[Entry],
        time_ms: u64,
    ) {
        track.chain.clear();
        track.applied = LogIndex(0);
        track.applied_chain = 0;
        track.chain_base = LogIndex(0);
        track.chain_base_hash = 0;
        if let Some((index, term, state_chain)) = snapshot {
            self.snapshot_restored(NodeId(0), track, index, term, state_chain, time_ms);
        }
        let entries: Vec<Entry> = entries.iter().filter(|e| e.index > track.chain_base).cloned().collect();
        let entries = &entries[..];
        // The restored commit index may be below the one before the crash (it is persisted
        // lazily); count from zero so the restored committed prefix is checked again.
        track.commit = LogIndex(0);
        track.led_term = None;
        self.entries_appended(track, entries, time_ms);
    }

    /// A node hands `entries` to storage; they replace its log from the first one's index.
    pub fn entries_appended(&mut self, track: &mut NodeTrack, entries: &[Entry], time_ms: u64) {
        let Some(first) = entries.first() else {
            return;
        };
        if first.index <= track.chain_base {
            self.flag("log-matching", time_ms, format!("entries from {} overwrite a snapshot", first.index));
            return;
        }
        let keep = (first.index.0 - 1 - track.chain_base.0) as usize;
        if keep > track.chain.len() {
            self.flag(
                "log-matching",
                time_ms,
                format!("entries from {} leave a gap in the log", first.index),
            );
            return;
        }
        track.chain.truncate(keep);
        for entry in entries {
            let previous = track.chain.last().copied().unwrap_or(track.chain_base_hash);
            // The log chains are the checker's own, so they take the faster hasher.
            let chain = trace_combine(previous, &(entry.term, &entry.payload));
            track.chain.push(chain);
            if self.log_matching_disabled {
                continue;
            }
            match self.chains.get(entry.index, entry.term) {
                Some(known) if known != chain => {
                    let detail = format!(
                        "two logs hold index {} term {} but differ before it",
                        entry.index, entry.term
                    );
                    self.flag("log-matching", time_ms, detail);
                }
                Some(_) => {}
                None => {
                    self.chains.insert(entry.index, entry.term, chain);
                }
            }
        }
    }

    /// A node applies `entry` to its state machine.
    pub fn entry_applied(&mut self, id: NodeId, track: &mut NodeTrack, entry: &Entry, time_ms: u64) {
        self.entry_applied_hashed(id, track, entry, entry_hash(entry), time_ms);
    }

    /// [`Checker::entry_applied`] for a caller that already has the entry's [`entry_hash`]
    /// (the simulator hashes each applied entry once, for the checker and the state machine).
    pub fn entry_applied_hashed(
        &mut self,
        id: NodeId,
        track: &mut NodeTrack,
        entry: &Entry,
        entry_hash: u64,
        time_ms: u64,
    ) {
        if entry.index != track.applied.next() {
            let detail = format!("node {id} applied {} after {}", entry.index, track.applied);
            self.flag("applied-order", time_ms, detail);
        }
        track.applied = entry.index;
        track.applied_chain = combine(track.applied_chain, &entry_hash);
        let hash = track.applied_chain;
        let slot = (entry.index.0 - 1) as usize;
        if slot < self.applied.len() {
            if self.applied[slot] != hash {
                let detail = format!("node {id} applied a different entry at index {}", entry.index);
                self.flag("state-machine-safety", time_ms, detail);
            }
        } else if slot == self.applied.len() {
            self.applied.push(hash);
        } else {
            let detail =
                format!("node {id} applied {} before anyone applied {}", entry.index, self.applied.len() + 1);
            self.flag("applied-order", time_ms, detail);
        }
    }

    /// Looks at a running node after something happened to it. `term_at` reads its log.
    #[allow(clippy::too_many_arguments)]
    pub fn observe_node(
        &mut self,
        id: NodeId,
        track: &mut NodeTrack,
        is_leader: bool,
        term: Term,
        commit: LogIndex,
        term_at: impl Fn(LogIndex) -> Option<Term>,
        snapshot_index: LogIndex,
        time_ms: u64,
    ) {
        if commit < track.commit {
            let detail = format!("node {id} commit index went from {} to {commit}", track.commit);
            self.flag("commit-monotonic", time_ms, detail);
        }
        // Record what this node newly learned is committed, and check it agrees with the rest.
        let mut index = track.commit.next().max(snapshot_index.next());
        while index <= commit {
            let Some(entry_term) = term_at(index) else {
                break;
            };
            let slot = (index.0 - 1) as usize;
            if slot < self.committed_terms.len() {
                self.commit_seen_in[slot] = self.commit_seen_in[slot].min(term);
                if self.committed_terms[slot] != entry_term {
                    let detail = format!(
                        "node {id} committed term {entry_term} at index {index}, others term {}",
                        self.committed_terms[slot]
                    );
                    self.flag("state-machine-safety", time_ms, detail);
                }
            } else if slot == self.committed_terms.len() {
                self.committed_terms.push(entry_term);
                self.commit_seen_in.push(term);
            }
            index = index.next();
        }
        track.commit = track.commit.max(commit);
        if is_leader {
            match self.leaders.get(&term) {
                Some(&other) if other != id => {
                    let detail = format!("nodes {other} and {id} both lead term {term}");
                    self.flag("election-safety", time_ms, detail);
                }
                Some(_) => {}
                None => {
                    self.leaders.insert(term, id);
                }
            }
            if track.led_term != Some(term) {
                self.check_leader_completeness(id, term, &term_at, snapshot_index, time_ms);
            }
        }
        track.led_term = is_leader.then_some(term);
    }

    /// Leader completeness (§5.4, Figure 3): an entry committed in some term is in the log of
    /// every leader of a *later* term. A leader of an earlier term need not hold it: a server
    /// that granted a vote in term 4 can go on to win term 5 and commit there while the term-4
    /// candidate, not yet told, counts that vote and leads term 4 with a shorter log. Such a
    /// stale leader is harmless (its AppendEntries are refused by term), and flagging it was a
    /// false alarm the `protocol` fuzz target found (fuzz/regressions/protocol).
    ///
    /// The check uses the lowest term in which any node was seen knowing an index committed,
    /// which is never below the term it was committed in, so it never flags a correct run; with
    /// every node observed after every step, a leader elected once its term's predecessors
    /// committed an entry is checked against it. A commit that nobody learned in its own term
    /// is caught through [`Checker::stored_by_quorum`] instead.
    fn check_leader_completeness(
        &mut self,
        id: NodeId,
        term: Term,
        term_at: &impl Fn(LogIndex) -> Option<Term>,
        snapshot_index: LogIndex,
        time_ms: u64,
    ) {
        // The highest index seen committed in a term before this leader's. Commits only grow
        // with the term, so this usually is the last committed index; searching down skips
        // only what a later term committed.
        if let Some(slot) = self.commit_seen_in.iter().rposition(|&seen| seen < term) {
            let committed = LogIndex(slot as u64 + 1);
            let expected = self.committed_terms[slot];
            if self.check_leader_holds(id, term, term_at, committed, expected, snapshot_index, time_ms) {
                return;
            }
        }
        // A commit nobody learned in its own term (its leader crashed or was cut off before the
        // answers came) is first seen committed in a later term, so the search above exempts a
        // leader of a term in between; the majority that stored it says when it committed.
        // Only the latest earlier term matters: its leader held every earlier commit.
        if let Some((&stored_term, &stored)) = self.stored_by_quorum.range(..term).next_back() {
            self.check_leader_holds(id, term, term_at, stored, stored_term, snapshot_index, time_ms);
        }
    }

    /// Flags leader `id` of `term` if its log lacks the committed entry (`committed`,
    /// `expected` term). Same index and term at that entry means, by log matching, the whole
    /// prefix; a snapshot holds only committed entries. Returns whether it flagged.
    #[allow(clippy::too_many_arguments)]
    fn check_leader_holds(
        &mut self,
        id: NodeId,
        term: Term,
        term_at: &impl Fn(LogIndex) -> Option<Term>,
        committed: LogIndex,
        expected: Term,
        snapshot_index: LogIndex,
        time_ms: u64,
    ) -> bool {
        if committed <= snapshot_index || term_at(committed) == Some(expected) {
            return false;
        }
        let detail = format!("node {id} leads term {term} without committed entry {committed}");
        self.flag("leader-completeness", time_ms, detail);
        true
    }

    /// A majority of the configuration of `term`'s leader acknowledged, in `term`, entries up to
    /// `index`, whose entry is of `term`, from disks that hold them: the entry is committed in
    /// `term` (§5.4.2, §5.4.3) even if the leader never learned it (it crashed, or was cut off,
    /// before the answers came), so every leader of a later term must hold it.
    pub fn stored_by_quorum(&mut self, index: LogIndex, term: Term) {
        let known = self.stored_by_quorum.entry(term).or_insert(index);
        *known = (*known).max(index);
    }

    /// A node's state machine was replaced by a snapshot covering (`index`, `term`) whose
    /// state has chain hash `state_chain`; its log now starts after `index`.
    pub fn snapshot_restored(
        &mut self,
        id: NodeId,
        track: &mut NodeTrack,
        index: LogIndex,
        term: Term,
        state_chain: u64,
        time_ms: u64,
    ) {
        track.applied = index;
        track.applied_chain = state_chain;
        let slot = (index.0 - 1) as usize;
        match self.applied.get(slot) {
            Some(&known) if known != state_chain => {
                let detail = format!("node {id} holds a snapshot at {index} unlike the applied state");
                self.flag("state-machine-safety", time_ms, detail);
            }
            _ => {}
        }
        track.chain.clear();
        track.chain_base = index;
        // Log matching continues from the snapshot: its last entry's chain hash is known from
        // whoever appended it.
        track.chain_base_hash = self.chains.get(index, term).unwrap_or(0);
    }

    /// Reports a node that failed to restart from its own storage.
    pub fn restore_failed(&mut self, id: NodeId, time_ms: u64, why: String) {
        self.flag("restore", time_ms, format!("node {id} cannot restart: {why}"));
    }

    /// Disables the log-matching check (tests use this to show that the other checks catch a
    /// bug on their own).
    pub fn disable_log_matching(&mut self) {
        self.log_matching_disabled = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::EntryPayload;
    use bytes::Bytes;

    fn entry(index: u64, term: u64, data: &'static [u8]) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: EntryPayload::Command(Bytes::from_static(data)),
        }
    }

    #[test]
    fn flags_two_leaders_in_one_term() {
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        checker.observe_node(NodeId(1), &mut a, true, Term(3), LogIndex(0), |_| None, LogIndex(0), 1);
        checker.observe_node(NodeId(2), &mut b, true, Term(3), LogIndex(0), |_| None, LogIndex(0), 2);
        assert_eq!(checker.violations()[0].property, "election-safety");
    }

    #[test]
    fn an_ignored_check_is_not_recorded_and_the_others_still_are() {
        let mut checker = Checker::new();
        checker.ignore(&["election-safety"]);
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        checker.observe_node(NodeId(1), &mut a, true, Term(3), LogIndex(0), |_| None, LogIndex(0), 1);
        checker.observe_node(NodeId(2), &mut b, true, Term(3), LogIndex(0), |_| None, LogIndex(0), 2);
        assert!(checker.violations().is_empty());
        checker.flag("budget", 3, String::from("more than 1 step"));
        assert_eq!(checker.violations()[0].property, "budget");
        assert!(CHECKS.contains(&"election-safety") && !CHECKS.contains(&"budget"));
    }

    #[test]
    fn flags_logs_that_differ_before_a_shared_entry() {
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        checker.entries_appended(&mut a, &[entry(1, 1, b"x"), entry(2, 2, b"y")], 1);
        checker.entries_appended(&mut b, &[entry(1, 1, b"z"), entry(2, 2, b"y")], 2);
        assert_eq!(checker.violations()[0].property, "log-matching");
    }

    #[test]
    fn chains_keep_every_term_of_an_index() {
        let mut chains = Chains::default();
        chains.insert(LogIndex(1), Term(1), 10);
        chains.insert(LogIndex(3), Term(1), 30); // beyond the vector
        chains.insert(LogIndex(2), Term(1), 20);
        chains.insert(LogIndex(2), Term(2), 21); // a second term
        assert_eq!(chains.get(LogIndex(1), Term(1)), Some(10));
        assert_eq!(chains.get(LogIndex(2), Term(1)), Some(20));
        assert_eq!(chains.get(LogIndex(2), Term(2)), Some(21));
        assert_eq!(chains.get(LogIndex(3), Term(1)), Some(30));
        assert_eq!(chains.get(LogIndex(3), Term(2)), None);
        assert_eq!(chains.get(LogIndex(0), Term(0)), None);
        assert_eq!(chains.get(LogIndex(9), Term(1)), None);
    }

    #[test]
    fn flags_different_entries_applied_at_one_index() {
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        checker.entry_applied(NodeId(1), &mut a, &entry(1, 1, b"x"), 1);
        checker.entry_applied(NodeId(2), &mut b, &entry(1, 1, b"y"), 2);
        assert_eq!(checker.violations()[0].property, "state-machine-safety");
    }

    #[test]
    fn flags_a_leader_missing_a_committed_entry() {
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        let terms = |i: LogIndex| (i.0 <= 2).then_some(Term(1));
        checker.observe_node(NodeId(1), &mut a, false, Term(1), LogIndex(2), terms, LogIndex(0), 1);
        let short = |i: LogIndex| (i.0 <= 1).then_some(Term(1));
        checker.observe_node(NodeId(2), &mut b, true, Term(2), LogIndex(1), short, LogIndex(0), 2);
        assert_eq!(checker.violations()[0].property, "leader-completeness");
    }

    #[test]
    fn a_stale_terms_leader_may_lack_what_a_later_term_committed() {
        // Node 2 committed index 2 in term 5; node 1 then leads term 4 (a vote from before node
        // 2's own election) without it: correct Raft, not a violation.
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        let long = |i: LogIndex| [Term(1), Term(5)].get(i.0.wrapping_sub(1) as usize).copied();
        checker.observe_node(NodeId(2), &mut a, true, Term(5), LogIndex(2), long, LogIndex(0), 1);
        let short = |i: LogIndex| (i.0 == 1).then_some(Term(1));
        checker.observe_node(NodeId(1), &mut b, true, Term(4), LogIndex(1), short, LogIndex(0), 2);
        assert!(checker.violations().is_empty(), "{:?}", checker.violations());
        // A leader of term 6 without it is flagged, and so is one of term 4 without index 1,
        // committed in term 1.
        let mut c = NodeTrack::default();
        checker.observe_node(NodeId(3), &mut c, true, Term(6), LogIndex(1), short, LogIndex(0), 3);
        assert_eq!(checker.violations()[0].property, "leader-completeness");
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        checker.observe_node(NodeId(2), &mut a, true, Term(5), LogIndex(2), long, LogIndex(0), 1);
        checker.observe_node(NodeId(1), &mut b, false, Term(1), LogIndex(1), short, LogIndex(0), 2);
        let empty = |_: LogIndex| None;
        let mut c = NodeTrack::default();
        checker.observe_node(NodeId(3), &mut c, true, Term(4), LogIndex(0), empty, LogIndex(0), 3);
        assert_eq!(checker.violations()[0].property, "leader-completeness");
    }

    #[test]
    fn a_commit_learned_only_in_a_later_term_binds_the_leaders_of_the_terms_between() {
        // Index 2 (term 3) reached a majority in term 3, but its leader died before the answers
        // came; node 5 then won term 5 and committed it. A late term-4 leader (node 4) without
        // it breaks leader completeness: it was committed in term 3.
        let long = |i: LogIndex| [Term(1), Term(3), Term(5)].get(i.0.wrapping_sub(1) as usize).copied();
        let short = |i: LogIndex| (i.0 == 1).then_some(Term(1));
        let run = |stored_in_term_3: bool| {
            let mut checker = Checker::new();
            let (mut a, mut b, mut c) = (NodeTrack::default(), NodeTrack::default(), NodeTrack::default());
            checker.observe_node(NodeId(1), &mut a, false, Term(1), LogIndex(1), short, LogIndex(0), 1);
            if stored_in_term_3 {
                checker.stored_by_quorum(LogIndex(2), Term(3));
            }
            checker.observe_node(NodeId(5), &mut b, true, Term(5), LogIndex(3), long, LogIndex(0), 2);
            checker.observe_node(NodeId(4), &mut c, true, Term(4), LogIndex(1), short, LogIndex(0), 3);
            checker.violations().to_vec()
        };
        let flagged = run(true);
        assert_eq!(flagged.len(), 1, "{flagged:?}");
        assert_eq!(flagged[0].property, "leader-completeness");
        assert!(flagged[0].detail.contains("without committed entry 2"), "{flagged:?}");
        // From commit indexes alone the run looks like a stale term-4 leader elected before
        // index 2 was committed (in term 5), which is correct Raft: not flagged.
        assert!(run(false).is_empty());
    }

    #[test]
    fn a_quorum_stored_entry_binds_only_later_terms() {
        // Index 2 of term 5 stored by a majority in term 5: a term-4 leader need not hold it,
        // a term-6 leader must; a term-6 leader holding it passes.
        let mut checker = Checker::new();
        checker.stored_by_quorum(LogIndex(2), Term(5));
        let short = |i: LogIndex| (i.0 == 1).then_some(Term(1));
        let long = |i: LogIndex| [Term(1), Term(5)].get(i.0.wrapping_sub(1) as usize).copied();
        let (mut a, mut b, mut c) = (NodeTrack::default(), NodeTrack::default(), NodeTrack::default());
        checker.observe_node(NodeId(1), &mut a, true, Term(4), LogIndex(0), short, LogIndex(0), 1);
        checker.observe_node(NodeId(2), &mut b, true, Term(6), LogIndex(0), long, LogIndex(0), 2);
        assert!(checker.violations().is_empty(), "{:?}", checker.violations());
        checker.observe_node(NodeId(3), &mut c, true, Term(7), LogIndex(0), short, LogIndex(0), 3);
        assert_eq!(checker.violations()[0].property, "leader-completeness");
        // Compacted past it: the snapshot holds only committed entries.
        let mut checker = Checker::new();
        checker.stored_by_quorum(LogIndex(2), Term(5));
        let mut d = NodeTrack::default();
        checker.observe_node(NodeId(4), &mut d, true, Term(6), LogIndex(2), |_| None, LogIndex(2), 4);
        assert!(checker.violations().is_empty(), "{:?}", checker.violations());
    }

    #[test]
    fn checks_a_leader_seen_leading_two_terms_in_a_row() {
        // Node 1 led term 3, and between two looks it was deposed and won term 5 with a log
        // lacking index 2, committed in term 4: the term-5 leader is checked too (on main, only
        // a node not leading at the previous look was).
        let mut checker = Checker::new();
        let (mut a, mut b) = (NodeTrack::default(), NodeTrack::default());
        let short = |i: LogIndex| (i.0 == 1).then_some(Term(1));
        let long = |i: LogIndex| [Term(1), Term(4)].get(i.0.wrapping_sub(1) as usize).copied();
        checker.observe_node(NodeId(1), &mut a, true, Term(3), LogIndex(1), short, LogIndex(0), 1);
        checker.observe_node(NodeId(2), &mut b, true, Term(4), LogIndex(2), long, LogIndex(0), 2);
        assert!(checker.violations().is_empty(), "{:?}", checker.violations());
        checker.observe_node(NodeId(1), &mut a, true, Term(5), LogIndex(1), short, LogIndex(0), 3);
        assert_eq!(checker.violations()[0].property, "leader-completeness");
    }

    #[test]
    fn flags_a_commit_index_going_back() {
        let mut checker = Checker::new();
        let mut a = NodeTrack::default();
        let terms = |i: LogIndex| (i.0 <= 3).then_some(Term(1));
        checker.observe_node(NodeId(1), &mut a, false, Term(1), LogIndex(3), terms, LogIndex(0), 1);
        checker.observe_node(NodeId(1), &mut a, false, Term(1), LogIndex(2), terms, LogIndex(0), 2);
        assert_eq!(checker.violations()[0].property, "commit-monotonic");
    }
}
