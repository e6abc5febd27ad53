"""Reading a vendor CSV (or the purchases export) as raw strings, with whole-file checks.

A file that is unusable as a whole (missing, empty, not text, required header columns
missing) raises `UnusableInput` (exit code 3) before anything is written. Records are read
with Spark's CSV reader (RFC 4180: quoted fields with commas, doubled quotes and newlines)
with every column as a string; the jobs cast explicitly and reject what does not cast.
A record the reader cannot split into the header's columns is kept, whole, in
`CORRUPT_RECORD`, so it becomes a reject instead of disappearing.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from pyspark_jobs.errors import UnusableInput

CORRUPT_RECORD = "_corrupt_record"

CSV_READ_OPTIONS = {
    "header": "true",
    "multiLine": "true",
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT_RECORD,
    # Keep what the vendor sent: no trimming, and an empty field stays distinguishable
    # from a missing one only through the raw record, so both read as NULL here.
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}

# Characters that never appear in a text header: NUL and C0 controls other than tab, and
# U+FFFD, which the UTF-8 decoder puts in place of bytes that are not UTF-8.
_NOT_TEXT_CHARS = {chr(c) for c in range(0x20) if c not in (0x09,)} | {"\ufffd"}
_GZIP_MAGIC_FIRST_CHAR = "\x1f"


def _hadoop_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def data_files(spark: SparkSession, uri: str) -> list[tuple[str, int]]:
    """The data files at `uri` (a file, or a folder of files) with their sizes in bytes.

    Files whose names start with `_` or `.` (`_SUCCESS`, checksums) are not data, as in Spark.
    """
    path, fs = _hadoop_path(spark, uri)
    if not fs.exists(path):
        raise UnusableInput(uri, "does not exist (check the URI and that the upstream step ran)")
    status = fs.getFileStatus(path)
    if not status.isDirectory():
        return [(uri, status.getLen())]
    files = []
    for child in fs.listStatus(path):
        name = child.getPath().getName()
        if child.isFile() and not name.startswith(("_", ".")):
            files.append((child.getPath().toString(), child.getLen()))
    if not files:
        raise UnusableInput(uri, "is a folder without any data file")
    return files


def header_problem(line: str | None, required: Sequence[str]) -> str | None:
    """Why a file's first line is unusable as its header, or None when it is fine."""
    if line is None:
        return "is empty (no header line)"
    if any(ch in _NOT_TEXT_CHARS for ch in line):
        if line.startswith(_GZIP_MAGIC_FIRST_CHAR):
            return "is not text: it looks gzip-compressed but its name does not end in .gz"
        return "is not text (binary or non-UTF-8 bytes in the header line)"
    names = header_names(line)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        return f"header names the column(s) {', '.join(duplicated)} more than once"
    missing = [name for name in required if name not in names]
    if missing:
        return (
            f"header {line[:200]!r} lacks the required column(s) {', '.join(missing)} "
            f"(expected the columns {', '.join(required)}, in any order)"
        )
    return None


def header_names(line: str) -> list[str]:
    """The column names of a CSV header line (quoted or not), without a byte-order mark and
    surrounding blanks."""
    fields = next(csv.reader([line]), [])
    return [field.lstrip("\ufeff").strip() for field in fields]


def first_line_of(spark: SparkSession, uri: str, size: int | None = None) -> str | None:
    """The first line of a (possibly compressed) text file, None for an empty file.

    Read on the driver through the Hadoop FileSystem API, decompressed by the codec Hadoop
    picks from the file name (as Spark's readers do), so no Spark job runs: a header check
    per file, also for a folder of many parts. As with Spark's text reader, lines end at LF,
    CR or CRLF, a leading byte-order mark is dropped and bytes that are not UTF-8 become
    U+FFFD. `size` (bytes), when known, spares
    opening a file that is empty anyway.
    """
    if size == 0:
        return None
    jvm = spark.sparkContext._jvm
    opened = []  # the file's stream, then the decompressing one: closed in reverse
    try:
        path, fs = _hadoop_path(spark, uri)
        codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
            spark.sparkContext._jsc.hadoopConfiguration()
        )
        codec = codecs.getCodec(path)
        opened.append(fs.open(path))
        if codec is not None:
            opened.append(codec.createInputStream(opened[-1]))
        charset = jvm.java.nio.charset.StandardCharsets.UTF_8
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(opened[-1], charset))
        line = reader.readLine()
        # Hadoop's line reader, under Spark's text and CSV readers, drops a UTF-8
        # byte-order mark at the start of a file: the header line reads the same here.
        return line[1:] if line is not None and line.startswith("\ufeff") else line
    except Exception as error:  # noqa: BLE001 - any reader failure here means a bad file
        raise UnusableInput(uri, f"cannot be read as text: {java_message(error)}") from None
    finally:
        for stream in reversed(opened):
            # Nothing more is read from it; a failing close must not hide the answer.
            with contextlib.suppress(Exception):
                stream.close()


def java_message(error: BaseException) -> str:
    """The Java exception's own `Class: message` line of a Py4J error, else `first_line`."""
    java = getattr(error, "java_exception", None)
    if java is not None:
        try:
            return str(java.toString()).strip()[:300]
        except Exception:  # noqa: BLE001 - the gateway may be gone; fall back to the text
            pass
    return first_line(error)


def read_csv_strings(spark: SparkSession, uri: str, required: Sequence[str]) -> DataFrame:
    """Every record of the CSV at `uri` (a file or a folder of files) with each header
    column as a string.

    The columns carry the header's names (normalised) in the file's order, followed by
    `CORRUPT_RECORD` (the raw text of a record that does not split into the header's
    columns, else NULL). Raises UnusableInput for a file unusable as a whole.
    """
    files = data_files(spark, uri)
    if all(size == 0 for _, size in files):
        raise UnusableInput(uri, "is empty (0 bytes)")
    headers = []
    for file_uri, size in files:
        line = first_line_of(spark, file_uri, size)
        problem = header_problem(line, required)
        if problem:
            raise UnusableInput(file_uri, problem)
        headers.append(header_names(line or ""))
    if any(h != headers[0] for h in headers):
        raise UnusableInput(uri, "its files do not all have the same header")
    # Spark applies a given schema by position (each file's header line is skipped), so
    # the schema repeats the file's own column order.
    schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in headers[0]]
        + [T.StructField(CORRUPT_RECORD, T.StringType())]
    )
    return spark.read.options(**CSV_READ_OPTIONS).schema(schema).csv(uri)


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (Py4J errors carry a Java trace)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__


def is_unreadable_file_error(error: BaseException) -> bool:
    """Whether a failed Spark action failed because the file itself is damaged."""
    text = str(error)
    markers = (
        "java.io.EOFException",
        "Unexpected end of input stream",
        "java.util.zip.ZipException",
        "Not in GZIP format",
        "invalid block type",
        "incorrect header check",
        "MalformedInputException",
    )
    return any(marker in text for marker in markers)
