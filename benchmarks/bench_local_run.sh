#!/usr/bin/env bash
# Benchmark 3: the whole local run on the real data (SHARED_DATA_DIR: 100,000 reviews and logs,
# 541,908 purchases) against a temporary PostgreSQL database, created and dropped here:
#   emr-driver --output json run --local --date D --raw-dir SHARED_DATA_DIR --database-url URL
# Prints the total wall time, each step's wall time (from the run manifest's started_at /
# ended_at) with its rows per second, and the share of the total that is Spark start-up: the
# wall time of an empty `spark-submit` (start a SparkSession, stop it), measured right after
# the run, times the number of Spark steps.
#
# Run from the repository root: benchmarks/bench_local_run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRIVER=${DRIVER_BIN:-$REPO/target/release/emr-driver}
unset DRIVER_BIN  # not needed below
SHARED=${SHARED_DATA_DIR:-$REPO/../shared/data}
PGURL_BASE=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
OUT=${BENCH_OUT_DIR:-$REPO/benchmarks/out}/local-run
DB=bench_run_$$_$(date +%s)
DATE=2021-10-31

[ -x "$DRIVER" ] || { echo "bench_local_run: $DRIVER not found: run scripts/setup.sh or set DRIVER_BIN" >&2; exit 2; }
for f in movie_review log_reviews user_purchase; do
  [ -f "$SHARED/$f.csv.gz" ] || { echo "bench_local_run: $SHARED/$f.csv.gz not found: set SHARED_DATA_DIR" >&2; exit 2; }
done

cleanup() { psql -X -q "$PGURL_BASE/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
trap cleanup EXIT
rm -rf "$OUT"; mkdir -p "$OUT"
psql -X -q -v ON_ERROR_STOP=1 "$PGURL_BASE/postgres" -c "CREATE DATABASE $DB"

RUN=("$DRIVER" --output json run --local --date "$DATE" --raw-dir "$SHARED" \
  --database-url "$PGURL_BASE/$DB" --set "local.lake_dir=$OUT/lake")
echo "\$ ${RUN[*]}"
start=$(date +%s.%N)
"${RUN[@]}" > "$OUT/run.jsonl" 2> "$OUT/run.stderr" || {
  echo "bench_local_run: the run failed (exit $?); its stderr:" >&2; tail -30 "$OUT/run.stderr" >&2; exit 1; }
end=$(date +%s.%N)

# An empty Spark application, submitted the way the local runner submits a step.
cat > "$OUT/empty_app.py" <<'EOF'
from pyspark.sql import SparkSession
SparkSession.builder.getOrCreate().stop()
EOF
# The environment the local runner gives spark-submit (driver/src/runner/local.rs, spark_env).
EMPTY=(env "PATH=$REPO/.venv/bin:$PATH" "PYSPARK_PYTHON=$REPO/.venv/bin/python3" \
  "PYSPARK_DRIVER_PYTHON=$REPO/.venv/bin/python3" \
  .venv/bin/spark-submit --master "local[2]" --driver-memory 4g "$OUT/empty_app.py")
echo "\$ ${EMPTY[*]}"
s=$(date +%s.%N)
"${EMPTY[@]}" > "$OUT/empty_app.log" 2>&1 || {
  echo "bench_local_run: the empty spark-submit failed; its output:" >&2; tail -20 "$OUT/empty_app.log" >&2; exit 1; }
startup=$(echo "$(date +%s.%N) - $s" | bc -l)

.venv/bin/python - "$OUT/run.jsonl" "$(echo "$end - $start" | bc -l)" "$startup" <<'EOF'
import datetime as dt
import json
import sys

lines, total, startup = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
manifest = None
for line in open(lines):
    if line.startswith("{"):
        event = json.loads(line)
        if event.get("event") == "run_finished":
            manifest = event["manifest"]
if manifest is None:
    sys.exit("bench_local_run: no run_finished event in the run's output")


def when(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def step_rows(step):
    """Rows the step read: its metrics' sources (Spark jobs), else the manifest's source of
    the same name (driver steps)."""
    metrics = step.get("metrics") or {}
    if metrics.get("sources"):
        return sum(s.get("rows_in", 0) for s in metrics["sources"].values())
    if metrics.get("tables"):  # the warehouse load: rows copied into each table
        return sum(t.get("rows", 0) for t in metrics["tables"])
    for name, counts in manifest.get("sources", {}).items():
        if name in step["key"]:
            return counts.get("rows_in", 0)
    return None


def figure(name, value, unit=""):
    print(f"FIGURE {name} = {value}{(' ' + unit) if unit else ''}")


print(f"run {manifest['run_id']}: {manifest['state']}")
figure("local_run.total_seconds", f"{total:.1f}", "s")
spark_steps = 0
for step in manifest["steps"]:
    if not step.get("started_at") or not step.get("ended_at"):
        print(f"  {step['key']}: {step['state']} (no times)")
        continue
    seconds = (when(step["ended_at"]) - when(step["started_at"])).total_seconds()
    rows = step_rows(step)
    spark = step.get("kind") not in (None, "driver") and step.get("metrics") is not None
    spark_steps += 1 if spark else 0
    rate = f"{rows / seconds:,.0f} rows/s" if rows and seconds > 0 else "-"
    print(f"  {step['key']:<28} {step.get('kind', ''):<8} {seconds:7.1f} s  "
          f"{rows if rows is not None else '-':>9} rows  {rate}")
    figure(f"local_run.step.{step['key']}.seconds", f"{seconds:.1f}", "s")
    if rows:
        figure(f"local_run.step.{step['key']}.rows_per_second", f"{rows / seconds:,.0f}")
for name, counts in sorted(manifest.get("sources", {}).items()):
    print(f"  source {name}: in {counts['rows_in']:,}, out {counts['rows_out']:,}, "
          f"rejected {counts['rows_rejected']:,}")
# Spark steps that overlap in time (classify_reviews and parse_logs run side by side) start
# their JVMs together: on the wall clock, one start-up per wave of overlapping steps.
waves, wave_end = 0, None
spark_times = sorted(
    (when(s["started_at"]), when(s["ended_at"])) for s in manifest["steps"]
    if s.get("metrics") is not None and s.get("kind") not in (None, "driver")
    and s.get("started_at") and s.get("ended_at")
)
for begin, end in spark_times:
    if wave_end is None or begin >= wave_end:
        waves += 1
        wave_end = end
    else:
        wave_end = max(wave_end, end)
figure("local_run.empty_spark_submit_seconds", f"{startup:.1f}", "s")
figure("local_run.spark_steps", spark_steps)
figure("local_run.spark_step_waves", waves)
figure("local_run.spark_startup_share_percent", f"{100 * startup * waves / total:.0f}", "%")
EOF
