#!/usr/bin/env bash
# Build the wasm bindings and generate the ES module package in web/pkg (git-ignored): the
# `wasm-release` profile (fat LTO, one codegen unit; see Cargo.toml), binaryen's wasm-opt -O3
# (scripts/setup.sh installs it), then wasm-bindgen.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: wasm-opt (Debian package binaryen) is missing; run: npm run setup" >&2
    exit 1
fi

cargo build --profile wasm-release -p flotilla-wasm --target wasm32-unknown-unknown
# wasm-opt goes before wasm-bindgen: Debian's binaryen (108) retypes the externref table that
# wasm-bindgen adds, and the page then fails to load. The file keeps its name, which
# wasm-bindgen uses for the package's.
optimized="$target_dir/wasm32-unknown-unknown/wasm-release/wasm-opt"
mkdir -p "$optimized"
wasm-opt -O3 "$target_dir/wasm32-unknown-unknown/wasm-release/flotilla_wasm.wasm" \
    -o "$optimized/flotilla_wasm.wasm"
wasm-bindgen --target web --out-dir web/pkg "$optimized/flotilla_wasm.wasm"
echo "build-wasm: web/pkg is up to date"
