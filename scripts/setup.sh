#!/usr/bin/env bash
# Idempotent set-up of everything Flotilla needs to build, run and test.
# Quiet when there is nothing to do: one line per step.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step() { printf 'setup: %-22s %s\n' "$1" "$2"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# 1. Rust components and the wasm target.
missing_components=()
cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy)
if [ ${#missing_components[@]} -gt 0 ]; then
    step "rust components" "installing ${missing_components[*]}"
    rustup component add "${missing_components[@]}"
else
    step "rust components" "ok (rustfmt, clippy)"
fi

if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
    step "wasm target" "ok (wasm32-unknown-unknown)"
else
    step "wasm target" "installing wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# 2. wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock.
[ -f Cargo.lock ] || cargo generate-lockfile
want_wb="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock)"
if [ -z "$want_wb" ]; then
    echo "setup: cannot find the wasm-bindgen version in Cargo.lock" >&2
    exit 1
fi
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
if [ "$have_wb" = "$want_wb" ]; then
    step "wasm-bindgen-cli" "ok ($want_wb)"
else
    step "wasm-bindgen-cli" "installing $want_wb (have: ${have_wb:-none}; takes several minutes)"
    cargo install wasm-bindgen-cli --version "$want_wb"
fi

# Installs Debian package $2 for step $1; refreshes the package lists once if the first try fails.
apt_install() {
    step "$1" "installing Debian package $2"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -qq "$2" >/dev/null; then
        step "$1" "install failed; running apt-get update and retrying"
        as_root apt-get update -qq
        as_root apt-get install -y -qq "$2" >/dev/null
    fi
}

# 3. binaryen's wasm-opt, which scripts/build-wasm.sh runs on the wasm package.
if command -v wasm-opt >/dev/null 2>&1; then
    step "wasm-opt" "ok ($(wasm-opt --version 2>/dev/null | head -n 1))"
else
    apt_install wasm-opt binaryen
fi

# 4. npm dependencies (Playwright's test runner; its browser download is never used).
stamp=node_modules/.flotilla-setup-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] \
    || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
    if [ -f package-lock.json ]; then
        step "npm packages" "npm ci"
        npm ci --no-audit --no-fund --loglevel=error
    else
        step "npm packages" "npm install"
        npm install --no-audit --no-fund --loglevel=error
    fi
    touch "$stamp"
else
    step "npm packages" "ok (node_modules up to date)"
fi

# 5. Chromium for the browser tests (Debian's package; Playwright drives it).
if [ -x /usr/bin/chromium ]; then
    step "chromium" "ok (/usr/bin/chromium)"
else
    apt_install chromium chromium
fi

# 6. iproute2 and nftables for the nemesis test (network namespaces, partitions, packet loss).
for tool in ip:iproute2 nft:nftables; do
    if command -v "${tool%%:*}" >/dev/null 2>&1; then
        step "${tool#*:}" "ok ($(command -v "${tool%%:*}"))"
    else
        apt_install "${tool#*:}" "${tool#*:}"
    fi
done
