//! `cargo fuzz run wal_replay`: a shim over `native_node::fuzzing::wal_replay`, where the harness and its
//! oracles are documented (and replayed on stable by `native-node/tests/fuzz_regressions.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| native_node::fuzzing::wal_replay(data));
