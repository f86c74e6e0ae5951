#!/usr/bin/env bash
# Plaintext against TLS, alternating, each run on a fresh 3-node dev cluster on loopback
# (issue 11's "re-run the bench with TLS on"). Prints one line per run: round, mode, clients,
# then `raft-node bench`'s JSON. Run it on a quiet machine; compare the two modes within a round.
#
#   bash native-node/bench/tls-vs-plaintext.sh [rounds] [base-port]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds=${1:-3}
port=${2:-7301}
cargo build --release -p native-node 2>&1 | tail -1
bin=target/release/raft-node
FLOTILLA_SECRET=$($bin secret)
export FLOTILLA_SECRET
endpoints="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
for round in $(seq 1 "$rounds"); do
    for mode in plaintext tls; do
        for clients in 1 64 256; do
            root=$(mktemp -d /tmp/flotilla-bench-XXXXXX)
            tls=(); ca=()
            if [ "$mode" = tls ]; then tls=(--tls); ca=(--tls-ca "$root/certs/ca.pem"); fi
            $bin dev-cluster --nodes 3 --data-root "$root" --base-port "$port" "${tls[@]}" > "$root.log" 2>&1 &
            cluster=$!
            sleep 4
            case $clients in 1) ops=5000 ;; 64) ops=40000 ;; *) ops=60000 ;; esac
            result=$($bin bench --endpoints "$endpoints" --clients "$clients" --ops "$ops" --value-size 256 "${ca[@]}" 2>&1 | tail -1)
            echo "round=$round mode=$mode clients=$clients $result"
            kill "$cluster"; wait "$cluster" 2>/dev/null || true
            rm -rf "$root" "$root.log"
            sleep 1
        done
    done
done
