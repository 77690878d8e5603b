#!/usr/bin/env bash
# Makes sure a `redis-server` binary is available for the test kit (package lock-tests).
#
# - If $REDIS_SERVER (or `redis-server` on PATH) exists, prints its version and exits 0.
# - Else, when running as root (or with password-less sudo) on a system with apt-get, installs the
#   Debian/Ubuntu package `redis-server` and stops the system service it may start: the tests run
#   their own servers on free ports and never need port 6379.
# - Else exits 1 with instructions.
set -euo pipefail

print_version() {
    "$1" --version
}

if [[ -n "${REDIS_SERVER:-}" ]]; then
    if [[ -x "${REDIS_SERVER}" ]] || command -v "${REDIS_SERVER}" >/dev/null 2>&1; then
        print_version "${REDIS_SERVER}"
        exit 0
    fi
    echo "REDIS_SERVER=${REDIS_SERVER} is not an executable redis-server." >&2
    exit 1
fi

if command -v redis-server >/dev/null 2>&1; then
    print_version redis-server
    exit 0
fi

install_hint() {
    printf '%s\n' \
        "redis-server was not found, and this script cannot install it here." \
        "The tests of this workspace run real redis-server processes (Redis >= 6.2 or Valkey >= 7.2). Install it with one of:" \
        "  Debian/Ubuntu:  sudo apt-get install redis-server" \
        "  macOS:          brew install redis" \
        "or point the tests at a binary:  export REDIS_SERVER=/path/to/redis-server" >&2
}

if ! command -v apt-get >/dev/null 2>&1; then
    install_hint
    exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    install_hint
    exit 1
fi

echo "Installing redis-server with apt-get..." >&2
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server

# The package may start a system service on port 6379; the tests do not need it.
if command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl stop redis-server >/dev/null 2>&1 || true
    "${SUDO[@]}" systemctl disable redis-server >/dev/null 2>&1 || true
fi
if command -v service >/dev/null 2>&1; then
    "${SUDO[@]}" service redis-server stop >/dev/null 2>&1 || true
fi

if ! command -v redis-server >/dev/null 2>&1; then
    echo "apt-get finished but redis-server is still not on PATH." >&2
    install_hint
    exit 1
fi
print_version redis-server
