#!/usr/bin/env bash
# Build the wasm bindings and generate the ES module packages (git-ignored): web/pkg for the
# playground (the `wasm-release` profile: fat LTO, one codegen unit, opt-level 3; see Cargo.toml;
# then binaryen's wasm-opt -O3, which scripts/setup.sh installs, then wasm-bindgen) and
# web/pkg-widget for the docs widget (the `wasm-size` profile, without the browser peer, -Oz).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: wasm-opt (Debian package binaryen) is missing; run: npm run setup" >&2
    exit 1
fi

# Builds profile $1 with cargo flags $2, runs wasm-opt with $3, writes the package to $4 with
# wasm-bindgen flags $5.
build_package() {
    local profile="$1" features="$2" level="$3" out="$4" bindgen_flags="${5:-}"
    # shellcheck disable=SC2086 # $features is zero or more flags
    cargo build --profile "$profile" -p flotilla-wasm --target wasm32-unknown-unknown $features
    # wasm-opt goes before wasm-bindgen: Debian's binaryen (108) retypes the externref table
    # that wasm-bindgen adds, and the page then fails to load. The file keeps its name, which
    # wasm-bindgen uses for the package's.
    local optimized="$target_dir/wasm32-unknown-unknown/$profile/wasm-opt"
    mkdir -p "$optimized"
    wasm-opt "$level" "$target_dir/wasm32-unknown-unknown/$profile/flotilla_wasm.wasm" \
        -o "$optimized/flotilla_wasm.wasm"
    # shellcheck disable=SC2086 # $bindgen_flags is zero or more flags
    wasm-bindgen --target web $bindgen_flags --out-dir "$out" "$optimized/flotilla_wasm.wasm"
    echo "build-wasm: $out is up to date"
}

# The playground's and the live view's package: every export, optimised for speed.
build_package wasm-release "" -O3 web/pkg
# The docs widget's: no browser peer, optimised for size (Cargo.toml's wasm-size profile).
build_package wasm-size --no-default-features -Oz web/pkg-widget "--remove-name-section --remove-producers-section"
