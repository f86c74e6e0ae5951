//! The native half of `npm run bench:web`: runs the same seeded core workload as the wasm export
//! `runSeedWorkload` and prints its time, so the two can be compared (and the printed hash shows
//! they did the same work).
//!
//! ```text
//! cargo run --profile wasm-release -p flotilla-wasm --example core_bench -- <seed> <runs> <nodes> <ticks>
//! ```

use std::time::Instant;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("numbers")).collect();
    let [seed, runs, nodes, ticks] = args[..] else {
        eprintln!("usage: core_bench <seed> <runs> <nodes> <ticks>");
        std::process::exit(2);
    };
    // One untimed run first, as the browser does, so both sides are measured warm.
    let _ = flotilla_wasm::run_seed_workload(seed, 1, nodes as usize, ticks);
    let started = Instant::now();
    let (hash, committed) =
        flotilla_wasm::run_seed_workload(seed, runs, nodes as usize, ticks).expect("workload runs");
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!("{{\"hash\":\"{hash:016x}\",\"committed\":{committed},\"ms\":{elapsed_ms:.1}}}");
}
