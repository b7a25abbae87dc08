#!/bin/sh
# Install what the browser tests (tests/browser/) need on a fresh Debian machine: Debian's
# Chromium at /usr/bin/chromium, driven by Playwright's Python package (installed by pip with the
# dev extra). Never `playwright install`: it downloads a browser from the internet.
#
# As root, a failed install fails the build. As another user without Chromium, it only warns: the
# browser tests then skip, saying why.
set -eu

if [ -x /usr/bin/chromium ]; then
    echo "install-browser: /usr/bin/chromium is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: not root, cannot apt-get install chromium; the browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y chromium
test -x /usr/bin/chromium
echo "install-browser: installed /usr/bin/chromium"
