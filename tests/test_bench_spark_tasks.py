"""benchmarks/spark_tasks.py: the task-slot profile of Spark event logs, on literal event lines."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "spark_tasks.py"
spec = importlib.util.spec_from_file_location("spark_tasks", SCRIPT)
spark_tasks = importlib.util.module_from_spec(spec)
sys.modules["spark_tasks"] = spark_tasks  # dataclasses look their module up
spec.loader.exec_module(spark_tasks)


def task_end(launched: int, finished: int, run: int, cpu_ns: int, gc: int = 0) -> str:
    return json.dumps(
        {
            "Event": "SparkListenerTaskEnd",
            "Stage ID": 0,
            "Task Info": {"Launch Time": launched, "Finish Time": finished},
            "Task Metrics": {
                "Executor Run Time": run,
                "Executor CPU Time": cpu_ns,
                "JVM GC Time": gc,
            },
        }
    )


APP = [
    '{"Event":"SparkListenerApplicationStart","App Name":"x","Timestamp":1000}',
    '{"Event":"SparkListenerJobStart","Job ID":0,"Submission Time":1500,"Stage IDs":[0]}',
    # Two tasks overlapping from 2000 to 3000, then one alone to 4000; a third starts the
    # instant the second ends (4000): not two at once.
    task_end(2000, 4000, 1900, 1_500_000_000, 100),
    task_end(1500, 3000, 1400, 1_000_000_000),
    task_end(4000, 4500, 450, 400_000_000),
    '{"Event":"SparkListenerApplicationEnd","Timestamp":5000}',
]


def test_seconds_with_each_number_of_tasks_running_over_the_application_span():
    result = spark_tasks.profile(spark_tasks.read_events(APP))
    assert result.span_ms == 4000
    # idle 1000-1500 and 4500-5000; one task 1500-2000, 3000-4500; two 2000-3000
    assert result.running_ms == {0: 1000, 1: 2000, 2: 1000}
    assert sum(result.running_ms.values()) == result.span_ms
    assert (result.tasks, result.run_ms, result.gc_ms) == (3, 3750, 100)
    assert result.cpu_ms == 2900.0


def test_a_log_cut_short_uses_its_tasks_for_the_span_and_skips_a_torn_line():
    lines = [APP[2], APP[3], '{"Event":"SparkListenerTaskEnd","Task Info":{"Launch Ti']
    result = spark_tasks.profile(spark_tasks.read_events(lines))
    assert result.span_ms == 2500
    assert result.running_ms == {0: 0, 1: 1500, 2: 1000}
    assert result.tasks == 2


def test_a_log_without_tasks_is_an_empty_profile():
    result = spark_tasks.profile(spark_tasks.read_events(APP[:2] + APP[-1:]))
    assert (result.tasks, result.span_ms, result.running_ms) == (0, 0, {})


def test_several_applications_are_summed_and_printed_as_figures(tmp_path, capsys):
    first, second = tmp_path / "app-1", tmp_path / "app-2"
    first.write_text("\n".join(APP) + "\n")
    second.write_text("\n".join(APP) + "\n")
    assert spark_tasks.main(["scaling.cores", str(first), str(second)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "FIGURE scaling.cores.tasks.application_seconds = 8.0 s" in printed
    assert "FIGURE scaling.cores.tasks.running_2.seconds = 2.0 s" in printed
    assert "FIGURE scaling.cores.tasks.cpu_seconds = 5.8 s" in printed
    assert "FIGURE scaling.cores.tasks.count = 6 tasks" in printed


def test_no_arguments_is_a_usage_error(capsys):
    assert spark_tasks.main([]) == 2
    assert "spark_tasks.py PREFIX EVENT_LOG" in capsys.readouterr().err
