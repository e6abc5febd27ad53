#!/usr/bin/env bash
# Headless Chromium for the report's browser test (tests/test_report_browser.py): the Debian
# package, installed only when it is missing. The Python side (playwright, whose wheel ships
# its own node driver) comes with requirements/dev.txt; no browser is downloaded by playwright:
# the test launches /usr/bin/chromium. Prints where Chromium is, or why it could not be installed
# (the test then skips with that message).
set -euo pipefail

for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "setup-browser: chromium is $candidate"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null; then
  echo "setup-browser: no chromium and no apt-get to install it (set CHROMIUM=/path/to/chromium)" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "setup-browser: chromium is missing and installing it needs root (apt-get install -y chromium)" >&2
    exit 1
  fi
fi
echo "setup-browser: installing chromium from the OS packages (apt-get, about 1-3 minutes)"
export DEBIAN_FRONTEND=noninteractive
# Another apt on the machine: wait for its lock rather than failing.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
