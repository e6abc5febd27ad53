from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from pyspark_jobs.parse_values import strict_decimal, strict_int, strict_mm_dd_yyyy


def evaluate(spark, column_fn, values):
    df = spark.createDataFrame([(v,) for v in values], "t string")
    return [row[0] for row in df.select(column_fn(F.col("t"))).collect()]


def test_strict_int_accepts_only_whole_32_bit_numbers(spark):
    values = [
        "12",
        " 7 ",
        "-3",
        "+4",
        "0012",
        "12.7",
        "1e3",
        "abc",
        "",
        None,
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "12345678901",
        "1 2",
    ]
    assert evaluate(spark, strict_int, values) == [
        12,
        7,
        -3,
        4,
        12,
        None,
        None,
        None,
        None,
        None,
        2147483647,
        None,
        -2147483648,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999999999999.99999", "9999999999999.99999"),  # the largest DECIMAL(18,5)
        ("9999999999999.999994", "9999999999999.99999"),  # rounds down: fits
        ("9999999999999.999995", None),  # rounds up to 10^13: does not fit
        ("-9999999999999.999995", None),
        ("10000000000000", None),
        ("0.000005", "0.00001"),  # half up
        ("-0.000005", "-0.00001"),
        ("0.000004", "0.00000"),
        ("+7.", "7.00000"),
        (" 2.5 ", "2.50000"),
        ("2.1234567", None),  # seven decimals: not a plain number of the export
    ],
)
def test_strict_decimal_rounds_half_up_and_refuses_what_does_not_fit(spark, text, expected):
    (got,) = evaluate(spark, lambda c: strict_decimal(c, 18, 5), [text])
    assert (None if got is None else str(got)) == expected


def test_strict_decimal_parses_plain_numbers_and_rejects_the_rest(spark):
    values = ["2.55", "-1.25", "3", ".5", "1,5", "abc", "", None, "1e2", "123456789012345.5"]
    got = evaluate(spark, lambda c: strict_decimal(c, 18, 5), values)
    assert [None if v is None else str(v) for v in got] == [
        "2.55000",
        "-1.25000",
        "3.00000",
        "0.50000",
        None,
        None,
        None,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("04-25-2021", dt.date(2021, 4, 25)),
        (" 12-31-2020 ", dt.date(2020, 12, 31)),
        ("02-29-2020", dt.date(2020, 2, 29)),
        ("02-29-2000", dt.date(2000, 2, 29)),
        ("02-29-2021", None),
        ("02-29-1900", None),
        ("02-30-2021", None),
        ("04-31-2021", None),
        ("13-45-2021", None),
        ("00-10-2021", None),
        ("10-00-2021", None),
        ("2021-04-25", None),
        ("4-25-2021", None),
        ("04/25/2021", None),
        ("04-25-0000", None),
        ("", None),
        (None, None),
    ],
)
def test_strict_mm_dd_yyyy(spark, text, expected):
    assert evaluate(spark, strict_mm_dd_yyyy, [text]) == [expected]
