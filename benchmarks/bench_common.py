"""What the Python benchmarks share: where things are, generating inputs, a local Spark,
timing, and printing figures in one format that run_all.sh collects.

Every figure is printed as one line `FIGURE <name> = <value> [<unit>]` so the summary can be
grepped out of a run's output; every command a benchmark runs is printed as `$ <command>`.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("BENCH_OUT_DIR", REPO / "benchmarks" / "out"))
SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
# Popped: the driver reads EMR_DRIVER_<SECTION>_<KEY> variables as config overrides and
# warns about any other EMR_DRIVER_* one; this one is only for the scripts.
DRIVER = Path(os.environ.pop("DRIVER_BIN", REPO / "target" / "release" / "emr-driver"))
RUN_DATE = "2021-10-31"

T = TypeVar("T")


def figure(name: str, value: object, unit: str = "") -> None:
    print(f"FIGURE {name} = {value}{(' ' + unit) if unit else ''}", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def show_command(argv: Sequence[str | os.PathLike]) -> None:
    say("$ " + " ".join(shlex.quote(str(a)) for a in argv))


def announce(settings: dict[str, object]) -> None:
    """Print the command that reproduces this benchmark run, with the settings it used."""
    env = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in settings.items())
    script = os.path.relpath(sys.argv[0], REPO)
    say(f"$ {env} {os.path.relpath(sys.executable, REPO)} {script}".replace("$  ", "$ "))
    say(f"machine: {machine_line()}")


def run_command(argv: Sequence[str | os.PathLike], **kwargs) -> subprocess.CompletedProcess:
    show_command(argv)
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def require_driver() -> Path:
    if not DRIVER.is_file():
        sys.exit(
            f"benchmarks: emr-driver not found at {DRIVER}: run scripts/setup.sh "
            "(or cargo build --release -p emr-driver) or set DRIVER_BIN"
        )
    return DRIVER


def require_shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_file():
        sys.exit(
            f"benchmarks: {path} not found: set SHARED_DATA_DIR to the folder holding "
            "the real log_reviews.csv.gz, movie_review.csv.gz and user_purchase.csv.gz"
        )
    return path


def generated_inputs(reviews: int, seed: int = 7) -> Path:
    """A folder of generated vendor files with `reviews` reviews and as many logs, made
    with `emr-driver generate` unless an identical one is already there (the 1M files are
    shared by the parse_logs and classify benchmarks)."""
    folder = OUT / f"generated-{reviews}-seed{seed}"
    summary = folder / "_generated.json"
    if summary.is_file():
        say(f"(reusing {folder}, generated earlier with the same arguments)")
        return folder
    argv = [
        require_driver(),
        "generate",
        "--out",
        folder,
        "--reviews",
        str(reviews),
        "--purchases",
        "1",
        "--seed",
        str(seed),
    ]
    started = time.perf_counter()
    run_command(argv)
    say(f"generated in {time.perf_counter() - started:.1f} s")
    return folder


def local_spark(app: str, driver_memory: str = "4g"):
    """A local[2] SparkSession with the jobs' settings (the same one for both sides of a
    comparison). Workers import the project's package through PYTHONPATH."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    sys.path.insert(0, str(REPO))
    from pyspark.sql import SparkSession

    from pyspark_jobs.spark_session import apply_job_settings

    spark = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    apply_job_settings(spark)
    return spark


def timed(label: str, action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    say(f"  {label}: {seconds:.2f} s")
    return result, seconds


REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def timed_rounds(actions: dict[str, Callable[[], object]], repeats: int = REPEATS) -> dict:
    """Each action `repeats` times, interleaved, the order reversed every other round (so a
    change in the machine's load hits every side alike); {label: median seconds}."""
    times: dict[str, list[float]] = {label: [] for label in actions}
    labels = list(actions)
    for round_number in range(repeats):
        order = labels if round_number % 2 == 0 else labels[::-1]
        for label in order:
            _, seconds = timed(f"{label} (round {round_number + 1})", actions[label])
            times[label].append(seconds)
    medians = {}
    for label, values in times.items():
        medians[label] = statistics.median(values)
        say(f"  {label}: median {medians[label]:.2f} s of {', '.join(f'{v:.2f}' for v in values)}")
    return medians


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return json.dumps({"nproc": os.cpu_count(), "cpu": cpu})
