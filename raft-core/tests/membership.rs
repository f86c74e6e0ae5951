//! Membership changes (thesis ch. 4), leadership transfer (thesis §3.10) and recovery after a
//! permanent loss of quorum.

mod common;

use common::TestCluster;
use raft_core::{
    recover_cluster, Bytes, LogIndex, MembershipChange, MembershipError, NodeId, ProposeError, Restored,
    Role, TransferError,
};
use std::collections::BTreeSet;

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().map(|&i| NodeId(i)).collect()
}

fn elected(size: u64) -> TestCluster {
    let mut cluster = TestCluster::new(size);
    cluster.campaign(1);
    cluster.tick_all(2);
    cluster
}

#[test]
fn thesis_4_2_1_a_new_voter_catches_up_as_a_learner_and_is_promoted() {
    let mut cluster = elected(3);
    for k in 0..20u64 {
        cluster.node_mut(1).propose(Bytes::from(k.to_le_bytes().to_vec())).unwrap();
    }
    cluster.stabilize();
    let new = cluster.add_empty_node();
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::AddVoter(NodeId(new)), expected).unwrap();
    // Appended at once as a learner: it receives the log but does not vote yet.
    assert!(cluster.node(1).membership().learners.contains(&NodeId(new)));
    assert!(!cluster.node(1).membership().voters.contains(&NodeId(new)));
    assert_eq!(cluster.node(1).catching_up(), Some(NodeId(new)));
    cluster.stabilize();
    cluster.tick_all(6);
    let membership = cluster.node(1).membership().clone();
    assert_eq!(membership.voters, ids(&[1, 2, 3, new]), "promoted after catching up");
    assert!(membership.learners.is_empty());
    assert_eq!(cluster.node(new).last_index(), cluster.node(1).last_index());
    assert_eq!(cluster.node(new).membership(), &membership);
}

#[test]
fn thesis_4_2_1_a_server_that_cannot_catch_up_stays_a_learner() {
    let mut cluster = elected(3);
    let new = cluster.add_empty_node();
    cluster.isolate(new);
    cluster.change_membership(1, MembershipChange::AddVoter(NodeId(new))).unwrap();
    cluster.tick_all(12 * raft_core::CATCH_UP_ROUNDS_MAX as u64);
    assert_eq!(cluster.node(1).catching_up(), None, "the leader gave up");
    assert!(!cluster.node(1).membership().voters.contains(&NodeId(new)));
    assert!(cluster.node(1).membership().learners.contains(&NodeId(new)));
    // The cluster kept working meanwhile.
    cluster.node_mut(1).propose(Bytes::from_static(b"still going")).unwrap();
}

#[test]
fn thesis_4_1_one_change_at_a_time_each_naming_the_configuration_it_expects() {
    let mut cluster = elected(3);
    let current = cluster.node(1).membership_index();
    let stale = LogIndex(current.0 + 7);
    let refused = cluster.node_mut(1).change_membership(MembershipChange::DemoteVoter(NodeId(3)), stale);
    assert_eq!(refused, Err(MembershipError::ConfigurationChanged { current }));
    // First change appended but not committed yet: a second one must wait.
    cluster.node_mut(1).change_membership(MembershipChange::DemoteVoter(NodeId(3)), current).unwrap();
    let next = cluster.node(1).membership_index();
    let busy = cluster.node_mut(1).change_membership(MembershipChange::DemoteVoter(NodeId(2)), next);
    assert_eq!(busy, Err(MembershipError::ChangeInProgress));
    cluster.stabilize();
    assert!(cluster.node(1).membership().learners.contains(&NodeId(3)));
    let refused = cluster.change_membership(2, MembershipChange::RemoveServer(NodeId(3)));
    assert_eq!(refused, Err(MembershipError::NotLeader { leader: Some(NodeId(1)) }));
}

#[test]
fn thesis_4_1_a_new_leader_commits_an_entry_of_its_term_before_changing_membership() {
    let mut cluster = TestCluster::new(3);
    cluster.node_mut(1).campaign();
    cluster.stabilize_filtered(|m| !common::is_append(m));
    assert_eq!(cluster.leaders(), vec![1]);
    let expected = cluster.node(1).membership_index();
    let early = cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(3)), expected);
    assert_eq!(early, Err(MembershipError::LeaderNotReady));
}

#[test]
fn thesis_4_2_2_a_removed_leader_leads_until_the_change_commits_then_steps_down() {
    let mut cluster = elected(3);
    let index = cluster.change_membership(1, MembershipChange::RemoveServer(NodeId(1))).unwrap();
    assert!(cluster.node(1).commit_index() >= index);
    assert_ne!(cluster.node(1).role(), Role::Leader);
    cluster.tick_all(40);
    let leaders = cluster.leaders();
    assert_eq!(leaders.len(), 1);
    assert!(leaders[0] == 2 || leaders[0] == 3);
    // The removed server never campaigns again: it knows its removal is committed.
    let term = cluster.node(leaders[0]).term();
    cluster.tick_all(60);
    assert_eq!(cluster.node(leaders[0]).term(), term);
    assert_eq!(cluster.node(1).stats().elections_started, 1);
}

#[test]
fn thesis_4_2_3_a_removed_server_cannot_disrupt_the_cluster() {
    let mut cluster = elected(3);
    // Node 3 misses its own removal, so it still believes it votes.
    cluster.isolate(3);
    cluster.change_membership(1, MembershipChange::RemoveServer(NodeId(3))).unwrap();
    cluster.tick_all(3);
    let term = cluster.node(1).term();
    for _ in 0..60 {
        cluster.tick(3);
    }
    cluster.heal();
    cluster.tick_all(60);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).term(), term, "pre-vote and leases kept the term");
}

/// Three voters, then learners 4 and 5, then the leader (node 1) appends C_old,new for voters
/// {1, 4, 5}. Returns the cluster and node 4's id.
fn replacing_voters_2_and_3_with_4_and_5() -> (TestCluster, u64) {
    let mut cluster = elected(3);
    let four = cluster.add_empty_node();
    let five = cluster.add_empty_node();
    cluster.change_membership(1, MembershipChange::AddLearner(NodeId(four))).unwrap();
    cluster.change_membership(1, MembershipChange::AddLearner(NodeId(five))).unwrap();
    let expected = cluster.node(1).membership_index();
    cluster
        .node_mut(1)
        .change_membership(MembershipChange::ReplaceVoters(ids(&[1, 4, 5])), expected)
        .unwrap();
    (cluster, four)
}

#[test]
fn thesis_4_3_joint_consensus_replaces_the_voter_set_in_one_step_and_leaves_by_itself() {
    let (mut cluster, _) = replacing_voters_2_and_3_with_4_and_5();
    // C_old,new is in effect as soon as it is appended.
    assert!(cluster.node(1).membership().is_joint());
    assert_eq!(cluster.node(1).membership().voters_outgoing, ids(&[1, 2, 3]));
    cluster.stabilize();
    cluster.tick_all(2);
    let membership = cluster.node(1).membership().clone();
    assert!(!membership.is_joint(), "C_new followed C_old,new by itself");
    assert_eq!(membership.voters, ids(&[1, 4, 5]));
    // Nodes 2 and 3 are out; the new set commits on its own.
    cluster.crash(2);
    cluster.crash(3);
    cluster.node_mut(1).propose(Bytes::from_static(b"new majority")).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
}

#[test]
fn thesis_4_3_a_pending_leadership_transfer_does_not_hold_the_cluster_in_the_joint_configuration() {
    let (mut cluster, four) = replacing_voters_2_and_3_with_4_and_5();
    // The transfer target is cut off, so the transfer stays pending while C_old,new commits
    // on {1, 2, 3} of the old voters and {1, 5} of the new.
    cluster.isolate(four);
    cluster.node_mut(1).transfer_leadership(Some(NodeId(four))).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(1).transfer_target(), Some(NodeId(four)));
    let membership = cluster.node(1).membership().clone();
    assert!(!membership.is_joint(), "C_new follows C_old,new even while a transfer is pending");
    assert_eq!(membership.voters, ids(&[1, 4, 5]));
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
}

#[test]
fn thesis_4_demoting_a_voter_keeps_it_as_a_learner() {
    let mut cluster = elected(3);
    cluster.change_membership(1, MembershipChange::DemoteVoter(NodeId(2))).unwrap();
    assert_eq!(cluster.node(1).membership().voters, ids(&[1, 3]));
    cluster.node_mut(1).propose(Bytes::from_static(b"x")).unwrap();
    cluster.stabilize();
    cluster.tick_all(2);
    assert_eq!(cluster.node(2).last_index(), cluster.node(1).last_index(), "learners still get the log");
    let none_left = cluster.change_membership(1, MembershipChange::ReplaceVoters(BTreeSet::new()));
    assert_eq!(none_left, Err(MembershipError::NoVotersLeft));
}

// ----- leadership transfer (thesis §3.10) ----------------------------------------------------

#[test]
fn thesis_3_10_leadership_moves_to_the_named_server_under_write_load() {
    let mut cluster = elected(3);
    // Node 3 lags behind by a burst of writes when the transfer starts.
    cluster.isolate(3);
    for k in 0..20u64 {
        cluster.node_mut(1).propose(Bytes::from(k.to_le_bytes().to_vec())).unwrap();
    }
    cluster.stabilize();
    cluster.heal();
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    let refused = cluster.node_mut(1).propose(Bytes::from_static(b"during"));
    assert_eq!(refused, Err(ProposeError::LeadershipTransferInProgress));
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![3]);
    assert_eq!(cluster.node(1).stats().leader_transfers, 1);
    cluster.node_mut(3).propose(Bytes::from_static(b"after")).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(3).commit_index(), cluster.node(3).last_index());
}

#[test]
fn thesis_3_10_without_a_target_the_most_up_to_date_server_is_chosen() {
    let mut cluster = elected(3);
    cluster.isolate(2);
    cluster.propose(1, b"only 3 has this");
    cluster.heal();
    let target = cluster.node_mut(1).transfer_leadership(None).unwrap();
    assert_eq!(target, NodeId(3));
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![3]);
}

#[test]
fn thesis_3_10_a_transfer_to_an_unreachable_server_is_abandoned_after_an_election_timeout() {
    let mut cluster = elected(3);
    cluster.isolate(3);
    cluster.node_mut(1).transfer_leadership(Some(NodeId(3))).unwrap();
    for _ in 0..11 {
        cluster.node_mut(1).tick();
        cluster.node_mut(2).tick();
        cluster.stabilize();
    }
    assert_eq!(cluster.node(1).transfer_target(), None);
    assert_eq!(cluster.node(1).role(), Role::Leader);
    cluster.node_mut(1).propose(Bytes::from_static(b"back to work")).unwrap();
    let bad = cluster.node_mut(1).transfer_leadership(Some(NodeId(9)));
    assert_eq!(bad, Err(TransferError::NotAVoter(NodeId(9))));
}

// ----- recovery after quorum loss ------------------------------------------------------------

#[test]
fn recover_cluster_lets_survivors_of_a_lost_majority_make_progress_again() {
    let mut cluster = elected(5);
    cluster.propose(1, b"before the disaster");
    for id in [3, 4, 5] {
        cluster.crash(id);
    }
    cluster.tick_all(60);
    assert!(cluster.leaders().is_empty(), "no majority, no leader (check-quorum)");
    // The operator stops the survivors and rewrites their configuration.
    let survivors = ids(&[1, 2]);
    for id in [1, 2] {
        cluster.crash(id);
        let k = (id - 1) as usize;
        let disk = &cluster.disks[k];
        let restored = Restored {
            hard_state: disk.hard_state,
            snapshot: None,
            entries: disk.entries.clone(),
            applied: LogIndex(0),
        };
        let recovered =
            recover_cluster(restored, raft_core::Membership::with_voters(survivors.clone())).unwrap();
        cluster.disks[k].hard_state = recovered.hard_state;
        cluster.disks[k].entries = recovered.entries;
        cluster.restart(id);
    }
    cluster.tick_all(40);
    let leaders = cluster.leaders();
    assert_eq!(leaders.len(), 1);
    let leader = leaders[0];
    cluster.propose(leader, b"after recovery");
    assert_eq!(cluster.node(leader).commit_index(), cluster.node(leader).last_index());
    assert_eq!(cluster.node(leader).membership().voters, survivors);
}
