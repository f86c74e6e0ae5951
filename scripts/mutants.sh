#!/usr/bin/env bash
# The mutation gate (issue 19): plants each classic Raft bug of scripts/mutants/*.patch, alone, in
# a scratch copy of raft-core and runs THE SIMULATOR ALONE (the `simulate` example, a CI-sized
# swarm) against it. A mutant is caught when a simulated run fails (a safety, progress or
# linearizability violation, or a panic), with the command that reproduces it.
#
#   bash scripts/mutants.sh                 # every patch
#   bash scripts/mutants.sh 04 09           # only the patches whose names start so
#   MUTANTS_SWARM="--seed 1 --runs 40 --workload kv --check linearizability" bash scripts/mutants.sh 04
#   MUTANTS_LIN_ALONE="04 13 14" bash scripts/mutants.sh 04 13 14
#
# Exit status: 0 when every mutant is caught, 1 when any is missed (or its patch no longer
# applies: a stale patch must be rewritten, not skipped), or when the linearizability check
# alone misses a mutant of MUTANTS_LIN_ALONE (default 04, the ReadIndex bug; empty: skip) or
# flags the unmutated simulator. The table goes to stdout and to
# target/mutants/report.md.
#
# The scratch workspace holds raft-core only and builds into target/mutants, so the
# dependencies are compiled once and each mutant recompiles raft-core alone. Adding a mutant is
# adding a patch: `git diff -- raft-core > scripts/mutants/NN-name.patch` on a planted bug.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
scratch="${MUTANTS_SCRATCH:-${TMPDIR:-/tmp}/flotilla-mutants-$$}"
export CARGO_TARGET_DIR="$repo/target/mutants"
mkdir -p "$CARGO_TARGET_DIR"

# The swarm each mutant faces: every line is one `simulate` run; the first failing one catches.
# Sized for CI: the default fault mix (which includes reads, delayed duplicates, Figure 8
# schedules and votes crashed right after they are given) on 5 and 3 nodes, then the kv
# linearizability swarm with reads served by any server, then the `corners` mix on 5 and 3.
swarm=(
    "--seed 1 --runs 12 --nodes 5 --faults all --ticks 6000"
    "--seed 100 --runs 12 --nodes 3 --faults all --ticks 6000"
    "--seed 1 --runs 8 --nodes 5 --faults all --ticks 6000 --workload kv --clients 8 --keys 10 --read-mode linearizable --reads-from any --check linearizability"
    # The corners of issue 10 (competing configurations across a partition, at the same index;
    # loss bursts that swallow a whole window; clocks at the drift bound; TimeoutNow in flight
    # past an abandoned transfer; leaders crashed during a catch-up; snapshots at a divergence
    # point and inside a deposed leader's write burst; followers restarted right after a
    # partitioned leader's lease round): about 0.4 s a run, so more runs.
    "--seed 1 --runs 100 --nodes 5 --faults all,corners --ticks 6000"
    "--seed 100 --runs 100 --nodes 3 --faults all,corners --ticks 6000"
)

# MUTANTS_SWARM replaces the swarm: simulate argument lists separated by ';'.
if [ -n "${MUTANTS_SWARM:-}" ]; then
    IFS=';' read -r -a swarm <<< "$MUTANTS_SWARM"
fi

# The linearizability checker on its own (issue 19 item 2): for the mutants named here (by
# prefix; the ReadIndex bug by default), the kv linearizability line runs again with every other
# check switched off (`--ignore-checks all`), so a catch there is the history check's alone.
lin_alone_prefixes="${MUTANTS_LIN_ALONE-04}"
lin_alone_args="--seed 1 --runs 8 --nodes 5 --faults all --ticks 6000 --workload kv --clients 8 --keys 10 --read-mode linearizable --reads-from any --check linearizability --ignore-checks all"

patches=()
for patch in scripts/mutants/*.patch; do
    name=$(basename "$patch" .patch)
    if [ $# -gt 0 ]; then
        wanted=0
        for prefix in "$@"; do
            case "$name" in "$prefix"*) wanted=1 ;; esac
        done
        [ $wanted -eq 1 ] || continue
    fi
    patches+=("$patch")
done
if [ ${#patches[@]} -eq 0 ]; then
    echo "no patch matches $*" >&2
    exit 2
fi

cleanup() { rm -rf "$scratch"; }
trap cleanup EXIT
rm -rf "$scratch"
mkdir -p "$scratch"
cp Cargo.lock rustfmt.toml "$scratch/"
cat > "$scratch/Cargo.toml" <<'EOF'
[workspace]
resolver = "2"
members = ["raft-core"]

[workspace.package]
version = "0.1.0"
edition = "2021"
license = "MIT OR Apache-2.0"
repository = "https://github.com/flotilla-raft/flotilla"
rust-version = "1.85"

# Fast to rebuild: only raft-core changes between mutants.
[profile.release]
debug = 0
codegen-units = 16
incremental = true
EOF

# raft-core as it is now, copied once: edits made while the gate runs do not leak into it.
mkdir -p "$scratch/pristine"
cp -r raft-core/Cargo.toml raft-core/src raft-core/examples "$scratch/pristine/"
for extra in benches tests GUIDE.md README.md; do
    [ -e "raft-core/$extra" ] && cp -r "raft-core/$extra" "$scratch/pristine/"
done

pristine() {
    rm -rf "$scratch/raft-core"
    cp -r "$scratch/pristine" "$scratch/raft-core"
}

report="$CARGO_TARGET_DIR/report.md"
{
    echo "| mutant | result | caught by | seconds | first failing run (simulate flags, with the patch applied) |"
    echo "|---|---|---|---|---|"
} > "$report"
lin_report="$CARGO_TARGET_DIR/report-linearizability-alone.md"
{
    echo "| mutant | linearizability check alone (\`$lin_alone_args\`) |"
    echo "|---|---|"
} > "$lin_report"
missed=0
started_all=$(date +%s)

# Build the unmutated simulator first: it must pass the swarm, or the gate means nothing.
pristine
echo "== building the unmutated simulator"
(cd "$scratch" && cargo build --release -q -p raft-core --example simulate)
lin_missed=0
if [ -n "$lin_alone_prefixes" ]; then
    # The control: with no bug planted, the history check alone must flag nothing.
    echo "== unmutated: simulate $lin_alone_args"
    # shellcheck disable=SC2086
    if ! control=$(cd "$scratch" && timeout 600 "$CARGO_TARGET_DIR/release/examples/simulate" $lin_alone_args 2>&1); then
        printf '%s\n' "$control" | grep -E '^seed|reproduce' | head -5 || true
        echo "the unmutated simulator fails the linearizability line: the gate means nothing" >&2
        exit 1
    fi
    echo "| (none: the unmutated simulator) | $(printf '%s\n' "$control" | grep -oE '"linearizability_violations":[0-9]+' | sed 's/.*://') of $(printf '%s\n' "$control" | grep -oE '"runs":[0-9]+' | sed 's/.*://') runs not linearizable |" >> "$lin_report"
fi

for patch in "${patches[@]}"; do
    name=$(basename "$patch" .patch)
    started=$(date +%s)
    pristine
    if ! (cd "$scratch" && patch -s -p1 < "$repo/$patch"); then
        echo "| $name | **patch does not apply** | | | |" >> "$report"
        echo "== $name: the patch does not apply"
        missed=$((missed + 1))
        continue
    fi
    echo "== $name: building"
    if ! (cd "$scratch" && cargo build --release -q -p raft-core --example simulate 2> "$scratch/build.log"); then
        tail -20 "$scratch/build.log"
        echo "| $name | **does not build** | | | |" >> "$report"
        missed=$((missed + 1))
        continue
    fi
    result="missed"
    by=""
    reproduce=""
    for args in "${swarm[@]}"; do
        echo "== $name: simulate $args"
        set +e
        # shellcheck disable=SC2086
        output=$(cd "$scratch" && timeout 600 "$CARGO_TARGET_DIR/release/examples/simulate" $args 2>&1)
        status=$?
        set -e
        if [ $status -ne 0 ]; then
            result="caught"
            line=$(printf '%s\n' "$output" | grep -m1 -E '^seed [0-9]+ (violated|panicked|history)' || true)
            by=$(printf '%s\n' "$line" | sed -nE 's/^seed [0-9]+ violated ([a-z0-9-]+).*/\1/p; s/^seed [0-9]+ panicked.*/panic/p; s/^seed [0-9]+: history not linearizable.*/linearizability/p')
            [ -z "$by" ] && [ $status -eq 124 ] && by="timeout (a hang: a bug in the gate's budgets)"
            [ -z "$by" ] && by="exit $status"
            # `|| true`: with pipefail, `head` closing the pipe early (many failing seeds) is
            # SIGPIPE for printf, which would end the gate.
            reproduce=$(printf '%s\n' "$output" | grep -oE 'reproduce with: .*' | head -1 | sed 's/reproduce with: //; s/;.*//' || true)
            printf '%s\n' "$output" | grep -E '^seed [0-9]+' | head -3 || true
            break
        fi
    done
    elapsed=$(( $(date +%s) - started ))
    echo "== $name: $result ${by:+($by)} in ${elapsed}s"
    [ "$result" = missed ] && missed=$((missed + 1))
    # Reproduce a catch: plant the patch in a scratch copy (git apply scripts/mutants/NAME.patch)
    # and run the command.
    echo "| $name | $result | $by | $elapsed | ${reproduce:+\`${reproduce#cargo run --release -p raft-core --example simulate -- }\`} |" >> "$report"
    for prefix in $lin_alone_prefixes; do
        case "$name" in "$prefix"*) ;; *) continue ;; esac
        echo "== $name: simulate $lin_alone_args"
        set +e
        # shellcheck disable=SC2086
        output=$(cd "$scratch" && timeout 600 "$CARGO_TARGET_DIR/release/examples/simulate" $lin_alone_args 2>&1)
        set -e
        flagged=$(printf '%s\n' "$output" | grep -oE '^seed [0-9]+: history not linearizable' | grep -oE '[0-9]+' | tr '\n' ' ' || true)
        runs=$(printf '%s\n' "$output" | grep -oE '"runs":[0-9]+' | grep -oE '[0-9]+' || true)
        if [ -n "$flagged" ]; then
            verdict="caught: $(wc -w <<< "$flagged") of ${runs:-?} runs not linearizable (seeds ${flagged% })"
        else
            verdict="**missed** (${runs:-?} runs; last line: $(printf '%s\n' "$output" | tail -1 | cut -c1-120))"
            lin_missed=$((lin_missed + 1))
        fi
        echo "== $name: linearizability alone: $verdict"
        echo "| $name | $verdict |" >> "$lin_report"
    done
done

echo
echo "mutation gate: ${#patches[@]} mutants, $((${#patches[@]} - missed)) caught, $missed missed, $(( $(date +%s) - started_all ))s"
cat "$report"
if [ -n "$lin_alone_prefixes" ]; then
    echo
    echo "linearizability check alone: $lin_missed missed"
    cat "$lin_report"
fi
[ $missed -eq 0 ] && [ $lin_missed -eq 0 ]
