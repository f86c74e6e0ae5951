#!/usr/bin/env bash
# Build the wasm bindings and generate the ES module packages (git-ignored): web/pkg for the
# playground (the `wasm-release` profile: fat LTO, one codegen unit, opt-level 3; see Cargo.toml;
# then binaryen's wasm-opt -O3, which scripts/setup.sh installs, then wasm-bindgen) and
# web/pkg-widget for the docs widget (the `wasm-size` profile, without the browser peer and the
# history checker, -Oz), and web/pkg-checker (that checker alone, for a widget's history panel).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

if ! command -v wasm-opt >/dev/null 2>&1; then
    echo "build-wasm: wasm-opt (Debian package binaryen) is missing; run: npm run setup" >&2
    exit 1
fi

# Builds profile $1 with cargo flags $2, runs wasm-opt with $3, writes the package to $4 with
# wasm-bindgen flags $5; $6 is the crate (flotilla-wasm unless given), $7 its file name.
build_package() {
    local profile="$1" features="$2" level="$3" out="$4" bindgen_flags="${5:-}"
    local crate="${6:-flotilla-wasm}" file="${7:-flotilla_wasm}"
    # shellcheck disable=SC2086 # $features is zero or more flags
    cargo build --profile "$profile" -p "$crate" --target wasm32-unknown-unknown $features
    # wasm-opt goes before wasm-bindgen: Debian's binaryen (108) retypes the externref table
    # that wasm-bindgen adds, and the page then fails to load. The file keeps its name, which
    # wasm-bindgen uses for the package's.
    local optimized="$target_dir/wasm32-unknown-unknown/$profile/wasm-opt"
    mkdir -p "$optimized"
    wasm-opt "$level" "$target_dir/wasm32-unknown-unknown/$profile/$file.wasm" \
        -o "$optimized/$file.wasm"
    # shellcheck disable=SC2086 # $bindgen_flags is zero or more flags
    wasm-bindgen --target web $bindgen_flags --out-dir "$out" "$optimized/$file.wasm"
    echo "build-wasm: $out is up to date"
}

# The playground's and the live view's package: every export, optimised for speed.
build_package wasm-release "" -O3 web/pkg
# The docs widget's: no browser peer, optimised for size (Cargo.toml's wasm-size profile).
build_package wasm-size --no-default-features -Oz web/pkg-widget "--remove-name-section --remove-producers-section"
# Its glue without the doc comments wasm-bindgen copies from the Rust source (a quarter of the
# file; the .d.ts keeps them): 3.4 KB less for a page with a widget to transfer (gzip).
perl -0pi -e 's{^[ \t]*/\*\*.*?\*/\n}{}gms' web/pkg-widget/flotilla_wasm.js
# The history panel's checker as a module of its own, which the widget's package leaves out (about
# 33 KB gzip): a widget loads it only for panels="history".
build_package wasm-size "" -Oz web/pkg-checker "--remove-name-section --remove-producers-section" \
    flotilla-wasm-checker flotilla_wasm_checker
perl -0pi -e 's{^[ \t]*/\*\*.*?\*/\n}{}gms' web/pkg-checker/flotilla_wasm_checker.js
