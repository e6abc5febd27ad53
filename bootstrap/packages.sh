#!/usr/bin/env bash
# EMR bootstrap action: installs the Python packages the Spark jobs need, on every node,
# into EMR's own Python (Amazon Linux 2023, Python 3.9; bootstrap actions run as a non-root
# user, hence `sudo python3 -m pip`).
#
#   packages.sh [requirements-file]
#
# Without an argument it installs the pinned list embedded below (a copy of
# bootstrap/requirements-emr.txt: EMR downloads this script alone). Idempotent: installing
# pinned versions that are already there changes nothing. Any failure stops the bootstrap
# with a message on stderr, so the cluster fails to start instead of running jobs without
# their packages.
set -euo pipefail

log() { echo "packages.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

embedded_requirements() {
  cat <<'REQUIREMENTS'
# Python packages the Spark jobs need on the EMR nodes, beyond what the EMR release ships,
# pinned as name==version, one per line. packages.sh installs exactly this list (it embeds a
# copy, checked equal by bootstrap/test_packages_sh.py, because EMR downloads the bootstrap
# script alone).
#
# Empty on purpose: the jobs use only the standard library and the pyspark of EMR's Spark
# (native Spark SQL functions, no Python UDFs, no third-party parsers).
REQUIREMENTS
}

command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH: is this an EMR node?"
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$(python3 --version 2>&1) is too old: the jobs need Python 3.9 or newer"

requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
if [ $# -ge 1 ]; then
  [ -r "$1" ] || die "cannot read the requirements file '$1'"
  cat -- "$1" >"$requirements"
else
  embedded_requirements >"$requirements"
fi

pins=$(grep -Ev '^[[:space:]]*(#|$)' "$requirements" || true)
if [ -z "$pins" ]; then
  log "no Python package to install; $(python3 --version 2>&1) is ready"
  exit 0
fi
while IFS= read -r line; do
  [[ "$line" =~ ^[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==[^=[:space:]]+$ ]] \
    || die "requirement '$line' is not pinned as name==version"
done <<<"$pins"

command -v sudo >/dev/null 2>&1 || die "sudo is not on PATH: EMR bootstrap actions need it"
log "installing into $(python3 --version 2>&1): $(echo "$pins" | tr '\n' ' ')"
sudo python3 -m pip install --no-input --disable-pip-version-check -r "$requirements" \
  || die "pip could not install the pinned packages (see its output above)"
log "done"
