//! What a node tells observers: an event for every change worth showing (the playground's
//! event log, the native node's logs and metrics), and a status snapshot.

use crate::node::FollowerProgress;
use crate::types::{LogIndex, Membership, NodeId, Role, Term};
use alloc::vec::Vec;

/// Something that happened inside a node, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RaftEvent {
    /// The node's role changed.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The term it holds now.
        term: Term,
    },
    /// The leader this node follows (or is) changed.
    LeaderChanged {
        /// The new leader, if any.
        leader: Option<NodeId>,
        /// The term it holds now.
        term: Term,
    },
    /// A leader stepped down because it heard from no majority for an election timeout.
    CheckQuorumFailed {
        /// The term it led.
        term: Term,
    },
    /// A configuration entry was appended to this node's log (it is in effect from now on).
    MembershipChanged {
        /// The entry's index.
        index: LogIndex,
        /// The configuration.
        membership: Membership,
    },
    /// A snapshot received from the leader was installed.
    SnapshotInstalled {
        /// Last index it covers.
        index: LogIndex,
    },
    /// This leader started handing over to `target`.
    TransferStarted {
        /// The server to hand over to.
        target: NodeId,
    },
    /// The handover did not finish within an election timeout.
    TransferAbandoned {
        /// The server that was not handed over to.
        target: NodeId,
    },
    /// TimeoutNow from the leader was ignored because this node does not campaign
    /// ([`crate::Config::campaigns`]); the leader abandons the transfer after an election
    /// timeout (thesis §3.10).
    TimeoutNowIgnored {
        /// The leader that asked this node to take over.
        from: NodeId,
        /// This node's term.
        term: Term,
    },
    /// A server catching up to become a voter stays a learner: it did not keep up (thesis
    /// §4.2.1), or, judged again when it caught up, promoting it would leave the voters that
    /// campaign a minority ([`crate::RaftNode::set_peer_campaigns`] said during its catch-up that
    /// it does not campaign). The leader appends a configuration that withdraws its promotion.
    CatchUpAbandoned {
        /// The server.
        id: NodeId,
    },
    /// A caught-up learner's promotion cannot be appended yet: an earlier configuration change
    /// has not committed, this leader has not committed an entry of its term, or a leadership
    /// transfer is in progress. The leader retries on its own; reported once per catch-up.
    PromotionDeferred {
        /// The server.
        id: NodeId,
    },
}

/// Everything an operator asks a node about (hashicorp's `Stats` and `State`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it follows or is.
    pub leader: Option<NodeId>,
    /// Highest committed index it knows.
    pub commit_index: LogIndex,
    /// Highest index applied.
    pub applied_index: LogIndex,
    /// Last index in its log.
    pub last_index: LogIndex,
    /// Last index covered by its latest snapshot.
    pub snapshot_index: LogIndex,
    /// The configuration in effect.
    pub membership: Membership,
    /// Index of that configuration's entry.
    pub membership_index: LogIndex,
    /// Follower: ticks since it last heard from a leader.
    pub ticks_since_leader_contact: u64,
    /// Leader: every other member's progress, with ticks since last contact.
    pub followers: Vec<FollowerProgress>,
}
