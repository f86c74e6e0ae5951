//! `cargo fuzz run protocol`: a shim over `native_node::fuzzing::protocol`, where the harness and its
//! oracles are documented (and replayed on stable by `native-node/tests/fuzz_regressions.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| native_node::fuzzing::protocol(data));
