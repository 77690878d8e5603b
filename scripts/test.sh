#!/usr/bin/env bash
# Every check of the workspace, as CI runs it (.ci/run calls this script):
# redis-server and tmux installed if missing, formatting, clippy, docs, then every test against real Redis.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "redis-server"
scripts/ensure-redis.sh

step "tmux (lock-cli's terminal tests)"
if ! command -v tmux >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux
    else
        echo "tmux was not found: lock-cli's terminal tests need it (sudo apt-get install tmux)." >&2
        exit 1
    fi
fi
tmux -V

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
