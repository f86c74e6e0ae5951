#!/usr/bin/env bash
# `npm start`: set up, build the wasm package into web/pkg, and serve the playground at
# http://127.0.0.1:8080/ (PORT overrides the port). Ctrl-C stops the server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/build-wasm.sh

# >>> HOOK: start a local native cluster here (raft-node serve …) for the live view, in the
# background, and stop it on exit (trap). The playground itself needs nothing but the server. <<<

echo "start: the playground is at http://127.0.0.1:${PORT:-8080}/"
exec node scripts/serve.mjs
