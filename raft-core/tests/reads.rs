//! Reads without log writes (thesis §6.4): ReadIndex rounds, leases, follower reads.

mod common;

use common::TestCluster;
use raft_core::{LogIndex, ReadError, ReadMode, ReadState};

fn elected() -> TestCluster {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    cluster
}

#[test]
fn thesis_6_4_a_leader_confirms_a_read_with_one_heartbeat_round() {
    let mut cluster = elected();
    let before = cluster.count_delivered("Heartbeat");
    cluster.node_mut(1).read(7, ReadMode::Linearizable);
    let states = cluster.settle_reads(1);
    assert_eq!(states, vec![ReadState { request_id: 7, result: Ok(cluster.node(1).commit_index()) }]);
    assert_eq!(cluster.count_delivered("Heartbeat") - before, 2);
}

#[test]
fn thesis_6_4_concurrent_reads_share_one_round() {
    let mut cluster = elected();
    let before = cluster.count_delivered("Heartbeat");
    for request_id in 0..50 {
        cluster.node_mut(1).read(request_id, ReadMode::Linearizable);
    }
    let states = cluster.settle_reads(1);
    assert_eq!(states.len(), 50);
    assert!(states.iter().all(|s| s.result.is_ok()));
    assert_eq!(cluster.count_delivered("Heartbeat") - before, 2, "one round for all fifty");
}

#[test]
fn thesis_6_4_a_new_leader_waits_for_an_entry_of_its_term_before_serving_reads() {
    let mut cluster = TestCluster::new(3);
    cluster.node_mut(1).campaign();
    // Run the election but hold back every AppendEntries: the no-op cannot commit.
    cluster.stabilize_filtered(|m| !common::is_append(m));
    assert_eq!(cluster.leaders(), vec![1]);
    cluster.node_mut(1).read(1, ReadMode::Linearizable);
    cluster.node_mut(1).tick();
    cluster.node_mut(1).tick();
    let states = cluster.read_states(1);
    assert!(states.is_empty(), "parked until the no-op commits");
    assert_eq!(cluster.node(1).pending_reads().0, 1);
    cluster.network.clear();
    cluster.tick_all(3);
    assert_eq!(cluster.node(1).pending_reads().0, 0);
}

#[test]
fn thesis_6_4_a_follower_gets_a_read_index_from_the_leader() {
    let mut cluster = elected();
    cluster.node_mut(2).read(9, ReadMode::Linearizable);
    let states = cluster.settle_reads(2);
    assert_eq!(states, vec![ReadState { request_id: 9, result: Ok(cluster.node(1).commit_index()) }]);
}

#[test]
fn thesis_6_4_a_deposed_leader_cannot_confirm_a_read() {
    let mut cluster = elected();
    cluster.isolate(1);
    cluster.node_mut(1).read(3, ReadMode::Linearizable);
    let mut states = Vec::new();
    for _ in 0..30 {
        cluster.node_mut(1).tick();
        states.extend(cluster.settle_reads(1));
    }
    assert_eq!(states, vec![ReadState { request_id: 3, result: Err(ReadError::LeadershipLost) }]);
}

#[test]
fn thesis_6_4_1_a_lease_read_needs_no_messages_until_the_lease_runs_out() {
    let mut cluster = elected();
    cluster.tick_all(2);
    assert!(cluster.node(1).lease_is_valid());
    let before = cluster.delivered.len();
    cluster.node_mut(1).read(1, ReadMode::Lease);
    let states = cluster.settle_reads(1);
    assert_eq!(states.len(), 1);
    assert_eq!(cluster.delivered.len(), before, "no messages for a read under a lease");
    // Cut off, the leader's lease ends before the followers could elect someone else.
    cluster.isolate(1);
    let lease_end = {
        let config = cluster.node(1).config();
        config.election_timeout_ticks - config.clock_drift_ticks_max
    };
    for _ in 0..lease_end {
        cluster.node_mut(1).tick();
        cluster.network.clear();
    }
    assert!(!cluster.node(1).lease_is_valid());
}

#[test]
fn stale_reads_answer_at_once_with_the_applied_index() {
    let mut cluster = elected();
    cluster.node_mut(3).read(5, ReadMode::Stale);
    let states = cluster.read_states(3);
    let applied = cluster.node(3).applied_index();
    assert_eq!(states, vec![ReadState { request_id: 5, result: Ok(applied) }]);
    assert!(applied >= LogIndex(1));
}

#[test]
fn a_read_without_a_known_leader_fails_at_once() {
    let mut cluster = TestCluster::new(3);
    cluster.node_mut(2).read(1, ReadMode::Linearizable);
    let states = cluster.read_states(2);
    assert_eq!(states, vec![ReadState { request_id: 1, result: Err(ReadError::NoLeader) }]);
}

#[test]
fn thesis_6_4_a_forwarded_read_whose_answer_is_lost_fails_after_an_election_timeout() {
    let mut cluster = elected();
    cluster.node_mut(2).read(4, ReadMode::Linearizable);
    let _ = cluster.read_states(2);
    cluster.network.clear(); // the ReadIndex request is lost
    let mut states = Vec::new();
    for _ in 0..cluster.node(2).config().election_timeout_ticks {
        cluster.node_mut(2).tick();
        states.extend(cluster.read_states(2));
        cluster.network.clear();
    }
    assert_eq!(states, vec![ReadState { request_id: 4, result: Err(ReadError::TimedOut) }]);
}

#[test]
fn verify_leader_and_barrier_are_read_rounds() {
    let mut cluster = elected();
    cluster.node_mut(1).verify_leader(1);
    cluster.node_mut(1).barrier(2);
    let states = cluster.settle_reads(1);
    let commit = cluster.node(1).commit_index();
    assert_eq!(
        states,
        vec![
            ReadState { request_id: 1, result: Ok(commit) },
            ReadState { request_id: 2, result: Ok(commit) }
        ]
    );
    cluster.node_mut(2).verify_leader(3);
    let states = cluster.read_states(2);
    assert_eq!(states, vec![ReadState { request_id: 3, result: Err(ReadError::LeadershipLost) }]);
}
