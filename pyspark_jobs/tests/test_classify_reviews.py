"""classify_reviews: the `good` rule, rejects, and the job end to end on tiny files."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from pyspark.sql import functions as F

from pyspark_jobs import classify_reviews as job
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.rejects import CHECKED_BEFORE_DUPLICATES, has_repeated_ids
from pyspark_jobs.tests.conftest import assertDataFrameEqual, read_metrics, write_text

RUN_DATE = dt.date(2021, 10, 31)
RAW_SCHEMA = "cid string, review_str string, id_review string, _corrupt_record string"

POSITIVE = [
    "Good!",
    "GOOD",
    "good.",
    "<br />good",
    "good-looking",
    "not good",
    "It was good",
    "gOoD, really",
    '"good"',
    "good_stuff",  # the underscore is neither a letter nor a digit
    "x\ngood\ny",
    "très good",
]
NEGATIVE = [
    "goodness",
    "goodbye",
    "g00d",
    "good2",
    "2good",
    "égood",  # é is a letter: one word `égood`
    "goodé",
    "日本good",  # CJK letters are letters too
    "\U0001d400good",  # letters and digits outside the BMP too (two UTF-16 units in Java)
    "\U0001d7cegood",
    "\U00020000good",
    "good\U0001d400",
    "go od",
    "bad",
    "",
    "   ",
    None,
]


def python_word_rule(text):
    """The rule of DESIGN.md 2.3 written independently: words are maximal runs of Unicode
    letters and digits; positive when one of them, lower-cased, is `good`."""
    words = re.findall(r"[^\W_]+", text or "")
    return int(any(word.lower() == "good" for word in words))


@pytest.mark.parametrize("text", POSITIVE + NEGATIVE)
def test_positive_review_follows_the_word_rule(spark, text):
    df = spark.createDataFrame([(text,)], "t string")
    (got,) = [r[0] for r in df.select(job.positive_review(F.col("t"))).collect()]
    assert got == python_word_rule(text)
    assert got == (1 if text in POSITIVE else 0)


# Texts around the edges of the lookbehind: letters and digits outside the BMP (two UTF-16
# units), combining marks, line ends, `good` at either end or repeated, mixed case.
BOUNDARY_TEXTS = [
    "\U0001d400good",  # MATHEMATICAL BOLD CAPITAL A before
    "good\U0001d400",  # ... after
    "\U0001d7cegood",  # MATHEMATICAL BOLD DIGIT ZERO before
    "\U00020000good",  # a CJK ideograph outside the BMP
    "e\u0301good",  # a combining mark (not a letter) after a letter
    "good\u0301",
    "\ud83d\ude00good\ud83d\ude00",  # an emoji: not a letter
    "goodgood",
    "agood good",
    "GoodGood.",
    "good",
    "\ngood",
    "xgood\ngood",
    "-good-",
    "ggood",
    "goo d",
    "gooD!",
    "\ud83d\ude00good",  # an emoji before: not a letter
]


@pytest.mark.parametrize("text", POSITIVE + NEGATIVE + BOUNDARY_TEXTS)
def test_the_literal_first_regex_decides_as_the_boundary_first_one(spark, text):
    """GOOD_WORD checks the character before `good` after matching it (faster); it must
    decide exactly as the boundary-first form on every text."""
    df = spark.createDataFrame([(text,)], "t string")
    t = F.col("t")
    row = df.select(
        F.coalesce(t.rlike(job.GOOD_WORD), F.lit(False)).alias("fast"),
        F.coalesce(t.rlike(job.GOOD_WORD_BOUNDARY_FIRST), F.lit(False)).alias("reference"),
    ).first()
    assert row["fast"] == row["reference"]


def test_the_boundary_texts_are_not_vacuous(spark):
    df = spark.createDataFrame([(t,) for t in BOUNDARY_TEXTS], "t string")
    got = [r[0] for r in df.select(F.col("t").rlike(job.GOOD_WORD)).collect()]
    assert 0 < sum(got) < len(got)


def raw_reviews(spark, rows):
    return spark.createDataFrame([(*r, None) if len(r) == 3 else r for r in rows], RAW_SCHEMA)


def test_tagging_rejects_bad_ids_and_conflicting_duplicates(spark):
    raw = raw_reviews(
        spark,
        [
            ("1", "good film", "10"),
            ("2", "meh", "abc"),  # non-integer review id
            ("3", "meh", None),  # missing review id
            ("4", "meh", "12.5"),
            ("x7", "good", "13"),  # non-integer customer id
            (None, "good", "14"),  # missing customer id
            ("5", "same", "20"),  # identical duplicates: one kept
            ("5", "same", "20"),
            ("5", "same", "20"),
            ("6", "first", "30"),  # conflicting duplicates: all rejected
            ("6", "second", "30"),
            ("7", None, "40"),  # NULL text: a valid review, 0
            ("8", "", "41"),  # empty text: a valid review, 0
            ("9", "short", None, "9,short"),  # a record the reader could not split
        ],
    )
    tagged = job.tag_reviews(raw)
    reviews = {
        r["review_id"]: (r["customer_id"], r["positive_review"])
        for r in job.classify(tagged, RUN_DATE).collect()
    }
    assert reviews == {10: (1, 1), 20: (5, 0), 40: (7, 0), 41: (8, 0)}

    rejects = sorted(
        ((r["reason"], r["record_key"]) for r in job.review_rejects(tagged, RUN_DATE).collect()),
        key=lambda pair: (pair[0], pair[1] or ""),
    )
    assert rejects == [
        ("bad_customer_id", "13"),
        ("bad_customer_id", "14"),
        ("bad_id", None),
        ("bad_id", "12.5"),
        ("bad_id", "abc"),
        ("duplicate_identical", "20"),
        ("duplicate_identical", "20"),
        ("duplicate_key", "30"),
        ("duplicate_key", "30"),
        ("malformed_row", None),
    ]
    # Every input row is either output or rejected, exactly once.
    assert len(reviews) + len(rejects) == raw.count()


def test_reject_rows_carry_the_raw_record_and_a_detail(spark):
    raw = raw_reviews(spark, [("1", 'said "hi", left', "x1"), ("9", "short", None, "9,short")])
    rejects = {r["reason"]: r for r in job.review_rejects(job.tag_reviews(raw), RUN_DATE).collect()}
    bad_id = rejects["bad_id"]
    assert json.loads(bad_id["raw_record"]) == {
        "cid": "1",
        "review_str": 'said "hi", left',
        "id_review": "x1",
    }
    assert bad_id["detail"] == "id_review is not a 32-bit integer"
    assert bad_id["source"] == "movie_review"
    assert bad_id["insert_date"] == RUN_DATE
    malformed = json.loads(rejects["malformed_row"]["raw_record"])
    assert malformed["_corrupt_record"] == "9,short"
    assert malformed["id_review"] is None


def job_args(tmp_path, input_path):
    return [
        "--run-date", RUN_DATE.isoformat(),
        "--input", input_path,
        "--output", str(tmp_path / "classified_movie_review" / "dt=2021-10-31"),
        "--rejects", str(tmp_path / "rejects" / "movie_review" / "dt=2021-10-31"),
        "--metrics", str(tmp_path / "_metrics" / "classify_reviews"),
    ]  # fmt: skip


def test_main_classifies_a_quoted_csv_and_reports_metrics(spark, tmp_path):
    path = write_text(
        tmp_path / "in" / "movie_review.csv",
        "cid,review_str,id_review\r\n"
        '13340,"Good, ""really""\r\ngood.",1\r\n'
        "16838,goodbye,2\r\n"
        "16838,goodbye,2\r\n"
        "17850,,3\r\n"
        "x,good,4\r\n"
        "1,a,b,c\r\n",
    )
    assert job.main(job_args(tmp_path, path)) == 0

    out = spark.read.parquet(str(tmp_path / "classified_movie_review" / "dt=2021-10-31"))
    expected = spark.createDataFrame(
        [(13340, 1, 1, RUN_DATE), (16838, 2, 0, RUN_DATE), (17850, 3, 0, RUN_DATE)],
        "customer_id int, review_id int, positive_review int, insert_date date",
    )
    assertDataFrameEqual(out, expected)
    rejects = spark.read.parquet(str(tmp_path / "rejects" / "movie_review" / "dt=2021-10-31"))
    assert sorted(r["reason"] for r in rejects.collect()) == [
        "bad_customer_id", "duplicate_identical", "malformed_row",
    ]  # fmt: skip
    metrics = read_metrics(tmp_path / "_metrics" / "classify_reviews")
    assert metrics["job"] == "classify_reviews"
    assert metrics["run_date"] == "2021-10-31"
    assert metrics["sources"]["movie_review"] == {
        "rows_in": 6,
        "rows_out": 3,
        "rows_rejected": 3,
        "rejected_by_reason": {"bad_customer_id": 1, "duplicate_identical": 1, "malformed_row": 1},
    }
    assert metrics["outputs"] == {"classified_movie_review": 3}
    assert metrics["warnings"] == {"empty_review_text": 1}
    assert metrics["checks"] == {"positive_reviews": 1}


def test_a_rerun_replaces_the_partition(spark, tmp_path):
    first = write_text(tmp_path / "a.csv", "cid,review_str,id_review\n1,good,1\n2,good,2\n")
    second = write_text(tmp_path / "b.csv", "cid,review_str,id_review\n3,bad,3\n")
    job.main(job_args(tmp_path, first))
    job.main(job_args(tmp_path, second))
    out = spark.read.parquet(str(tmp_path / "classified_movie_review" / "dt=2021-10-31"))
    assert [tuple(r)[:3] for r in out.collect()] == [(3, 3, 0)]


def test_header_without_records_is_unusable(spark, tmp_path):
    path = write_text(tmp_path / "movie_review.csv", "cid,review_str,id_review\n")
    with pytest.raises(UnusableInput, match="has a header but no records"):
        job.main(job_args(tmp_path, path))
    assert not (tmp_path / "classified_movie_review").exists()


def test_a_day_where_every_record_is_rejected_is_unusable(spark, tmp_path):
    path = write_text(tmp_path / "movie_review.csv", "cid,review_str,id_review\n1,x,a\n2,y,b\n")
    expected = r"every one of its 2 records was rejected \(bad_id: 2\)"
    with pytest.raises(UnusableInput, match=expected):
        job.main(job_args(tmp_path, path))
    assert not (tmp_path / "classified_movie_review").exists()


def test_repeated_ids_are_found_only_among_splittable_records_with_valid_ids(spark):
    def check(rows):
        tagged = job.tag_reviews(raw_reviews(spark, rows), detect_duplicates=False)
        return has_repeated_ids(tagged, job._REVIEW_ID, CHECKED_BEFORE_DUPLICATES)

    assert not check([("1", "a", "10"), ("2", "b", "11"), ("3", "c", "x"), ("4", "d", "x")])
    assert not check([("1", "a", "10"), ("9", "a", "10", "9,a,10,extra")])
    assert check([("1", "a", "10"), ("2", "b", " 10")])
    # A copy a later check rejects (bad customer id) is still a copy: the window runs
    # before that check and rejects both.
    assert check([("1", "a", "10"), ("x", "a", "10")])


def test_main_finds_duplicates_that_a_later_check_also_rejects(spark, tmp_path):
    path = write_text(
        tmp_path / "movie_review.csv",
        "cid,review_str,id_review\n1,good,10\nx,good,10\n2,fine,11\n",
    )
    assert job.main(job_args(tmp_path, path)) == 0
    metrics = read_metrics(tmp_path / "_metrics" / "classify_reviews")
    assert metrics["sources"]["movie_review"]["rejected_by_reason"] == {"duplicate_key": 2}


def test_skipping_the_window_changes_nothing_without_repeated_keys(spark):
    raw = raw_reviews(spark, [("1", "good", "10"), ("x", "bad", "11"), ("3", None, "z")])
    with_window = job.tag_reviews(raw)
    without = job.tag_reviews(raw, detect_duplicates=False)
    assertDataFrameEqual(without, with_window)
