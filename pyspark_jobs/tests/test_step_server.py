"""step_server.py: the protocol, per-step sessions, logs, exit codes and cancellation, against
the test session's SparkContext (the driver's side of the socket is played by the test)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from pyspark_jobs import run_job, step_server
from pyspark_jobs.spark_session import job_session, step_session


class Driver:
    """The driver's end of the socket: sends requests, collects events."""

    def __init__(self, spark) -> None:
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.reader = ours.makefile("r", encoding="utf-8")
        self.server = step_server.StepServer(spark, theirs)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.ended: dict[str, int] = {}
        self.events: list[dict] = []

    def send(self, message: dict) -> None:
        self.sock.sendall((json.dumps(message) + "\n").encode())

    def run(self, tmp: Path, step_id: str, argv: list[str], conf: dict | None = None) -> Path:
        # Here, not in the fixture: pytest puts its own sys.stderr in place for the test's body.
        step_server.install_thread_streams()
        folder = tmp / step_id
        folder.mkdir()
        self.send(
            {
                "op": "run",
                "step_id": step_id,
                "argv": argv,
                "py_files": [],
                "conf": conf or {},
                "stdout": str(folder / "stdout"),
                "stderr": str(folder / "stderr"),
            }
        )
        return folder

    def next_event(self) -> dict:
        line = self.reader.readline()
        assert line, "the server closed the connection"
        event = json.loads(line)
        self.events.append(event)
        if event.get("event") == "ended":
            self.ended[event["step_id"]] = event["exit_code"]
        return event

    def wait_ended(self, *step_ids: str, timeout: float = 120) -> None:
        self.sock.settimeout(timeout)
        while not all(s in self.ended for s in step_ids):
            self.next_event()

    def wait_started(self, step_id: str) -> None:
        while not any(e == {"event": "started", "step_id": step_id} for e in self.events):
            self.next_event()

    def stop(self) -> None:
        self.send({"op": "stop"})
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        self.sock.close()


@pytest.fixture
def driver(spark):
    d = Driver(spark)
    yield d
    d.stop()


def test_bad_arguments_exit_2_with_the_usage_in_the_steps_stderr(driver, tmp_path):
    folder = driver.run(tmp_path, "s-BAD", ["parse_logs", "--run-date", "2021-10-31"])
    driver.wait_ended("s-BAD")
    assert driver.ended["s-BAD"] == 2
    stderr = (folder / "stderr").read_text()
    assert "the following arguments are required" in stderr
    assert "s-BAD" in stderr and "shared Spark application" in stderr


def test_an_unusable_input_exits_3_with_the_job_error_line(driver, tmp_path):
    missing = tmp_path / "incoming" / "log_reviews.csv"
    argv = ["parse_logs", "--run-date", "2021-10-31", "--input", str(missing)]
    argv += ["--output", str(tmp_path / "o"), "--rejects", str(tmp_path / "r")]
    argv += ["--metrics", str(tmp_path / "m")]
    folder = driver.run(tmp_path, "s-UNUSABLE", argv)
    driver.wait_ended("s-UNUSABLE")
    assert driver.ended["s-UNUSABLE"] == 3
    lines = (folder / "stderr").read_text().splitlines()
    assert any(line.startswith("run_job.py parse_logs: error: input file") for line in lines), lines
    assert not (tmp_path / "o").exists(), "nothing written"


def test_a_crash_is_exit_1_with_its_traceback(driver, tmp_path, monkeypatch):
    def crash(argv):
        def load(x):
            return 1 / x

        return load(0)

    monkeypatch.setattr(run_job, "run", crash)
    folder = driver.run(tmp_path, "s-CRASH", ["parse_logs"])
    driver.wait_ended("s-CRASH")
    assert driver.ended["s-CRASH"] == 1
    stderr = (folder / "stderr").read_text()
    assert "Traceback (most recent call last):" in stderr
    assert stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "in load" in stderr


def test_a_failure_with_the_jvm_gone_is_the_applications_end(driver, tmp_path, monkeypatch):
    def jvm_dies(argv):
        monkeypatch.setattr(driver.server, "jvm_alive", lambda: False)
        raise ConnectionRefusedError("py4j: the gateway is unreachable")

    monkeypatch.setattr(run_job, "run", jvm_dies)
    folder = driver.run(tmp_path, "s-LOST", ["parse_logs"])
    while {"event": "lost", "step_id": "s-LOST"} not in driver.events:
        driver.next_event()
    assert "s-LOST" not in driver.ended, "no exit code: the driver reports the application's end"
    assert "the application's JVM is gone" in (folder / "stderr").read_text()


def test_a_failure_with_the_jvm_alive_is_the_steps_own(driver):
    assert driver.server.jvm_alive(), "the test session's JVM answers"


def test_concurrent_steps_get_their_own_session_conf_and_logs(driver, tmp_path, monkeypatch):
    both_running = threading.Barrier(2, timeout=60)

    def job(argv):
        name = argv[0]
        spark = job_session(name)
        assert step_session() is spark
        # Both steps are inside their job at once: their output interleaves in time.
        both_running.wait()
        for i in range(50):
            print(f"{name} out {i}")
            print(f"{name} err {i}", file=sys.stderr)
        partitions = spark.conf.get("spark.sql.shuffle.partitions")
        print(f"{name} partitions={partitions} rows={spark.range(0, 7).count()}")
        group = spark.sparkContext.getLocalProperty("spark.jobGroup.id")
        print(f"{name} group={group}")
        return 0

    monkeypatch.setattr(run_job, "run", job)
    a = driver.run(tmp_path, "s-A", ["alpha"], {"spark.sql.shuffle.partitions": "3"})
    b = driver.run(tmp_path, "s-B", ["beta"], {"spark.sql.shuffle.partitions": "5"})
    driver.wait_ended("s-A", "s-B")
    assert driver.ended == {"s-A": 0, "s-B": 0}
    a_out, b_out = (a / "stdout").read_text(), (b / "stdout").read_text()
    assert "alpha partitions=3 rows=7" in a_out
    assert "beta partitions=5 rows=7" in b_out
    assert "alpha group=s-A" in a_out and "beta group=s-B" in b_out
    assert "beta" not in a_out and "alpha" not in b_out
    a_err, b_err = (a / "stderr").read_text(), (b / "stderr").read_text()
    assert a_err.count("alpha err") == 50 and "beta err" not in a_err
    assert b_err.count("beta err") == 50 and "alpha err" not in b_err


def test_non_sql_conf_is_reported_not_applied(driver, tmp_path, monkeypatch):
    monkeypatch.setattr(run_job, "run", lambda argv: 0)
    folder = driver.run(tmp_path, "s-CONF", ["x"], {"spark.executor.memory": "64g"})
    driver.wait_ended("s-CONF")
    assert driver.ended["s-CONF"] == 0
    assert (
        "--conf spark.executor.memory applies to a whole Spark application"
        in (folder / "stderr").read_text()
    )


def test_cancel_stops_the_running_spark_job_and_leaves_the_other_step_running(
    driver, tmp_path, monkeypatch
):
    release = threading.Event()

    def job(argv):
        spark = job_session(argv[0])
        if argv[0] == "endless":
            # Hours of work: only the cancel can end it.
            spark.range(0, 10**13, numPartitions=2).selectExpr("sum(id)").collect()
            print("endless finished")
            return 0
        release.wait(timeout=60)
        return 0

    monkeypatch.setattr(run_job, "run", job)
    endless = driver.run(tmp_path, "s-ENDLESS", ["endless"])
    driver.run(tmp_path, "s-OTHER", ["other"])
    driver.wait_started("s-ENDLESS")
    spark_context = driver.server.spark.sparkContext
    deadline = time.monotonic() + 60
    while not spark_context.statusTracker().getJobIdsForGroup("s-ENDLESS"):
        assert time.monotonic() < deadline, "the endless job never started"
        time.sleep(0.05)
    driver.send({"op": "cancel", "step_id": "s-ENDLESS"})
    driver.wait_ended("s-ENDLESS", timeout=60)
    assert driver.ended["s-ENDLESS"] not in (0, 2, 3, 4)
    assert "s-OTHER" not in driver.ended, "the other step was not touched"
    assert "endless finished" not in (endless / "stdout").read_text()
    release.set()
    driver.wait_ended("s-OTHER")
    assert driver.ended["s-OTHER"] == 0


def test_cancel_stops_python_code_between_spark_jobs(driver, tmp_path, monkeypatch):
    started = threading.Event()

    def job(argv):
        started.set()
        while True:  # pure Python: no Spark job to cancel
            time.sleep(0.01)

    monkeypatch.setattr(run_job, "run", job)
    driver.run(tmp_path, "s-LOOP", ["loop"])
    assert started.wait(60)
    driver.send({"op": "cancel", "step_id": "s-LOOP"})
    driver.wait_ended("s-LOOP", timeout=30)
    assert driver.ended["s-LOOP"] == step_server.EXIT_CANCELLED


def test_unreadable_requests_are_answered_with_an_error(driver):
    driver.sock.sendall(b"not json\n")
    driver.send({"op": "fly"})
    driver.send({"op": "run"})
    driver.sock.settimeout(30)
    errors = [driver.next_event() for _ in range(3)]
    assert [e["event"] for e in errors] == ["error", "error", "error"]
    assert "unknown op 'fly'" in errors[1]["message"]
