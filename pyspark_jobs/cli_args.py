"""Command-line parsing shared by the jobs: `--run-date D` plus each job's URI options.

Every URI comes from the command line (the driver renders them); nothing is hard-coded.
A usage error raises `BadArguments` (exit code 2) instead of argparse's own exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from pyspark_jobs.errors import BadArguments


class Option(NamedTuple):
    flag: str
    help: str
    required: bool = True


class _RaisingParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so run_job.py owns the exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadArguments(f"{message} ({self.format_usage().strip()})")


def parse_run_date(text: str) -> dt.date:
    """`YYYY-MM-DD`, a real calendar date, or BadArguments."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadArguments(
            f"--run-date {text!r} is not a date: give the run's logical date as YYYY-MM-DD"
        ) from None


def parse_job_args(job: str, argv: Sequence[str], options: Sequence[Option]) -> argparse.Namespace:
    """Parse `--run-date D` and `options`; the result has `run_date` as a `datetime.date`."""
    parser = _RaisingParser(prog=f"run_job.py {job}", add_help=False)
    parser.add_argument("--run-date", required=True, help="the run's logical date, YYYY-MM-DD")
    for option in options:
        parser.add_argument(option.flag, required=option.required, help=option.help)
    args = parser.parse_args(list(argv))
    args.run_date = parse_run_date(args.run_date)
    for option in options:
        value = getattr(args, option.flag.lstrip("-").replace("-", "_"))
        if value is not None and not value.strip():
            raise BadArguments(f"{option.flag} is empty: give {option.help}")
    return args
