//! Leases and the voters that make them hold (thesis §6.4.1, §4.2.3, §3.10, §9.6), and who may
//! speak to a node at all (issue 11: terms that cannot be followed, non-members).
//!
//! Each test is a scenario that broke a lease read, deposed a working leader or ended the
//! cluster before the fix it guards.

mod common;

use common::{config, TestCluster};
use raft_core::{
    CampaignReason, HardState, LogIndex, Message, MessageBody, NodeId, RaftNode, ReadMode, Restored, Role,
    StepError, Term, VoteKind,
};

fn election_timeout(cluster: &TestCluster) -> u64 {
    cluster.node(1).config().election_timeout_ticks
}

fn elected(size: u64) -> TestCluster {
    let mut cluster = TestCluster::new(size);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

/// Asks node `id` for a lease read and returns the index it answers with, if any.
fn lease_read(cluster: &mut TestCluster, id: u64) -> Option<LogIndex> {
    let node = cluster.node_mut(id);
    node.read(77, ReadMode::Lease);
    let ready = node.ready();
    node.advance();
    ready.read_states.iter().find(|s| s.request_id == 77).and_then(|s| s.result.ok())
}

fn vote_request(
    from: u64,
    to: u64,
    term: Term,
    kind: VoteKind,
    reason: CampaignReason,
    last: (u64, u64),
) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term,
        body: MessageBody::VoteRequest {
            kind,
            reason,
            last_log_index: LogIndex(last.0),
            last_log_term: Term(last.1),
        },
    }
}

// ----- leases and transfers (issue 10, defect 2) ---------------------------------------------

/// Thesis §3.10, §6.4.1: a transfer whose TimeoutNow was sent is abandoned; the TimeoutNow
/// arrives late and its election overrides the followers' leases; the new leader commits a
/// write. The old leader must not answer a lease read that misses it.
#[test]
fn thesis_3_10_a_lease_is_forfeited_once_timeout_now_was_sent_even_if_the_transfer_is_abandoned() {
    let mut cluster = elected(3);
    let timeout = election_timeout(&cluster);
    assert!(cluster.node(1).lease_is_valid());
    cluster.node_mut(1).transfer_leadership(Some(NodeId(2))).expect("transfer starts");
    cluster.flush();
    let held: Vec<Message> =
        cluster.network.iter().filter(|m| matches!(m.body, MessageBody::TimeoutNow)).cloned().collect();
    assert_eq!(held.len(), 1, "the target is caught up: TimeoutNow goes at once");
    cluster.network.retain(|m| !matches!(m.body, MessageBody::TimeoutNow));
    // The transfer is given up after an election timeout; heartbeats keep flowing meanwhile.
    cluster.tick_all(timeout);
    assert_eq!(cluster.node(1).transfer_target(), None, "the transfer was abandoned");
    assert_eq!(cluster.leaders(), vec![1]);
    let old_term = cluster.node(1).term();
    // Node 1 is cut off; the TimeoutNow it sent long ago arrives now.
    cluster.isolate(1);
    for message in held {
        // Sent before the cut: it was already on the wire.
        cluster.node_mut(2).step(message).expect("a TimeoutNow from the leader node 2 follows");
    }
    cluster.stabilize();
    assert_eq!(cluster.node(2).role(), Role::Leader, "the late TimeoutNow won an election");
    assert!(cluster.node(2).term() > old_term);
    let write = cluster.propose(2, b"w").index;
    assert!(cluster.node(2).commit_index() >= write, "the new leader committed the write");
    // Node 1 still believes it leads. Its lease must be gone.
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert!(!cluster.node(1).lease_is_valid());
    if let Some(index) = lease_read(&mut cluster, 1) {
        assert!(index >= write, "lease read at {index} misses the write committed at {write}");
    }
}

/// ReadIndex still works after the lease is forfeited: the leader is not stuck.
#[test]
fn thesis_3_10_after_an_abandoned_transfer_reads_fall_back_to_read_index() {
    let mut cluster = elected(3);
    let timeout = election_timeout(&cluster);
    cluster.node_mut(1).transfer_leadership(Some(NodeId(2))).expect("transfer starts");
    cluster.flush();
    cluster.network.retain(|m| !matches!(m.body, MessageBody::TimeoutNow));
    cluster.tick_all(timeout);
    assert!(!cluster.node(1).lease_is_valid());
    cluster.node_mut(1).read(5, ReadMode::Lease);
    // The read waits for a heartbeat round instead of answering from the lease.
    let ready = cluster.node_mut(1).ready();
    assert!(ready.read_states.is_empty(), "no answer without a round");
    cluster.network.extend(ready.messages);
    cluster.network.extend(ready.messages_after_persist);
    cluster.node_mut(1).advance();
    let mut answered = Vec::new();
    for _ in 0..20 {
        let Some(message) = cluster.network.pop_front() else { break };
        cluster.deliver(message);
        cluster.flush_except(1);
        let node = cluster.node_mut(1);
        let ready = node.ready();
        node.advance();
        answered.extend(ready.read_states);
        cluster.network.extend(ready.messages);
        cluster.network.extend(ready.messages_after_persist);
    }
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].result, Ok(cluster.node(1).commit_index()));
}

// ----- leases and restarts (issue 10, defect 3) ----------------------------------------------

/// Thesis §6.4.1 with clocks at the drift bound: node 3 answers the leader's round and restarts
/// at once, with a clock that runs `clock_drift_ticks_max` per election timeout fast. Node 5,
/// long cut off from the leader, campaigns at every tick; node 4 (also cut off) would vote for
/// it. While the old leader's lease is valid, nobody else may become leader.
#[test]
fn thesis_6_4_1_a_restarted_voter_keeps_quiet_for_an_election_timeout_with_clocks_at_the_drift_bound() {
    let mut cluster = elected(5);
    let timeout = election_timeout(&cluster);
    let drift = cluster.node(1).config().clock_drift_ticks_max;
    for other in [4, 5] {
        cluster.cut.insert((1, other));
        cluster.cut.insert((other, 1));
    }
    // 4 and 5 stop hearing from the leader; 2 and 3 still do and refuse their pre-votes.
    cluster.tick_all(3 * timeout);
    assert_eq!(cluster.leaders(), vec![1]);
    let term = cluster.node(1).term();
    // A round the leader sends now is answered by 2 and 3: with itself, a majority.
    cluster.node_mut(1).read(1, ReadMode::Linearizable);
    cluster.stabilize();
    assert!(cluster.node(1).lease_is_valid());
    cluster.crash(3);
    cluster.restart(3);
    cluster.isolate(1);
    let mut node3_ticks = 0;
    let mut lease_seen = 0;
    for step in 1..=3 * timeout {
        cluster.node_mut(1).tick();
        for id in [2, 4, 5] {
            cluster.node_mut(id).tick();
        }
        // Node 3 counts an election timeout in `timeout - drift` of the leader's ticks, each
        // tick as early as it may: exactly at the bound.
        let due = (step * timeout).div_ceil(timeout - drift);
        while node3_ticks < due {
            cluster.node_mut(3).tick();
            node3_ticks += 1;
        }
        if cluster.node(5).role() != Role::Leader {
            cluster.node_mut(5).campaign();
        }
        cluster.stabilize();
        if cluster.node(1).lease_is_valid() {
            lease_seen += 1;
            let others: Vec<u64> = cluster.leaders().into_iter().filter(|&id| id != 1).collect();
            assert!(others.is_empty(), "step {step}: {others:?} leads while node 1's lease is valid");
        }
    }
    assert!(lease_seen > 0, "the lease was exercised");
    let others: Vec<u64> = cluster.leaders().into_iter().filter(|&id| id != 1).collect();
    assert!(!others.is_empty(), "the others elect a leader once the quiet period is over");
    assert!(cluster.node(others[0]).term() > term);
}

/// A restarted voter still campaigns for itself on its own timer, and a whole cluster
/// restarted at once elects within a bound.
#[test]
fn thesis_6_4_1_a_whole_cluster_restarted_at_once_elects_within_three_election_timeouts() {
    let mut cluster = elected(3);
    let timeout = election_timeout(&cluster);
    let write = cluster.propose(1, b"x").index;
    for id in 1..=3 {
        cluster.crash(id);
    }
    for id in 1..=3 {
        cluster.restart(id);
    }
    let mut elected_after = None;
    for tick in 1..=3 * timeout {
        cluster.tick_all(1);
        if !cluster.leaders().is_empty() {
            elected_after = Some(tick);
            break;
        }
    }
    let elected_after = elected_after.expect("a leader within three election timeouts");
    assert!(elected_after >= timeout, "nobody votes in its first election timeout");
    let leader = cluster.leaders()[0];
    cluster.tick_all(2);
    assert!(cluster.node(leader).commit_index() >= write);
}

/// A freshly bootstrapped node never acknowledged a leader: it votes at once.
#[test]
fn a_freshly_bootstrapped_cluster_elects_without_waiting() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(2);
    assert_eq!(cluster.leaders(), vec![2]);
}

// ----- pre-vote without check-quorum (thesis §9.6) -------------------------------------------

/// Thesis §9.6: a server refuses a pre-vote while it hears from a leader, even without
/// check-quorum, so a server cut off from the leader alone cannot depose it.
#[test]
fn thesis_9_6_pre_votes_are_refused_while_a_leader_is_heard_without_check_quorum() {
    let configs = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.check_quorum = false;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(2);
    let term = cluster.node(1).term();
    // Node 3 loses the leader but still reaches node 2.
    cluster.cut.insert((1, 3));
    cluster.cut.insert((3, 1));
    let timeout = election_timeout(&cluster);
    cluster.tick_all(4 * timeout);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).term(), term, "the working leader was not deposed");
    assert!(cluster.node(2).stats().votes_ignored_in_lease > 0);
}

// ----- terms that cannot be followed (issue 11, item 3) --------------------------------------

#[test]
fn a_message_with_term_u64_max_is_refused_and_counted() {
    let mut cluster = TestCluster::new(3);
    let before = cluster.node(2).term();
    let message = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(u64::MAX),
        body: MessageBody::Heartbeat { commit: LogIndex(0), context: 0 },
    };
    assert_eq!(cluster.node_mut(2).step(message), Err(StepError::TermExhausted));
    assert_eq!(cluster.node(2).term(), before);
    assert_eq!(cluster.node(2).stats().messages_term_exhausted, 1);
    // The cluster still elects.
    cluster.campaign(1);
    assert_eq!(cluster.leaders(), vec![1]);
}

#[test]
fn a_node_at_the_last_term_never_campaigns_past_it() {
    let mut restored = raft_core::bootstrap(raft_core::Membership::with_voters([NodeId(1), NodeId(2)]));
    restored.hard_state.term = Term::LAST;
    let mut node = RaftNode::new(config(1), restored).expect("the last term is usable");
    for _ in 0..100 {
        node.tick();
    }
    node.campaign();
    assert_eq!(node.term(), Term::LAST);
    assert_eq!(node.role(), Role::Follower);
    assert!(node.stats().campaigns_refused_term_exhausted > 0);
    let ready = node.ready();
    assert!(ready.messages.is_empty() && ready.messages_after_persist.is_empty());
}

#[test]
fn a_stored_term_of_u64_max_is_refused_at_start() {
    let mut restored = raft_core::bootstrap(raft_core::Membership::with_voters([NodeId(1)]));
    restored.hard_state = HardState { term: Term(u64::MAX), ..restored.hard_state };
    assert!(RaftNode::new(config(1), restored).is_err());
}

// ----- non-members (issue 11, item 3; thesis §4.1, §4.2.3) -----------------------------------

#[test]
fn a_vote_request_from_a_non_member_with_a_stale_log_is_dropped_without_raising_the_term() {
    let mut cluster = TestCluster::new(3);
    let before = cluster.node(2).term();
    let request =
        vote_request(9, 2, Term(before.0 + 5), VoteKind::Vote, CampaignReason::ElectionTimeout, (0, 0));
    assert_eq!(cluster.node_mut(2).step(request), Err(StepError::NotAMember { from: NodeId(9) }));
    assert_eq!(cluster.node(2).term(), before);
    assert_eq!(cluster.node(2).stats().messages_from_non_members, 1);
}

#[test]
fn a_vote_response_from_a_non_member_is_dropped() {
    let mut cluster = TestCluster::new(3);
    cluster.node_mut(1).campaign();
    let term = cluster.node(1).term();
    let response = Message {
        from: NodeId(9),
        to: NodeId(1),
        term: Term(term.0 + 3),
        body: MessageBody::VoteResponse { kind: VoteKind::PreVote, granted: false },
    };
    assert_eq!(cluster.node_mut(1).step(response), Err(StepError::NotAMember { from: NodeId(9) }));
    assert_eq!(cluster.node(1).term(), term);
    assert_eq!(cluster.node(1).role(), Role::PreCandidate);
}

#[test]
fn a_higher_term_answer_from_a_non_member_does_not_depose_a_leader() {
    let mut cluster = elected(3);
    let term = cluster.node(1).term();
    let answer = Message {
        from: NodeId(9),
        to: NodeId(1),
        term: Term(term.0 + 1),
        body: MessageBody::HeartbeatResponse { context: 0 },
    };
    assert_eq!(cluster.node_mut(1).step(answer), Err(StepError::NotAMember { from: NodeId(9) }));
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert_eq!(cluster.node(1).term(), term);
}

/// A non-member's transfer flag is no reason to skip the lease: only the leader's TimeoutNow
/// to one of its voters forfeits it.
#[test]
fn a_non_members_transfer_flagged_vote_request_does_not_skip_the_lease() {
    let mut cluster = elected(3);
    let term = cluster.node(2).term();
    let (last_index, last_term) = (cluster.node(2).last_index().0, cluster.node(2).last_term().0);
    let request = vote_request(
        9,
        2,
        Term(term.0 + 1),
        VoteKind::Vote,
        CampaignReason::LeadershipTransfer,
        (last_index + 10, last_term),
    );
    let ignored = cluster.node(2).stats().votes_ignored_in_lease;
    assert_eq!(cluster.node_mut(2).step(request), Ok(()));
    assert_eq!(cluster.node(2).term(), term, "the lease held");
    assert_eq!(cluster.node(2).stats().votes_ignored_in_lease, ignored + 1);
    // A member's transfer flag still gets through (the leader forfeited its lease).
    let request = vote_request(
        3,
        2,
        Term(term.0 + 1),
        VoteKind::Vote,
        CampaignReason::LeadershipTransfer,
        (last_index, last_term),
    );
    assert_eq!(cluster.node_mut(2).step(request), Ok(()));
    assert_eq!(cluster.node(2).term(), Term(term.0 + 1));
    assert_eq!(cluster.node(2).voted_for(), Some(NodeId(3)));
}

/// Thesis §4.1: a voter whose configuration lags may be needed to elect a candidate it does not
/// know yet (`{1,2,3}` became `{3,4,5}` while 3 was away; with 5 down only 3 can elect 4). A
/// non-member with an up-to-date log is heard out.
#[test]
fn thesis_4_1_a_lagging_voter_still_votes_for_an_up_to_date_candidate_it_does_not_know() {
    let restored = Restored {
        hard_state: HardState { term: Term(2), voted_for: None, commit: LogIndex(1) },
        snapshot: None,
        entries: common::entries_with_terms(3, &[1, 2]),
        applied: LogIndex(0),
    };
    let mut node = RaftNode::new(config(3), restored).expect("valid");
    for _ in 0..node.config().election_timeout_ticks {
        node.tick();
    }
    let _ = node.ready();
    node.advance();
    let request = vote_request(4, 3, Term(5), VoteKind::Vote, CampaignReason::ElectionTimeout, (9, 4));
    assert_eq!(node.step(request), Ok(()));
    assert_eq!(node.voted_for(), Some(NodeId(4)));
    assert_eq!(node.term(), Term(5));
}

#[test]
fn timeout_now_from_anyone_but_the_leader_is_refused() {
    let mut cluster = elected(3);
    let term = cluster.node(2).term();
    let forged = Message { from: NodeId(3), to: NodeId(2), term, body: MessageBody::TimeoutNow };
    assert!(cluster.node_mut(2).step(forged).is_err());
    let later =
        Message { from: NodeId(1), to: NodeId(2), term: Term(term.0 + 1), body: MessageBody::TimeoutNow };
    assert!(cluster.node_mut(2).step(later).is_err());
    assert_eq!(cluster.node(2).role(), Role::Follower);
    assert_eq!(cluster.node(2).term(), term);
}
