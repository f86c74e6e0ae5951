//! The seed swarm: whole clusters under every fault, checked after every event. The default
//! is small so `cargo test` stays fast; `simulate` runs the long swarms.

use raft_core::sim::{run_seed, FaultSet, RunOptions};

fn options(nodes: usize, faults: &str, ticks: u64) -> RunOptions {
    RunOptions {
        nodes,
        faults: FaultSet::parse(faults).unwrap(),
        ticks,
        non_campaigning: 0,
        ignored_checks: &[],
    }
}

fn assert_safe(seeds: std::ops::Range<u64>, options: &RunOptions) {
    for seed in seeds {
        let report = run_seed(seed, options).unwrap();
        assert!(
            report.violations.is_empty(),
            "seed {seed}: {:?}; reproduce with: cargo run --release -p raft-core --example simulate -- --seed {seed} --runs 1 --nodes {} --faults {} --ticks {}",
            report.violations[0],
            options.nodes,
            options.faults.describe(),
            options.ticks
        );
        assert!(report.committed > 1, "seed {seed} committed nothing");
        assert!(report.leader_at_end, "seed {seed} ended without a leader after the calm tail");
    }
}

#[test]
fn five_nodes_survive_every_fault() {
    assert_safe(1..13, &options(5, "all", 6_000));
}

#[test]
fn three_and_seven_nodes_survive_every_fault() {
    assert_safe(100..106, &options(3, "all", 6_000));
    assert_safe(200..204, &options(7, "all", 6_000));
}

#[test]
fn a_single_node_cluster_commits_alone() {
    assert_safe(1..3, &options(1, "crash,pause", 3_000));
}

#[test]
fn same_seed_same_trace() {
    let options = options(5, "all", 4_000);
    let first = run_seed(42, &options).unwrap();
    let second = run_seed(42, &options).unwrap();
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.committed, second.committed);
    let other = run_seed(43, &options).unwrap();
    assert_ne!(first.trace_hash, other.trace_hash);
}

/// A checker is proven by what it catches: a server whose disk is wiped forgets its vote and
/// its log, which Raft cannot survive. The checkers must notice in some of these runs.
#[test]
fn the_checkers_catch_servers_that_forget_their_disk() {
    let options = options(3, "amnesia,partition", 8_000);
    let caught: Vec<u64> =
        (1..=40).filter(|&seed| !run_seed(seed, &options).unwrap().violations.is_empty()).collect();
    assert!(!caught.is_empty(), "no violation flagged in 40 amnesia runs");
}

/// No run can hang: a run over its step budget stops with a `budget` violation (and its seed)
/// instead of running on.
#[test]
fn a_run_over_its_budget_stops_with_a_violation() {
    use raft_core::sim::{generate, run_config, NemesisPlan, Simulation};
    let options = options(5, "all", 4_000);
    let mut config = run_config(7, &options);
    config.budget.steps_max = 5_000;
    let script = generate(&config, &NemesisPlan::new(options.faults, 40_000));
    let mut simulation = Simulation::new(config, script).unwrap();
    simulation.run_until(40_000);
    let violations = simulation.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].property, "budget");
    assert!(simulation.steps() <= 5_001);
}

/// The liveness check is proven by a cluster that cannot converge: two servers stay cut off
/// after the faults stop.
#[test]
fn the_liveness_check_flags_servers_that_never_catch_up() {
    use raft_core::sim::{Input, Script, SimConfig, Simulation};
    use raft_core::NodeId;
    let mut script = Script::new();
    for time in (100..3_000).step_by(50) {
        script.push(time, Input::Propose { data: raft_core::Bytes::from(format!("{time}")) });
    }
    script.push(1_000, Input::Partition { side: vec![NodeId(1), NodeId(2)] });
    let mut healed = Simulation::new(SimConfig::new(5, 3), script.clone()).unwrap();
    healed.schedule(2_000, Input::Heal);
    healed.run_until(6_000);
    assert!(healed.check_converged(), "{:?}", healed.violations());
    let mut cut = Simulation::new(SimConfig::new(5, 3), script).unwrap();
    cut.run_until(6_000);
    assert!(!cut.check_converged());
    assert_eq!(cut.violations().last().map(|v| v.property), Some("liveness"));
}

/// The default mix reaches the corners issue 19 names: reads through every server, late
/// copies of stale-prone messages, Figure 8 crashes and crashes right after a vote.
#[test]
fn the_default_mix_reads_and_reacts() {
    let options = options(5, "all", 6_000);
    let config = raft_core::sim::run_config(3, &options);
    assert!(config.adversary.late_copy_per_mille > 0);
    assert!(config.adversary.crash_after_vote_per_mille > 0);
    assert!(config.adversary.crash_old_term_sender_per_mille > 0);
    assert!(config.adversary.deposed_leader_reads);
    let script = raft_core::sim::generate(&config, &raft_core::sim::NemesisPlan::new(options.faults, 60_000));
    let reads =
        script.inputs.iter().filter(|(_, input)| matches!(input, raft_core::sim::Input::Read { .. })).count();
    assert!(reads > 100, "{reads} reads in a minute");
    let report = run_seed(3, &options).unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(report.stats.messages_duplicated > 0);
}

/// The corners mix (issue 10) stays deterministic with its reactive faults (restarted ackers,
/// deposed leaders' writes, competing configurations at one index, snapshots at a divergence
/// point), and a short swarm of it is clean on the unmutated core.
#[test]
fn the_corners_mix_is_deterministic_and_clean() {
    let options = options(3, "all,corners", 6_000);
    let first = run_seed(101, &options).unwrap();
    let second = run_seed(101, &options).unwrap();
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_safe(101..104, &options);
}

/// Issue 19: in a kv run, the reads of `Input::Read` (the adversary's reads at a deposed or
/// partitioned leader) join the clients' history, so the linearizability check judges them.
/// Their answers must come from the server's real store: a view that numbered sessions by
/// command count instead of log index missed every session write, and seed 2 (an ordinary
/// linearizable run) was flagged: a lease read at the leader returned a value a completed
/// delete had removed.
#[test]
fn adversary_reads_join_the_kv_history_and_are_linearizable() {
    use raft_core::linearizability::Verdict;
    use raft_core::sim::{run_seed_workload, HistoryCheck, ReadsFrom, WorkloadConfig};
    let options = options(5, "all", 6_000);
    let mut workload = WorkloadConfig::new(8, raft_core::ReadMode::Linearizable);
    workload.reads_from = ReadsFrom::AnyServer;
    let report = run_seed_workload(2, &options, &workload, HistoryCheck::Linearizability).unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let clients = report.workload.unwrap();
    let check = clients.check.unwrap();
    assert_eq!(check.verdict(), Verdict::Linearizable);
}
