//! Voters that never campaign in the simulator (`SimConfig::non_campaigning`, issue 14): what
//! every server is told about them (and, with `Adversary::late_campaign_news`, told late), when
//! the liveness check may expect a leader, and the `campaigning-majority` check.

use super::{Liveness, Simulation};
use crate::node::{MembershipChange, RaftNode};
use crate::quorum;
use crate::sim::config::SimConfig;
use crate::types::{LogIndex, Membership, NodeId};
use alloc::collections::BTreeSet;
use alloc::format;

/// Tells a starting server which of its peers never campaign, as native-node tells its nodes
/// about browser voters, so that as leader it never hands leadership to one (thesis §3.10).
pub(super) fn tell_who_campaigns(config: &SimConfig, raft: &mut RaftNode) {
    for peer in config.node_ids().filter(|&id| !config.campaigns(id)) {
        raft.set_peer_campaigns(peer, false);
    }
}

/// With [`crate::sim::Adversary::late_campaign_news`], a leader about to handle
/// `AddVoter(server)` for a server that never campaigns is told it does, as a driver that has
/// not heard yet would have it; returns the server, whose truth the caller tells the leader
/// right after `change_membership`, before any message moves. The promotion is then accepted
/// on the stale belief and only the re-judgement at its completion can withdraw it.
pub(super) fn late_campaign_news(
    config: &SimConfig,
    leader: &mut RaftNode,
    change: &MembershipChange,
) -> Option<NodeId> {
    let MembershipChange::AddVoter(server) = *change else {
        return None;
    };
    if !config.adversary.late_campaign_news || config.campaigns(server) {
        return None;
    }
    leader.set_peer_campaigns(server, true);
    Some(server)
}

/// Whether the servers of `voters` that campaign are a majority of it (an empty set has none
/// to lose, as the outgoing half of a configuration that is not joint).
fn campaigning_majority(config: &SimConfig, voters: &BTreeSet<NodeId>) -> bool {
    voters.is_empty() || 2 * voters.iter().filter(|&&id| config.campaigns(id)).count() > voters.len()
}

impl Simulation {
    /// The `campaigning-majority` check (thesis §3.10, §4.2.1): when the run starts with
    /// campaigning voters a majority, a leader never appends a configuration (either half of a
    /// joint one) whose campaigning voters are not, since such a cluster cannot elect a leader
    /// once one of them fails. Judged with the truth, not with what the leader was told.
    pub(super) fn check_campaigning_majority(&mut self, leader: NodeId, index: LogIndex, next: &Membership) {
        let config = &self.config;
        let voters_initial = if config.voters_initial == 0 { config.nodes } else { config.voters_initial };
        let initial: BTreeSet<NodeId> = (1..=voters_initial as u64).map(NodeId).collect();
        if !campaigning_majority(config, &initial) {
            return;
        }
        for half in [&next.voters, &next.voters_outgoing] {
            if !campaigning_majority(config, half) {
                let ids: alloc::vec::Vec<u64> = half.iter().map(|id| id.0).collect();
                let detail = format!(
                    "leader {leader} appended a configuration at {index} with voters {ids:?}, of which the campaigning ones are not a majority"
                );
                self.checker.flag("campaigning-majority", self.now_ms, detail);
                return;
            }
        }
    }

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
