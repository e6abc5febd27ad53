"""Counts what the naive pipeline wrote (not timed; run once after the timed runs).

    spark-submit --master local[2] benchmarks/naive/check_output.py --out OUT

Prints `FIGURE naive.<name> = <value>` lines: rows of each output, reviews classified positive,
and the fact's SUM(review_count) against the number of classified reviews. DESIGN.md 2.3 makes
those two equal; the naive fact breaks it (the purchases fan-out), which is the point of
showing it. Exits non-zero when an output is missing or empty, so a broken baseline is never
timed as if it had worked.
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

OUTPUTS = ("classified_movie_review", "review_logs", "fact_movie_analytics")


def figure(name: str, value: object) -> None:
    print(f"FIGURE naive.{name} = {value}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the naive pipeline's output folder")
    args = parser.parse_args()
    spark = SparkSession.builder.appName("naive check_output").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    frames = {name: spark.read.parquet(f"{args.out}/{name}") for name in OUTPUTS}
    empty = []
    for name, df in frames.items():
        rows = df.count()
        figure(f"{name}.rows", rows)
        if rows == 0:
            empty.append(name)
    reviews, logs, fact = (frames[n] for n in OUTPUTS)
    figure("classified_movie_review.positive", reviews.filter("positive_review = 1").count())
    figure("review_logs.null_log_date", logs.filter(F.col("log_date").isNull()).count())
    totals = fact.agg(
        F.sum("review_count").alias("reviews"), F.countDistinct("customerid").alias("customers")
    ).first()
    figure("fact_movie_analytics.sum_review_count", totals["reviews"])
    figure("fact_movie_analytics.customers", totals["customers"])
    spark.stop()
    if empty:
        print(f"naive check: empty output(s): {', '.join(empty)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
