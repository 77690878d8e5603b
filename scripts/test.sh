#!/usr/bin/env bash
# Every check of the workspace, as CI runs it (.ci/run calls this script):
# redis-server installed if missing, formatting, clippy, docs, then every test against real Redis.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "redis-server"
scripts/ensure-redis.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# The workspace build turns lock-runtime's `metrics` feature on (the tests use it): check the
# library alone too, as a user without the feature builds it.
step "cargo clippy (lock-runtime without optional features)"
cargo clippy -p lock-runtime --lib --locked -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    # Each test in its own process; the profile in .config/nextest.toml bounds slow tests.
    cargo nextest run --workspace --locked --no-fail-fast --profile ci
    step "doc tests"
    cargo test --workspace --doc --locked
else
    cargo test --workspace --locked --no-fail-fast
fi
