#!/usr/bin/env bash
# Benchmark 4: PostgreSQL load and export of user_purchase, the driver against psql.
#
#  - load: `emr-driver load-user-purchase FILE` against
#    `psql -c "\copy user_purchase FROM FILE CSV HEADER"` into the same table (sql/user_purchase.sql),
#    both from the same uncompressed copy of the real 541,908-row file. The baseline is honest
#    about dates: PostgreSQL itself parses the UCI `M/D/YYYY H:MM` under its default DateStyle
#    (`ISO, MDY`, set explicitly below), so psql loads the file as it is, with no staging table.
#    The driver additionally checks every row and converts the dates itself.
#  - export: `emr-driver export-user-purchase` against
#    `psql -c "\copy (SELECT <columns> FROM user_purchase) TO STDOUT WITH (FORMAT csv, HEADER true)" | gzip`
#    (the same query and format, docs/architecture.md).
#  - peak RSS of the driver (/usr/bin/time -v) for both, on the real file and on a file ten times
#    larger (its body repeated ten times), to show the driver streams instead of buffering.
#
# A temporary database is created and dropped. Run from the repository root:
#   benchmarks/bench_postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DRIVER=${DRIVER_BIN:-$REPO/target/release/emr-driver}
# The driver reads EMR_DRIVER_<SECTION>_<KEY> as config overrides and warns about any other
# EMR_DRIVER_* variable: this one is only for the scripts.
unset DRIVER_BIN
REPEATS=${BENCH_PG_REPEATS:-3}
SHARED=${SHARED_DATA_DIR:-$REPO/../shared/data}
PGURL_BASE=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
OUT=${BENCH_OUT_DIR:-$REPO/benchmarks/out}/postgres
DB=bench_up_$$_$(date +%s)
URL=$PGURL_BASE/$DB
DATE=2021-10-31

[ -x "$DRIVER" ] || { echo "bench_postgres: $DRIVER not found: run scripts/setup.sh or set DRIVER_BIN" >&2; exit 2; }
[ -f "$SHARED/user_purchase.csv.gz" ] || { echo "bench_postgres: $SHARED/user_purchase.csv.gz not found: set SHARED_DATA_DIR" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench_postgres: /usr/bin/time (GNU time) is needed for the peak RSS" >&2; exit 2; }

figure() { echo "FIGURE $1 = $2${3:+ $3}"; }
show() { echo "\$ $*"; }
now() { date +%s.%N; }
seconds_since() { echo "$(now) - $1" | bc -l | xargs printf '%.2f'; }
ratio() { echo "$1 / $2" | bc -l | xargs printf '%.2f'; }
psql_db() { psql -X -q -v ON_ERROR_STOP=1 "$URL" "$@"; }
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
peak_rss_kb() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }

cleanup() { psql -X -q "$PGURL_BASE/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
trap cleanup EXIT

mkdir -p "$OUT"
echo "preparing inputs in $OUT (not timed)"
gzip -dc "$SHARED/user_purchase.csv.gz" > "$OUT/user_purchase.csv"
{ cat "$OUT/user_purchase.csv"; for _ in 2 3 4 5 6 7 8 9 10; do tail -n +2 "$OUT/user_purchase.csv"; done; } > "$OUT/user_purchase_x10.csv"
ROWS=$(( $(wc -l < "$OUT/user_purchase.csv") - 1 ))
echo "rows: $ROWS (x10: $(( $(wc -l < "$OUT/user_purchase_x10.csv") - 1 )))"
psql -X -q -v ON_ERROR_STOP=1 "$PGURL_BASE/postgres" -c "CREATE DATABASE $DB"
psql_db -c "ALTER DATABASE $DB SET datestyle = 'ISO, MDY'"
psql_db -f sql/user_purchase.sql
COLUMNS="invoice_number, stock_code, detail, quantity, invoice_date, unit_price, customer_id, country"

driver_load() { # FILE LABEL
  show /usr/bin/time -v "$DRIVER" load-user-purchase "$1" --database-url "$URL"
  local t; t=$(now)
  /usr/bin/time -v -o "$OUT/time-load-$2.txt" "$DRIVER" load-user-purchase "$1" --database-url "$URL" >/dev/null 2>>"$OUT/driver.stderr"
  LOAD_SECONDS=$(seconds_since "$t")
  LOAD_RSS=$(peak_rss_kb "$OUT/time-load-$2.txt")
}
driver_export() { # LABEL
  local lake="$OUT/lake-$1"; rm -rf "$lake"
  local to="s3://staging/user_purchase/dt=$DATE/user_purchase.csv.gz"
  show /usr/bin/time -v "$DRIVER" export-user-purchase --date $DATE --to "$to" --database-url "$URL" --lake-dir "$lake"
  local t; t=$(now)
  /usr/bin/time -v -o "$OUT/time-export-$1.txt" "$DRIVER" export-user-purchase --date $DATE --to "$to" \
    --database-url "$URL" --lake-dir "$lake" >/dev/null 2>>"$OUT/driver.stderr"
  EXPORT_SECONDS=$(seconds_since "$t")
  EXPORT_RSS=$(peak_rss_kb "$OUT/time-export-$1.txt")
  EXPORT_FILE="$lake/staging/user_purchase/dt=$DATE/user_purchase.csv.gz"
}
table_rows() { psql_db -At -c "SELECT count(*) FROM user_purchase"; }

echo; echo "== load, real file: driver vs psql \\copy, $REPEATS runs each, alternating (median) =="
# Warm-up: one untimed load, so every timed load finds the file in the page cache.
"$DRIVER" load-user-purchase "$OUT/user_purchase.csv" --database-url "$URL" >/dev/null 2>>"$OUT/driver.stderr"
driver_times=() psql_times=()
for i in $(seq "$REPEATS"); do
  driver_load "$OUT/user_purchase.csv" 1x
  driver_times+=("$LOAD_SECONDS"); driver_rows=$(table_rows)
  psql_db -c "TRUNCATE user_purchase"
  [ "$i" = 1 ] && show psql "$URL" -c "\\copy user_purchase FROM '$OUT/user_purchase.csv' CSV HEADER"
  t=$(now)
  psql_db -c "\\copy user_purchase FROM '$OUT/user_purchase.csv' CSV HEADER"
  psql_times+=("$(seconds_since "$t")"); psql_rows=$(table_rows)
  psql_db -c "TRUNCATE user_purchase"
done
echo "driver: ${driver_times[*]} s; psql: ${psql_times[*]} s"
LOAD_SECONDS=$(median "${driver_times[@]}") PSQL_LOAD=$(median "${psql_times[@]}")
figure postgres.load.driver_seconds "$LOAD_SECONDS" s
figure postgres.load.driver_rows "$driver_rows"
figure postgres.load.driver_peak_rss_kb "$LOAD_RSS" KiB
figure postgres.load.psql_seconds "$PSQL_LOAD" s
figure postgres.load.psql_rows "$psql_rows"
figure postgres.load.driver_over_psql "$(ratio "$LOAD_SECONDS" "$PSQL_LOAD")" x

echo; echo "== export, real table: driver vs psql \\copy TO STDOUT | gzip, $REPEATS runs each, alternating (median) =="
"$DRIVER" load-user-purchase "$OUT/user_purchase.csv" --database-url "$URL" >/dev/null 2>>"$OUT/driver.stderr"
driver_times=() psql_times=()
for i in $(seq "$REPEATS"); do
  driver_export 1x
  driver_times+=("$EXPORT_SECONDS")
  [ "$i" = 1 ] && show "psql $URL -c \"\\copy (SELECT $COLUMNS FROM user_purchase) TO STDOUT WITH (FORMAT csv, HEADER true)\" | gzip > $OUT/psql_export.csv.gz"
  t=$(now)
  psql_db -c "\\copy (SELECT $COLUMNS FROM user_purchase) TO STDOUT WITH (FORMAT csv, HEADER true)" | gzip > "$OUT/psql_export.csv.gz"
  psql_times+=("$(seconds_since "$t")")
done
echo "driver: ${driver_times[*]} s; psql: ${psql_times[*]} s"
EXPORT_SECONDS=$(median "${driver_times[@]}") PSQL_EXPORT=$(median "${psql_times[@]}")
figure postgres.export.driver_seconds "$EXPORT_SECONDS" s
figure postgres.export.driver_bytes "$(stat -c %s "$EXPORT_FILE")"
figure postgres.export.driver_peak_rss_kb "$EXPORT_RSS" KiB
figure postgres.export.psql_seconds "$PSQL_EXPORT" s
figure postgres.export.psql_bytes "$(stat -c %s "$OUT/psql_export.csv.gz")"
figure postgres.export.driver_over_psql "$(ratio "$EXPORT_SECONDS" "$PSQL_EXPORT")" x
if cmp -s <(gzip -dc "$EXPORT_FILE") <(gzip -dc "$OUT/psql_export.csv.gz"); then same=yes; else same=no; fi
figure postgres.export.identical_csv_to_psql "$same"

echo; echo "== peak RSS with a ten times larger input =="
RSS_LOAD_1X=$LOAD_RSS RSS_EXPORT_1X=$EXPORT_RSS
driver_load "$OUT/user_purchase_x10.csv" 10x
figure postgres.load_x10.driver_seconds "$LOAD_SECONDS" s
figure postgres.load_x10.driver_rows "$(table_rows)"
figure postgres.load_x10.driver_peak_rss_kb "$LOAD_RSS" KiB
figure postgres.load.rss_growth_x10_percent "$(echo "100 * ($LOAD_RSS - $RSS_LOAD_1X) / $RSS_LOAD_1X" | bc -l | xargs printf '%.1f')" %
driver_export 10x
figure postgres.export_x10.driver_seconds "$EXPORT_SECONDS" s
figure postgres.export_x10.driver_peak_rss_kb "$EXPORT_RSS" KiB
figure postgres.export.rss_growth_x10_percent "$(echo "100 * ($EXPORT_RSS - $RSS_EXPORT_1X) / $RSS_EXPORT_1X" | bc -l | xargs printf '%.1f')" %
rm -f "$OUT/user_purchase_x10.csv" "$OUT/user_purchase.csv"
