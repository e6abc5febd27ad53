"""What the jobs ask of Spark beyond their transforms: no Spark job to read a header or to
write the metrics or an empty output, and no Python worker at all (every value is computed
in the JVM, so a job never pays for starting Python processes next to the executors)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pyspark_jobs import classify_reviews
from pyspark_jobs.csv_input import first_line_of, read_csv_strings
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.job_metrics import write_metrics
from pyspark_jobs.lake_io import write_parquet
from pyspark_jobs.rejects import REJECTS_SCHEMA
from pyspark_jobs.tests.conftest import read_metrics, write_text

REPO_ROOT = Path(__file__).resolve().parents[2]
HEADER = "cid,review_str,id_review"
REQUIRED = ("cid", "review_str", "id_review")


def spark_jobs(spark, action) -> tuple[object, list[list[str]]]:
    """(what `action()` returns, the stage names of each Spark job it ran)."""
    sc = spark.sparkContext
    group = f"count-{uuid.uuid4().hex}"
    sc.setJobGroup(group, group)
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    # Jobs reach the status store through the listener bus: wait for it to drain.
    sc._jsc.sc().listenerBus().waitUntilEmpty()
    tracker = sc.statusTracker()
    jobs = []
    for job_id in sorted(tracker.getJobIdsForGroup(group)):
        info = tracker.getJobInfo(job_id)
        stages = [tracker.getStageInfo(s) for s in info.stageIds] if info else []
        jobs.append([s.name for s in stages if s is not None])
    return result, jobs


def test_the_counting_sees_a_spark_job(spark):
    """The probe itself: an action is counted (else the zero counts below prove nothing)."""
    _, jobs = spark_jobs(spark, lambda: spark.range(3).collect())
    assert len(jobs) >= 1


@pytest.mark.parametrize("name", ["movie_review.csv", "movie_review.csv.gz"])
def test_the_header_is_read_without_a_spark_job(spark, tmp_path, name):
    content = f"\ufeff{HEADER}\r\n1,good,10\n".encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    line, jobs = spark_jobs(spark, lambda: first_line_of(spark, str(path)))
    assert jobs == []
    # Spark's own text reader gives the same line (it drops the byte-order mark too).
    assert line == HEADER == spark.read.text(str(path)).first()[0]
    _, jobs = spark_jobs(spark, lambda: read_csv_strings(spark, str(path), REQUIRED))
    assert jobs == []


def test_a_lone_carriage_return_ends_the_header_as_in_spark(spark, tmp_path):
    path = write_text(tmp_path / "r.csv", f"{HEADER}\r1,good,10\r")
    assert first_line_of(spark, path) == HEADER == spark.read.text(path).first()[0]


def write_parts(folder: Path, headers: list[str]) -> None:
    folder.mkdir(parents=True)
    for index, header in enumerate(headers):
        body = f"{header}\n{index},text {index},{100 + index}\n"
        (folder / f"part-{index:05d}.csv.gz").write_bytes(gzip.compress(body.encode()))
    (folder / "_SUCCESS").write_bytes(b"")


def test_a_folder_of_gzip_parts_is_read_with_every_header_checked_on_the_driver(spark, tmp_path):
    folder = tmp_path / "movie_review"
    write_parts(folder, [HEADER, HEADER, HEADER])
    frame, jobs = spark_jobs(spark, lambda: read_csv_strings(spark, str(folder), REQUIRED))
    assert jobs == []
    assert sorted(r["id_review"] for r in frame.collect()) == ["100", "101", "102"]


def test_parts_with_different_headers_are_unusable(spark, tmp_path):
    folder = tmp_path / "movie_review"
    write_parts(folder, [HEADER, "id_review,cid,review_str"])
    with pytest.raises(UnusableInput, match="do not all have the same header"):
        read_csv_strings(spark, str(folder), REQUIRED)


def test_a_damaged_part_names_the_part(spark, tmp_path):
    folder = tmp_path / "movie_review"
    write_parts(folder, [HEADER])
    (folder / "part-00001.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(UnusableInput, match="part-00001.csv.gz.*cannot be read as text"):
        read_csv_strings(spark, str(folder), REQUIRED)


def test_metrics_are_written_without_a_spark_job_in_the_layout_the_driver_reads(spark, tmp_path):
    folder = tmp_path / "_metrics" / "classify_reviews"
    folder.mkdir(parents=True)
    (folder / "part-00000-old.txt").write_text('{"job": "stale"}\n')
    document = {"job": "classify_reviews", "sources": {"movie_review": {"rows_in": 1}}}
    _, jobs = spark_jobs(spark, lambda: write_metrics(spark, str(folder), document))
    assert jobs == []
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == ["_SUCCESS", "part-00000.json"]
    assert read_metrics(folder) == document
    assert (folder / "part-00000.json").read_bytes().endswith(b"}\n")


def test_an_empty_output_replaces_the_folder_without_a_spark_job(spark, tmp_path):
    folder = tmp_path / "rejects" / "movie_review" / "dt=2021-10-31"
    spark.range(3).write.parquet(str(folder))  # what an earlier run left
    empty = spark.createDataFrame([], REJECTS_SCHEMA)
    _, jobs = spark_jobs(spark, lambda: write_parquet(empty, str(folder), rows=0))
    assert jobs == []
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["_SUCCESS"]
    # Read with the schema, as every reader of a rejects folder must: no rows.
    assert spark.read.schema(REJECTS_SCHEMA).parquet(str(folder)).count() == 0


def test_a_clean_day_writes_its_rejects_without_a_spark_job(spark, tmp_path):
    path = write_text(tmp_path / "movie_review.csv", f"{HEADER}\n1,good,10\n2,bad,11\n")
    rejects = tmp_path / "rejects" / "movie_review" / "dt=2021-10-31"
    args = [
        "--run-date", "2021-10-31", "--input", path,
        "--output", str(tmp_path / "classified_movie_review" / "dt=2021-10-31"),
        "--rejects", str(rejects), "--metrics", str(tmp_path / "_metrics" / "classify_reviews"),
    ]  # fmt: skip
    code, jobs = spark_jobs(spark, lambda: classify_reviews.main(args))
    assert code == 0
    # One Parquet write (the reviews); the empty rejects are no Spark job.
    writes = [stages for stages in jobs if any(s.startswith("parquet at") for s in stages)]
    assert len(writes) == 1, jobs
    assert sorted(p.name for p in rejects.iterdir() if not p.name.startswith(".")) == ["_SUCCESS"]
    assert spark.read.schema(REJECTS_SCHEMA).parquet(str(rejects)).count() == 0


# Runs the four jobs in a fresh JVM (the test session's has started Python workers for the
# tests' own createDataFrame calls) and reports, after each job, how many Python worker
# factories the JVM holds: SparkEnv creates one the first time any task needs a Python
# worker, and never drops it.
NO_PYTHON_WORKER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    from pyspark_jobs import run_job

    lake, raw = sys.argv[1], sys.argv[2]
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    def python_worker_factories():
        env = spark.sparkContext._jvm.org.apache.spark.SparkEnv.get()
        field = env.getClass().getDeclaredField("pythonWorkers")
        field.setAccessible(True)
        return field.get(env).size()

    st, d = lake + "/staging", "dt=2021-10-31"
    jobs = [
        ["classify_reviews", "--input", raw + "/movie_review.csv",
         "--output", f"{st}/classified_movie_review/{d}",
         "--rejects", f"{st}/rejects/movie_review/{d}",
         "--metrics", f"{st}/_metrics/{d}/classify_reviews"],
        ["parse_logs", "--input", raw + "/log_reviews.csv.gz",
         "--output", f"{st}/review_logs/{d}", "--rejects", f"{st}/rejects/log_reviews/{d}",
         "--metrics", f"{st}/_metrics/{d}/parse_logs"],
        ["build_dimensions", "--review-logs", f"{st}/review_logs/{d}",
         "--dims-root", f"{st}/dims", "--load-root", f"{st}/warehouse_load/{d}",
         "--metrics", f"{st}/_metrics/{d}/build_dimensions"],
        ["build_fact", "--reviews", f"{st}/classified_movie_review/{d}",
         "--review-logs", f"{st}/review_logs/{d}", "--purchases", raw + "/user_purchase",
         "--dims-root", f"{st}/dims", "--output", f"{st}/fact_movie_analytics/{d}",
         "--load-root", f"{st}/warehouse_load/{d}",
         "--rejects", f"{st}/rejects/user_purchase/{d}",
         "--metrics", f"{st}/_metrics/{d}/build_fact"],
    ]
    report = {}
    for job in jobs:
        code = run_job.run([job[0], "--run-date", "2021-10-31", *job[1:]])
        report[job[0]] = {"exit": code, "python_worker_factories": python_worker_factories()}
    # The control: Python data through Spark does start a worker, and the probe sees it.
    spark.createDataFrame([(1,)], "x int").collect()
    report["control"] = {"exit": 0, "python_worker_factories": python_worker_factories()}
    print("REPORT " + json.dumps(report))
    """
)

LOG = (
    "<reviewlog><log><logDate>04-25-2021</logDate><device>Mobile</device>"
    "<location>Kansas</location><os>Apple iOS</os><ipAddress>1.2.3.4</ipAddress>"
    "<phoneNumber>555</phoneNumber></log></reviewlog>"
)


def test_no_job_starts_a_python_worker(tmp_path):
    raw = tmp_path / "raw"
    write_text(
        raw / "movie_review.csv",
        f'{HEADER}\n17850,good film,1\n17850,meh,2\n14527,"so, good",3\nx,bad,4\n',
    )
    logs = "id_review,log\n" + "".join(f"{i},{LOG}\n" for i in (1, 2, 3, 4)) + "5,<bad\n"
    (raw / "log_reviews.csv.gz").write_bytes(gzip.compress(logs.encode()))
    (raw / "user_purchase").mkdir()
    purchases = (
        "invoice_number,stock_code,detail,quantity,invoice_date,unit_price,customer_id,country\n"
        "536365,85123A,HEART,6,2010-12-01 08:26:00,2.550,17850,UK\n"
        "536366,22633,WARMER,many,2010-12-01 08:28:00,1.850,14527,UK\n"
    )
    (raw / "user_purchase" / "part-00000.csv.gz").write_bytes(gzip.compress(purchases.encode()))
    script = tmp_path / "run_all.py"
    script.write_text(NO_PYTHON_WORKER_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "lake"), str(raw)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    report = json.loads(lines[0][len("REPORT ") :])
    assert report.pop("control")["python_worker_factories"] >= 1
    assert report == {
        job: {"exit": 0, "python_worker_factories": 0}
        for job in ("classify_reviews", "parse_logs", "build_dimensions", "build_fact")
    }
