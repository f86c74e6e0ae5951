//! Adversarial review of commit 182e1a8: check-quorum evaluated on every tick against each
//! member's last answer (thesis §6.2), instead of once per election-timeout-long round.
//!
//! Two kinds of test live here:
//! - `finding_*` tests demonstrate a weakness of the reviewed change. They failed on 182e1a8;
//!   each now checks its fix (urgent heartbeats and `2h <= T` in raft-core, peer messages
//!   before owed ticks in native-node's driver, re-timed playground captions) and says how.
//! - every other test is an attack that did not break the change, kept as a regression test.
//!   `figures_*` tests print what they measure (`-- --nocapture`).

mod common;

use common::{config, TestCluster};
use raft_core::sim::{Input, LinkConfig, Script, SimConfig, Simulation};
use raft_core::{
    AppendOutcome, Bytes, Config, LogIndex, MembershipChange, Message, MessageBody, NodeId, ReadMode, Role,
    Term,
};

fn timeout() -> u64 {
    config(1).election_timeout_ticks
}

fn elected(size: u64) -> TestCluster {
    let mut cluster = TestCluster::new(size);
    cluster.campaign(1);
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    cluster
}

fn change(cluster: &mut TestCluster, leader: u64, change: MembershipChange) -> LogIndex {
    let expected = cluster.node(leader).membership_index();
    let index = cluster.node_mut(leader).change_membership(change, expected).expect("change accepted");
    cluster.stabilize();
    index
}

fn since_contact(cluster: &TestCluster, leader: u64, follower: u64) -> u64 {
    cluster.node(leader).follower_progress().find(|p| p.id == NodeId(follower)).unwrap().ticks_since_contact
}

// ----- §6.4.1 leases: the lease never outlives what the followers promise ---------------------

/// The leader is cut off at every phase of its heartbeat and (old) round timers while it serves
/// lease reads on every tick; the majority side elects a new leader as soon as it can. At no
/// tick does the old leader hold a valid lease while another server leads, and it steps down
/// no later than one election timeout after its last answer.
#[test]
fn a_cut_off_leader_never_holds_a_lease_while_another_leads_at_any_phase() {
    let t = timeout();
    for phase in 0..2 * t {
        let mut cluster = elected(5);
        cluster.propose(1, b"x");
        cluster.tick_all(t + phase);
        assert!(cluster.node(1).lease_is_valid(), "phase {phase}: a working leader holds a lease");
        cluster.isolate(1);
        let mut stepped_down = None;
        for tick in 1..=4 * t {
            cluster.tick_all(1);
            let others: Vec<u64> = cluster.leaders().into_iter().filter(|&l| l != 1).collect();
            let lease = cluster.node(1).lease_is_valid();
            assert!(
                !lease || others.is_empty(),
                "phase {phase}, tick {tick}: node 1 serves lease reads while {others:?} leads"
            );
            if lease {
                let request = 1_000 + tick;
                cluster.node_mut(1).read(request, ReadMode::Lease);
            }
            if stepped_down.is_none() && cluster.node(1).role() != Role::Leader {
                stepped_down = Some(tick);
            }
        }
        let stepped_down = stepped_down.expect("the cut-off leader steps down");
        assert!(stepped_down <= t, "phase {phase}: stepped down {stepped_down} ticks after the cut");
        assert_eq!(cluster.leaders().len(), 1, "phase {phase}: the majority elected a leader");
    }
}

/// The old leader's lease and the followers' refusal to vote are both counted from the round
/// the followers answered, not from check-quorum: stepping down sooner cannot lengthen a lease,
/// and a leader that stepped down serves nothing from a lease.
#[test]
fn a_leader_that_stepped_down_answers_no_lease_read() {
    let mut cluster = elected(3);
    cluster.propose(1, b"x");
    cluster.isolate(1);
    for _ in 0..timeout() {
        cluster.tick(1);
    }
    assert_eq!(cluster.node(1).role(), Role::Follower);
    assert!(!cluster.node(1).lease_is_valid());
    cluster.node_mut(1).read(7, ReadMode::Lease);
    let ready = cluster.node_mut(1).ready();
    assert!(ready.read_states.iter().all(|r| r.request_id != 7 || r.result.is_err()));
}

// ----- which answers count as contact -----------------------------------------------------------

/// Every kind of current-term answer from a member refreshes its contact: AppendEntries,
/// heartbeat and InstallSnapshot responses.
#[test]
fn every_current_term_answer_refreshes_contact() {
    let answers = [
        MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { match_index: LogIndex(0) } },
        MessageBody::HeartbeatResponse { context: 0 },
        MessageBody::InstallSnapshotResponse { snapshot_index: LogIndex(0), next_offset: 0, done: false },
    ];
    for body in answers {
        let mut cluster = elected(3);
        cluster.isolate(1);
        for _ in 0..timeout() - 1 {
            cluster.tick(1);
        }
        assert_eq!(since_contact(&cluster, 1, 2), timeout() - 1);
        let term = cluster.node(1).term();
        let name = body.kind_name();
        cluster.node_mut(1).step(Message { from: NodeId(2), to: NodeId(1), term, body }).unwrap();
        assert_eq!(since_contact(&cluster, 1, 2), 0, "{name} counts as contact");
        cluster.tick(1);
        assert_eq!(cluster.node(1).role(), Role::Leader, "{name} kept the leader up");
    }
}

/// An answer from an earlier term (a delayed copy from before an election) proves nothing about
/// this term: it never refreshes contact, and the leader steps down on time.
#[test]
fn a_stale_term_answer_does_not_refresh_contact() {
    let mut cluster = TestCluster::new(3);
    cluster.campaign(2);
    cluster.tick_all(2);
    cluster.node_mut(2).transfer_leadership(Some(NodeId(1))).unwrap();
    cluster.stabilize();
    cluster.tick_all(2);
    assert_eq!(cluster.leaders(), vec![1]);
    let term = cluster.node(1).term();
    assert!(term > Term(2));
    cluster.isolate(1);
    for _ in 0..timeout() - 1 {
        cluster.tick(1);
    }
    let before = since_contact(&cluster, 1, 2);
    let stale = [
        MessageBody::HeartbeatResponse { context: 1 },
        MessageBody::AppendResponse { outcome: AppendOutcome::Accepted { match_index: LogIndex(1) } },
        MessageBody::InstallSnapshotResponse { snapshot_index: LogIndex(1), next_offset: 0, done: true },
    ];
    for body in stale {
        let message = Message { from: NodeId(2), to: NodeId(1), term: Term(term.0 - 1), body };
        let _ = cluster.node_mut(1).step(message);
    }
    assert_eq!(since_contact(&cluster, 1, 2), before);
    let mut ticks = 0;
    while cluster.node(1).role() == Role::Leader {
        cluster.tick(1);
        ticks += 1;
        assert!(ticks <= timeout());
    }
    assert_eq!(before + ticks, timeout(), "stepped down one election timeout after the last real answer");
}

/// Learners answer too, but only voters make a quorum: a leader that hears only learners steps
/// down one election timeout after its voters fell silent.
#[test]
fn learner_answers_do_not_make_a_quorum() {
    let mut cluster = elected(3);
    let four = cluster.add_empty_node();
    let five = cluster.add_empty_node();
    change(&mut cluster, 1, MembershipChange::AddLearner(NodeId(four)));
    change(&mut cluster, 1, MembershipChange::AddLearner(NodeId(five)));
    cluster.tick_all(2);
    for voter in [2, 3] {
        cluster.cut.insert((1, voter));
        cluster.cut.insert((voter, 1));
    }
    let freshest = since_contact(&cluster, 1, 2).min(since_contact(&cluster, 1, 3));
    let mut stepped_down = None;
    for tick in 1..=2 * timeout() {
        cluster.tick(1);
        for id in [four, five] {
            cluster.tick(id);
        }
        cluster.stabilize();
        assert!(since_contact_opt(&cluster, four).is_none_or(|s| s <= 2), "learners keep answering");
        if cluster.node(1).role() != Role::Leader {
            stepped_down = Some(tick);
            break;
        }
    }
    assert_eq!(
        stepped_down,
        Some(timeout() - freshest),
        "one election timeout after the voters' last answer"
    );
}

fn since_contact_opt(cluster: &TestCluster, follower: u64) -> Option<u64> {
    cluster.node(1).follower_progress().find(|p| p.id == NodeId(follower)).map(|p| p.ticks_since_contact)
}

// ----- §4 membership ----------------------------------------------------------------------------

/// A server added to the configuration gets an election timeout from the moment its progress is
/// created, and a silent new member costs nothing while the others make a majority of every
/// configuration: here node 4 never answers, joins as a learner and then as a voter of
/// C_new = {1, 2, 3, 4} through joint consensus (§4.3); the leader leads on throughout.
#[test]
fn a_silent_new_member_does_not_depose_a_leader_with_a_majority() {
    let mut cluster = elected(3);
    let four = cluster.add_empty_node();
    cluster.isolate(four);
    change(&mut cluster, 1, MembershipChange::AddLearner(NodeId(four)));
    assert_eq!(since_contact(&cluster, 1, four), 0);
    cluster.tick_all(timeout() / 2);
    let voters = [1, 2, 3, four].iter().map(|&i| NodeId(i)).collect();
    change(&mut cluster, 1, MembershipChange::ReplaceVoters(voters));
    cluster.tick_all(3 * timeout());
    assert!(cluster.node(1).membership().is_voter(NodeId(four)));
    assert!(!cluster.node(1).membership().is_joint());
    assert_eq!(cluster.leaders(), vec![1]);
    assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 0);
}

/// Joint consensus (§4.3): a leader needs a recent majority of *both* configurations; one side
/// answering is not enough, and the leader steps down one election timeout after the other
/// side's last answer.
#[test]
fn joint_configuration_needs_both_sides_recently() {
    let mut cluster = elected(3);
    let four = cluster.add_empty_node();
    let five = cluster.add_empty_node();
    change(&mut cluster, 1, MembershipChange::AddLearner(NodeId(four)));
    change(&mut cluster, 1, MembershipChange::AddLearner(NodeId(five)));
    cluster.tick_all(2);
    // Hold the joint configuration: the entry that leaves it must not commit. Cut the new side.
    let voters = [1, four, five].iter().map(|&i| NodeId(i)).collect();
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::ReplaceVoters(voters), expected).unwrap();
    for id in [four, five] {
        cluster.cut.insert((1, id));
        cluster.cut.insert((id, 1));
    }
    cluster.stabilize();
    assert!(cluster.node(1).membership().is_joint());
    let freshest = since_contact(&cluster, 1, four).min(since_contact(&cluster, 1, five));
    let mut stepped_down = None;
    for tick in 1..=2 * timeout() {
        cluster.tick_all(1);
        if cluster.node(1).role() != Role::Leader {
            stepped_down = Some(tick);
            break;
        }
        assert!(since_contact(&cluster, 1, 2) <= 2, "the old side keeps answering");
    }
    assert_eq!(
        stepped_down,
        Some(timeout() - freshest),
        "one election timeout after the new side's last answer"
    );
}

/// A leader that removed itself (§4.2.2) leads until the change commits; meanwhile it needs a
/// recent majority of the configuration it is not in, and its own "answer" does not count.
#[test]
fn a_leader_that_removed_itself_counts_only_the_others() {
    let mut cluster = elected(3);
    let expected = cluster.node(1).membership_index();
    cluster.node_mut(1).change_membership(MembershipChange::RemoveServer(NodeId(1)), expected).unwrap();
    // Node 2 alone answers: one of {2, 3} is not a majority of {2, 3}.
    cluster.cut.insert((1, 3));
    cluster.cut.insert((3, 1));
    cluster.stabilize();
    let age = since_contact(&cluster, 1, 3);
    assert!(!cluster.node(1).membership().is_voter(NodeId(1)));
    assert_eq!(cluster.leaders(), vec![1], "the removal is not committed");
    let mut stepped_down = None;
    for tick in 1..=2 * timeout() {
        cluster.tick_all(1);
        if cluster.node(1).role() != Role::Leader {
            stepped_down = Some(tick);
            break;
        }
    }
    assert_eq!(stepped_down, Some(timeout() - age));
    assert_eq!(cluster.node(1).stats().check_quorum_step_downs, 1);
}

// ----- spurious step-downs and liveness -----------------------------------------------------------

fn sim_step_downs(sim: &Simulation) -> u64 {
    sim.nodes().iter().filter_map(|n| n.raft.as_ref()).map(|r| r.stats().check_quorum_step_downs).sum()
}

fn sim_urgent_heartbeats(sim: &Simulation) -> u64 {
    sim.nodes().iter().filter_map(|n| n.raft.as_ref()).map(|r| r.stats().urgent_heartbeats).sum()
}

/// Runs a 5-server cluster with a proposal every 50 ms for `ms`, and returns (check-quorum
/// step-downs, per mille of 10 ms samples without a leader, elections, urgent heartbeats).
fn run_sim(mut config: SimConfig, ms: u64) -> (u64, u64, u64, u64) {
    config.link.latency_ms_min = config.link.latency_ms_min.min(config.link.latency_ms_max);
    let mut script = Script::new();
    for k in 0..ms / 50 {
        script.push(50 * k + 25, Input::Propose { data: Bytes::from(format!("p{k}")) });
    }
    let mut sim = Simulation::new(config, script).expect("valid simulation");
    let mut leaderless = 0;
    let samples = ms / 10;
    for k in 1..=samples {
        sim.run_until(10 * k);
        if sim.leader().is_none() {
            leaderless += 1;
        }
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    (sim_step_downs(&sim), leaderless * 1000 / samples, sim.stats().elections, sim_urgent_heartbeats(&sim))
}

/// A calm cluster never sees a check-quorum step-down: not with the simulator's defaults
/// (T = 10 ticks, heartbeats every 2), not with the playground's timing, not with message
/// delays that vary by up to half an election timeout. Nor an urgent heartbeat with the first
/// two; with the slow links, at most a few in 200 s (measured: 0-1).
#[test]
fn a_calm_cluster_never_steps_down() {
    for (name, latency_max, t, h) in
        [("defaults", 5, 10, 2), ("playground", 20, 20, 5), ("slow links", 50, 10, 2)]
    {
        for seed in 1..=3 {
            let mut config = SimConfig::new(5, seed);
            config.link =
                LinkConfig { latency_ms_min: 1, latency_ms_max: latency_max, ..LinkConfig::default() };
            config.election_timeout_ticks = t;
            config.heartbeat_interval_ticks = h;
            let (step_downs, leaderless, _, urgent) = run_sim(config, 200_000);
            println!("calm, {name}, seed {seed}: {urgent} urgent heartbeats");
            // Urgent heartbeats (a majority silent for T / 2) cost nothing when links are quick;
            // with delays up to half a timeout a round trip alone can take T / 2 now and then.
            let urgent_max = if latency_max * 2 >= t * 10 { 5 } else { 0 };
            assert!(urgent <= urgent_max, "{name}, seed {seed}: {urgent} urgent heartbeats in 200 s");
            assert_eq!(step_downs, 0, "{name}, seed {seed}: spurious check-quorum step-downs");
            assert!(leaderless <= 1, "{name}, seed {seed}: {leaderless}‰ without a leader");
        }
    }
}

/// Sums over 4 seeds × 400 s simulated, 5 servers, T = 10 ticks, heartbeats every 2 ticks,
/// random loss of `loss` per mille on every link both ways: (check-quorum step-downs,
/// elections, per mille of the time without a leader).
fn loss_figures(loss: u32) -> (u64, u64, u64) {
    let seeds = 4;
    let (mut step_downs, mut leaderless, mut elections) = (0, 0, 0);
    for seed in 1..=seeds {
        let mut config = SimConfig::new(5, seed);
        config.link.loss_per_mille = loss;
        let (s, l, e, _) = run_sim(config, 400_000);
        step_downs += s;
        leaderless += l;
        elections += e;
    }
    println!(
        "loss {loss}‰: {step_downs} check-quorum step-downs, {elections} elections, {}‰ of the time without a leader (4 seeds × 400 s simulated)",
        leaderless / seeds
    );
    (step_downs, elections, leaderless / seeds)
}

/// Figures, old against new (`-- --nocapture`), from `loss_figures`:
///
/// | loss | round-based check (182e1a8^) | sliding window (182e1a8) | sliding window + urgent heartbeats (now) |
/// |---|---|---|---|
/// | 10% | 0 step-downs, 6 elections, 0‰ leaderless | 0, 6, 0‰ | 0, 6, 0‰ |
/// | 20% | 0, 8, 0‰ | 0, 8, 0‰ | 0, 8, 0‰ |
/// | 30% | 0, 7, 0‰ | 5, 20, 1‰ | 0, 7, 0‰ |
/// | 40% | 22, 87, 9‰ | 274, 751, 96‰ | 12, 51, 4‰ |
///
/// Asserts that up to 20% loss costs no step-down at all.
#[test]
fn figures_step_downs_under_message_loss() {
    for loss in [100, 200, 300, 400] {
        let (step_downs, _, _) = loss_figures(loss);
        if loss <= 200 {
            assert_eq!(step_downs, 0, "{loss}‰ loss");
        }
    }
}

/// FINDING, fixed (liveness under heavy loss): the round-based check tolerated gaps between a
/// majority's answers of T + 1 to 2T - 1 ticks depending on the phase; the sliding window
/// tolerates less than T, i.e. with heartbeats every T/5 only four lost heartbeat round trips
/// to a majority in a row. At 30% loss (issue 12's nemesis rate) a calm-but-lossy cluster saw
/// check-quorum step-downs where it saw none, and at 40% it was leaderless 96‰ of the time
/// instead of 9‰ (10× the step-downs and elections). Fix: once a majority has been silent for
/// half an election timeout, the leader heartbeats on every tick until it answers (`tick_leader`;
/// none in a calm cluster, see `a_calm_cluster_never_steps_down`): 0 step-downs at 30%, 4‰
/// leaderless at 40%, better than the round-based check.
#[test]
fn finding_heavy_message_loss_now_deposes_leaders_the_round_based_check_kept() {
    let (step_downs_30, _, _) = loss_figures(300);
    let (_, _, leaderless_40) = loss_figures(400);
    assert_eq!(step_downs_30, 0, "30% loss: check-quorum step-downs (round-based check: 0)");
    assert!(leaderless_40 <= 20, "40% loss: {leaderless_40}‰ without a leader (round-based check: 9‰)");
}

/// Delivers every message on the network; answers to node 1 whose heartbeat round satisfies
/// `late` are held back and delivered after the next tick (one tick of jitter).
fn deliver_with_late_answers(cluster: &mut TestCluster, held: &mut Vec<Message>, late: impl Fn(u64) -> bool) {
    cluster.flush();
    while let Some(message) = cluster.network.pop_front() {
        let is_late = message.to == NodeId(1)
            && matches!(message.body, MessageBody::HeartbeatResponse { context } if late(context));
        if is_late {
            held.push(message);
        } else {
            cluster.deliver(message);
        }
        cluster.flush();
    }
}

/// Runs a 3-server cluster with heartbeats every `h` ticks for 20 election timeouts, answers to
/// odd heartbeat rounds held back by one tick (jitter), and returns node 1's check-quorum
/// step-downs.
fn step_downs_with_one_tick_of_jitter(h: u64) -> u64 {
    let configs: Vec<Config> = (1..=3)
        .map(|id| {
            let mut c = config(id);
            c.heartbeat_interval_ticks = h;
            c
        })
        .collect();
    let mut cluster = TestCluster::with_configs(configs);
    cluster.campaign(1);
    assert_eq!(cluster.leaders(), vec![1]);
    let mut held = Vec::new();
    for _ in 0..20 * timeout() {
        for id in cluster.ids() {
            cluster.node_mut(id).tick();
        }
        for message in std::mem::take(&mut held) {
            cluster.deliver(message);
        }
        // Odd rounds' answers arrive a tick late, even rounds' at once.
        deliver_with_late_answers(&mut cluster, &mut held, |round| round % 2 == 1);
    }
    assert_eq!(cluster.leaders(), vec![1]);
    cluster.node(1).stats().check_quorum_step_downs
}

/// FINDING, fixed (liveness, a valid configuration): `Config::validate` used to allow any
/// heartbeat interval below the election timeout. With `heartbeat_interval_ticks = T - 1`, one
/// tick of jitter in the answers (one heartbeat answered in its own tick, the next one tick
/// later) made the gap between two answers exactly T, and the sliding window stepped down on
/// it, in a healthy cluster (no loss; followers' timeouts drawn from [T, 2T) never fire).
/// Fixed twice over: `Config::validate` now requires `2 * heartbeat_interval_ticks <= T`
/// (thesis §6.2: a late or lost answer is always covered by the next heartbeat), and a leader
/// whose majority has been silent for T / 2 heartbeats on every tick until it answers.
#[test]
fn finding_a_heartbeat_interval_just_below_the_timeout_steps_down_on_one_tick_of_jitter() {
    let t = timeout();
    let mut c = config(1);
    c.heartbeat_interval_ticks = t - 1;
    assert!(c.validate().is_err(), "h = T - 1 is refused");
    c.heartbeat_interval_ticks = t / 2 + 1;
    assert!(c.validate().is_err(), "h > T / 2 is refused");
    c.heartbeat_interval_ticks = t / 2;
    assert!(c.validate().is_ok(), "h = T / 2 is allowed");
    for h in [1, 2, t / 2] {
        assert_eq!(
            step_downs_with_one_tick_of_jitter(h),
            0,
            "h = {h}, a healthy cluster with one tick of jitter"
        );
    }
}

/// How a driver catches up after a stall: the ticks it owes and the peer messages that
/// arrived meanwhile, in some order.
#[derive(Clone, Copy, Debug)]
enum CatchUp {
    /// The owed ticks, then the queued messages (native-node before the fix).
    TicksFirst,
    /// The queued peer messages, then the owed ticks (native-node's `CoreTask::run` now, when
    /// more than one tick is owed).
    MessagesFirst,
}

/// The leader is stalled for `T - 2` ticks, two ticks after its last answer, at every phase of
/// its heartbeat timer; the followers' answers to its last heartbeat wait in its inbox. Returns
/// the phases at which it stepped down when the stall ends and it catches up in `order`.
fn stalled_leader_step_downs(order: CatchUp) -> Vec<String> {
    let t = timeout();
    let stall = t - 2;
    let mut failures = Vec::new();
    for phase in 0..t {
        let mut cluster = elected(3);
        cluster.tick_all(t + phase);
        // The leader's last tick before the stall (a heartbeat may go out); the followers answer
        // what reached them, and their answers wait in the stalled leader's inbox.
        cluster.node_mut(1).tick();
        cluster.flush();
        let mut inbox = Vec::new();
        while let Some(m) = cluster.network.pop_front() {
            if m.to == NodeId(1) {
                inbox.push(m);
            } else {
                cluster.deliver(m);
                cluster.flush();
            }
        }
        let age = since_contact(&cluster, 1, 2).min(since_contact(&cluster, 1, 3));
        if let CatchUp::MessagesFirst = order {
            for m in inbox.drain(..) {
                let _ = cluster.node_mut(1).step(m);
            }
        }
        for _ in 0..stall {
            cluster.node_mut(1).tick();
        }
        // The followers heard from node 1 within the last `stall + 1 < T` ticks: none of them
        // could have campaigned or granted a pre-vote meanwhile.
        if cluster.node(1).role() != Role::Leader {
            failures.push(format!("phase {phase} (answers {age} ticks old at the stall)"));
        }
    }
    failures
}

/// FINDING, fixed (liveness, with native-node's driver): `raft-node` delivers the ticks it owes
/// after a stall (a slow disk, an overloaded machine, a short SIGSTOP) all at once (`CoreTask::
/// run`, biased select, ticker first, on purpose for leases). It used to deliver them *before*
/// the peer messages that arrived meanwhile: a leader stalled for `T - 2` ticks, two ticks
/// after its last answer, stepped down during the tick burst although no one else could be
/// elected (the followers heard from it less than T ago and refuse pre-votes), leaving the
/// cluster leaderless until a follower's timer fired. Now, when more than one tick is owed,
/// `CoreTask::run` steps the peer messages already queued first (no client request in between,
/// so no lease read is served on the stale clock); their contact is stamped with the older
/// tick, which only errs towards stepping down. This test models both orders on the core:
/// the old one must fail (the model catches the bug), the new one never may. native-node's
/// `catch_up` unit tests check that `CoreTask::run` uses the new order.
#[test]
fn finding_a_leader_stalled_less_than_an_election_timeout_steps_down_in_the_tick_burst() {
    let t = timeout();
    let old = stalled_leader_step_downs(CatchUp::TicksFirst);
    let new = stalled_leader_step_downs(CatchUp::MessagesFirst);
    println!(
        "stalled {} ticks (T = {t}); ticks first: stepped down at {old:?}; messages first: {new:?}",
        t - 2
    );
    assert!(!old.is_empty(), "the model reproduces the tick-burst step-down of the old order");
    assert!(new.is_empty(), "stalled {} ticks < T = {t}, stepped down at: {new:?}", t - 2);
}

// ----- the playground's captions (web/scenarios.js) ---------------------------------------------

/// The playground's timing (web/scenarios.js, `PLAYGROUND_OPTIONS`).
fn playground(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(5, seed);
    config.tick_ms = 10;
    config.election_timeout_ticks = 20;
    config.heartbeat_interval_ticks = 5;
    config.link.latency_ms_min = 10;
    config.link.latency_ms_max = 20;
    config.snapshot_interval_entries = 200;
    config
}

fn role(sim: &Simulation, id: u64) -> (Role, Term) {
    let raft = sim.node(NodeId(id)).unwrap().raft.as_ref().unwrap();
    (raft.role(), raft.term())
}

/// When node 3 first stops leading, in ms, in a run of `sim` up to `until`.
fn step_down_time(mut sim: Simulation, from: u64, until: u64) -> Option<u64> {
    (from..=until).find(|&ms| {
        sim.run_until(ms);
        role(&sim, 3).0 != Role::Leader
    })
}

fn is_leader(sim: &Simulation, id: u64) -> bool {
    role(sim, id).0 == Role::Leader
}

/// FINDING, fixed (docs: the playground): the scenario 'check-quorum' in web/scenarios.js said
/// at 848 ms "Node 3 cannot hear of it: two leaders, in different terms" and only at 855 ms
/// that node 3 steps down: times taken from the round-based check. Node 3 is cut off at
/// 600 ms and now steps down one election timeout (200 ms) after its last answer, at 785 ms,
/// before the others elect node 4, so web/tests/learner.spec.mjs ('every caption's predicate
/// holds') failed. The captions are re-timed (790 ms: node 3 steps down, nobody leads; 848 ms:
/// node 4 leads term 3, node 3 follows in term 2). This test replays the scenario on the
/// core's simulator (the playground's `SimCluster` is a thin wrapper around it) and checks
/// the new captions' predicates at their times, and the ones before, to show the replay is
/// faithful; the browser test checks the same in the playground.
#[test]
fn finding_the_playground_check_quorum_scenario_captions_no_longer_hold() {
    let scenario = || {
        let mut sim = Simulation::new(playground(18), Script::new()).unwrap();
        sim.schedule(600, Input::Partition { side: vec![NodeId(3)] });
        sim
    };
    let stepped_down_at = step_down_time(scenario(), 600, 1400);
    println!("node 3 (cut off at 600 ms) stepped down at {stepped_down_at:?} ms");
    let mut sim = scenario();
    sim.run_until(599);
    assert_eq!(role(&sim, 3), (Role::Leader, Term(2)), "600 ms: node 3 leads term 2");
    sim.run_until(700);
    assert!(is_leader(&sim, 3), "700 ms: node 3 still leads");
    sim.run_until(790);
    assert_eq!(role(&sim, 3), (Role::Follower, Term(2)), "790 ms: node 3 stepped down in term 2");
    assert!((1..=5).all(|id| !is_leader(&sim, id)), "790 ms: nobody leads");
    sim.run_until(848);
    assert_eq!(role(&sim, 4), (Role::Leader, Term(3)), "848 ms: node 4 leads term 3");
    assert_eq!(role(&sim, 3), (Role::Follower, Term(2)), "848 ms: node 3 follows in term 2");
}

/// Same for the scenario 'minority-partition': leader 3 and node 4 are cut off from 1, 2, 5 at
/// 700 ms; the captions at 931 ms and 1004 ms said node 3 still leads term 2, and the one at
/// 1055 ms that it stepped down. It now steps down at 885 ms, before node 1 even times out; the
/// captions are re-timed (890 ms: node 3 steps down, nobody leads; 931 ms: node 1 asks for
/// pre-votes; 1004 ms: node 1 leads term 3, node 3 follows in term 2) and checked here.
#[test]
fn finding_the_playground_minority_partition_scenario_captions_no_longer_hold() {
    let scenario = || {
        let mut sim = Simulation::new(playground(18), Script::new()).unwrap();
        sim.schedule(500, Input::Propose { data: Bytes::from_static(b"a=1") });
        sim.schedule(700, Input::Partition { side: vec![NodeId(3), NodeId(4)] });
        sim.schedule(750, Input::ProposeTo { node: NodeId(3), data: Bytes::from_static(b"x=lost") });
        sim
    };
    let stepped_down_at = step_down_time(scenario(), 700, 1100);
    println!("node 3 (cut off at 700 ms) stepped down at {stepped_down_at:?} ms");
    let mut sim = scenario();
    sim.run_until(699);
    assert_eq!(role(&sim, 3), (Role::Leader, Term(2)), "700 ms: node 3 leads term 2");
    sim.run_until(890);
    assert_eq!(role(&sim, 3), (Role::Follower, Term(2)), "890 ms: node 3 stepped down in term 2");
    for id in [1, 2, 5] {
        assert_eq!(role(&sim, id).0, Role::Follower, "890 ms: node {id} has not noticed yet");
    }
    sim.run_until(931);
    assert_eq!(role(&sim, 1).0, Role::PreCandidate, "931 ms: node 1 asks for pre-votes");
    assert_eq!(role(&sim, 3).0, Role::Follower, "931 ms: node 3 follows");
    sim.run_until(1004);
    assert_eq!(role(&sim, 1), (Role::Leader, Term(3)), "1004 ms: node 1 leads term 3");
    assert_eq!(role(&sim, 3), (Role::Follower, Term(2)), "1004 ms: node 3 follows in term 2");
}

/// A leader's `election_timer` is check-quorum's clock: ticks since a majority last answered,
/// towards the election timeout at which it steps down (the playground draws it).
#[test]
fn a_leaders_election_timer_counts_the_majoritys_silence() {
    let t = timeout();
    let mut cluster = elected(3);
    cluster.tick_all(t);
    let (silent, timeout_ticks) = cluster.node(1).election_timer();
    assert_eq!(timeout_ticks, t);
    assert!(silent < t / 2, "a calm leader: {silent} ticks of silence");
    cluster.isolate(1);
    let start = cluster.node(1).election_timer().0;
    for k in 1..t - start {
        cluster.tick(1);
        assert_eq!(cluster.node(1).election_timer(), (start + k, t));
    }
    cluster.tick(1);
    assert_eq!(cluster.node(1).role(), Role::Follower, "stepped down when the timer reached T");
}
