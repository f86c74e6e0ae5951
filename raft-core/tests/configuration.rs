//! The configuration in force is the latest one in the log, rolled back with it (thesis §4.1),
//! and a promised promotion of a new voter happens or is reported (thesis §4.2.1).

mod common;

use common::{config, TestCluster};
use raft_core::{Bytes, Entry, LogIndex, Membership, MembershipChange, NodeId, Role};
use std::collections::{BTreeMap, BTreeSet};

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().map(|&i| NodeId(i)).collect()
}

/// Ticks only the given node, then delivers every message.
fn tick_one(cluster: &mut TestCluster, id: u64) {
    cluster.node_mut(id).tick();
    cluster.stabilize();
}

/// Cuts every link between the two groups, both ways.
fn partition(cluster: &mut TestCluster, left: &[u64], right: &[u64]) {
    cluster.heal();
    for &a in left {
        for &b in right {
            cluster.cut.insert((a, b));
            cluster.cut.insert((b, a));
        }
    }
}

/// Every entry each node has applied, by index: no two may differ (state-machine safety, §5.4.3).
fn assert_one_entry_per_committed_index(cluster: &TestCluster) {
    let mut seen: BTreeMap<LogIndex, (u64, Entry)> = BTreeMap::new();
    for (k, applied) in cluster.applied.iter().enumerate() {
        for entry in applied {
            if let Some((other, first)) = seen.get(&entry.index) {
                assert_eq!(
                    first,
                    entry,
                    "nodes {other} and {} committed different entries at index {}",
                    k + 1,
                    entry.index
                );
            } else {
                seen.insert(entry.index, (k as u64 + 1, entry.clone()));
            }
        }
    }
}

/// Thesis §4.1: "a server always uses the latest configuration in its log, regardless of whether
/// the entry is committed", and when a configuration entry is removed by a conflicting suffix the
/// server falls back to the configuration before it. Here the removed entry is replaced by
/// *another* configuration entry at the same index, whose majorities do not overlap the old
/// one's: a server that kept the deleted configuration could get itself elected with a minority
/// of the real one, and two different entries would commit at one index (§5.4.3).
///
/// Four voters. Pre-vote and check-quorum are off so that elections happen exactly when the
/// script says; they play no part in the configuration logic at issue.
#[test]
fn thesis_4_1_a_configuration_replaced_at_its_index_is_rolled_back_with_the_log() {
    let configs = (1..=4)
        .map(|id| {
            let mut c = config(id);
            c.pre_vote = false;
            c.check_quorum = false;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    cluster.campaign(1);
    assert_eq!(cluster.leaders(), vec![1]);
    let committed = cluster.node(1).commit_index();
    assert_eq!(committed, LogIndex(2), "configuration at 1, the leader's no-op at 2");

    // Node 1 is cut off and, still leader, legally appends a command at 3 and "remove 4" at 4.
    cluster.isolate(1);
    cluster.propose(1, b"lost");
    let expected = cluster.node(1).membership_index();
    let stale_change =
        cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(4)), expected);
    assert_eq!(stale_change, Ok(LogIndex(4)));
    cluster.stabilize();
    let c_old_leader = Membership::with_voters(ids(&[1, 2, 3]).into_iter());
    assert_eq!(cluster.node(1).membership(), &c_old_leader);

    // Nodes 2, 3 and 4 elect node 2, which commits its no-op at 3 and then "remove 3" at 4.
    cluster.campaign(2);
    assert!(cluster.leaders().contains(&2));
    let expected = cluster.node(2).membership_index();
    let change = cluster.node_mut(2).change_membership(MembershipChange::RemoveServer(NodeId(3)), expected);
    assert_eq!(change, Ok(LogIndex(4)), "a configuration entry at the same index as node 1's");
    cluster.stabilize();
    let c_new = Membership::with_voters(ids(&[1, 2, 4]).into_iter());
    assert_eq!(cluster.node(2).membership(), &c_new);
    assert!(cluster.node(2).commit_index() >= LogIndex(4), "committed by 2 and 4");

    // Node 1 hears from node 2: one AppendEntries replaces its entries 3 and 4.
    cluster.cut.remove(&(1, 2));
    cluster.cut.remove(&(2, 1));
    for _ in 0..4 {
        tick_one(&mut cluster, 2);
    }
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert_eq!(cluster.node(1).term_at(LogIndex(4)), cluster.node(2).term_at(LogIndex(4)), "log repaired");
    let membership_after_repair = cluster.node(1).membership().clone();

    // {1, 3} is a majority of the deleted configuration, {2, 4} one of the real one.
    partition(&mut cluster, &[1, 3], &[2, 4]);
    cluster.campaign(1);
    if cluster.node(1).role() == Role::Leader {
        cluster.propose(1, b"minority side");
    }
    cluster.propose(2, b"majority side");
    cluster.heal();
    for _ in 0..40 {
        tick_one(&mut cluster, 2);
    }
    assert_one_entry_per_committed_index(&cluster);
    assert_eq!(
        membership_after_repair, c_new,
        "the deleted configuration must not stay in force (thesis §4.1)"
    );
    assert_ne!(cluster.node(1).role(), Role::Leader, "node 1 has no majority of {{1, 2, 4}}");
    assert_eq!(cluster.node(2).commit_index(), cluster.node(2).last_index());
}

#[test]
fn thesis_4_1_a_truncated_configuration_entry_gives_way_to_the_one_before_it() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let learner = cluster.add_empty_node();
    cluster.isolate(1);
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(learner)), expected).unwrap();
    assert!(cluster.node(1).membership().learners.contains(&NodeId(learner)));
    // Node 2 takes over and overwrites index 3 with an ordinary entry.
    for _ in 0..30 {
        tick_one(&mut cluster, 2);
        tick_one(&mut cluster, 3);
        if !cluster.leaders().iter().all(|&l| l == 1) {
            break;
        }
    }
    let leader = *cluster.leaders().iter().find(|&&l| l != 1).expect("a new leader among 2 and 3");
    cluster.node_mut(leader).propose(Bytes::from_static(b"x")).unwrap();
    cluster.heal();
    for _ in 0..6 {
        tick_one(&mut cluster, leader);
    }
    assert_eq!(cluster.node(1).last_index(), cluster.node(leader).last_index());
    assert_eq!(cluster.node(1).membership(), &Membership::with_voters(ids(&[1, 2, 3]).into_iter()));
    assert_eq!(cluster.node(1).membership_index(), LogIndex(1));
}
