//! Seed swarm: runs many seeded simulations under faults and checks Raft's safety properties.
//!
//! ```text
//! cargo run --release -p raft-core --example simulate -- --seed 1 --runs 200 --nodes 5 --faults all --ticks 20000
//! ```
//!
//! With a client workload, the servers run the key-value store and simulated clients use it;
//! `--check linearizability` checks each run's history and adds `ops` and
//! `linearizability_violations` (runs whose history is not linearizable) to the JSON line:
//!
//! ```text
//! cargo run --release -p raft-core --example simulate -- --seed 1 --runs 300 --nodes 5 --faults all --workload kv --clients 8 --read-mode linearizable --check linearizability
//! ```
//!
//! `--non-campaigning K` makes the last K voters never campaign (issue 14):
//!
//! ```text
//! cargo run --release -p raft-core --example simulate -- --seed 1 --runs 100 --nodes 5 --faults all --non-campaigning 2
//! ```
//!
//! The last line is one JSON object; the exit code is non-zero when any run broke a property
//! (or, when checked, linearizability). The same arguments always give the same `trace_hash`.

use clap::Parser;
use raft_core::linearizability::{Counterexample, Verdict};
use raft_core::sim::{
    hash::combine, run_seed, run_seed_workload, FaultSet, HistoryCheck, ReadsFrom, RunOptions, RunReport,
    SimStats, Violation, WorkloadConfig, CHECKS,
};
use raft_core::ReadMode;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Run seeded Raft simulations under faults and check safety")]
struct Args {
    /// First seed; runs use seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 20)]
    runs: u64,
    /// Servers per cluster (1-51).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Faults: all, none, or a list such as crash,partition,one-way,loss,duplicate,reorder,pause,
    /// membership,snapshot,transfer,reads,late,figure8,vote-crash,eager-membership.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Length of each run in node ticks (10 simulated ms each).
    #[arg(long, default_value_t = 20_000)]
    ticks: u64,
    /// Worker threads (runs are independent; the result does not depend on this).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Client load: none (the nemesis proposes opaque commands) or kv (simulated clients of the
    /// key-value store, with sessions).
    #[arg(long, default_value = "none")]
    workload: String,
    /// Clients of the kv workload.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Keys of the kv workload.
    #[arg(long, default_value_t = 10)]
    keys: usize,
    /// How servers serve the kv workload's reads: linearizable (ReadIndex), lease or stale.
    #[arg(long, default_value = "linearizable")]
    read_mode: String,
    /// Where kv clients send reads: leader (the server they believe leads) or any (a random
    /// server per attempt, so followers serve reads too).
    #[arg(long, default_value = "leader")]
    reads_from: String,
    /// Check each run's client history: none or linearizability.
    #[arg(long, default_value = "none")]
    check: String,
    /// The last this many voters never campaign (`Config::campaigns = false`, issue 14): they
    /// vote and acknowledge but never lead. The liveness check then expects a leader only when
    /// a running campaigning voter could win (raft-core GUIDE.md, "Voters that never campaign").
    #[arg(long, default_value_t = 0)]
    non_campaigning: usize,
    /// Checks not to record, comma-separated (names as violations print them), or `all`:
    /// every check but the linearizability check of the clients' history and the run's budget.
    /// To show that one checker catches a bug on its own (issue 19); never for a normal run.
    #[arg(long, default_value = "")]
    ignore_checks: String,
}

impl Args {
    /// The workload flags as given, for the reproduce command.
    fn workload_flags(&self) -> String {
        let mut quiet = if self.non_campaigning > 0 {
            format!(" --non-campaigning {}", self.non_campaigning)
        } else {
            String::new()
        };
        if !self.ignore_checks.is_empty() {
            quiet.push_str(&format!(" --ignore-checks {}", self.ignore_checks));
        }
        if self.workload == "none" {
            return quiet;
        }
        format!(
            " --workload {} --clients {} --keys {} --read-mode {} --reads-from {} --check {}{quiet}",
            self.workload, self.clients, self.keys, self.read_mode, self.reads_from, self.check
        )
    }
}

fn parse_read_mode(name: &str) -> Result<ReadMode, String> {
    match name {
        "linearizable" => Ok(ReadMode::Linearizable),
        "lease" => Ok(ReadMode::Lease),
        "stale" => Ok(ReadMode::Stale),
        other => Err(format!("unknown read mode {other:?} (linearizable, lease or stale)")),
    }
}

/// What to run: the nemesis alone, or with the kv clients.
#[derive(Clone, Copy)]
enum Load {
    Nemesis,
    Clients(WorkloadConfig, HistoryCheck),
}

fn parse_load(args: &Args) -> Result<Load, String> {
    let check = match args.check.as_str() {
        "none" => HistoryCheck::None,
        "linearizability" => HistoryCheck::Linearizability,
        other => return Err(format!("--check: unknown check {other:?} (none or linearizability)")),
    };
    match args.workload.as_str() {
        "none" if check == HistoryCheck::None => Ok(Load::Nemesis),
        "none" => Err(String::from("--check linearizability needs --workload kv")),
        "kv" => {
            let mut config = WorkloadConfig::new(args.clients, parse_read_mode(&args.read_mode)?);
            config.keys = args.keys;
            config.reads_from = match args.reads_from.as_str() {
                "leader" => ReadsFrom::Leader,
                "any" => ReadsFrom::AnyServer,
                other => return Err(format!("--reads-from: unknown {other:?} (leader or any)")),
            };
            config.validate()?;
            Ok(Load::Clients(config, check))
        }
        other => Err(format!("--workload: unknown workload {other:?} (none or kv)")),
    }
}

/// The checks `--ignore-checks` names, checked against [`CHECKS`].
fn parse_ignored_checks(spec: &str) -> Result<&'static [&'static str], String> {
    if spec.is_empty() {
        return Ok(&[]);
    }
    if spec == "all" {
        return Ok(CHECKS);
    }
    let mut chosen = Vec::new();
    for name in spec.split(',') {
        let Some(&check) = CHECKS.iter().find(|&&check| check == name.trim()) else {
            return Err(format!(
                "--ignore-checks: unknown check {name:?} (all, or some of {})",
                CHECKS.join(", ")
            ));
        };
        chosen.push(check);
    }
    // One list for the whole process: leaking it gives the runs a `'static` slice.
    Ok(Vec::leak(chosen))
}

fn reproduce_command(args: &Args, seed: u64) -> String {
    format!(
        "cargo run --release -p raft-core --example simulate -- --seed {seed} --runs 1 --nodes {} --faults {} --ticks {}{}",
        args.nodes,
        args.faults,
        args.ticks,
        args.workload_flags()
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let faults = match FaultSet::parse(&args.faults) {
        Ok(faults) => faults,
        Err(error) => {
            eprintln!("error: --faults: {error}");
            return ExitCode::from(2);
        }
    };
    let ignored_checks = match parse_ignored_checks(&args.ignore_checks) {
        Ok(checks) => checks,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let options = RunOptions {
        nodes: args.nodes,
        faults,
        ticks: args.ticks,
        non_campaigning: args.non_campaigning,
        ignored_checks,
    };
    let load = match parse_load(&args) {
        Ok(load) => load,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let seeds: Vec<u64> = (0..args.runs).map(|k| args.seed.wrapping_add(k)).collect();
    let reports = match run_all(&seeds, &options, load, args.threads.max(1)) {
        Ok(reports) => reports,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let mut trace_hash = 0u64;
    let mut violations = 0usize;
    let mut committed = 0u64;
    let mut failing: Option<&RunReport> = None;
    let (mut ops, mut linearizability_violations, mut undecided, mut double_applications) =
        (0u64, 0u64, 0u64, 0u64);
    let (mut elections, mut messages, mut crashes, mut no_leader) = (0u64, 0u64, 0u64, 0u64);
    let (mut snapshots_installed, mut membership_changes, mut leader_transfers, mut entries_sent) =
        (0u64, 0u64, 0u64, 0u64);
    for report in &reports {
        trace_hash = combine(trace_hash, &report.trace_hash);
        violations += report.violations.len();
        committed += report.committed;
        elections += report.stats.elections;
        messages += report.stats.messages_delivered;
        crashes += report.stats.crashes;
        snapshots_installed += report.stats.snapshots_installed;
        membership_changes += report.stats.membership_changes;
        leader_transfers += report.stats.leader_transfers;
        entries_sent += report.stats.entries_sent;
        no_leader += u64::from(!report.leader_at_end);
        if let Some(workload) = &report.workload {
            ops += workload.ops as u64;
            double_applications += workload.stats.double_applications;
            if let Some(check) = &workload.check {
                match check.verdict() {
                    Verdict::Linearizable => {}
                    Verdict::Unknown => undecided += 1,
                    Verdict::NotLinearizable => {
                        linearizability_violations += 1;
                        if let Some(smallest) = check.counterexamples().min_by_key(|c| c.operations.len()) {
                            print_counterexample(
                                report.seed,
                                smallest,
                                &reproduce_command(&args, report.seed),
                            );
                        }
                        failing.get_or_insert(report);
                    }
                }
            }
        }
        if !report.violations.is_empty() {
            let violation = &report.violations[0];
            println!(
                "seed {} violated {} at {} ms: {}; reproduce with: {}",
                report.seed,
                violation.property,
                violation.time_ms,
                violation.detail,
                reproduce_command(&args, report.seed)
            );
            failing.get_or_insert(report);
        }
    }
    eprintln!("{} runs in {:.1} s", reports.len(), started.elapsed().as_secs_f64());
    let mut summary = serde_json::json!({
        "runs": reports.len(),
        "nodes": args.nodes,
        "faults": faults.describe(),
        "ticks": args.ticks,
        "violations": violations,
        "committed": committed,
        "elections": elections,
        "messages_delivered": messages,
        "crashes": crashes,
        "snapshots_installed": snapshots_installed,
        "membership_changes": membership_changes,
        "leader_transfers": leader_transfers,
        "entries_sent": entries_sent,
        "runs_without_leader_at_end": no_leader,
        "non_campaigning": args.non_campaigning,
        "trace_hash": format!("{trace_hash:016x}"),
    });
    if let Load::Clients(config, check) = load {
        summary["workload"] = "kv".into();
        summary["clients"] = config.clients.into();
        summary["read_mode"] = args.read_mode.clone().into();
        summary["reads_from"] = args.reads_from.clone().into();
        summary["ops"] = ops.into();
        summary["double_applications"] = double_applications.into();
        if check == HistoryCheck::Linearizability {
            summary["linearizability_violations"] = linearizability_violations.into();
            summary["linearizability_undecided"] = undecided.into();
        }
    }
    if let Some(report) = failing {
        summary["failing_seed"] = report.seed.into();
        summary["reproduce"] = reproduce_command(&args, report.seed).into();
    }
    println!("{summary}");
    if violations > 0 || linearizability_violations > 0 || double_applications > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_counterexample(seed: u64, counterexample: &Counterexample, reproduce: &str) {
    println!("seed {seed}: history not linearizable; the smallest failing key history:");
    print!("{counterexample}");
    println!("reproduce with: {reproduce}");
}

fn run_one(seed: u64, options: &RunOptions, load: Load) -> Result<RunReport, String> {
    // A panic in the core or the simulator is a failed run with its seed, not a lost worker.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match load {
        Load::Nemesis => run_seed(seed, options),
        Load::Clients(config, check) => run_seed_workload(seed, options, &config, check),
    }));
    run.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| String::from("a panic"));
        Ok(RunReport {
            seed,
            violations: vec![Violation { property: "panic", time_ms: 0, detail: message }],
            committed: 0,
            trace_hash: 0,
            stats: SimStats::default(),
            leader_at_end: false,
            workload: None,
        })
    })
}

/// Runs the seeds on `threads` workers; reports come back in seed order.
fn run_all(
    seeds: &[u64],
    options: &RunOptions,
    load: Load,
    threads: usize,
) -> Result<Vec<RunReport>, String> {
    // Small chunks handed out in turn keep both workers busy when some runs take longer.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&seed) = seeds.get(k) else { break };
                        done.push((k, run_one(seed, options, load)));
                    }
                    done
                })
            })
            .collect();
        let mut reports = Vec::with_capacity(seeds.len());
        for worker in workers {
            reports.extend(worker.join().map_err(|_| String::from("a worker thread panicked"))?);
        }
        reports.sort_by_key(|(k, _)| *k);
        reports.into_iter().map(|(_, report)| report).collect()
    })
}
