"""All four Spark jobs through `spark-submit`, on full-size data (generated, and the shared
real files when present: see tests/conftest.py).

Runs the jobs the way an EMR step does (`spark-submit --py-files pyspark_jobs.zip
run_job.py <job> ...`, the entry script alone in its folder) on a local Spark, then checks
the outputs against answers computed here independently, with the standard library:
row accounting, the `good` rule, the invariant SUM(review_count) = classified reviews,
reviews per canonical state, and each customer's net spend.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN = "2021-10-31"
MISSPELLINGS = {"Pensylvania": "Pennsylvania", "Lousiana": "Louisiana",
                "Massachussets": "Massachusetts"}  # fmt: skip
EXPORT_HEADER = ["invoice_number", "stock_code", "detail", "quantity", "invoice_date",
                 "unit_price", "customer_id", "country"]  # fmt: skip


def read_gzip_csv(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def load_csv(folder: Path) -> list[dict[str, str]]:
    """Every row of a load folder's part files, each of which starts with the same header
    (an empty partition's file may be empty)."""
    parts = sorted(folder.glob("part-*.csv.gz"))
    assert parts, f"no part file in {folder}"
    out, header = [], None
    for part in parts:
        rows = read_gzip_csv(part)
        if not rows:
            continue
        assert header in (None, rows[0]), f"{part} has another header: {rows[0]}"
        header = rows[0]
        out += [dict(zip(header, row)) for row in rows[1:]]
    return out


def export_purchases(source: Path, target: Path) -> None:
    """The UCI file in the staging export format (the driver's job, redone independently)."""
    target.parent.mkdir(parents=True)
    # ExitStack, not a parenthesised `with (a, b):`, which Python 3.9 does not accept.
    with contextlib.ExitStack() as files:
        src = files.enter_context(gzip.open(source, "rt", encoding="utf-8", newline=""))
        dst = files.enter_context(gzip.open(target, "wt", encoding="utf-8", newline=""))
        reader = csv.DictReader(src)
        writer = csv.writer(dst, lineterminator="\n")
        writer.writerow(EXPORT_HEADER)
        for row in reader:
            when = dt.datetime.strptime(row["InvoiceDate"], "%m/%d/%Y %H:%M")
            writer.writerow([row["InvoiceNo"], row["StockCode"], row["Description"],
                             row["Quantity"], when.strftime("%Y-%m-%d %H:%M:%S"),
                             row["UnitPrice"], row["CustomerID"], row["Country"]])  # fmt: skip


def build_zip(target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((REPO_ROOT / "pyspark_jobs").rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if "tests" not in relative.parts:
                archive.write(path, str(relative))


def spark_submit(work: Path, job: str, *options: str) -> subprocess.CompletedProcess:
    venv_bin = REPO_ROOT / ".venv" / "bin"
    env = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    command = [
        str(venv_bin / "spark-submit"), "--master", "local[2]",
        "--driver-memory", "2g",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=4",
        "--py-files", str(work / "pyspark_jobs.zip"),
        str(work / "entry" / "run_job.py"), job, "--run-date", RUN, *options,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)


def metrics(lake: Path, job: str) -> dict:
    (part,) = sorted((lake / "_metrics" / f"dt={RUN}" / job).glob("part-*"))
    return json.loads(part.read_text())


def expected_positive_reviews(data: Path) -> tuple[int, set[str]]:
    positive, customers = 0, set()
    for cid, text, _ in read_gzip_csv(data / "movie_review.csv.gz")[1:]:
        words = re.findall(r"[^\W_]+", text)
        positive += any(w.lower() == "good" for w in words)
        customers.add(cid)
    return positive, customers


def expected_reviews_per_state(data: Path) -> Counter:
    counts: Counter = Counter()
    for _, document in read_gzip_csv(data / "log_reviews.csv.gz")[1:]:
        location = ET.fromstring(document).findtext("log/location").strip()
        counts[MISSPELLINGS.get(location, location)] += 1
    return counts


def expected_spend(data: Path) -> dict[str, Decimal]:
    spend: dict[str, Decimal] = defaultdict(Decimal)
    rows = read_gzip_csv(data / "user_purchase.csv.gz")
    for row in (dict(zip(rows[0], values)) for values in rows[1:]):
        if row["CustomerID"]:
            spend[row["CustomerID"]] += Decimal(row["Quantity"]) * Decimal(row["UnitPrice"])
    return spend


def data_rows(path: Path) -> int:
    """Records in a gzip CSV, header excluded (the csv module: records, not lines)."""
    return len(read_gzip_csv(path)) - 1


def test_all_jobs_on_the_full_data(tmp_path, full_size_clean):
    data = full_size_clean
    lake, work = tmp_path / "lake", tmp_path / "work"
    (work / "entry").mkdir(parents=True)
    build_zip(work / "pyspark_jobs.zip")
    shutil.copy(REPO_ROOT / "pyspark_jobs" / "run_job.py", work / "entry" / "run_job.py")
    staging = lake / "staging"
    purchases = staging / "user_purchase" / f"dt={RUN}"
    export_purchases(data / "user_purchase.csv.gz", purchases / "user_purchase.csv.gz")
    part = f"dt={RUN}"

    def metrics_uri(job):
        return str(staging / "_metrics" / part / job)

    steps = [
        ("classify_reviews", "--input", str(data / "movie_review.csv.gz"),
         "--output", str(staging / "classified_movie_review" / part),
         "--rejects", str(staging / "rejects" / "movie_review" / part),
         "--metrics", metrics_uri("classify_reviews")),
        ("parse_logs", "--input", str(data / "log_reviews.csv.gz"),
         "--output", str(staging / "review_logs" / part),
         "--rejects", str(staging / "rejects" / "log_reviews" / part),
         "--metrics", metrics_uri("parse_logs")),
        ("build_dimensions", "--review-logs", str(staging / "review_logs" / part),
         "--dims-root", str(staging / "dims"),
         "--load-root", str(staging / "warehouse_load" / part),
         "--metrics", metrics_uri("build_dimensions")),
        ("build_fact", "--reviews", str(staging / "classified_movie_review" / part),
         "--review-logs", str(staging / "review_logs" / part),
         "--purchases", str(purchases), "--dims-root", str(staging / "dims"),
         "--output", str(staging / "fact_movie_analytics" / part),
         "--load-root", str(staging / "warehouse_load" / part),
         "--rejects", str(staging / "rejects" / "user_purchase" / part),
         "--metrics", metrics_uri("build_fact")),
    ]  # fmt: skip
    for job, *options in steps:
        result = spark_submit(work, job, *options)
        assert result.returncode == 0, f"{job} failed:\n{result.stderr[-4000:]}"

    # Row accounting: every input row is output or rejected.
    found = {job: metrics(staging, job) for job, *_ in steps}
    for job, document in found.items():
        for source, counts in document["sources"].items():
            assert counts["rows_in"] == counts["rows_out"] + counts["rows_rejected"], (job, source)
            assert counts["rows_rejected"] == sum(counts["rejected_by_reason"].values())
    reviews = found["classify_reviews"]["sources"]["movie_review"]
    logs = found["parse_logs"]["sources"]["log_reviews"]
    purchase_counts = found["build_fact"]["sources"]["user_purchase"]
    assert reviews["rows_in"] == data_rows(data / "movie_review.csv.gz") == 100_000
    assert logs["rows_in"] == data_rows(data / "log_reviews.csv.gz") == 100_000
    assert purchase_counts["rows_in"] == data_rows(data / "user_purchase.csv.gz") == 541_908

    # The `good` rule, against an independent implementation.
    positive, _ = expected_positive_reviews(data)
    assert found["classify_reviews"]["checks"]["positive_reviews"] == positive

    # The fact: SUM(review_count) = classified reviews; SUM(review_score) = positives.
    fact = load_csv(staging / "warehouse_load" / part / "fact_movie_analytics")
    assert sum(int(r["review_count"]) for r in fact) == reviews["rows_out"]
    assert sum(int(r["review_score"]) for r in fact) == positive
    assert found["build_fact"]["checks"]["sum_review_count"] == reviews["rows_out"]
    assert found["build_fact"]["outputs"]["fact_movie_analytics"] == len(fact)
    grain = Counter(
        tuple(r[k] for k in ("customerid", "id_dim_date", "id_dim_devices", "id_dim_location",
                             "id_dim_os", "id_dim_browser"))
        for r in fact
    )  # fmt: skip
    assert max(grain.values()) == 1, "one fact row per grain"

    # Reviews per canonical state, through dim_location.
    locations = {r["id_dim_location"]: r for r in load_csv(
        staging / "warehouse_load" / part / "dim_location")}  # fmt: skip
    per_state: Counter = Counter()
    for row in fact:
        per_state[locations[row["id_dim_location"]]["location"]] += int(row["review_count"])
    assert per_state == expected_reviews_per_state(data)
    assert not set(MISSPELLINGS) & set(per_state)
    pennsylvania = next(r for r in locations.values() if r["location"] == "Pennsylvania")
    assert (pennsylvania["state_code"], pennsylvania["region"]) == ("PA", "Northeast")

    # amount_spent: each customer's net spend (returns included), 0 without purchases.
    spend = expected_spend(data)
    per_customer = {r["customerid"]: Decimal(r["amount_spent"]) for r in fact}
    for row in fact:
        assert Decimal(row["amount_spent"]) == per_customer[row["customerid"]]
    for customer, amount in per_customer.items():
        assert amount == spend.get(customer, Decimal(0)).quantize(Decimal("0.00001")), customer
    assert found["build_fact"]["warnings"]["customers_without_purchases"] == sum(
        1 for c in per_customer if c not in spend
    )


def test_spark_submit_exits_3_for_a_missing_input(tmp_path):
    work = tmp_path / "work"
    (work / "entry").mkdir(parents=True)
    build_zip(work / "pyspark_jobs.zip")
    shutil.copy(REPO_ROOT / "pyspark_jobs" / "run_job.py", work / "entry" / "run_job.py")
    missing = tmp_path / "incoming" / "log_reviews.csv.gz"
    result = spark_submit(
        work, "parse_logs", "--input", str(missing), "--output", str(tmp_path / "o"),
        "--rejects", str(tmp_path / "r"), "--metrics", str(tmp_path / "m"),
    )  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    # spark-submit merges the Python process's stderr into its stdout: the line is in both.
    for stream in (result.stderr, result.stdout):
        errors = [line for line in stream.splitlines() if "run_job.py parse_logs: error" in line]
        assert len(errors) == 1, stream[-3000:]
        assert str(missing) in errors[0] and "does not exist" in errors[0]
