//! The native reference for the fast-forward figure of `npm run bench:web`: a 5-node cluster
//! with the playground's timing under 100 writes/s, 60 simulated seconds, run through this
//! crate's `SimCluster` and through the bare `raft_core::sim::Simulation`. The difference is
//! the cost of the bindings; the bare figure is the core simulator's own limit.
//!
//! ```text
//! cargo run --profile wasm-release -p flotilla-wasm --example fast_forward
//! ```

use raft_core::kv::{Command, CommandBody, Operation};
use raft_core::sim::{Input, Script, SimConfig, Simulation};
use raft_core::Bytes;
use std::time::Instant;

const SIMULATED_MS: u64 = 60_000;
const WRITE_EVERY_MS: u64 = 10;

fn main() {
    // The playground's config (web/scenarios.js PLAYGROUND_OPTIONS).
    let mut config = SimConfig::new(5, 18);
    config.election_timeout_ticks = 20;
    config.heartbeat_interval_ticks = 5;
    config.link.latency_ms_min = 10;
    config.link.latency_ms_max = 20;
    // As the playground: a snapshot every 200 entries (SNAPSHOT_EVERY overrides; 0 never).
    config.snapshot_interval_entries =
        std::env::var("SNAPSHOT_EVERY").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut script = Script::new();
    for (k, time_ms) in (1_000..SIMULATED_MS).step_by(WRITE_EVERY_MS as usize).enumerate() {
        let operation =
            Operation::Put { key: Bytes::from(format!("k{}", k % 64)), value: Bytes::from(k.to_string()) };
        let command =
            Command { timestamp_ms: time_ms, body: CommandBody::Request { session: None, operation } };
        script.push(time_ms, Input::Propose { data: command.encode() });
    }
    let mut cluster = flotilla_wasm::SimCluster::with_script(config.clone(), script.clone()).expect("valid");
    let started = Instant::now();
    cluster.run_to(SIMULATED_MS);
    let bindings_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut bare = Simulation::new(config, script).expect("valid");
    let started = Instant::now();
    bare.run_until(SIMULATED_MS);
    let bare_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(bare.trace_hash(), cluster.simulation().trace_hash(), "the bindings replay the same run");
    println!(
        "{{\"bindingsTimesRealTime\":{:.0},\"bareTimesRealTime\":{:.0},\"committed\":{}}}",
        SIMULATED_MS as f64 / bindings_ms,
        SIMULATED_MS as f64 / bare_ms,
        bare.committed_index().0
    );
}
