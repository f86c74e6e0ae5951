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
