"""build_dimensions: `review_logs` of the run -> dim_date, dim_devices, dim_location, dim_os,
dim_browser, as Parquet snapshots (`<dims-root>/<dim>/dt=D/`) and load CSVs
(`<load-root>/<dim>/`).

Surrogate keys are stable: the registry of a dimension is the union of all its existing
snapshots; a value already there keeps its id, a new value gets max(id)+1, +2, ... in order
of value; the `Unknown` member (for NULL values) is id 0. `id_dim_date` is `yyyymmdd`.
The dimensions are small, so the registry is collected to the driver before anything is
written: reading and overwriting the same folders lazily would lose data on a rerun.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pyspark_jobs import reference
from pyspark_jobs.cli_args import Option, parse_job_args
from pyspark_jobs.concurrency import concurrently
from pyspark_jobs.errors import InvariantBroken, UnusableInput
from pyspark_jobs.job_metrics import metrics_document, source_counts, write_metrics
from pyspark_jobs.lake_io import join_uri, partition_folders, write_load_csv_rows, write_parquet
from pyspark_jobs.spark_session import job_session
from pyspark_jobs.warehouse_types import unloadable_reason

JOB = "build_dimensions"
UNKNOWN = "Unknown"
UNKNOWN_ID = 0
# Optional so that a job line of the layout before run-scoped staging still runs; the driver
# always gives it (its dims snapshots are per run: `<dims-root>/<dim>/dt=D/run=<run id>`).
RUN_ID_OPTION = Option(
    "--run-id", "the run id: the dimension snapshots go to <dim>/dt=D/run=<run id>", required=False
)
OPTIONS = [
    Option("--review-logs", "the URI of the review_logs partition folder of the run"),
    Option("--dims-root", "the URI under which each dimension has its dt=D snapshots"),
    Option("--load-root", "the URI of the run's warehouse-load folder"),
    Option("--metrics", "the URI of the folder to replace with the metrics JSON line"),
    RUN_ID_OPTION,
]


class Dimension(NamedTuple):
    table: str
    source_column: str  # the review_logs column whose values the dimension holds
    value_column: str
    schema: T.StructType


def _schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, kind, True) for name, kind in fields])


DIM_DATE = Dimension(
    "dim_date",
    "log_date",
    "log_date",
    _schema(
        ("id_dim_date", T.IntegerType()),
        ("log_date", T.DateType()),
        ("day", T.IntegerType()),
        ("month", T.IntegerType()),
        ("year", T.IntegerType()),
        ("season", T.StringType()),
    ),
)
DIM_DEVICES = Dimension(
    "dim_devices",
    "device",
    "device",
    _schema(("id_dim_devices", T.IntegerType()), ("device", T.StringType())),
)
DIM_LOCATION = Dimension(
    "dim_location",
    "location",
    "location",
    _schema(
        ("id_dim_location", T.IntegerType()),
        ("location", T.StringType()),
        ("state_code", T.StringType()),
        ("region", T.StringType()),
    ),
)
DIM_OS = Dimension(
    "dim_os", "os", "os", _schema(("id_dim_os", T.IntegerType()), ("os", T.StringType()))
)
DIM_BROWSER = Dimension(
    "dim_browser",
    "browser",
    "browser",
    _schema(("id_dim_browser", T.IntegerType()), ("browser", T.StringType())),
)
DIMENSIONS = (DIM_DATE, DIM_DEVICES, DIM_LOCATION, DIM_OS, DIM_BROWSER)
SURROGATE_DIMENSIONS = (DIM_DEVICES, DIM_LOCATION, DIM_OS, DIM_BROWSER)


def id_column(dimension: Dimension) -> str:
    return dimension.schema.fields[0].name


def snapshot_uri(
    dims_root: str, dimension: Dimension, run_date: dt.date, run_id: str | None = None
) -> str:
    """`<dims-root>/<dim>/dt=D/run=<run id>`: each run its own snapshot, so another run of the
    same date never replaces the snapshot this run's fact was built with (`dt=D` alone without
    a run id, the layout before run-scoped staging)."""
    folder = join_uri(dims_root, dimension.table, f"dt={run_date.isoformat()}")
    return join_uri(folder, f"run={run_id}") if run_id else folder


# --- pure parts -----------------------------------------------------------------------


def observed_values(review_logs: DataFrame) -> DataFrame:
    """One row: the row count and, per dimension, the distinct non-NULL values seen."""
    return review_logs.agg(
        F.count(F.lit(1)).alias("rows"),
        *[F.collect_set(d.source_column).alias(d.table) for d in DIMENSIONS],
    )


def season(month: int) -> str:
    """Meteorological seasons (northern hemisphere): Dec-Feb Winter, Mar-May Spring, ..."""
    return ("Winter", "Spring", "Summer", "Fall")[(month % 12) // 3]


def date_id(day: dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def merge_registry(
    table: str, pairs: Iterable[tuple[int, object]], unknown_value: object = UNKNOWN
) -> dict[object, int]:
    """value -> id from the (id, value) pairs of every existing snapshot.

    `unknown_value` is the value of the Unknown member (NULL in dim_date).
    The snapshots must agree: one value with two ids, or one id for two values, means the
    registry is corrupt and carrying on would re-key the warehouse: InvariantBroken.
    """
    by_value: dict[object, int] = {}
    by_id: dict[int, object] = {}
    for key, value in pairs:
        if key is None:
            raise InvariantBroken(f"{table}: a snapshot row has no id (value {value!r})")
        if by_value.setdefault(value, key) != key:
            raise InvariantBroken(
                f"{table}: value {value!r} has ids {by_value[value]} and {key} in different "
                "snapshots; fix or remove the wrong snapshot before rerunning"
            )
        if by_id.setdefault(key, value) != value:
            raise InvariantBroken(
                f"{table}: id {key} means both {by_id[key]!r} and {value!r} in different "
                "snapshots; fix or remove the wrong snapshot before rerunning"
            )
    unknown_id = by_value.get(unknown_value, UNKNOWN_ID)
    if unknown_id != UNKNOWN_ID or by_id.get(UNKNOWN_ID, unknown_value) != unknown_value:
        raise InvariantBroken(f"{table}: id {UNKNOWN_ID} must be the Unknown member only")
    return by_value


def extend_registry(registry: Mapping[str, int], values: Iterable[str]) -> dict[str, int]:
    """`registry` plus the Unknown member and every new value of `values`, numbered from
    max(id)+1 in order of value. Existing ids never change."""
    extended = dict(registry)
    extended[UNKNOWN] = UNKNOWN_ID
    new_values = sorted({v for v in values if v is not None and v not in extended})
    next_id = max(extended.values()) + 1
    for offset, value in enumerate(new_values):
        extended[value] = next_id + offset
    return extended


def date_dimension_rows(dates: Iterable[dt.date]) -> list[tuple]:
    """dim_date rows for `dates` plus Unknown (id 0, every part NULL), ordered by id."""
    rows = [(UNKNOWN_ID, None, None, None, None, UNKNOWN)]
    for day in sorted(set(dates)):
        rows.append((date_id(day), day, day.day, day.month, day.year, season(day.month)))
    return rows


def location_dimension_rows(registry: Mapping[str, int]) -> list[tuple]:
    """dim_location rows with the USPS code and Census region of recognised states.

    A location that is not a US state is a valid member with the state code and region of
    the Unknown member (`state_code` NULL, `region` 'Unknown'): the warehouse's `region` is
    NOT NULL. Attributes come from the reference table on every run (ids from the registry),
    so a correction of the reference reaches every existing member, also one an earlier run
    wrote without a region."""
    states = {name: (code, region) for name, code, region in reference.US_STATES}
    rows = []
    for value, key in sorted(registry.items(), key=lambda item: item[1]):
        code, region = states.get(value, (None, UNKNOWN)) if key != UNKNOWN_ID else (None, UNKNOWN)
        rows.append((key, value, code, region))
    return rows


def simple_dimension_rows(registry: Mapping[str, int]) -> list[tuple]:
    return [(key, value) for value, key in sorted(registry.items(), key=lambda item: item[1])]


def dimension_rows(dimension: Dimension, registry: Mapping[str, int]) -> list[tuple]:
    if dimension is DIM_LOCATION:
        return location_dimension_rows(registry)
    return simple_dimension_rows(registry)


# --- extract / load ----------------------------------------------------------------------


def extract(spark: SparkSession, args: argparse.Namespace) -> DataFrame:
    """The run's review_logs (only the columns the dimensions use)."""
    try:
        logs = spark.read.parquet(args.review_logs)
    except Exception as error:  # noqa: BLE001 - a missing or unreadable staging folder
        raise UnusableInput(args.review_logs, f"cannot be read as Parquet: {error}") from None
    missing = [d.source_column for d in DIMENSIONS if d.source_column not in logs.columns]
    if missing:
        raise UnusableInput(args.review_logs, f"lacks the column(s) {', '.join(missing)}")
    return logs.select(*[d.source_column for d in DIMENSIONS])


def existing_pairs(spark: SparkSession, dims_root: str, dimension: Dimension) -> list[tuple]:
    """(id, value) of every row of every existing snapshot of `dimension`, collected."""
    folders = partition_folders(spark, join_uri(dims_root, dimension.table))
    if not folders:
        return []
    snapshots = spark.read.schema(dimension.schema).parquet(*folders)
    return [
        (row[0], row[1])
        for row in snapshots.select(id_column(dimension), dimension.value_column).collect()
    ]


def build_registries(
    spark: SparkSession, dims_root: str, observed: Mapping[str, list]
) -> tuple[dict[str, list[tuple]], dict[str, int]]:
    """(rows of every dimension, new members per dimension), all on the driver."""
    rows: dict[str, list[tuple]] = {}
    new_members: dict[str, int] = {}
    # Five small reads, at the same time (each is mostly a Spark job's fixed cost).
    all_pairs = concurrently([partial(existing_pairs, spark, dims_root, d) for d in DIMENSIONS])
    for dimension, pairs in zip(DIMENSIONS, all_pairs):
        if dimension is DIM_DATE:
            known = merge_registry(dimension.table, pairs, unknown_value=None)
            known_dates = {v for v in known if v is not None}
            for value in known_dates:
                if known[value] != date_id(value):
                    raise InvariantBroken(f"dim_date: {value} has id {known[value]}, not yyyymmdd")
            all_dates = known_dates | set(observed[dimension.table])
            rows[dimension.table] = date_dimension_rows(all_dates)
            new_members[dimension.table] = len(all_dates) - len(known_dates)
        else:
            known = merge_registry(dimension.table, pairs)
            extended = extend_registry(known, observed[dimension.table])
            rows[dimension.table] = dimension_rows(dimension, extended)
            new_members[dimension.table] = len(set(extended) - set(known) - {UNKNOWN})
    return rows, new_members


def loadable_rows(dimension: Dimension, rows: Sequence[tuple]) -> tuple[list[tuple], int]:
    """(the rows the warehouse can hold, how many it cannot). parse_logs rejects the records
    with such values, so they only come from a registry an earlier run extended before the
    check existed: they keep their id in the snapshot (ids never change or get reused) but
    stay out of the load file, where they would fail every later night's load."""
    kept = [row for row in rows if unloadable_reason(dimension.source_column, row[1]) is None]
    return kept, len(rows) - len(kept)


def rows_frame(spark: SparkSession, rows: Sequence[tuple], schema: T.StructType) -> DataFrame:
    """`rows` (tuples in `schema`'s order) as a one-partition DataFrame, built in the JVM.

    `spark.createDataFrame` over Python rows starts a Python worker to convert them; here
    the rows travel as one JSON string literal that `from_json` parses: native, one
    partition, rows in the given order (`explode` keeps the array's order). Dates are
    ISO strings, the format `from_json` reads by default."""

    def plain(value: object) -> object:
        return value.isoformat() if isinstance(value, dt.date) else value

    records = [{f.name: plain(v) for f, v in zip(schema.fields, row)} for row in rows]
    parsed = F.from_json(F.lit(json.dumps(records)), T.ArrayType(schema), {"mode": "FAILFAST"})
    return (
        spark.range(0, 1, 1, 1)
        .select(F.explode(parsed).alias("row"))
        .select(*[F.col("row")[f.name].alias(f.name) for f in schema.fields])
    )


def load(
    spark: SparkSession, rows: Mapping[str, list[tuple]], args: argparse.Namespace
) -> dict[str, int]:
    """Writes every snapshot and load file; returns the members left out of each load file.

    The five snapshots are independent and tiny (one task each): they are written at the same
    time. The load files, whose rows are here already, are written on the driver, without a
    Spark job (`write_load_csv_rows`)."""
    left_out = {}
    writes = []
    for dimension in DIMENSIONS:
        frame = rows_frame(spark, rows[dimension.table], dimension.schema)
        snapshot = snapshot_uri(args.dims_root, dimension, args.run_date, args.run_id)
        writes.append(partial(write_parquet, frame, snapshot))
        kept, left_out[dimension.table] = loadable_rows(dimension, rows[dimension.table])
        columns = [field.name for field in dimension.schema.fields]
        load_uri = join_uri(args.load_root, dimension.table)
        writes.append(partial(write_load_csv_rows, spark, load_uri, columns, kept))
    concurrently(writes)
    return left_out


def main(argv: Sequence[str]) -> int:
    args = parse_job_args(JOB, argv, OPTIONS)
    spark = job_session(f"{JOB} {args.run_date}")
    observed_row = observed_values(extract(spark, args)).collect()[0]
    observed = {d.table: list(observed_row[d.table]) for d in DIMENSIONS}
    rows, new_members = build_registries(spark, args.dims_root, observed)
    left_out = load(spark, rows, args)
    log_rows = observed_row["rows"]
    write_metrics(
        spark,
        args.metrics,
        metrics_document(
            JOB,
            args.run_date,
            sources={"review_logs": source_counts(log_rows, {})},
            outputs={table: len(table_rows) for table, table_rows in rows.items()},
            warnings={
                "unloadable_members": sum(left_out.values()),
                "locations_outside_us_states": sum(
                    1 for row in rows[DIM_LOCATION.table] if row[0] != UNKNOWN_ID and row[2] is None
                ),
            },
            checks={"new_members": new_members, "unloadable_members": left_out},
        ),
    )
    return 0
