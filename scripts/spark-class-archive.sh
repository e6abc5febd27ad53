#!/usr/bin/env bash
# Makes the JVM class-data archive (AppCDS) the local runner's spark-submit JVMs map instead of
# loading and verifying the ~15,000 classes of Spark, Hadoop and Scala one by one: the shared
# Spark application then starts and plans its first jobs seconds sooner (BENCHMARKS.md,
# section 3). Idempotent: an archive this JVM accepts for this classpath is kept.
#
#   scripts/spark-class-archive.sh            # after scripts/setup.sh (venv and driver)
#
# How: one local run of the bundled sample data with -XX:DumpLoadedClassList (the classes a
# run loads, written as they load), then `java -Xshare:dump` of those classes for the classpath
# spark-class gives the driver's JVM. The archive (~170 MB, in .venv: it belongs to that
# pyspark) is written beside and renamed into place, so a half-made one is never used. Any
# failure leaves no archive and exits 0 with a warning: the archive only saves time, and the
# JVM itself ignores one that no longer matches (pyspark or the JDK changed).
set -uo pipefail
cd "$(dirname "$0")/.."

ARCHIVE=${SPARK_CLASS_ARCHIVE:-.venv/spark-classes.jsa}
DRIVER=${DRIVER_BIN:-target/release/emr-driver}
PYTHON=.venv/bin/python

warn() { echo "spark-class-archive: $*; local Spark starts without a class-data archive (slower, same results)" >&2; }

[ -x "$PYTHON" ] || { warn "no $PYTHON (run scripts/setup.sh first)"; exit 0; }
SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))') ||
  { warn "pyspark is not importable from $PYTHON"; exit 0; }
# The JVM and classpath spark-class launches the driver with (launcher's AbstractCommandBuilder:
# JAVA_HOME's java, else the one on PATH; the conf folder, then the jars). SPARK_CONF_DIR
# would put another folder first: the archive is made for the default classpath.
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/java}
JAVA=${JAVA:-$(command -v java)}
CLASSPATH_OF_SPARK="$SPARK_HOME/conf:$SPARK_HOME/jars/*"

accepted() {
  [ -f "$1" ] && "$JAVA" -Xshare:on -XX:SharedArchiveFile="$1" -cp "$CLASSPATH_OF_SPARK" -version >/dev/null 2>&1
}

if accepted "$ARCHIVE"; then
  echo "spark-class-archive: $ARCHIVE is up to date" >&2
  exit 0
fi
[ -x "$DRIVER" ] || { warn "no $DRIVER (build it first: cargo build --release)"; exit 0; }

work=$(mktemp -d "${TMPDIR:-/tmp}/spark-class-archive.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
echo "spark-class-archive: recording the classes a local run of sample/ loads (about a minute)" >&2
if ! env -u SPARK_CONF_DIR -u DATABASE_URL -u WAREHOUSE_URL \
  SPARK_SUBMIT_OPTS="-XX:DumpLoadedClassList=$work/classes.lst" \
  "$DRIVER" --output json run --local --date 2021-10-31 --raw-dir sample \
  --set local.lake_dir="$work/lake" --set local.class_data_archive= \
  >"$work/run.json" 2>"$work/run.log"; then
  tail -5 "$work/run.log" >&2
  warn "the sample run failed (its log is above)"
  exit 0
fi
classes=$(grep -vc '^#' "$work/classes.lst" 2>/dev/null)
classes=${classes:-0}
echo "spark-class-archive: archiving $classes classes into $ARCHIVE (about a minute)" >&2
if ! "$JAVA" -Xshare:dump -XX:SharedClassListFile="$work/classes.lst" \
  -XX:SharedArchiveFile="$ARCHIVE.partial" -cp "$CLASSPATH_OF_SPARK" >"$work/dump.log" 2>&1; then
  tail -5 "$work/dump.log" >&2
  rm -f "$ARCHIVE.partial"
  warn "java -Xshare:dump failed (its output is above)"
  exit 0
fi
if ! accepted "$ARCHIVE.partial"; then
  rm -f "$ARCHIVE.partial"
  warn "the JVM does not accept the archive it just made"
  exit 0
fi
mv -f "$ARCHIVE.partial" "$ARCHIVE"
echo "spark-class-archive: wrote $ARCHIVE ($(du -m "$ARCHIVE" | cut -f1) MB, $classes classes) in $(($(date +%s) - started)) s" >&2
