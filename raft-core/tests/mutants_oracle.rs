//! The cargo-mutants oracle (`scripts/cargo-mutants.sh`, `.cargo/mutants.toml`,
//! `raft-core/MUTANTS.md`): the deterministic protocol tests and the short seed swarm, compiled
//! as modules of one test binary. A mutant then recompiles raft-core and relinks this one
//! binary instead of fourteen, which halves the time a mutant takes. Built only with the
//! `mutants-oracle` feature: every file below is also a test target of its own, run by
//! `cargo test`.

// Each test file declares `mod common;`, so the shared helpers are compiled once per file here,
// exactly as they are in the separate binaries.
#![allow(clippy::duplicate_mod)]

#[path = "scenarios.rs"]
mod scenarios;

#[path = "replication.rs"]
mod replication;

#[path = "configuration.rs"]
mod configuration;

#[path = "membership.rs"]
mod membership;

#[path = "lease_safety.rs"]
mod lease_safety;

#[path = "reads.rs"]
mod reads;

#[path = "client_reads.rs"]
mod client_reads;

#[path = "snapshots.rs"]
mod snapshots;

#[path = "review_check_quorum.rs"]
mod review_check_quorum;

#[path = "review_promotable.rs"]
mod review_promotable;

#[path = "adversarial_review.rs"]
mod adversarial_review;

#[path = "robustness.rs"]
mod robustness;

#[path = "campaigns.rs"]
mod campaigns;

#[path = "campaigns_sim.rs"]
mod campaigns_sim;

#[path = "review_campaigns.rs"]
mod review_campaigns;

#[path = "review_session6.rs"]
mod review_session6;

#[path = "review_session7.rs"]
mod review_session7;

#[path = "mutants_killed.rs"]
mod mutants_killed;

#[path = "mutants_killed_membership.rs"]
mod mutants_killed_membership;

#[path = "mutants_killed_replication.rs"]
mod mutants_killed_replication;

#[path = "swarm.rs"]
mod swarm;
