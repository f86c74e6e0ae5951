#!/usr/bin/env bash
# `npm start`: set up, build the wasm package into web/pkg and the raft-node binary, start a local
# 3-node cluster (data in .data/dev-cluster, git-ignored) and serve the playground at
# http://127.0.0.1:8080/ (PORT overrides the port). Ctrl-C stops both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/build-wasm.sh

echo "start: building raft-node (release)"
cargo build --release -p native-node
target_dir="${CARGO_TARGET_DIR:-target}"

# A development secret unless the caller brings one; the cluster refuses peers and admin calls
# without it.
export FLOTILLA_SECRET="${FLOTILLA_SECRET:-flotilla-dev}"
"$target_dir/release/raft-node" dev-cluster --nodes 3 --data-root .data/dev-cluster --web-dir web &
cluster_pid=$!
trap 'kill -TERM "$cluster_pid" 2>/dev/null || true; wait "$cluster_pid" 2>/dev/null || true' EXIT INT TERM

echo "start: a 3-node Raft cluster serves http://127.0.0.1:7001/ (and :7002, :7003);"
echo "       try: FLOTILLA_SECRET=$FLOTILLA_SECRET $target_dir/release/raft-node kv --endpoints 127.0.0.1:7001 put hello world"
echo "start: the playground is at http://127.0.0.1:${PORT:-8080}/"
# An invitation for browser tabs to join the local cluster as learners (issue #13): open the
# link's page in a few tabs. The cluster needs a moment to elect a leader first.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if invite=$("$target_dir/release/raft-node" admin --endpoints 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \
      invite --ttl 1h --uses 10 2>/dev/null); then
    echo "start: invite browser tabs (10 tabs, 1 hour) with: $(printf '%s\n' "$invite" | tail -n 1)"
    break
  fi
  sleep 0.5
done
node scripts/serve.mjs
