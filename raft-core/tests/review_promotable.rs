//! Adversarial review of `RaftNode::is_promotable` (commit 0964c21): a voter of the committed
//! configuration that the latest, uncommitted one removes still campaigns (thesis §4.2.2),
//! counting only the votes of its latest configuration.
//!
//! Each test pins one property the paper asks of such a server: it is elected only by a
//! majority of the configuration it is *not* in (§4.2.2, never by its own vote nor by the
//! committed configuration's majority), it then manages the cluster until C_new commits and
//! steps down, it stops campaigning once it knows its removal committed, and a removed server
//! that never learns the commit cannot disrupt the cluster (§4.2.3, §9.6).

mod common;

use common::{config, TestCluster};
use raft_core::{
    bootstrap, Bytes, Entry, EntryPayload, LogIndex, Membership, MembershipChange, MembershipError, Message,
    MessageBody, NodeId, Restored, Role, Term,
};
use std::collections::BTreeSet;

fn ids(list: &[u64]) -> BTreeSet<NodeId> {
    list.iter().map(|&i| NodeId(i)).collect()
}

fn elected(size: u64) -> TestCluster {
    let mut cluster = TestCluster::new(size);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

/// Node 1 leads `size` voters, is cut off, writes an entry only it holds and then a
/// configuration that removes (or demotes) it, and steps down by check-quorum.
fn removed_leader_cut_off(size: u64, change: MembershipChange) -> TestCluster {
    let mut cluster = elected(size);
    let t = cluster.configs[0].election_timeout_ticks;
    // Everyone apart: the others must not elect a leader among themselves meanwhile.
    for id in 1..=size {
        cluster.isolate(id);
    }
    cluster.propose(1, b"only on node 1");
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(change, expected).unwrap();
    cluster.stabilize();
    cluster.tick_all(3 * t);
    assert_ne!(cluster.node(1).role(), Role::Leader, "check-quorum deposed node 1");
    cluster
}

/// The latest configuration, not the committed one, decides node 1's election. Three voters;
/// node 1 appended `{2, 3}` and is cut off. Reconnected to node 2 only, it has two of the three
/// votes of its committed configuration `{1, 2, 3}` (its own and node 2's), but only one of the
/// two of `{2, 3}`: it must not win. With node 3 too it wins.
#[test]
fn a_removed_server_is_elected_only_by_a_majority_of_its_latest_configuration() {
    let mut cluster = removed_leader_cut_off(3, MembershipChange::RemoveServer(NodeId(1)));
    let t = cluster.configs[0].election_timeout_ticks;
    // Nodes 2 and 3 are behind node 1 and need its vote for `{1, 2, 3}`; keep 3 away from 2.
    cluster.heal();
    cluster.isolate(3);
    for _ in 0..10 {
        cluster.tick_all(t);
        assert!(
            cluster.leaders().is_empty(),
            "no majority of {{2, 3}} is reachable: {:?}",
            cluster.leaders()
        );
    }
    assert!(cluster.node(1).stats().pre_votes_started > 0, "node 1 did campaign");
    cluster.heal();
    let settled = |c: &TestCluster| {
        let leaders = c.leaders();
        leaders.len() == 1 && {
            let leader = c.node(leaders[0]);
            leader.membership().is_voter(leader.id()) && leader.commit_index() >= leader.membership_index()
        }
    };
    for _ in 0..20 {
        cluster.tick_all(t);
        if settled(&cluster) {
            break;
        }
    }
    // Either node 1 won with {2, 3}, committed its removal and stepped down, or nodes 2 and 3
    // won with {1, 2, 3} and cut node 1's uncommitted suffix: both are correct.
    assert!(
        settled(&cluster),
        "a leader that is a voter of its committed configuration: {:?}",
        cluster.leaders()
    );
}

/// Thesis §4.2.2: "a leader that is not part of C_new manages the cluster until C_new is
/// committed, then steps down". Node 1 wins while not in its configuration, is the leader only
/// until its removal commits (it cannot start another change meanwhile), then steps down and
/// never campaigns again, although no leader ever talks to it again.
#[test]
fn a_removed_leader_commits_its_removal_steps_down_and_falls_silent() {
    let mut cluster = removed_leader_cut_off(2, MembershipChange::RemoveServer(NodeId(1)));
    let t = cluster.configs[0].election_timeout_ticks;
    cluster.heal();
    // Node 2 needs node 1's vote and is refused (§5.4.1); node 1 needs node 2's only. Hold
    // back node 2's answers to a leader so that node 1 stays leader with C_new uncommitted.
    cluster.node_mut(1).campaign();
    cluster.stabilize_filtered(|m| {
        !matches!(m.body, MessageBody::AppendResponse { .. } | MessageBody::HeartbeatResponse { .. })
    });
    let node1 = cluster.node(1);
    assert_eq!(node1.role(), Role::Leader, "elected by node 2, the one voter of {{2}}");
    assert!(!node1.membership().is_voter(NodeId(1)));
    assert!(node1.commit_index() < node1.membership_index());
    assert!(node1.votes().count() == 0);
    let expected = node1.membership_index();
    let refused = cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(3)), expected);
    assert_eq!(refused, Err(MembershipError::ChangeInProgress), "one change at a time");
    let proposed = cluster.node_mut(1).propose(Bytes::from_static(b"while removed")).unwrap();
    // Now let the acknowledgements through: C_new commits, node 1 steps down.
    cluster.tick_all(t);
    let node1 = cluster.node(1);
    assert_ne!(node1.role(), Role::Leader);
    assert!(node1.commit_index() >= node1.membership_index(), "node 1 knows its removal committed");
    let campaigns = node1.stats().pre_votes_started + node1.stats().elections_started;
    let term = node1.term();
    for _ in 0..20 {
        cluster.tick_all(t);
    }
    let node1 = cluster.node(1);
    assert_eq!(
        node1.stats().pre_votes_started + node1.stats().elections_started,
        campaigns,
        "a server that knows its removal committed never campaigns"
    );
    assert_eq!(node1.term(), term);
    assert_eq!(cluster.leaders(), vec![2]);
    assert_eq!(cluster.node(2).membership(), &Membership::with_voters(ids(&[2])));
    // What the removed leader accepted while leading is kept (§4.2.2: it manages the cluster).
    assert!(cluster.node(2).commit_index() >= proposed.index);
    assert_eq!(cluster.node(2).term_at(proposed.index), Some(proposed.term));
}

/// A demoted voter is a learner of its latest configuration: the same rule applies (§4.2.2),
/// and once the demotion commits it follows the new leader as a learner and never campaigns.
#[test]
fn a_leader_that_demoted_itself_is_elected_once_then_stays_a_learner() {
    let mut cluster = removed_leader_cut_off(2, MembershipChange::DemoteVoter(NodeId(1)));
    let t = cluster.configs[0].election_timeout_ticks;
    cluster.heal();
    for _ in 0..20 {
        cluster.tick_all(t);
        if cluster.leaders() == vec![2] {
            break;
        }
    }
    assert_eq!(cluster.leaders(), vec![2]);
    let mut expected = Membership::with_voters(ids(&[2]));
    expected.learners.insert(NodeId(1));
    assert_eq!(cluster.node(2).membership(), &expected);
    let campaigns = cluster.node(1).stats().pre_votes_started;
    cluster.propose(2, b"after the demotion");
    for _ in 0..20 {
        cluster.tick_all(t);
    }
    assert_eq!(cluster.node(1).stats().pre_votes_started, campaigns, "a committed learner never campaigns");
    assert_eq!(cluster.node(1).commit_index(), cluster.node(2).commit_index(), "the learner follows");
}

/// Thesis §4.2.3 / §9.6: a removed server that never learns that its removal committed (the
/// leader stops talking to it the moment it appends C_new) campaigns on (`is_promotable` reads
/// its own commit index, which lags for ever), but cannot disrupt: with pre-vote it is refused
/// while a leader is heard, and once the new configuration committed (through the new leader's
/// no-op, §5.4.2) its log is stale, so it is refused even with no leader at all. Three voters;
/// node 1 removes itself, nodes 2 and 3 store the entry but node 1 never hears them.
fn removal_committed_without_the_removed_leader_knowing(pre_vote: bool, check_quorum: bool) {
    let configs: Vec<_> = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.pre_vote = pre_vote;
            c.check_quorum = check_quorum;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    let t = cluster.configs[0].election_timeout_ticks;
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(1)), expected).unwrap();
    // Nodes 2 and 3 store C_new; every answer to node 1 is lost.
    cluster.cut.insert((2, 1));
    cluster.cut.insert((3, 1));
    cluster.stabilize();
    assert_eq!(cluster.node(2).membership(), &Membership::with_voters(ids(&[2, 3])));
    // Check-quorum deposes node 1 while nodes 2 and 3 elect a leader of {2, 3}.
    cluster.isolate(1);
    for _ in 0..40 {
        cluster.tick_all(t);
        if cluster.leaders().iter().any(|&l| l != 1) {
            break;
        }
    }
    let leader = *cluster.leaders().iter().find(|&&l| l != 1).expect("nodes 2 and 3 elect a leader");
    for _ in 0..3 {
        cluster.tick_all(t);
    }
    let new_leader = cluster.node(leader);
    assert!(new_leader.commit_index() >= new_leader.membership_index(), "C_new committed");
    assert!(cluster.node(1).commit_index() < cluster.node(1).membership_index(), "node 1 does not know");
    let terms: Vec<Term> = [2, 3].iter().map(|&id| cluster.node(id).term()).collect();
    cluster.heal();
    let campaigns_before =
        cluster.node(1).stats().pre_votes_started + cluster.node(1).stats().elections_started;
    for _ in 0..30 {
        cluster.tick_all(t);
    }
    let after: Vec<Term> = [2, 3].iter().map(|&id| cluster.node(id).term()).collect();
    assert_eq!(after, terms, "node 1 did not raise the cluster's term");
    assert_eq!(cluster.leaders().iter().filter(|&&l| l != 1).copied().collect::<Vec<_>>(), vec![leader]);
    let campaigns_after =
        cluster.node(1).stats().pre_votes_started + cluster.node(1).stats().elections_started;
    // The cost (docs finding): it keeps asking for ever, one round per election timeout, and
    // every voter it asks counts a dropped message from a non-member each time.
    assert!(
        campaigns_after - campaigns_before >= 10,
        "node 1 campaigns about once per timeout, for ever: {} rounds in 30 timeouts",
        campaigns_after - campaigns_before
    );
    assert!(cluster.node(leader).stats().messages_from_non_members >= 10);
    // Nor can it win with the leader gone: its log lacks the new leader's no-op.
    cluster.crash(leader);
    for _ in 0..30 {
        cluster.tick_all(t);
    }
    assert!(!cluster.leaders().contains(&1), "node 1 cannot be elected any more");
}

#[test]
fn a_removal_committed_behind_the_removed_server_cannot_be_disrupted_with_pre_vote() {
    removal_committed_without_the_removed_leader_knowing(true, true);
}

#[test]
fn a_removal_committed_behind_the_removed_server_cannot_be_disrupted_without_pre_vote() {
    removal_committed_without_the_removed_leader_knowing(false, true);
}

/// Thesis §3.10 + §4.2.2: a leader not in its latest configuration may hand leadership over
/// before its removal commits; the target is a voter of that configuration.
#[test]
fn a_removed_leader_can_transfer_leadership_to_a_voter_of_c_new() {
    let mut cluster = elected(3);
    let expected = cluster.node(1).membership_index();
    cluster.cut.insert((2, 1));
    cluster.cut.insert((3, 1));
    cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(1)), expected).unwrap();
    cluster.stabilize();
    assert_eq!(cluster.node(1).role(), Role::Leader, "its removal has not committed");
    cluster.heal();
    let target = cluster.node_mut(1).transfer_leadership(None).unwrap();
    assert!([2, 3].contains(&target.0));
    for _ in 0..10 {
        cluster.tick_all(1);
    }
    assert_eq!(cluster.leaders(), vec![target.0]);
}

/// Restores node 1 with a log whose committed configuration is `{1, 2}` and whose latest,
/// uncommitted configuration is `latest`.
fn restored_with_latest(latest: Membership) -> TestCluster {
    let committed = Membership::with_voters(ids(&[1, 2]));
    let mut restored: Restored = bootstrap(committed.clone());
    restored.hard_state.term = Term(2);
    restored.entries.push(Entry {
        term: Term(2),
        index: LogIndex(2),
        payload: EntryPayload::Membership(Box::new(latest)),
    });
    let peer = bootstrap(committed);
    TestCluster::from_restored(vec![config(1), config(2)], vec![restored, peer])
}

/// An empty quorum must not elect anyone. The engine never writes a configuration without
/// voters (`NoVotersLeft`), but nothing stops one arriving from storage or from a peer's
/// AppendEntries. Before 0964c21 node 1 was not promotable under it; now its committed
/// configuration `{1, 2}` makes it promotable, and `vote_result` counts an empty voter set as
/// won, so it becomes leader on its own, alone, of a configuration that can never commit
/// anything (`committed_index` of no voters is `u64::MAX`, which has no term), and check-quorum
/// (`has_quorum` of nobody) never deposes it.
///
/// Severity: hardening, not reachable through the public API. Smallest fix: an empty
/// *incoming* voter set loses every vote (`quorum::vote_result`), and/or refuse configuration
/// entries without voters where entries are accepted (AppendEntries, restore, snapshots).
#[test]
fn a_configuration_without_voters_elects_no_one() {
    let mut cluster = restored_with_latest(Membership::default());
    cluster.let_restart_leases_lapse();
    for _ in 0..5 {
        cluster.tick_all(10);
    }
    assert!(cluster.leaders().is_empty(), "elected by an empty quorum: {:?}", cluster.leaders());
}

/// The same through the network: a (buggy) leader of term 3 sends node 1 a configuration with
/// no voters; node 1 then elects itself. Shows the path is a peer's message, not only storage.
#[test]
fn a_configuration_without_voters_from_a_peer_elects_no_one() {
    let mut cluster = TestCluster::new(2);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    let last = cluster.node(2).last_index();
    let term = Term(cluster.node(1).term().0 + 1);
    let empty = Entry { term, index: last.next(), payload: EntryPayload::Membership(Box::default()) };
    cluster.isolate(1);
    cluster.isolate(2);
    let forged = Message {
        from: NodeId(1),
        to: NodeId(2),
        term,
        body: MessageBody::AppendEntries {
            prev_log_index: last,
            prev_log_term: cluster.node(2).last_term(),
            entries: vec![empty],
            leader_commit: last,
        },
    };
    let _ = cluster.node_mut(2).step(forged);
    cluster.flush();
    cluster.network.clear();
    for _ in 0..5 {
        cluster.tick_all(10);
    }
    assert_ne!(cluster.node(2).role(), Role::Leader, "node 2 leads a configuration of no voters");
}

/// Joint consensus (thesis §4.3): node 1 leads `{1, 2, 3}` to `{2, 3, 4}`. The joint
/// configuration commits; node 1 appends C_new (without itself) and an entry, but the others
/// never receive them, and everyone is cut apart. Node 1 is promotable through its committed
/// configuration, the joint one, where it is an outgoing voter, and counts only `{2, 3, 4}`.
/// Whoever wins, the cluster ends in a committed `{2, 3, 4}` led by one of its voters.
#[test]
fn a_leader_that_left_a_joint_configuration_campaigns_with_c_new_only() {
    let mut cluster = elected(3);
    let t = cluster.configs[0].election_timeout_ticks;
    let four = cluster.add_empty_node();
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(four)), expected).unwrap();
    cluster.tick_all(t);
    let expected = cluster.node(1).membership_index();
    assert!(cluster.node(1).commit_index() >= expected);
    cluster
        .node_mut(1)
        .change_membership(MembershipChange::ReplaceVoters(ids(&[2, 3, 4])), expected)
        .unwrap();
    // Deliver everything but the entries from C_new on.
    let carries_c_new = |m: &Message| {
        match &m.body {
        MessageBody::AppendEntries { entries, .. } => entries
            .iter()
            .any(|e| matches!(&e.payload, EntryPayload::Membership(c) if !c.is_joint() && c.voters == ids(&[2, 3, 4]))),
        _ => false,
    }
    };
    cluster.stabilize_filtered(|m| !carries_c_new(m));
    let node1 = cluster.node(1);
    assert_eq!(node1.membership(), &Membership::with_voters(ids(&[2, 3, 4])), "C_new appended on node 1");
    assert!(node1.membership_at(node1.commit_index()).is_joint(), "the joint configuration committed");
    assert!(cluster.node(2).membership().is_joint(), "node 2 has only the joint configuration");
    for id in 1..=4 {
        cluster.isolate(id);
    }
    cluster.propose(1, b"only on node 1");
    cluster.tick_all(3 * t);
    assert_ne!(cluster.node(1).role(), Role::Leader);
    cluster.heal();
    let settled = |c: &TestCluster| {
        let leaders = c.leaders();
        leaders.len() == 1 && {
            let leader = c.node(leaders[0]);
            leader.membership() == &Membership::with_voters(ids(&[2, 3, 4]))
                && leader.commit_index() >= leader.membership_index()
        }
    };
    for _ in 0..30 {
        cluster.tick_all(t);
        if settled(&cluster) {
            break;
        }
    }
    assert!(settled(&cluster), "leaders {:?}", cluster.leaders());
    assert_ne!(cluster.leaders(), vec![1]);
}

/// A single voter hands the cluster to a learner through joint consensus (`{1}` to `{2}`) and
/// is cut off after the joint configuration commits but before C_new reaches node 2. Node 1's
/// latest configuration `{2}` has no voter it can reach and does not contain it: its own vote
/// must count for nothing, on any tick (check-quorum would hide a wrongly won term after a
/// timeout, so every tick is checked). Reconnected, it is the only server that can end this
/// (node 2 needs its vote in `{2}/{1}` and is behind), and it does.
#[test]
fn a_sole_voter_that_handed_over_never_elects_itself() {
    let mut cluster = elected(1);
    let t = cluster.configs[0].election_timeout_ticks;
    let two = cluster.add_empty_node();
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::AddLearner(NodeId(two)), expected).unwrap();
    cluster.tick_all(t);
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::ReplaceVoters(ids(&[2])), expected).unwrap();
    let carries_c_new = |m: &Message| match &m.body {
        MessageBody::AppendEntries { entries, .. } => entries.iter().any(
            |e| matches!(&e.payload, EntryPayload::Membership(c) if !c.is_joint() && c.voters == ids(&[2])),
        ),
        _ => false,
    };
    cluster.stabilize_filtered(|m| !carries_c_new(m));
    assert_eq!(cluster.node(1).membership(), &Membership::with_voters(ids(&[2])));
    assert!(cluster.node(2).membership().is_joint());
    cluster.isolate(1);
    let led_before = cluster.node(1).stats().terms_led;
    for _ in 0..20 * t {
        cluster.tick_all(1);
        if cluster.node(1).role() == Role::Leader {
            // Still the leader of the term that made the change, until check-quorum deposes it.
            assert_eq!(cluster.node(1).stats().terms_led, led_before, "node 1 elected itself alone");
        }
    }
    assert_ne!(cluster.node(1).role(), Role::Leader);
    assert!(cluster.node(1).stats().pre_votes_started > 0, "it did try");
    cluster.heal();
    for _ in 0..20 {
        cluster.tick_all(t);
        if cluster.leaders() == vec![2]
            && cluster.node(2).commit_index() >= cluster.node(2).membership_index()
        {
            break;
        }
    }
    assert_eq!(cluster.leaders(), vec![2]);
    assert_eq!(cluster.node(2).membership(), &Membership::with_voters(ids(&[2])));
}
