//! Helpers for tests of voters that never campaign (`Config::campaigns = false`, thesis §4.2.1
//! and raft-core/GUIDE.md "Voters that never campaign"), shared by `campaigns.rs` and the review
//! files instead of a copy in each.

use super::{config, TestCluster};
use raft_core::{Config, NodeId};
use std::collections::BTreeSet;

/// A cluster of `size` voters where the ids in `quiet` do not campaign; no node is told so yet
/// (see [`tell`]).
pub fn quiet_cluster(size: u64, quiet: &[u64]) -> TestCluster {
    let configs: Vec<Config> = (1..=size)
        .map(|id| {
            let mut c = config(id);
            c.campaigns = !quiet.contains(&id);
            c
        })
        .collect();
    TestCluster::with_configs(configs)
}

/// Tells every running node that the ids in `peers` campaign (or not).
pub fn tell(cluster: &mut TestCluster, peers: &[u64], campaigns: bool) {
    for id in cluster.ids() {
        tell_one(cluster, id, peers, campaigns);
    }
}

/// Tells node `id` (if running) that the ids in `peers` campaign (or not).
pub fn tell_one(cluster: &mut TestCluster, id: u64, peers: &[u64], campaigns: bool) {
    if let Some(node) = cluster.nodes[(id - 1) as usize].as_mut() {
        for &peer in peers {
            node.set_peer_campaigns(NodeId(peer), campaigns);
        }
    }
}

/// Whether the servers in `voters` that campaign (by the fixed truth `quiet`) are a majority.
pub fn campaigners_majority(voters: &BTreeSet<NodeId>, quiet: &[u64]) -> bool {
    let campaigning = voters.iter().filter(|id| !quiet.contains(&id.0)).count();
    voters.is_empty() || 2 * campaigning > voters.len()
}

/// A tiny deterministic generator (the tests must not read an unseeded RNG).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
