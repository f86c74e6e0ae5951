//! `cargo fuzz run run_text`: a shim over `flotilla_wasm::fuzzing::run_text`, where the harness
//! and its oracles are documented (and replayed on stable by `wasm/tests/fuzz_regressions.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| flotilla_wasm::fuzzing::run_text(data));
