//! The key-value clients in the simulator (issue 4): what a client of the cluster is promised
//! under faults. Every write is applied once however often it is retried (thesis §6.3), and
//! linearizable reads never go back in time (thesis §6.4), while stale reads do and the checker
//! says so. Short runs keep `cargo test` fast; `simulate --workload kv` runs the long swarms.

use raft_core::linearizability::{check, Verdict};
use raft_core::sim::{
    generate, run_config, run_seed_workload, FaultSet, HistoryCheck, Input, NemesisPlan, ReadsFrom,
    RetrySafety, RunOptions, RunReport, Script, SimConfig, Simulation, WorkloadConfig,
};
use raft_core::state_machine::StateMachine;
use raft_core::ReadMode;

fn options(nodes: usize, faults: &str, ticks: u64) -> RunOptions {
    RunOptions {
        nodes,
        faults: FaultSet::parse(faults).unwrap(),
        ticks,
        non_campaigning: 0,
        ignored_checks: &[],
    }
}

fn run(seed: u64, options: &RunOptions, workload: &WorkloadConfig) -> RunReport {
    let report = run_seed_workload(seed, options, workload, HistoryCheck::Linearizability).unwrap();
    assert!(
        report.violations.is_empty(),
        "seed {seed}: {:?}; reproduce with: cargo run --release -p raft-core --example simulate -- --seed {seed} --runs 1 --nodes {} --faults {} --ticks {} --workload kv --clients {} --read-mode {:?} --check linearizability",
        report.violations[0],
        options.nodes,
        options.faults.describe(),
        options.ticks,
        workload.clients,
        workload.read_mode,
    );
    report
}

fn verdict(report: &RunReport) -> Verdict {
    report.workload.as_ref().and_then(|w| w.check.as_ref()).map(|check| check.verdict()).unwrap()
}

/// Thesis §6.4: ReadIndex reads, served by whichever server a client talks to once it has
/// applied the read index, are linearizable under every fault the simulator knows.
#[test]
fn linearizable_reads_stay_linearizable_under_every_fault() {
    let options = options(5, "all", 6_000);
    let workload = WorkloadConfig::new(8, ReadMode::Linearizable);
    let mut ops = 0;
    for seed in 1..=8 {
        let report = run(seed, &options, &workload);
        let clients = report.workload.as_ref().unwrap();
        if let Some(check) = &clients.check {
            assert_eq!(check.verdict(), Verdict::Linearizable, "seed {seed}:\n{check}");
        }
        assert_eq!(clients.stats.double_applications, 0, "seed {seed}");
        assert!(clients.stats.ok > 0, "seed {seed}: no operation completed");
        ops += clients.ops;
    }
    eprintln!("{ops} operations checked");
    assert!(ops > 1_000, "only {ops} operations");
}

/// A checker is proven by what it catches: reads served from whatever a server has applied go
/// back in time once partitions leave servers behind, and the checker must flag that.
#[test]
fn stale_reads_under_partitions_are_flagged() {
    let options = options(5, "partition", 4_000);
    let workload = WorkloadConfig::new(8, ReadMode::Stale);
    let flagged =
        (1..=10).filter(|&seed| verdict(&run(seed, &options, &workload)) == Verdict::NotLinearizable).count();
    eprintln!("stale reads flagged in {flagged} of 10 seeds");
    assert!(flagged >= 1, "stale reads under partitions were never flagged");
}

/// Thesis §6.3: a write retried after a lost answer or a leader change carries the same session
/// and sequence number, so the store applies it once and answers the retry from its cache.
/// The audit counts, per unique value, the log entries that carry it and how often the store
/// executed it.
#[test]
fn a_retried_write_is_applied_once_across_leader_changes() {
    let options = options(5, "crash,partition,loss,transfer", 6_000);
    let workload = WorkloadConfig::new(8, ReadMode::Linearizable);
    let (mut retried_in_log, mut elections) = (0, 0);
    for seed in 1..=6 {
        let report = run(seed, &options, &workload);
        let stats = report.workload.as_ref().unwrap().stats;
        assert_eq!(stats.double_applications, 0, "seed {seed}: a retried write was applied twice");
        retried_in_log += stats.writes_retried_in_log;
        elections += report.stats.elections;
    }
    eprintln!("{retried_in_log} writes reached the log more than once, over {elections} elections");
    assert!(elections > 6, "the runs need leader changes");
    assert!(retried_in_log > 0, "no retry reached the log: the test proves nothing");
}

/// The audit is proven by what it catches: without sessions, a write retried after its answer
/// was lost is applied again.
#[test]
fn retries_without_sessions_are_applied_twice() {
    let options = options(5, "crash,partition,loss,transfer", 6_000);
    let mut workload = WorkloadConfig::new(8, ReadMode::Linearizable);
    workload.retry_safety = RetrySafety::NoSessions;
    let twice: u64 = (1..=6)
        .map(|seed| {
            let report = run_seed_workload(seed, &options, &workload, HistoryCheck::None).unwrap();
            report.workload.unwrap().stats.double_applications
        })
        .sum();
    eprintln!("{twice} writes applied twice without sessions");
    assert!(twice > 0, "no write applied twice without sessions");
}

/// Snapshots carry the key-value store: servers that installed one (or restarted from one)
/// end the run with the same keys, values and sessions as everyone else. Over a few seeds, so
/// that some server does install a snapshot whatever the timing of one seed.
#[test]
fn snapshots_carry_the_key_value_store() {
    let options = options(5, "snapshot,crash,partition", 5_000);
    let mut installed = 0;
    for seed in 3..=6 {
        let config = run_config(seed, &options);
        let duration_ms = options.ticks * config.tick_ms;
        let mut plan = NemesisPlan::new(options.faults, duration_ms);
        plan.propose_interval_ms = 0;
        let script = generate(&config, &plan);
        let mut workload = WorkloadConfig::new(8, ReadMode::Linearizable);
        workload.stop_ms = Some(duration_ms);
        let mut simulation = Simulation::with_workload(config, script, workload).unwrap();
        // Let the last writes reach every server.
        simulation.run_until(duration_ms + 3_000);
        assert!(simulation.violations().is_empty(), "seed {seed}: {:?}", simulation.violations());
        installed += simulation.stats().snapshots_installed;
        let workload = simulation.workload().unwrap();
        let stores: Vec<_> = simulation.nodes().iter().map(|node| workload.store(node.id).unwrap()).collect();
        let reference = stores[0];
        assert!(!reference.is_empty());
        for store in &stores {
            assert_eq!(store.applied_index(), reference.applied_index(), "seed {seed}");
            assert!(store.iter().eq(reference.iter()), "seed {seed}: stores differ");
            assert_eq!(store.session_count(), reference.session_count(), "seed {seed}");
        }
    }
    eprintln!("{installed} snapshots installed over seeds 3-6");
    assert!(installed > 0, "no snapshot was installed");
}

#[test]
fn same_seed_same_trace_with_clients() {
    let options = options(5, "all", 3_000);
    let workload = WorkloadConfig::new(4, ReadMode::Lease);
    let first = run_seed_workload(9, &options, &workload, HistoryCheck::None).unwrap();
    let second = run_seed_workload(9, &options, &workload, HistoryCheck::None).unwrap();
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.workload.unwrap().ops, second.workload.unwrap().ops);
}

/// Lease reads (thesis §6.4.1) trust the leader's clock to drift at most
/// `clock_drift_ticks_max` per election timeout. A paused process loses its ticks: its clock
/// stops while the others elect a new leader and commit writes. A leader paused and cut off,
/// then resumed, still counts itself inside its lease and answers from its stale store. This
/// pins the assumption down: drivers must count real elapsed time in ticks (the native node
/// does), and an engine that defends leases against lost ticks turns this test around.
#[test]
fn lease_reads_break_when_a_paused_leader_loses_its_ticks() {
    let flagged = (1..=20)
        .filter(|&seed| {
            let mut workload = WorkloadConfig::new(10, ReadMode::Lease);
            workload.reads_from = ReadsFrom::AnyServer;
            workload.think_ms_max = 50;
            let mut simulation =
                Simulation::with_workload(SimConfig::new(5, seed), Script::new(), workload).unwrap();
            simulation.run_until(2_000);
            let leader = simulation.leader().unwrap();
            simulation.act(Input::Pause(leader));
            simulation.act(Input::Partition { side: vec![leader] });
            simulation.run_until(3_500);
            simulation.act(Input::Resume(leader));
            let raft = simulation.node(leader).unwrap().raft.as_ref().unwrap();
            assert!(raft.lease_is_valid(), "seed {seed}: the resumed leader believes in its lease");
            simulation.run_until(3_700);
            simulation.act(Input::Heal);
            simulation.run_until(5_000);
            // The simulator's read-index rule sees the stale lease read when one is served;
            // nothing else may break.
            let violations = simulation.violations();
            assert!(
                violations.iter().all(|v| v.property == "read-index-fresh"),
                "seed {seed}: {violations:?}"
            );
            !violations.is_empty()
                || check(&simulation.workload().unwrap().history()).verdict() == Verdict::NotLinearizable
        })
        .count();
    // Whether a client happens to read from the resumed leader in its stale window depends on
    // the seed's timing (1 of 20 seeds when this was written); the hazard itself, a lease
    // believed after the clock stopped, is asserted for every seed above.
    eprintln!("stale lease reads flagged in {flagged} of 20 seeds");
}
