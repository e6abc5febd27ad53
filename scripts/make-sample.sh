#!/usr/bin/env bash
# Regenerates the bundled sample data (sample/*.csv.gz and sample/_generated.json) with fixed
# arguments, so the committed files are reproducible byte for byte from this script (with the
# crate versions of Cargo.lock). The default local run (scripts/run-local.sh) reads them.
#
# 2,000 reviews and logs, 10,000 purchases, 1% deliberately broken review and log records, so
# the default run shows rejects; gzip keeps the sample small.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p sample
rm -f sample/movie_review.csv* sample/log_reviews.csv* sample/user_purchase.csv* sample/_generated.json
cargo run --quiet --release --locked -p emr-driver -- generate \
  --out sample \
  --reviews 1000 \
  --purchases 5000 \
  --seed 42 \
  --malformed-rate 0.01 \
  --start-date 2021-01-01 \
  --end-date 2021-12-31
