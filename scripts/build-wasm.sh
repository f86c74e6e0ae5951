#!/usr/bin/env bash
# Build the wasm bindings and generate the ES module package in web/pkg (git-ignored): the
# `wasm-release` profile (fat LTO, one codegen unit; see Cargo.toml), then wasm-bindgen, then
# binaryen's wasm-opt -O3 (scripts/setup.sh installs it).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: wasm-opt (Debian package binaryen) is missing; run: npm run setup" >&2
    exit 1
fi

cargo build --profile wasm-release -p flotilla-wasm --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir web/pkg \
    "$target_dir/wasm32-unknown-unknown/wasm-release/flotilla_wasm.wasm"
wasm-opt -O3 web/pkg/flotilla_wasm_bg.wasm -o web/pkg/flotilla_wasm_bg.wasm.opt
mv web/pkg/flotilla_wasm_bg.wasm.opt web/pkg/flotilla_wasm_bg.wasm
echo "build-wasm: web/pkg is up to date"
