"""Staging state keyed like the data (issue #11): a rerun never loads another run's outputs.

Real processes on tiny generated data: `emr-driver generate --reviews 50` makes two different
nights A and B for one date; `emr-driver run --local` (local Spark, a fresh PostgreSQL
warehouse) runs the date with A, then with B (another run id), then with A again. After each
run the warehouse must equal an independent computation from that run's raw files
(tests/test_run_local_end_to_end.py, standard library only) and SUM(review_count) the number of
its classified reviews. Before run-scoped staging the third run skipped every step (its
manifest said COMPLETED) and loaded B's date folders with exit 0.

Then, with A published: a half-written folder of another run (no `_SUCCESS`) and garbage in
the bare date folder are never read; a step whose recorded outputs were removed is run again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_run_local_end_to_end import (  # noqa: F401 - `database` is a fixture
    RUN_DATE,
    database,
    expected_fact,
    run_pipeline,
    warehouse_fact,
)

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "target" / "release" / "emr-driver"

pytestmark = pytest.mark.e2e


def generate(out: Path, seed: int, reviews: int) -> Path:
    command = [str(DRIVER), "generate", "--out", str(out), "--gzip", "--seed", str(seed),
               "--reviews", str(reviews), "--purchases", "400"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def staging_bucket() -> str:
    """The staging bucket of config/pipeline.toml (the lake folder of `s3://<staging>/`)."""
    done = subprocess.run([str(DRIVER), "render", "--target", "local", "--date", RUN_DATE],
                          cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    published = json.loads(done.stdout)["uris"]["published"]
    return published.removeprefix("s3://").split("/", 1)[0]


def pointer(lake: Path, bucket: str) -> dict:
    return json.loads((lake / bucket / "_published" / f"dt={RUN_DATE}.json").read_text())


def local(lake: Path, uri: str) -> Path:
    return lake / uri.removeprefix("s3://")


def check_warehouse(db, data: Path):
    expected, classified = expected_fact(data)
    actual = warehouse_fact(db)
    assert sum(count for count, _, _ in actual.values()) == classified
    assert actual == expected


@pytest.fixture()
def nights(tmp_path):
    if not DRIVER.exists():
        pytest.skip(f"{DRIVER} is missing: build it with cargo nextest run --release --no-run")
    a = generate(tmp_path / "a", 1101, 50)
    b = generate(tmp_path / "b", 2202, 60)
    return a, b


def test_a_rerun_never_loads_another_runs_outputs(database, nights, tmp_path):  # noqa: F811
    a, b = nights
    lake = tmp_path / "lake"
    bucket = staging_bucket()

    run_pipeline(database, lake, a)
    check_warehouse(database, a)
    run_a = pointer(lake, bucket)
    assert run_a["run_date"] == RUN_DATE
    for name, output in run_a["outputs"].items():
        assert f"/dt={RUN_DATE}/run={run_a['run_id']}" in output["uri"], name

    run_pipeline(database, lake, b)
    check_warehouse(database, b)
    run_b = pointer(lake, bucket)
    assert run_b["run_id"] != run_a["run_id"]

    # A again: its manifest says every step COMPLETED, but its recorded outputs are no longer
    # in the store (B's publish removed the date's other run folders): every step runs again.
    again = run_pipeline(database, lake, a)
    check_warehouse(database, a)
    assert pointer(lake, bucket)["run_id"] == run_a["run_id"]
    assert "running it again" in again.stderr
    # B's superseded folder holds no file any more (the local store leaves empty directories).
    b_fact = local(lake, run_b["outputs"]["fact_movie_analytics"]["uri"])
    assert not [f for f in b_fact.rglob("*") if f.is_file()]

    # A half-written folder of another run (no _SUCCESS) and garbage in the bare date folder
    # (where every run wrote before): never read. Every step is reused (outputs unchanged).
    for folder in [
        lake / bucket / "warehouse_load" / f"dt={RUN_DATE}" / "run=2021-10-31-0000halfdone",
        lake / bucket / "warehouse_load" / f"dt={RUN_DATE}",
    ]:
        fact = folder / "fact_movie_analytics"
        fact.mkdir(parents=True, exist_ok=True)
        (fact / "part-00000-garbage.csv.gz").write_bytes(b"not a gzip file")
    bare_fact = lake / bucket / "warehouse_load" / f"dt={RUN_DATE}" / "fact_movie_analytics"
    (bare_fact / "_SUCCESS").write_bytes(b"")
    reused = run_pipeline(database, lake, a)
    assert "running it again" not in reused.stderr
    skipped = reused.stderr.count("already completed by an earlier attempt")
    assert skipped == 5, reused.stderr[-3000:]
    check_warehouse(database, a)

    # A step whose recorded outputs were removed is run again (with what depends on it), not
    # skipped; the run still loads A.
    logs = local(lake, pointer(lake, bucket)["outputs"]["review_logs"]["uri"])
    shutil.rmtree(logs)
    rebuilt = run_pipeline(database, lake, a)
    assert "parse_logs: completed by an earlier attempt, but review_logs" in rebuilt.stderr
    assert "build_fact: " in rebuilt.stderr and "running build_fact again" in rebuilt.stderr
    assert "classify_reviews: already completed by an earlier attempt" in rebuilt.stderr
    check_warehouse(database, a)
    assert any(logs.glob("part-*")) and (logs / "_SUCCESS").exists()
