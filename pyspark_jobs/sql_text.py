"""Spark SQL text for expressions that would otherwise cost hundreds of py4j round trips.

Every `F.*` call, every `F.lit` and every lambda of a higher-order function is at least one
round trip to the JVM (and the Java objects it leaves behind are released with more round
trips later). A map literal of 54 entries or a `transform`/`filter` chain built that way costs
hundreds; the same expression as SQL text is one `F.expr` call, parsed in the JVM into the
same expression tree. Only for large expressions: the Column API stays the default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F


def string_literal(text: str) -> str:
    """`text` as a Spark SQL string literal (the parser's default escaping: a backslash
    escapes the next character)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def column_reference(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def map_literal(table: Mapping[str, str]) -> Column:
    """A string -> string map literal, keys in sorted order (one `F.expr` call)."""
    entries = ", ".join(
        f"{string_literal(key)}, {string_literal(value)}" for key, value in sorted(table.items())
    )
    return F.expr(f"map({entries})")


def array_literal(items: Iterable[str]) -> Column:
    """A string array literal, in the given order (one `F.expr` call; `isin` over a list
    makes a py4j call per item)."""
    return F.expr(f"array({', '.join(string_literal(item) for item in items)})")
