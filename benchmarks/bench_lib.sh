# Shared by the shell benchmarks (bench_local_run.sh, bench_scaling.sh, bench_backfill.sh):
# sourced, not run. Everything here goes through the driver's command line (`emr-driver ...`),
# never its internals, so the scripts keep working while the runner and ingest change.
#
# Sets REPO (the repository root, also the working directory), DRIVER (the emr-driver binary),
# SHARED (the real data), OUT_BASE (where everything is written), VENV_BIN, LOCAL_MASTER and
# LOCAL_MEMORY (what the local runner uses: config/pipeline.toml's [local] master and
# driver_memory, or BENCH_LOCAL_MASTER / BENCH_LOCAL_DRIVER_MEMORY).

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD
DRIVER=${DRIVER_BIN:-$REPO/target/release/emr-driver}
# The driver reads EMR_DRIVER_<SECTION>_<KEY> variables as config overrides and warns about any
# other EMR_DRIVER_* one; DRIVER_BIN is only for the scripts.
unset DRIVER_BIN
# No database anywhere: every run here is the local default, the embedded warehouse.
unset DATABASE_URL WAREHOUSE_URL
SHARED=${SHARED_DATA_DIR:-$REPO/../shared/data}
OUT_BASE=${BENCH_OUT_DIR:-$REPO/benchmarks/out}
mkdir -p "$OUT_BASE" && OUT_BASE=$(cd "$OUT_BASE" && pwd)
VENV_BIN=$REPO/.venv/bin
BENCH_NAME=${BENCH_NAME:-$(basename "$0" .sh)}

die() { echo "$BENCH_NAME: $*" >&2; exit 2; }
figure() { echo "FIGURE $1 = $2${3:+ $3}"; }
show() { echo "\$ $*"; }
now() { date +%s.%N; }
seconds_since() { echo "$(now) - $1" | bc -l | xargs printf '%.1f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# A key of config/pipeline.toml's [section] (plain `key = "value"` lines), else the default.
config_value() { # SECTION KEY DEFAULT
  local value
  value=$(awk -v section="[$1]" -v key="$2" '
    /^\[/ { inside = ($1 == section) }
    inside && $1 == key && $2 == "=" { sub(/^[^=]*=[[:space:]]*"/, ""); sub(/".*$/, ""); print; exit }
  ' "$REPO/config/pipeline.toml" 2>/dev/null)
  echo "${value:-$3}"
}
LOCAL_MASTER=${BENCH_LOCAL_MASTER:-$(config_value local master 'local[2]')}
LOCAL_MEMORY=${BENCH_LOCAL_DRIVER_MEMORY:-$(config_value local driver_memory 4g)}

require_tools() {
  [ -x "$DRIVER" ] || die "$DRIVER not found: run scripts/setup.sh or set DRIVER_BIN"
  [ -x "$VENV_BIN/spark-submit" ] || die "$VENV_BIN/spark-submit not found: run scripts/setup.sh (the local runner needs the venv too)"
  command -v bc >/dev/null || die "bc is needed for the arithmetic"
  local tool
  for tool in "$@"; do
    [ -x "$tool" ] || command -v "$tool" >/dev/null || die "$tool is needed"
  done
}

machine() {
  echo "machine: $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); local Spark: $LOCAL_MASTER, driver memory $LOCAL_MEMORY"
}

# DIR gets `emr-driver generate --out DIR ARGS...` unless an earlier call with the same arguments
# left it complete (its _generated.json is written last, with the arguments beside it).
generate() { # DIR ARGS...
  local dir=$1; shift
  if [ -f "$dir/_generated.json" ] && [ "$(cat "$dir/_bench_args" 2>/dev/null)" = "$*" ]; then
    echo "(reusing $dir, generated earlier with: $*)"
    return
  fi
  rm -rf "$dir"; mkdir -p "$dir"
  show "$DRIVER" generate --out "$dir" "$@"
  local t; t=$(now)
  "$DRIVER" generate --out "$dir" "$@" 2> "$dir.generate.log" || {
    echo "$BENCH_NAME: generate failed; its output:" >&2; tail -20 "$dir.generate.log" >&2; exit 1; }
  echo "$*" > "$dir/_bench_args"
  echo "generated in $(seconds_since "$t") s: $(du -sh "$dir" | cut -f1)"
}

# Whether SHARED holds the three real gzip files (100,000 reviews and logs, 541,908 purchases).
have_real_files() {
  local f
  for f in movie_review log_reviews user_purchase; do
    [ -f "$SHARED/$f.csv.gz" ] || return 1
  done
}

# Reads every input once so that the first timed run does not pay for a cold page cache alone.
warm_cache() { cat "$@" > /dev/null; }

# `emr-driver --output json run --local` with the given extra arguments, its stdout (JSON events,
# the last one `run_finished` with the manifest) to JSONL and stderr to ERR; sets RUN_SECONDS.
# Fails loudly. The local master is RUN_MASTER when set (`RUN_MASTER=local[1] driver_run ...`);
# RUN_WRAP, when set, is a command (split on spaces) the run goes through, e.g.
# `RUN_WRAP="taskset -c 0" driver_run ...`.
RUN_SECONDS=
driver_run() { # JSONL ERR ARGS...
  local jsonl=$1 err=$2; shift 2
  local wrap=()
  [ -z "${RUN_WRAP:-}" ] || read -r -a wrap <<< "$RUN_WRAP"
  local argv=("${wrap[@]}" "$DRIVER" --output json run --local --set "local.master=${RUN_MASTER:-$LOCAL_MASTER}" \
    --set "local.driver_memory=$LOCAL_MEMORY" "$@")
  show "${argv[*]}"
  local t; t=$(now)
  "${argv[@]}" > "$jsonl" 2> "$err" || {
    local rc=$?
    echo "$BENCH_NAME: the run failed (exit $rc); the end of its stderr ($err):" >&2
    tail -30 "$err" >&2
    exit 1
  }
  RUN_SECONDS=$(seconds_since "$t")
}
