"""The local runner's shared Spark application: one SparkSession for a whole local run, into
which the driver (driver/src/runner/local.rs) submits each `run_job.py <job> ...` step.

    spark-submit --master local[2] --driver-memory 4g pyspark_jobs/step_server.py \
        --socket /tmp/emr-driver-app-XXXX/app.sock

A local run used to start one spark-submit per step: four JVM start-ups, JIT warm-ups and
query plannings, two of them at once on a 2-core machine. Here the JVM starts once, while the
driver still checks the inputs, and every step after the first finds it warm.

Protocol: JSON lines over a Unix socket the driver listens on (this process connects). Not
stdin / stdout: spark-submit's PythonRunner does not pass its stdin on to Python and merges
Python's stdout with the JVM's, where log4j and py4j write too; a socket carries only the
protocol, needs no port (nothing reachable from the network), is protected by its folder's
permissions, and its end-of-file tells each side at once that the other is gone.

    server -> driver  {"event": "ready", "application_id": "local-...", "pid": 123}
    driver -> server  {"op": "run", "step_id": "s-L...", "argv": ["parse_logs", "--run-date",
                       ...], "py_files": ["/lake/.../pyspark_jobs.zip"], "conf": {"k": "v"},
                       "stdout": "/path/stdout", "stderr": "/path/stderr"}
    server -> driver  {"event": "started", "step_id": ...}
    server -> driver  {"event": "ended", "step_id": ..., "exit_code": 0}
    server -> driver  {"event": "lost", "step_id": ...}   (it failed because the JVM is gone:
                       the application's end, which the driver reports from its exit)
    driver -> server  {"op": "cancel", "step_id": ...}
    driver -> server  {"op": "stop"}   (or end of file: the same)
    server -> driver  {"event": "error", "message": ...}   (a request it could not read)

Each step runs in its own pinned thread (pyspark.InheritableThread), under its own Spark job
group (the step id), with its own `spark.newSession()` (its `--conf spark.sql.*` settings,
then JOB_SETTINGS through `job_session`), and its own stdout / stderr: this thread's writes to
sys.stdout / sys.stderr go to the step's log files, which the driver gzips into the EMR layout
when the step ends. The exit code is run_job.py's (0, 2, 3, 4, other = crash).

Cancel: `cancelJobGroup(step id)` stops the step's running Spark job, and an asynchronous
exception stops its Python code before it starts another one; a step that still does not end
is the driver's to deal with (it kills the whole application after its grace period).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import ctypes
import io
import json
import os
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, TextIO

EXIT_CRASH = 1
EXIT_CANCELLED = 130
CANCEL_REPEAT_SECONDS = 0.5


class StepCancelled(BaseException):
    """Raised in a step's thread when the driver cancels the step (a BaseException, so job code
    catching `Exception` does not swallow it)."""


# The step's (stdout, stderr) logs, for the code the step runs. A context variable, not a
# thread-local: the threads a job starts for its concurrent actions (pyspark_jobs.concurrency)
# run in a copy of the step's context and so write to the step's logs too.
_STREAMS: contextvars.ContextVar[tuple[TextIO, TextIO] | None] = contextvars.ContextVar(
    "pyspark_jobs_step_streams", default=None
)


class _PerThreadStream(io.TextIOBase):
    """sys.stdout / sys.stderr: writes go to the current thread's step log, if it has one,
    else to the application's own stream."""

    def __init__(self, name: str, fallback: TextIO) -> None:
        super().__init__()
        self._name = name
        self._fallback = fallback

    def _target(self) -> TextIO:
        streams = _STREAMS.get()
        if streams is None:
            return self._fallback
        return streams[0] if self._name == "stdout" else streams[1]

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # Code that needs a descriptor (faulthandler) gets the application's.
        return self._fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target(), "encoding", "utf-8")


def install_thread_streams() -> None:
    """Route sys.stdout / sys.stderr per thread (once)."""
    if not isinstance(sys.stdout, _PerThreadStream):
        sys.stdout = _PerThreadStream("stdout", sys.stdout)
    if not isinstance(sys.stderr, _PerThreadStream):
        sys.stderr = _PerThreadStream("stderr", sys.stderr)


class _Step:
    def __init__(self, request: dict[str, Any]) -> None:
        self.id: str = str(request["step_id"])
        self.argv: list[str] = [str(a) for a in request.get("argv", [])]
        self.py_files: list[str] = [str(p) for p in request.get("py_files", [])]
        self.conf: dict[str, str] = {str(k): str(v) for k, v in request.get("conf", {}).items()}
        self.stdout_path = str(request["stdout"])
        self.stderr_path = str(request["stderr"])
        self.lock = threading.Lock()
        self.cancelled = False
        self.in_job = False
        self.finished = False
        self.thread: threading.Thread | None = None


def _open_log(path: str) -> TextIO:
    # Line-buffered: the log is readable while the step runs, and a crash loses little.
    return open(path, "a", encoding="utf-8", errors="backslashreplace", buffering=1)


class StepServer:
    """Runs the steps the driver sends on `conn` in `spark`'s SparkContext."""

    def __init__(
        self,
        spark: Any,
        conn: socket.socket,
        thread_factory: Callable[..., threading.Thread] | None = None,
    ) -> None:
        self.spark = spark
        self.conn = conn
        self.send_lock = threading.Lock()
        self.steps: dict[str, _Step] = {}
        self.steps_lock = threading.Lock()
        self.loaded_py_files: list[str] = []
        self.path_lock = threading.Lock()
        if thread_factory is None:
            from pyspark import InheritableThread

            thread_factory = InheritableThread
        self.thread_factory = thread_factory

    # -- protocol ---------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode("utf-8")
        # The driver gone: nothing to tell; serve() sees the end of file and stops.
        with self.send_lock, contextlib.suppress(OSError):
            self.conn.sendall(data)

    def serve(self) -> None:
        """Reads requests until `stop` or the end of the connection, then cancels what still
        runs and waits (bounded) for the step threads."""
        reader = self.conn.makefile("r", encoding="utf-8", newline="\n")
        for line in reader:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                op = request["op"]
            except (ValueError, KeyError, TypeError) as error:
                message = f"unreadable request {line[:200]!r}: {error}"
                self.send({"event": "error", "message": message})
                continue
            if op == "stop":
                break
            if op == "run":
                self.start(request)
            elif op == "cancel":
                self.cancel(str(request.get("step_id")))
            else:
                self.send({"event": "error", "message": f"unknown op {op!r}"})
        with self.steps_lock:
            running = list(self.steps.values())
        for step in running:
            self.cancel(step.id)
        for step in running:
            if step.thread is not None:
                step.thread.join(timeout=10)

    # -- steps ------------------------------------------------------------------------------

    def start(self, request: dict[str, Any]) -> None:
        try:
            step = _Step(request)
        except (KeyError, TypeError, AttributeError) as error:
            self.send({"event": "error", "message": f"a run request lacks {error}"})
            return
        with self.steps_lock:
            if step.id in self.steps:
                self.send({"event": "error", "message": f"step {step.id} is already running"})
                return
            self.steps[step.id] = step
        thread = self.thread_factory(target=self._run_step, args=(step,), name=f"step {step.id}")
        thread.daemon = True
        step.thread = thread
        thread.start()

    def cancel(self, step_id: str) -> None:
        with self.steps_lock:
            step = self.steps.get(step_id)
        if step is None:
            return
        with step.lock:
            if step.cancelled or step.finished:
                return
            step.cancelled = True
            interrupt = step.in_job and step.thread is not None and step.thread.ident is not None
            if interrupt:
                # At most once per step, and only while the job code runs (see _run_step).
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(step.thread.ident), ctypes.py_object(StepCancelled)
                )
        # The Python exception is only seen when the thread runs Python again; the job it may
        # be waiting for is stopped here, and again every half second until the step ended: a
        # job submitted just after a cancel (the thread was already inside the call that
        # starts it) is stopped too.
        watcher = threading.Thread(target=self._keep_cancelling, args=(step,), daemon=True)
        watcher.start()

    def _keep_cancelling(self, step: _Step) -> None:
        context = self.spark.sparkContext
        while True:
            with step.lock:
                if step.finished:
                    return
            try:
                context.cancelJobGroup(step.id)
            except Exception:  # noqa: BLE001 - the context is stopping: the step ends with it
                return
            time.sleep(CANCEL_REPEAT_SECONDS)

    def _run_step(self, step: _Step) -> None:
        code = EXIT_CRASH
        out = err = None
        streams_token = None
        lost = False
        try:
            out, err = _open_log(step.stdout_path), _open_log(step.stderr_path)
            streams_token = _STREAMS.set((out, err))
            self.send({"event": "started", "step_id": step.id})
            code = self._run_job_guarded(step)
        except BaseException:  # noqa: BLE001 - a step never takes the server down
            code = EXIT_CRASH
            traceback.print_exc()
        finally:
            # A failure because the JVM died under the step (killed, out of memory) is the
            # application's end, not the step's own crash: the driver learns it from the
            # application's exit, with its stderr, and gives the next step a new application.
            lost = code != 0 and not self.jvm_alive()
            if lost:
                print(f"step {step.id}: the application's JVM is gone", file=sys.stderr)
            for stream in (out, err):
                if stream is not None:
                    try:
                        stream.flush()
                        stream.close()
                    except OSError:
                        pass
            if streams_token is not None:
                _STREAMS.reset(streams_token)
            with self.steps_lock:
                self.steps.pop(step.id, None)
            if lost:
                self.send({"event": "lost", "step_id": step.id})
            else:
                self.send({"event": "ended", "step_id": step.id, "exit_code": code})

    def jvm_alive(self) -> bool:
        """True when the JVM still answers (a py4j round trip); False once it is gone."""
        try:
            self.spark.sparkContext._jvm.java.lang.System.nanoTime()
            return True
        except Exception:  # noqa: BLE001 - py4j's network errors: the JVM is unreachable
            return False

    def _run_job_guarded(self, step: _Step) -> int:
        """The job's exit code; a late cancellation exception (raised after the job returned,
        before `finished` was set) is caught here, never outside."""
        code = EXIT_CRASH
        try:
            with step.lock:
                if step.cancelled:
                    step.finished = True
                    print(f"step {step.id}: cancelled before it started", file=sys.stderr)
                    return EXIT_CANCELLED
                step.in_job = True
            code = self._run_job(step)
        except StepCancelled:
            code = EXIT_CANCELLED
        while True:
            try:
                with step.lock:
                    step.finished = True
                    step.in_job = False
                break
            except StepCancelled:
                code = EXIT_CANCELLED
        return code

    def _run_job(self, step: _Step) -> int:
        context = self.spark.sparkContext
        job = step.argv[0] if step.argv else "?"
        context.setJobGroup(step.id, f"{step.id} run_job.py {job}", interruptOnCancel=True)
        try:
            self._load_py_files(step.py_files)
            session = self.spark.newSession()
            self._apply_conf(session, step)
            print(
                f"step {step.id}: run_job.py {' '.join(step.argv)} in the shared Spark "
                f"application {context.applicationId} (job group {step.id})",
                file=sys.stderr,
            )
            from pyspark_jobs import run_job
            from pyspark_jobs.spark_session import use_step_session

            with use_step_session(session):
                return _exit_code_of(lambda: run_job.run(list(step.argv)))
        except StepCancelled:
            raise
        except BaseException:  # noqa: BLE001 - a crash of the job is the step's, with its traceback
            traceback.print_exc()
            return EXIT_CRASH
        finally:
            sys.stdout.flush()
            sys.stderr.flush()

    def _load_py_files(self, py_files: list[str]) -> None:
        """The step's `--py-files` on sys.path (for this Python) and on the context (for the
        Python workers), once per application."""
        with self.path_lock:
            for path in py_files:
                if path in self.loaded_py_files:
                    continue
                self.spark.sparkContext.addPyFile(path)
                if path not in sys.path:
                    sys.path.insert(0, path)
                self.loaded_py_files.append(path)

    @staticmethod
    def _apply_conf(session: Any, step: _Step) -> None:
        for key, value in step.conf.items():
            if not key.startswith("spark.sql."):
                print(
                    f"step {step.id}: --conf {key} applies to a whole Spark application; the "
                    "shared application keeps its own value (use local.spark_application = "
                    '"per-step" to give each step its own)',
                    file=sys.stderr,
                )
                continue
            try:
                session.conf.set(key, value)
            except Exception as error:  # noqa: BLE001 - a static SQL setting
                first = str(error).splitlines()[0] if str(error) else type(error).__name__
                note = f"step {step.id}: --conf {key} not set for this step: {first}"
                print(note, file=sys.stderr)


def _exit_code_of(call: Callable[[], Any]) -> int:
    """run_job's return value, or the code of a SystemExit (argparse's 2), as the process exit
    code would be."""
    try:
        result = call()
    except SystemExit as exit_:
        result = exit_.code
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    print(result, file=sys.stderr)
    return EXIT_CRASH


def _without_own_folder_on_path() -> None:
    """Run as a script, Python puts this file's folder (the package folder) first on sys.path,
    where its modules would shadow top-level ones; the package comes from the steps' zip."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="step_server.py", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", required=True, help="the Unix socket the driver listens on")
    args = parser.parse_args(argv)
    _without_own_folder_on_path()
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("emr-driver local steps").getOrCreate()
    install_thread_streams()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(args.socket)
    server = StepServer(spark, conn)
    server.send(
        {"event": "ready", "application_id": spark.sparkContext.applicationId, "pid": os.getpid()}
    )
    try:
        server.serve()
    finally:
        conn.close()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
