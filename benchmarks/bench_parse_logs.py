"""Benchmark 1: the project's parse_logs transform against the approach most pipelines take,
a Python UDF that parses each XML document with ElementTree (the original brief's solutions),
on the same local Spark, same input, one run each after a warm-up.

Inputs: `BENCH_LOG_ROWS` (default 1,000,000) generated logs in the vendor's XML layout, and
the real 100,000 from SHARED_DATA_DIR. Each CSV is first read once with the project's reader
and staged as Parquet in 8 files (not timed): the vendor CSV is read with `multiLine`, which
Spark cannot split, so reading it inside the timed runs would time one core's CSV parsing
for both sides and hide the difference being measured.

Each timed run computes `review_logs` and writes it as Parquet (the same small write for both
sides), so the outputs can then be compared without recomputing them: `exceptAll` both ways
on the rows both sides could parse, expected 0 and 0.

Run from the repository root: `.venv/bin/python benchmarks/bench_parse_logs.py`
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    DRIVER,
    OUT,
    REPEATS,
    RUN_DATE,
    SHARED_DATA,
    announce,
    figure,
    generated_inputs,
    local_spark,
    require_shared,
    say,
    timed,
    timed_rounds,
)

ROWS = int(os.environ.get("BENCH_LOG_ROWS", "1000000"))
WARMUP_ROWS = 20000


def element_tree_udf():
    """The baseline: one Python UDF per document, ElementTree, mappings in Python dicts
    (the same reference tables the project uses, so the outputs are comparable)."""
    import xml.etree.ElementTree as ET

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from pyspark_jobs import reference

    locations = reference.canonical_location_by_key()
    browsers = dict(reference.DEFAULT_BROWSER_BY_OS)
    schema = T.StructType(
        [
            T.StructField(name, T.StringType())
            for name in ("log_date", "device", "os", "location", "browser", "ip", "phone_number")
        ]
    )

    def text(log, tag):
        value = log.findtext(tag)
        value = value.strip() if value is not None else None
        return value or None

    def parse(document):
        if document is None:
            return None
        try:
            log = ET.fromstring(document).find("log")
        except ET.ParseError:
            return None
        if log is None:
            return None
        location = text(log, "location")
        if location is not None:
            location = locations.get(location.lower(), location)
        os_name = text(log, "os")
        browser = text(log, "browser") or browsers.get(os_name)
        return (
            text(log, "logDate"),
            text(log, "device"),
            os_name,
            location,
            browser,
            text(log, "ipAddress"),
            text(log, "phoneNumber"),
        )

    return F.udf(parse, schema)


def xmltodict_udf():
    """The same baseline with xmltodict instead of ElementTree."""
    import xmltodict
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from pyspark_jobs import reference

    locations = reference.canonical_location_by_key()
    browsers = dict(reference.DEFAULT_BROWSER_BY_OS)
    schema = T.StructType(
        [
            T.StructField(name, T.StringType())
            for name in ("log_date", "device", "os", "location", "browser", "ip", "phone_number")
        ]
    )

    def text(log, tag):
        value = log.get(tag)
        value = value.strip() if isinstance(value, str) else None
        return value or None

    def parse(document):
        if document is None:
            return None
        try:
            log = xmltodict.parse(document)["reviewlog"]["log"]
        except Exception:  # noqa: BLE001 - any parse failure is a bad document
            return None
        if not isinstance(log, dict):
            return None
        location = text(log, "location")
        if location is not None:
            location = locations.get(location.lower(), location)
        os_name = text(log, "os")
        browser = text(log, "browser") or browsers.get(os_name)
        return (
            text(log, "logDate"),
            text(log, "device"),
            os_name,
            location,
            browser,
            text(log, "ipAddress"),
            text(log, "phoneNumber"),
        )

    return F.udf(parse, schema)


def baseline(raw, parse_udf, run_date):
    """review_logs the UDF way: cast the id, parse with the UDF, parse the date."""
    from pyspark.sql import functions as F

    parsed = raw.select(
        F.col("id_review").cast("int").alias("log_id"), parse_udf(F.col("log")).alias("p")
    )
    return (
        parsed.filter(F.col("log_id").isNotNull() & F.col("p").isNotNull())
        .select(
            "log_id",
            F.to_date(F.col("p.log_date"), "MM-dd-yyyy").alias("log_date"),
            *[
                F.col("p." + c).alias(c)
                for c in ("device", "os", "location", "browser", "ip", "phone_number")
            ],
            F.lit(run_date).alias("insert_date"),
        )
        .filter(F.col("log_date").isNotNull())
    )


def project(raw, run_date):
    from pyspark_jobs.parse_logs import review_logs, tag_logs

    return review_logs(tag_logs(raw), run_date)


def stage(spark, csv_path: Path, folder: Path):
    """The CSV read once with the project's reader, as Parquet in 8 files (not timed)."""
    from pyspark_jobs.csv_input import read_csv_strings
    from pyspark_jobs.parse_logs import REQUIRED_COLUMNS

    if not (folder / "_SUCCESS").is_file():
        read_csv_strings(spark, str(csv_path), REQUIRED_COLUMNS).repartition(8).write.mode(
            "overwrite"
        ).parquet(str(folder))
    return spark.read.parquet(str(folder))


def compare(spark, name: str, raw, work: Path, run_date, udfs: dict) -> None:
    """Time the project and each baseline on `raw`, print ratios and the output check."""
    say(f"\n== parse_logs on {name}: {raw.count():,} rows ==")
    builds = {"project": lambda: project(raw, run_date)}
    builds.update({u: (lambda f=f: baseline(raw, f, run_date)) for u, f in udfs.items()})
    targets = {label: work / f"{name}-{label}" for label in builds}
    say(f"each side computes review_logs and writes it as Parquet, {REPEATS} interleaved rounds")
    results = timed_rounds(
        {
            label: (lambda b=b, t=targets[label]: b().write.mode("overwrite").parquet(str(t)))
            for label, b in builds.items()
        }
    )
    outputs = {label: spark.read.parquet(str(t)) for label, t in targets.items()}
    for label, seconds in results.items():
        figure(f"parse_logs.{name}.{label}_seconds", f"{seconds:.2f}", "s")
    for label in udfs:
        ratio = results[label] / results["project"]
        figure(f"parse_logs.{name}.speedup_vs_{label}", f"{ratio:.2f}", "x")
        mine, theirs = outputs["project"], outputs[label]
        # Compared on the ids both sides produced: a document one side rejects and the other
        # accepts is counted separately (well-formed input should have none).
        common = mine.select("log_id").intersect(theirs.select("log_id"))
        only_mine = mine.count() - common.count()
        only_theirs = theirs.count() - common.count()
        a = mine.join(common, "log_id")
        b = theirs.join(common, "log_id")
        figure(f"parse_logs.{name}.rows_only_project_vs_{label}", only_mine)
        figure(f"parse_logs.{name}.rows_only_{label}", only_theirs)
        figure(f"parse_logs.{name}.differing_rows_project_minus_{label}", a.exceptAll(b).count())
        figure(f"parse_logs.{name}.differing_rows_{label}_minus_project", b.exceptAll(a).count())
    figure(f"parse_logs.{name}.project_rows_per_second", f"{raw.count() / results['project']:,.0f}")


def project_breakdown(name: str, raw) -> None:
    """Where the project's time goes: each stage of `tag_logs` on its own (noop writes)."""
    from pyspark.sql import functions as F

    from pyspark_jobs import parse_logs as P
    from pyspark_jobs.parse_values import strict_int
    from pyspark_jobs.rejects import reject_duplicates, start_tagging

    document = F.col(P.LOG)
    usable_xml = F.coalesce(document.rlike(P.USABLE_DOCUMENT), F.lit(False))
    parts = {
        "scan_and_id_cast": lambda: raw.select(strict_int(F.col(P.LOG_ID)), document),
        "layout_regex_check": lambda: raw.select(usable_xml.alias("ok")),
        # The two halves of USABLE_DOCUMENT on their own.
        "layout_regex_without_repeat_lookahead": lambda: raw.select(
            document.rlike(P.VENDOR_LAYOUT).alias("ok")
        ),
        "repeated_element_regex_alone": lambda: raw.select(
            document.rlike(P.REPEATED_ELEMENT).alias("repeated")
        ),
        "element_extraction": lambda: P.with_elements(raw, document, F.lit(True)),
        "duplicate_window": lambda: reject_duplicates(
            start_tagging(raw).withColumn("_k", strict_int(F.col(P.LOG_ID))),
            "_k",
            [P.LOG],
            "review id",
        ),
    }
    say(f"project breakdown on {name} (each part alone, noop write):")
    for part, build in parts.items():
        _, seconds = timed(part, lambda b=build: b().write.format("noop").mode("overwrite").save())
        figure(f"parse_logs.{name}.breakdown.{part}_seconds", f"{seconds:.2f}", "s")


def main() -> int:
    announce({"BENCH_LOG_ROWS": ROWS, "SHARED_DATA_DIR": SHARED_DATA, "DRIVER_BIN": DRIVER})
    run_date = dt.date.fromisoformat(RUN_DATE)
    work = OUT / "parse_logs"
    work.mkdir(parents=True, exist_ok=True)
    generated = generated_inputs(ROWS)
    real = require_shared("log_reviews.csv.gz")
    spark = local_spark("bench parse_logs")
    say("staging the inputs as Parquet (not timed)")
    big, staging_seconds = timed(
        f"stage {ROWS:,} generated logs",
        lambda: stage(spark, generated / "log_reviews.csv", work / f"staged-generated-{ROWS}"),
    )
    real_raw, _ = timed("stage the real logs", lambda: stage(spark, real, work / "staged-real"))

    say("\nwarm-up (JIT, Python workers) on 20,000 rows, not counted")
    warm = big.limit(WARMUP_ROWS).cache()
    warm.count()
    et = element_tree_udf()
    xd = xmltodict_udf()
    for df in (project(warm, run_date), baseline(warm, et, run_date), baseline(warm, xd, run_date)):
        df.write.format("noop").mode("overwrite").save()
    warm.unpersist()

    compare(
        spark, "real_100k", real_raw, work, run_date, {"elementtree_udf": et, "xmltodict_udf": xd}
    )
    compare(spark, f"generated_{ROWS // 1000}k", big, work, run_date, {"elementtree_udf": et})
    project_breakdown(f"generated_{ROWS // 1000}k", big)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
