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
    let c_old_leader = Membership::with_voters(ids(&[1, 2, 3]));
    assert_eq!(cluster.node(1).membership(), &c_old_leader);

    // Nodes 2, 3 and 4 elect node 2, which commits its no-op at 3 and then "remove 3" at 4.
    cluster.campaign(2);
    assert!(cluster.leaders().contains(&2));
    let expected = cluster.node(2).membership_index();
    let change = cluster.node_mut(2).change_membership(MembershipChange::RemoveServer(NodeId(3)), expected);
    assert_eq!(change, Ok(LogIndex(4)), "a configuration entry at the same index as node 1's");
    cluster.stabilize();
    let c_new = Membership::with_voters(ids(&[1, 2, 4]));
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
    assert_eq!(cluster.node(1).membership(), &Membership::with_voters(ids(&[1, 2, 3])));
    assert_eq!(cluster.node(1).membership_index(), LogIndex(1));
}

fn elected(size: u64) -> TestCluster {
    let mut cluster = TestCluster::new(size);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

fn add_voter(cluster: &mut TestCluster, leader: u64, id: u64) {
    let expected = cluster.node(leader).membership_index();
    cluster.node_mut(leader).change_membership(MembershipChange::AddVoter(NodeId(id)), expected).unwrap();
}

/// Thesis §4.2.1: AddVoter promises that the new server becomes a voter once caught up. Here
/// it catches up while a leadership transfer is in progress, which refuses proposals: the
/// promotion must wait for the transfer to end, not be dropped (the server would otherwise
/// stay a learner for good, and nobody would be told).
#[test]
fn thesis_4_2_1_a_promotion_blocked_by_a_transfer_waits_and_is_reported_not_dropped() {
    let mut cluster = elected(3);
    let new = cluster.add_empty_node();
    add_voter(&mut cluster, 1, new);
    // The transfer target is cut off, so the transfer stays in progress until it is abandoned.
    cluster.isolate(3);
    cluster.node_mut(1).transfer_leadership(Some(NodeId(3))).unwrap();
    let mut events = Vec::new();
    // Delivers everything like `stabilize`, but reads node 1's batches here to see its events.
    let mut collect = |cluster: &mut TestCluster| {
        for _ in 0..10_000 {
            while cluster.node(1).has_ready() {
                let ready = cluster.node_mut(1).ready();
                events.extend(ready.events.clone());
                cluster.network.extend(ready.messages);
                cluster.network.extend(ready.messages_after_persist);
                // Node 1's disk plays no part in this scenario.
                cluster.node_mut(1).advance();
            }
            cluster.flush_except(1);
            let Some(message) = cluster.network.pop_front() else { return };
            cluster.deliver(message);
        }
        panic!("the network never ran dry");
    };
    collect(&mut cluster);
    assert_eq!(cluster.node(new).last_index(), cluster.node(1).last_index(), "caught up");
    assert!(!cluster.node(1).membership().voters.contains(&NodeId(new)), "not while the transfer runs");
    for _ in 0..30 {
        for id in [1, 2, new] {
            cluster.node_mut(id).tick();
        }
        collect(&mut cluster);
    }
    assert!(events.contains(&raft_core::RaftEvent::PromotionDeferred { id: NodeId(new) }), "{events:?}");
    assert!(events.contains(&raft_core::RaftEvent::TransferAbandoned { target: NodeId(3) }));
    let membership = cluster.node(1).membership().clone();
    assert_eq!(membership.voters, ids(&[1, 2, 3, new]), "promoted once the transfer ended");
    assert!(membership.learners.is_empty() && membership.promoting.is_empty());
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
}

/// Thesis §4.2.1 across a change of leader: the leader that accepted AddVoter is gone before the
/// new server caught up. The promotion is in the replicated configuration, so the next leader
/// catches the server up and promotes it.
#[test]
fn thesis_4_2_1_a_new_leader_resumes_the_catch_up_of_a_promised_voter() {
    let mut cluster = elected(3);
    let new = cluster.add_empty_node();
    cluster.isolate(new);
    add_voter(&mut cluster, 1, new);
    cluster.stabilize();
    assert!(cluster.node(2).membership().promoting.contains(&NodeId(new)), "replicated");
    assert_eq!(cluster.node(1).catching_up(), Some(NodeId(new)));
    // The leader dies; node 4 is reachable again.
    cluster.crash(1);
    cluster.heal();
    let mut leader = None;
    for _ in 0..60 {
        cluster.tick_all(1);
        leader = cluster.leaders().first().copied();
        if let Some(l) = leader {
            if cluster.node(l).membership().voters.contains(&NodeId(new)) {
                break;
            }
        }
    }
    let leader = leader.expect("nodes 2 and 3 elect a leader");
    let membership = cluster.node(leader).membership().clone();
    assert_eq!(membership.voters, ids(&[1, 2, 3, new]), "the new leader promoted it");
    assert!(membership.promoting.is_empty());
    assert_eq!(cluster.node(new).membership(), &membership);
}

/// The other way a promise ends: a server that cannot keep up is reported, and the leader
/// withdraws its promotion in the log, so no later leader retries it for ever and other changes
/// can go ahead.
#[test]
fn thesis_4_2_1_a_server_that_cannot_catch_up_is_reported_and_its_promotion_withdrawn() {
    let mut cluster = elected(3);
    let new = cluster.add_empty_node();
    cluster.isolate(new);
    add_voter(&mut cluster, 1, new);
    cluster.tick_all(12 * raft_core::CATCH_UP_ROUNDS_MAX as u64);
    let membership = cluster.node(1).membership().clone();
    assert!(membership.learners.contains(&NodeId(new)));
    assert!(membership.promoting.is_empty(), "withdrawn in the log");
    assert_eq!(cluster.node(1).catching_up(), None);
    let expected = cluster.node(1).membership_index();
    let change = cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(new)), expected);
    assert!(change.is_ok(), "{change:?}");
}

/// Thesis §4.2.1 for joint consensus: a brand-new server would enter C_old,new with an empty log
/// and could stall every commit until it caught up. ReplaceVoters takes only members; a new
/// server joins as a learner first.
#[test]
fn thesis_4_2_1_replace_voters_refuses_a_server_that_has_not_joined_as_a_learner() {
    let mut cluster = elected(3);
    let new = cluster.add_empty_node();
    let expected = cluster.node(1).membership_index();
    let refused =
        cluster.node_mut(1).change_membership(MembershipChange::ReplaceVoters(ids(&[1, 2, new])), expected);
    assert_eq!(refused, Err(raft_core::MembershipError::JoinAsLearnerFirst(NodeId(new))));
    assert_eq!(cluster.node(1).membership_index(), expected, "nothing appended");
    let learner = cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(new)), expected);
    let expected = learner.unwrap();
    cluster.stabilize();
    let joint =
        cluster.node_mut(1).change_membership(MembershipChange::ReplaceVoters(ids(&[1, 2, new])), expected);
    assert!(joint.is_ok(), "{joint:?}");
}

/// Thesis §4.2.2: a server that is not part of its own latest configuration "should still start
/// new elections, as it might still be needed until the C_new entry is committed". Two voters;
/// the leader, cut off, appends an entry and then its own removal, and steps down (check-quorum).
/// Node 2's log is now behind, so node 1 refuses it its vote (§5.4.1), and node 2 needs that vote
/// in its configuration {1, 2}. Only node 1 can end this, by campaigning and counting the votes of
/// its latest configuration {2}: it wins with node 2's vote, commits its removal and steps down,
/// and node 2 leads alone. Found by `simulate --seed 139 --runs 1 --nodes 3 --faults all,corners
/// --ticks 6000` (no leader ever again).
#[test]
fn thesis_4_2_2_a_server_removed_by_an_uncommitted_entry_still_campaigns() {
    let mut cluster = elected(2);
    let t = cluster.configs[0].election_timeout_ticks;
    cluster.isolate(1);
    cluster.propose(1, b"only on node 1");
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(1)), expected).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(1).membership(), &Membership::with_voters(ids(&[2])));
    cluster.tick_all(3 * t);
    assert!(cluster.leaders().is_empty(), "node 1 stepped down; node 2 cannot win alone");
    cluster.heal();
    for _ in 0..20 {
        cluster.tick_all(t);
        if cluster.leaders() == vec![2] && cluster.node(2).membership() == &Membership::with_voters(ids(&[2]))
        {
            break;
        }
    }
    assert_eq!(
        cluster.leaders(),
        vec![2],
        "a leader again: node 1 was elected, committed its removal, stepped down"
    );
    assert_eq!(cluster.node(2).membership(), &Membership::with_voters(ids(&[2])));
    assert!(cluster.node(2).commit_index() >= cluster.node(2).membership_index());
    assert_one_entry_per_committed_index(&cluster);
}
