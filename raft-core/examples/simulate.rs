//! Seed swarm: runs many seeded simulations under faults and checks Raft's safety properties.
//!
//! ```text
//! cargo run --release -p raft-core --example simulate -- --seed 1 --runs 200 --nodes 5 --faults all --ticks 20000
//! ```
//!
//! The last line is one JSON object; the exit code is non-zero when any run broke a property.
//! The same arguments always give the same `trace_hash`.

use clap::Parser;
use raft_core::sim::{hash::combine, run_seed, FaultSet, RunOptions, RunReport};
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
    /// Faults: all, none, or a list such as crash,partition,one-way,loss,duplicate,reorder,pause.
    #[arg(long, default_value = "all")]
    faults: String,
    /// Length of each run in node ticks (10 simulated ms each).
    #[arg(long, default_value_t = 20_000)]
    ticks: u64,
    /// Worker threads (runs are independent; the result does not depend on this).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn reproduce_command(args: &Args, seed: u64) -> String {
    format!(
        "cargo run --release -p raft-core --example simulate -- --seed {seed} --runs 1 --nodes {} --faults {} --ticks {}",
        args.nodes, args.faults, args.ticks
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
    let options = RunOptions { nodes: args.nodes, faults, ticks: args.ticks };
    let started = Instant::now();
    let seeds: Vec<u64> = (0..args.runs).map(|k| args.seed.wrapping_add(k)).collect();
    let reports = match run_all(&seeds, &options, args.threads.max(1)) {
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
        "trace_hash": format!("{trace_hash:016x}"),
    });
    if let Some(report) = failing {
        summary["failing_seed"] = report.seed.into();
        summary["reproduce"] = reproduce_command(&args, report.seed).into();
    }
    println!("{summary}");
    if violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the seeds on `threads` workers; reports come back in seed order.
fn run_all(seeds: &[u64], options: &RunOptions, threads: usize) -> Result<Vec<RunReport>, String> {
    let chunk = seeds.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = seeds
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|&seed| run_seed(seed, options)).collect::<Vec<_>>())
            })
            .collect();
        let mut reports = Vec::with_capacity(seeds.len());
        for worker in workers {
            for report in worker.join().map_err(|_| String::from("a worker thread panicked"))? {
                reports.push(report?);
            }
        }
        Ok(reports)
    })
}
