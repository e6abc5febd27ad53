"""What the two jobs reading a vendor file share: counting the tagged records once, the
whole-file checks that need the records, and the common command-line options."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pyspark_jobs.cli_args import Option
from pyspark_jobs.concurrency import concurrently
from pyspark_jobs.csv_input import first_line, is_unreadable_file_error
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.job_metrics import count_tagged, source_counts
from pyspark_jobs.lake_io import write_parquet
from pyspark_jobs.rejects import REASON, repeated_ids

T = TypeVar("T")


def source_options(what: str, output: str) -> list[Option]:
    return [
        Option("--input", f"the URI of {what} (.csv or .csv.gz)"),
        Option("--output", f"the URI of the {output} partition folder to replace"),
        Option("--rejects", "the URI of the rejects partition folder to replace"),
        Option("--metrics", "the URI of the folder to replace with the metrics JSON line"),
    ]


def persist(df: DataFrame) -> DataFrame:
    """Keep the tagged records: counting and the two writes then read the input once."""
    return df.persist(StorageLevel.MEMORY_AND_DISK)


def tag_and_count(
    tag: Callable[[bool], DataFrame],
    input_uri: str,
    id_column: str,
    checked_before: Sequence[str],
    reasons: Sequence[str],
    tallies: Mapping[str, Column],
) -> tuple[DataFrame, dict[str, object], dict[str, int]]:
    """(the tagged records, persisted; the `sources` entry; the tallies over the usable
    records), with the input read once and counted without a Spark job of its own in the
    usual case.

    `tag(detect_duplicates)` builds the tagged frame. It is first built without the
    duplicate window and persisted; the pass that fills the cache also answers whether an
    id repeats (`has_repeated_ids`) and counts the records by reason and the tallies
    (`observe_counts`: metrics Spark collects while that job runs, no job of their own).
    Only when an id repeats is the frame rebuilt with the window (the input read a second
    time: the window's result differs only then) and counted by a query (`summarize`).
    `reasons` are the reject reasons the job's tagging gives; a record with another one
    makes the observed counts disagree, and the records are then counted by the query too."""
    tagged = persist(tag(False))
    query = repeated_ids(observe_counts(tagged, reasons, tallies), id_column, checked_before)
    if reading(input_uri, query.collect):
        tagged.unpersist()
        tagged = persist(tag(True))
    else:
        counted = observed_counts(query, reasons, tallies)
        if counted is not None:
            rows_out, by_reason, found = counted
            return tagged, checked_source_counts(input_uri, rows_out, by_reason), found
    counts, found = summarize(tagged, input_uri, tallies)
    return tagged, counts, found


_OBSERVED = "pyspark_jobs_source_counts"
_ROWS, _REJECTED = "rows", "rejected"


def observe_counts(
    tagged: DataFrame, reasons: Sequence[str], tallies: Mapping[str, Column]
) -> DataFrame:
    """`tagged` observed (`DataFrame.observe`): its rows, rejected rows, rows per reason in
    `reasons` and `tallies` over the usable rows (what `count_tagged` computes with a
    query), collected by whatever action reads it."""
    usable_row = F.col(REASON).isNull()
    metrics = [F.count(F.lit(1)).alias(_ROWS), F.count(F.col(REASON)).alias(_REJECTED)]
    metrics += [
        F.count(F.when(F.col(REASON) == reason, 1)).alias(f"reason_{index}")
        for index, reason in enumerate(reasons)
    ]
    metrics += [
        F.count(F.when(usable_row & F.coalesce(condition, F.lit(False)), 1)).alias(f"tally_{index}")
        for index, condition in enumerate(tallies.values())
    ]
    return tagged.observe(_OBSERVED, *metrics)


def observed_counts(
    query: DataFrame, reasons: Sequence[str], tallies: Mapping[str, Column]
) -> tuple[int, dict[str, int], dict[str, int]] | None:
    """(rows_out, rejected_by_reason, tallies) from the metrics `observe_counts` collected
    while `query` (an action over it) ran; None when there are none (Spark skips an empty
    input's scan, and the observing node with it) or when the rows rejected for `reasons` do
    not add up to the rejected rows (a reason not in the list).

    Read from the query's own execution, not through `pyspark.sql.Observation`, whose `get`
    waits for ever for metrics that were never collected."""
    found_metrics = query._jdf.queryExecution().observedMetrics().get(_OBSERVED)
    if found_metrics.isEmpty():
        return None
    values = json.loads(found_metrics.get().json())
    by_reason = {
        reason: int(values[f"reason_{index}"])
        for index, reason in enumerate(reasons)
        if values[f"reason_{index}"]
    }
    if sum(by_reason.values()) != values[_REJECTED]:
        return None
    found = {name: int(values[f"tally_{index}"]) for index, name in enumerate(tallies)}
    return int(values[_ROWS]) - int(values[_REJECTED]), by_reason, found


def reading(input_uri: str, action: Callable[[], T]) -> T:
    """Run a Spark action that reads `input_uri`; a damaged file becomes UnusableInput."""
    try:
        return action()
    except Exception as error:
        if is_unreadable_file_error(error):
            raise UnusableInput(input_uri, f"cannot be read: {first_line(error)}") from None
        raise


def summarize(
    tagged: DataFrame, input_uri: str, tallies: Mapping[str, Column]
) -> tuple[dict[str, object], dict[str, int]]:
    """(the `sources` entry, the tallies over the usable records), in one Spark job.

    Raises UnusableInput when the file turns out unusable as a whole once its records are
    read: damaged compression, a header without records, or every record rejected (a vendor
    format change must not load as an all-rejected day).
    """
    rows_out, by_reason, found = reading(input_uri, lambda: count_tagged(tagged, tallies))
    return checked_source_counts(input_uri, rows_out, by_reason), found


def checked_source_counts(
    input_uri: str, rows_out: int, by_reason: Mapping[str, int]
) -> dict[str, object]:
    """The `sources` entry of an input, or UnusableInput when the counts show the file
    unusable as a whole: a header without records, or every record rejected."""
    counts = source_counts(rows_out, by_reason)
    if counts["rows_in"] == 0:
        raise UnusableInput(input_uri, "has a header but no records")
    if rows_out == 0:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items()))
        raise UnusableInput(
            input_uri,
            f"every one of its {counts['rows_in']} records was rejected ({reasons}); "
            "the vendor format has probably changed, so nothing is loaded",
        )
    return counts


def write_outputs(
    output: DataFrame, rejects: DataFrame, args, counts: Mapping[str, object]
) -> None:
    """The job's output and its rejects, written at the same time to `args.output` and
    `args.rejects`; `counts` (the `sources` entry) spares a write job for no rows."""
    concurrently(
        [
            partial(write_parquet, output, args.output, counts["rows_out"]),
            partial(write_parquet, rejects, args.rejects, counts["rows_rejected"]),
        ]
    )
