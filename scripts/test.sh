#!/usr/bin/env bash
# The whole test suite: set-up (venv, build), the Rust tests, the Python tests (unit and
# end-to-end), lint, and the static checks of the Terraform. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# The venv only: the driver binary is built by the Rust test build below (building it alone
# first would compile the AWS SDK twice, once without and once with the test features).
SKIP_DRIVER_BUILD=1 ./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# Headless Chromium for tests/test_report_browser.py (installed only when missing; the test
# skips with the reason when it cannot be installed).
./scripts/setup-browser.sh || echo "setup-browser: no Chromium, the report's browser test will be skipped"

# PostgreSQL on 127.0.0.1:5432 is used by the database and end-to-end tests.
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi

echo "== ruff (Python lint, Python 3.9 syntax; formatting)"
ruff check .
ruff format --check .

echo "== rustfmt and clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --release --locked --all-targets -- -D warnings

echo "== Rust tests (cargo nextest; also builds target/release/emr-driver for the Python end-to-end tests)"
cargo nextest run --workspace --release --locked --no-fail-fast
test -x target/release/emr-driver

echo "== the local Spark's class-data archive (scripts/spark-class-archive.sh; the Python end-to-end tests start faster with it)"
./scripts/spark-class-archive.sh

echo "== Docker build context (the build stage's COPY set compiles on its own)"
./scripts/check-docker-context.py

echo "== Python tests (pytest)"
set +e
python -m pytest -q
status=$?
set -e
# 5 = no test collected: an empty suite is a failure of its own, not a pass.
[ "$status" -eq 0 ] || exit "$status"

if [ -x scripts/check-terraform.sh ]; then
  echo "== Terraform static checks"
  ./scripts/check-terraform.sh
fi
