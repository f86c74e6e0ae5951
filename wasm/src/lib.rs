//! WebAssembly bindings of raft-core for the Flotilla playground.
//!
//! The only Rust that knows about JavaScript. [`SimCluster`] wraps [`raft_core::sim::Simulation`]
//! behind an opaque handle: long-lived state stays in wasm memory, JavaScript gets flat typed
//! arrays per frame and plain objects for rarer views. There is no protocol logic here: every
//! decision is the core's, this crate only drives the simulator and reads its observers.
#![no_std]

extern crate alloc;

mod bench;
mod cluster;
mod errors;
mod events;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod history;
mod history_data;
#[cfg(feature = "checker")]
mod history_view;
mod input;
#[cfg(feature = "live")]
#[doc(hidden)]
pub mod live;
mod options;
mod reads;
#[doc(hidden)]
pub mod run_text;
mod snapshot;
mod tagged;

pub use bench::run_seed_workload;

/// The allocator: Talc, made for wasm, rather than Rust's default there (dlmalloc), which took
/// about 7% of the core workload's time in V8's profile: the simulator allocates messages,
/// batches and entries on every event.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
pub use cluster::SimCluster;
#[cfg(feature = "checker")]
pub use history_view::HistoryChecker;
#[cfg(feature = "live")]
pub use live::LiveNode;

use alloc::string::String;
use wasm_bindgen::prelude::*;

/// The version of the Flotilla core compiled into this module.
#[wasm_bindgen]
pub fn version() -> String {
    String::from(env!("CARGO_PKG_VERSION"))
}

/// Runs once when the module is instantiated: panics show their message in the console
/// instead of "unreachable executed".
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
