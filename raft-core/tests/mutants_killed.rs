//! Tests that kill mutants `cargo mutants` found surviving in the protocol code (see
//! `raft-core/MUTANTS.md` and `scripts/cargo-mutants.sh`). Each names the mutant it kills: the
//! function and the change, as cargo-mutants prints it.

mod common;

use raft_core::quorum::{committed_index, has_quorum, vote_result, VoteResult};
use raft_core::{LogIndex, Membership, NodeId};
use std::collections::BTreeSet;

fn voters(ids: impl IntoIterator<Item = u64>) -> Membership {
    Membership::with_voters(ids.into_iter().map(NodeId))
}

/// `quorum.rs: replace <= with > in majority_committed`: clusters of more than 16 voters take
/// the heap path; the mutant sends them to the 16-slot stack array (a panic) and small ones to
/// the heap (same answer). Only a large cluster tells.
#[test]
fn a_seventeen_voter_commit_is_the_median() {
    let membership = voters(1..=17);
    // Voter k stores up to index k: the ninth highest is 9.
    assert_eq!(committed_index(&membership, |id| LogIndex(id.0)), LogIndex(9));
    let three = voters(1..=3);
    assert_eq!(committed_index(&three, |id| LogIndex(id.0 * 10)), LogIndex(20));
}

/// `quorum.rs: replace / with % in majority_vote` (`len % 2 + 1` is 2 for five voters, so two
/// grants would win) and the `+`/`>=` mutants of the pending test: one refusal among three
/// voters with one answer missing is still pending, not lost (a candidate that thinks it lost
/// steps down and the election takes a timeout longer).
#[test]
fn vote_tallies_need_a_strict_majority_and_stay_pending_while_winnable() {
    let five = voters(1..=5);
    let granted_two = |id: NodeId| Some(id.0 <= 2);
    assert_eq!(vote_result(&five, granted_two), VoteResult::Lost);
    let two_granted_rest_missing = |id: NodeId| (id.0 <= 2).then_some(true);
    assert_eq!(vote_result(&five, two_granted_rest_missing), VoteResult::Pending);
    assert!(!has_quorum(&five, |id| id.0 <= 2));
    assert!(has_quorum(&five, |id| id.0 <= 3));

    let three = voters(1..=3);
    let one_each = |id: NodeId| match id.0 {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    assert_eq!(vote_result(&three, one_each), VoteResult::Pending);
    let two_refused = |id: NodeId| match id.0 {
        1 => Some(true),
        _ => Some(false),
    };
    assert_eq!(vote_result(&three, two_refused), VoteResult::Lost);
}

/// Joint consensus (thesis §4.3): both halves must agree, for votes and for commits; an empty
/// outgoing half agrees with anything, an empty incoming one elects no one.
#[test]
fn joint_tallies_need_both_halves() {
    let joint = Membership {
        voters: [1, 2, 3].into_iter().map(NodeId).collect(),
        voters_outgoing: [3, 4, 5].into_iter().map(NodeId).collect(),
        learners: BTreeSet::new(),
        promoting: BTreeSet::new(),
    };
    // Incoming won, outgoing pending: pending.
    let votes = |id: NodeId| match id.0 {
        1..=3 => Some(true),
        _ => None,
    };
    assert_eq!(vote_result(&joint, votes), VoteResult::Pending);
    let all = |_: NodeId| Some(true);
    assert_eq!(vote_result(&joint, all), VoteResult::Won);
    // Outgoing lost: lost, whatever the incoming half says.
    let outgoing_lost = |id: NodeId| Some(id.0 <= 3);
    assert_eq!(vote_result(&joint, outgoing_lost), VoteResult::Lost);
    let empty = Membership::default();
    assert_eq!(vote_result(&empty, all), VoteResult::Lost);
    assert_eq!(committed_index(&voters([1]), |_| LogIndex(7)), LogIndex(7));
}

/// `election.rs: replace * with + / with / in RaftNode::reset_election_timer`: the timeout is
/// drawn from `[T, 2T)` (§5.2: randomized timeouts keep split votes rare); the mutants draw
/// from `[T, T + 2)` or always `T`, which every fixed-schedule test tolerates. A lone follower
/// that hears from nobody campaigns exactly when its drawn timeout expires.
#[test]
fn election_timeouts_spread_over_t_to_2t() {
    use raft_core::{bootstrap, RaftNode, Role};
    let membership = voters(1..=3);
    let mut waited = Vec::new();
    for seed in 1..=40 {
        let mut config = common::config(1);
        config.seed = seed;
        let t = config.election_timeout_ticks;
        let mut node = RaftNode::new(config, bootstrap(membership.clone())).unwrap();
        let mut ticks = 0;
        while node.role() == Role::Follower {
            node.tick();
            ticks += 1;
            assert!(ticks < 2 * t, "seed {seed}: no campaign within 2T");
        }
        assert!(ticks >= t, "seed {seed}: campaigned after {ticks} ticks, before T = {t}");
        waited.push(ticks);
    }
    let (min, max) = (*waited.iter().min().unwrap(), *waited.iter().max().unwrap());
    let t = common::config(1).election_timeout_ticks;
    assert!(max - min >= t / 2, "timeouts {min}..={max} do not spread over [T, 2T): {waited:?}");
}

/// A pre-vote request from node 2 for `term`, with a log as long as a bootstrapped one.
fn pre_vote_request(term: u64) -> raft_core::Message {
    use raft_core::{CampaignReason, Message, MessageBody, Term, VoteKind};
    Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::VoteRequest {
            kind: VoteKind::PreVote,
            reason: CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(1),
            last_log_term: raft_core::Term(1),
        },
    }
}

/// Whether `node` answered node 2's pre-vote (in the batch it hands out now), and how.
fn pre_vote_answer(node: &mut raft_core::RaftNode) -> Option<bool> {
    use raft_core::MessageBody;
    if !node.has_ready() {
        return None;
    }
    let ready = node.ready();
    node.advance();
    ready.messages.iter().chain(&ready.messages_after_persist).find_map(|m| match m.body {
        MessageBody::VoteResponse { granted, .. } if m.to == NodeId(2) => Some(granted),
        _ => None,
    })
}

/// `lease.rs: replace > with >= / == in contact_at_start`, `replace contact_at_start with
/// Some(0) / Some(1)`: a node whose stored term is 1 (freshly bootstrapped) never acknowledged
/// a leader, so it has no quiet period to keep and grants a pre-vote at once (a new cluster
/// elects as fast as before, see `node/lease.rs`). The mutants make it keep quiet.
#[test]
fn a_freshly_bootstrapped_node_grants_a_pre_vote_at_once() {
    use raft_core::{bootstrap, RaftNode};
    let mut node = RaftNode::new(common::config(1), bootstrap(voters(1..=3))).unwrap();
    node.step(pre_vote_request(2)).unwrap();
    assert_eq!(pre_vote_answer(&mut node), Some(true));
}

/// `lease.rs: replace < with <= in RaftNode::heard_from_leader_recently` and `replace
/// contact_at_start with Some(1)`: a restarted voter (stored term above 1) keeps quiet for
/// exactly one election timeout (thesis §6.4.1, §4.2.3): pre-votes are ignored for its first
/// `T - 1` ticks and answered from tick `T` on. A longer quiet period only delays elections,
/// which no other test times to the tick.
#[test]
fn a_restarted_voter_keeps_quiet_for_exactly_one_election_timeout() {
    use raft_core::{bootstrap, HardState, RaftNode, Restored, Term};
    let config = common::config(1);
    let t = config.election_timeout_ticks;
    let restored = Restored {
        hard_state: HardState { term: Term(2), voted_for: None, commit: LogIndex(1) },
        ..bootstrap(voters(1..=3))
    };
    let mut node = RaftNode::new(config, restored).unwrap();
    for tick in 0..t {
        node.step(pre_vote_request(3)).unwrap();
        assert_eq!(
            pre_vote_answer(&mut node),
            None,
            "answered a pre-vote at tick {tick}, inside its quiet period"
        );
        node.tick();
    }
    node.step(pre_vote_request(3)).unwrap();
    assert_eq!(pre_vote_answer(&mut node), Some(true), "still quiet at tick {t}");
}

/// A vote or pre-vote request from `from` to node 1 in `term`, with a log ending at
/// (`last_index`, `last_term`).
fn vote_request(from: u64, term: u64, kind: raft_core::VoteKind, last: (u64, u64)) -> raft_core::Message {
    use raft_core::{CampaignReason, Message, MessageBody, Term};
    Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::VoteRequest {
            kind,
            reason: CampaignReason::ElectionTimeout,
            last_log_index: LogIndex(last.0),
            last_log_term: Term(last.1),
        },
    }
}

/// Whether `node` answered `to`'s (pre-)vote request in the batch it hands out now, and how.
fn vote_answer(node: &mut raft_core::RaftNode, to: u64) -> Option<bool> {
    use raft_core::MessageBody;
    if !node.has_ready() {
        return None;
    }
    let ready = node.ready();
    node.advance();
    ready.messages.iter().chain(&ready.messages_after_persist).find_map(|m| match m.body {
        MessageBody::VoteResponse { granted, .. } if m.to == NodeId(to) => Some(granted),
        _ => None,
    })
}

/// A freshly bootstrapped voter 1 of {1, 2, 3}: term 1, log (1, 1), no quiet period, so vote
/// requests of term 1 reach the vote rules directly.
fn fresh_voter() -> raft_core::RaftNode {
    raft_core::RaftNode::new(common::config(1), raft_core::bootstrap(voters(1..=3))).unwrap()
}

/// `election.rs: replace && with || in RaftNode::handle_vote_request` (`voted_for.is_none() ||
/// leader.is_none()`, and `can_vote || up_to_date`) and `replace == with != in
/// RaftNode::handle_vote_request` (`kind != Vote` records the vote): §5.2, one vote per term,
/// first come first served. A voter that granted node 2 its vote in a term refuses node 3 in
/// the same term, however up to date node 3's log is; the mutants grant both, which is two
/// leaders in one term (the swarm meets it only when two candidates of one term split a voter).
#[test]
fn a_voter_grants_one_vote_per_term() {
    use raft_core::VoteKind;
    let mut node = fresh_voter();
    node.step(vote_request(2, 1, VoteKind::Vote, (1, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 2), Some(true));
    assert_eq!(node.voted_for(), Some(NodeId(2)));
    node.step(vote_request(3, 1, VoteKind::Vote, (5, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 3), Some(false), "a second vote in term 1");
    // Repeating the vote to the same candidate is fine (its request may have been resent).
    node.step(vote_request(2, 1, VoteKind::Vote, (1, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 2), Some(true));
}

/// `election.rs: replace && with || in RaftNode::handle_vote_request` (`granted || kind ==
/// Vote` records a refused vote) and `replace == with !=` there (a pre-vote recorded as a
/// vote): a refused vote and a granted pre-vote leave `voted_for` empty, so the voter can still
/// vote for a good candidate in that term (thesis §9.6: a pre-vote changes no state).
#[test]
fn refusals_and_pre_votes_record_no_vote() {
    use raft_core::VoteKind;
    let mut node = fresh_voter();
    // Node 2's log (0, 0) is behind node 1's (1, 1): refused (§5.4.1).
    node.step(vote_request(2, 1, VoteKind::Vote, (0, 0))).unwrap();
    assert_eq!(vote_answer(&mut node, 2), Some(false));
    assert_eq!(node.voted_for(), None, "a refused vote was recorded");
    // A pre-vote for term 2 is granted and changes nothing.
    node.step(vote_request(2, 2, VoteKind::PreVote, (1, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 2), Some(true));
    assert_eq!((node.term(), node.voted_for()), (raft_core::Term(1), None), "a pre-vote was recorded");
    // So node 3, up to date, still gets node 1's vote in term 1.
    node.step(vote_request(3, 1, VoteKind::Vote, (1, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 3), Some(true));
}

/// `election.rs: replace > with >= in RaftNode::handle_vote_request`: a pre-vote is granted
/// only for a term later than the voter's (thesis §9.6: "would you vote for me in the next
/// term"); a pre-candidate whose proposed term the voter already reached could not win it.
#[test]
fn a_pre_vote_for_the_voters_own_term_is_refused() {
    use raft_core::VoteKind;
    let mut node = fresh_voter();
    node.step(vote_request(2, 1, VoteKind::PreVote, (1, 1))).unwrap();
    assert_eq!(vote_answer(&mut node, 2), Some(false));
}

/// `election.rs: replace && with || in RaftNode::campaign` and in `RaftNode::may_campaign`,
/// `replace RaftNode::may_campaign -> bool with true`: `campaign()` does nothing on a leader
/// (it would end its own term) or on a learner (it is no voter, §4.2.1). Tests only ever call
/// it on followers that may campaign.
#[test]
fn campaign_does_nothing_on_a_leader_or_a_learner() {
    use raft_core::{bootstrap, RaftNode, Role, Term};
    let mut single = RaftNode::new(common::config(1), bootstrap(voters([1]))).unwrap();
    single.campaign();
    assert_eq!(single.role(), Role::Leader);
    let term = single.term();
    single.campaign();
    assert_eq!((single.role(), single.term()), (Role::Leader, term), "a leader campaigned again");

    let mut with_learner = voters(2..=3);
    with_learner.learners.insert(NodeId(1));
    let mut learner = RaftNode::new(common::config(1), bootstrap(with_learner)).unwrap();
    learner.campaign();
    assert_eq!((learner.role(), learner.term()), (Role::Follower, Term(1)), "a learner campaigned");
}

/// `election.rs: replace += with *= in RaftNode::campaign_round` (twice), `in
/// RaftNode::become_leader` and `in RaftNode::start_campaign`: the campaign counters start at 0,
/// so multiplying leaves them 0. They are what operators and the simulator's figures read
/// (`Stats`), so one campaign is counted once in each.
#[test]
fn one_campaign_is_counted_once() {
    use raft_core::{bootstrap, HardState, RaftNode, Restored, Role, Term};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    assert_eq!(cluster.node(1).role(), Role::Leader);
    let stats = cluster.node(1).stats();
    assert_eq!((stats.pre_votes_started, stats.elections_started, stats.terms_led), (1, 1, 1));

    // A node at the last term refuses to campaign (issue 11) and counts the refusal.
    let restored = Restored {
        hard_state: HardState { term: Term::LAST, voted_for: None, commit: LogIndex(1) },
        ..bootstrap(voters(1..=3))
    };
    let mut node = RaftNode::new(common::config(1), restored).unwrap();
    node.campaign();
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.stats().campaigns_refused_term_exhausted, 1);
}

/// Leader 2's log in term 2: the bootstrap configuration and commands of term 1 up to 5, then
/// commands of term 2 (so the entry after the follower's commit point has a new term).
fn leader_log(last: u64) -> Vec<raft_core::Entry> {
    let terms: Vec<u64> = (1..=last).map(|index| if index <= 5 { 1 } else { 2 }).collect();
    common::entries_with_terms(3, &terms)
}

/// Delivers leader 2's AppendEntries (term 2) with the entries after `prev` up to `last` to
/// node 1 and returns node 1's answer.
fn append(node: &mut raft_core::RaftNode, prev: u64, last: u64, commit: u64) -> raft_core::AppendOutcome {
    use raft_core::{Message, MessageBody, Term};
    let log = leader_log(last.max(1));
    let message = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(2),
        body: MessageBody::AppendEntries {
            prev_log_index: LogIndex(prev),
            prev_log_term: Term(match prev {
                0 => 0,
                1..=5 => 1,
                _ => 2,
            }),
            entries: log[prev as usize..last as usize].to_vec(),
            leader_commit: LogIndex(commit),
        },
    };
    node.step(message).unwrap();
    let ready = node.ready();
    node.advance();
    ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .find_map(|m| match &m.body {
            MessageBody::AppendResponse { outcome } if m.to == NodeId(2) => Some(*outcome),
            _ => None,
        })
        .expect("node 1 answers the append")
}

/// `replication.rs: replace - with + / with / in RaftNode::handle_append` (the number of
/// entries a follower skips because it already committed them) and `replace - with + / with /`
/// in the `entries[skip - 1]` that names the new previous entry and its term: a follower that committed up
/// to 5 and is sent 2..=8 (a leader probing from far back, or a duplicated append) skips what
/// it committed and accepts the rest in the same answer (Figure 2, AppendEntries rules 3–5).
/// The mutants skip too many or too few entries or name the wrong previous entry: the
/// follower answers "I match up to 5" or rejects, and the leader needs another round trip, or
/// is told of entries the follower does not hold.
#[test]
fn a_follower_accepts_the_uncommitted_rest_of_an_append_in_one_answer() {
    use raft_core::AppendOutcome;
    for prev in [0, 1, 3] {
        let mut node = fresh_voter();
        assert_eq!(append(&mut node, 1, 5, 5), AppendOutcome::Accepted { match_index: LogIndex(5) });
        assert_eq!(node.commit_index(), LogIndex(5));
        assert_eq!(
            append(&mut node, prev, 8, 5),
            AppendOutcome::Accepted { match_index: LogIndex(8) },
            "append after {prev}"
        );
        assert_eq!(node.last_index(), LogIndex(8));
        // Figure 2, rule 5: commit up to the leader's commit, within what matches.
        assert_eq!(append(&mut node, 3, 6, 8), AppendOutcome::Accepted { match_index: LogIndex(6) });
        assert_eq!(node.commit_index(), LogIndex(6), "committed past what the append proved");
        assert_eq!(node.last_index(), LogIndex(8), "a stale append truncated matching entries");
    }
}

/// `election.rs: delete ! in RaftNode::handle_vote_response` and `replace || with &&` there
/// (`term == self.term.next() || !granted`): a pre-candidate counts a refusal whatever its term
/// (a refusal carries the voter's own term, not the proposed one). Refused by both other
/// voters of three, it has lost and goes back to being a follower with a fresh timer (§5.2,
/// thesis §9.6); the mutants never count the refusals and leave it a pre-candidate.
#[test]
fn a_pre_candidate_refused_by_a_majority_becomes_a_follower() {
    use raft_core::{Message, MessageBody, Role, Term, VoteKind};
    let mut node = fresh_voter();
    node.campaign();
    assert_eq!(node.role(), Role::PreCandidate);
    for from in [2, 3] {
        let refusal = Message {
            from: NodeId(from),
            to: NodeId(1),
            term: Term(1),
            body: MessageBody::VoteResponse { kind: VoteKind::PreVote, granted: false },
        };
        node.step(refusal).unwrap();
    }
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(1)));
}

/// `election.rs: replace || with && in RaftNode::become_follower` (`role == Leader || leader
/// changed` decides whether reads in progress fail): a follower that learns of a new leader
/// in a later term fails the reads it forwarded to the old one at once (`LeadershipLost`), so
/// clients retry with the new leader. The old leader can no longer answer them in the new
/// term. The mutant fails reads only on a leader stepping down; a follower's forwarded read
/// then waits for its election-timeout expiry (`TimedOut`): a slower error, never a wrong read.
#[test]
fn a_follower_fails_its_forwarded_reads_when_a_new_leader_takes_over() {
    use raft_core::{Message, MessageBody, ReadError, ReadMode, ReadState, Term};
    let heartbeat = |from: u64, term: u64| Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::Heartbeat { commit: LogIndex(1), context: 0 },
    };
    let mut node = fresh_voter();
    node.step(heartbeat(2, 2)).unwrap();
    assert_eq!(node.leader(), Some(NodeId(2)));
    node.read(7, ReadMode::Linearizable);
    assert_eq!(node.pending_reads(), (0, 1), "the read is forwarded to leader 2");
    node.ready();
    node.advance();
    node.step(heartbeat(3, 3)).unwrap();
    assert_eq!(node.leader(), Some(NodeId(3)));
    assert_eq!(node.pending_reads(), (0, 0), "the read forwarded to node 2 still waits");
    let ready = node.ready();
    node.advance();
    assert_eq!(ready.read_states, vec![ReadState { request_id: 7, result: Err(ReadError::LeadershipLost) }]);
}

/// `election.rs: replace == with != in RaftNode::become_follower` (`role != Leader || leader
/// changed`): a follower whose leader carries on into a later term (it won the next election
/// too) keeps the reads it forwarded to that leader: the same server answers them, or they
/// fail at their expiry. Only a change of leader (or a leader stepping down) fails them at
/// once. The mutant fails a follower's forwarded reads on every `become_follower`, so clients
/// retry reads that would have been answered: a needless error, never a wrong read.
#[test]
fn a_follower_keeps_its_forwarded_reads_when_its_leader_carries_on_into_a_new_term() {
    use raft_core::{Message, MessageBody, ReadMode, Term};
    let heartbeat = |term: u64| Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::Heartbeat { commit: LogIndex(1), context: 0 },
    };
    let mut node = fresh_voter();
    node.step(heartbeat(2)).unwrap();
    node.read(7, ReadMode::Linearizable);
    assert_eq!(node.pending_reads(), (0, 1), "the read is forwarded to leader 2");
    node.ready();
    node.advance();
    node.step(heartbeat(3)).unwrap();
    assert_eq!((node.term(), node.leader()), (Term(3), Some(NodeId(2))));
    assert_eq!(node.pending_reads(), (0, 1), "the read forwarded to node 2 was failed");
    let ready = node.ready();
    node.advance();
    assert_eq!(ready.read_states, Vec::new());
}

/// `lease.rs: replace > with >= in RaftNode::screen_sender`: an answer in this node's own term
/// from a server outside its configuration (for example one whose removal the leader has just
/// appended) is not refused as from a non-member: it is taken in and ignored as an answer from
/// a server this leader does not track. Only a *later* term from a stranger is refused, since
/// that is how a removed server would raise the cluster's term (issue 11). The mutant refuses
/// the same-term answer with `NotAMember` and counts it there.
#[test]
fn a_same_term_answer_from_a_non_member_is_ignored_not_refused() {
    use raft_core::{Message, MessageBody, Role};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let term = cluster.node(1).term();
    let answer =
        Message { from: NodeId(9), to: NodeId(1), term, body: MessageBody::HeartbeatResponse { context: 0 } };
    assert_eq!(cluster.node_mut(1).step(answer), Ok(()));
    let stats = cluster.node(1).stats();
    assert_eq!((stats.messages_from_unknown, stats.messages_from_non_members), (1, 0));
    assert_eq!(cluster.node(1).role(), Role::Leader);
}

/// `lease.rs: replace && with || in RaftNode::screen_sender`: only a *stranger's* answer in a
/// later term is refused. A member's answer in a later term is how a leader cut off for a
/// while learns that it was replaced (§5.1: a server that sees a larger term becomes a
/// follower), and it must step down at once. The mutant refuses it (and, like the mutant
/// `> with >=`, a stranger's same-term answer too), so a stale leader keeps leading until
/// check-quorum or the new leader deposes it: no wrong commit, but clients wait on it.
#[test]
fn a_members_answer_in_a_later_term_deposes_a_leader_at_once() {
    use raft_core::{Message, MessageBody, Role, Term};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let term = cluster.node(1).term();
    let answer = Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term.0 + 1),
        body: MessageBody::HeartbeatResponse { context: 0 },
    };
    assert_eq!(cluster.node_mut(1).step(answer), Ok(()));
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert_eq!(cluster.node(1).term(), Term(term.0 + 1));
}

/// `reads.rs: replace || with && in RaftNode::lease_is_valid` (both `||`): a leader without
/// check-quorum has no lease, however fresh its acknowledged round (thesis §6.4.1: the lease
/// counts on voters refusing votes for an election timeout, which they do only with
/// check-quorum, §4.2.3; see `node/lease.rs`). Both mutants let such a leader answer lease
/// reads from its round: a stale read once another server wins an election it was not told of.
/// Every other lease test runs with check-quorum on.
#[test]
fn a_leader_without_check_quorum_has_no_lease() {
    use raft_core::ReadMode;
    let configs = (1..=3)
        .map(|id| {
            let mut config = common::config(id);
            config.check_quorum = false;
            config
        })
        .collect();
    let mut cluster = common::TestCluster::with_configs(configs);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster.node_mut(1).read(1, ReadMode::Linearizable);
    cluster.stabilize();
    assert!(!cluster.node(1).lease_is_valid());
    // A lease read waits for a heartbeat round like a linearizable one.
    cluster.node_mut(1).read(2, ReadMode::Lease);
    let ready = cluster.node_mut(1).ready();
    assert!(ready.read_states.iter().all(|s| s.request_id != 2), "answered from a lease");
    cluster.network.extend(ready.messages);
    cluster.network.extend(ready.messages_after_persist);
    cluster.node_mut(1).advance();
}

/// `reads.rs: replace < with <= / - with + / - with / / + with * in RaftNode::lease_is_valid`:
/// a lease lasts `T - clock_drift_ticks_max` ticks from the sending of the round a majority
/// acknowledged (thesis §6.4.1), no tick more (a longer lease can outlive the followers' quiet
/// period once clocks drift) and, for liveness of lease reads, no tick less. Every other test
/// reads well inside the lease or well after it.
#[test]
fn a_lease_lasts_exactly_the_election_timeout_minus_the_drift_bound() {
    use raft_core::ReadMode;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    let config = cluster.node(1).config().clone();
    let lease = config.election_timeout_ticks - config.clock_drift_ticks_max;
    // A linearizable read sends a heartbeat round now; both followers acknowledge it at once.
    cluster.node_mut(1).read(1, ReadMode::Linearizable);
    cluster.stabilize();
    assert!(cluster.node(1).lease_is_valid());
    // From here on no answer reaches the leader: only the round just acknowledged counts.
    cluster.isolate(1);
    for tick in 1..lease {
        cluster.tick(1);
        assert!(cluster.node(1).lease_is_valid(), "lease lost {tick} ticks after its round");
    }
    cluster.tick(1);
    assert!(!cluster.node(1).lease_is_valid(), "lease still valid {lease} ticks after its round");
}

/// `replication.rs:77:33: replace != with == in RaftNode::handle_append`: a follower reports
/// `MembershipChanged` when an append changes its configuration (thesis §4.1: a server uses
/// the latest configuration in its log as soon as it appends it), and only then. The mutant
/// reports the unchanged configuration after every other append and stays silent on the
/// change. The configuration itself is right either way; drivers that act on the event (the
/// native node dials new members) are told the wrong thing.
#[test]
fn a_follower_reports_its_configuration_change_once_on_append() {
    use raft_core::MembershipChange;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let expected = cluster.node(1).membership_index();
    let index =
        cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(4)), expected).unwrap();
    let changes = membership_events_of_node_2(&mut cluster);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, index);
    assert!(changes[0].1.learners.contains(&NodeId(4)));
    // Then an ordinary entry: no configuration change, no event.
    cluster.node_mut(1).propose(raft_core::Bytes::from_static(b"x")).unwrap();
    assert_eq!(membership_events_of_node_2(&mut cluster), Vec::new());
}

/// Delivers everything (node 4 does not run: its messages are lost) and returns the
/// `MembershipChanged` events node 2 reported meanwhile, which `flush` would drop.
fn membership_events_of_node_2(cluster: &mut common::TestCluster) -> Vec<(LogIndex, Membership)> {
    use raft_core::RaftEvent;
    let mut changes = Vec::new();
    loop {
        cluster.flush_except(2);
        let node = cluster.node_mut(2);
        if node.has_ready() {
            let ready = node.ready();
            node.advance();
            cluster.network.extend(ready.messages);
            cluster.network.extend(ready.messages_after_persist);
            for event in ready.events {
                if let RaftEvent::MembershipChanged { index, membership } = event {
                    changes.push((index, membership));
                }
            }
        }
        let Some(message) = cluster.network.pop_front() else { break };
        if message.to != NodeId(4) {
            cluster.deliver(message);
        }
    }
    changes
}
