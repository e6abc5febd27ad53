"""How busy a Spark application kept its task slots, from its event log.

    python benchmarks/spark_tasks.py PREFIX EVENT_LOG [EVENT_LOG ...]

Reads Spark event logs (JSON lines, as `spark.eventLog.enabled=true` writes them; plain files,
not compressed) and prints, for all of them together:

* the application's span and how many seconds of it had 0, 1, 2, ... tasks running at once
  (`FIGURE <PREFIX>.tasks.running_<n>.seconds`): where a run is serial, and where the cut of
  the vendor files into parts gives the task slots work at the same time;
* the tasks' summed run time, CPU time and GC time (`<PREFIX>.tasks.run_seconds`,
  `.cpu_seconds`, `.gc_seconds`): run time well above CPU time means the tasks waited for a
  CPU (other threads of the machine, the JIT compilers above all, had it) or for I/O.

Standard library only; Python 3.9+. Events it does not know are skipped, so a newer Spark
gives a shorter table, never a failed benchmark.
"""

from __future__ import annotations

import collections
import json
import sys
from dataclasses import dataclass, field


@dataclass
class TaskProfile:
    """What one or more event logs say about their tasks (times in milliseconds)."""

    span_ms: int = 0
    running_ms: dict[int, int] = field(default_factory=dict)
    run_ms: int = 0
    cpu_ms: float = 0.0
    gc_ms: int = 0
    tasks: int = 0


def read_events(lines) -> list[dict]:
    """The events of an event log's lines; a line that is not JSON (a log cut short by a crash)
    is skipped."""
    events = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def profile(events: list[dict]) -> TaskProfile:
    """Seconds with each number of tasks running, over the application's span (its start to its
    end event; the first and last task when either is missing), and the tasks' summed metrics."""
    result = TaskProfile()
    starts, ends, changes = [], [], []
    for event in events:
        kind = event.get("Event")
        if kind == "SparkListenerApplicationStart" and "Timestamp" in event:
            starts.append(event["Timestamp"])
        elif kind == "SparkListenerApplicationEnd" and "Timestamp" in event:
            ends.append(event["Timestamp"])
        elif kind == "SparkListenerTaskEnd":
            info = event.get("Task Info") or {}
            launched, finished = info.get("Launch Time"), info.get("Finish Time")
            if launched is None or finished is None:
                continue
            changes += [(launched, 1), (finished, -1)]
            metrics = event.get("Task Metrics") or {}
            result.tasks += 1
            result.run_ms += metrics.get("Executor Run Time", 0)
            result.cpu_ms += metrics.get("Executor CPU Time", 0) / 1e6  # nanoseconds
            result.gc_ms += metrics.get("JVM GC Time", 0)
    if not changes:
        return result
    # Ends before starts at the same instant: a task that ends as the next starts is not two.
    changes.sort(key=lambda change: (change[0], change[1]))
    first = min(starts) if starts else changes[0][0]
    last = max(ends) if ends else changes[-1][0]
    running = collections.Counter()
    now, at = 0, first
    for time, delta in changes:
        running[now] += max(0, time - at)
        at = max(at, time)
        now += delta
    running[now] += max(0, last - at)
    result.span_ms = last - first
    result.running_ms = dict(sorted(running.items()))
    return result


def merged(profiles: list[TaskProfile]) -> TaskProfile:
    """Several applications' profiles summed (a run of per-step applications)."""
    total = TaskProfile()
    running = collections.Counter()
    for one in profiles:
        total.span_ms += one.span_ms
        total.run_ms += one.run_ms
        total.cpu_ms += one.cpu_ms
        total.gc_ms += one.gc_ms
        total.tasks += one.tasks
        running.update(one.running_ms)
    total.running_ms = dict(sorted(running.items()))
    return total


def figure_lines(prefix: str, result: TaskProfile) -> list[str]:
    """The profile as the benchmarks' `FIGURE name = value unit` lines."""
    lines = [f"FIGURE {prefix}.tasks.application_seconds = {result.span_ms / 1000:.1f} s"]
    for running, ms in result.running_ms.items():
        lines.append(f"FIGURE {prefix}.tasks.running_{running}.seconds = {ms / 1000:.1f} s")
    lines += [
        f"FIGURE {prefix}.tasks.count = {result.tasks} tasks",
        f"FIGURE {prefix}.tasks.run_seconds = {result.run_ms / 1000:.1f} s",
        f"FIGURE {prefix}.tasks.cpu_seconds = {result.cpu_ms / 1000:.1f} s",
        f"FIGURE {prefix}.tasks.gc_seconds = {result.gc_ms / 1000:.1f} s",
    ]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    prefix, paths = argv[0], argv[1:]
    profiles = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as lines:
            profiles.append(profile(read_events(lines)))
    for line in figure_lines(prefix, merged(profiles)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
