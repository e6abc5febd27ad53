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

from pyspark.sql import Column
from pyspark.sql import functions as F

VALUE_TOO_LONG = "value_too_long"
BAD_CHARACTER = "bad_character"

# review_logs column -> the byte width of the warehouse column that holds its values.
VALUE_BYTES: dict[str, int] = {"device": 64, "os": 64, "location": 64, "browser": 64}

# The control characters (Cc), as a Java regex character class (Spark's `rlike`).
CONTROL_CLASS = r"[\x{0}-\x{1F}\x{7F}-\x{9F}]"
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


def _bad_code(code: Column) -> Column:
    return (code < 0x20) | code.between(0x7F, 0x9F) | code.between(0xD800, 0xDFFF)


def referenced_bad_code_point(escaped: Column) -> Column:
    """The first code point a character reference in `escaped` (XML character data, not yet
    unescaped) names that `bad_character` covers; NULL when none does."""
    decimal = F.transform(
        F.regexp_extract_all(escaped, F.lit(_DECIMAL_REFERENCE), 1), lambda d: d.cast("bigint")
    )
    hexadecimal = F.transform(
        F.regexp_extract_all(escaped, F.lit(_HEX_REFERENCE), 1),
        lambda h: F.conv(h, 16, 10).cast("bigint"),
    )
    bad = F.filter(F.concat(decimal, hexadecimal), _bad_code)
    return F.when(F.instr(escaped, "&#") > 0, F.element_at(bad, 1))


def control_code_point(text: Column) -> Column:
    """The code point of the first control character in `text`; NULL when it has none."""
    found = F.regexp_extract(text, "(" + CONTROL_CLASS + ")", 1)
    return F.when(text.rlike(CONTROL_CLASS), F.ascii(found).cast("bigint"))


def code_point_text(code: Column) -> Column:
    return F.format_string("U+%04X", code)


def too_long(value: Column, column: str) -> Column:
    return F.octet_length(value) > VALUE_BYTES[column]
