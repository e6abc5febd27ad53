"""classify_reviews: raw `movie_review.csv` -> staging `classified_movie_review`.

`positive_review` is 1 when the review contains the word `good` (DESIGN.md 2.3): words are
maximal runs of Unicode letters and digits, compared case-insensitively, so `Good!`,
`good.`, `<br />good` and `good-looking` count and `goodness` or `g00d` do not. The test is
one native regular expression; an empty or missing text is a valid review with 0.
Unusable records go to `rejects/movie_review` (malformed_row, bad_id, duplicate_key,
duplicate_identical, bad_customer_id).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pyspark_jobs.cli_args import parse_job_args
from pyspark_jobs.csv_input import read_csv_strings
from pyspark_jobs.job_metrics import metrics_document, write_metrics
from pyspark_jobs.parse_values import strict_int
from pyspark_jobs.rejects import (
    BAD_ID,
    CHECKED_BEFORE_DUPLICATES,
    DUPLICATE_IDENTICAL,
    DUPLICATE_KEY,
    INTERNAL_PREFIX,
    MALFORMED_ROW,
    finish_tagging,
    header_columns,
    missing_or_invalid,
    reject_duplicates,
    reject_malformed_rows,
    reject_when,
    rejects_frame,
    start_tagging,
    usable,
)
from pyspark_jobs.source_job import source_options, tag_and_count, write_outputs
from pyspark_jobs.spark_session import job_session

JOB = "classify_reviews"
SOURCE = "movie_review"
OUTPUT = "classified_movie_review"
CUSTOMER_ID, REVIEW_TEXT, REVIEW_ID = "cid", "review_str", "id_review"
REQUIRED_COLUMNS = (CUSTOMER_ID, REVIEW_TEXT, REVIEW_ID)
OPTIONS = source_options("movie_review.csv", OUTPUT)

# `good` with neither a letter nor a digit (any script) on either side; (?i) is enough for
# case: no non-ASCII character folds to g, o or d. The literal comes first and the character
# before it is checked by a lookbehind over the match: the regex engine then tries a cheap
# four-letter comparison at each position instead of classifying the previous character at
# every position (`GOOD_WORD_BOUNDARY_FIRST`, the same test written the obvious way, is three
# times slower on the real reviews, measured; a test checks that both decide alike).
# `_ASTRAL_LETTER` (U+1D400, already a letter, so the class is unchanged) is there for Java:
# a pattern holding a character outside the BMP makes its lookbehinds count code points, not
# UTF-16 units; without one, a letter or digit outside the BMP just before `good` (two units)
# is not seen and `\U0001D400good` would count as the word `good`.
_ASTRAL_LETTER = "\U0001d400"
_LETTER_OR_DIGIT = r"[\p{L}\p{N}" + _ASTRAL_LETTER + "]"
GOOD_WORD = "(?i)good(?<!" + _LETTER_OR_DIGIT + "good)(?!" + _LETTER_OR_DIGIT + ")"
GOOD_WORD_BOUNDARY_FIRST = "(?i)(?<!" + _LETTER_OR_DIGIT + ")good(?!" + _LETTER_OR_DIGIT + ")"

BAD_CUSTOMER_ID = "bad_customer_id"
# Every reason the tagging gives (rejects/movie_review), in the order they are checked.
REASONS = (MALFORMED_ROW, BAD_ID, DUPLICATE_KEY, DUPLICATE_IDENTICAL, BAD_CUSTOMER_ID)

_REVIEW_ID = INTERNAL_PREFIX + "review_id"
_CUSTOMER_ID = INTERNAL_PREFIX + "customer_id"
_POSITIVE = INTERNAL_PREFIX + "positive_review"
_EMPTY_TEXT = INTERNAL_PREFIX + "empty_text"


def extract(spark: SparkSession, args: argparse.Namespace) -> DataFrame:
    return read_csv_strings(spark, args.input, REQUIRED_COLUMNS)


def positive_review(text: Column) -> Column:
    """1 when `text` contains the word `good`, else 0 (also for an empty or NULL text)."""
    return F.when(text.rlike(GOOD_WORD), 1).otherwise(0)


def review_id() -> Column:
    return strict_int(F.col(REVIEW_ID))


def tag_reviews(raw: DataFrame, detect_duplicates: bool = True) -> DataFrame:
    """The raw records with typed ids and a reject reason (NULL for a usable review).

    `detect_duplicates=False` skips the duplicate window; only for input where
    `has_repeated_ids` finds no repeated review id, on which the window tags nothing."""
    header = header_columns(raw)
    df = (
        start_tagging(raw)
        .withColumn(_REVIEW_ID, review_id())
        .withColumn(_CUSTOMER_ID, strict_int(F.col(CUSTOMER_ID)))
    )
    df = reject_malformed_rows(df, len(header))
    df = reject_when(
        df,
        F.col(_REVIEW_ID).isNull(),
        BAD_ID,
        missing_or_invalid(F.col(REVIEW_ID), REVIEW_ID, "is not a 32-bit integer"),
    )
    if detect_duplicates:
        content = [c for c in header if c != REVIEW_ID]
        df = reject_duplicates(df, _REVIEW_ID, content, "review id")
    df = reject_when(
        df,
        F.col(_CUSTOMER_ID).isNull(),
        BAD_CUSTOMER_ID,
        missing_or_invalid(F.col(CUSTOMER_ID), CUSTOMER_ID, "is not a 32-bit integer"),
    )
    # Classified here, after the duplicate window's shuffle, so the regex runs in parallel
    # and only once: the tagged records are persisted and read by the counts and the write.
    text = F.col(REVIEW_TEXT)
    df = df.withColumn(_POSITIVE, positive_review(text)).withColumn(
        _EMPTY_TEXT, F.coalesce(F.trim(text), F.lit("")) == ""
    )
    return finish_tagging(df, REVIEW_ID)


def classify(tagged: DataFrame, run_date: dt.date) -> DataFrame:
    """The usable reviews as `classified_movie_review` rows."""
    return usable(tagged).select(
        F.col(_CUSTOMER_ID).alias("customer_id"),
        F.col(_REVIEW_ID).alias("review_id"),
        F.col(_POSITIVE).alias("positive_review"),
        F.lit(run_date).alias("insert_date"),
    )


def review_rejects(tagged: DataFrame, run_date: dt.date) -> DataFrame:
    return rejects_frame(tagged, SOURCE, run_date)


def load(tagged: DataFrame, args: argparse.Namespace, counts: Mapping[str, object]) -> None:
    write_outputs(
        classify(tagged, args.run_date), review_rejects(tagged, args.run_date), args, counts
    )


def main(argv: Sequence[str]) -> int:
    args = parse_job_args(JOB, argv, OPTIONS)
    spark = job_session(f"{JOB} {args.run_date}")
    raw = extract(spark, args)
    # The duplicate window shuffles every review with its text (most of this job's time,
    # measured); it runs only when the ids of the tagged reviews repeat.
    tagged, counts, tallies = tag_and_count(
        lambda detect: tag_reviews(raw, detect_duplicates=detect),
        args.input,
        _REVIEW_ID,
        CHECKED_BEFORE_DUPLICATES,
        REASONS,
        {
            "positive_reviews": F.col(_POSITIVE) == 1,
            "empty_review_text": F.col(_EMPTY_TEXT),
        },
    )
    load(tagged, args, counts)
    write_metrics(
        spark,
        args.metrics,
        metrics_document(
            JOB,
            args.run_date,
            sources={SOURCE: counts},
            outputs={OUTPUT: counts["rows_out"]},
            warnings={"empty_review_text": tallies["empty_review_text"]},
            checks={"positive_reviews": tallies["positive_reviews"]},
        ),
    )
    tagged.unpersist()
    return 0
