#!/usr/bin/env bash
# The naive reference pipeline (issue 14): three spark-submit jobs, one after the other, like a
# first attempt at the brief. A benchmark baseline only; it computes wrong sums and checks
# nothing (see the header of each job).
#
#   benchmarks/naive/run.sh RAW_DIR OUT_DIR DATE
#
# RAW_DIR holds movie_review.csv[.gz], log_reviews.csv[.gz] and user_purchase.csv[.gz];
# OUT_DIR gets classified_movie_review/, review_logs/ and fact_movie_analytics/ (Parquet).
# Environment: SPARK_SUBMIT (default <repo>/.venv/bin/spark-submit), NAIVE_MASTER (default
# local[2]), NAIVE_DRIVER_MEMORY (default 4g): set them as the local runner runs its steps to
# compare like with like (bench_local_run.sh does).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ $# -eq 3 ] || { echo "usage: $0 RAW_DIR OUT_DIR DATE" >&2; exit 2; }
RAW=$1 OUT=$2 DATE=$3
SUBMIT=${SPARK_SUBMIT:-$REPO/.venv/bin/spark-submit}
MASTER=${NAIVE_MASTER:-local[2]}
MEMORY=${NAIVE_DRIVER_MEMORY:-4g}

# The vendor file of that name, gzip or not.
input() {
  local f
  for f in "$RAW/$1.csv.gz" "$RAW/$1.csv"; do
    [ -f "$f" ] && { echo "$f"; return; }
  done
  echo "naive: neither $RAW/$1.csv.gz nor $RAW/$1.csv exists" >&2
  exit 2
}
REVIEWS=$(input movie_review) LOGS=$(input log_reviews) PURCHASES=$(input user_purchase)
[ -x "$SUBMIT" ] || { echo "naive: $SUBMIT not found: run scripts/setup.sh or set SPARK_SUBMIT" >&2; exit 2; }
mkdir -p "$OUT"

# Like the local runner: the venv's Python for the driver and the workers, its bin first on PATH.
VENV_BIN=$(dirname "$SUBMIT")
export PATH="$VENV_BIN:$PATH"
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$VENV_BIN/python3}
export PYSPARK_DRIVER_PYTHON=${PYSPARK_DRIVER_PYTHON:-$VENV_BIN/python3}
SUBMIT_ARGS=(--master "$MASTER" --driver-memory "$MEMORY")

job() {
  echo "\$ spark-submit ${SUBMIT_ARGS[*]} $*"
  "$SUBMIT" "${SUBMIT_ARGS[@]}" "$@"
}
job "$HERE/classify_reviews.py" --reviews "$REVIEWS" --out "$OUT" --date "$DATE"
job "$HERE/parse_logs.py" --logs "$LOGS" --out "$OUT" --date "$DATE"
job "$HERE/build_fact.py" --purchases "$PURCHASES" --out "$OUT" --date "$DATE"
