"""concurrency.concurrently: at the same time, results in order, errors after every action
ended, and the step's job group, session and logs carried into the actions' threads."""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest

from pyspark_jobs import step_server
from pyspark_jobs.concurrency import concurrently
from pyspark_jobs.spark_session import step_session, use_step_session


def test_the_actions_run_at_the_same_time_and_the_results_keep_their_order():
    # Each action waits for the other at the barrier: run one after the other, it times out.
    meeting = threading.Barrier(3, timeout=30)

    def action(value):
        return lambda: (meeting.wait(), value)[1]

    assert concurrently([action("a"), action("b"), action("c")]) == ["a", "b", "c"]


def test_no_action_or_one_runs_in_the_calling_thread():
    assert concurrently([]) == []
    assert concurrently([threading.current_thread]) == [threading.current_thread()]


def test_the_first_failure_in_order_is_raised_once_every_action_has_ended():
    ended = []
    second_failing = threading.Event()

    def first_fails_after_the_second():
        second_failing.wait(30)
        raise ValueError("first")

    def second_fails():
        second_failing.set()
        raise KeyError("second")

    def slow():
        time.sleep(0.3)
        ended.append("slow")
        return 1

    with pytest.raises(ValueError, match="first"):
        concurrently([first_fails_after_the_second, second_fails, slow])
    assert ended == ["slow"]


def test_the_actions_see_the_steps_job_group_and_session(spark):
    context = spark.sparkContext
    context.setJobGroup("step-under-test", "concurrency test")
    try:
        session = spark.newSession()
        with use_step_session(session):
            seen = concurrently(
                [
                    lambda: (context.getLocalProperty("spark.jobGroup.id"), step_session()),
                    lambda: spark.range(10).count(),
                ]
            )
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    assert seen[0] == ("step-under-test", session)
    assert seen[1] == 10


def test_cancelling_the_steps_job_group_stops_the_actions_jobs(spark):
    context = spark.sparkContext
    group = "step-cancelled-under-test"
    endless = spark.range(0, 10**13, 1, 2).selectExpr("sum(id * id) AS s")

    def cancel_once_running():
        for _ in range(600):
            if context.statusTracker().getJobIdsForGroup(group):
                context.cancelJobGroup(group)
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_once_running, daemon=True)
    context.setJobGroup(group, "cancel test", interruptOnCancel=True)
    try:
        canceller.start()
        with pytest.raises(Exception, match="cancelled"):
            concurrently([endless.collect, lambda: 1])
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        canceller.join(30)


def test_what_an_action_prints_goes_to_the_steps_logs():
    step_server.install_thread_streams()
    out, err = io.StringIO(), io.StringIO()
    token = step_server._STREAMS.set((out, err))
    try:
        concurrently([lambda: print("from an action"), lambda: print("to stderr", file=sys.stderr)])
    finally:
        step_server._STREAMS.reset(token)
    assert out.getvalue() == "from an action\n"
    assert err.getvalue() == "to stderr\n"
