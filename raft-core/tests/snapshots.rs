//! Snapshots and log compaction (§7, thesis ch. 5).

mod common;

use common::{config, TestCluster};
use raft_core::{Bytes, LogIndex, Message, MessageBody, NodeId, ProgressState, Role};

fn cluster_with_policy(size: u64, interval: u64, trailing: u64) -> TestCluster {
    TestCluster::with_configs(
        (1..=size)
            .map(|id| {
                let mut c = config(id);
                c.snapshot_interval_entries = interval;
                c.snapshot_trailing_entries = trailing;
                c
            })
            .collect(),
    )
}

fn propose_many(cluster: &mut TestCluster, leader: u64, count: u64) {
    for k in 0..count {
        cluster.node_mut(leader).propose(Bytes::from(k.to_le_bytes().to_vec())).unwrap();
        cluster.stabilize();
    }
}

/// Node 3 missed 30 entries that node 1, the leader, has since compacted into a snapshot.
fn follower_behind_a_snapshot() -> TestCluster {
    let mut cluster = cluster_with_policy(3, 0, 0);
    cluster.campaign(1);
    cluster.isolate(3);
    propose_many(&mut cluster, 1, 30);
    cluster.snapshot(1);
    cluster
}

fn is_snapshot_chunk(message: &Message) -> bool {
    matches!(message.body, MessageBody::InstallSnapshot { .. })
}

#[test]
fn s7_the_policy_asks_for_a_snapshot_and_compaction_keeps_trailing_entries() {
    let mut cluster = cluster_with_policy(3, 10, 3);
    cluster.campaign(1);
    propose_many(&mut cluster, 1, 12);
    let wanted = cluster.node(1).snapshot_wanted().expect("12+ entries applied since no snapshot");
    let index = cluster.snapshot(1);
    assert_eq!(index, wanted);
    assert_eq!(cluster.node(1).latest_snapshot().unwrap().index, index);
    // Three entries stay behind the snapshot for slow followers.
    assert_eq!(cluster.node(1).snapshot_index(), LogIndex(index.0 - 3));
    assert_eq!(cluster.node(1).snapshot_wanted(), None);
    assert!(cluster.disks[0].entries.first().unwrap().index > LogIndex(1), "disk compacted too");
}

#[test]
fn s7_a_follower_far_behind_gets_the_snapshot_in_chunks_then_replicates() {
    let mut cluster = follower_behind_a_snapshot();
    propose_many(&mut cluster, 1, 2);
    cluster.heal();
    cluster.tick_all(4);
    let chunks = cluster.delivered.iter().filter(|m| is_snapshot_chunk(m)).count();
    assert!(chunks > 3, "the snapshot travelled in {chunks} chunks");
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    assert_eq!(
        cluster.machines[2].commands().collect::<Vec<_>>(),
        cluster.machines[0].commands().collect::<Vec<_>>(),
        "same state after install"
    );
    let progress = cluster.node(1).follower_progress().find(|p| p.id == NodeId(3)).unwrap();
    assert_eq!(progress.state, ProgressState::Replicate);
    assert_eq!(progress.match_index, cluster.node(1).last_index());
    // And it restarts from its own snapshot.
    cluster.crash(3);
    cluster.restart(3);
    cluster.tick_all(4);
    assert_eq!(
        cluster.machines[2].commands().collect::<Vec<_>>(),
        cluster.machines[0].commands().collect::<Vec<_>>()
    );
}

#[test]
fn s7_a_lost_chunk_is_resent_and_the_transfer_resumes() {
    let mut cluster = follower_behind_a_snapshot();
    cluster.heal();
    // Lose the third chunk once.
    let seen = std::cell::Cell::new(0);
    let keep = |m: &Message| {
        if is_snapshot_chunk(m) {
            seen.set(seen.get() + 1);
            return seen.get() != 3;
        }
        true
    };
    for _ in 0..12 {
        for id in cluster.ids() {
            cluster.node_mut(id).tick();
        }
        cluster.stabilize_filtered(keep);
    }
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    assert_eq!(
        cluster.machines[2].commands().collect::<Vec<_>>(),
        cluster.machines[0].commands().collect::<Vec<_>>()
    );
}

#[test]
fn s7_a_crash_during_install_starts_the_transfer_over_safely() {
    let mut cluster = follower_behind_a_snapshot();
    cluster.heal();
    let delivered = std::cell::Cell::new(0);
    // Let a few chunks through, then crash the receiver mid-transfer.
    cluster.tick_all(1);
    cluster.stabilize_filtered(|m| {
        if is_snapshot_chunk(m) {
            delivered.set(delivered.get() + 1);
            return delivered.get() <= 3;
        }
        true
    });
    cluster.crash(3);
    cluster.restart(3);
    assert_eq!(cluster.node(3).stats().snapshots_installed, 0);
    cluster.tick_all(12);
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    assert_eq!(
        cluster.machines[2].commands().collect::<Vec<_>>(),
        cluster.machines[0].commands().collect::<Vec<_>>()
    );
}

#[test]
fn s7_a_stale_snapshot_never_rolls_a_node_back() {
    let mut cluster = cluster_with_policy(3, 0, 0);
    cluster.campaign(1);
    propose_many(&mut cluster, 1, 5);
    cluster.snapshot(1);
    let meta = cluster.node(1).latest_snapshot().unwrap().clone();
    propose_many(&mut cluster, 1, 5);
    cluster.tick_all(2);
    let before = (cluster.node(2).commit_index(), cluster.node(2).last_index());
    let term = cluster.node(1).term();
    let old = Message {
        from: NodeId(1),
        to: NodeId(2),
        term,
        body: MessageBody::InstallSnapshot {
            meta: Box::new(meta),
            offset: 0,
            data: Bytes::from_static(b"old"),
            last: true,
        },
    };
    cluster.deliver(old);
    cluster.stabilize();
    assert_eq!((cluster.node(2).commit_index(), cluster.node(2).last_index()), before);
    assert_eq!(cluster.node(2).stats().snapshots_installed, 0);
    assert_eq!(cluster.node(1).role(), Role::Leader);
}

#[test]
fn s7_snapshots_are_refused_beyond_the_applied_index_or_when_stale() {
    let mut cluster = cluster_with_policy(3, 0, 0);
    cluster.campaign(1);
    propose_many(&mut cluster, 1, 3);
    let beyond = cluster.node(1).applied_index().next();
    assert!(cluster.node_mut(1).snapshot_created(beyond).is_err());
    let index = cluster.snapshot(1);
    assert!(cluster.node_mut(1).snapshot_created(index).is_err());
}

/// Issue 19, item 5, and the adversarial review's first finding: a batch that finishes one
/// snapshot must not also start receiving the next (here a new leader's, in a later term).
/// Otherwise the batch's chunks would hold the finished snapshot's last chunk and then the next
/// one's first, and a driver that installs what it staged would install a lone first chunk
/// ("snapshot holds no simulator state"). The core refuses the next snapshot's chunk until the
/// installing batch is handed out; the leader sends it again.
#[test]
fn a_batch_that_installs_a_snapshot_holds_no_chunk_of_the_next() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let term = cluster.node(1).term();
    let membership = cluster.node(3).membership().clone();
    let first = raft_core::SnapshotMeta {
        index: LogIndex(10),
        term,
        membership: membership.clone(),
        membership_index: LogIndex(1),
    };
    let next = raft_core::SnapshotMeta {
        index: LogIndex(20),
        term: term.next(),
        membership,
        membership_index: LogIndex(1),
    };
    let chunk = |from: u64, term, meta: &raft_core::SnapshotMeta, data: &'static [u8], last| Message {
        from: NodeId(from),
        to: NodeId(3),
        term,
        body: MessageBody::InstallSnapshot {
            meta: Box::new(meta.clone()),
            offset: 0,
            data: Bytes::from_static(data),
            last,
        },
    };
    let follower = cluster.node_mut(3);
    follower.step(chunk(1, term, &first, b"whole", true)).unwrap();
    follower.step(chunk(2, term.next(), &next, b"start", false)).unwrap();
    let ready = follower.ready();
    assert_eq!(ready.snapshot_installed.as_ref(), Some(&first));
    let chunks: Vec<(LogIndex, bool)> =
        ready.snapshot_chunks.iter().map(|c| (c.meta.index, c.last)).collect();
    assert_eq!(chunks, [(LogIndex(10), true)]);
    assert_eq!(cluster.node(3).stats().snapshot_chunks_deferred, 1);
}
