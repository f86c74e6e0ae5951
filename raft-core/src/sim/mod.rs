//! The deterministic cluster simulator: the engine of the tests, the seed swarm, the benchmark
//! and the browser playground.
//!
//! A run is fixed by a [`SimConfig`] and a [`Script`] of external inputs; [`generate`] writes a
//! script of proposals and faults from the config's seed. The [`Checker`] checks Raft's safety
//! properties after every event, and [`Simulation::trace_hash`] sums the run up, so the same
//! arguments give the same hash on every machine and target.
//!
//! With a [`Workload`] ([`Simulation::with_workload`], [`run_seed_workload`]) the servers run the
//! key-value store and simulated clients use it, recording a history for the linearizability
//! checker ([`crate::linearizability`]).
//!
//! [`Input::Read`] has a client read one key through a chosen server with a
//! [`crate::ReadMode`]; the server answers as a real driver would (once it has applied the read
//! index, thesis §6.4), and [`Simulation::client_reads`] records every answer.

mod checker;
mod client_reads;
mod cluster;
mod config;
pub mod hash;
mod machine;
mod queue;
mod quorum_acks;
mod rules;
mod script;
mod workload;

pub use checker::{entry_hash, Checker, NodeTrack, Violation, CHECKS};
pub use client_reads::{ClientRead, ReadFailure, CLIENT_READS_MAX};
pub use cluster::{Changed, InFlight, Liveness, SimNode, SimStats, Simulation, Storage, CONVERGENCE_MS_MAX};
pub use config::{Adversary, Budget, FaultSet, LinkConfig, SimConfig, NODES_MAX};
pub use machine::{split_command, SimStateMachine, SNAPSHOT_CHUNK_BYTES};
pub use script::{generate, link_for_faults, Input, NemesisPlan, Script};
pub use workload::{
    ReadsFrom, RetrySafety, Workload, WorkloadConfig, WorkloadStats, CLIENTS_MAX, KEYS_MAX,
    SERVER_PENDING_MAX, SERVER_READS_WAITING_MAX,
};

use crate::linearizability::CheckResult;

use alloc::string::String;
use alloc::vec::Vec;

/// What one seeded run with faults produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Safety violations (the run stops at the first).
    pub violations: Vec<Violation>,
    /// Highest index committed by the cluster.
    pub committed: u64,
    /// Hash of the whole run.
    pub trace_hash: u64,
    /// Counters.
    pub stats: SimStats,
    /// Whether a leader was running at the end.
    pub leader_at_end: bool,
    /// What the clients did, for runs with a workload.
    pub workload: Option<WorkloadReport>,
}

/// What the clients of a run with a workload did and how their history checked out.
#[derive(Clone, Debug)]
pub struct WorkloadReport {
    /// Counters.
    pub stats: WorkloadStats,
    /// Operations in the history.
    pub ops: usize,
    /// The linearizability check of the history, if asked for.
    pub check: Option<CheckResult>,
}

/// Whether [`run_seed_workload`] checks the clients' history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HistoryCheck {
    /// Record the history only.
    None,
    /// Check it for linearizability, key by key.
    Linearizability,
}

/// Options of a seeded run (what the `simulate` example's flags set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// Servers in the cluster.
    pub nodes: usize,
    /// Faults to inject.
    pub faults: FaultSet,
    /// Length of the run in node ticks.
    pub ticks: u64,
    /// Voters that never campaign ([`SimConfig::non_campaigning`]).
    pub non_campaigning: usize,
    /// Checks not recorded in this run ([`Checker::ignore`]); empty for a normal run.
    pub ignored_checks: &'static [&'static str],
}

/// The config of a seeded run: the faults decide the network's loss, duplication and latency.
pub fn run_config(seed: u64, options: &RunOptions) -> SimConfig {
    let mut config = SimConfig::new(options.nodes, seed);
    config.link = link_for_faults(options.faults);
    config.non_campaigning = options.non_campaigning;
    if options.faults.snapshot {
        // Snapshot every 10–100 entries, keeping few trailing entries, so that followers
        // behind by more than that need InstallSnapshot.
        let mut rng = crate::rng::Rng::new(seed ^ 0x736E_6170);
        config.snapshot_interval_entries = rng.range(10, 101);
        config.snapshot_trailing_entries = rng.range(0, 20);
    }
    // The reactive faults draw from their own stream, so adding one leaves the others alone.
    let mut rng = crate::rng::Rng::new(seed ^ 0x6669_6738);
    let faults = options.faults;
    if faults.late {
        config.adversary.late_copy_per_mille = 20;
    }
    if faults.vote_crash {
        config.adversary.crash_after_vote_per_mille = 100;
    }
    if faults.figure8 {
        config.adversary.crash_old_term_sender_per_mille = 250;
        // In half the runs AppendEntries carry 1 to 4 entries, so the entries of an earlier
        // term reach followers before the new leader's own.
        if rng.chance(1, 2) {
            config.entries_per_message_max = rng.range(1, 5) as usize;
        }
    }
    if faults.eager_membership {
        config.adversary.membership_after_election_per_mille = 200;
    }
    config.adversary.deposed_leader_reads = faults.reads;
    if faults.membership && faults.partition {
        config.adversary.split_joint_per_mille = 500;
    }
    if faults.corners {
        config.adversary.competing_membership = true;
        config.adversary.drifting_clocks = true;
        config.adversary.timeout_now_delay_ms_max = 400;
        config.adversary.crash_during_catch_up_per_mille = 300;
        config.adversary.snapshot_on_reject_per_mille = 100;
        config.adversary.snapshot_at_divergence = true;
        config.adversary.deposed_leader_writes = true;
        config.adversary.restart_ackers_per_mille = 20;
        config.adversary.late_campaign_news = true;
        // Small windows fill in one loss burst.
        if rng.chance(1, 2) {
            config.inflight_messages_max = rng.range(1, 9) as usize;
        }
    }
    config
}

/// Runs one seed under the nemesis, checking safety after every event.
///
/// # Errors
/// A lowercase description if the options are invalid.
pub fn run_seed(seed: u64, options: &RunOptions) -> Result<RunReport, String> {
    let config = run_config(seed, options);
    let duration_ms = options.ticks.saturating_mul(config.tick_ms);
    let plan = NemesisPlan::new(options.faults, duration_ms);
    let script = generate(&config, &plan);
    let mut simulation = Simulation::new(config, script)?;
    simulation.ignore_checks(options.ignored_checks);
    simulation.faults_end_ms = duration_ms.saturating_sub(plan.calm_tail_ms);
    // Stop at the first violation: what follows it is noise.
    run_and_converge(&mut simulation, duration_ms);
    Ok(report(seed, &simulation, None))
}

/// Runs to `duration_ms` (the script's faults stop [`NemesisPlan::calm_tail_ms`] before it and
/// its proposals at it), stopping at the first violation; then gives the cluster
/// [`Simulation::convergence_ms`] more to converge ([`CONVERGENCE_MS_MAX`] plus two snapshot
/// transfers) and checks that it did ([`Simulation::check_converged`]).
pub fn run_and_converge(simulation: &mut Simulation, duration_ms: u64) {
    if simulation.run_until_condition(duration_ms, |s| !s.violations().is_empty()) {
        return;
    }
    let allowed_ms = simulation.convergence_ms();
    simulation.converge_allowed_ms = allowed_ms;
    let quiet_ms = duration_ms + allowed_ms;
    if simulation.run_until_condition(quiet_ms, |s| !s.violations().is_empty()) {
        return;
    }
    simulation.check_converged();
}

/// What a finished run reports, with the clients' summary if it had a workload.
fn report(seed: u64, simulation: &Simulation, workload: Option<WorkloadReport>) -> RunReport {
    RunReport {
        seed,
        violations: simulation.violations().to_vec(),
        committed: simulation.committed_index().0,
        trace_hash: simulation.trace_hash(),
        stats: simulation.stats(),
        leader_at_end: simulation.leader().is_some(),
        workload,
    }
}

/// The clients' history with the answered linearizable and lease reads of [`Input::Read`]
/// added (the adversary's reads at a deposed or partitioned leader, each its own client), so the
/// linearizability check covers reads served by any server in either mode: a leader that
/// answers a read it may no longer serve (a ReadIndex without its quorum round, a lease that
/// does not hold) is caught by the check, not only by the per-step rules. Stale reads may miss
/// writes by design and are left out, as are lease reads asked beyond the drift bound
/// ([`ClientRead::beyond_drift_bound`]); unanswered reads had no effect.
fn with_client_reads<'a>(
    history: crate::linearizability::History,
    reads: impl Iterator<Item = &'a ClientRead>,
) -> crate::linearizability::History {
    use crate::linearizability::{Observed, Op, OperationRecord};
    /// Client numbers of these reads start here, past the workload's clients.
    const FIRST_CLIENT: u64 = 1 << 32;
    let mut records = history.records().to_vec();
    for read in reads.filter(|read| read.mode != crate::ReadMode::Stale && !read.beyond_drift_bound) {
        let (Some(Ok(value)), Some(answered_ms)) = (&read.answer, read.answered_ms) else {
            continue;
        };
        records.push(OperationRecord {
            client: FIRST_CLIENT + read.id,
            invoke_time: read.asked_ms,
            complete_time: Some(answered_ms),
            op: Op::get(read.key.clone()),
            observed: Observed::Value(value.clone()),
        });
    }
    crate::linearizability::History::from_valid(records)
}

/// Runs one seed under the nemesis with `workload`'s clients as the only load (the nemesis
/// proposes nothing itself), checking safety after every event and, if asked, the clients'
/// history (with the reads of [`Input::Read`], see `with_client_reads`) for linearizability at
/// the end.
///
/// # Errors
/// A lowercase description if the options are invalid.
pub fn run_seed_workload(
    seed: u64,
    options: &RunOptions,
    workload: &WorkloadConfig,
    history_check: HistoryCheck,
) -> Result<RunReport, String> {
    let config = run_config(seed, options);
    let duration_ms = options.ticks.saturating_mul(config.tick_ms);
    let mut plan = NemesisPlan::new(options.faults, duration_ms);
    plan.propose_interval_ms = 0;
    let script = generate(&config, &plan);
    let mut workload = *workload;
    // The clients stop with the run, so the liveness check finds a quiet cluster.
    workload.stop_ms = Some(workload.stop_ms.unwrap_or(duration_ms).min(duration_ms));
    let mut simulation = Simulation::with_workload(config, script, workload)?;
    simulation.ignore_checks(options.ignored_checks);
    simulation.faults_end_ms = duration_ms.saturating_sub(plan.calm_tail_ms);
    run_and_converge(&mut simulation, duration_ms);
    let Some(clients) = simulation.workload() else {
        return Err(String::from("the simulation lost its workload"));
    };
    let history = with_client_reads(clients.history(), simulation.client_reads());
    let check = match history_check {
        HistoryCheck::None => None,
        HistoryCheck::Linearizability => Some(crate::linearizability::check(&history)),
    };
    let clients = WorkloadReport { stats: clients.stats(), ops: history.len(), check };
    Ok(report(seed, &simulation, Some(clients)))
}
