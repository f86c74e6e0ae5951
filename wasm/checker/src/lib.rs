//! The history panel's linearizability checker (raft-core's, thesis §6.3's yardstick), checking
//! only the keys whose operations changed since the last call.
//!
//! Two users: flotilla-wasm's `HistoryChecker` (the playground's package, which reads a
//! `SimCluster` directly) and, with the `exports` feature, a WebAssembly module of its own
//! (`web/pkg-checker`): the docs widget's package leaves the checker out, since a page with a
//! widget must transfer at most 250 KB (issue 16), and a widget with `panels="history"` loads
//! this module beside it and hands it `SimCluster.historyData()`.
#![no_std]

extern crate alloc;

mod incremental;

#[cfg(feature = "exports")]
mod exports;

pub use incremental::IncrementalChecker;

/// The allocator of the module of its own: Talc, as flotilla-wasm's (see there why).
#[cfg(all(feature = "exports", target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
