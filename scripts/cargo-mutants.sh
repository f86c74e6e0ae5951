#!/usr/bin/env bash
# Opt-in: cargo-mutants over the protocol code (raft-core/src/node, log.rs, progress.rs,
# quorum.rs; see .cargo/mutants.toml) with a fast oracle: raft-core's unit tests, and the scenario
# tests with the short seed swarm of raft-core/tests/swarm.rs compiled into one test binary
# (raft-core/tests/mutants_oracle.rs; the list is in .cargo/mutants.toml).
# Every mutant is a rebuild and a test run, so the whole campaign takes hours on two shared
# cores; pass cargo-mutants flags to narrow it, for example:
#
#   bash scripts/cargo-mutants.sh --list                       # what would be mutated
#   bash scripts/cargo-mutants.sh --file raft-core/src/quorum.rs
#   bash scripts/cargo-mutants.sh --shard 0/8                  # one eighth of the campaign
#   bash scripts/cargo-mutants.sh --in-place --baseline skip --re '^raft-core/src/node/lease.rs:'
#                      # in a scratch worktree whose build is warm (see raft-core/MUTANTS.md)
#
# Results go to target/mutants.out (missed.txt: the survivors). Kill each survivor with a test
# (raft-core/tests/mutants_killed.rs) or explain it in raft-core/MUTANTS.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! cargo mutants --version > /dev/null 2>&1; then
    cargo install --locked cargo-mutants
fi
# Fast to rebuild, fast enough to test: the dev profile (incremental, so a mutant recompiles
# only what it touched) optimised at level 1 without debug info, which runs the swarm within
# seconds. Only this script's builds use these settings (cargo-mutants builds in a copy of the
# tree with its own target directory).
export CARGO_PROFILE_DEV_OPT_LEVEL="${CARGO_PROFILE_DEV_OPT_LEVEL:-1}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-0}"
export CARGO_PROFILE_DEV_INCREMENTAL=true
# One mutant at a time (`--in-place`, which mutates this tree and reuses its target directory,
# is one at a time by nature), at the lowest priority: the machine is shared. A mutant that
# hangs the tests is counted as caught by timeout rather than stalling the campaign.
jobs=(--jobs 1)
[[ " $* " == *" --in-place "* ]] && jobs=()
exec nice -n 19 cargo mutants --package raft-core "${jobs[@]}" --timeout "${MUTANTS_TIMEOUT:-300}" --output "${MUTANTS_OUTPUT:-target}" "$@"
