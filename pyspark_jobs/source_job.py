"""What the two jobs reading a vendor file share: counting the tagged records once, the
whole-file checks that need the records, and the common command-line options."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame

from pyspark_jobs.cli_args import Option
from pyspark_jobs.concurrency import concurrently
from pyspark_jobs.csv_input import first_line, is_unreadable_file_error
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.job_metrics import count_tagged, source_counts
from pyspark_jobs.lake_io import write_parquet
from pyspark_jobs.rejects import has_repeated_ids

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


def tag_persisted(
    tag: Callable[[bool], DataFrame],
    input_uri: str,
    id_column: str,
    checked_before: Sequence[str],
) -> DataFrame:
    """The input's tagged records, persisted, with the input read once in the usual case.

    `tag(detect_duplicates)` builds the tagged frame. It is first built without the
    duplicate window and persisted; the pass that fills the cache also answers whether an
    id repeats (`has_repeated_ids`). Only then is it rebuilt with the window (the input read
    a second time): the window's result differs only when an id repeats.
    """
    tagged = persist(tag(False))
    if not reading(input_uri, lambda: has_repeated_ids(tagged, id_column, checked_before)):
        return tagged
    tagged.unpersist()
    return persist(tag(True))


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
