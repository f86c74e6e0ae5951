#!/usr/bin/env bash
# Opt-in: cargo-mutants over the protocol code (raft-core/src/node, log.rs, progress.rs,
# quorum.rs; see .cargo/mutants.toml), with raft-core's tests as the oracle: the fast unit and
# scenario tests plus the short seed swarm of raft-core/tests/swarm.rs. Every mutant is a full
# test run, so a whole campaign takes hours on two cores; pass cargo-mutants flags to narrow
# it, for example:
#
#   bash scripts/cargo-mutants.sh --list                       # what would be mutated
#   bash scripts/cargo-mutants.sh --file raft-core/src/quorum.rs
#   bash scripts/cargo-mutants.sh --shard 0/8                  # one eighth of the campaign
#
# Survivors are written to mutants.out/missed.txt; kill each (a test that fails on it) or
# explain it in the README's mutation section.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! cargo mutants --version > /dev/null 2>&1; then
    cargo install --locked cargo-mutants
fi
# Release tests: the swarm is slow in debug. A budget per mutant: a mutant that hangs the
# tests is counted as caught by timeout rather than stalling the campaign.
exec cargo mutants --package raft-core --timeout 600 --output target "$@"
