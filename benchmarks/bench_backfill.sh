#!/usr/bin/env bash
# Backfill wall time (issue 17): a 7-night backfill on the local Spark, --parallel 1 against
# --parallel 2, from generated nights, no database (embedded warehouse):
#
#   emr-driver --output json backfill --from 2021-01-01 --to 2021-01-07 --local \
#     --raw-dir RAW --parallel N --set local.lake_dir=L
#
# RAW holds one dt=2021-01-0I/ folder per night, made with `emr-driver generate --reviews R
# --purchases P --seed I --gzip --start-date 2021-01-01 --end-date 2021-01-0I` (the night's
# logs dated up to that night). R = BENCH_BACKFILL_REVIEWS (default 10000) per night, P =
# BENCH_BACKFILL_PURCHASES (default R * 5.4, the real files' ratio); BENCH_BACKFILL_NIGHTS
# (default 7) nights. Each backfill starts from a fresh lake. BENCH_REPEATS rounds (default 1),
# the order of the two reversed every other round; medians. Prints each side's wall time, the
# speed-up of --parallel 2, and checks every night succeeded (backfill_finished exit code 0).
#
# Expected time on an idle 2-core machine with the defaults: about 10 minutes (two 7-night
# backfills, 56 Spark steps; at this size a step's fixed cost dominates, so the nights are kept
# small). An estimate, not yet measured. A smoke test (2 nights of 500 reviews took 33 + 27
# minutes on a machine at load average 25-30, i.e. nothing to go by):
#   BENCH_BACKFILL_REVIEWS=500 BENCH_BACKFILL_NIGHTS=2 benchmarks/bench_backfill.sh
#
# Run from anywhere: benchmarks/bench_backfill.sh
set -euo pipefail
# shellcheck source=benchmarks/bench_lib.sh
source "$(dirname "$0")/bench_lib.sh"
REVIEWS=${BENCH_BACKFILL_REVIEWS:-10000}
PURCHASES=${BENCH_BACKFILL_PURCHASES:-$(( REVIEWS * 541908 / 100000 ))}
NIGHTS=${BENCH_BACKFILL_NIGHTS:-7}
REPEATS=${BENCH_REPEATS:-1}
OUT=$OUT_BASE/backfill
require_tools
for n in "$REVIEWS" "$PURCHASES" "$NIGHTS" "$REPEATS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "sizes and counts must be positive whole numbers, not '$n'"
done
[ "$NIGHTS" -le 31 ] || die "BENCH_BACKFILL_NIGHTS is at most 31 (the nights are dates of January 2021)"
FROM=2021-01-01
TO=$(printf '2021-01-%02d' "$NIGHTS")
RAW=$OUT_BASE/generated-backfill-$NIGHTS-$REVIEWS-$PURCHASES
mkdir -p "$OUT" "$RAW"
machine

echo; echo "== $NIGHTS nights of $REVIEWS reviews and logs, $PURCHASES purchases each =="
for i in $(seq "$NIGHTS"); do
  day=$(printf '2021-01-%02d' "$i")
  generate "$RAW/dt=$day" --reviews "$REVIEWS" --purchases "$PURCHASES" --seed "$i" --gzip \
    --start-date "$FROM" --end-date "$day"
done
# generate's own logs sit beside the night folders; the backfill only reads dt=*/ folders.
warm_cache "$RAW"/dt=*/*.csv.gz

backfill() { # PARALLEL ROUND
  local lake=$OUT/lake-$1 jsonl=$OUT/backfill-p$1-r$2.jsonl err=$OUT/backfill-p$1-r$2.stderr
  rm -rf "$lake"
  local argv=("$DRIVER" --output json backfill --from "$FROM" --to "$TO" --local --raw-dir "$RAW" \
    --parallel "$1" --set "local.lake_dir=$lake" --set "local.master=$LOCAL_MASTER" \
    --set "local.driver_memory=$LOCAL_MEMORY")
  show "${argv[*]}"
  local t; t=$(now)
  "${argv[@]}" > "$jsonl" 2> "$err" || {
    local rc=$?
    echo "$BENCH_NAME: the backfill --parallel $1 failed (exit $rc); the end of $err:" >&2
    tail -30 "$err" >&2; exit 1; }
  local took; took=$(seconds_since "$t")
  # Every night must have succeeded: a backfill that skipped or failed a night is not a time.
  "$VENV_BIN/python" - "$jsonl" "$NIGHTS" <<'EOF'
import json
import sys

path, nights = sys.argv[1], int(sys.argv[2])
finished = None
for line in open(path, encoding="utf-8"):
    if line.startswith("{"):
        event = json.loads(line)
        if event.get("event") == "backfill_finished":
            finished = event
if finished is None:
    sys.exit(f"bench_backfill: no backfill_finished event in {path}")
dates = finished.get("dates") or []
states = {d.get("date"): d.get("state") for d in dates}
print("  nights: " + ", ".join(f"{d} {s}" for d, s in sorted(states.items())))
if finished.get("exit_code") != 0 or len(dates) != nights:
    sys.exit(f"bench_backfill: exit code {finished.get('exit_code')}, {len(dates)} of {nights} nights")
EOF
  rm -rf "$lake"
  TIMES[$1]="${TIMES[$1]:-} $took"
  echo "  --parallel $1, round $2: $took s"
}

echo; echo "== backfill $FROM -> $TO, --parallel 1 and 2, $REPEATS round(s) =="
declare -A TIMES
for r in $(seq "$REPEATS"); do
  if [ $(( r % 2 )) = 1 ]; then backfill 1 "$r"; backfill 2 "$r"; else backfill 2 "$r"; backfill 1 "$r"; fi
done
# shellcheck disable=SC2086 # the lists are space-separated on purpose
P1=$(median ${TIMES[1]}) P2=$(median ${TIMES[2]})
echo "--parallel 1:${TIMES[1]} s; --parallel 2:${TIMES[2]} s"
figure "backfill.nights" "$NIGHTS"
figure "backfill.reviews_per_night" "$REVIEWS"
figure "backfill.parallel_1_seconds" "$P1" s
figure "backfill.parallel_2_seconds" "$P2" s
figure "backfill.speedup_parallel_2" "$(ratio "$P1" "$P2")" x
