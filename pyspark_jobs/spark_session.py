"""The SparkSession every job runs in, with the settings the jobs' semantics rely on."""

from __future__ import annotations

from pyspark.sql import SparkSession

# Settings the code depends on, applied over whatever spark-submit passed:
# - non-ANSI casts, so an invalid value becomes NULL (then a reject) instead of an error;
# - UTC, so DATE values and `insert_date` do not shift with the machine's zone;
# - dynamic partition overwrite off: each job overwrites exactly the folders it is given.
JOB_SETTINGS = {
    "spark.sql.ansi.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "static",
}


def job_session(app_name: str) -> SparkSession:
    """The active SparkSession (spark-submit's, or a local one) with `JOB_SETTINGS`."""
    spark = SparkSession.builder.appName(app_name).getOrCreate()
    apply_job_settings(spark)
    return spark


def apply_job_settings(spark: SparkSession) -> None:
    for key, value in JOB_SETTINGS.items():
        spark.conf.set(key, value)
