"""Entry point of every Spark job: `run_job.py <job> --run-date D [options]`.

    spark-submit --py-files pyspark_jobs.zip run_job.py parse_logs --run-date 2021-10-31 \
        --input s3://raw/incoming/dt=2021-10-31/log_reviews.csv.gz --output ... --rejects ... \
        --metrics ...

Exit codes (docs/architecture.md): 0 success, 2 bad arguments, 3 an input file unusable as
a whole (one line on stderr naming the file and the problem), 4 an invariant broken; any
other failure is a crash with a traceback.

Works from `pyspark_jobs.zip` (shipped with --py-files) and from the source tree
(`python pyspark_jobs/run_job.py ...` or with the repository root on sys.path).
"""

from __future__ import annotations

import importlib
import os
import sys

JOBS = ("classify_reviews", "parse_logs", "build_dimensions", "build_fact")
EXIT_BAD_ARGUMENTS = 2


def _use_repository_root_when_run_from_the_source_tree() -> None:
    """Run as `python pyspark_jobs/run_job.py`, Python puts the package folder itself first
    on sys.path, where its modules would shadow top-level ones; use its parent instead."""
    here = os.path.dirname(os.path.abspath(__file__))
    if not os.path.isfile(os.path.join(here, "__init__.py")):
        return
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == here:
        sys.path[0] = os.path.dirname(here)
    elif os.path.dirname(here) not in sys.path:
        sys.path.append(os.path.dirname(here))


def run(argv: list[str]) -> int:
    """Dispatch `argv` (`<job> [options]`) to the job's `main`; returns the exit code."""
    usage = f"usage: run_job.py {{{','.join(JOBS)}}} --run-date YYYY-MM-DD [options]"
    if not argv or argv[0] not in JOBS:
        given = f"unknown job {argv[0]!r}" if argv else "no job given"
        print(f"run_job.py: error: {given}; {usage}", file=sys.stderr)
        return EXIT_BAD_ARGUMENTS
    from pyspark_jobs.errors import JobError

    job = importlib.import_module(f"pyspark_jobs.{argv[0]}")
    try:
        return job.main(argv[1:])
    except JobError as error:
        one_line = " ".join(str(error).split())
        report(f"run_job.py {argv[0]}: error: {one_line}")
        return error.exit_code


def report(line: str) -> None:
    """Print `line` on stderr, and on spark-submit's own stderr when it launched us.

    spark-submit's PythonRunner merges the Python process's stderr into its stdout, so on
    an EMR step the line would only reach the step's stdout log; the JVM's System.err is
    the step's stderr."""
    print(line, file=sys.stderr, flush=True)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return
    from pyspark_jobs.spark_session import step_session

    if step_session() is not None:
        # Inside the local runner's shared application (step_server.py) this thread's stderr
        # already is the step's own stderr log; the JVM's System.err is the application's,
        # shared by every step, where the line would be misattributed.
        return
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is not None:
        context._jvm.System.err.println(line)


if __name__ == "__main__":
    _use_repository_root_when_run_from_the_source_tree()
    sys.exit(run(sys.argv[1:]))
