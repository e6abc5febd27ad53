"""Tagging input records with a reject reason, and the `rejects/<source>` rows.

A job adds two columns to the raw records, `REASON` and `DETAIL`, both NULL for a usable
record. Each check (`reject_when`, `reject_duplicates`) only tags records that no earlier
check rejected, so every record ends with at most one reason and is counted exactly once:
`rows_in = rows_out + rows_rejected`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pyspark_jobs.csv_input import CORRUPT_RECORD

# Columns the jobs add to the raw records start with this prefix, so they never clash with
# a vendor column and `header_columns` can tell them apart.
INTERNAL_PREFIX = "_pj_"
REASON = INTERNAL_PREFIX + "reject_reason"
DETAIL = INTERNAL_PREFIX + "reject_detail"

# Reasons shared by the jobs (each job may add its own; README lists them all).
MALFORMED_ROW = "malformed_row"
BAD_ID = "bad_id"
DUPLICATE_KEY = "duplicate_key"
DUPLICATE_IDENTICAL = "duplicate_identical"

REJECTS_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType(), True),
        T.StructField("record_key", T.StringType(), True),
        T.StructField("raw_record", T.StringType(), False),
        T.StructField("insert_date", T.DateType(), False),
    ]
)


def header_columns(df: DataFrame) -> list[str]:
    """The columns of the input file's header (not the corrupt-record or internal ones)."""
    return [c for c in df.columns if c != CORRUPT_RECORD and not c.startswith(INTERNAL_PREFIX)]


def start_tagging(df: DataFrame) -> DataFrame:
    """`df` with empty reason columns: every record starts usable."""
    return df.withColumn(REASON, F.lit(None).cast("string")).withColumn(
        DETAIL, F.lit(None).cast("string")
    )


def reject_when(df: DataFrame, condition: Column, reason: str, detail: Column) -> DataFrame:
    """Tag with `reason` the records not yet rejected for which `condition` is true."""
    newly_rejected = F.col(REASON).isNull() & F.coalesce(condition, F.lit(False))
    return df.withColumn(
        DETAIL, F.when(newly_rejected, detail).otherwise(F.col(DETAIL))
    ).withColumn(REASON, F.when(newly_rejected, F.lit(reason)).otherwise(F.col(REASON)))


def missing_or_invalid(text: Column, name: str, problem: str) -> Column:
    """The detail for a field that failed to parse: `<name> is missing` or `<name> <problem>`."""
    return F.when(F.coalesce(F.trim(text), F.lit("")) == "", F.lit(f"{name} is missing")).otherwise(
        F.lit(f"{name} {problem}")
    )


def reject_malformed_rows(df: DataFrame, column_count: int) -> DataFrame:
    """Records the CSV reader could not split into the header's columns."""
    return reject_when(
        df,
        F.col(CORRUPT_RECORD).isNotNull(),
        MALFORMED_ROW,
        F.lit(f"the record does not split into the header's {column_count} columns"),
    )


# The reasons the vendor-file jobs tag before their duplicate window: a record they reject
# is no copy of anything.
CHECKED_BEFORE_DUPLICATES = (MALFORMED_ROW, BAD_ID)

COPIES = INTERNAL_PREFIX + "copies"
DIFFERING = INTERNAL_PREFIX + "differing"
COPY_NUMBER = INTERNAL_PREFIX + "copy_number"


def reject_duplicates(df: DataFrame, key: str, content: Sequence[str], what: str) -> DataFrame:
    """Records whose `key` (an id already validated) repeats among usable records.

    All copies identical: one copy stays usable, the others become `duplicate_identical`.
    Copies that differ in `content`: every copy becomes `duplicate_key` (nothing is picked).
    A window over the key, not a self-join: one shuffle, and each id's copies side by side.
    """
    group_key = F.when(F.col(REASON).isNull(), F.col(key))
    whole_group = Window.partitionBy(group_key)
    in_group_order = Window.partitionBy(group_key).orderBy(group_key)
    fingerprint = F.struct(*[F.col(c) for c in content])
    # One select computes every window value in one pass over each id's copies.
    with_groups = df.select(
        "*",
        F.count(F.lit(1)).over(whole_group).alias(COPIES),
        (F.min(fingerprint).over(whole_group) != F.max(fingerprint).over(whole_group)).alias(
            DIFFERING
        ),
        F.row_number().over(in_group_order).alias(COPY_NUMBER),
    )
    repeated = F.col(key).isNotNull() & (F.col(COPIES) > 1)
    key_text = F.col(key).cast("string")
    with_conflicts = reject_when(
        with_groups,
        repeated & F.col(DIFFERING),
        DUPLICATE_KEY,
        F.concat(
            F.lit(f"{what} "),
            key_text,
            F.lit(" appears "),
            F.col(COPIES).cast("string"),
            F.lit(" times with different content; every copy is rejected"),
        ),
    )
    tagged = reject_when(
        with_conflicts,
        repeated & ~F.col(DIFFERING) & (F.col(COPY_NUMBER) > 1),
        DUPLICATE_IDENTICAL,
        F.concat(F.lit(f"identical copy of {what} "), key_text, F.lit("; one copy is kept")),
    )
    return tagged.drop(COPIES, DIFFERING, COPY_NUMBER)


def has_repeated_ids(tagged: DataFrame, id_column: str, checked_before: Sequence[str]) -> bool:
    """Whether `id_column` (an id already parsed) repeats among the records of `tagged` that
    `reject_duplicates` would look at: those no check in `checked_before` (the reasons
    tagged before the duplicate window: malformed row, bad id) rejected. A record a later
    check rejected still counts, as the window runs before that check.

    Meant for the persisted tagged frame of a run without the window: one job over the ids
    in the cache, no second pass over the input. When it says no, the window (a shuffle of
    every record with its full text) would tag nothing and is not run.
    """
    return bool(repeated_ids(tagged, id_column, checked_before).collect())


def repeated_ids(tagged: DataFrame, id_column: str, checked_before: Sequence[str]) -> DataFrame:
    """The query `has_repeated_ids` runs: at most one repeated id (no row: none repeats)."""
    earlier = F.coalesce(F.col(REASON).isin(list(checked_before)), F.lit(False))
    ids = tagged.filter(F.col(id_column).isNotNull() & ~earlier).select(id_column)
    return ids.groupBy(id_column).count().filter(F.col("count") > 1).limit(1)


def usable(tagged: DataFrame) -> DataFrame:
    return tagged.filter(F.col(REASON).isNull())


RECORD_KEY = INTERNAL_PREFIX + "record_key"
RAW_RECORD = INTERNAL_PREFIX + "raw_record"


def finish_tagging(tagged: DataFrame, key_column: str) -> DataFrame:
    """Keep what the rejects need and drop the raw columns.

    A rejected record keeps its key as found and its raw record: the record's fields as
    read, as a JSON object (NULL fields kept), plus the whole raw text as `_corrupt_record`
    for a record the reader could not split. A usable record keeps only its parsed values,
    so the persisted frame does not hold every raw text a second time.
    """
    header = header_columns(tagged)
    raw_fields = [F.col(c) for c in header]
    json_options = {"ignoreNullFields": "false"}
    raw_record = F.to_json(F.struct(*raw_fields), json_options)
    if CORRUPT_RECORD in tagged.columns:
        raw_record = F.when(
            F.col(CORRUPT_RECORD).isNotNull(),
            F.to_json(F.struct(*raw_fields, F.col(CORRUPT_RECORD)), json_options),
        ).otherwise(raw_record)
    rejected = F.col(REASON).isNotNull()
    return (
        tagged.withColumn(RECORD_KEY, F.when(rejected, F.col(key_column).cast("string")))
        .withColumn(RAW_RECORD, F.when(rejected, raw_record))
        .drop(*header, CORRUPT_RECORD)
    )


def rejects_frame(tagged: DataFrame, source: str, run_date: dt.date) -> DataFrame:
    """The rejected records of a `finish_tagging` frame as `rejects/<source>` rows."""
    return tagged.filter(F.col(REASON).isNotNull()).select(
        F.lit(source).alias("source"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
        F.col(RECORD_KEY).alias("record_key"),
        F.col(RAW_RECORD).alias("raw_record"),
        F.lit(run_date).alias("insert_date"),
    )
