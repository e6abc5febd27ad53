"""The SparkSession every job runs in, with the settings the jobs' semantics rely on."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

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

# The session of the step this thread runs, when the job runs inside the local runner's shared
# Spark application (pyspark_jobs/step_server.py): each step gets its own `newSession()`, so
# its `--conf spark.sql.*` settings and JOB_SETTINGS never leak into a step running beside it.
# A context variable: every thread starts without one, so only the step's own thread sees it.
_STEP_SESSION: contextvars.ContextVar[SparkSession | None] = contextvars.ContextVar(
    "pyspark_jobs_step_session", default=None
)


def job_session(app_name: str) -> SparkSession:
    """The step's session (shared application) or the active SparkSession (spark-submit's, or
    a local one), with `JOB_SETTINGS`."""
    spark = _STEP_SESSION.get()
    if spark is None:
        spark = SparkSession.builder.appName(app_name).getOrCreate()
    apply_job_settings(spark)
    return spark


def step_session() -> SparkSession | None:
    """The session set by `use_step_session` in this thread, if any."""
    return _STEP_SESSION.get()


@contextlib.contextmanager
def use_step_session(spark: SparkSession) -> Iterator[SparkSession]:
    """Make `job_session` return `spark` in this thread while the block runs."""
    token = _STEP_SESSION.set(spark)
    try:
        yield spark
    finally:
        _STEP_SESSION.reset(token)


def apply_job_settings(spark: SparkSession) -> None:
    for key, value in JOB_SETTINGS.items():
        spark.conf.set(key, value)
