//! Tests that kill mutants `cargo mutants` found surviving in `node/replication.rs` and
//! `node/reads.rs` (the sixth campaign of `raft-core/MUTANTS.md`): replication on the
//! leader's side, the ReadIndex rounds and forwarded reads. Each names the mutant it kills: the
//! function and the change, as cargo-mutants prints it.

mod common;

use raft_core::{Bytes, LogIndex, MembershipChange, NodeId, ProposeError};

/// `replication.rs:22:32: replace += with *= in RaftNode::append_protocol_entry`: the entry a
/// leader appends by itself to leave a joint configuration (thesis §4.3) counts in its
/// uncommitted window like a proposal. The mutant leaves it out (`0 * size` when the window was
/// empty as the joint entry committed), so the leader takes a proposal as if its window were
/// empty ("one entry always fits into an empty window") while `C_new` is still uncommitted.
#[test]
fn the_entry_leaving_a_joint_configuration_counts_in_the_uncommitted_window() {
    let configs = (1..=3)
        .map(|id| {
            let mut config = common::config(id);
            config.uncommitted_bytes_max = 1000;
            config
        })
        .collect();
    let mut cluster = common::TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(2);
    let expected = cluster.node(1).membership_index();
    let voters = [1, 2].map(NodeId).into_iter().collect();
    cluster.node_mut(1).change_membership(MembershipChange::ReplaceVoters(voters), expected).unwrap();
    assert!(cluster.node(1).membership().is_joint());
    // Deliver until the joint entry commits and the leader appends the entry that leaves it;
    // then nothing more, so that entry stays uncommitted.
    cluster.flush();
    while cluster.node(1).membership().is_joint() {
        let message = cluster.network.pop_front().expect("the joint configuration commits");
        cluster.deliver(message);
        cluster.flush_except(1);
    }
    assert!(cluster.node(1).commit_index() < cluster.node(1).last_index());
    static BIG: [u8; 1000] = [7; 1000];
    let proposed = cluster.node_mut(1).propose(Bytes::from_static(&BIG));
    assert_eq!(proposed, Err(ProposeError::TooManyUncommitted), "the window counted C_new as empty");
}

/// `replication.rs:131:32: replace > with == / < in RaftNode::handle_append_response`: an
/// acknowledgement past the commit index commits at once, in the `step` that brings it (§5.3:
/// the leader commits as soon as a majority stores the entry). Both mutants leave the commit
/// to the leader's next `advance`, which commits only because the leader's own entries became
/// durable again (`stable > committed`): a driver that steps several answers before its next
/// `Ready`, or whose leader has nothing new to persist, hands committed entries out late.
#[test]
fn a_majority_acknowledgement_commits_within_the_step_that_brings_it() {
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let proposed = cluster.node_mut(1).propose(Bytes::from_static(b"x")).unwrap();
    // The leader persists its entry and sends it; the followers store it and answer.
    cluster.flush();
    for message in std::mem::take(&mut cluster.network) {
        cluster.deliver(message);
    }
    cluster.flush_except(1);
    assert_eq!(cluster.node(1).commit_index(), LogIndex(proposed.index.0 - 1));
    let answer = cluster.network.pop_front().expect("a follower's answer");
    assert_eq!(answer.to, NodeId(1));
    cluster.deliver(answer);
    assert_eq!(cluster.node(1).commit_index(), proposed.index, "not committed by the majority's answer");
}

/// `replication.rs:142:46: replace += with *= in RaftNode::handle_append_response`: every
/// rejected AppendEntries is counted in `Stats::append_rejections` (the figure that shows a
/// leader repairing logs, §5.3). The mutant keeps the counter at 0.
#[test]
fn a_rejected_append_is_counted() {
    use raft_core::{AppendOutcome, Message, MessageBody, Term};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.node(1).stats().append_rejections, 0);
    let term = cluster.node(1).term();
    let outcome =
        AppendOutcome::Rejected { rejected_index: LogIndex(1), hint_index: LogIndex(0), hint_term: Term(0) };
    let rejection =
        Message { from: NodeId(2), to: NodeId(1), term, body: MessageBody::AppendResponse { outcome } };
    cluster.node_mut(1).step(rejection).unwrap();
    assert_eq!(cluster.node(1).stats().append_rejections, 1);
}

/// `replication.rs:148:48: replace < with == in RaftNode::handle_append_response`: a follower
/// whose hint is the leader's compaction point itself, with an older term than the snapshot
/// holds there, conflicts at that point and needs the snapshot (§7). The original searches its
/// log for the hint (`find_conflict_by_term`), finds nothing at or below the compaction point
/// with a term that old, and aims below it. The mutant takes the compaction point as the match
/// point: it probes there over and over, the follower rejects each probe with the same hint,
/// and it never catches up.
#[test]
fn a_follower_conflicting_at_the_compaction_point_gets_the_snapshot() {
    use raft_core::{HardState, Restored, Term};
    let configs = (1..=3)
        .map(|id| {
            let mut config = common::config(id);
            config.snapshot_trailing_entries = 2;
            config
        })
        .collect();
    let restored = |terms: &[u64]| Restored {
        hard_state: HardState { term: Term(3), voted_for: None, commit: LogIndex(1) },
        snapshot: None,
        entries: common::entries_with_terms(3, terms),
        applied: LogIndex(0),
    };
    // Nodes 1 and 2 hold terms 1 1 3 3 3; node 3 holds 1 1 2 2 from a deposed leader.
    let restored = vec![restored(&[1, 1, 3, 3, 3]), restored(&[1, 1, 3, 3, 3]), restored(&[1, 1, 2, 2])];
    let mut cluster = common::TestCluster::from_restored(configs, restored);
    cluster.let_restart_leases_lapse();
    cluster.isolate(3);
    cluster.campaign(1);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).commit_index(), LogIndex(6), "the no-op of term 4 at 6 committed");
    // The snapshot at 6 keeps two trailing entries: compacted through 4, of term 3, where
    // node 3 holds an entry of term 2.
    cluster.snapshot(1);
    assert_eq!(cluster.node(1).snapshot_index(), LogIndex(4));
    cluster.heal();
    cluster.tick_all(6);
    assert_eq!(cluster.node(3).stats().snapshots_installed, 1);
    let last = cluster.node(1).last_index();
    assert_eq!(cluster.node(3).last_index(), last);
    assert_eq!(cluster.node(3).term_at(last), cluster.node(1).term_at(last));
    assert_eq!(cluster.node(3).commit_index(), cluster.node(1).commit_index());
}

/// `replication.rs:168:36: replace * with + / with /` and `177:85: replace == with != in
/// RaftNode::handle_heartbeat_response`: a snapshot chunk unanswered for two heartbeat
/// intervals is deemed lost and asked for again at the next heartbeat answer (§7: the leader
/// retries until the follower has the snapshot), and not earlier, while it may still be on its
/// way. Here answers come every tick and the heartbeat interval is 3: the chunk is asked for
/// again 6 ticks after it was sent. `2 + 3` asks a tick early, `2 / 3` (0) at the first answer;
/// `!=` asks on every answer while the chunk is out, and never once it is deemed lost.
#[test]
fn a_lost_snapshot_chunk_is_sent_again_after_two_heartbeat_intervals() {
    use raft_core::{Message, MessageBody};
    use std::cell::Cell;
    let configs = (1..=3)
        .map(|id| {
            let mut config = common::config(id);
            config.heartbeat_interval_ticks = 3;
            config.snapshot_trailing_entries = 0;
            config
        })
        .collect();
    let mut cluster = common::TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(3);
    cluster.isolate(3);
    cluster.propose(1, b"a");
    cluster.propose(1, b"b");
    cluster.snapshot(1);
    assert!(cluster.node(1).snapshot_index() > cluster.node(3).last_index());
    cluster.heal();
    // Every chunk for node 3 is lost; count them.
    let chunks = Cell::new(0);
    let lose_chunks = |m: &Message| {
        let chunk = m.to == NodeId(3) && matches!(m.body, MessageBody::InstallSnapshot { .. });
        chunks.set(chunks.get() + u32::from(chunk));
        !chunk
    };
    // Node 3 answers the next heartbeat; the leader finds its log compacted and sends a chunk.
    for _ in 0..3 {
        cluster.node_mut(1).tick();
        cluster.stabilize_filtered(lose_chunks);
        if chunks.get() > 0 {
            break;
        }
    }
    assert_eq!(chunks.get(), 1, "the first chunk was not sent");
    let term = cluster.node(1).term();
    for waited in 1..=6 {
        cluster.node_mut(1).tick();
        let answer = Message {
            from: NodeId(3),
            to: NodeId(1),
            term,
            body: MessageBody::HeartbeatResponse { context: 0 },
        };
        cluster.deliver(answer);
        cluster.stabilize_filtered(lose_chunks);
        let expected = if waited < 6 { 1 } else { 2 };
        assert_eq!(chunks.get(), expected, "{waited} ticks after the chunk was sent");
    }
}

/// `replication.rs:256:62: replace < with <= in RaftNode::send_appends`: a probing leader sends
/// an empty probe only when it does not know where the follower's log stands (its match point
/// is below the entry before `next_index`). A follower reported unreachable while it holds
/// every entry goes back to probing at its match point: there is nothing to find out and
/// nothing to send, so the leader sends nothing until it has entries (or a heartbeat answer
/// says otherwise). The mutant sends an empty AppendEntries at once.
#[test]
fn an_up_to_date_follower_back_to_probing_is_not_sent_an_empty_probe() {
    use raft_core::Message;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    cluster.propose(1, b"x");
    assert_eq!(cluster.node(2).last_index(), cluster.node(1).last_index());
    cluster.node_mut(1).report_unreachable(NodeId(2));
    let leader = cluster.node_mut(1);
    let messages: Vec<Message> = if leader.has_ready() { leader.ready().messages } else { Vec::new() };
    let appends = messages.iter().filter(|m| m.to == NodeId(2) && common::is_append(m)).count();
    assert_eq!(appends, 0, "{messages:?}");
}

/// `replication.rs:287:26: replace == with != in RaftNode::send_appends`: a replicating
/// follower is sent every AppendEntries its window allows in one go (§5.3, pipelining; thesis
/// §10.2.2), not one per `Ready`. With one entry per message, three proposals made between two
/// batches leave as three messages to each follower; the mutant stops after the first.
#[test]
fn a_replicating_follower_is_sent_its_whole_window_at_once() {
    let configs = (1..=3)
        .map(|id| {
            let mut config = common::config(id);
            config.inflight_messages_max = 4;
            config.entries_per_message_max = 1;
            config
        })
        .collect();
    let mut cluster = common::TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(2);
    for data in [b"a", b"b", b"c"] {
        cluster.node_mut(1).propose(Bytes::from_static(data)).unwrap();
    }
    let messages = cluster.node_mut(1).ready().messages;
    let appends = messages.iter().filter(|m| m.to == NodeId(2) && common::is_append(m)).count();
    assert_eq!(appends, 3, "{messages:?}");
}

/// A voter restored from a bootstrap that follows leader 2 in term 2 (a heartbeat told it).
fn follower_of_node_2() -> raft_core::RaftNode {
    use raft_core::{Membership, Message, MessageBody, RaftNode, Term};
    let membership = Membership::with_voters([1, 2, 3].map(NodeId));
    let mut node = RaftNode::new(common::config(1), raft_core::bootstrap(membership)).unwrap();
    let heartbeat = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(2),
        body: MessageBody::Heartbeat { commit: LogIndex(1), context: 0 },
    };
    node.step(heartbeat).unwrap();
    assert_eq!(node.leader(), Some(NodeId(2)));
    node
}

/// `reads.rs:25:28: replace match guard self.forwarded_reads.len() >= PENDING_READS_MAX with
/// false in RaftNode::read`: a follower holds at most `PENDING_READS_MAX` forwarded reads, as a
/// leader holds at most that many waiting ones; the next is refused with `TooManyPending`
/// (memory stays bounded when the leader does not answer). The mutant forwards it too.
#[test]
fn a_follower_refuses_a_forwarded_read_past_the_bound() {
    use raft_core::reads::PENDING_READS_MAX;
    use raft_core::{ReadError, ReadMode, ReadState};
    let mut node = follower_of_node_2();
    for request_id in 0..PENDING_READS_MAX as u64 {
        node.read(request_id, ReadMode::Linearizable);
    }
    assert_eq!(node.pending_reads(), (0, PENDING_READS_MAX));
    node.read(u64::MAX, ReadMode::Linearizable);
    assert_eq!(node.pending_reads(), (0, PENDING_READS_MAX));
    let ready = node.ready();
    node.advance();
    assert_eq!(
        ready.read_states,
        vec![ReadState { request_id: u64::MAX, result: Err(ReadError::TooManyPending) }]
    );
}
