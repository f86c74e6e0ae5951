//! Majorities: which index a quorum has reached, and how an election is going.
//!
//! Pure functions over a [`Membership`]. During a joint change (thesis §4.3) every decision
//! needs a majority of the incoming *and* of the outgoing voters.

use crate::types::{LogIndex, Membership, NodeId};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

/// The state of a vote count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority refused, so the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

fn majority_committed(voters: &BTreeSet<NodeId>, match_of: &impl Fn(NodeId) -> LogIndex) -> LogIndex {
    if voters.is_empty() {
        // An empty half (the outgoing set outside a joint change) agrees with anything.
        return LogIndex(u64::MAX);
    }
    // The leader asks this after every acknowledgement: keep small clusters off the heap.
    const STACK_VOTERS_MAX: usize = 16;
    let count = voters.len();
    let mut stack = [LogIndex(0); STACK_VOTERS_MAX];
    let mut heap = Vec::new();
    let matched: &mut [LogIndex] = if count <= STACK_VOTERS_MAX {
        for (slot, &id) in stack.iter_mut().zip(voters) {
            *slot = match_of(id);
        }
        &mut stack[..count]
    } else {
        heap.extend(voters.iter().map(|&id| match_of(id)));
        &mut heap
    };
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[count / 2]
}

/// The highest index stored on a majority of voters (of both halves when joint).
pub fn committed_index(membership: &Membership, match_of: impl Fn(NodeId) -> LogIndex) -> LogIndex {
    let incoming = majority_committed(&membership.voters, &match_of);
    let outgoing = majority_committed(&membership.voters_outgoing, &match_of);
    incoming.min(outgoing)
}

fn majority_vote(voters: &BTreeSet<NodeId>, vote_of: &impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut granted, mut missing) = (0, 0);
    for &id in voters {
        match vote_of(id) {
            Some(true) => granted += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let quorum = voters.len() / 2 + 1;
    if granted >= quorum {
        VoteResult::Won
    } else if granted + missing >= quorum {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// Tallies an election: `vote_of(id)` is `Some(granted)` once `id` answered.
pub fn vote_result(membership: &Membership, vote_of: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
    // A configuration with no voters elects no one and confirms nothing. The engine never writes
    // one (`NoVotersLeft`), but a peer's entry or a damaged store could carry one, and an empty
    // majority would otherwise be "won" by a lone candidate that can never commit (an empty
    // *outgoing* half, outside a joint change, must still agree with anything).
    if membership.voters.is_empty() {
        return VoteResult::Lost;
    }
    let incoming = majority_vote(&membership.voters, &vote_of);
    let outgoing = majority_vote(&membership.voters_outgoing, &vote_of);
    match (incoming, outgoing) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// Whether the nodes for which `active(id)` holds form a majority (of both halves when joint).
pub fn has_quorum(membership: &Membership, active: impl Fn(NodeId) -> bool) -> bool {
    vote_result(membership, |id| Some(active(id))) == VoteResult::Won
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> BTreeSet<NodeId> {
        list.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn committed_is_the_median_of_five() {
        let membership = Membership::with_voters(ids(&[1, 2, 3, 4, 5]));
        let matched = [0, 9, 7, 5, 3, 1];
        assert_eq!(committed_index(&membership, |id| LogIndex(matched[id.0 as usize])), LogIndex(5));
    }

    #[test]
    fn joint_needs_both_majorities() {
        let membership = Membership {
            voters: ids(&[1, 2, 3]),
            voters_outgoing: ids(&[3, 4, 5]),
            learners: BTreeSet::new(),
            promoting: BTreeSet::new(),
        };
        let matched = [0, 10, 10, 2, 2, 2];
        assert_eq!(committed_index(&membership, |id| LogIndex(matched[id.0 as usize])), LogIndex(2));
        let granted = [false, true, true, false, false, false];
        assert_eq!(vote_result(&membership, |id| Some(granted[id.0 as usize])), VoteResult::Lost);
    }

    #[test]
    fn vote_pending_until_decided() {
        let membership = Membership::with_voters(ids(&[1, 2, 3]));
        assert_eq!(vote_result(&membership, |id| (id.0 == 1).then_some(true)), VoteResult::Pending);
        assert_eq!(vote_result(&membership, |id| (id.0 <= 2).then_some(true)), VoteResult::Won);
        assert_eq!(vote_result(&membership, |id| (id.0 != 1).then_some(false)), VoteResult::Lost);
    }
}
