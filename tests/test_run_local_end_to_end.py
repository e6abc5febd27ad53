"""The nightly run end to end on one machine (issue 6).

Runs `emr-driver run --local` on full-size data (100,000 reviews and logs, 541,908 purchases:
generated with broken records, and the real files of ../shared/data when present, see
tests/conftest.py) against a fresh PostgreSQL database, then checks the warehouse against an
independent computation made here from the raw files with the standard library only (csv,
ElementTree, Decimal): nothing in it reads the project's outputs or imports its code. The same
date is then run a second time and the warehouse must be identical.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "target" / "release" / "emr-driver"
RUN_DATE = "2021-10-31"
PG = os.environ.get("E2E_PG_URL", "postgresql://postgres@127.0.0.1:5432")

pytestmark = pytest.mark.e2e

MISSPELLED = {
    "Pensylvania": "Pennsylvania",
    "Lousiana": "Louisiana",
    "Massachussets": "Massachusetts",
}
DEFAULT_BROWSER = {
    "Microsoft Windows": "Microsoft Edge",
    "Apple MacOS": "Safari",
    "Apple iOS": "Safari",
    "Google Android": "Google Chrome",
    "Linux": "Mozilla Firefox",
}
WORD = re.compile(r"[^\W_]+")
DATE = re.compile(r"^\d{2}-\d{2}-\d{4}$")


def open_text(path: Path):
    return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")


def as_int(text):
    try:
        return int(text.strip())
    except (AttributeError, ValueError):
        return None


def dedupe(records):
    """id -> content, keeping identical copies once and dropping ids with conflicting copies."""
    seen, conflicting = {}, set()
    for key, content in records:
        if key in seen and seen[key] != content:
            conflicting.add(key)
        seen.setdefault(key, content)
    return {k: v for k, v in seen.items() if k not in conflicting}


def expected_reviews(path):
    rows = []
    with open_text(path) as f:
        for row in csv.DictReader(f):
            rid, cid = as_int(row["id_review"]), as_int(row["cid"])
            if rid is None or cid is None:
                continue
            rows.append((rid, (cid, row["review_str"] or "")))
    reviews = dedupe(rows)
    return {
        rid: (cid, 1 if "good" in WORD.findall(text.lower()) else 0)
        for rid, (cid, text) in reviews.items()
    }


def text_of(log, name):
    node = log.find(name)
    value = node.text.strip() if node is not None and node.text else ""
    return value or None


def expected_logs(path):
    rows = []
    with open_text(path) as f:
        for row in csv.DictReader(f):
            rid = as_int(row["id_review"])
            if rid is None:
                continue
            try:
                log = ET.fromstring(row["log"]).find("log")
            except ET.ParseError:
                continue
            if log is None:
                continue
            raw_date = text_of(log, "logDate")
            if raw_date is None or not DATE.match(raw_date):
                continue
            try:
                log_date = datetime.strptime(raw_date, "%m-%d-%Y").date()
            except ValueError:
                continue
            os_name = text_of(log, "os")
            location = text_of(log, "location")
            browser = text_of(log, "browser") or DEFAULT_BROWSER.get(os_name)
            location = MISSPELLED.get(location, location)
            values = (log_date, text_of(log, "device"), location, os_name, browser)
            rows.append((rid, (row["log"], values)))
    return {rid: content[1] for rid, content in dedupe(rows).items()}


def expected_spend(path):
    spend = defaultdict(Decimal)
    with open_text(path) as f:
        for row in csv.DictReader(f):
            cid = as_int(row["CustomerID"])
            if cid is not None:
                spend[cid] += int(row["Quantity"]) * Decimal(row["UnitPrice"])
    return spend


def expected_fact(data):
    reviews = expected_reviews(data / "movie_review.csv.gz")
    logs = expected_logs(data / "log_reviews.csv.gz")
    spend = expected_spend(data / "user_purchase.csv.gz")
    fact = defaultdict(lambda: [0, 0])
    for rid, (cid, positive) in reviews.items():
        key = (cid, *logs.get(rid, (None,) * 5))
        fact[key][0] += 1
        fact[key][1] += positive
    q = Decimal("0.00001")
    return {
        key: (count, score, spend.get(key[0], Decimal(0)).quantize(q))
        for key, (count, score) in fact.items()
    }, len(reviews)


def psql(db, sql):
    out = subprocess.run(
        ["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def warehouse_fact(db):
    sql = f"""COPY (
        SELECT f.customerid, d.log_date, dv.device, l.location, o.os, b.browser,
               f.review_count, f.review_score, f.amount_spent,
               f.id_dim_date = 0, f.id_dim_devices = 0, f.id_dim_location = 0,
               f.id_dim_os = 0, f.id_dim_browser = 0
        FROM fact_movie_analytics f
        JOIN dim_date d ON d.id_dim_date = f.id_dim_date
        JOIN dim_devices dv ON dv.id_dim_devices = f.id_dim_devices
        JOIN dim_location l ON l.id_dim_location = f.id_dim_location
        JOIN dim_os o ON o.id_dim_os = f.id_dim_os
        JOIN dim_browser b ON b.id_dim_browser = f.id_dim_browser
        WHERE f.insert_date = DATE '{RUN_DATE}') TO STDOUT WITH (FORMAT csv)"""
    actual = {}
    for r in csv.reader(io.StringIO(psql(db, sql))):
        unknown = [flag == "t" for flag in r[9:14]]
        log_date = None if unknown[0] else datetime.strptime(r[1], "%Y-%m-%d").date()
        values = [None if u else v for u, v in zip(unknown[1:], r[2:6])]
        key = (int(r[0]), log_date, *values)
        assert key not in actual, f"two fact rows for one grain key {key}"
        actual[key] = (int(r[6]), int(r[7]), Decimal(r[8]))
    return actual


def run_pipeline(db, lake, raw, *extra):
    env = dict(os.environ, EMR_DRIVER_LOCAL_LAKE_DIR=str(lake))
    cmd = [
        str(DRIVER),
        "run",
        "--local",
        "--date",
        RUN_DATE,
        "--raw-dir",
        str(raw),
        "--database-url",
        f"{PG}/{db}",
        *extra,
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"exit {done.returncode}\nstderr:\n{done.stderr[-6000:]}"
    return done


@pytest.fixture()
def database():
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    name = f"e2e_{uuid.uuid4().hex[:12]}"
    psql("postgres", f"CREATE DATABASE {name}")
    yield name
    psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture()
def raw_dir(tmp_path, full_size_adversarial):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("movie_review", "log_reviews", "user_purchase"):
        os.symlink(full_size_adversarial / f"{name}.csv.gz", raw / f"{name}.csv.gz")
    return raw


def test_local_run_on_the_full_data_matches_an_independent_computation(
    database, raw_dir, tmp_path, full_size_adversarial
):
    assert DRIVER.exists(), "build the driver first: scripts/setup.sh"
    lake = tmp_path / "lake"
    first = run_pipeline(database, lake, raw_dir)

    expected, classified = expected_fact(full_size_adversarial)
    actual = warehouse_fact(database)
    assert sum(count for count, _, _ in actual.values()) == classified
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    assert not missing and not extra, (
        f"{len(missing)} expected grain rows missing (e.g. {sorted(missing, key=str)[:3]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra, key=str)[:3]})"
    )
    wrong = {k: (expected[k], actual[k]) for k in expected if expected[k] != actual[k]}
    assert not wrong, f"{len(wrong)} rows differ, e.g. {list(wrong.items())[:3]}"
    assert "succeeded" in first.stdout

    # The same date again, every step recomputed (--force; without it the completed steps of
    # the same inputs would be reused): the same warehouse, dimension ids included.
    dims_sql = (
        "SELECT string_agg(x, '|' ORDER BY x) FROM ("
        "SELECT 'd' || id_dim_date || coalesce(log_date::text, '') AS x FROM dim_date "
        "UNION ALL "
        "SELECT 'v' || id_dim_devices || device FROM dim_devices UNION ALL "
        "SELECT 'l' || id_dim_location || location FROM dim_location UNION ALL "
        "SELECT 'o' || id_dim_os || os FROM dim_os UNION ALL "
        "SELECT 'b' || id_dim_browser || browser FROM dim_browser) t"
    )
    dims_before = psql(database, dims_sql)
    second = run_pipeline(database, lake, raw_dir, "--force")
    assert "already completed" not in second.stderr
    assert warehouse_fact(database) == actual
    assert psql(database, dims_sql) == dims_before
