"""Benchmark 2: the project's classify_reviews transform against the original brief's
approach (`Tokenizer` + `StopWordsRemover` + `array_contains(words, "good")`), on the same
local Spark, same input, one run each after a warm-up; then how many reviews the two
classify differently, and why.

Input: `BENCH_REVIEW_ROWS` (default 1,000,000) generated reviews of the real files' average
length (about 0.9 KB). The CSV is read once with the project's reader and staged as Parquet
in 8 files (not timed; the `multiLine` CSV read cannot be split and would time one core's
CSV parsing for both sides).

The project side is what the job does: `tag_reviews` without the duplicate window, a pass
over its ids (`has_repeated_ids`: the job makes it over the persisted tagged frame) deciding
whether the window must run after all, then `classify`. The baseline
casts the ids and classifies with the ML feature transformers. Both write their
(customer_id, review_id, positive_review, insert_date) rows as Parquet, compared afterwards.

Run from the repository root: `.venv/bin/python benchmarks/bench_classify.py`
"""

from __future__ import annotations

import datetime as dt
import os
import re
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

ROWS = int(os.environ.get("BENCH_REVIEW_ROWS", "1000000"))
WARMUP_ROWS = 20000


def ml_feature(spark, name: str, input_col: str, output_col: str):
    """A Spark ML feature transformer (`Tokenizer`, `StopWordsRemover`) built in the JVM.

    The `pyspark.ml` wrappers only forward to these JVM objects, but importing them needs
    numpy, which the project's venv does not have; the transform that runs is the same."""
    transformer = getattr(spark._jvm.org.apache.spark.ml.feature, name)()
    return transformer.setInputCol(input_col).setOutputCol(output_col)


def brief_approach(raw, run_date):
    """The brief's classifier: whitespace tokens, stop words removed, `good` among them."""
    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    spark = raw.sparkSession
    # Tokenizer throws on a NULL text; the brief's solutions fill it with ''.
    df = raw.select(
        F.col("cid").cast("int").alias("customer_id"),
        F.col("id_review").cast("int").alias("review_id"),
        F.coalesce(F.col("review_str"), F.lit("")).alias("text"),
    )
    words = ml_feature(spark, "Tokenizer", "text", "words").transform(df._jdf)
    kept = ml_feature(spark, "StopWordsRemover", "words", "kept").transform(words)
    return (
        DataFrame(kept, spark)
        .select(
            "customer_id",
            "review_id",
            F.array_contains("kept", "good").cast("int").alias("positive_review"),
            F.lit(run_date).alias("insert_date"),
        )
        .filter(F.col("customer_id").isNotNull() & F.col("review_id").isNotNull())
    )


def project_job(raw, run_date):
    from pyspark_jobs.classify_reviews import _REVIEW_ID, classify, tag_reviews
    from pyspark_jobs.rejects import CHECKED_BEFORE_DUPLICATES, has_repeated_ids

    tagged = tag_reviews(raw, detect_duplicates=False)
    if has_repeated_ids(tagged, _REVIEW_ID, CHECKED_BEFORE_DUPLICATES):
        tagged = tag_reviews(raw, detect_duplicates=True)
    return classify(tagged, run_date)


def stage(spark, csv_path: Path, folder: Path):
    from pyspark_jobs.classify_reviews import REQUIRED_COLUMNS
    from pyspark_jobs.csv_input import read_csv_strings

    if not (folder / "_SUCCESS").is_file():
        read_csv_strings(spark, str(csv_path), REQUIRED_COLUMNS).repartition(8).write.mode(
            "overwrite"
        ).parquet(str(folder))
    return spark.read.parquet(str(folder))


def disagreements(spark, raw, mine, theirs, name: str) -> None:
    """How many reviews the two classify differently, grouped by the whitespace token that
    holds the word `good` (the punctuation or markup Tokenizer keeps glued to it)."""
    from pyspark.sql import functions as F

    from pyspark_jobs.classify_reviews import GOOD_WORD

    joined = mine.alias("m").join(theirs.alias("t"), "review_id")
    differ = joined.filter(F.col("m.positive_review") != F.col("t.positive_review"))
    only_project = differ.filter(F.col("m.positive_review") == 1).count()
    only_brief = differ.filter(F.col("t.positive_review") == 1).count()
    figure(f"classify.{name}.reviews_compared", joined.count())
    figure(f"classify.{name}.positive_project_only", only_project)
    figure(f"classify.{name}.positive_brief_only", only_brief)
    figure(f"classify.{name}.disagreements", only_project + only_brief)
    # The first whitespace-separated token containing the word `good`, lower-cased: what
    # Tokenizer produced instead of the bare token `good`.
    token = F.lower(F.regexp_extract(F.col("review_str"), r"(?i)(\S*" + GOOD_WORD[4:] + r"\S*)", 1))
    texts = raw.select(F.col("id_review").cast("int").alias("review_id"), "review_str")
    why = differ.select("review_id").join(texts, "review_id").select(token.alias("token"))
    say(f"why they disagree on {name} (the token Tokenizer made of `good`, most frequent):")
    for row in why.groupBy("token").count().orderBy(F.desc("count"), "token").limit(12).collect():
        say(f"    {row['count']:>8,}  {row['token']!r}")
    word = re.compile(r"(?<![^\W_])good(?![^\W_])", re.IGNORECASE)  # the same word test
    for row in differ.select("review_id").join(texts, "review_id").limit(3).collect():
        text = row["review_str"]
        found = word.search(text)
        at = found.start() if found else 0
        say(f"    e.g. review {row['review_id']}: ...{text[max(0, at - 40) : at + 30]!r}...")


def classifier_alone(raw, name: str) -> None:
    """The two classifiers alone (no ids, no reject tagging, no duplicate check), noop write,
    one round each."""
    from pyspark.sql import functions as F

    from pyspark_jobs.classify_reviews import positive_review

    project_only = raw.select(positive_review(F.col("review_str")).alias("p"))
    brief_only = brief_approach(raw, dt.date.fromisoformat(RUN_DATE)).select("positive_review")
    times = timed_rounds(
        {
            label: (lambda df=df: df.write.format("noop").mode("overwrite").save())
            for label, df in (("project_regex", project_only), ("brief_tokenizer", brief_only))
        },
        repeats=1,  # a diagnostic, not a target: one round keeps the total under 15 minutes
    )
    for label, value in times.items():
        figure(f"classify.{name}.alone.{label}_seconds", f"{value:.2f}", "s")
    ratio = times["brief_tokenizer"] / times["project_regex"]
    figure(f"classify.{name}.alone.speedup_vs_brief", f"{ratio:.2f}", "x")


def compare(spark, raw, name: str, work: Path, run_date) -> None:
    rows = raw.count()
    say(f"\n== classify_reviews on {name}: {rows:,} rows ==")
    builds = {"project": project_job, "brief": brief_approach}
    targets = {label: work / f"{name}-{label}" for label in builds}
    say(f"each side classifies and writes Parquet, {REPEATS} interleaved rounds")
    seconds = timed_rounds(
        {
            label: (
                lambda b=b, t=targets[label]: (
                    b(raw, run_date).write.mode("overwrite").parquet(str(t))
                )
            )
            for label, b in builds.items()
        }
    )
    outputs = {label: spark.read.parquet(str(t)) for label, t in targets.items()}
    for label, value in seconds.items():
        figure(f"classify.{name}.{label}_seconds", f"{value:.2f}", "s")
    figure(f"classify.{name}.speedup_vs_brief", f"{seconds['brief'] / seconds['project']:.2f}", "x")
    figure(f"classify.{name}.project_rows_per_second", f"{rows / seconds['project']:,.0f}")
    disagreements(spark, raw, outputs["project"], outputs["brief"], name)


def main() -> int:
    announce({"BENCH_REVIEW_ROWS": ROWS, "SHARED_DATA_DIR": SHARED_DATA, "DRIVER_BIN": DRIVER})
    run_date = dt.date.fromisoformat(RUN_DATE)
    work = OUT / "classify"
    work.mkdir(parents=True, exist_ok=True)
    generated = generated_inputs(ROWS)
    spark = local_spark("bench classify_reviews")
    raw, _ = timed(
        f"stage {ROWS:,} generated reviews as Parquet (not counted)",
        lambda: stage(spark, generated / "movie_review.csv", work / f"staged-generated-{ROWS}"),
    )
    say("warm-up on 20,000 rows, not counted")
    warm = raw.limit(WARMUP_ROWS).cache()
    warm.count()
    for df in (project_job(warm, run_date), brief_approach(warm, run_date)):
        df.write.format("noop").mode("overwrite").save()
    warm.unpersist()

    real, _ = timed(
        "stage the real 100,000 reviews as Parquet (not counted)",
        lambda: stage(spark, require_shared("movie_review.csv.gz"), work / "staged-real"),
    )
    compare(spark, real, "real_100k", work, run_date)
    name = f"generated_{ROWS // 1000}k"
    compare(spark, raw, name, work, run_date)
    classifier_alone(raw, name)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
