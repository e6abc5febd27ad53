"""What the warehouse can hold, checked in the jobs so that an odd value never fails a load.

The warehouse DDL (`sql/warehouse/tables.sql`, PostgreSQL and Redshift alike) declares every
dimension value `varchar(64)`. Redshift counts a varchar's length in bytes (PostgreSQL in
characters), so the limit is checked on the UTF-8 bytes: what fits here fits both. A test
reads the DDL and compares it with `VALUE_BYTES`, so the two cannot drift apart.

A value the warehouse cannot hold is rejected with a reason, never cut or cleaned:

- `value_too_long`: more than `VALUE_BYTES[column]` bytes of UTF-8;
- `bad_character`: a control character (Unicode category Cc: U+0000-U+001F, U+007F-U+009F,
  tab and line ends included) or a lone surrogate (U+D800-U+DFFF, only possible through a
  character reference such as `&#xD800;`, which Spark would turn into `?` silently).
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column
from pyspark.sql import functions as F

from pyspark_jobs.sql_text import column_reference, string_literal

VALUE_TOO_LONG = "value_too_long"
BAD_CHARACTER = "bad_character"

# review_logs column -> the byte width of the warehouse column that holds its values.
VALUE_BYTES: dict[str, int] = {"device": 64, "os": 64, "location": 64, "browser": 64}


def java_char_class(code_points: Iterable[int], negated: bool = False) -> str:
    """A Java regex character class of exactly `code_points` (each below U+0100), every one
    written out: Java compiles a class of single characters below U+0100 into one bitmap
    lookup, and a class with ranges into a chain of predicates called per character (two to
    three times slower per document for the vendor layout regex, measured)."""
    codes = sorted(set(code_points))
    assert all(0 <= c < 0x100 for c in codes), "only Latin-1 code points make a bitmap"
    return "[" + ("^" if negated else "") + "".join(f"\\x{c:02X}" for c in codes) + "]"


# The control characters (Cc: U+0000-U+001F, U+007F-U+009F), as a Java regex character class
# (Spark's `rlike`).
CONTROL_CODE_POINTS = (*range(0x00, 0x20), *range(0x7F, 0xA0))
CONTROL_CLASS = java_char_class(CONTROL_CODE_POINTS)
_DECIMAL_REFERENCE = r"&#0*([0-9]{1,7});"
_HEX_REFERENCE = r"&#[xX]0*([0-9A-Fa-f]{1,6});"


def is_bad_code_point(code: int) -> bool:
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def unloadable_reason(column: str, value: object) -> str | None:
    """Why the warehouse cannot hold `value` of `column` (a reason above), or None. The same
    rule as the Spark checks, for values collected on the driver (dimension registries)."""
    if value is None or not isinstance(value, str):
        return None
    if any(is_bad_code_point(ord(c)) for c in value):
        return BAD_CHARACTER
    width = VALUE_BYTES.get(column)
    if width is not None and len(value.encode("utf-8", "surrogatepass")) > width:
        return VALUE_TOO_LONG
    return None


def referenced_bad_code_point(escaped_column: str) -> Column:
    """The first code point a character reference in the column `escaped_column` (XML
    character data, not yet unescaped) names that `bad_character` covers, decimal
    references before hexadecimal ones; NULL when none does. SQL text: the same expression
    through the Column API (two `transform`s and a `filter` with their lambdas) costs some
    170 py4j round trips per column."""
    text = column_reference(escaped_column)
    decimal = (
        f"transform(regexp_extract_all({text}, {string_literal(_DECIMAL_REFERENCE)}, 1), "
        "d -> CAST(d AS BIGINT))"
    )
    hexadecimal = (
        f"transform(regexp_extract_all({text}, {string_literal(_HEX_REFERENCE)}, 1), "
        "h -> CAST(conv(h, 16, 10) AS BIGINT))"
    )
    bad_code = f"c -> c < {0x20} OR c BETWEEN {0x7F} AND {0x9F} OR c BETWEEN {0xD800} AND {0xDFFF}"
    return F.expr(
        f"CASE WHEN instr({text}, '&#') > 0 "
        f"THEN element_at(filter(concat({decimal}, {hexadecimal}), {bad_code}), 1) END"
    )


def control_code_point(text: Column) -> Column:
    """The code point of the first control character in `text`; NULL when it has none."""
    found = F.regexp_extract(text, "(" + CONTROL_CLASS + ")", 1)
    return F.when(text.rlike(CONTROL_CLASS), F.ascii(found).cast("bigint"))


def code_point_text(code: Column) -> Column:
    return F.format_string("U+%04X", code)


def too_long(value: Column, column: str) -> Column:
    return F.octet_length(value) > VALUE_BYTES[column]
