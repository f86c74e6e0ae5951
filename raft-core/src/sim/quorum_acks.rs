//! When an entry is committed, seen from the acknowledgements rather than from commit indexes.
//!
//! An entry of term T that a majority of T's leader's configuration has stored, each member
//! having acknowledged it in term T from its disk, is committed in T (§5.4.2; the proof of
//! §5.4.3 uses only those voters), so every leader of a term after T holds it (Figure 3). The
//! [`crate::sim::Checker`] learns commits from the servers' commit indexes, and a commit nobody
//! learned in its own term (the leader crashed or was cut off before the answers came) shows up
//! only when a later term's leader commits it: from the commit indexes alone, a leader of a term
//! in between that lacks it looks like a correct stale leader. This module counts the answers
//! as they leave the followers and tells the checker ([`crate::sim::Checker::stored_by_quorum`]).
//!
//! It claims a commit only when the core would have made it had the answers arrived: it counts
//! acknowledgements backed by a disk still in the answer's term (a server that moved on before
//! writing may not hold what it acknowledged), the leader only while its own disk is in the term,
//! only entries of the leader's term (§5.4.2, Figure 8), and it asks for a majority of both
//! halves of *every* configuration the leader was seen with in the term (thesis §4.3), so a
//! configuration change in the middle makes it claim less, never more.

use crate::sim::rules::Disk;
use crate::types::{LogIndex, Membership, NodeId, Term};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// How many (term, leader) pairs are remembered; older ones are forgotten, which only makes
/// this claim less (an acknowledgement that arrives later for them is not counted).
pub(crate) const TERMS_REMEMBERED_MAX: usize = 16;

/// One leader's term, as its followers answered it.
#[derive(Clone, Debug, Default)]
struct TermAcks {
    /// Every configuration the leader was seen with in the term.
    configurations: Vec<Membership>,
    /// Server → the highest (index, entry term) it acknowledged in the term, from its disk.
    acked: BTreeMap<NodeId, (LogIndex, Term)>,
}

/// The acknowledgements of recent terms (see the module docs).
#[derive(Clone, Debug, Default)]
pub(crate) struct QuorumAcks {
    terms: BTreeMap<(Term, NodeId), TermAcks>,
}

/// The entry term at `index` on `disk`, if its log holds it (not under its snapshot).
fn entry_term(disk: &Disk<'_>, index: LogIndex) -> Option<Term> {
    let first = disk.entries.first()?;
    let offset = index.0.checked_sub(first.index.0)?;
    disk.entries.get(offset as usize).filter(|e| e.index == index).map(|e| e.term)
}

/// The highest acknowledged (index, entry term) that a majority of `voters` reached, or `None`
/// when no majority answered; an empty half asks nothing (`LogIndex(u64::MAX)`).
fn majority_reached(
    voters: &alloc::collections::BTreeSet<NodeId>,
    acked: &BTreeMap<NodeId, (LogIndex, Term)>,
) -> Option<(LogIndex, Term)> {
    if voters.is_empty() {
        return Some((LogIndex(u64::MAX), Term(0)));
    }
    let mut reached: Vec<(LogIndex, Term)> = voters.iter().filter_map(|id| acked.get(id).copied()).collect();
    reached.sort_unstable_by(|a, b| b.cmp(a));
    // The majority-th highest: held by `voters.len() / 2 + 1` of them.
    reached.get(voters.len() / 2).copied()
}

impl QuorumAcks {
    /// `leader` leads `term` with `membership` in force after a step.
    pub(crate) fn leader_configuration(&mut self, leader: NodeId, term: Term, membership: &Membership) {
        let acks = self.terms.entry((term, leader)).or_default();
        if !acks.configurations.contains(membership) {
            acks.configurations.push(membership.clone());
        }
        while self.terms.len() > TERMS_REMEMBERED_MAX {
            self.terms.pop_first();
        }
    }

    /// Server `disk.id` acknowledged entries up to `match_index` to `leader` in `term`, and
    /// `leader_disk` is the leader's disk now. Returns the entry that a majority of every
    /// configuration of the term now stores, if it is of `term`: committed in `term`.
    pub(crate) fn ack_sent(
        &mut self,
        leader: NodeId,
        term: Term,
        match_index: LogIndex,
        disk: &Disk<'_>,
        leader_disk: Option<&Disk<'_>>,
    ) -> Option<LogIndex> {
        let acks = self.terms.get_mut(&(term, leader))?;
        if disk.term == term {
            if let Some(entry) = entry_term(disk, match_index) {
                let known = acks.acked.entry(disk.id).or_insert((match_index, entry));
                *known = (*known).max((match_index, entry));
            }
        }
        if let Some(own) = leader_disk.filter(|d| d.id == leader && d.term == term) {
            // The leader's own copy: its last entry of its term on disk.
            if let Some(last) = own.entries.iter().rev().find(|e| e.term == term) {
                let known = acks.acked.entry(leader).or_insert((last.index, term));
                *known = (*known).max((last.index, term));
            }
        }
        let mut committed: Option<(LogIndex, Term)> = None;
        for membership in &acks.configurations {
            for half in [&membership.voters, &membership.voters_outgoing] {
                let reached = majority_reached(half, &acks.acked)?;
                committed = Some(committed.map_or(reached, |c| c.min(reached)));
            }
        }
        let (index, entry) = committed?;
        (entry == term && index.0 != u64::MAX).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, EntryPayload};

    fn log(terms: &[u64]) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry {
                term: Term(t),
                index: LogIndex(i as u64 + 1),
                payload: EntryPayload::Noop,
            })
            .collect()
    }

    fn disk(id: u64, term: u64, entries: &[Entry]) -> Disk<'_> {
        Disk { id: NodeId(id), term: Term(term), voted_for: None, entries, snapshot: None }
    }

    #[test]
    fn a_majority_of_acknowledgements_in_the_term_commits_an_entry_of_the_term() {
        let mut acks = QuorumAcks::default();
        let five = Membership::with_voters((1..=5).map(NodeId));
        acks.leader_configuration(NodeId(1), Term(3), &five);
        let entries = log(&[1, 3, 3]);
        let leader = disk(1, 3, &entries);
        // The leader and one follower: two of five.
        assert_eq!(
            acks.ack_sent(NodeId(1), Term(3), LogIndex(3), &disk(2, 3, &entries), Some(&leader)),
            None
        );
        // A follower whose disk moved to term 4 before writing does not count.
        assert_eq!(acks.ack_sent(NodeId(1), Term(3), LogIndex(3), &disk(3, 4, &entries), None), None);
        // A third, without the leader's disk (it crashed): the leader's copy was counted before.
        let got = acks.ack_sent(NodeId(1), Term(3), LogIndex(2), &disk(4, 3, &entries[..2]), None);
        assert_eq!(got, Some(LogIndex(2)));
        // A term nobody was seen leading claims nothing.
        assert_eq!(acks.ack_sent(NodeId(2), Term(3), LogIndex(3), &disk(3, 3, &entries), None), None);
    }

    #[test]
    fn an_entry_of_an_earlier_term_is_not_committed_by_counting() {
        // Figure 8: a majority holding index 2 of term 2 in term 4 commits nothing.
        let mut acks = QuorumAcks::default();
        acks.leader_configuration(NodeId(1), Term(4), &Membership::with_voters((1..=3).map(NodeId)));
        let entries = log(&[1, 2]);
        let leader = disk(1, 4, &entries);
        assert_eq!(
            acks.ack_sent(NodeId(1), Term(4), LogIndex(2), &disk(2, 4, &entries), Some(&leader)),
            None
        );
    }

    #[test]
    fn every_configuration_of_the_term_needs_its_majorities() {
        let mut acks = QuorumAcks::default();
        acks.leader_configuration(NodeId(1), Term(3), &Membership::with_voters((1..=3).map(NodeId)));
        let mut joint = Membership::with_voters((3..=5).map(NodeId));
        joint.voters_outgoing = (1..=3).map(NodeId).collect();
        acks.leader_configuration(NodeId(1), Term(3), &joint);
        let entries = log(&[1, 3]);
        let leader = disk(1, 3, &entries);
        // {1, 2}: a majority of {1,2,3} but none of {3,4,5}.
        assert_eq!(
            acks.ack_sent(NodeId(1), Term(3), LogIndex(2), &disk(2, 3, &entries), Some(&leader)),
            None
        );
        assert_eq!(acks.ack_sent(NodeId(1), Term(3), LogIndex(2), &disk(4, 3, &entries), None), None);
        assert_eq!(
            acks.ack_sent(NodeId(1), Term(3), LogIndex(2), &disk(5, 3, &entries), None),
            Some(LogIndex(2))
        );
    }
}
