"""Naive pipeline, job 1 of 3: classify the reviews the way the original brief does.

A benchmark baseline only (issue 14), not part of the product: `Tokenizer` (lower-case, split
on whitespace) -> `StopWordsRemover` -> `array_contains(words, "good")` -> positive review.
It is written like a plain first attempt: ids cast with `cast("int")` (a bad id silently
becomes NULL), no rejects, no duplicate handling, no checks. `Tokenizer` misses `good.`,
`good,` and the like (see BENCHMARKS.md, benchmark 2), so its answers are wrong too.

    spark-submit --master local[2] benchmarks/naive/classify_reviews.py \
        --reviews DIR/movie_review.csv.gz --out OUT --date 2021-10-31

Writes OUT/classified_movie_review (Parquet: customer_id, review_id, positive_review,
insert_date).
"""

from __future__ import annotations

import argparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def ml_feature(spark: SparkSession, name: str, input_col: str, output_col: str):
    """`Tokenizer` / `StopWordsRemover`, built in the JVM through py4j.

    A first attempt would write `from pyspark.ml.feature import Tokenizer`; those Python classes
    only wrap these same JVM transformers, but importing them needs numpy, which the project's
    venv does not have. What runs is identical."""
    transformer = getattr(spark._jvm.org.apache.spark.ml.feature, name)()
    return transformer.setInputCol(input_col).setOutputCol(output_col)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", required=True, help="movie_review.csv[.gz]")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--date", required=True, help="run date, YYYY-MM-DD")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("naive classify_reviews").getOrCreate()
    # Review texts contain quoted newlines and doubled quotes: multiLine + escape, as the
    # vendor file needs. A gzip file is one partition either way.
    reviews = spark.read.csv(args.reviews, header=True, multiLine=True, escape='"')
    # Tokenizer fails on a NULL text.
    df = reviews.select(
        F.col("cid").cast("int").alias("customer_id"),
        F.col("id_review").cast("int").alias("review_id"),
        F.coalesce(F.col("review_str"), F.lit("")).alias("review_str"),
    )
    words = ml_feature(spark, "Tokenizer", "review_str", "words").transform(df._jdf)
    kept = ml_feature(spark, "StopWordsRemover", "words", "filtered").transform(words)
    classified = DataFrame(kept, spark).select(
        "customer_id",
        "review_id",
        F.array_contains("filtered", "good").cast("int").alias("positive_review"),
        F.to_date(F.lit(args.date)).alias("insert_date"),
    )
    classified.write.mode("overwrite").parquet(f"{args.out}/classified_movie_review")
    spark.stop()


if __name__ == "__main__":
    main()
