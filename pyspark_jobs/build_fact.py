"""build_fact: classified reviews + review logs + purchases -> `fact_movie_analytics`.

Grain: one row per customer x review date x device x location x os x browser, over the
reviews of the run joined to their logs (`review_id = log_id`); a review without a log row,
or a NULL session value, maps to the Unknown member (id 0). Each source is aggregated on
its own before the join (joining purchases to reviews first would multiply both sums):
reviews per grain (`review_score`, `review_count`), purchases per customer
(`amount_spent` = SUM(quantity * unit_price), returns included, 0 without purchases).

Invariants checked before anything is written (exit code 4 otherwise):
`SUM(review_count)` equals the number of classified reviews of the run, and every session
value has a key in its dimension snapshot of the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import operator
from collections.abc import Mapping, Sequence
from functools import partial, reduce
from typing import NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pyspark_jobs.build_dimensions import (
    DIMENSIONS,
    RUN_ID_OPTION,
    Dimension,
    id_column,
    snapshot_uri,
)
from pyspark_jobs.cli_args import Option, parse_job_args
from pyspark_jobs.concurrency import concurrently
from pyspark_jobs.csv_input import read_csv_strings
from pyspark_jobs.errors import InvariantBroken, UnusableInput
from pyspark_jobs.job_metrics import metrics_document, source_counts, write_metrics
from pyspark_jobs.lake_io import join_uri, write_load_csv, write_parquet
from pyspark_jobs.parse_values import strict_decimal, strict_int
from pyspark_jobs.rejects import (
    INTERNAL_PREFIX,
    REASON,
    finish_tagging,
    header_columns,
    reject_malformed_rows,
    reject_when,
    rejects_frame,
    start_tagging,
)
from pyspark_jobs.source_job import checked_source_counts, persist, reading
from pyspark_jobs.spark_session import job_session

JOB = "build_fact"
OUTPUT = "fact_movie_analytics"
PURCHASES_SOURCE = "user_purchase"
QUANTITY, UNIT_PRICE, CUSTOMER_ID = "quantity", "unit_price", "customer_id"
INVOICE_NUMBER = "invoice_number"  # the `record_key` of a rejected purchase, when present
PURCHASE_COLUMNS = (QUANTITY, UNIT_PRICE, CUSTOMER_ID)
AMOUNT_TYPE = "decimal(18,5)"
OPTIONS = [
    Option("--reviews", "the URI of the classified_movie_review partition folder of the run"),
    Option("--review-logs", "the URI of the review_logs partition folder of the run"),
    Option("--purchases", "the URI of the user_purchase export (folder or .csv[.gz] file)"),
    Option("--dims-root", "the URI under which each dimension has its dt=D snapshots"),
    Option("--output", "the URI of the fact_movie_analytics partition folder to replace"),
    Option("--load-root", "the URI of the run's warehouse-load folder"),
    Option("--metrics", "the URI of the folder to replace with the metrics JSON line"),
    Option(
        "--rejects",
        "the URI of the rejects/user_purchase partition folder to replace (optional: "
        "without it, unusable purchase rows are only counted in the metrics)",
        required=False,
    ),
    RUN_ID_OPTION,
]
FACT_COLUMNS = (
    "customerid",
    "id_dim_date",
    "id_dim_devices",
    "id_dim_location",
    "id_dim_os",
    "id_dim_browser",
    "amount_spent",
    "review_score",
    "review_count",
    "insert_date",
)
SESSION_COLUMNS = ("log_date", "device", "location", "os", "browser")
_QUANTITY = INTERNAL_PREFIX + "quantity"
_UNIT_PRICE = INTERNAL_PREFIX + "unit_price"
_CUSTOMER_ID = INTERNAL_PREFIX + "customer_id"
_HAS_PURCHASES = INTERNAL_PREFIX + "has_purchases"


class Inputs(NamedTuple):
    reviews: DataFrame
    logs: DataFrame
    purchases: DataFrame  # raw strings, as read
    dims: dict[str, DataFrame]  # table -> (id, value)


# --- pure transforms -------------------------------------------------------------------


def tag_purchases(raw: DataFrame) -> DataFrame:
    """The export's rows with typed values and a reject reason (NULL when usable).

    A purchase without a customer id is usable (it just belongs to no reviewer); one whose
    customer id is there but not an integer is rejected."""
    header = header_columns(raw)
    df = (
        start_tagging(raw)
        .withColumn(_QUANTITY, strict_int(F.col(QUANTITY)))
        .withColumn(_UNIT_PRICE, strict_decimal(F.col(UNIT_PRICE), 18, 5))
        .withColumn(_CUSTOMER_ID, strict_int(F.col(CUSTOMER_ID)))
    )
    df = reject_malformed_rows(df, len(header))
    df = reject_when(
        df,
        F.col(_QUANTITY).isNull(),
        "bad_quantity",
        F.lit("quantity is missing or not an integer"),
    )
    df = reject_when(
        df,
        F.col(_UNIT_PRICE).isNull(),
        "bad_unit_price",
        F.lit("unit_price is missing or not a decimal number"),
    )
    customer_given = F.coalesce(F.trim(F.col(CUSTOMER_ID)), F.lit("")) != ""
    df = reject_when(
        df,
        customer_given & F.col(_CUSTOMER_ID).isNull(),
        "bad_customer_id",
        F.lit("customer_id is not a 32-bit integer"),
    )
    return finish_tagging(df, INVOICE_NUMBER if INVOICE_NUMBER in header else CUSTOMER_ID)


_ROWS = INTERNAL_PREFIX + "rows"


def purchase_totals(tagged_purchases: DataFrame) -> DataFrame:
    """Per customer id (NULL: missing or not a 32-bit integer) and reject reason (NULL: usable), the
    purchases and their net spend: one aggregation that gives both the spend the fact joins
    (`customer_spend`) and every count of the metrics (`purchase_counts`), so the export is
    parsed once and nothing holds its half-million rows in memory."""
    return tagged_purchases.groupBy(
        F.col(_CUSTOMER_ID).alias("customer_id"), F.col(REASON).alias(REASON)
    ).agg(
        F.count(F.lit(1)).alias(_ROWS),
        F.sum(F.col(_QUANTITY) * F.col(_UNIT_PRICE)).alias("amount_spent"),
    )


def customer_spend(totals: DataFrame) -> DataFrame:
    """(customer_id, amount_spent): each customer's net spend over all their usable purchases
    (returns included), from `purchase_totals`."""
    return totals.filter(F.col(REASON).isNull() & F.col("customer_id").isNotNull()).select(
        "customer_id", "amount_spent"
    )


def purchase_counts(totals: DataFrame) -> tuple[int, dict[str, int], int]:
    """(rows_out, rejected_by_reason, usable purchases without a customer id) from
    `purchase_totals` (a few thousand rows: collected)."""
    rows_out = without_customer = 0
    by_reason: dict[str, int] = {}
    for row in totals.select("customer_id", REASON, _ROWS).collect():
        if row[REASON] is None:
            rows_out += row[_ROWS]
            if row["customer_id"] is None:
                without_customer += row[_ROWS]
        else:
            by_reason[row[REASON]] = by_reason.get(row[REASON], 0) + row[_ROWS]
    return rows_out, by_reason, without_customer


def review_sessions(reviews: DataFrame, logs: DataFrame) -> DataFrame:
    """Each review with its session values (NULL when it has no log row)."""
    return reviews.select("customer_id", "review_id", "positive_review").join(
        logs.select(F.col("log_id").alias("review_id"), *SESSION_COLUMNS), "review_id", "left"
    )


_LOOKUP_KEY = INTERNAL_PREFIX + "dimension_key"
_LOOKUP_ID = INTERNAL_PREFIX + "dimension_id"


def _lookup_key(dimension: Dimension, value: Column) -> Column:
    """`<table>:<value as text>`: one key space for every dimension (NULL for NULL). Dates
    as `yyyy-MM-dd` on both sides, so the keys are equal exactly when the values are."""
    return F.concat(F.lit(dimension.table + ":"), value.cast("string"))


def dimension_lookup(dims: Mapping[str, DataFrame]) -> DataFrame:
    """(key, id) of every member of every dimension, one small frame broadcast once: the
    five lookups join the same frame, so Spark reuses one broadcast (one Spark job) instead
    of building five."""
    parts = [
        dims[d.table]
        .filter(F.col(d.value_column).isNotNull())
        .select(
            _lookup_key(d, F.col(d.value_column)).alias(_LOOKUP_KEY),
            F.col(id_column(d)).cast("int").alias(_LOOKUP_ID),
        )
        for d in DIMENSIONS
    ]
    return reduce(DataFrame.unionByName, parts)


def with_dimension_ids(sessions: DataFrame, dims: Mapping[str, DataFrame]) -> DataFrame:
    """Replace each session value by its dimension id: 0 (Unknown) for NULL, NULL for a value
    missing from the dimension (an invariant violation, reported by `check_invariants`)."""
    lookup = F.broadcast(dimension_lookup(dims))
    keyed = sessions
    for dimension in DIMENSIONS:
        value, key = dimension.source_column, id_column(dimension)
        # The lookup joins as it is, never renamed: five identical broadcast plans, which
        # Spark reuses as one.
        keyed = (
            keyed.withColumn(_LOOKUP_KEY, _lookup_key(dimension, F.col(value)))
            .join(lookup, _LOOKUP_KEY, "left")
            .drop(_LOOKUP_KEY)
            .withColumn(key, F.when(F.col(value).isNull(), F.lit(0)).otherwise(F.col(_LOOKUP_ID)))
            .drop(_LOOKUP_ID)
        )
    return keyed.drop(*SESSION_COLUMNS)


def aggregate_reviews(keyed: DataFrame) -> DataFrame:
    """Reviews aggregated to the grain: review_score and review_count per row."""
    return keyed.groupBy("customer_id", *[id_column(d) for d in DIMENSIONS]).agg(
        F.sum("positive_review").cast("bigint").alias("review_score"),
        F.count("review_id").alias("review_count"),
    )


def fact_rows(aggregated: DataFrame, spend: DataFrame, run_date: dt.date) -> DataFrame:
    """The fact rows (FACT_COLUMNS) plus `_HAS_PURCHASES`, for the metrics."""
    joined = aggregated.join(spend, "customer_id", "left")
    return joined.select(
        F.col("customer_id").alias("customerid"),
        *[id_column(d) for d in DIMENSIONS],
        F.coalesce(F.col("amount_spent"), F.lit(0)).cast(AMOUNT_TYPE).alias("amount_spent"),
        "review_score",
        "review_count",
        F.lit(run_date).alias("insert_date"),
        F.col("amount_spent").isNotNull().alias(_HAS_PURCHASES),
    )


def build(inputs: Inputs, totals: DataFrame, run_date: dt.date) -> DataFrame:
    sessions = review_sessions(inputs.reviews, inputs.logs)
    aggregated = aggregate_reviews(with_dimension_ids(sessions, inputs.dims))
    return fact_rows(aggregated, customer_spend(totals), run_date)


def fact_summary(fact: DataFrame) -> dict[str, int]:
    """The totals the invariants and metrics need, in one aggregation over the (persisted)
    fact: per customer first, then over the customers, so the distinct customers need no
    COUNT(DISTINCT) (which expands every row once per distinct aggregate)."""
    ids = [id_column(d) for d in DIMENSIONS]
    unmatched = reduce(operator.or_, [F.col(k).isNull() for k in ids])
    per_customer = fact.groupBy("customerid").agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("review_count").alias("review_count"),
        F.sum(F.when(F.col("id_dim_date") == 0, F.col("review_count"))).alias(
            "reviews_without_log"
        ),
        F.sum(F.when(unmatched, 1).otherwise(0)).alias("rows_with_unmatched_value"),
        F.sum(F.when(F.col("amount_spent").isNull(), 1).otherwise(0)).alias("amount_overflows"),
        # Every row of a customer carries the same flag (it comes from the join on the id).
        F.max(F.when(~F.col(_HAS_PURCHASES), 1).otherwise(0)).alias("without_purchases"),
    )
    known = F.col("customerid").isNotNull()
    row = per_customer.agg(
        F.coalesce(F.sum("rows"), F.lit(0)).alias("rows"),
        F.coalesce(F.sum("review_count"), F.lit(0)).alias("review_count"),
        F.coalesce(F.sum("reviews_without_log"), F.lit(0)).alias("reviews_without_log"),
        F.sum("rows_with_unmatched_value").alias("rows_with_unmatched_value"),
        F.sum("amount_overflows").alias("amount_overflows"),
        F.count(F.when(known, 1)).alias("customers"),
        F.count(F.when(known & (F.col("without_purchases") == 1), 1)).alias(
            "customers_without_purchases"
        ),
    ).collect()[0]
    return {name: int(row[name] or 0) for name in row.asDict()}


def check_invariants(summary: Mapping[str, int], classified_reviews: int) -> None:
    if summary["review_count"] != classified_reviews:
        raise InvariantBroken(
            f"SUM(review_count) is {summary['review_count']} but the run has "
            f"{classified_reviews} classified reviews (duplicate log ids in review_logs?)"
        )
    if summary["rows_with_unmatched_value"]:
        raise InvariantBroken(
            f"{summary['rows_with_unmatched_value']} fact rows have a session value missing "
            "from its dimension snapshot of the run: rerun build_dimensions for this date"
        )
    if summary["amount_overflows"]:
        raise InvariantBroken(
            f"{summary['amount_overflows']} customers' amount_spent does not fit {AMOUNT_TYPE}"
        )


def purchase_rejects(tagged_purchases: DataFrame, run_date: dt.date) -> DataFrame:
    return rejects_frame(tagged_purchases, PURCHASES_SOURCE, run_date)


# --- extract / load ----------------------------------------------------------------------


def _read_parquet(spark: SparkSession, uri: str, columns: Sequence[str]) -> DataFrame:
    try:
        frame = spark.read.parquet(uri)
    except Exception as error:  # noqa: BLE001 - a missing or unreadable staging folder
        problem = " ".join(str(error).split())[:300]
        raise UnusableInput(uri, f"cannot be read as Parquet: {problem}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UnusableInput(uri, f"lacks the column(s) {', '.join(missing)}")
    return frame.select(*columns)


def _dimension(spark: SparkSession, args: argparse.Namespace, dimension: Dimension) -> DataFrame:
    """The run's snapshot of `dimension`, read with its known schema: no Spark job to infer
    it from the files (build_dimensions writes exactly that schema)."""
    uri = snapshot_uri(args.dims_root, dimension, args.run_date, args.run_id)
    try:
        frame = spark.read.schema(dimension.schema).parquet(uri)
    except Exception as error:  # noqa: BLE001 - a missing or unreadable snapshot folder
        problem = " ".join(str(error).split())[:300]
        raise UnusableInput(uri, f"cannot be read as Parquet: {problem}") from None
    return frame.select(id_column(dimension), dimension.value_column)


def input_rows(reviews: DataFrame, logs: DataFrame) -> tuple[int, int]:
    """(classified reviews, review_logs rows) of the run, counted in one aggregation."""
    tagged = reviews.select(F.lit(0).alias("input")).unionByName(
        logs.select(F.lit(1).alias("input"))
    )
    counted = tagged.agg(
        F.count(F.when(F.col("input") == 0, 1)).alias("reviews"),
        F.count(F.when(F.col("input") == 1, 1)).alias("logs"),
    ).collect()[0]
    return int(counted["reviews"]), int(counted["logs"])


def extract(spark: SparkSession, args: argparse.Namespace) -> Inputs:
    return Inputs(
        reviews=_read_parquet(spark, args.reviews, ["customer_id", "review_id", "positive_review"]),
        logs=_read_parquet(spark, args.review_logs, ["log_id", *SESSION_COLUMNS]),
        purchases=read_csv_strings(spark, args.purchases, PURCHASE_COLUMNS),
        dims={d.table: _dimension(spark, args, d) for d in DIMENSIONS},
    )


def load(
    fact: DataFrame,
    purchases: DataFrame,
    purchase_source: Mapping[str, object],
    args: argparse.Namespace,
) -> None:
    """The fact (staging Parquet and load CSV) and the purchase rejects, written at once.

    `purchases` (the tagged export) is not kept: the rejects are read from the export again
    only when there are some (`purchase_source` counted them), never on a clean night."""
    published = fact.select(*FACT_COLUMNS)
    writes = [
        partial(write_parquet, published, args.output),
        partial(write_load_csv, published, join_uri(args.load_root, OUTPUT)),
    ]
    if args.rejects:
        rejects = purchase_rejects(purchases, args.run_date)
        rejected = purchase_source["rows_rejected"]
        writes.append(partial(write_parquet, rejects, args.rejects, rejected))
    concurrently(writes)


def main(argv: Sequence[str]) -> int:
    args = parse_job_args(JOB, argv, OPTIONS)
    spark = job_session(f"{JOB} {args.run_date}")
    inputs = extract(spark, args)
    purchases = tag_purchases(inputs.purchases)
    # Small (customers x reasons), kept: the counts and the fact's join both read it.
    totals = persist(purchase_totals(purchases))
    fact = persist(build(inputs, totals, args.run_date))
    # Three independent aggregations at once: the purchases' counts (the job that parses the
    # export fills the totals' cache, which the fact's join then reads: Spark computes a
    # cached partition once, and a second job waits for it), the inputs' row counts and the
    # fact's totals. A problem with the export itself is the error reported (it is first).
    (rows_out, by_reason, without_customer), (classified_reviews, log_rows), summary = concurrently(
        [
            partial(reading, args.purchases, partial(purchase_counts, totals)),
            partial(input_rows, inputs.reviews, inputs.logs),
            partial(fact_summary, fact),
        ]
    )
    purchase_counts_entry = checked_source_counts(args.purchases, rows_out, by_reason)
    check_invariants(summary, classified_reviews)
    load(fact, purchases, purchase_counts_entry, args)
    write_metrics(
        spark,
        args.metrics,
        metrics_document(
            JOB,
            args.run_date,
            sources={
                "classified_movie_review": source_counts(classified_reviews, {}),
                "review_logs": source_counts(log_rows, {}),
                PURCHASES_SOURCE: purchase_counts_entry,
            },
            outputs={OUTPUT: summary["rows"]},
            warnings={
                "reviews_without_log": summary["reviews_without_log"],
                "customers_without_purchases": summary["customers_without_purchases"],
                "purchases_without_customer": without_customer,
            },
            checks={
                "sum_review_count": summary["review_count"],
                "classified_reviews": classified_reviews,
                "customers": summary["customers"],
            },
        ),
    )
    return 0
