#!/usr/bin/env bash
# The fault suite's soak run, outside the default test run because it takes minutes:
# 100 000 acquisitions of one lock across 4 processes, in release mode, checked for overlaps.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/ensure-redis.sh
cargo test --release --locked -p lock-tests --test primitives -- --ignored --nocapture \
    lock::exclusion::a_hundred_thousand_acquisitions_across_processes_never_overlap
