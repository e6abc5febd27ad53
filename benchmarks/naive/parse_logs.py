"""Naive pipeline, job 2 of 3: parse the review logs' XML with a Python UDF.

A benchmark baseline only (issue 14), not part of the product. The approach most solutions to
the brief take: one Python UDF per row parsing the `log` column with `xml.etree.ElementTree`,
returning the session fields. Plain first attempt: a document that does not parse gives NULL
fields (silently), bad ids become NULL, no rejects, no location fixes, no duplicate handling.

    spark-submit --master local[2] benchmarks/naive/parse_logs.py \
        --logs DIR/log_reviews.csv.gz --out OUT --date 2021-10-31

Writes OUT/review_logs (Parquet: log_id, log_date, device, os, location, browser, ip,
phone_number, insert_date).
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

FIELDS = [
    ("log_date", "logDate"),
    ("device", "device"),
    ("os", "os"),
    ("location", "location"),
    ("browser", "browser"),
    ("ip", "ipAddress"),
    ("phone_number", "phoneNumber"),
]
SCHEMA = T.StructType([T.StructField(name, T.StringType()) for name, _ in FIELDS])


def parse_log(document):
    """The seven session fields of one `<reviewlog><log>...</log></reviewlog>` document."""
    import xml.etree.ElementTree as ET

    if document is None:
        return None
    try:
        log = ET.fromstring(document).find("log")
    except ET.ParseError:
        return None
    if log is None:
        return None
    return tuple(log.findtext(tag) for _, tag in FIELDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", required=True, help="log_reviews.csv[.gz]")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--date", required=True, help="run date, YYYY-MM-DD")
    args = parser.parse_args()

    spark = SparkSession.builder.appName("naive parse_logs").getOrCreate()
    logs = spark.read.csv(args.logs, header=True, multiLine=True, escape='"')
    parse = F.udf(parse_log, SCHEMA)
    parsed = logs.select(
        F.col("id_review").cast("int").alias("log_id"), parse(F.col("log")).alias("p")
    )
    review_logs = parsed.select(
        "log_id",
        F.to_date(F.col("p.log_date"), "MM-dd-yyyy").alias("log_date"),
        *[F.col("p." + name).alias(name) for name, _ in FIELDS[1:]],
        F.to_date(F.lit(args.date)).alias("insert_date"),
    )
    review_logs.write.mode("overwrite").parquet(f"{args.out}/review_logs")
    spark.stop()


if __name__ == "__main__":
    main()
