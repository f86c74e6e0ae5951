//! The identities and positions Raft talks about: nodes, terms, log indexes, entries.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use bytes::Bytes;
use core::fmt;
use serde::{Deserialize, Serialize};

/// A server's identity. Every member of a cluster has a distinct id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// A Raft term (§5.1): a logical clock that numbers leaderships.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Term(pub u64);

/// A position in the replicated log. The first entry has index 1; index 0 means "before the log".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LogIndex(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Term {
    /// The last term a node may enter. `u64::MAX` is never used: a message carrying it is
    /// refused and a node at `LAST` does not campaign, so `next` never has to saturate (a term
    /// that cannot be followed would end the cluster: nobody could be elected after it).
    pub const LAST: Term = Term(u64::MAX - 1);

    /// The term after this one. Callers only ask below [`Term::LAST`]; at `u64::MAX` it would
    /// saturate, which is why no node enters that term.
    #[must_use]
    pub fn next(self) -> Term {
        debug_assert!(self < Term(u64::MAX), "no node enters term u64::MAX");
        Term(self.0.saturating_add(1))
    }
}

impl LogIndex {
    /// The index after this one.
    #[must_use]
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.saturating_add(1))
    }

    /// The index before this one (index 0 stays 0).
    #[must_use]
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// This index moved forward by `count` positions.
    #[must_use]
    pub fn plus(self, count: u64) -> LogIndex {
        LogIndex(self.0.saturating_add(count))
    }
}

/// Who votes and who only listens (Raft thesis ch. 4).
///
/// `voters` decide elections and commitment. During a joint change (thesis §4.3) `voters_outgoing`
/// holds the old voter set and every decision needs a majority of both sets. `learners` receive
/// the log but never vote; those in `promoting` are to become voters once caught up (thesis
/// §4.2.1), which any leader carries out, so a promotion survives a change of leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the (incoming) configuration.
    pub voters: BTreeSet<NodeId>,
    /// The voters of the outgoing configuration while a joint change is in progress; empty otherwise.
    pub voters_outgoing: BTreeSet<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: BTreeSet<NodeId>,
    /// Learners an `AddVoter` asked to promote: the leader catches each up and then appends the
    /// configuration that makes it a voter, or one that withdraws the promotion if it cannot
    /// keep up. Invariant (kept by the leader; ignored where a peer breaks it): a subset of
    /// `learners`.
    #[serde(default)]
    pub promoting: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration with the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            voters_outgoing: BTreeSet::new(),
            learners: BTreeSet::new(),
            promoting: BTreeSet::new(),
        }
    }

    /// The first learner waiting to be promoted to voter, if any.
    pub fn next_promotion(&self) -> Option<NodeId> {
        self.promoting.iter().copied().find(|id| self.learners.contains(id))
    }

    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_outgoing.contains(&id) || self.learners.contains(&id)
    }

    /// Whether `id` votes in either half of the configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_outgoing.contains(&id)
    }

    /// Every member, voters first, without duplicates, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all: BTreeSet<NodeId> = self.voters.clone();
        all.extend(self.voters_outgoing.iter().copied());
        all.extend(self.learners.iter().copied());
        all
    }

    /// Whether a joint change (C_old,new) is in progress.
    pub fn is_joint(&self) -> bool {
        !self.voters_outgoing.is_empty()
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryPayload {
    /// The empty entry a new leader appends to commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// An application command, opaque to Raft.
    Command(Bytes),
    /// A new cluster configuration, effective as soon as it is appended (thesis §4.1). Boxed
    /// because it is rare and large: it would otherwise double the size of every entry.
    Membership(Box<Membership>),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: EntryPayload,
}

/// Fixed per-entry overhead counted by the byte limits, on top of the payload's length.
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

impl Entry {
    /// The size this entry counts for in byte limits (payload plus a fixed overhead).
    pub fn size_bytes(&self) -> u64 {
        let payload = match &self.payload {
            EntryPayload::Noop => 0,
            EntryPayload::Command(data) => data.len() as u64,
            EntryPayload::Membership(m) => {
                8 * (m.voters.len() + m.voters_outgoing.len() + m.learners.len()) as u64
            }
        };
        ENTRY_OVERHEAD_BYTES + payload
    }
}

/// Where a proposal went: the entry's index and the leader's term. The proposal is committed
/// (and will be applied) at `index` only if the entry committed there has `term`; an entry of
/// another term at that index means this one was cut from the log when leadership changed
/// (§5.3), and the client should retry. etcd's and hashicorp's drivers need both to match a
/// proposal to its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Proposed {
    /// The index the entry has in the leader's log.
    pub index: LogIndex,
    /// The term of the leader that appended it (the entry's term).
    pub term: Term,
}

/// The state a node must persist before it answers any message that depends on it (§5, Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// The highest index known committed. Persisting it is not required for safety; it lets a
    /// restarted node apply what it already knew was committed without waiting for a leader.
    pub commit: LogIndex,
}

/// A node's role (§5.1, plus the pre-candidate of thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Answers leaders and candidates.
    Follower,
    /// Asking for pre-votes: would an election succeed? (thesis §9.6). Its term has not changed.
    PreCandidate,
    /// Asking for votes in a new term (§5.2).
    Candidate,
    /// Handles proposals and replicates the log (§5.3).
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}
