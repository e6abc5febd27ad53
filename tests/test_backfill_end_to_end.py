"""`emr-driver backfill` end to end on the local Spark (issue 17).

Three small generated nights (different seeds and sizes, so later nights bring dimension
values the earlier ones did not have) are backfilled with `--parallel 2` into one lake and a
fresh PostgreSQL database. The first attempt is interrupted with SIGTERM as soon as the JSON
events show a step RUNNING, and must exit 4 (cancelled); the same command again completes.
The same nights run one by one with `run`, in date order, into another lake and database: the
dimensions (ids and values) and the fact rows must be identical. A third identical backfill
must skip every date and run no Spark step.

Slow on a loaded machine (a dozen Spark steps each way): marked e2e like the other end-to-end
tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "target" / "release" / "emr-driver"
PG = os.environ.get("E2E_PG_URL", "postgresql://postgres@127.0.0.1:5432")
# (date, reviews, seed): the first night small, so later nights have new locations.
NIGHTS = [("2021-03-01", 15, 101), ("2021-03-02", 40, 202), ("2021-03-03", 120, 303)]
DIMS = {
    "dim_date": "id_dim_date, log_date, day, month, year, season",
    "dim_devices": "id_dim_devices, device",
    "dim_location": "id_dim_location, location, state_code, region",
    "dim_os": "id_dim_os, os",
    "dim_browser": "id_dim_browser, browser",
}
FACT = (
    "customerid, id_dim_date, id_dim_devices, id_dim_location, id_dim_os, id_dim_browser, "
    "amount_spent, review_score, review_count, insert_date"
)

pytestmark = pytest.mark.e2e


def psql(db, sql):
    out = subprocess.run(
        ["psql", f"{PG}/{db}", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


@pytest.fixture()
def databases():
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")
    if not DRIVER.exists():
        pytest.skip("build the driver first: cargo build --release")
    names = [f"e2e_backfill_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        psql("postgres", f"CREATE DATABASE {name}")
    yield names
    for name in names:
        psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture()
def raw_dir(tmp_path):
    raw = tmp_path / "raw"
    for date, reviews, seed in NIGHTS:
        subprocess.run(
            [
                str(DRIVER),
                "generate",
                "--out",
                str(raw / f"dt={date}"),
                "--reviews",
                str(reviews),
                "--seed",
                str(seed),
                "--start-date",
                "2021-02-01",
                "--end-date",
                date,
            ],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
    return raw


def driver(lake, *args):
    env = dict(os.environ, EMR_DRIVER_LOCAL_LAKE_DIR=str(lake))
    return [str(DRIVER), *args], env


def backfill_args(db, raw, *extra):
    first, last = NIGHTS[0][0], NIGHTS[-1][0]
    return [
        "--output",
        "json",
        "backfill",
        "--local",
        "--from",
        first,
        "--to",
        last,
        "--parallel",
        "2",
        "--raw-dir",
        str(raw),
        "--database-url",
        f"{PG}/{db}",
        *extra,
    ]


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def run_backfill(db, lake, raw):
    cmd, env = driver(lake, *backfill_args(db, raw))
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    return done, events(done.stdout)


def table(db, name, columns):
    return psql(db, f"SELECT {columns} FROM {name} ORDER BY {columns}").splitlines()


def test_parallel_backfill_equals_one_by_one_runs_resumes_and_skips(databases, raw_dir, tmp_path):
    backfilled, one_by_one = databases
    lake = tmp_path / "lake-backfill"

    # 1. Interrupted: SIGTERM as soon as the first step is RUNNING (seen in the JSON events).
    cmd, env = driver(lake, *backfill_args(backfilled, raw_dir))
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    for line in proc.stdout:
        event = json.loads(line)
        seen.append(event)
        if event.get("event") == "step_state" and event.get("state") == "RUNNING":
            proc.send_signal(signal.SIGTERM)
            break
    rest, stderr = proc.communicate(timeout=900)
    seen += events(rest)
    assert proc.returncode == 4, f"exit {proc.returncode}\n{stderr[-4000:]}"
    finished = [e for e in seen if e.get("event") == "backfill_finished"]
    assert finished and finished[0]["exit_code"] == 4
    states = {d["date"]: d["state"] for d in finished[0]["dates"]}
    assert "cancelled" in states.values(), states
    assert "succeeded" not in states.values(), states

    # 2. The same command again completes every date.
    done, seen = run_backfill(backfilled, lake, raw_dir)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stderr[-6000:]}"
    finished = [e for e in seen if e.get("event") == "backfill_finished"][0]
    assert [d["state"] for d in finished["dates"]] == ["succeeded"] * len(NIGHTS)
    per_date = [e for e in seen if e.get("event") == "backfill_date"]
    assert len(per_date) == 2 * len(NIGHTS)  # started, ended

    # 3. One-by-one runs in date order, elsewhere.
    for date, _, _ in NIGHTS:
        cmd, env = driver(
            tmp_path / "lake-one-by-one",
            "run",
            "--local",
            "--date",
            date,
            "--raw-dir",
            str(raw_dir / f"dt={date}"),
            "--database-url",
            f"{PG}/{one_by_one}",
        )
        run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, f"{date}: exit {run.returncode}\n{run.stderr[-6000:]}"

    # The nights do bring new members later (else the order could not matter).
    locations = table(one_by_one, "dim_location", "id_dim_location")
    assert len(locations) > 10
    for name, columns in DIMS.items():
        assert table(backfilled, name, columns) == table(one_by_one, name, columns), name
    fact = table(backfilled, "fact_movie_analytics", FACT)
    assert fact and fact == table(one_by_one, "fact_movie_analytics", FACT)

    # 4. The same backfill again: every date skipped, no Spark step.
    done, seen = run_backfill(backfilled, lake, raw_dir)
    assert done.returncode == 0, done.stderr[-4000:]
    finished = [e for e in seen if e.get("event") == "backfill_finished"][0]
    assert [d["state"] for d in finished["dates"]] == ["skipped"] * len(NIGHTS)
    assert not [e for e in seen if e.get("event") == "step_state"]
    assert table(backfilled, "fact_movie_analytics", FACT) == fact
