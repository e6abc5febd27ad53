"""Writing job outputs: staging Parquet, the warehouse-load CSV, and listing partitions."""

from __future__ import annotations

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


def write_parquet(df: DataFrame, uri: str) -> None:
    """Replace the folder `uri` (one partition, e.g. `.../dt=D/`) with `df` as Parquet."""
    df.write.mode("overwrite").parquet(uri)


def write_load_csv(df: DataFrame, uri: str) -> None:
    """Replace the folder `uri` with `df` as one gzip CSV file for the warehouse COPY."""
    df.coalesce(1).write.mode("overwrite").options(**LOAD_CSV_OPTIONS).csv(uri)


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
