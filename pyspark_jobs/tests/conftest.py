"""One local SparkSession for the whole test session, with the jobs' own settings."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import SparkSession

from pyspark_jobs.spark_session import apply_job_settings


@pytest.fixture(scope="session")
def spark():
    session = (
        SparkSession.builder.master("local[2]")
        .appName("pyspark_jobs tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    apply_job_settings(session)
    yield session
    session.stop()


def write_text(path: Path, text: str) -> str:
    """Write `text` as UTF-8 bytes exactly (no newline translation); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def read_metrics(folder: Path) -> dict:
    parts = sorted(folder.glob("part-*"))
    lines = [line for p in parts for line in p.read_text().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one metrics line in {folder}, found {lines}"
    return json.loads(lines[0])


def _load_assert_data_frame_equal():
    """`pyspark.testing.assertDataFrameEqual` (Spark 3.5): schema and rows, any row order.

    `pyspark.testing`'s `__init__` also imports its pandas-on-Spark helpers, which need
    pandas, not a dependency of this project; the function's own module (`utils`) needs
    only pyspark, so without pandas that module is loaded from its file on its own."""
    try:
        from pyspark.testing import assertDataFrameEqual
    except ImportError:
        path = os.path.join(os.path.dirname(pyspark.__file__), "testing", "utils.py")
        spec = importlib.util.spec_from_file_location("_pyspark_testing_utils", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.assertDataFrameEqual
    return assertDataFrameEqual


assertDataFrameEqual = _load_assert_data_frame_equal()
