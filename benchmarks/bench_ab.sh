#!/usr/bin/env bash
# An A/B of the whole local run: the same inputs run with two sets of extra `run` arguments,
# interleaved (A B, B A, A B, ...: the host's drift falls on both sides alike), medians of the
# wall time and of each step's manifest time. What every change to a setting or to the job code
# of issue 14 was judged by; on a shared 2-core host one pair says little, three or more do.
#
#   BENCH_AB_B='--set spark.spark.sql.inMemoryColumnarStorage.compressed=true' benchmarks/bench_ab.sh
#   BENCH_AB_B='--project-root /path/to/a/worktree' BENCH_AB_RAW=benchmarks/out/generated-scale-1000000-541908 \
#     BENCH_REPEATS=2 benchmarks/bench_ab.sh
#
# BENCH_AB_A / BENCH_AB_B: each side's extra arguments of `emr-driver --output json run --local
# --date 2021-10-31 --raw-dir RAW --set local.lake_dir=<fresh lake>` (split on spaces; default
# none, i.e. the configuration as it is). BENCH_AB_RAW: the input folder (default the real files
# in SHARED_DATA_DIR, else generated ones of the same size). BENCH_REPEATS: pairs (default 3).
# No database (the embedded warehouse), a fresh lake every run. Prints `FIGURE ab.a.seconds`,
# `ab.b.seconds` and `ab.b_over_a` (below 1: B is faster), then each side's steps (run_steps.py).
# About 20 s a run on the real files, 1 minute at 1M reviews.
set -euo pipefail
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
REPEATS=${BENCH_REPEATS:-3}
DATE=2021-10-31
OUT=$OUT_BASE/ab
require_tools
[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS must be a positive integer, not '$REPEATS'"
read -r -a ARGS_A <<< "${BENCH_AB_A:-}"
read -r -a ARGS_B <<< "${BENCH_AB_B:-}"

RAW=${BENCH_AB_RAW:-}
if [ -z "$RAW" ]; then
  if have_real_files; then
    RAW=$(cd "$SHARED" && pwd)
  else
    RAW=$OUT_BASE/generated-local-run-100000-541908
    generate "$RAW" --reviews 100000 --purchases 541908 --seed 7 --gzip
  fi
fi
[ -d "$RAW" ] || die "BENCH_AB_RAW=$RAW is not a folder"
mkdir -p "$OUT"
machine
echo "inputs: $RAW"
echo "A: ${ARGS_A[*]:-(as configured)}"
echo "B: ${ARGS_B[*]:-(as configured)}"
warm_cache "$RAW"/*.csv*

TIMES_A=() TIMES_B=() FILES_A=() FILES_B=()
side() { # A|B PAIR
  local args
  if [ "$1" = A ]; then args=("${ARGS_A[@]}"); else args=("${ARGS_B[@]}"); fi
  rm -rf "$OUT/lake"
  driver_run "$OUT/$1-$2.jsonl" "$OUT/$1-$2.stderr" --date "$DATE" --raw-dir "$RAW" \
    --set "local.lake_dir=$OUT/lake" "${args[@]}"
  if [ "$1" = A ]; then TIMES_A+=("$RUN_SECONDS"); FILES_A+=("$OUT/$1-$2.jsonl"); else
    TIMES_B+=("$RUN_SECONDS"); FILES_B+=("$OUT/$1-$2.jsonl"); fi
  echo "  $1, pair $2: $RUN_SECONDS s"
}
for i in $(seq "$REPEATS"); do
  if [ $(( i % 2 )) = 1 ]; then side A "$i"; side B "$i"; else side B "$i"; side A "$i"; fi
done
A=$(median "${TIMES_A[@]}") B=$(median "${TIMES_B[@]}")
echo "A: ${TIMES_A[*]} s; B: ${TIMES_B[*]} s"
figure ab.a.seconds "$A" s
figure ab.b.seconds "$B" s
figure ab.b_over_a "$(ratio "$B" "$A")" "x (below 1: B is faster)"
echo; echo "== A, from its manifests =="
"$VENV_BIN/python" benchmarks/run_steps.py ab.a "${FILES_A[@]}"
echo; echo "== B, from its manifests =="
"$VENV_BIN/python" benchmarks/run_steps.py ab.b "${FILES_B[@]}"
