//! The core benchmark, compiled into the module so the browser and a native build can run the
//! same workload and be compared (`npm run bench:web`).

use alloc::format;
use alloc::string::String;
use raft_core::sim::{run_seed, FaultSet, RunOptions};
#[cfg(feature = "bench")]
use wasm_bindgen::prelude::*;

/// Runs `runs` seeds from `seed` of [`raft_core::sim::run_seed`] (all faults) and folds their
/// trace hashes, so a native run of the same seeds can be checked to have done the same work.
///
/// # Errors
/// A lowercase description if the options are invalid.
pub fn run_seed_workload(seed: u64, runs: u64, nodes: usize, ticks: u64) -> Result<(u64, u64), String> {
    let options =
        RunOptions { nodes, faults: FaultSet::all(), ticks, non_campaigning: 0, ignored_checks: &[] };
    let mut hash = 0u64;
    let mut committed = 0u64;
    for k in 0..runs {
        let report = run_seed(seed.wrapping_add(k), &options)?;
        if let Some(violation) = report.violations.first() {
            return Err(format!("seed {} violated {}", report.seed, violation.property));
        }
        hash = raft_core::sim::hash::combine(hash, &report.trace_hash);
        committed += report.committed;
    }
    Ok((hash, committed))
}

/// JavaScript entry of [`run_seed_workload`]: returns `"<hash hex> <committed>"`.
///
/// # Errors
/// `RangeError` if the options are invalid or a run broke a safety property.
#[cfg(feature = "bench")]
#[wasm_bindgen(js_name = runSeedWorkload)]
pub fn run_seed_workload_js(seed: f64, runs: u32, nodes: u32, ticks: f64) -> Result<String, JsValue> {
    let (hash, committed) = run_seed_workload(seed as u64, u64::from(runs), nodes as usize, ticks as u64)
        .map_err(|e| crate::errors::range_error(&e))?;
    Ok(format!("{hash:016x} {committed}"))
}
