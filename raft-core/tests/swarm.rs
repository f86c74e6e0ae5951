//! The seed swarm: whole clusters under every fault, checked after every event. The default
//! is small so `cargo test` stays fast; `simulate` runs the long swarms.

use raft_core::sim::{run_seed, FaultSet, RunOptions};

fn options(nodes: usize, faults: &str, ticks: u64) -> RunOptions {
    RunOptions { nodes, faults: FaultSet::parse(faults).unwrap(), ticks }
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
