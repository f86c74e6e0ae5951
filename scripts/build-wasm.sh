#!/usr/bin/env bash
# Build the wasm bindings and generate the ES module package in web/pkg (git-ignored).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

cargo build --release -p flotilla-wasm --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir web/pkg \
    "$target_dir/wasm32-unknown-unknown/release/flotilla_wasm.wasm"
echo "build-wasm: web/pkg is up to date"
