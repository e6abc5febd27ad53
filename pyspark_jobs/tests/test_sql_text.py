"""The SQL-text builders give the same expressions as the Column API would."""

from __future__ import annotations

from pyspark.sql import functions as F

from pyspark_jobs import reference, sql_text, warehouse_types

ODD_TEXTS = [
    "",
    "plain",
    "it's",
    "back\\slash",
    "\\'",
    "%_\\%\\_",
    "tab\there",
    "é日本\U0001f600",
    "'; DROP",
]


def test_string_literals_read_back_as_the_same_text(spark):
    row = (
        spark.range(1)
        .select(
            *[F.expr(sql_text.string_literal(t)).alias(f"t{i}") for i, t in enumerate(ODD_TEXTS)]
        )
        .first()
    )
    assert [row[f"t{i}"] for i in range(len(ODD_TEXTS))] == ODD_TEXTS


def test_column_references_name_odd_columns(spark):
    frame = spark.createDataFrame([("x", "y")], "`a b` string, `we``ird` string")
    got = frame.select(
        F.expr(sql_text.column_reference("a b")), F.expr(sql_text.column_reference("we`ird"))
    ).first()
    assert tuple(got) == ("x", "y")


def test_map_literal_looks_up_like_create_map(spark):
    table = {"b": "2", "a": "1", "it's": "quote"}
    frame = spark.createDataFrame([("a",), ("it's",), ("zz",), (None,)], "k string")
    got = [r[0] for r in frame.select(sql_text.map_literal(table)[F.col("k")]).collect()]
    assert got == ["1", "quote", None, None]


def test_array_literal_keeps_odd_texts_in_order(spark):
    got = spark.range(1).select(sql_text.array_literal(iter(ODD_TEXTS))).first()[0]
    assert got == ODD_TEXTS


def test_known_locations_are_exactly_the_states(spark):
    names = [name for name, _, _ in reference.US_STATES]
    frame = spark.createDataFrame([(n,) for n in [*names, "Kansass", "kansas", None]], "v string")
    got = [r[0] for r in frame.select(reference.is_known_location(F.col("v"))).collect()]
    assert got == [True] * len(names) + [False, False, None]


def test_referenced_bad_code_points_follow_the_python_rule(spark):
    """Every boundary of the control and surrogate ranges, decimal and hex references."""
    codes = [0x0, 0x9, 0x1F, 0x20, 0x7E, 0x7F, 0x9F, 0xA0, 0xD7FF, 0xD800, 0xDFFF, 0xE000]
    texts = [f"a&#{c};b" for c in codes] + [f"&#x{c:X};" for c in codes]
    texts += ["no reference", "&amp;", "&#65;&#2;&#x1;", None]
    frame = spark.createDataFrame([(t,) for t in texts], "raw string")
    got = [r[0] for r in frame.select(warehouse_types.referenced_bad_code_point("raw")).collect()]
    expected = [c if warehouse_types.is_bad_code_point(c) else None for c in codes] * 2
    assert got == [*expected, None, None, 0x2, None]
