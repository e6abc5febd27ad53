"""One local SparkSession for the whole test session, with the jobs' own settings."""

from __future__ import annotations

import json
from pathlib import Path

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
