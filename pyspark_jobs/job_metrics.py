"""The metrics every job leaves for the driver: one JSON object on one line.

Format (docs/architecture.md): `job`, `run_date`, `sources` (per input: rows_in, rows_out,
rows_rejected, rejected_by_reason), `outputs` (rows per output table), `warnings` (counts of
records that were kept but deserve a look). The driver copies the object into the run
manifest. Written through the Hadoop FileSystem API (`lake_io.replace_with_file`), so it
lands on S3 like any other output without a Spark job: a folder with `part-00000.json` (the
line, newline-terminated) and `_SUCCESS`, the layout of a Spark text write.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pyspark_jobs.lake_io import replace_with_file
from pyspark_jobs.rejects import REASON

METRICS_FILE = "part-00000.json"


def source_counts(rows_out: int, rejected_by_reason: Mapping[str, int]) -> dict[str, object]:
    """One `sources` entry; rows_in is the sum, so `rows_in = rows_out + rows_rejected`."""
    rejected = sum(rejected_by_reason.values())
    return {
        "rows_in": rows_out + rejected,
        "rows_out": rows_out,
        "rows_rejected": rejected,
        "rejected_by_reason": dict(sorted(rejected_by_reason.items())),
    }


def count_tagged(
    tagged: DataFrame, warnings: Mapping[str, Column] | None = None
) -> tuple[int, dict[str, int], dict[str, int]]:
    """(rows_out, rejected_by_reason, warnings) of a tagged DataFrame, in one Spark job.

    `warnings` maps a warning name to a condition counted over the usable records.
    """
    warnings = dict(warnings or {})
    aggregates = [F.count(F.lit(1)).alias("_rows")]
    names = sorted(warnings)
    for index, name in enumerate(names):
        aggregates.append(
            F.sum(F.when(F.coalesce(warnings[name], F.lit(False)), 1).otherwise(0)).alias(
                f"_w{index}"
            )
        )
    rows_out = 0
    by_reason: dict[str, int] = {}
    found = dict.fromkeys(names, 0)
    for row in tagged.groupBy(REASON).agg(*aggregates).collect():
        if row[REASON] is None:
            rows_out = row["_rows"]
            found = {name: int(row[f"_w{i}"] or 0) for i, name in enumerate(names)}
        else:
            by_reason[row[REASON]] = row["_rows"]
    return rows_out, by_reason, found


def metrics_document(
    job: str,
    run_date: dt.date,
    sources: Mapping[str, Mapping[str, object]],
    outputs: Mapping[str, int],
    warnings: Mapping[str, int],
    checks: Mapping[str, object] | None = None,
) -> dict[str, object]:
    document: dict[str, object] = {
        "job": job,
        "run_date": run_date.isoformat(),
        "sources": {name: dict(value) for name, value in sources.items()},
        "outputs": dict(outputs),
        "warnings": dict(warnings),
    }
    if checks:
        document["checks"] = dict(checks)
    return document


def write_metrics(spark: SparkSession, uri: str, document: Mapping[str, object]) -> None:
    """Replace the folder `uri` with one text file holding `document` as one JSON line."""
    line = json.dumps(document, sort_keys=False, separators=(", ", ": "))
    replace_with_file(spark, uri, METRICS_FILE, (line + "\n").encode("utf-8"))
