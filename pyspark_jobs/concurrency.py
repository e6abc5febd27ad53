"""Running a job's independent Spark actions at the same time.

Most of a job's small actions (a dimension's snapshot write, a load CSV, a count over a
cached frame) cost a fixed ~0.2 s of driver-side planning, scheduling and committing for a
task or two of real work; run one after the other, that fixed cost adds up and leaves cores
idle. Spark runs jobs submitted from different threads side by side, so a job hands its
independent actions to `concurrently`.

Each action runs in a `pyspark.InheritableThread`, which copies the calling thread's Spark
local properties: the job group (the local runner cancels a step by cancelling its job group,
and that must stop these jobs too) and the scheduler pool. Each also runs in a copy of the
caller's `contextvars` context, so the step's own session (`spark_session.job_session`) and
its log streams (`step_server`) are the ones the action sees.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any

# How often the waiting thread wakes up: a cancelled step's thread gets its StepCancelled
# (an asynchronous exception) only while it runs Python code, never inside a blocking join.
_WAIT_SLICE_SECONDS = 0.05


class _Outcome:
    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def _thread(target: Callable[[], None], name: str) -> threading.Thread:
    from pyspark import SparkContext

    if SparkContext._active_spark_context is None:
        return threading.Thread(target=target, name=name, daemon=True)
    from pyspark import InheritableThread

    return InheritableThread(target, name=name, daemon=True)


def concurrently(actions: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run `actions` at the same time; their results, in order.

    Every action runs to its end before this returns or raises, so nothing an action does
    outlives the call. When actions fail, the first failing one's exception (in the order
    given) is raised. One action (or none) runs in the calling thread.
    """
    if len(actions) <= 1:
        return [action() for action in actions]
    outcomes = [_Outcome() for _ in actions]
    threads = []
    for index, (action, outcome) in enumerate(zip(actions, outcomes)):
        context = contextvars.copy_context()

        def run(action=action, outcome=outcome, context=context) -> None:
            try:
                outcome.value = context.run(action)
            except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                outcome.error = error

        threads.append(_thread(run, f"{threading.current_thread().name}/action-{index}"))
    for thread in threads:
        thread.start()
    _wait_for(threads)
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
    return [outcome.value for outcome in outcomes]


def _wait_for(threads: Sequence[threading.Thread]) -> None:
    """Join every thread; an exception raised in the waiting thread itself (the step was
    cancelled: its job group's jobs, these threads' too, are being cancelled) is re-raised
    only once every thread has ended."""
    interrupted: BaseException | None = None
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join(_WAIT_SLICE_SECONDS)
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the joins
                interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted
