//! Replication keeps moving after any message loss (§5.3, §7): flow control in every state
//! (probe, replicate, snapshot) can make progress again, and a follower whose match point lies
//! in the compacted prefix gets a snapshot instead of an endless probe.
//!
//! Every test here is bounded in ticks and in messages: a regression fails, it never hangs.

mod common;

use common::{config, entries_with_terms, TestCluster};
use raft_core::{
    AppendOutcome, Bytes, HardState, LogIndex, Message, MessageBody, NodeId, ProgressState, Restored,
    SnapshotStatus, Term,
};

/// Delivers queued messages, at most `messages_max` of them, dropping those `keep` refuses.
/// Returns whether the network ran dry (false: the cap was hit).
fn deliver_bounded(cluster: &mut TestCluster, messages_max: usize, keep: impl Fn(&Message) -> bool) -> bool {
    cluster.flush();
    for _ in 0..messages_max {
        let Some(message) = cluster.network.pop_front() else {
            return true;
        };
        if keep(&message) {
            cluster.deliver(message);
        }
        cluster.flush();
    }
    cluster.network.is_empty()
}

/// Ticks the given nodes `ticks` times, delivering a bounded number of messages after each.
fn run_bounded(cluster: &mut TestCluster, nodes: &[u64], ticks: u64) {
    for _ in 0..ticks {
        for &id in nodes {
            cluster.node_mut(id).tick();
        }
        deliver_bounded(cluster, 500, |_| true);
    }
}

fn rejections_from(cluster: &TestCluster, id: u64) -> usize {
    cluster
        .delivered
        .iter()
        .filter(|m| m.from == NodeId(id))
        .filter(|m| matches!(m.body, MessageBody::AppendResponse { outcome: AppendOutcome::Rejected { .. } }))
        .count()
}

fn follower_state(cluster: &TestCluster, leader: u64, follower: u64) -> ProgressState {
    let progress = cluster.node(leader).follower_progress().find(|p| p.id == NodeId(follower));
    progress.expect("the leader tracks the follower").state
}

/// §5.3 and §7: the follower's rejection hint lands exactly on the leader's compaction point,
/// whose term differs from the follower's. The leader must see that the match point lies in
/// the compacted prefix and send a snapshot, not probe the compaction point forever.
#[test]
fn s7_a_rejection_hint_at_the_compaction_point_leads_to_a_snapshot_not_a_probe_loop() {
    let configs = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.snapshot_trailing_entries = 3;
            c
        })
        .collect();
    let restored = |terms: &[u64], term: u64| Restored {
        hard_state: HardState { term: Term(term), voted_for: None, commit: LogIndex(1) },
        snapshot: None,
        entries: entries_with_terms(3, terms),
        applied: LogIndex(0),
    };
    // Nodes 1 and 2 hold terms 1 1 3 3 3; node 3 holds 1 1 2 2 from a deposed leader.
    let restored =
        vec![restored(&[1, 1, 3, 3, 3], 3), restored(&[1, 1, 3, 3, 3], 3), restored(&[1, 1, 2, 2], 3)];
    let mut cluster = TestCluster::from_restored(configs, restored);
    // Restored voters keep quiet for one election timeout (node/lease.rs).
    cluster.let_restart_leases_lapse();
    cluster.isolate(3);
    cluster.campaign(1);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).commit_index(), LogIndex(6), "the no-op of term 4 at 6 committed");
    // The snapshot at 6 keeps three trailing entries: the log is compacted through 3 (term 3).
    cluster.snapshot(1);
    assert_eq!(cluster.node(1).snapshot_index(), LogIndex(3));
    assert_eq!(cluster.node(1).term_at(LogIndex(3)), Some(Term(3)));

    // Node 3 answers the probe at 5 with the hint (4, term 2); the leader's last index with a
    // term <= 2 is compacted away.
    cluster.heal();
    run_bounded(&mut cluster, &[1], 20);
    let rejections = rejections_from(&cluster, 3);
    assert!(rejections <= 3, "{rejections} rejections: the leader probes the compaction point in a loop");
    assert_eq!(cluster.node(1).stats().snapshots_sent, 1);
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    let last = cluster.node(1).last_index();
    assert_eq!(cluster.node(3).last_index(), last);
    assert_eq!(cluster.node(3).term_at(last), cluster.node(1).term_at(last));
    assert_eq!(cluster.node(3).commit_index(), cluster.node(1).commit_index());
}

/// Three voters with a small in-flight window: four AppendEntries of one entry each.
fn small_window_cluster() -> TestCluster {
    let configs = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.inflight_messages_max = 4;
            c.entries_per_message_max = 1;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(follower_state(&cluster, 1, 3), ProgressState::Replicate);
    cluster
}

/// Proposes `count` entries one by one, each followed by a delivery round that loses what
/// `keep` refuses.
fn propose_losing(cluster: &mut TestCluster, count: u64, keep: impl Fn(&Message) -> bool + Copy) {
    for k in 0..count {
        cluster.node_mut(1).propose(Bytes::from(k.to_le_bytes().to_vec())).unwrap();
        assert!(deliver_bounded(cluster, 500, keep));
    }
}

fn to_node_3(message: &Message) -> bool {
    message.to == NodeId(3) && matches!(message.body, MessageBody::AppendEntries { .. })
}

fn answer_from_node_3(message: &Message) -> bool {
    message.from == NodeId(3) && matches!(message.body, MessageBody::AppendResponse { .. })
}

/// §5.3 ("if followers crash or run slowly, or if network packets are lost, the leader retries
/// AppendEntries indefinitely"): a whole in-flight window of AppendEntries to node 3 is lost,
/// then more entries are proposed. The window must not stay full for the rest of the term.
#[test]
fn s5_3_a_lost_full_window_of_appends_does_not_stall_the_follower() {
    let mut cluster = small_window_cluster();
    propose_losing(&mut cluster, 4, |m| !to_node_3(m));
    let stalled = cluster.node(1).follower_progress().find(|p| p.id == NodeId(3)).unwrap();
    assert_eq!(stalled.inflight, 4, "the window is full of lost messages");
    propose_losing(&mut cluster, 4, |_| true);
    assert!(cluster.node(3).last_index() < cluster.node(1).last_index());
    // Within two election timeouts of heartbeats the follower is caught up.
    cluster.tick_all(20);
    assert_eq!(cluster.node(3).last_index(), cluster.node(1).last_index());
    assert_eq!(cluster.node(3).commit_index(), cluster.node(1).commit_index());
    assert_eq!(follower_state(&cluster, 1, 3), ProgressState::Replicate);
}

/// The same, but the AppendEntries arrive and every answer to them is lost.
#[test]
fn s5_3_lost_answers_to_a_full_window_do_not_stall_the_follower() {
    let mut cluster = small_window_cluster();
    propose_losing(&mut cluster, 4, |m| !answer_from_node_3(m));
    propose_losing(&mut cluster, 4, |_| true);
    let match_3 = cluster.node(1).follower_progress().find(|p| p.id == NodeId(3)).unwrap().match_index;
    assert!(match_3 < cluster.node(1).last_index());
    cluster.tick_all(20);
    assert_eq!(cluster.node(3).last_index(), cluster.node(1).last_index());
    let match_3 = cluster.node(1).follower_progress().find(|p| p.id == NodeId(3)).unwrap().match_index;
    assert_eq!(match_3, cluster.node(1).last_index(), "the leader knows it too");
}

/// etcd's ReportUnreachable: the driver says a peer's connection failed; the leader stops
/// pipelining to it and probes from its match point with the next batch, without waiting.
#[test]
fn s5_3_report_unreachable_sends_a_replicating_follower_back_to_probing() {
    let mut cluster = small_window_cluster();
    propose_losing(&mut cluster, 4, |m| !to_node_3(m));
    cluster.node_mut(1).report_unreachable(NodeId(3));
    assert_eq!(follower_state(&cluster, 1, 3), ProgressState::Probe);
    // No tick: the probe goes with the next batch and brings node 3 up to date.
    assert!(deliver_bounded(&mut cluster, 500, |_| true));
    assert_eq!(cluster.node(3).last_index(), cluster.node(1).last_index());
    assert_eq!(follower_state(&cluster, 1, 3), ProgressState::Replicate);
    // Unknown peers and non-leaders ignore the report.
    cluster.node_mut(1).report_unreachable(NodeId(42));
    cluster.node_mut(2).report_unreachable(NodeId(3));
}

/// etcd's ReportSnapshot: the driver could not send a snapshot chunk. The leader gives the
/// transfer up, waits for the follower to answer a heartbeat, and starts the snapshot over.
#[test]
fn s7_report_snapshot_failure_restarts_the_snapshot_after_the_follower_answers() {
    let configs = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.snapshot_trailing_entries = 0;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.isolate(3);
    for k in 0..20u64 {
        cluster.node_mut(1).propose(Bytes::from(k.to_le_bytes().to_vec())).unwrap();
        cluster.stabilize();
    }
    cluster.snapshot(1);
    cluster.heal();
    // The first chunk is lost on the wire, and the driver says so.
    let mut snapshot_started = false;
    for _ in 0..10 {
        cluster.node_mut(1).tick();
        deliver_bounded(&mut cluster, 500, |m| !matches!(m.body, MessageBody::InstallSnapshot { .. }));
        if follower_state(&cluster, 1, 3) == ProgressState::Snapshot {
            snapshot_started = true;
            break;
        }
    }
    assert!(snapshot_started);
    cluster.node_mut(1).report_snapshot(NodeId(3), SnapshotStatus::Failed);
    assert_eq!(follower_state(&cluster, 1, 3), ProgressState::Probe);
    run_bounded(&mut cluster, &[1], 10);
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    assert_eq!(cluster.node(3).last_index(), cluster.node(1).last_index());
}

/// §7 across a change of leader: a partly received snapshot is resumed by offset only from the
/// leader that sent its start. Another leader's snapshot at the same index need not have the
/// same bytes, so the follower asks it to start over.
#[test]
fn s7_a_partial_snapshot_is_not_resumed_from_another_leader() {
    use raft_core::{bootstrap, Membership, RaftNode, SnapshotMeta};
    let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
    let mut node = RaftNode::new(config(3), bootstrap(membership.clone())).unwrap();
    let meta = SnapshotMeta { index: LogIndex(10), term: Term(2), membership, membership_index: LogIndex(1) };
    let chunk = |from: u64, term: u64, offset: u64| Message {
        from: NodeId(from),
        to: NodeId(3),
        term: Term(term),
        body: MessageBody::InstallSnapshot {
            meta: Box::new(meta.clone()),
            offset,
            data: Bytes::from_static(b"abcd"),
            last: false,
        },
    };
    let answers = |node: &mut RaftNode| {
        let ready = node.ready();
        node.advance();
        ready
            .messages
            .into_iter()
            .chain(ready.messages_after_persist)
            .filter_map(|m| match m.body {
                MessageBody::InstallSnapshotResponse { next_offset, done, .. } => Some((next_offset, done)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    node.step(chunk(1, 2, 0)).unwrap();
    assert_eq!(answers(&mut node), vec![(4, false)]);
    // Node 2 leads in term 3 and happens to send a chunk at offset 4 of a snapshot with the
    // same metadata.
    node.step(chunk(2, 3, 4)).unwrap();
    assert_eq!(answers(&mut node), vec![(0, false)], "start over");
    node.step(chunk(2, 3, 0)).unwrap();
    assert_eq!(answers(&mut node), vec![(4, false)]);
}
