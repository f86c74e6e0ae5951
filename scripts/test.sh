#!/usr/bin/env bash
# `npm test`: set up, then run every check and test, in order, stopping at the first failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

n=0
header() {
    n=$((n + 1))
    printf '\n==================== [%d] %s ====================\n' "$n" "$*"
}

header "setup"
bash scripts/setup.sh

header "cargo fmt --check"
cargo fmt --all -- --check

header "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

header "raft-core builds no_std for wasm32-unknown-unknown"
cargo build -p raft-core --no-default-features --target wasm32-unknown-unknown

header "cargo test --workspace --release"
cargo test --workspace --release

header "simulator: seed 1, 50 runs, 5 nodes, all faults (reads, late copies, Figure 8, crashes after votes)"
cargo run --release -p raft-core --example simulate -- \
    --seed 1 --runs 50 --nodes 5 --faults all --ticks 20000

header "simulator: a voter that never campaigns (issue 14), 12 runs, 3 nodes, all faults (~6 s)"
cargo run --release -p raft-core --example simulate -- \
    --seed 1 --runs 12 --nodes 3 --faults all --ticks 20000 --non-campaigning 1

header "simulator: kv linearizability, reads through any server, 12 runs"
cargo run --release -p raft-core --example simulate -- \
    --seed 1 --runs 12 --nodes 5 --faults all --ticks 6000 --workload kv --clients 8 \
    --read-mode linearizable --reads-from any --check linearizability

header "nemesis: 3 and 5 raft-node processes in network namespaces, one fault of each kind (~60 s; skips without root)"
FLOTILLA_NEMESIS=short cargo test -p native-node --release --test nemesis -- --nocapture

# The mutation gate (scripts/mutants.sh, ~30 min on two shared cores) is opt-in: FLOTILLA_MUTANTS=1.
if [ "${FLOTILLA_MUTANTS:-0}" = 1 ]; then
    header "mutation gate: the simulator alone catches every planted bug"
    bash scripts/mutants.sh
fi

# Fuzz smoke run (issue 18): every target about 20 s, built once without ASan; a crash fails the
# run (copy the input to fuzz/regressions/<target>/ and fix). FLOTILLA_FUZZ_SMOKE=0 skips it.
# Where nightly or cargo-fuzz cannot be installed it says so and skips. Cost (README "Fuzzing",
# idle machine): cold build 230 s, runs 169 s.
if [ "${FLOTILLA_FUZZ_SMOKE:-1}" != 0 ]; then
    header "fuzz smoke run: every target for about 20 s (nightly + cargo-fuzz)"
    if bash scripts/fuzz.sh --check >/dev/null 2>&1; then
        bash scripts/fuzz.sh --smoke
    else
        echo "fuzz smoke run SKIPPED: the nightly toolchain or cargo-fuzz cannot be installed here"
    fi
else
    echo "fuzz smoke run: skipped (FLOTILLA_FUZZ_SMOKE=0)"
fi

if [ -d web/tests ]; then
    header "build wasm package (web/pkg)"
    bash scripts/build-wasm.sh

    header "browser tests (Playwright + /usr/bin/chromium)"
    npx --no-install playwright test
else
    header "browser tests: skipped (web/tests does not exist yet)"
fi

printf '\n==================== all checks passed ====================\n'
