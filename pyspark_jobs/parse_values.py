"""Strict, native (JVM-side) parsing of raw strings into typed values.

Each function returns a Column that is NULL when the text is not a valid value. The text is
validated with a regular expression and plain arithmetic, not left to Spark's lenient casts
(`CAST('12.7' AS INT)` is 12) or to `to_date` (which, under the default time-parser policy,
throws on `13-45-2021` instead of returning NULL). The jobs run with
`spark.sql.ansi.enabled=false` (set by `spark_session.job_session`), so no cast throws.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

_INT_TEXT = r"^[+-]?[0-9]{1,10}$"
_DECIMAL_TEXT = r"^[+-]?([0-9]{1,15}(\.[0-9]{0,6})?|\.[0-9]{1,6})$"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def strict_int(text: Column) -> Column:
    """A 32-bit integer written in decimal digits (surrounding blanks allowed), else NULL."""
    trimmed = F.trim(text)
    as_long = trimmed.cast("bigint")
    return F.when(
        trimmed.rlike(_INT_TEXT) & as_long.between(_INT_MIN, _INT_MAX), as_long.cast("int")
    )


def strict_decimal(text: Column, precision: int, scale: int) -> Column:
    """A plain decimal number (`-1.25`, `3`, `.5`) as DECIMAL(precision, scale), else NULL.

    NULL too when the value does not fit the type. The text is validated by the regex (at
    most six decimals), then cast once: Spark rounds half up to `scale` decimals and gives
    NULL when the rounded value does not fit (the jobs run without ANSI mode). One cast, not
    a cast to DECIMAL(38,6), a range test and a second cast: the same values (the first step
    was exact), and one BigDecimal a value less on half a million purchases.
    """
    trimmed = F.trim(text)
    return F.when(trimmed.rlike(_DECIMAL_TEXT), trimmed.cast(f"decimal({precision},{scale})"))


def strict_mm_dd_yyyy(text: Column) -> Column:
    """A `MM-dd-yyyy` date (two-digit month and day, four-digit year >= 1), else NULL.

    Validated with arithmetic (month range, days in that month, leap years) and built with
    `make_date` only from valid parts: `13-45-2021`, `02-30-2021` or `2021-04-25` give NULL.
    """
    trimmed = F.trim(text)
    month = F.substring(trimmed, 1, 2).cast("int")
    day = F.substring(trimmed, 4, 2).cast("int")
    year = F.substring(trimmed, 7, 4).cast("int")
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_month = (
        F.when(month == 2, F.when(leap, 29).otherwise(28))
        .when(month.isin(4, 6, 9, 11), 30)
        .otherwise(31)
    )
    valid = (
        trimmed.rlike(r"^[0-9]{2}-[0-9]{2}-[0-9]{4}$")
        & month.between(1, 12)
        & (day >= 1)
        & (day <= days_in_month)
        & (year >= 1)
    )
    return F.when(valid, F.make_date(year, month, day))
