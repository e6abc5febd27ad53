#!/usr/bin/env bash
# Benchmark 3 (issue 14): the whole local run against the naive reference pipeline, on the
# same inputs, the same local Spark (master and driver memory of config/pipeline.toml's [local],
# passed to both sides explicitly), side by side.
#
#  - project: emr-driver --output json run --local --date D --raw-dir RAW --set local.lake_dir=L
#    with no database: user_purchase is converted from the file and the run ends in the embedded
#    warehouse under the lake (DATABASE_URL / WAREHOUSE_URL are unset here for that reason).
#    A fresh lake every time, so nothing is reused from an earlier round.
#  - naive: benchmarks/naive/run.sh RAW OUT D, three spark-submit jobs one after the other
#    (Tokenizer classifier, Python XML UDF, join-then-aggregate fact; see benchmarks/naive/).
#
# BENCH_REPEATS rounds (default 3), interleaved, the order reversed every other round; medians.
# Prints `FIGURE local_run.ratio = x` (run / naive; issue 14's target is <= 0.5), the per-step
# times of the project's runs from their manifests (medians), both sides' row counts (the naive
# output counted once afterwards, untimed), and the wall time of an empty spark-submit (what
# each of the naive pipeline's three JVM start-ups costs).
#
# Inputs: SHARED_DATA_DIR's real files when all three are there (100,000 reviews and logs,
# 541,908 purchases), else generated full-size ones (`emr-driver generate --reviews 100000
# --purchases 541908 --gzip`). BENCH_LOCAL_REVIEWS=N forces generated inputs of N reviews
# (purchases scaled alike, BENCH_LOCAL_PURCHASES to choose), e.g. for a quick smoke test:
#   BENCH_REPEATS=1 BENCH_LOCAL_REVIEWS=2000 benchmarks/bench_local_run.sh
#
# Expected time on an idle 2-core machine: about 8 minutes with the defaults (3 rounds of about
# 1 minute for the naive pipeline and 1-1.5 minutes for the run; an estimate from earlier runs,
# not yet measured with this script). The smoke test above took 4 minutes on a loaded machine
# (load average 5 on 2 cores): at that size the time is the runs' fixed costs (JVM start-ups,
# per-step overheads), so its ratio says nothing about the full-size one. Everything goes to
# BENCH_OUT_DIR/local-run (default benchmarks/out/local-run).
#
# Run from anywhere: benchmarks/bench_local_run.sh
set -euo pipefail
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
REPEATS=${BENCH_REPEATS:-3}
DATE=2021-10-31
OUT=$OUT_BASE/local-run
require_tools
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS must be a positive integer, not '$REPEATS'"

mkdir -p "$OUT"
machine
if [ -z "${BENCH_LOCAL_REVIEWS:-}" ] && have_real_files; then
  RAW=$(cd "$SHARED" && pwd)
  echo "inputs: the real files in $RAW"
else
  REVIEWS=${BENCH_LOCAL_REVIEWS:-100000}
  PURCHASES=${BENCH_LOCAL_PURCHASES:-$(( REVIEWS * 541908 / 100000 ))}
  [ -n "${BENCH_LOCAL_REVIEWS:-}" ] || echo "(no real files in $SHARED: using generated ones of the same size)"
  RAW=$OUT_BASE/generated-local-run-$REVIEWS-$PURCHASES
  generate "$RAW" --reviews "$REVIEWS" --purchases "$PURCHASES" --seed 7 --gzip
  echo "inputs: generated, $REVIEWS reviews and logs, $PURCHASES purchases, in $RAW"
fi
warm_cache "$RAW"/*.csv*

naive_round() { # ROUND
  rm -rf "$OUT/naive-out"
  local argv=(benchmarks/naive/run.sh "$RAW" "$OUT/naive-out" "$DATE")
  show "NAIVE_MASTER=$LOCAL_MASTER NAIVE_DRIVER_MEMORY=$LOCAL_MEMORY ${argv[*]}"
  local t; t=$(now)
  NAIVE_MASTER=$LOCAL_MASTER NAIVE_DRIVER_MEMORY=$LOCAL_MEMORY SPARK_SUBMIT=$VENV_BIN/spark-submit \
    "${argv[@]}" > "$OUT/naive-$1.log" 2>&1 || {
    echo "$BENCH_NAME: the naive pipeline failed; the end of $OUT/naive-$1.log:" >&2
    tail -30 "$OUT/naive-$1.log" >&2; exit 1; }
  NAIVE_TIMES+=("$(seconds_since "$t")")
  echo "  naive, round $1: ${NAIVE_TIMES[-1]} s"
}
run_round() { # ROUND
  rm -rf "$OUT/lake"
  driver_run "$OUT/run-$1.jsonl" "$OUT/run-$1.stderr" --date "$DATE" --raw-dir "$RAW" \
    --set "local.lake_dir=$OUT/lake"
  RUN_TIMES+=("$RUN_SECONDS")
  echo "  run, round $1: $RUN_SECONDS s"
}

echo; echo "== $REPEATS interleaved round(s): naive pipeline and emr-driver run --local =="
NAIVE_TIMES=() RUN_TIMES=() RUN_FILES=()
for i in $(seq "$REPEATS"); do
  if [ $(( i % 2 )) = 1 ]; then naive_round "$i"; run_round "$i"; else run_round "$i"; naive_round "$i"; fi
  RUN_FILES+=("$OUT/run-$i.jsonl")
done
NAIVE=$(median "${NAIVE_TIMES[@]}") RUN=$(median "${RUN_TIMES[@]}")
echo "naive: ${NAIVE_TIMES[*]} s; run: ${RUN_TIMES[*]} s"
figure local_run.naive_seconds "$NAIVE" s
figure local_run.run_seconds "$RUN" s
figure local_run.ratio "$(ratio "$RUN" "$NAIVE")" "x (run / naive; target <= 0.5)"

echo; echo "== the project's run, from its manifests =="
"$VENV_BIN/python" benchmarks/run_steps.py local_run.run "${RUN_FILES[@]}"

echo; echo "== the naive pipeline's output, counted once (not timed) =="
# The naive fact breaks DESIGN.md's invariant SUM(review_count) = classified reviews: its
# purchases fan-out is visible here, beside the project's counts above.
show "spark-submit benchmarks/naive/check_output.py --out $OUT/naive-out"
PATH="$VENV_BIN:$PATH" PYSPARK_PYTHON="$VENV_BIN/python3" PYSPARK_DRIVER_PYTHON="$VENV_BIN/python3" \
  "$VENV_BIN/spark-submit" --master "$LOCAL_MASTER" --driver-memory "$LOCAL_MEMORY" \
  benchmarks/naive/check_output.py --out "$OUT/naive-out" 2> "$OUT/naive-check.stderr" || {
  echo "$BENCH_NAME: the naive output check failed; the end of $OUT/naive-check.stderr:" >&2
  tail -20 "$OUT/naive-check.stderr" >&2; exit 1; }

echo; echo "== an empty Spark application, submitted like a step (one JVM start-up) =="
cat > "$OUT/empty_app.py" <<'EOF'
from pyspark.sql import SparkSession
SparkSession.builder.getOrCreate().stop()
EOF
show "spark-submit --master $LOCAL_MASTER --driver-memory $LOCAL_MEMORY $OUT/empty_app.py"
t=$(now)
PATH="$VENV_BIN:$PATH" PYSPARK_PYTHON="$VENV_BIN/python3" PYSPARK_DRIVER_PYTHON="$VENV_BIN/python3" \
  "$VENV_BIN/spark-submit" --master "$LOCAL_MASTER" --driver-memory "$LOCAL_MEMORY" "$OUT/empty_app.py" \
  > "$OUT/empty_app.log" 2>&1 || {
  echo "$BENCH_NAME: the empty spark-submit failed; its output:" >&2; tail -20 "$OUT/empty_app.log" >&2; exit 1; }
EMPTY=$(seconds_since "$t")
figure local_run.empty_spark_submit_seconds "$EMPTY" s
figure local_run.naive_startup_share_percent "$(echo "100 * 3 * $EMPTY / $NAIVE" | bc -l | xargs printf '%.0f')" "% (3 start-ups / naive median)"
