//! Voters that never campaign in the simulator (`SimConfig::non_campaigning`, issue 14): what
//! every server is told about them, and when the liveness check may expect a leader.

use super::{Liveness, Simulation};
use crate::node::RaftNode;
use crate::quorum;
use crate::sim::config::SimConfig;
use crate::types::NodeId;

/// Tells a starting server which of its peers never campaign, as native-node tells its nodes
/// about browser voters, so that as leader it never hands leadership to one (thesis §3.10).
pub(super) fn tell_who_campaigns(config: &SimConfig, raft: &mut RaftNode) {
    for peer in config.node_ids().filter(|&id| !config.campaigns(id)) {
        raft.set_peer_campaigns(peer, false);
    }
}

impl Simulation {
    /// Whether some running, campaigning voter could win an election now: a majority of its
    /// configuration (of both halves when joint) is running and holds logs no more up to date
    /// than its own, so would grant it their votes (§5.4.1) once their quiet periods end.
    ///
    /// The liveness check asks it only when no leader runs after the faults stopped and the
    /// network healed: then the simulator's links all deliver, so "running" is "up and
    /// connected". With every voter campaigning the most up-to-date running voter always could,
    /// once a majority runs. With some that do not, the running campaigning voters may all lack
    /// entries that the non-campaigning ones hold (the last entries a crashed leader replicated),
    /// and then no leader is the right outcome, not a stall (raft-core GUIDE.md, "Voters that
    /// never campaign"). A campaigning voter that could win and has not is still a stall.
    pub(crate) fn a_campaigning_voter_could_win(&self) -> bool {
        let running = |id: NodeId| {
            self.index(id)
                .map(|k| &self.nodes[k])
                .filter(|node| node.liveness() == Liveness::Up)
                .and_then(|node| node.raft.as_ref())
        };
        self.nodes.iter().filter_map(|node| running(node.id)).any(|candidate| {
            let id = candidate.id();
            let mine = (candidate.last_term(), candidate.last_index());
            candidate.config().campaigns
                && candidate.membership().is_voter(id)
                && quorum::has_quorum(candidate.membership(), |voter| {
                    voter == id || running(voter).is_some_and(|r| (r.last_term(), r.last_index()) <= mine)
                })
        })
    }
}
