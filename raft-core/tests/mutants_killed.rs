//! Tests that kill mutants `cargo mutants` found surviving in the protocol code (see
//! `raft-core/MUTANTS.md` and `scripts/cargo-mutants.sh`). Each names the mutant it kills: the
//! function and the change, as cargo-mutants prints it.

mod common;
