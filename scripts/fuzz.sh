#!/usr/bin/env bash
# Coverage-guided fuzzing of every door (see README "Fuzzing").
#
#   scripts/fuzz.sh                    every target, 600 s each
#   scripts/fuzz.sh <target> [seconds] one target (peer_frame, client_request, wal_replay,
#                                      run_text, protocol), 600 s by default
#   scripts/fuzz.sh --smoke            every target for about 20 s, no ASan (part of scripts/test.sh;
#                                      FLOTILLA_FUZZ_SMOKE=0 skips it there; FLOTILLA_FUZZ_SMOKE_SECONDS
#                                      to change 20)
#   scripts/fuzz.sh --check            exit 0 if nightly and cargo-fuzz are (or can be) set up
#
# Sets up the nightly toolchain and cargo-fuzz if missing (skips whatever is present). One worker,
# one target at a time: the machine is shared. New inputs go to fuzz/corpus/<target>/ (not
# committed beyond the seeds: minimise before committing); crashes go to
# fuzz/artifacts/<target>/ — copy them to fuzz/regressions/<target>/ and fix.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGETS=(peer_frame client_request wal_replay run_text protocol)

setup() {
    if ! command -v rustup >/dev/null 2>&1; then
        echo "fuzz: rustup is not installed; cannot set up the nightly toolchain" >&2
        return 1
    fi
    if ! rustup run nightly rustc --version >/dev/null 2>&1; then
        echo "fuzz: installing the nightly toolchain"
        rustup toolchain install nightly --profile minimal >&2 || return 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz"
        cargo install cargo-fuzz --locked >&2 || return 1
    fi
}

run() {
    local target=$1 seconds=$2
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    echo "==== fuzz $target for ${seconds}s ===="
    # -O: optimised build with debug assertions; the seeds are read from fuzz/corpus/<target>.
    (cd fuzz && cargo +nightly fuzz run -O "$target" -- \
        -max_total_time="$seconds" -workers=1 -jobs=1 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1)
}

case "${1:-}" in
--check)
    setup
    ;;
--smoke)
    setup
    # The cheapest build that still finds panics and broken oracles: every target in one cargo
    # invocation, without AddressSanitizer (-s none: the harnesses are safe Rust, and ASan's
    # instrumented build of every dependency is what costs most on a fresh clone). The long
    # runs above keep ASan.
    seconds=${FLOTILLA_FUZZ_SMOKE_SECONDS:-20}
    started=$SECONDS
    (cd fuzz && cargo +nightly fuzz build -O -s none)
    echo "fuzz smoke: build of every target took $((SECONDS - started)) s"
    started=$SECONDS
    for target in "${TARGETS[@]}"; do
        # Work on a copy of the corpus: a smoke run must not grow the committed seeds.
        scratch=$(mktemp -d)
        cp -r "fuzz/corpus/$target/." "$scratch/"
        echo "==== smoke: $target, ${seconds} s ===="
        (cd fuzz && cargo +nightly fuzz run -O -s none "$target" "$scratch" -- \
            -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
        rm -rf "$scratch"
    done
    echo "fuzz smoke: runs took $((SECONDS - started)) s"
    ;;
"")
    setup
    for target in "${TARGETS[@]}"; do
        run "$target" 600
    done
    ;;
*)
    target=$1
    if [[ ! " ${TARGETS[*]} " == *" $target "* ]]; then
        echo "fuzz: unknown target '$target' (one of: ${TARGETS[*]})" >&2
        exit 2
    fi
    setup
    run "$target" "${2:-600}"
    ;;
esac
