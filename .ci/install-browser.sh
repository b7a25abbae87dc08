#!/bin/sh
# Install what the browser tests (tests/browser/) need on a fresh Debian machine, as root:
# Debian's Chromium at /usr/bin/chromium, driven by Playwright's Python package (installed by pip
# with the dev extra). Never `playwright install`: it downloads a browser from the internet.
set -eu

if [ -x /usr/bin/chromium ]; then
    echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: run as root (apt-get installs chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
/usr/bin/chromium --version
