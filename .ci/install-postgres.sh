#!/bin/sh
# Make PostgreSQL's server tools (initdb, pg_ctl) available for the tests that run on PostgreSQL
# (the registry and jobs suites, tests/server/test_postgres.py): tests/throwaway_servers.py starts
# one throwaway cluster per test session in a temporary folder. Installs Debian's postgresql when the
# tools are missing (as root); elsewhere it only warns and those tests skip, saying why.
set -eu

if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends postgresql
    fi
    for tool in /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl; do
        ln -sf "$tool" "/usr/local/bin/$(basename "$tool")"
    done
else
    echo "install-postgres: not root and initdb/pg_ctl not found; PostgreSQL tests will skip" >&2
fi
