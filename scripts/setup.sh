#!/usr/bin/env bash
# Idempotent set-up of everything the project runs with: the Python venv (.venv, with the
# pinned pyspark and test tools), the emr-driver binary and the local Spark's class-data
# archive (.venv/spark-classes.jsa). Safe to run again: it only does what is missing or out of
# date.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.requirements.sha256

need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not found on PATH ($2)" >&2; exit 6; }; }
need "$PYTHON" "install Python 3.9 or newer"
need java "install a Java 17 runtime: Spark needs it"
need cargo "install Rust with rustup"

want=$(cat requirements/dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating $VENV with the pinned Python packages (requirements/dev.txt)" >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  echo "$want" > "$STAMP"
fi

if [ "${SKIP_DRIVER_BUILD:-0}" != 1 ]; then
  echo "setup: building emr-driver (cargo build --release; the first build takes a few minutes)" >&2
  cargo build --release --locked --quiet -p emr-driver
  # The local Spark's class-data archive (needs the driver: it records a run of sample/).
  if [ "${SKIP_CLASS_ARCHIVE:-0}" != 1 ]; then ./scripts/spark-class-archive.sh; fi
fi
