"""parse_logs: raw `log_reviews.csv` -> staging `review_logs`.

Each `log` is one small XML document in the vendor's flat layout:

    <reviewlog><log><logDate>04-25-2021</logDate><device>Mobile</device>...</log></reviewlog>

Spark's `xpath_*` functions throw on a malformed document (one bad row would fail the job)
and parse each document once per call. Instead the whole document is checked against one
strict regular expression of that layout (well-formed flat elements in any order, text
without `<`, `&` only in the predefined entities or character references, whitespace
between tags allowed) and, when it matches, searched for a known element's start tag
occurring twice (plain substring searches). In a document that passed, each element is cut
out with substring searches (no regex) and unescaped in the JVM: all native, no Python UDF.
A document that fails is a `bad_xml` reject.

Unusable records go to `rejects/log_reviews` (malformed_row, bad_id, duplicate_key,
duplicate_identical, bad_xml, bad_date, and bad_character / value_too_long for a value the
warehouse cannot hold: see warehouse_types).
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pyspark_jobs import reference, warehouse_types
from pyspark_jobs.cli_args import parse_job_args
from pyspark_jobs.csv_input import read_csv_strings
from pyspark_jobs.job_metrics import metrics_document, write_metrics
from pyspark_jobs.parse_values import strict_int, strict_mm_dd_yyyy
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
from pyspark_jobs.warehouse_types import java_char_class

JOB = "parse_logs"
SOURCE = "log_reviews"
OUTPUT = "review_logs"
LOG_ID, LOG = "id_review", "log"
REQUIRED_COLUMNS = (LOG_ID, LOG)
OPTIONS = source_options("log_reviews.csv", OUTPUT)

# review_logs column -> the XML element it comes from.
ELEMENTS = {
    "log_date": "logDate",
    "device": "device",
    "os": "os",
    "location": "location",
    "browser": "browser",
    "ip": "ipAddress",
    "phone_number": "phoneNumber",
}

# Character data: no `<`, no control character XML 1.0 forbids, `&` only as an entity or a
# character reference. References are bounded to code points <= U+10FFFF (decimal: at most
# six significant digits; hex: at most 10FFFF): the JVM unescaper throws on larger ones,
# which would fail the job instead of rejecting the record.
_CHAR_REFERENCE = r"#0*[0-9]{1,6}|#x0*(?:10|[0-9A-Fa-f])?[0-9A-Fa-f]{1,4}"
# The control characters XML 1.0 forbids: U+0000-U+001F but tab, line feed, carriage return.
XML_FORBIDDEN_CONTROLS = (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))
# One class of single characters (a bitmap in Java, see java_char_class): the real documents
# pass the layout regex in 1.8 us instead of 4.7 us each (C2; 3.0 against 7.2 us with C1 only).
_TEXT_CHARACTER = java_char_class((ord("<"), ord("&"), *XML_FORBIDDEN_CONTROLS), negated=True)
_TEXT = "(?:" + _TEXT_CHARACTER + "++|&(?:lt|gt|amp|quot|apos|" + _CHAR_REFERENCE + r");)*+"
_ELEMENT = r"<(?<tag>[A-Za-z_][A-Za-z0-9_.-]*+)>" + _TEXT + r"</\k<tag>>"
# Possessive quantifiers throughout: no backtracking, linear time on any input.
VENDOR_LAYOUT = (
    r"^\s*+(?:<\?xml[^<>?]*+\?>\s*+)?<reviewlog>\s*+<log>\s*+(?:"
    + _ELEMENT
    + r"\s*+)*+</log>\s*+</reviewlog>\s*+$"
)
# Any start tag of a known element (group 1 names it).
KNOWN_START_TAG = "<(" + "|".join(ELEMENTS.values()) + ")>"
# A known element that occurs twice is ambiguous (which value is meant?): group 1 names it.
REPEATED_ELEMENT = r"<(?<known>" + "|".join(ELEMENTS.values()) + r")>(?s:.*?)<\k<known>>"
# The test every document goes through as one regex: the layout, and no known element
# repeated. The job evaluates the same test more cheaply (`usable_document`); this form is the
# reference a unit test compares it with.
USABLE_DOCUMENT = r"^(?!(?s:.*?)" + REPEATED_ELEMENT + r")" + VENDOR_LAYOUT[1:]
_XML_UNESCAPER = "org.apache.commons.text.StringEscapeUtils"

BAD_XML, BAD_DATE = "bad_xml", "bad_date"
# Every reason the tagging gives (rejects/log_reviews), in the order they are checked.
REASONS = (
    MALFORMED_ROW,
    BAD_ID,
    DUPLICATE_KEY,
    DUPLICATE_IDENTICAL,
    BAD_XML,
    BAD_DATE,
    warehouse_types.BAD_CHARACTER,
    warehouse_types.VALUE_TOO_LONG,
)

_LOG_ID = INTERNAL_PREFIX + "log_id"
_USABLE_XML = INTERNAL_PREFIX + "usable_xml"
_LOG_DATE = INTERNAL_PREFIX + "date"
_RAW_TEXT = INTERNAL_PREFIX + "raw_"
_BAD_REFERENCE = INTERNAL_PREFIX + "bad_reference_"
_PROBLEM = INTERNAL_PREFIX + "value_problem"
_ANY_CONTROL = INTERNAL_PREFIX + "any_control"
# The text fields of review_logs: none may hold a character the warehouse (or Parquet's UTF-8)
# cannot hold; the dimension values among them also have a width (warehouse_types).
TEXT_COLUMNS = ("device", "os", "location", "browser", "ip", "phone_number")


def extract(spark: SparkSession, args: argparse.Namespace) -> DataFrame:
    return read_csv_strings(spark, args.input, REQUIRED_COLUMNS)


def repeats_known_element(document: Column) -> Column:
    """Whether the start tag of a known element occurs twice: what `REPEATED_ELEMENT` finds.

    One regex pass collects every known start tag (`KNOWN_START_TAG`, non-overlapping: a tag
    holds no `<`, so no occurrence hides another); a repeat makes the list longer than its
    distinct values. One scan of the document instead of two substring searches per element
    (`UTF8String.indexOf` compares bytes at every position: 14 scans were about a fifth of
    the job's CPU, measured)."""
    tags = F.regexp_extract_all(document, F.lit(KNOWN_START_TAG), 1)
    return F.size(tags) != F.size(F.array_distinct(tags))


def usable_document(document: Column) -> Column:
    """`document RLIKE USABLE_DOCUMENT`, never NULL. The layout regex runs first; the
    repeated-element test only for the documents that passed it (AND short-circuits)."""
    return F.coalesce(
        document.rlike(VENDOR_LAYOUT) & ~repeats_known_element(document), F.lit(False)
    )


def raw_element_text(document: Column, element: str) -> Column:
    """The trimmed text of `<element>` (still escaped); '' when absent or empty.

    Meant for a document that passed `usable_document`: there the element occurs at most
    once and its text has no `<`, so the text is what follows `<element>` up to the next `<`.
    A regex that starts with the literal start tag: Java's regex engine finds a literal
    prefix with a Boyer-Moore search, where Spark's own substring functions compare bytes at
    every position (three of those scans per element were half the cost of this part of the
    job, measured)."""
    assert element.isalnum(), element  # no regex metacharacter in the name
    return F.trim(F.regexp_extract(document, f"<{element}>([^<]*+)<", 1))


def unescaped(raw: Column, well_formed: Column) -> Column:
    """XML character data to text (the five entities and character references); NULL for
    ''. The JVM's commons-text unescaper is called only for the rare text with a `&`, and
    only in a document that passed `USABLE_DOCUMENT` (it throws on a bad reference)."""
    decoded = F.trim(F.reflect(F.lit(_XML_UNESCAPER), F.lit("unescapeXml"), raw))
    return F.when(
        raw != "",
        F.when(well_formed & (F.instr(raw, "&") > 0), decoded).otherwise(raw),
    )


def with_elements(df: DataFrame, document: Column, well_formed: Column) -> DataFrame:
    """`df` plus one internal column per review_logs field, parsed from `document`.

    Two projections on purpose: the extracted text is referenced several times by the
    unescaping, and as its own column it is extracted once (one inlined expression would
    repeat each regexp_extract, which measured several times slower)."""
    extracted = df.select(
        "*",
        *[
            F.when(well_formed, raw_element_text(document, e))
            .otherwise(F.lit(""))
            .alias(_RAW_TEXT + c)
            for c, e in ELEMENTS.items()
        ],
    )
    return extracted.select(
        *df.columns,
        *[
            unescaped(F.col(_RAW_TEXT + c), well_formed).alias(INTERNAL_PREFIX + c)
            for c in ELEMENTS
        ],
        *[
            warehouse_types.referenced_bad_code_point(_RAW_TEXT + c).alias(_BAD_REFERENCE + c)
            for c in TEXT_COLUMNS
        ],
    )


def bad_xml_detail(document: Column) -> Column:
    """Why a document failed `USABLE_DOCUMENT` (computed for rejected documents only)."""
    return (
        F.when(F.coalesce(F.trim(document), F.lit("")) == "", F.lit("log is empty"))
        .when(
            document.rlike(VENDOR_LAYOUT),
            F.concat(
                F.lit("element <"),
                F.regexp_extract(document, REPEATED_ELEMENT, 1),
                F.lit("> appears more than once"),
            ),
        )
        .otherwise(
            F.lit(
                "log is not well-formed XML in the vendor layout "
                "<reviewlog><log><name>text</name>...</log></reviewlog>"
            )
        )
    )


def browser(explicit: Column, os: Column) -> Column:
    """The `<browser>` element when present, else the default browser of the OS (or NULL)."""
    return F.coalesce(explicit, reference.default_browser(os))


def log_id() -> Column:
    return strict_int(F.col(LOG_ID))


def tag_logs(raw: DataFrame, detect_duplicates: bool = True) -> DataFrame:
    """The raw records with the parsed fields and a reject reason (NULL when usable).

    The duplicate window is a shuffle of every record with its document (measured at about
    a quarter of this transform): `detect_duplicates=False` skips it, only for input where
    `has_repeated_ids` finds no repeated id, on which the window tags nothing."""
    header = header_columns(raw)
    document = F.col(LOG)
    df = start_tagging(raw).withColumn(_LOG_ID, log_id())
    df = reject_malformed_rows(df, len(header))
    df = reject_when(
        df,
        F.col(_LOG_ID).isNull(),
        BAD_ID,
        missing_or_invalid(F.col(LOG_ID), LOG_ID, "is not a 32-bit integer"),
    )
    if detect_duplicates:
        df = reject_duplicates(df, _LOG_ID, [c for c in header if c != LOG_ID], "review id")
    # Parsed after the duplicate window (when it runs, its shuffle spreads the regexes over
    # the cores); every regex below runs once per record.
    df = df.withColumn(_USABLE_XML, usable_document(document))
    df = reject_when(df, ~F.col(_USABLE_XML), BAD_XML, bad_xml_detail(document))
    df = with_elements(df, document, F.col(_USABLE_XML))
    date_text = F.col(INTERNAL_PREFIX + "log_date")
    df = df.withColumn(_LOG_DATE, strict_mm_dd_yyyy(date_text))
    df = reject_when(df, date_text.isNull(), BAD_DATE, F.lit("logDate is missing or empty"))
    df = reject_when(
        df,
        F.col(_LOG_DATE).isNull(),
        BAD_DATE,
        F.concat(F.lit("logDate '"), date_text, F.lit("' is not a valid MM-dd-yyyy date")),
    )
    location = reference.canonical_location(F.col(INTERNAL_PREFIX + "location"))
    os = F.col(INTERNAL_PREFIX + "os")
    df = df.withColumn(INTERNAL_PREFIX + "location", location).withColumn(
        INTERNAL_PREFIX + "browser", browser(F.col(INTERNAL_PREFIX + "browser"), os)
    )
    df = reject_unloadable_values(df)
    return finish_tagging(df, LOG_ID)


def reject_unloadable_values(df: DataFrame) -> DataFrame:
    """Records with a value the warehouse cannot hold (warehouse_types): rejected with the
    field and the problem, never cut or cleaned. Checked on the final values (canonical
    location, derived browser), the ones the dimensions and the warehouse get.

    Two checks (`bad_character`, then `value_too_long`), each one CASE over the fields that
    names the first field with the problem: every `reject_when` nests the reason columns of
    the one before, so one per field would grow the plan beyond what the optimizer handles."""
    # One regex over all the values first: the per-field ones run only when it matches. Its
    # own column, computed once: inlined, it sits in six CASE branches, where Spark's common
    # subexpression elimination does not reach (it was a third of the tagging, measured).
    values = [F.coalesce(F.col(INTERNAL_PREFIX + c), F.lit("")) for c in TEXT_COLUMNS]
    df = df.withColumn(_ANY_CONTROL, F.concat(*values).rlike(warehouse_types.CONTROL_CLASS))
    any_control = F.col(_ANY_CONTROL)
    character_problem = None
    for column in TEXT_COLUMNS:
        reference_code = F.col(_BAD_REFERENCE + column)
        literal_code = warehouse_types.control_code_point(F.col(INTERNAL_PREFIX + column))
        by_reference = F.concat(
            F.lit(f"{ELEMENTS[column]} has a character reference to "),
            warehouse_types.code_point_text(reference_code),
            F.lit(" (a control character or a lone surrogate); the value is not stored"),
        )
        literal = F.concat(
            F.lit(f"{ELEMENTS[column]} holds the control character "),
            warehouse_types.code_point_text(literal_code),
            F.lit("; the value is not stored"),
        )
        character_problem = (F if character_problem is None else character_problem).when(
            reference_code.isNotNull(), by_reference
        )
        character_problem = character_problem.when(any_control & literal_code.isNotNull(), literal)
    df = df.withColumn(_PROBLEM, character_problem)
    df = reject_when(
        df, F.col(_PROBLEM).isNotNull(), warehouse_types.BAD_CHARACTER, F.col(_PROBLEM)
    )
    length_problem = None
    for column, width in warehouse_types.VALUE_BYTES.items():
        value = F.col(INTERNAL_PREFIX + column)
        detail = F.concat(
            F.lit(f"{ELEMENTS[column]} is "),
            F.octet_length(value).cast("string"),
            F.lit(f" bytes of UTF-8; the warehouse column holds at most {width}"),
        )
        length_problem = (F if length_problem is None else length_problem).when(
            warehouse_types.too_long(value, column), detail
        )
    df = df.withColumn(_PROBLEM, length_problem)
    df = reject_when(
        df, F.col(_PROBLEM).isNotNull(), warehouse_types.VALUE_TOO_LONG, F.col(_PROBLEM)
    )
    df = df.drop(_PROBLEM, _ANY_CONTROL)
    return df.drop(*[_BAD_REFERENCE + c for c in TEXT_COLUMNS])


def review_logs(tagged: DataFrame, run_date: dt.date) -> DataFrame:
    """The usable records as `review_logs` rows."""
    return usable(tagged).select(
        F.col(_LOG_ID).alias("log_id"),
        F.col(_LOG_DATE).alias("log_date"),
        *[
            F.col(INTERNAL_PREFIX + c).alias(c)
            for c in ("device", "os", "location", "browser", "ip", "phone_number")
        ],
        F.lit(run_date).alias("insert_date"),
    )


def log_rejects(tagged: DataFrame, run_date: dt.date) -> DataFrame:
    return rejects_frame(tagged, SOURCE, run_date)


def load(tagged: DataFrame, args: argparse.Namespace, counts: Mapping[str, object]) -> None:
    write_outputs(
        review_logs(tagged, args.run_date), log_rejects(tagged, args.run_date), args, counts
    )


def warning_conditions() -> dict[str, Column]:
    """Kept records worth a look, counted into the metrics' `warnings`."""
    location = F.col(INTERNAL_PREFIX + "location")
    return {
        "unrecognized_location": location.isNotNull() & ~reference.is_known_location(location),
        "unknown_os_without_browser": F.col(INTERNAL_PREFIX + "os").isNotNull()
        & F.col(INTERNAL_PREFIX + "browser").isNull(),
    }


def main(argv: Sequence[str]) -> int:
    args = parse_job_args(JOB, argv, OPTIONS)
    spark = job_session(f"{JOB} {args.run_date}")
    raw = extract(spark, args)

    cores = spark.sparkContext.defaultParallelism
    # Input read as fewer tasks than there are cores (a single gzip file, or too few parts):
    # without the window's shuffle the documents would be parsed in those tasks alone, so a
    # round-robin shuffle spreads them over the cores (100,000 real logs in one file,
    # local[2]: 6.5 s -> 5.4 s, medians of 2). Parts enough for every core need none.
    too_few_tasks = raw.rdd.getNumPartitions() < cores

    def tag(detect: bool) -> DataFrame:
        spread = raw.repartition(cores) if too_few_tasks and not detect else raw
        return tag_logs(spread, detect_duplicates=detect)

    tagged, counts, warnings = tag_and_count(
        tag, args.input, _LOG_ID, CHECKED_BEFORE_DUPLICATES, REASONS, warning_conditions()
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
            warnings=warnings,
        ),
    )
    tagged.unpersist()
    return 0
