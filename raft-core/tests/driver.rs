//! What a driver can count on (issue 10, "a driver should not have to guess"): the reference
//! storage, snapshots from inside the apply loop, and proposals that say their term.

mod common;

use common::config;
use raft_core::sim::SimStateMachine;
use raft_core::storage::MemoryStorage;
use raft_core::{bootstrap, Bytes, LogIndex, Membership, NodeId, RaftNode, Role, SnapshotError};

/// A one-voter node driven through `MemoryStorage`, leading, with `count` commands committed but
/// not yet handed out.
fn leader_with_commands(count: u64) -> (RaftNode, MemoryStorage, SimStateMachine) {
    let mut storage = MemoryStorage::from_restored(bootstrap(Membership::with_voters([NodeId(1)])));
    let mut node = RaftNode::new(config(1), storage.restored(LogIndex(0))).expect("valid");
    let mut machine = SimStateMachine::default();
    node.campaign();
    for _ in 0..10 {
        let ready = node.ready();
        storage.persist(&ready);
        for entry in &ready.committed_entries {
            machine.apply(entry);
        }
        node.advance();
    }
    assert_eq!(node.role(), Role::Leader);
    for k in 0..count {
        node.propose(Bytes::from(k.to_le_bytes().to_vec())).expect("the leader takes it");
    }
    // Persist the new entries; the commit follows on `advance` (the leader counts itself once
    // its entries are durable).
    let ready = node.ready();
    storage.persist(&ready);
    for entry in &ready.committed_entries {
        machine.apply(entry);
    }
    node.advance();
    (node, storage, machine)
}

#[test]
fn a_driver_may_snapshot_from_inside_its_apply_loop() {
    let (mut node, mut storage, mut machine) = leader_with_commands(6);
    let ready = node.ready();
    storage.persist(&ready);
    let first = ready.committed_entries.first().expect("entries to apply").index;
    let last = ready.committed_entries.last().expect("entries to apply").index;
    assert!(last.0 >= first.0 + 4);
    let middle = LogIndex(first.0 + 2);
    for entry in &ready.committed_entries {
        machine.apply(entry);
        if entry.index == middle {
            // Before `advance`: the index was handed out in this Ready and is now applied.
            let created = node.snapshot_created(middle).expect("a snapshot inside the apply loop");
            assert_eq!(created.meta.index, middle);
            storage.compact(&created, machine.snapshot());
        }
    }
    // Not yet handed out: refused.
    assert_eq!(node.snapshot_created(last.next()), Err(SnapshotError::NotApplied { applied: last }));
    node.advance();
    assert_eq!(node.applied_index(), last);
    assert_eq!(node.latest_snapshot().map(|m| m.index), Some(middle));
    // The node keeps working: more proposals commit and apply.
    let proposed = node.propose(Bytes::from_static(b"after")).expect("leader");
    for _ in 0..3 {
        let ready = node.ready();
        storage.persist(&ready);
        for entry in &ready.committed_entries {
            machine.apply(entry);
        }
        node.advance();
    }
    assert_eq!(machine.applied, proposed.index);
}

#[test]
fn propose_returns_the_index_and_the_term_of_the_entry() {
    let (mut node, _, _) = leader_with_commands(0);
    let proposed = node.propose(Bytes::from_static(b"x")).expect("leader");
    assert_eq!(proposed.index, node.last_index());
    assert_eq!(proposed.term, node.term());
    assert_eq!(node.term_at(proposed.index), Some(proposed.term));
}

#[test]
fn memory_storage_restarts_a_node_where_it_stopped() {
    let (mut node, mut storage, mut machine) = leader_with_commands(3);
    // One more batch carries the commit index the last `advance` moved.
    let ready = node.ready();
    storage.persist(&ready);
    for entry in &ready.committed_entries {
        machine.apply(entry);
    }
    node.advance();
    let (term, last, commit) = (node.term(), node.last_index(), node.commit_index());
    assert_eq!(storage.hard_state().commit, commit);
    drop(node);
    let restarted = RaftNode::new(config(1), storage.restored(machine.applied)).expect("restart");
    assert_eq!(restarted.term(), term);
    assert_eq!(restarted.last_index(), last);
    assert_eq!(restarted.commit_index(), commit);
    assert_eq!(restarted.voted_for(), Some(NodeId(1)));
}
