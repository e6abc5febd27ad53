#!/usr/bin/env bash
# Runs every benchmark in turn, keeps each one's full output in benchmarks/out/<name>.log,
# and ends with a summary: the machine, each script's wall time, and every FIGURE line.
#
#   benchmarks/run_all.sh            # after scripts/setup.sh, from a clean checkout
#
# Environment: SHARED_DATA_DIR (default <repo>/../shared/data), DRIVER_BIN (default
# <repo>/target/release/emr-driver), BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432),
# BENCH_LOG_ROWS / BENCH_REVIEW_ROWS (default 1000000), BENCH_REPEATS, and the variables of
# bench_local_run.sh, bench_scaling.sh and bench_backfill.sh (BENCHMARKS.md, "How to run").
# BENCH_ONLY="local_run backfill" runs only the named benchmarks (names as in BENCHES below).
#
# With every default this takes about 45 minutes on 2 cores (each script's last time, summed;
# bench_scaling.sh took 11 minutes for size and cores on 2026-12-02, plus its ingest part);
# BENCHMARKS.md lists each script's expected time and its quick settings.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT_DIR:-$PWD/benchmarks/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

BENCHES=(
  "parse_logs:.venv/bin/python benchmarks/bench_parse_logs.py"
  "classify:.venv/bin/python benchmarks/bench_classify.py"
  "local_run:benchmarks/bench_local_run.sh"
  "scaling:benchmarks/bench_scaling.sh"
  "backfill:benchmarks/bench_backfill.sh"
  "postgres:benchmarks/bench_postgres.sh"
  "driver_overheads:.venv/bin/python benchmarks/bench_driver_overheads.py"
)

echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
# Fresh inputs: generated files and their staged Parquet copies are made again (the single
# scripts reuse them between runs; BENCH_KEEP_INPUTS=1 keeps them here too).
if [ "${BENCH_KEEP_INPUTS:-0}" != 1 ]; then
  rm -rf "$OUT"/generated-* "$OUT"/parse_logs "$OUT"/classify "$OUT"/local-run "$OUT"/scaling "$OUT"/backfill
fi
all_start=$(date +%s)
failed=()
declare -A took
if [ -n "${BENCH_ONLY:-}" ]; then
  chosen=()
  for entry in "${BENCHES[@]}"; do
    [[ " $BENCH_ONLY " == *" ${entry%%:*} "* ]] && chosen+=("$entry")
  done
  [ ${#chosen[@]} -gt 0 ] || { echo "run_all: BENCH_ONLY='$BENCH_ONLY' names none of: ${BENCHES[*]%%:*}" >&2; exit 2; }
  BENCHES=("${chosen[@]}")
fi
for entry in "${BENCHES[@]}"; do
  name=${entry%%:*} command=${entry#*:}
  echo; echo "######## $name: $command"
  start=$(date +%s)
  # Spark's own warnings go to the log only; the benchmark's lines go to both.
  if ! $command > "$OUT/$name.log" 2>&1; then failed+=("$name"); fi
  took[$name]=$(( $(date +%s) - start ))
  grep -v -E '^(WARN|[0-9]{2}/[0-9]{2}/[0-9]{2} |Setting default log level|To adjust logging level|\s+at |SLF4J)' "$OUT/$name.log"
  echo "($name: ${took[$name]} s)"
done

echo; echo "######## summary"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); total $(( $(date +%s) - all_start )) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
for entry in "${BENCHES[@]}"; do
  name=${entry%%:*}
  echo "$name (${took[$name]} s):"
  grep -h '^FIGURE ' "$OUT/$name.log" | sed 's/^FIGURE /  /'
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]} (see $OUT/<name>.log)"
  exit 1
fi
