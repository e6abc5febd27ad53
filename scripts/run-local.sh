#!/usr/bin/env bash
# The main job on one machine: set-up (venv, build), then the nightly pipeline for one date
# on the local Spark and the bundled sample data (sample/), with a local folder (.lake/) for
# the buckets. Any extra arguments go to `emr-driver run`, e.g. --database-url URL.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
exec ./target/release/emr-driver run --local --date "${RUN_DATE:-2021-10-31}" "$@"
