#!/usr/bin/env bash
# `npm start`: set up, then run the main job.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

# >>> PLACEHOLDER: the playground server will replace this simulator run. <<<
exec cargo run --release -p raft-core --example simulate -- \
    --seed 1 --runs 20 --nodes 5 --faults all --ticks 20000
