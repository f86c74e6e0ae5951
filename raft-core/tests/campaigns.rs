//! Voters that never campaign (`Config::campaigns = false`, issue 14): browser tabs that vote
//! and acknowledge but must never lead. Such a node never starts a pre-vote (thesis §9.6) or an
//! election (§3.4) on its timeout, ignores TimeoutNow (§3.10), and is otherwise a full voter:
//! it votes, acknowledges, counts towards check-quorum (§6.2) and keeps the quiet period that
//! leases rely on (§6.4.1). A leader told about it never hands leadership to it.

mod common;

use common::quiet::quiet_cluster;
use common::{config, TestCluster};
use raft_core::{
    bootstrap, Bytes, Entry, EntryPayload, LogIndex, Membership, MembershipChange, MembershipError, Message,
    MessageBody, NodeId, RaftEvent, RaftNode, Role, Term, TransferError,
};

/// A cluster of `size` voters where the ids in `quiet` do not campaign.
fn cluster_with_quiet(size: u64, quiet: &[u64]) -> TestCluster {
    quiet_cluster(size, quiet)
}

/// Node 1 elected leader, the others following.
fn elected_with_quiet(size: u64, quiet: &[u64]) -> TestCluster {
    let mut cluster = cluster_with_quiet(size, quiet);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

fn campaigns_started(cluster: &TestCluster, id: u64) -> u64 {
    let stats = cluster.node(id).stats();
    stats.pre_votes_started + stats.elections_started
}

#[test]
fn thesis_3_4_a_non_campaigning_voter_never_starts_an_election_on_its_timeout() {
    let mut cluster = cluster_with_quiet(3, &[3]);
    // Only node 3's clock runs: with `campaigns: true` it would pre-vote after 10 to 20 ticks.
    for _ in 0..200 {
        cluster.tick(3);
        cluster.stabilize();
    }
    assert_eq!(cluster.node(3).role(), Role::Follower);
    assert_eq!(campaigns_started(&cluster, 3), 0);
    assert_eq!(cluster.count_delivered("PreVote") + cluster.count_delivered("RequestVote"), 0);
    assert!(cluster.leaders().is_empty());
    // Its timer still says how long no leader has been heard from, and ends nothing.
    assert_eq!(cluster.node(3).election_timer(), (200, 0));
}

#[test]
fn thesis_3_4_campaign_does_nothing_on_a_non_campaigning_voter() {
    let mut cluster = cluster_with_quiet(3, &[2]);
    cluster.campaign(2);
    assert_eq!(cluster.node(2).role(), Role::Follower);
    assert_eq!(campaigns_started(&cluster, 2), 0);
    assert!(cluster.leaders().is_empty());
}

#[test]
fn thesis_3_4_non_campaigning_voters_vote_for_the_one_that_campaigns() {
    // Two of three voters never campaign: node 1 still wins, with their votes (pre-votes first).
    let mut cluster = cluster_with_quiet(3, &[2, 3]);
    // Their timers run out first (a campaigning node would have won by now); nothing happens.
    for _ in 0..50 {
        cluster.tick(2);
        cluster.tick(3);
    }
    cluster.stabilize();
    assert!(cluster.leaders().is_empty());
    cluster.tick_all(60);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(campaigns_started(&cluster, 2) + campaigns_started(&cluster, 3), 0);
    // And they acknowledge entries: a write commits on all three.
    let proposed = cluster.propose(1, b"x");
    cluster.tick_all(2);
    for id in 1..=3 {
        assert!(cluster.node(id).commit_index() >= proposed.index, "node {id}");
    }
}

#[test]
fn consequence_without_a_campaigning_voter_up_no_leader_is_ever_elected() {
    let mut cluster = elected_with_quiet(3, &[2, 3]);
    let term = cluster.node(2).term();
    cluster.crash(1);
    cluster.tick_all(500);
    assert!(cluster.leaders().is_empty());
    assert_eq!(campaigns_started(&cluster, 2) + campaigns_started(&cluster, 3), 0);
    assert_eq!((cluster.node(2).term(), cluster.node(3).term()), (term, term), "nobody raised the term");
    // The campaigning voter comes back and leads again.
    cluster.restart(1);
    cluster.tick_all(60);
    assert_eq!(cluster.leaders(), vec![1]);
}

#[test]
fn consequence_a_lagging_campaigning_voter_cannot_win_against_a_more_up_to_date_quiet_one() {
    // 2 campaigning voters + 1 that does not (the "2 native + 1 voter tab" cluster). Node 2
    // misses a write that nodes 1 and 3 commit; node 1 crashes. Node 3 refuses node 2 (§5.4.1:
    // its log is more up to date) and will not campaign itself: no leader until node 1 returns.
    let mut cluster = elected_with_quiet(3, &[3]);
    cluster.isolate(2);
    let proposed = cluster.propose(1, b"only 1 and 3 have this");
    cluster.tick_all(2);
    assert_eq!(cluster.node(3).commit_index(), proposed.index);
    cluster.crash(1);
    cluster.heal();
    cluster.tick_all(500);
    assert!(cluster.leaders().is_empty());
    assert!(campaigns_started(&cluster, 2) > 0, "node 2 kept trying");
    assert_eq!(campaigns_started(&cluster, 3), 0);
    cluster.restart(1);
    cluster.tick_all(100);
    assert_eq!(cluster.leaders(), vec![1]);
    assert!(cluster.node(2).commit_index() >= proposed.index, "node 2 caught up");
}

#[test]
fn thesis_3_10_timeout_now_is_ignored_with_an_event() {
    // The leader was not told that node 3 does not campaign, so it tries to hand over.
    let mut cluster = elected_with_quiet(3, &[3]);
    let term = cluster.node(1).term();
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    cluster.stabilize();
    assert_eq!(cluster.node(1).stats().leader_transfers, 1, "TimeoutNow was sent");
    assert_eq!(cluster.node(3).stats().timeout_now_ignored, 1);
    assert_eq!(cluster.node(3).role(), Role::Follower);
    assert_eq!(cluster.node(3).term(), term);
    // The leader gives the transfer up after an election timeout and goes on leading.
    cluster.tick_all(11);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).transfer_target(), None);
    cluster.propose(1, b"still leading");
}

#[test]
fn thesis_3_10_the_ignored_timeout_now_is_reported_as_an_event() {
    let mut cluster = elected_with_quiet(3, &[3]);
    let term = cluster.node(3).term();
    let node = cluster.node_mut(3);
    node.step(Message { from: NodeId(1), to: NodeId(3), term, body: MessageBody::TimeoutNow })
        .expect("TimeoutNow from the leader is valid");
    let ready = node.ready();
    assert!(
        ready.events.contains(&RaftEvent::TimeoutNowIgnored { from: NodeId(1), term }),
        "{:?}",
        ready.events
    );
    assert!(ready.messages.is_empty() && ready.messages_after_persist.is_empty(), "no vote requests");
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn thesis_3_10_a_leader_never_picks_a_non_campaigning_peer_as_transfer_target() {
    let mut cluster = elected_with_quiet(3, &[3]);
    for id in 1..=3 {
        cluster.node_mut(id).set_peer_campaigns(NodeId(3), false);
    }
    // Node 3 holds the most up-to-date log, which alone would make it the choice (§3.10).
    cluster.isolate(2);
    cluster.propose(1, b"only 1 and 3 have this");
    cluster.heal();
    let named = cluster.node_mut(1).transfer_leadership(Some(NodeId(3)));
    assert_eq!(named, Err(TransferError::DoesNotCampaign(NodeId(3))));
    assert_eq!(cluster.node_mut(1).transfer_leadership(None), Ok(NodeId(2)));
    cluster.stabilize();
    assert_eq!(cluster.leaders(), vec![2]);
    // With no campaigning voter besides the leader there is no target at all.
    cluster.node_mut(2).set_peer_campaigns(NodeId(1), false);
    assert_eq!(cluster.node_mut(2).transfer_leadership(None), Err(TransferError::NoTarget));
    assert!(!cluster.node(2).peer_campaigns(NodeId(1)));
    cluster.node_mut(2).set_peer_campaigns(NodeId(1), true);
    assert_eq!(cluster.node_mut(2).transfer_leadership(None), Ok(NodeId(1)));
}

#[test]
fn thesis_3_10_learning_that_the_target_does_not_campaign_abandons_the_transfer() {
    let mut cluster = elected_with_quiet(3, &[3]);
    cluster.isolate(3);
    cluster.propose(1, b"3 lags, so the transfer waits for it");
    assert_eq!(cluster.node_mut(1).transfer_leadership(Some(NodeId(3))), Ok(NodeId(3)));
    cluster.node_mut(1).set_peer_campaigns(NodeId(3), false);
    assert_eq!(cluster.node(1).transfer_target(), None);
    cluster.node_mut(1).propose(Bytes::from_static(b"accepted again")).expect("no transfer holds proposals");
}

#[test]
fn thesis_6_2_a_non_campaigning_voter_keeps_a_leader_in_office_and_commits_with_it() {
    // Node 2 is down; the leader's majority is itself and the non-campaigning node 3.
    let mut cluster = elected_with_quiet(3, &[3]);
    cluster.crash(2);
    cluster.tick_all(100);
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 0);
    let proposed = cluster.propose(1, b"committed by 1 and 3");
    assert_eq!(cluster.node(1).commit_index(), proposed.index);
    assert!(cluster.node(1).lease_is_valid(), "3's answers hold the lease up (§6.4.1)");
}

#[test]
fn thesis_9_6_a_non_campaigning_voter_refuses_pre_votes_while_it_hears_from_a_leader() {
    // Node 2 is cut off from the leader but not from node 3, which still hears from node 1.
    let mut cluster = elected_with_quiet(3, &[3]);
    cluster.cut.insert((1, 2));
    cluster.cut.insert((2, 1));
    cluster.tick_all(60);
    assert_eq!(cluster.leaders(), vec![1]);
    assert!(cluster.node(2).stats().pre_votes_started > 0);
    assert_eq!(cluster.node(2).stats().elections_started, 0, "no pre-vote was granted");
    assert!(cluster.node(3).stats().votes_ignored_in_lease > 0);
}

/// A node whose log ends with an uncommitted configuration that removes it, as a leader that
/// appended its own removal and restarted would hold (thesis §4.2.2).
fn restarted_after_appending_its_own_removal(campaigns: bool) -> RaftNode {
    let mut restored = bootstrap(Membership::with_voters([1, 2, 3].map(NodeId)));
    restored.hard_state.term = Term(2);
    restored.entries.push(Entry {
        term: Term(2),
        index: LogIndex(2),
        payload: EntryPayload::Membership(Box::new(Membership::with_voters([2, 3].map(NodeId)))),
    });
    let mut node_config = config(1);
    node_config.campaigns = campaigns;
    RaftNode::new(node_config, restored).expect("a valid restore")
}

#[test]
fn thesis_4_2_2_a_removed_non_campaigning_voter_does_not_campaign_on_its_committed_configuration() {
    // `is_promotable` lets a campaigning node in this position campaign on the committed
    // configuration (§4.2.2); a non-campaigning one still never does.
    for campaigns in [true, false] {
        let mut node = restarted_after_appending_its_own_removal(campaigns);
        assert!(!node.membership().is_voter(NodeId(1)));
        for _ in 0..100 {
            node.tick();
        }
        node.campaign();
        let started = node.stats().pre_votes_started + node.stats().elections_started;
        assert_eq!(started > 0, campaigns, "campaigns = {campaigns}");
    }
}

#[test]
fn a_restarted_non_campaigning_voter_still_never_campaigns() {
    let mut cluster = elected_with_quiet(3, &[3]);
    cluster.propose(1, b"a term above 1 on disk");
    cluster.crash(1);
    cluster.crash(2);
    cluster.crash(3);
    cluster.restart(3);
    assert!(cluster.node(3).term() > Term(1));
    for _ in 0..200 {
        cluster.tick(3);
    }
    assert_eq!(campaigns_started(&cluster, 3), 0);
    assert_eq!(cluster.node(3).role(), Role::Follower);
}

#[test]
fn thesis_4_a_change_that_would_leave_campaigning_voters_a_minority_is_refused() {
    let mut cluster = elected_with_quiet(3, &[3]);
    let four = cluster.add_empty_node();
    for id in 1..=3 {
        cluster.node_mut(id).set_peer_campaigns(NodeId(3), false);
        cluster.node_mut(id).set_peer_campaigns(NodeId(four), false);
    }
    let change = |cluster: &mut TestCluster, change| {
        let expected = cluster.node(1).membership_index();
        let result = cluster.node_mut(1).change_membership(change, expected);
        cluster.stabilize();
        cluster.tick_all(30);
        result
    };
    // {1, 2} campaign, {3, 4} would not: two of four is no majority.
    let refused = Err(MembershipError::CampaigningMinority);
    assert_eq!(change(&mut cluster, MembershipChange::AddVoter(NodeId(four))), refused);
    assert_eq!(change(&mut cluster, MembershipChange::RemoveServer(NodeId(2))), refused);
    assert_eq!(change(&mut cluster, MembershipChange::DemoteVoter(NodeId(2))), refused);
    let replace = MembershipChange::ReplaceVoters([1, 3].map(NodeId).into_iter().collect());
    assert_eq!(change(&mut cluster, replace), refused);
    // As a learner it may join; and changes that keep a campaigning majority go ahead.
    change(&mut cluster, MembershipChange::AddLearner(NodeId(four))).expect("a learner never counts");
    change(&mut cluster, MembershipChange::DemoteVoter(NodeId(3))).expect("fewer non-campaigning voters");
    assert_eq!(cluster.node(1).membership().voters, [1, 2].map(NodeId).into_iter().collect());
}
