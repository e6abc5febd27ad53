"""parse_logs: the XML layout, fields, canonical locations, browsers, rejects, metrics."""

from __future__ import annotations

import datetime as dt

import pytest

from pyspark_jobs import parse_logs as job
from pyspark_jobs.rejects import CHECKED_BEFORE_DUPLICATES, has_repeated_ids
from pyspark_jobs.tests.conftest import assertDataFrameEqual, read_metrics, write_text

RUN_DATE = dt.date(2021, 10, 31)
RAW_SCHEMA = "id_review string, log string, _corrupt_record string"


def doc(*elements: str) -> str:
    return "<reviewlog><log>" + "".join(elements) + "</log></reviewlog>"


def el(name: str, text: str) -> str:
    return f"<{name}>{text}</{name}>"


VALID = doc(
    el("logDate", "04-25-2021"),
    el("device", "Mobile"),
    el("location", "Kansas"),
    el("os", "Apple iOS"),
    el("ipAddress", "9.200.232.57"),
    el("phoneNumber", "821-540-5777"),
)


def parse(spark, rows):
    raw = spark.createDataFrame([(*r, None) if len(r) == 2 else r for r in rows], RAW_SCHEMA)
    tagged = job.tag_logs(raw)
    logs = {r["log_id"]: r.asDict() for r in job.review_logs(tagged, RUN_DATE).collect()}
    rejects = {r["record_key"]: r.asDict() for r in job.log_rejects(tagged, RUN_DATE).collect()}
    assert len(logs) + len(job.log_rejects(tagged, RUN_DATE).collect()) == raw.count()
    return logs, rejects


def test_a_vendor_document_is_parsed_into_every_field(spark):
    logs, rejects = parse(spark, [("1", VALID)])
    assert rejects == {}
    assert logs[1] == {
        "log_id": 1,
        "log_date": dt.date(2021, 4, 25),
        "device": "Mobile",
        "os": "Apple iOS",
        "location": "Kansas",
        "browser": "Safari",
        "ip": "9.200.232.57",
        "phone_number": "821-540-5777",
        "insert_date": RUN_DATE,
    }


def test_elements_in_any_order_with_whitespace_entities_and_a_browser(spark):
    document = (
        '<?xml version="1.0"?>\n<reviewlog>\n  <log>\n'
        "    <browser>Opera &amp; Co &#233;&#x10FFFF;&#x00041;</browser>\n"
        "    <os>Linux</os> <device> Tablet </device>\n"
        "    <location>new york</location><logDate>12-31-2020</logDate>\n"
        "  </log>\n</reviewlog>\n"
    )
    logs, rejects = parse(spark, [("2", document)])
    assert rejects == {}
    row = logs[2]
    # The element wins over the OS default.
    assert row["browser"] == "Opera & Co é\U0010ffffA"
    assert (row["device"], row["os"], row["location"]) == ("Tablet", "Linux", "New York")
    assert row["log_date"] == dt.date(2020, 12, 31)
    assert (row["ip"], row["phone_number"]) == (None, None)


@pytest.mark.parametrize(
    ("os", "browser"),
    [
        ("Microsoft Windows", "Microsoft Edge"),
        ("Apple MacOS", "Safari"),
        ("Apple iOS", "Safari"),
        ("Google Android", "Google Chrome"),
        ("Linux", "Mozilla Firefox"),
        ("BeOS", None),
    ],
)
def test_browser_is_derived_from_the_os(spark, os, browser):
    logs, _ = parse(spark, [("1", doc(el("logDate", "01-02-2021"), el("os", os)))])
    assert (logs[1]["os"], logs[1]["browser"]) == (os, browser)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("Pensylvania", "Pennsylvania"),
        ("Lousiana", "Louisiana"),
        ("Massachussets", "Massachusetts"),
        ("California", "California"),
        (" texas ", "Texas"),
        ("District of Columbia", "District of Columbia"),
        ("Atlantis", "Atlantis"),  # unrecognised: kept as it is
    ],
)
def test_locations_are_canonical(spark, written, canonical):
    logs, _ = parse(spark, [("1", doc(el("logDate", "01-02-2021"), el("location", written)))])
    assert logs[1]["location"] == canonical


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        ("", "log is empty"),
        (None, "log is empty"),
        ("not xml at all", "not well-formed"),
        (VALID[:-5], "not well-formed"),  # truncated
        (doc("<logDate>04-25-2021</logdate>"), "not well-formed"),  # mismatched tag
        (doc(el("logDate", "04-25-2021"), "<device>Mobile"), "not well-formed"),  # unclosed
        (doc(el("logDate", "04-25-2021"), el("device", "a < b")), "not well-formed"),
        (doc(el("logDate", "04-25-2021"), el("device", "AT&T")), "not well-formed"),
        (doc(el("logDate", "04-25-2021"), el("device", "&#9999999;")), "not well-formed"),
        (doc(el("logDate", "04-25-2021"), el("device", "&#x110000;")), "not well-formed"),
        (doc(el("logDate", "04-25-2021"), el("device", "&nbsp;")), "not well-formed"),
        (doc(el("logDate", "04-25-2021"), '<device kind="x">M</device>'), "not well-formed"),
        ("<log>" + el("logDate", "04-25-2021") + "</log>", "not well-formed"),
        (
            doc(el("logDate", "04-25-2021"), el("device", "Mobile"), el("device", "Tablet")),
            "element <device> appears more than once",
        ),
    ],
)
def test_malformed_xml_is_rejected_not_fatal(spark, document, detail):
    logs, rejects = parse(spark, [("1", document), ("2", VALID)])
    assert list(logs) == [2]
    assert rejects["1"]["reason"] == "bad_xml"
    assert detail in rejects["1"]["detail"]


@pytest.mark.parametrize(
    ("date_element", "detail"),
    [
        ("", "logDate is missing"),
        (el("logDate", ""), "logDate is missing"),
        (el("logDate", "13-45-2021"), "logDate '13-45-2021' is not a valid MM-dd-yyyy date"),
        (el("logDate", "2021-04-25"), "is not a valid MM-dd-yyyy date"),
        (el("logDate", "02-30-2021"), "is not a valid MM-dd-yyyy date"),
    ],
)
def test_missing_and_invalid_dates_are_rejected(spark, date_element, detail):
    logs, rejects = parse(spark, [("1", doc(date_element, el("device", "Mobile")))])
    assert logs == {}
    assert rejects["1"]["reason"] == "bad_date"
    assert detail in rejects["1"]["detail"]


def test_ids_and_duplicates(spark):
    other = VALID.replace("Kansas", "Ohio")
    logs, _ = parse(
        spark,
        [
            ("x", VALID),
            ("", VALID),
            ("5", VALID),
            ("5", VALID),
            ("6", VALID),
            ("6", other),
            ("7", "<bad"),
            ("7", "<bad"),
        ],
    )
    assert list(logs) == [5]
    raw = spark.createDataFrame(
        [("5", VALID, None), ("5", VALID, None), ("6", VALID, None), ("6", other, None)],
        RAW_SCHEMA,
    )
    reasons = sorted(r["reason"] for r in job.log_rejects(job.tag_logs(raw), RUN_DATE).collect())
    assert reasons == ["duplicate_identical", "duplicate_key", "duplicate_key"]


def test_main_writes_logs_rejects_and_metrics(spark, tmp_path):
    unknown = doc(el("logDate", "01-02-2021"), el("os", "BeOS"), el("location", "Atlantis"))
    path = write_text(
        tmp_path / "log_reviews.csv",
        "id_review,log\n"
        f"1,{VALID}\n"
        f'2,"{unknown}"\n'
        "3,<reviewlog><log>\n"
        f"4,{doc(el('logDate', '13-45-2021'))}\n"
        f"1,{VALID}\n",
    )
    args = [
        "--run-date", "2021-10-31",
        "--input", path,
        "--output", str(tmp_path / "review_logs" / "dt=2021-10-31"),
        "--rejects", str(tmp_path / "rejects" / "log_reviews" / "dt=2021-10-31"),
        "--metrics", str(tmp_path / "_metrics" / "parse_logs"),
    ]  # fmt: skip
    assert job.main(args) == 0
    out = spark.read.parquet(str(tmp_path / "review_logs" / "dt=2021-10-31"))
    assert out.columns == [
        "log_id", "log_date", "device", "os", "location", "browser", "ip", "phone_number",
        "insert_date",
    ]  # fmt: skip
    assert sorted(r["log_id"] for r in out.collect()) == [1, 2]
    metrics = read_metrics(tmp_path / "_metrics" / "parse_logs")
    assert metrics["sources"]["log_reviews"] == {
        "rows_in": 5,
        "rows_out": 2,
        "rows_rejected": 3,
        "rejected_by_reason": {"bad_date": 1, "bad_xml": 1, "duplicate_identical": 1},
    }
    assert metrics["outputs"] == {"review_logs": 2}
    assert metrics["warnings"] == {"unknown_os_without_browser": 1, "unrecognized_location": 1}


def test_repeated_ids_decide_whether_the_duplicate_window_runs(spark):
    def repeated(rows):
        tagged = job.tag_logs(spark.createDataFrame(rows, RAW_SCHEMA), detect_duplicates=False)
        return has_repeated_ids(tagged, job._LOG_ID, CHECKED_BEFORE_DUPLICATES)

    assert not repeated([("1", VALID, None), ("x", VALID, None), ("y", VALID, None)])
    # `01` is id 1 and `<x/>` a bad_xml reject, a check that comes after the window.
    assert repeated([("1", VALID, None), ("01", "<x/>", None)])


def test_skipping_the_duplicate_window_changes_nothing_without_repeated_ids(spark):
    rows = [
        ("1", VALID, None),
        ("2", "<bad", None),
        ("x", VALID, None),
        ("", VALID, None),
        ("4", doc(el("device", "Mobile")), None),
        ("9", None, "9,<reviewlog>,extra"),
        ("9", None, "9,<reviewlog>,other"),
    ]
    raw = spark.createDataFrame(rows, RAW_SCHEMA)

    assertDataFrameEqual(
        job.tag_logs(raw, detect_duplicates=False), job.tag_logs(raw, detect_duplicates=True)
    )


EQUIVALENCE_DOCUMENTS = [
    None,
    "",
    VALID,
    "not xml",
    "  " + VALID + "\n",
    '<?xml version="1.0"?>' + VALID,
    doc(el("os", "Linux"), el("os", "Linux")),
    doc(el("os", "Linux"), el("osx", "a"), el("osx", "b")),  # unknown element may repeat
    doc(el("phoneNumber", "1"), el("device", "M"), el("phoneNumber", "2")),
    doc(el("device", "&lt;device&gt;"), el("logDate", "04-25-2021")),  # escaped, not a tag
    doc(el("device", "M"), "<device>"),  # repeated and malformed
    doc(el("logDate", "04-25-2021"), el("logdate", "04-26-2021")),  # names are case-sensitive
    doc(el("browser", ""), el("browser", "")),
    VALID + VALID,
    # The layout's fast path (no `&`, no forbidden control character) and its way out:
    doc(el("device", "Mo&amp;bile"), el("os", "a &#60; b &#x3C; c")),  # references: usable
    doc(el("device", "Mo&bile")),  # a bare `&`: not well-formed
    doc(el("device", "&bogus;")),
    doc(el("device", "Mo\x01bile")),  # a control character XML forbids
    doc(el("device", "Mo\tbi\r\nle")),  # tab and line ends are allowed
    "<reviewlog>\x0b<log>\x0c" + el("os", "Linux") + "</log></reviewlog>",  # \s: VT, FF
    '<?xml version="1.0" encoding="a&b"?>' + VALID,  # `&` outside any element text
    doc(el("device", "M"), "<", el("os", "L")),
    doc("<device>M</os>"),  # end tag of another element
]


def test_the_cheaper_document_test_decides_exactly_as_the_single_regex(spark):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([(d,) for d in EQUIVALENCE_DOCUMENTS], "log string")
    document = F.col("log")
    rows = frame.select(
        "log",
        F.coalesce(document.rlike(job.USABLE_DOCUMENT), F.lit(False)).alias("reference"),
        job.usable_document(document).alias("fast"),
    ).collect()
    assert [r["fast"] for r in rows] == [r["reference"] for r in rows]
    assert sum(r["fast"] for r in rows) == 10  # not vacuous: both answers occur


def test_the_written_out_character_classes_hold_exactly_the_ranges_they_replace(spark):
    """The layout's text class and the control class list single characters (a bitmap in
    Java); the same sets written with ranges decide alike on every character tried."""
    from pyspark.sql import functions as F

    from pyspark_jobs import warehouse_types

    codes = [*range(0x300), 0xFFFD, 0x1D400, 0x10FFFF]
    frame = spark.createDataFrame([(chr(c),) for c in codes], "c string")
    c = F.col("c")
    rows = frame.select(
        c.rlike("^" + job._TEXT_CHARACTER + "$").alias("text"),
        c.rlike(r"^[^<&\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}]$").alias("text_ranges"),
        c.rlike(warehouse_types.CONTROL_CLASS).alias("control"),
        c.rlike(r"[\x{0}-\x{1F}\x{7F}-\x{9F}]").alias("control_ranges"),
    ).collect()
    assert [r["text"] for r in rows] == [r["text_ranges"] for r in rows]
    assert [r["control"] for r in rows] == [r["control_ranges"] for r in rows]
    assert sum(r["text"] for r in rows) == len(codes) - 2 - 29  # not <, &, 29 controls
    assert sum(r["control"] for r in rows) == 65


def test_element_text_matches_the_element_regex_on_usable_documents(spark):
    from pyspark.sql import functions as F

    usable = [d for d in EQUIVALENCE_DOCUMENTS if d]
    usable.append(doc(el("location", "  Kansas "), el("device", " "), el("browser", "&amp;x")))
    frame = spark.createDataFrame([(d,) for d in usable], "log string")
    frame = frame.filter(job.usable_document(F.col("log")))
    for element in job.ELEMENTS.values():
        regex = f"<{element}>([^<]*+)</{element}>"
        rows = frame.select(
            F.trim(F.regexp_extract("log", regex, 1)).alias("reference"),
            job.raw_element_text(F.col("log"), element).alias("fast"),
        ).collect()
        assert [r["fast"] for r in rows] == [r["reference"] for r in rows], element


def test_a_repeated_element_is_named_in_the_reject(spark):
    repeated = doc(el("os", "Linux"), el("logDate", "04-25-2021"), el("os", "Linux"))
    logs, rejects = parse(spark, [("1", repeated), ("2", VALID)])
    assert list(logs) == [2]
    assert rejects["1"]["reason"] == "bad_xml"
    assert rejects["1"]["detail"] == "element <os> appears more than once"


def with_value(element: str, text: str) -> str:
    """VALID with the text of `element` replaced (added when VALID lacks the element)."""
    fields = {
        "logDate": "04-25-2021",
        "device": "Mobile",
        "location": "Kansas",
        "os": "Apple iOS",
        "ipAddress": "9.200.232.57",
        "phoneNumber": "821-540-5777",
    }
    fields[element] = text
    return doc(*[el(name, value) for name, value in fields.items()])


@pytest.mark.parametrize(
    ("element", "text", "reason", "detail"),
    [
        (
            "device",
            "M" * 65,
            "value_too_long",
            "device is 65 bytes of UTF-8; the warehouse column holds at most 64",
        ),
        # 33 characters, 66 bytes: Redshift counts bytes.
        ("location", "\u00e9" * 33, "value_too_long", "location is 66 bytes"),
        ("browser", "B" * 65, "value_too_long", "browser is 65 bytes"),
        ("os", "Linux&#1;", "bad_character", "os has a character reference to U+0001"),
        ("device", "Mo&#x7f;bile", "bad_character", "reference to U+007F"),
        ("device", "&#x0085;", "bad_character", "reference to U+0085"),
        ("device", "Mobile&#9;", "bad_character", "reference to U+0009"),
        (
            "location",
            "Kan&#xD800;sas",
            "bad_character",
            "location has a character reference to U+D800",
        ),
        (
            "ipAddress",
            "9.200.&#56320;",
            "bad_character",
            "ipAddress has a character reference to U+DC00",
        ),
        (
            "phoneNumber",
            "821\t540",
            "bad_character",
            "phoneNumber holds the control character U+0009",
        ),
        ("device", "Mob\u0085ile", "bad_character", "device holds the control character U+0085"),
        ("device", "Mobile\n", "bad_character", "device holds the control character U+000A"),
    ],
)
def test_values_the_warehouse_cannot_hold_are_rejected_with_a_reason(
    spark, element, text, reason, detail
):
    logs, rejects = parse(spark, [("1", with_value(element, text)), ("2", VALID)])
    assert list(logs) == [2]
    assert rejects["1"]["reason"] == reason
    assert detail in rejects["1"]["detail"], rejects["1"]["detail"]
    assert text in rejects["1"]["raw_record"] or "\\" in rejects["1"]["raw_record"]


def test_values_the_warehouse_can_hold_are_kept_whole(spark):
    fits = "\u00e9" * 32  # 64 bytes exactly
    rows = [
        ("1", with_value("device", "M" * 64)),
        ("2", with_value("location", fits)),
        ("3", with_value("device", "Mob&#233;le &#x1F600;")),
        ("4", with_value("location", "Atlantis")),
    ]
    logs, rejects = parse(spark, rows)
    assert rejects == {}
    assert logs[1]["device"] == "M" * 64
    assert logs[2]["location"] == fits
    assert logs[3]["device"] == "Mob\u00e9le \U0001f600"
    assert logs[4]["location"] == "Atlantis"  # not a US state: kept, counted as a warning
