#!/usr/bin/env bash
# The main job: the stock-decrement demo. Four processes x 50 tasks buy one unit each of a product
# with 100 in stock, first under #[distribute_lock], then without it; then the fencing demo; then
# the auction, whose bids live in Redis and are written with lock_runtime::exec: with the lock,
# without it, and a stale holder whose late bid Redis refuses.
# Each demo starts its own throwaway redis-server (or uses $REDIS_URL) and a temporary SQLite file.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/ensure-redis.sh >/dev/null
echo "Building the demo (first build takes a minute or two)..."
cargo build --quiet --locked -p lock-examples --bins

run() { cargo run --quiet --locked -p lock-examples --bin "$@"; }

echo
echo "=== 1. With the lock ==================================================================="
run stock-demo -- --processes 4 --tasks 50 --stock 100
echo "=== 2. The same workload without the lock =============================================="
run stock-demo -- --processes 4 --tasks 50 --stock 100 --no-lock
echo "=== 3. Fencing tokens =================================================================="
run fencing-demo
echo "=== 4. An auction kept in Redis, bids written with lock_runtime::exec ==================="
run auction-demo
run auction-demo -- --no-lock
run auction-demo -- stale-holder
