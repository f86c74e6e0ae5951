//! Tests that kill mutants `cargo mutants` found surviving in `raft-core/src/node/membership.rs`
//! (configuration changes, the catch-up of a new voter, leadership transfer; see
//! `raft-core/MUTANTS.md`). Split from `mutants_killed.rs`, which holds the rest. Each names the
//! mutant it kills: the function and the change, as cargo-mutants prints it.

mod common;

use raft_core::NodeId;

/// `membership.rs:466:24: replace > with >= / == in RaftNode::catch_up_outcome`: a leader
/// gives a server it was asked to add (`AddVoter`) exactly `CATCH_UP_ROUNDS_MAX` election
/// timeouts to catch up (thesis §4.2.1: a server that cannot catch up is not promoted, so
/// that it cannot stall the cluster), counted in its own ticks from the `AddVoter`: still
/// catching up after that many ticks, withdrawn (`CatchUpAbandoned`, the promotion taken out of
/// the configuration) at the next one. The mutants withdraw one tick early; every other test
/// ticks well past the bound.
#[test]
fn an_unreachable_servers_promotion_is_withdrawn_the_tick_after_its_allowance() {
    use raft_core::{MembershipChange, RaftEvent, CATCH_UP_ROUNDS_MAX};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let new = NodeId(cluster.add_empty_node());
    cluster.isolate(new.0); // it never answers
    let allowance = u64::from(CATCH_UP_ROUNDS_MAX) * cluster.node(1).config().election_timeout_ticks;
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::AddVoter(new), expected).unwrap();
    cluster.stabilize();
    // Only the leader's clock runs: the followers answer its heartbeats and never campaign.
    for tick in 1..=allowance {
        cluster.tick(1);
        cluster.stabilize();
        assert_eq!(cluster.node(1).catching_up(), Some(new), "withdrawn after {tick} of {allowance} ticks");
    }
    assert!(cluster.node(1).membership().promoting.contains(&new));
    cluster.tick(1);
    cluster.stabilize();
    assert_eq!(cluster.node(1).catching_up(), None, "still catching up after {} ticks", allowance + 1);
    assert!(!cluster.node(1).membership().promoting.contains(&new));
    assert!(cluster.events[0].contains(&RaftEvent::CatchUpAbandoned { id: new }));
}

/// Leader 1 of voters {1, 2, 3} with a learner, node 4, that holds every entry.
fn leader_with_a_learner() -> common::TestCluster {
    use raft_core::MembershipChange;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let learner = cluster.add_empty_node();
    cluster.change_membership(1, MembershipChange::AddLearner(NodeId(learner))).unwrap();
    cluster.tick_all(2);
    assert_eq!(cluster.node(learner).last_index(), cluster.node(1).last_index());
    cluster
}

/// `membership.rs: replace && with || in RaftNode::transfer_leadership` (both `&&` of the
/// named target's guard, and its `replace match guard … with true`) and the `&&` of the filter
/// that picks a target by itself: leadership goes only to a voter (thesis §3.10: the target
/// must be able to win an election, and a learner cannot, §4.2.1). A learner named as target
/// is refused with `NotAVoter`, and without a target the leader picks the most up-to-date
/// *voter*, even when a learner holds more entries. The mutants hand over to the learner,
/// which ignores the TimeoutNow: proposals are refused for an election timeout for nothing.
#[test]
fn leadership_is_never_handed_to_a_learner() {
    use raft_core::TransferError;
    let mut cluster = leader_with_a_learner();
    assert_eq!(
        cluster.node_mut(1).transfer_leadership(Some(NodeId(4))),
        Err(TransferError::NotAVoter(NodeId(4)))
    );
    assert_eq!(
        cluster.node_mut(1).transfer_leadership(Some(NodeId(1))),
        Err(TransferError::NotAVoter(NodeId(1)))
    );
    // Voters 2 and 3 miss an entry that the learner gets: the learner is the most up to date.
    cluster.cut.extend([(1, 2), (1, 3)]);
    cluster.propose(1, b"only the learner has this");
    assert!(cluster.node(4).last_index() > cluster.node(2).last_index());
    assert_eq!(
        cluster.node_mut(1).transfer_leadership(None),
        Ok(NodeId(2)),
        "the lowest id of the voters that tie"
    );
}

/// `membership.rs: replace < with == / > and > with == / < in RaftNode::transfer_leadership`:
/// when the target's last entries are believed in flight (sent, not acknowledged), a transfer
/// checks at once with an empty AppendEntries instead of waiting for the next heartbeat
/// (thesis §3.10: the handover should be quick, since proposals are refused meanwhile). Here the
/// append to the target was lost, so only that check gets the entry to it: the handover
/// completes without a single tick. The mutants skip the check and the handover waits for a
/// heartbeat.
#[test]
fn a_transfer_checks_the_targets_entries_in_flight_at_once() {
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    cluster.node_mut(1).propose(raft_core::Bytes::from_static(b"lost on the way to 3")).unwrap();
    cluster.flush();
    cluster.network.retain(|m| !(m.to == NodeId(3) && common::is_append(m)));
    cluster.stabilize();
    assert!(cluster.node(3).last_index() < cluster.node(1).last_index());
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![3], "the handover waits for a tick");
}

/// `membership.rs: replace && with || and < with <= in RaftNode::transfer_leadership`: a target
/// that holds the whole log is sent TimeoutNow at once (thesis §3.10) and nothing else: no
/// check of entries in flight, since none are. The mutants also send it an empty
/// AppendEntries.
#[test]
fn a_caught_up_transfer_target_is_sent_timeout_now_alone() {
    use raft_core::MessageBody;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    let ready = cluster.node_mut(1).ready();
    let to_3: Vec<&MessageBody> = ready
        .messages
        .iter()
        .chain(&ready.messages_after_persist)
        .filter(|m| m.to == NodeId(3))
        .map(|m| &m.body)
        .collect();
    assert_eq!(to_3, vec![&MessageBody::TimeoutNow]);
}

/// `membership.rs:531:61: replace > with >= in RaftNode::transfer_leadership`: the check of
/// entries in flight is for a target whose last entries were sent (`next_index` past the last
/// entry), not for one whose next message will carry them anyway. Here a new leader's first
/// probe (its no-op, `next_index` equal to the last index) is on its way to the target when the
/// transfer starts: the probe's acceptance brings the target up to date, and TimeoutNow alone
/// follows (thesis §3.10). The mutant flags the target for a check, which its acceptance does
/// not clear, and sends it a redundant empty AppendEntries besides.
#[test]
fn a_transfer_during_a_new_leaders_first_probe_sends_no_extra_append() {
    use raft_core::{MessageBody, Role};
    let mut cluster = common::TestCluster::new(3);
    cluster.node_mut(1).campaign();
    while cluster.node(1).role() != Role::Leader {
        cluster.flush();
        let message = cluster.network.pop_front().expect("the election goes on");
        cluster.deliver(message);
    }
    cluster.flush(); // the probes are on their way
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    let mark = cluster.delivered.len();
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![3]);
    let appends_to_3 = cluster.delivered[mark..]
        .iter()
        .filter(|m| {
            m.from == NodeId(1) && m.to == NodeId(3) && matches!(m.body, MessageBody::AppendEntries { .. })
        })
        .count();
    assert_eq!(appends_to_3, 1, "the probe, and nothing but TimeoutNow after it");
}

/// `membership.rs:225:57: replace || with && in RaftNode::change_membership`: a promotion is
/// pending when it is in the configuration, whether or not this leader has started its
/// catch-up yet (thesis §4.1, one change at a time; the rule that other changes wait keeps the
/// promotion from being starved). A leader that inherited a promotion starts the catch-up at its
/// first tick; before that, an `AddLearner` must still be refused. The mutant needs both a
/// catch-up and a promotion, so it lets the change through.
#[test]
fn an_inherited_promotion_blocks_other_changes_before_the_new_leaders_first_tick() {
    use raft_core::{MembershipChange, MembershipError};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let new = NodeId(cluster.add_empty_node());
    cluster.isolate(new.0); // never catches up: the promotion stays pending
    cluster.change_membership(1, MembershipChange::AddVoter(new)).unwrap();
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(2))), Ok(NodeId(2)));
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![2]);
    let leader = cluster.node_mut(2);
    assert!(leader.membership().promoting.contains(&new));
    assert_eq!(leader.catching_up(), None, "no tick yet, so no catch-up yet");
    let expected = leader.membership_index();
    assert_eq!(
        leader.change_membership(MembershipChange::AddLearner(NodeId(9)), expected),
        Err(MembershipError::ChangeInProgress)
    );
}

/// `membership.rs:477:28: replace >= with < in RaftNode::catch_up_outcome`: a catch-up round
/// that ends but took longer than an election timeout starts another round; the server is
/// promoted as soon as a round finishes within one (thesis §4.2.1), and withdrawn only when the
/// catch-up as a whole runs out of time. Here the new server is cut off for longer than an
/// election timeout, so its first round runs long; once healed it catches up at once and the
/// second round promotes it. The mutant withdraws the promotion after the first long round.
#[test]
fn a_server_whose_first_catch_up_round_ran_long_is_promoted_after_a_quick_second_one() {
    use raft_core::{MembershipChange, RaftEvent};
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let new = NodeId(cluster.add_empty_node());
    cluster.isolate(new.0);
    cluster.change_membership(1, MembershipChange::AddVoter(new)).unwrap();
    let timeout = cluster.node(1).config().election_timeout_ticks;
    // Only the leader's clock runs: the followers answer its heartbeats and never campaign.
    for _ in 0..=timeout {
        cluster.tick(1);
        cluster.stabilize();
    }
    assert_eq!(cluster.node(1).catching_up(), Some(new), "the first round is still under way");
    cluster.heal();
    for _ in 0..timeout {
        cluster.tick(1);
        cluster.stabilize();
    }
    let leader = cluster.node(1);
    assert!(!cluster.events[0].contains(&RaftEvent::CatchUpAbandoned { id: new }));
    assert_eq!(leader.catching_up(), None);
    assert!(leader.membership().voters.contains(&new), "{:?}", leader.membership());
    assert_eq!(cluster.node(new.0).last_index(), leader.last_index());
}

/// `membership.rs:335:42: delete ! in RaftNode::sync_progress_with_membership`: a change allowed
/// while a promotion is pending (`DemoteVoter`, `RemoveServer` of another server) leaves the
/// catch-up under way as it is, with the allowance its `AddVoter` gave it (thesis §4.2.1; the
/// leader tracks the catch-up for as long as the server stays in `promoting`). The mutant drops
/// the catch-up whenever a configuration entry keeps the server in `promoting`; the leader then
/// starts it over as if inherited, with one election timeout, and withdraws the promotion after
/// that instead of after `CATCH_UP_ROUNDS_MAX` of them.
#[test]
fn a_change_made_during_a_catch_up_keeps_its_allowance() {
    use raft_core::MembershipChange;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let new = NodeId(cluster.add_empty_node());
    cluster.isolate(new.0); // a slow server: it stays behind
    cluster.change_membership(1, MembershipChange::AddVoter(new)).unwrap();
    cluster.change_membership(1, MembershipChange::DemoteVoter(NodeId(3))).expect("allowed while promoting");
    assert_eq!(cluster.node(1).catching_up(), Some(new));
    let timeout = cluster.node(1).config().election_timeout_ticks;
    // Only the leader's clock runs: the followers answer its heartbeats and never campaign.
    for tick in 1..=2 * timeout {
        cluster.tick(1);
        cluster.stabilize();
        assert_eq!(cluster.node(1).catching_up(), Some(new), "withdrawn after {tick} ticks");
    }
    assert!(cluster.node(1).membership().promoting.contains(&new));
}

/// `membership.rs:353:43: replace += with *= in RaftNode::on_commit_membership`: leaving a
/// joint configuration is a configuration change of its own (thesis §4.3: C_new follows
/// C_old,new), counted in `Stats::membership_changes` like the joint entry before it. The
/// mutant leaves the count where it was.
#[test]
fn leaving_a_joint_configuration_is_counted_as_a_membership_change() {
    use raft_core::MembershipChange;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    let four = cluster.add_empty_node();
    cluster.change_membership(1, MembershipChange::AddLearner(NodeId(four))).unwrap();
    let before = cluster.node(1).stats().membership_changes;
    let voters = [1, 2, four].map(NodeId).into_iter().collect();
    cluster.change_membership(1, MembershipChange::ReplaceVoters(voters)).unwrap();
    let leader = cluster.node(1);
    assert!(!leader.membership().is_joint(), "the joint configuration was left");
    assert_eq!(leader.membership().voters, [1, 2, four].map(NodeId).into_iter().collect());
    assert_eq!(leader.stats().membership_changes, before + 2, "the joint entry and the leaving one");
}

/// `membership.rs:295:52: replace > with >= in RaftNode::change_membership`: only a change that
/// makes the campaigning voters' deficit non-negative *and larger* is refused (thesis §4.2.1,
/// §3.10). When the operator learns that the voters that campaign are already a minority, the
/// repair, adding a voter that campaigns, leaves the figure where it was in the `Worst` view
/// (which does not count a campaigning promotion, since it may be withdrawn) and must go ahead.
/// The mutant refuses every change that leaves a non-negative deficit unchanged, the repair
/// included, and so locks the cluster in its minority.
#[test]
fn a_campaigning_voter_may_join_a_cluster_whose_campaigning_voters_are_a_minority() {
    use raft_core::MembershipChange;
    let mut cluster = common::TestCluster::new(3);
    cluster.campaign(1);
    cluster.tick_all(2);
    for quiet in [2, 3] {
        cluster.node_mut(1).set_peer_campaigns(NodeId(quiet), false);
    }
    let four = NodeId(cluster.add_empty_node());
    assert!(cluster.change_membership(1, MembershipChange::AddVoter(four)).is_ok(), "the repair is refused");
    // Caught up at once, it is promoted too: the cluster is on its way out of the minority.
    assert!(cluster.node(1).membership().voters.contains(&four), "{:?}", cluster.node(1).membership());
}
