"""Naive pipeline, job 3 of 3: join everything, then aggregate per customer into the fact table.

A benchmark baseline only (issue 14), not part of the product. A plain first attempt: the
classified reviews joined to their parsed logs and to every purchase of the customer (default
inner joins), then one GROUP BY over the joined rows. That is the mistake DESIGN.md 2.3 warns
about: joining purchases to reviews before aggregating multiplies both sides, so
`amount_spent` is multiplied by the customer's reviews in the row, `review_score` and
`review_count` by the customer's purchase rows; and the inner joins drop every review whose
customer never purchased or whose log is missing. Nothing is checked.

    spark-submit --master local[2] benchmarks/naive/build_fact.py \
        --purchases DIR/user_purchase.csv.gz --out OUT --date 2021-10-31

Reads OUT/classified_movie_review and OUT/review_logs (jobs 1 and 2) and the UCI
user_purchase CSV; writes OUT/fact_movie_analytics (Parquet).
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", required=True, help="user_purchase.csv[.gz], UCI header")
    parser.add_argument("--out", required=True, help="folder holding jobs 1 and 2's outputs")
    parser.add_argument("--date", required=True, help="run date, YYYY-MM-DD")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("naive build_fact").getOrCreate()
    reviews = spark.read.parquet(f"{args.out}/classified_movie_review")
    logs = spark.read.parquet(f"{args.out}/review_logs")
    # Same reader options as the vendor files; columns cast by hand (no inferSchema pass, so
    # the baseline is not slowed by a second read of the file).
    purchases = spark.read.csv(args.purchases, header=True, multiLine=True, escape='"').select(
        F.col("CustomerID").cast("int").alias("customer_id"),
        F.col("Quantity").cast("int").alias("quantity"),
        F.col("UnitPrice").cast("double").alias("unit_price"),
    )
    fact = (
        reviews.join(logs, reviews.review_id == logs.log_id)
        .join(purchases, "customer_id")
        .groupBy("customer_id", "log_date", "device", "location", "os", "browser")
        .agg(
            F.sum(F.col("quantity") * F.col("unit_price")).alias("amount_spent"),
            F.sum("positive_review").alias("review_score"),
            F.count("review_id").alias("review_count"),
        )
        .withColumnRenamed("customer_id", "customerid")
        .withColumn("insert_date", F.to_date(F.lit(args.date)))
    )
    fact.write.mode("overwrite").parquet(f"{args.out}/fact_movie_analytics")
    spark.stop()


if __name__ == "__main__":
    main()
