"""run_job.py: dispatch, exit codes and one-line errors (argument errors need no Spark)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyspark_jobs import run_job

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "pyspark_jobs" / "run_job.py"


LOG_OPTIONS = ("parse_logs", "--input", "a", "--output", "b", "--rejects", "c", "--metrics", "d")


def run_script(*args: str) -> subprocess.CompletedProcess:
    """Run the entry script from the source tree as spark-submit would run it."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT / "pyspark_jobs",  # not the repo root: the script must find its package
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no job given"),
        (("tokenize",), "unknown job 'tokenize'"),
        ((*LOG_OPTIONS, "--run-date", "2021-13-01"), "--run-date '2021-13-01' is not a date"),
        ((*LOG_OPTIONS, "--run-date", "20211031"), "is not a date"),
        (("parse_logs", "--run-date", "2021-10-31"), "the following arguments are required"),
        (
            ("classify_reviews", "--run-date", "2021-10-31", "--input", "a", "--output", "b",
             "--rejects", "c", "--metrics", "d", "--colour", "red"),
            "unrecognized arguments: --colour red",
        ),
        (
            ("build_fact", "--run-date", "2021-10-31", "--reviews", " ", "--review-logs", "b",
             "--purchases", "c", "--dims-root", "d", "--output", "e", "--load-root", "f",
             "--metrics", "g"),
            "--reviews is empty",
        ),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_with_one_line(args, message):
    result = run_script(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_an_unusable_input_exits_3_naming_the_file(spark, tmp_path, capsys):
    missing = tmp_path / "incoming" / "movie_review.csv"
    code = run_job.run(
        [
            "classify_reviews",
            "--run-date", "2021-10-31",
            "--input", str(missing),
            "--output", str(tmp_path / "out"),
            "--rejects", str(tmp_path / "rejects"),
            "--metrics", str(tmp_path / "metrics"),
        ]
    )  # fmt: skip
    assert code == 3
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(missing) in line and "does not exist" in line
