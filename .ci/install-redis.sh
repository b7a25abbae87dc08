#!/bin/sh
# Make Redis's server available for the tests that count rate limits, quotas and budgets across
# processes (tests start a throwaway redis-server on a loopback port of their own, memory-capped).
# Installs Debian's redis-server when it is missing (as root); elsewhere it only warns and those
# tests skip, saying why.
set -eu

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends redis-server
    # The package's own service is not needed: tests start their own servers.
    if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
else
    echo "install-redis: not root and redis-server not found; Redis tests will skip" >&2
fi
