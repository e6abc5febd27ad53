"""source_job.tag_and_count: the counts observed in the pass that fills the cache are the
counts of a query over the tagged records, and anything it cannot vouch for is counted by
the query."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from pyspark_jobs import source_job
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.rejects import REASON
from pyspark_jobs.tests.conftest import assertDataFrameEqual

ROWS = [
    (1, None, "a"),
    (2, None, "b"),
    (3, "bad_id", "c"),
    (4, "bad_date", None),
    (5, "bad_date", "d"),
    (6, None, None),
    (None, "malformed_row", "e"),
]
SCHEMA = f"id int, {REASON} string, value string"


def tallies():
    """Conditions counted over the usable rows (Columns need the session: built in a test)."""
    return {"without_value": F.col("value").isNull(), "is_a": F.col("value") == "a"}


def tagger(spark, rows):
    """A `tag(detect_duplicates)` over fixed rows, recording which way it was called."""
    calls = []

    def tag(detect: bool):
        calls.append(detect)
        return spark.createDataFrame(rows, SCHEMA)

    return tag, calls


def test_observed_counts_equal_the_counting_query(spark, monkeypatch):
    expected_counts, expected_found = source_job.summarize(
        spark.createDataFrame(ROWS, SCHEMA), "input", tallies()
    )

    def no_query(*args):
        raise AssertionError("counted by a query: the observed counts were not used")

    monkeypatch.setattr(source_job, "summarize", no_query)
    tag, calls = tagger(spark, ROWS)
    tagged, counts, found = source_job.tag_and_count(
        tag,
        "input",
        "id",
        ("malformed_row", "bad_id"),
        ("malformed_row", "bad_id", "bad_date"),
        tallies(),
    )
    assert calls == [False], "no repeated id: the window never runs"
    assert (counts, found) == (expected_counts, expected_found)
    assert counts["rows_in"] == 7 and counts["rejected_by_reason"] == {
        "bad_date": 2,
        "bad_id": 1,
        "malformed_row": 1,
    }
    assert found == {"without_value": 1, "is_a": 1}  # over the usable rows only
    assertDataFrameEqual(tagged, spark.createDataFrame(ROWS, SCHEMA))


def test_a_reason_not_listed_is_counted_by_the_query(spark):
    tag, _ = tagger(spark, ROWS)
    _, counts, _ = source_job.tag_and_count(
        tag, "input", "id", ("malformed_row", "bad_id"), ("malformed_row", "bad_id"), tallies()
    )
    assert counts["rejected_by_reason"]["bad_date"] == 2
    assert counts["rows_in"] == counts["rows_out"] + counts["rows_rejected"] == 7


def test_a_repeated_id_tags_again_with_the_window_and_counts_that(spark):
    repeated = [*ROWS, (1, None, "again")]
    retagged = [*ROWS, (1, "duplicate_key", "again")]
    calls = []

    def tag(detect: bool):
        calls.append(detect)
        return spark.createDataFrame(retagged if detect else repeated, SCHEMA)

    _, counts, _ = source_job.tag_and_count(
        tag, "input", "id", ("malformed_row", "bad_id"), ("bad_date",), tallies()
    )
    assert calls == [False, True]
    assert counts["rejected_by_reason"]["duplicate_key"] == 1
    assert counts["rows_in"] == 8


def test_every_record_rejected_is_unusable_input(spark):
    rows = [(1, "bad_date", "a"), (2, "bad_date", "b")]
    tag, _ = tagger(spark, rows)
    with pytest.raises(UnusableInput, match="every one of its 2 records was rejected"):
        source_job.tag_and_count(tag, "input", "id", (), ("bad_date",), {})


def test_a_header_without_records_is_counted_without_waiting_for_metrics(spark):
    """Spark skips an empty input's scan and the observing node with it: no metrics, so the
    records are counted by the query (which finds none), never waited for."""
    tag, _ = tagger(spark, [])
    with pytest.raises(UnusableInput, match="has a header but no records"):
        source_job.tag_and_count(tag, "input", "id", (), ("bad_date",), tallies())
