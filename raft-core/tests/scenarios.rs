//! Scenario tests that read like the Raft paper: each names the section whose rule it shows.

mod common;

use common::{config, entries_with_terms, is_append, TestCluster};
use raft_core::{
    AppendOutcome, Bytes, HardState, LogIndex, Message, MessageBody, NodeId, ProposeError, Restored, Role,
    Term,
};

fn without_pre_vote(size: u64) -> TestCluster {
    TestCluster::with_configs(
        (1..=size)
            .map(|id| {
                let mut c = config(id);
                c.pre_vote = false;
                c.check_quorum = false;
                c
            })
            .collect(),
    )
}

// ----- §5.2 Leader election ------------------------------------------------------------------

#[test]
fn s5_2_followers_that_hear_nothing_elect_exactly_one_leader() {
    let mut cluster = TestCluster::new(5);
    cluster.tick_all(25); // timeouts are drawn from [10, 20) ticks
    let leaders = cluster.leaders();
    assert_eq!(leaders.len(), 1, "one leader, got {leaders:?}");
    let leader = leaders[0];
    let term = cluster.node(leader).term();
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).term(), term);
        assert_eq!(cluster.node(id).leader(), Some(NodeId(leader)));
    }
}

#[test]
fn s5_2_each_server_votes_for_at_most_one_candidate_per_term() {
    let mut cluster = without_pre_vote(3);
    // Nodes 1 and 2 campaign at once in term 2; node 3 hears node 1 first.
    cluster.node_mut(1).campaign();
    cluster.node_mut(2).campaign();
    cluster.flush();
    let mut requests: Vec<Message> = cluster.network.drain(..).collect();
    requests.sort_by_key(|m| (m.to, m.from));
    for request in requests.into_iter().filter(|m| m.to == NodeId(3)) {
        cluster.deliver(request);
        cluster.flush();
    }
    let answers: Vec<(NodeId, bool)> = cluster
        .network
        .iter()
        .filter(|m| m.from == NodeId(3))
        .filter_map(|m| match m.body {
            MessageBody::VoteResponse { granted, .. } => Some((m.to, granted)),
            _ => None,
        })
        .collect();
    assert_eq!(answers, vec![(NodeId(1), true), (NodeId(2), false)]);
    assert_eq!(cluster.node(3).voted_for(), Some(NodeId(1)));
}

#[test]
fn s5_4_1_a_candidate_with_a_stale_log_cannot_win() {
    let mut cluster = without_pre_vote(3);
    cluster.campaign(1);
    cluster.isolate(3);
    cluster.propose(1, b"x");
    cluster.heal();
    cluster.crash(1);
    // Node 3 missed "x"; node 2 holds it and refuses to vote for node 3 (§5.4.1).
    cluster.campaign(3);
    assert_ne!(cluster.node(3).role(), Role::Leader);
    cluster.campaign(2);
    assert_eq!(cluster.node(2).role(), Role::Leader);
}

// ----- §5.3 Log replication ------------------------------------------------------------------

#[test]
fn s5_3_the_leader_replicates_commits_and_every_server_applies_the_same_entries() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    for data in [b"a", b"b", b"c"] {
        cluster.propose(1, data);
    }
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
    cluster.tick_all(2); // a heartbeat carries the commit index to the followers
    let leader_log = cluster.node(1).entries().to_vec();
    for id in [2, 3] {
        assert_eq!(cluster.node(id).entries(), &leader_log[..]);
        assert_eq!(cluster.node(id).commit_index(), cluster.node(1).commit_index());
        assert_eq!(cluster.applied[(id - 1) as usize], cluster.applied[0]);
    }
    assert_eq!(cluster.applied[0].len(), leader_log.len());
}

#[test]
fn s5_3_a_conflicting_follower_suffix_is_replaced_by_the_leaders() {
    // Node 3 holds uncommitted entries of term 2 that nobody else has.
    let configs: Vec<_> = (1..=3).map(config).collect();
    let restored =
        vec![restored_log(&[1, 3, 3], 3), restored_log(&[1, 3, 3], 3), restored_log(&[1, 2, 2, 2, 2], 2)];
    let mut cluster = TestCluster::from_restored(configs, restored);
    cluster.let_restart_leases_lapse();
    cluster.campaign(1);
    cluster.propose(1, b"after");
    assert_eq!(cluster.log_terms(3), cluster.log_terms(1));
    assert_eq!(cluster.log_terms(1), vec![1, 3, 3, 4, 4]);
}

#[test]
fn s5_3_a_stale_or_duplicated_append_never_truncates_the_log() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.propose(1, b"a");
    // Capture an early AppendEntries to node 2, then let later ones through.
    cluster.node_mut(1).propose(Bytes::from_static(b"b")).unwrap();
    cluster.flush();
    let early: Vec<Message> =
        cluster.network.iter().filter(|m| is_append(m) && m.to == NodeId(2)).cloned().collect();
    cluster.stabilize();
    cluster.propose(1, b"c");
    let before = cluster.node(2).entries().to_vec();
    for message in early.clone().into_iter().chain(early) {
        cluster.deliver(message);
    }
    cluster.stabilize();
    assert_eq!(cluster.node(2).entries(), &before[..], "old messages changed nothing");
}

#[test]
fn s5_3_a_follower_diverging_by_many_entries_is_repaired_in_few_round_trips() {
    // Node 3 was leader of term 2 and appended 150 entries that never committed; nodes 1 and 2
    // moved on in term 3 with 100 entries of their own.
    let mut terms_13 = vec![1];
    terms_13.extend(std::iter::repeat_n(3, 100));
    let mut terms_3 = vec![1];
    terms_3.extend(std::iter::repeat_n(2, 150));
    let configs: Vec<_> = (1..=3).map(config).collect();
    let restored = vec![restored_log(&terms_13, 3), restored_log(&terms_13, 3), restored_log(&terms_3, 3)];
    let mut cluster = TestCluster::from_restored(configs, restored);
    cluster.let_restart_leases_lapse();
    cluster.campaign(1);
    cluster.propose(1, b"x");
    assert_eq!(cluster.log_terms(3), cluster.log_terms(1));
    let rejections = cluster
        .delivered
        .iter()
        .filter(|m| m.from == NodeId(3))
        .filter(|m| matches!(m.body, MessageBody::AppendResponse { outcome: AppendOutcome::Rejected { .. } }))
        .count();
    // One term to skip means one rejection, not 150.
    assert!(rejections <= 2, "{rejections} rejections");
}

// ----- §5.4 Safety ---------------------------------------------------------------------------

#[test]
fn s5_4_2_figure_8_a_leader_never_commits_an_earlier_terms_entry_by_counting_replicas() {
    // Five servers, no pre-vote, one entry per message so replication can be stopped midway.
    let configs: Vec<_> = (1..=5)
        .map(|id| {
            let mut c = config(id);
            c.pre_vote = false;
            c.check_quorum = false;
            c.entries_per_message_max = 1;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    // (a) S1 leads term 2 and replicates entry 3 to S2 only.
    cluster.campaign(1);
    assert_eq!(cluster.node(1).term(), Term(2));
    cluster.node_mut(1).propose(Bytes::from_static(b"term-2 entry")).unwrap();
    cluster.stabilize_filtered(|m| !is_append(m) || m.to == NodeId(2));
    assert_eq!(cluster.node(2).last_index(), LogIndex(3));
    cluster.crash(1);
    // (b) S5 wins term 3 with votes from S3 and S4, appends at index 3, and crashes.
    cluster.node_mut(5).campaign();
    cluster.stabilize_filtered(|m| !is_append(m));
    assert_eq!(cluster.node(5).role(), Role::Leader);
    assert_eq!(cluster.node(5).term_at(LogIndex(3)), Some(Term(3)));
    cluster.crash(5);
    // (c) S1 restarts, leads term 4 and replicates index 3 (term 2) to S3 and S4, but not yet
    // its own no-op at index 4.
    cluster.restart(1);
    let holds_index_4 = |m: &Message| match &m.body {
        MessageBody::AppendEntries { entries, .. } => entries.iter().any(|e| e.index == LogIndex(4)),
        _ => false,
    };
    // S1's first probe to S3 and S4 carries index 4 after index 3, which they lack: it fails
    // and lets S1 back up. Every later message carrying index 4 is held back.
    let probed = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let keep = |m: &Message| !holds_index_4(m) || (m.to != NodeId(2) && probed.borrow_mut().insert(m.to));
    // Its first try is for term 3, where S3 and S4 already voted; the second is for term 4.
    for _ in 0..2 {
        cluster.node_mut(1).campaign();
        cluster.stabilize_filtered(keep);
    }
    assert_eq!(cluster.node(1).role(), Role::Leader);
    assert_eq!(cluster.node(1).term(), Term(4));
    let holders =
        [1, 2, 3, 4].iter().filter(|&&id| cluster.node(id).term_at(LogIndex(3)) == Some(Term(2))).count();
    assert!(holders >= 3, "index 3 (term 2) is on a majority");
    // The entry is on a majority, yet not committed: S5 could still win and overwrite it.
    assert_eq!(cluster.node(1).commit_index(), LogIndex(2));
    // (e) Once S1's own term-4 entry is on a majority, both commit together. (A heartbeat round
    // makes S1 resend what was held back.)
    cluster.tick_all(3);
    assert_eq!(cluster.node(1).commit_index(), LogIndex(4));
}

#[test]
fn s5_4_commit_index_never_decreases() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let mut seen = [LogIndex(0); 3];
    for round in 0..20u64 {
        if round % 5 == 0 {
            cluster.isolate(round % 3 + 1);
        }
        if let Some(&leader) = cluster.leaders().first() {
            let _ = cluster.node_mut(leader).propose(Bytes::from(round.to_le_bytes().to_vec()));
        }
        cluster.tick_all(3);
        if round % 5 == 4 {
            cluster.heal();
        }
        for id in cluster.ids() {
            let commit = cluster.node(id).commit_index();
            assert!(commit >= seen[(id - 1) as usize]);
            seen[(id - 1) as usize] = commit;
        }
    }
}

// ----- persistence (§5.1, Figure 2) ----------------------------------------------------------

#[test]
fn s5_1_term_vote_and_log_survive_a_crash() {
    let mut cluster = without_pre_vote(3);
    // Node 1's request reaches node 2 only; node 2 votes for it in term 2.
    cluster.node_mut(1).campaign();
    cluster.stabilize_filtered(|m| m.to != NodeId(3) && m.from != NodeId(3));
    assert_eq!(cluster.node(2).voted_for(), Some(NodeId(1)));
    cluster.crash(2);
    cluster.restart(2);
    assert_eq!(cluster.node(2).term(), Term(2));
    assert_eq!(cluster.node(2).voted_for(), Some(NodeId(1)), "the vote was persisted before it was sent");
    // Node 3 campaigns in term 2 as well; the restarted node 2 must not vote twice.
    cluster.node_mut(3).campaign();
    cluster.flush();
    let request = cluster.network.iter().find(|m| m.from == NodeId(3) && m.to == NodeId(2)).cloned().unwrap();
    assert_eq!(request.term, Term(2));
    cluster.network.clear();
    cluster.deliver(request);
    cluster.flush();
    let granted = cluster
        .network
        .iter()
        .any(|m| m.from == NodeId(2) && matches!(m.body, MessageBody::VoteResponse { granted: true, .. }));
    assert!(!granted);
}

#[test]
fn s5_1_a_whole_cluster_restarts_from_disk_with_its_committed_log() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    for data in [b"a", b"b"] {
        cluster.propose(1, data);
    }
    cluster.tick_all(2);
    let log = cluster.node(1).entries().to_vec();
    let commit = cluster.node(1).commit_index();
    for id in cluster.ids() {
        cluster.crash(id);
        cluster.restart(id);
    }
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).entries(), &log[..]);
        assert_eq!(cluster.node(id).commit_index(), commit);
    }
    cluster.tick_all(40);
    assert_eq!(cluster.leaders().len(), 1);
    // The restarted nodes apply the committed entries again (state machines are in memory here).
    cluster.tick_all(2);
    assert!(cluster.applied.iter().all(|a| a.len() as u64 >= commit.0));
}

// ----- thesis §9.6 pre-vote and §6.2 check-quorum --------------------------------------------

#[test]
fn thesis_9_6_pre_vote_keeps_a_rejoining_server_from_disrupting_the_leader() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let term = cluster.node(1).term();
    cluster.isolate(3);
    for _ in 0..100 {
        cluster.tick(3);
    }
    assert_eq!(cluster.node(3).term(), term, "failed pre-votes do not raise the term");
    assert!(cluster.node(3).stats().pre_votes_started > 0);
    cluster.heal();
    cluster.tick_all(30);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).term(), term);
}

#[test]
fn thesis_9_6_without_pre_vote_the_same_server_does_disrupt() {
    let mut cluster = without_pre_vote(3);
    cluster.campaign(1);
    let term = cluster.node(1).term();
    cluster.isolate(3);
    for _ in 0..100 {
        cluster.tick(3);
    }
    assert!(cluster.node(3).term() > term);
    cluster.heal();
    cluster.tick_all(3);
    assert!(cluster.node(1).term() > term, "the leader was deposed by the higher term");
}

#[test]
fn thesis_6_2_check_quorum_makes_an_isolated_leader_step_down() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.isolate(1);
    for _ in 0..cluster.node(1).config().election_timeout_ticks * 2 {
        cluster.tick(1);
    }
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 1);
}

/// Thesis §6.2 counts the election timeout from the leader's last contact with a majority,
/// whatever the phase of its own timers: cut off at any tick of its term, the leader steps down
/// exactly one election timeout after the last answers it got, never later (a once-per-timeout
/// round check would let it lead on, unheard, for up to two timeouts).
#[test]
fn thesis_6_2_a_cut_off_leader_steps_down_one_election_timeout_after_its_last_answers() {
    let timeout = config(1).election_timeout_ticks;
    for phase in 0..timeout {
        let mut cluster = TestCluster::new(3);
        cluster.campaign(1);
        cluster.tick_all(timeout + phase);
        assert_eq!(cluster.leaders(), vec![1]);
        // With itself, either follower is a majority: the latest answer is the one that counts.
        let since = cluster.node(1).follower_progress().map(|p| p.ticks_since_contact).min().unwrap();
        let last_answer = cluster.node(1).ticks() - since;
        cluster.isolate(1);
        let mut stepped_down_after = None;
        for _ in 0..2 * timeout {
            cluster.tick(1);
            if cluster.node(1).role() != Role::Leader {
                stepped_down_after = Some(cluster.node(1).ticks() - last_answer);
                break;
            }
        }
        assert_eq!(
            stepped_down_after,
            Some(timeout),
            "cut off {phase} ticks into a round, the leader stepped down after {stepped_down_after:?} ticks"
        );
        assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 1);
    }
}

#[test]
fn thesis_4_2_3_followers_ignore_vote_requests_while_they_hear_from_a_leader() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(1);
    let term = cluster.node(2).term();
    // A request for a higher term, as a removed or partitioned server would send.
    let request = Message {
        from: NodeId(3),
        to: NodeId(2),
        term: term.next(),
        body: MessageBody::VoteRequest {
            kind: raft_core::VoteKind::Vote,
            reason: raft_core::CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(100),
            last_log_term: term,
        },
    };
    cluster.node_mut(2).step(request).unwrap();
    assert_eq!(cluster.node(2).term(), term);
    assert_eq!(cluster.node(2).stats().votes_ignored_in_lease, 1);
}

#[test]
fn a_partitioned_old_leader_with_a_stale_log_rejoins_as_follower() {
    let mut cluster = TestCluster::new(5);
    cluster.campaign(1);
    cluster.isolate(1);
    // The old leader still takes proposals it can never commit.
    for data in [b"lost-1", b"lost-2"] {
        cluster.node_mut(1).propose(Bytes::from_static(data)).unwrap();
    }
    cluster.stabilize();
    // The others' leases on node 1 run out and they elect one of themselves.
    cluster.tick_all(25);
    let new_leader = *cluster.leaders().iter().find(|&&id| id != 1).expect("a new leader");
    cluster.propose(new_leader, b"kept");
    cluster.heal();
    cluster.tick_all(25);
    let leaders = cluster.leaders();
    assert_eq!(leaders.len(), 1);
    let leader = leaders[0];
    assert_ne!(leader, 1);
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert_eq!(cluster.log_terms(1), cluster.log_terms(leader));
    let payloads: Vec<_> = cluster.node(1).entries().iter().map(|e| format!("{:?}", e.payload)).collect();
    assert!(payloads.iter().all(|p| !p.contains("lost")), "uncommitted entries of the old term are gone");
}

// ----- client-facing rules -------------------------------------------------------------------

#[test]
fn a_proposal_to_a_follower_is_refused_with_the_leaders_id() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    let refused = cluster.node_mut(2).propose(Bytes::from_static(b"x"));
    assert_eq!(refused, Err(ProposeError::NotLeader { leader: Some(NodeId(1)) }));
    let fresh = TestCluster::new(3).node_mut(2).propose(Bytes::from_static(b"x"));
    assert_eq!(fresh, Err(ProposeError::NotLeader { leader: None }));
}

#[test]
fn few_messages_elect_a_leader_and_commit_an_entry() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    // Pre-vote and vote: a request and an answer each, to each of the two others.
    let election = ["PreVote", "PreVoteResponse", "RequestVote", "RequestVoteResponse"]
        .iter()
        .map(|kind| cluster.count_delivered(kind))
        .sum::<usize>();
    assert_eq!(election, 8);
    let before = cluster.delivered.len();
    cluster.propose(1, b"x");
    let commit = &cluster.delivered[before..];
    assert_eq!(commit.len(), 4, "two AppendEntries and two answers: {commit:?}");
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
}

fn restored_log(terms: &[u64], term: u64) -> Restored {
    Restored {
        hard_state: HardState { term: Term(term), voted_for: None, commit: LogIndex(1) },
        snapshot: None,
        entries: entries_with_terms(3, terms),
        applied: LogIndex(0),
    }
}

#[test]
fn observers_see_role_and_leader_changes_as_events_and_a_status() {
    let mut cluster = TestCluster::new(3);
    cluster.node_mut(1).campaign();
    let mut events = Vec::new();
    for _ in 0..6 {
        let node = cluster.node_mut(1);
        let ready = node.ready();
        node.advance();
        events.extend(ready.events);
        cluster.network.extend(ready.messages);
        cluster.network.extend(ready.messages_after_persist);
        while let Some(message) = cluster.network.pop_front() {
            cluster.deliver(message);
            cluster.flush_except(1);
        }
    }
    let roles: Vec<Role> = events
        .iter()
        .filter_map(|e| match e {
            raft_core::RaftEvent::RoleChanged { role, .. } => Some(*role),
            _ => None,
        })
        .collect();
    assert_eq!(roles, vec![Role::PreCandidate, Role::Candidate, Role::Leader]);
    assert!(events.contains(&raft_core::RaftEvent::LeaderChanged { leader: Some(NodeId(1)), term: Term(2) }));
    let status = cluster.node(1).status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.followers.len(), 2);
    assert_eq!(status.membership.voters.len(), 3);
}

#[test]
fn thesis_10_2_1_a_leader_replicates_while_its_own_batch_is_being_persisted() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(1);
    cluster.node_mut(1).propose(Bytes::from_static(b"a")).unwrap();
    // The leader's batch is out to disk (not yet advanced) when a second proposal arrives.
    let ready = cluster.node_mut(1).ready();
    cluster.network.extend(ready.messages);
    cluster.node_mut(1).propose(Bytes::from_static(b"b")).unwrap();
    let early = cluster.node_mut(1).take_messages();
    assert!(!early.is_empty(), "the second entry goes out without waiting for the disk");
    assert!(early.iter().all(|m| matches!(m.body, MessageBody::AppendEntries { .. })));
    assert!(cluster.node(1).commit_index() < cluster.node(1).last_index(), "nothing counted before persist");
    cluster.network.extend(early);
    cluster.node_mut(1).advance();
    cluster.stabilize();
    assert_eq!(cluster.node(1).commit_index(), cluster.node(1).last_index());
}
