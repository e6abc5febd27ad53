"""The errors a job reports to `run_job.py`, each with the process exit code it maps to.

The exit codes are part of the interface (docs/architecture.md): the driver branches on them.
Anything that is not one of these is a crash (exit 1 with a traceback).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_ARGUMENTS = 2
EXIT_UNUSABLE_INPUT = 3
EXIT_INVARIANT_BROKEN = 4


class JobError(Exception):
    """A failure the job explains in one line; `exit_code` is the process exit code."""

    exit_code = 1


class BadArguments(JobError):
    """The command line is wrong: the message says which option and what is expected."""

    exit_code = EXIT_BAD_ARGUMENTS


class UnusableInput(JobError):
    """An input file that cannot be used as a whole (missing, empty, not text, wrong header).

    Raised before anything is written, so the lake and the warehouse stay as they were.
    """

    exit_code = EXIT_UNUSABLE_INPUT

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(f"input file {uri}: {problem}")
        self.uri = uri
        self.problem = problem


class InvariantBroken(JobError):
    """A consistency check failed: a bug or corrupted staging data; nothing is published."""

    exit_code = EXIT_INVARIANT_BROKEN
