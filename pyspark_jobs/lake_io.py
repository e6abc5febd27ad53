"""Writing job outputs: staging Parquet, the warehouse-load CSV, and listing partitions."""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Iterable, Sequence

from pyspark.sql import DataFrame, SparkSession

# What the warehouse's COPY ... CSV expects (PostgreSQL and Redshift alike): a header,
# quotes doubled inside quoted values, NULL as an empty unquoted field, an empty string as
# "", dates as yyyy-MM-dd.
LOAD_CSV_OPTIONS = {
    "header": "true",
    "compression": "gzip",
    "quote": '"',
    "escape": '"',
    "escapeQuotes": "true",
    "nullValue": "",
    "emptyValue": '""',
    "dateFormat": "yyyy-MM-dd",
    "timestampFormat": "yyyy-MM-dd HH:mm:ss",
    "encoding": "UTF-8",
    "lineSep": "\n",
}


def write_parquet(df: DataFrame, uri: str, rows: int | None = None) -> None:
    """Replace the folder `uri` (one partition, e.g. `.../dt=D/`) with `df` as Parquet.

    `rows`, when the caller already counted them: for 0 (rejects on a clean day) the folder
    is replaced by an empty output (`replace_with_empty`) without a Spark job."""
    if rows == 0:
        replace_with_empty(df.sparkSession, uri)
        return
    df.write.mode("overwrite").parquet(uri)


def write_load_csv(df: DataFrame, uri: str) -> None:
    """Replace the folder `uri` with `df` as gzip CSV files for the warehouse COPY: one per
    partition of `df`, each with the header (every loader reads every `part-*` file of the
    folder, and Redshift's COPY loads several files in parallel). Not coalesced to one file:
    that was one task gzipping the whole fact while the other cores idled (4.9 s at 1M
    reviews, on build_fact's critical path)."""
    df.write.mode("overwrite").options(**LOAD_CSV_OPTIONS).csv(uri)


LOAD_CSV_FILE = "part-00000.csv.gz"


def write_load_csv_rows(
    spark: SparkSession, uri: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """Replace the folder `uri` with `rows` as one gzip CSV file for the warehouse COPY, in
    the format `write_load_csv` gives (LOAD_CSV_OPTIONS), written on the driver through the
    Hadoop FileSystem API: for a few hundred rows already on the driver (the dimensions), no
    Spark job. Values: None, str, int, dt.date."""
    lines = [",".join(_load_csv_field(c) for c in columns)]
    lines += [",".join(_load_csv_field(v) for v in row) for row in rows]
    content = ("\n".join(lines) + "\n").encode("utf-8")
    replace_with_file(spark, uri, LOAD_CSV_FILE, gzip.compress(content, mtime=0))


def _load_csv_field(value: object) -> str:
    """One field as LOAD_CSV_OPTIONS write it: NULL empty and unquoted, an empty string as
    `""`, text quoted (quotes doubled) when it holds a quote, a comma or a line end."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if text == "":
        return '""'
    if any(c in text for c in '",\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


SUCCESS_MARKER = "_SUCCESS"


def replace_with_file(spark: SparkSession, uri: str, name: str, content: bytes) -> None:
    """Replace the folder `uri` with one file `name` holding `content`, then `_SUCCESS`.

    Written on the driver through the Hadoop FileSystem API (S3 on EMR, the local disk
    locally): no Spark job and no Python worker for a few bytes. The layout is a Spark
    write's (data file, then the marker readers wait for)."""
    folder, fs = _file_system(spark, uri)
    _recreate(fs, folder)
    _write_file(spark, fs, folder, name, content)
    _write_file(spark, fs, folder, SUCCESS_MARKER, b"")


def replace_with_empty(spark: SparkSession, uri: str) -> None:
    """Replace the folder `uri` with an empty output: only the `_SUCCESS` marker.

    What an output without rows is, without a Spark job (Spark writes one empty part file
    for it). Readers give Spark the schema (`spark.read.schema(...)`), which reads such a
    folder as no rows; the warehouse load takes the folder because the marker is there."""
    folder, fs = _file_system(spark, uri)
    _recreate(fs, folder)
    _write_file(spark, fs, folder, SUCCESS_MARKER, b"")


def _recreate(fs, folder) -> None:
    if fs.exists(folder) and not fs.delete(folder, True):
        raise OSError(f"cannot delete {folder.toString()} to replace it")
    if not fs.mkdirs(folder):
        raise OSError(f"cannot create the folder {folder.toString()}")


def _write_file(spark: SparkSession, fs, folder, name: str, content: bytes) -> None:
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(folder, name)
    stream = fs.create(path, True)
    try:
        if content:
            stream.write(bytearray(content))
    finally:
        stream.close()


def _file_system(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def partition_folders(spark: SparkSession, root: str) -> list[str]:
    """The snapshot folders under `root` whose write completed (Spark's `_SUCCESS` marker is
    there, written after every part file was committed) and that hold a data file, sorted;
    [] if none. A snapshot is `dt=*/run=*` (one per run: another run of the same date never
    replaces it) or, as written before run-scoped staging, `dt=*` itself. A folder a crashed
    or running job left half-written is never read."""
    path, fs = _file_system(spark, root)
    if not fs.exists(path):
        return []

    def complete(folder) -> bool:
        names = [f.getPath().getName() for f in fs.listStatus(folder) if f.isFile()]
        return "_SUCCESS" in names and any(not n.startswith(("_", ".")) for n in names)

    folders = []
    for child in fs.listStatus(path):
        if not (child.isDirectory() and child.getPath().getName().startswith("dt=")):
            continue
        if complete(child.getPath()):
            folders.append(child.getPath().toString())
        for run in fs.listStatus(child.getPath()):
            is_run = run.isDirectory() and run.getPath().getName().startswith("run=")
            if is_run and complete(run.getPath()):
                folders.append(run.getPath().toString())
    return sorted(folders)


def join_uri(root: str, *parts: str) -> str:
    """`root/part/...` without doubled slashes (`root` may end in `/`)."""
    return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])
