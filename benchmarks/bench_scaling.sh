#!/usr/bin/env bash
# Scaling of the whole local run (issue 14), three parts:
#
#  1. table: for each size in BENCH_SCALES (reviews; default "100000 1000000 3000000"), inputs
#     from `emr-driver generate --reviews N --purchases P --seed 7 --gzip` (as many logs as
#     reviews; purchases fixed at BENCH_SCALE_PURCHASES, default the real 541,908, so only the
#     vendor files grow), one `emr-driver --output json run --local` on a fresh lake, no
#     database: wall time and wall time per 100,000 reviews, plus each step's time.
#  2. cores: the same run at BENCH_CORES_SCALE reviews (default 1000000) with local.master
#     local[2] and local[1] (`--set local.master=...`), each with its CPU time (user + system
#     of every process, `/usr/bin/time`): the speed-up of the second task slot, and the most it
#     could be (local[1] keeps the second core busy with the JIT, the GC and the drivers), and
#     each side's task slots from its Spark event log (benchmarks/spark_tasks.py: seconds with
#     0, 1, 2 tasks running; the tasks' run time against their CPU time); then,
#     with `taskset` on a machine of 2 or more CPUs, local[1] with the whole run on one CPU
#     (`taskset -c 0`): the speed-up of the second CPU.
#  3. ingest memory: driver peak RSS (`/usr/bin/time -f %M`) of `emr-driver ingest --date D
#     FILE` on a generated, uncompressed movie_review.csv of about BENCH_INGEST_MB MiB (default
#     1024): FIGURE ingest.peak_rss_mb. BENCH_INGEST_MB=0 skips it.
#
# BENCH_PARTS (default "size cores ingest") runs only the parts named, e.g. BENCH_PARTS=ingest.
#
# Generated inputs are kept in BENCH_OUT_DIR (default benchmarks/out) and reused by the next
# run with the same arguments; each run's lake is deleted once measured.
#
# Time on an idle 2-core machine with the defaults: size and cores took 11 minutes on 2026-12-02
# (generating included), dominated by the 3M run and the local[1] run at 1M; the cores part
# alone, three runs at 1M since 2026-12-06, took 4 minutes;
# generating took 107 s for the 1 GiB ingest file (1.15M reviews) on a loaded machine. The
# ingest part alone (BENCH_PARTS=ingest) takes about 4 minutes. Quick runs:
#   BENCH_SCALES="2000 4000" BENCH_CORES_SCALE=2000 BENCH_INGEST_MB=50 benchmarks/bench_scaling.sh
#   BENCH_SCALES="100000 1000000" BENCH_CORES_SCALE=100000 benchmarks/bench_scaling.sh
#
# Run from anywhere: benchmarks/bench_scaling.sh
set -euo pipefail
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
SCALES=${BENCH_SCALES:-100000 1000000 3000000}
CORES_SCALE=${BENCH_CORES_SCALE:-1000000}
PURCHASES=${BENCH_SCALE_PURCHASES:-541908}
INGEST_MB=${BENCH_INGEST_MB:-1024}
PARTS=" ${BENCH_PARTS:-size cores ingest} "
DATE=2021-10-31
OUT=$OUT_BASE/scaling
require_tools /usr/bin/time
for n in $SCALES $CORES_SCALE $PURCHASES $INGEST_MB; do
  [[ $n =~ ^[0-9]+$ ]] || die "sizes must be whole numbers, not '$n' (BENCH_SCALES, BENCH_CORES_SCALE, BENCH_SCALE_PURCHASES, BENCH_INGEST_MB)"
done
for part in $PARTS; do
  [[ " size cores ingest " == *" $part "* ]] || die "BENCH_PARTS names size, cores and/or ingest, not '$part'"
done
wanted() { [[ $PARTS == *" $1 "* ]]; }
mkdir -p "$OUT"
machine

inputs_for() { # REVIEWS -> sets RAW
  RAW=$OUT_BASE/generated-scale-$1-$PURCHASES
  generate "$RAW" --reviews "$1" --purchases "$PURCHASES" --seed 7 --gzip
  warm_cache "$RAW"/*.csv.gz
}
one_run() { # MASTER LABEL [WRAP] -> sets RUN_SECONDS and RUN_CPU_SECONDS (user + system, every process)
  rm -rf "$OUT/lake"
  # With EVENT_LOGS set, the Spark applications write their event logs to $OUT/events-LABEL.
  local opts=${SPARK_SUBMIT_OPTS:-}
  if [ -n "${EVENT_LOGS:-}" ]; then
    rm -rf "$OUT/events-$2"; mkdir -p "$OUT/events-$2"
    opts="$opts -Dspark.eventLog.enabled=true -Dspark.eventLog.dir=file://$OUT/events-$2"
  fi
  SPARK_SUBMIT_OPTS=$opts RUN_WRAP="/usr/bin/time -f %U+%S -o $OUT/cpu-$2.txt ${3:-}" RUN_MASTER=$1 \
    driver_run "$OUT/run-$2.jsonl" "$OUT/run-$2.stderr" --date "$DATE" --raw-dir "$RAW" --set "local.lake_dir=$OUT/lake"
  RUN_CPU_SECONDS=$(tail -1 "$OUT/cpu-$2.txt" | bc -l | xargs printf '%.1f')
  rm -rf "$OUT/lake"
}

declare -A TABLE
if wanted size; then
  echo; echo "== 1. whole local run by size ($LOCAL_MASTER, driver memory $LOCAL_MEMORY; purchases: $PURCHASES) =="
  for n in $SCALES; do
    inputs_for "$n"
    one_run "$LOCAL_MASTER" "$n"
    TABLE[$n]=$RUN_SECONDS
    per=$(echo "$RUN_SECONDS * 100000 / $n" | bc -l | xargs printf '%.1f')
    echo "  $n reviews: $RUN_SECONDS s, $per s per 100k reviews"
    figure "scaling.$n.run_seconds" "$RUN_SECONDS" s
    figure "scaling.$n.seconds_per_100k_reviews" "$per" s
    "$VENV_BIN/python" benchmarks/run_steps.py "scaling.$n" "$OUT/run-$n.jsonl" | sed 's/^/    /;s/^    FIGURE/FIGURE/'
  done
  echo
  printf '  %12s %12s %16s\n' reviews "wall (s)" "s / 100k reviews"
  for n in $SCALES; do
    printf '  %12s %12s %16s\n' "$n" "${TABLE[$n]}" "$(echo "${TABLE[$n]} * 100000 / $n" | bc -l | xargs printf '%.1f')"
  done
fi

if wanted cores; then
  echo; echo "== 2. local[1] against local[2] at $CORES_SCALE reviews =="
  inputs_for "$CORES_SCALE"
  busy() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; } # CPU WALL -> cores busy on average
  # Each side's task slots from its event log (benchmarks/spark_tasks.py): seconds with 0, 1
  # and 2 tasks running, and the tasks' run time against their CPU time (the time they waited
  # for a CPU that another thread, the JIT compilers above all, had).
  slots() { "$VENV_BIN/python" benchmarks/spark_tasks.py "scaling.cores.$CORES_SCALE.$1" "$OUT/events-$CORES_SCALE-$1"/*; }
  EVENT_LOGS=1 one_run "local[2]" "$CORES_SCALE-local2"
  TWO=$RUN_SECONDS TWO_CPU=$RUN_CPU_SECONDS
  echo "  local[2]: $TWO s, $TWO_CPU s of CPU ($(busy "$TWO_CPU" "$TWO") cores busy)"
  slots local2
  EVENT_LOGS=1 one_run "local[1]" "$CORES_SCALE-local1"
  ONE=$RUN_SECONDS ONE_CPU=$RUN_CPU_SECONDS
  echo "  local[1]: $ONE s, $ONE_CPU s of CPU ($(busy "$ONE_CPU" "$ONE") cores busy)"
  slots local1
  figure "scaling.cores.$CORES_SCALE.local1_seconds" "$ONE" s
  figure "scaling.cores.$CORES_SCALE.local2_seconds" "$TWO" s
  figure "scaling.cores.$CORES_SCALE.speedup_local2_over_local1" "$(ratio "$ONE" "$TWO")" x
  # local[1] is one task slot, not one CPU: the JIT compilers, the GC, the Python and Rust
  # drivers run beside the task on the other core. With the same CPU work, local[2] cannot
  # finish before that work spread over every core: the most local[2] can gain over local[1].
  figure "scaling.cores.$CORES_SCALE.speedup_bound_local2_over_local1" \
    "$(echo "$ONE / ($TWO_CPU / $(nproc))" | bc -l | xargs printf '%.2f')" "x (local[1] wall / (local[2] CPU / $(nproc) cores))"
  if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
    # What the cut into parts buys in CPUs: the whole run (driver, JVM, Python) on one CPU.
    one_run "local[1]" "$CORES_SCALE-one-cpu" "taskset -c 0"
    echo "  local[1] on one CPU (taskset -c 0): $RUN_SECONDS s, $RUN_CPU_SECONDS s of CPU"
    figure "scaling.cores.$CORES_SCALE.one_cpu_seconds" "$RUN_SECONDS" s
    figure "scaling.cores.$CORES_SCALE.speedup_local2_over_one_cpu" "$(ratio "$RUN_SECONDS" "$TWO")" x
  fi
fi

if wanted ingest && [ "$INGEST_MB" -gt 0 ]; then
  echo; echo "== 3. driver peak RSS of ingest on a ~$INGEST_MB MiB movie_review.csv =="
  # About 930 bytes a review at the generator's default length (the real files average 908
  # bytes of text); the actual size is printed.
  reviews=$(( INGEST_MB * 1048576 / 930 ))
  BIG=$OUT_BASE/generated-ingest-$reviews
  generate "$BIG" --reviews "$reviews" --purchases 1 --seed 11
  file=$BIG/movie_review.csv
  mb=$(( $(stat -c %s "$file") / 1048576 ))
  lake=$OUT/ingest-lake
  rm -rf "$lake"
  warm_cache "$file"
  argv=("$DRIVER" ingest --target local --date "$DATE" --set "local.lake_dir=$lake" "$file")
  show /usr/bin/time -f %M "${argv[*]}"
  t=$(now)
  /usr/bin/time -f %M -o "$OUT/ingest.rss" "${argv[@]}" > "$OUT/ingest.stdout" 2> "$OUT/ingest.stderr" || {
    echo "$BENCH_NAME: ingest failed; the end of its stderr:" >&2; tail -20 "$OUT/ingest.stderr" >&2; exit 1; }
  took=$(seconds_since "$t")
  rss_kb=$(tail -1 "$OUT/ingest.rss")
  echo "  $file: $mb MiB, $reviews reviews; ingested in $took s into $(du -sh "$lake" | cut -f1) under $lake"
  figure ingest.file_mb "$mb" MiB
  figure ingest.seconds "$took" s
  figure ingest.peak_rss_mb "$(echo "$rss_kb / 1024" | bc -l | xargs printf '%.1f')" MiB
  rm -rf "$lake"
fi
