"""build_dimensions: stable surrogate keys across runs and days, attributes, load CSVs."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path

import pytest

from pyspark_jobs import build_dimensions as job
from pyspark_jobs.errors import InvariantBroken
from pyspark_jobs.tests.conftest import read_metrics

LOG_SCHEMA = (
    "log_id int, log_date date, device string, os string, location string, browser string, "
    "ip string, phone_number string, insert_date date"
)


def test_season_and_date_id():
    assert [job.season(m) for m in range(1, 13)] == [
        "Winter", "Winter", "Spring", "Spring", "Spring", "Summer",
        "Summer", "Summer", "Fall", "Fall", "Fall", "Winter",
    ]  # fmt: skip
    assert job.date_id(dt.date(2021, 4, 5)) == 20210405


def test_extend_registry_keeps_ids_and_numbers_new_values_in_order():
    first = job.extend_registry({}, ["Tablet", "Mobile", None, "Computer"])
    assert first == {"Unknown": 0, "Computer": 1, "Mobile": 2, "Tablet": 3}
    second = job.extend_registry(first, ["Watch", "Mobile", "Console"])
    assert second == {**first, "Console": 4, "Watch": 5}


def test_merge_registry_refuses_snapshots_that_disagree():
    assert job.merge_registry("dim_os", [(0, "Unknown"), (1, "Linux"), (1, "Linux")]) == {
        "Unknown": 0,
        "Linux": 1,
    }
    with pytest.raises(InvariantBroken, match="has ids 1 and 2"):
        job.merge_registry("dim_os", [(1, "Linux"), (2, "Linux")])
    with pytest.raises(InvariantBroken, match="means both"):
        job.merge_registry("dim_os", [(1, "Linux"), (1, "BeOS")])
    with pytest.raises(InvariantBroken, match="Unknown"):
        job.merge_registry("dim_os", [(0, "Linux")])


def write_logs(spark, folder: Path, rows):
    spark.createDataFrame(rows, LOG_SCHEMA).write.mode("overwrite").parquet(str(folder))


def run(spark, tmp_path: Path, day: str, rows, run_id=None):
    logs = tmp_path / "review_logs" / f"dt={day}"
    write_logs(spark, logs, rows)
    args = [
        "--run-date", day,
        "--review-logs", str(logs),
        "--dims-root", str(tmp_path / "dims"),
        "--load-root", str(tmp_path / "warehouse_load" / f"dt={day}"),
        "--metrics", str(tmp_path / "_metrics" / f"dt={day}" / "build_dimensions"),
    ]  # fmt: skip
    if run_id:
        args += ["--run-id", run_id]
    assert job.main(args) == 0


def snapshot(spark, tmp_path, table, day):
    folder = tmp_path / "dims" / table / f"dt={day}"
    return sorted(tuple(r) for r in spark.read.parquet(str(folder)).collect())


def log(i, day, device, os, location, browser):
    return (i, day, device, os, location, browser, None, None, dt.date(2021, 10, 31))


def test_keys_are_stable_across_two_days_and_a_rerun(spark, tmp_path):
    day1 = [
        log(1, dt.date(2021, 4, 25), "Mobile", "Apple iOS", "Kansas", "Safari"),
        log(2, dt.date(2021, 1, 3), "Tablet", "Linux", "Atlantis", "Mozilla Firefox"),
        log(3, dt.date(2021, 1, 3), None, None, None, None),
    ]
    run(spark, tmp_path, "2021-10-30", day1)
    assert snapshot(spark, tmp_path, "dim_devices", "2021-10-30") == [
        (0, "Unknown"), (1, "Mobile"), (2, "Tablet"),
    ]  # fmt: skip
    assert snapshot(spark, tmp_path, "dim_location", "2021-10-30") == [
        (0, "Unknown", None, "Unknown"),
        (1, "Atlantis", None, "Unknown"),
        (2, "Kansas", "KS", "Midwest"),
    ]
    assert snapshot(spark, tmp_path, "dim_date", "2021-10-30") == [
        (0, None, None, None, None, "Unknown"),
        (20210103, dt.date(2021, 1, 3), 3, 1, 2021, "Winter"),
        (20210425, dt.date(2021, 4, 25), 25, 4, 2021, "Spring"),
    ]

    # Day 2 brings new values that sort before the old ones: old ids must not move.
    day2 = [
        log(4, dt.date(2021, 7, 4), "Computer", "Apple MacOS", "Alabama", "Safari"),
        log(5, dt.date(2021, 4, 25), "Mobile", "Linux", "Kansas", "Opera"),
    ]
    run(spark, tmp_path, "2021-10-31", day2)
    assert snapshot(spark, tmp_path, "dim_devices", "2021-10-31") == [
        (0, "Unknown"), (1, "Mobile"), (2, "Tablet"), (3, "Computer"),
    ]  # fmt: skip
    assert snapshot(spark, tmp_path, "dim_location", "2021-10-31") == [
        (0, "Unknown", None, "Unknown"),
        (1, "Atlantis", None, "Unknown"),
        (2, "Kansas", "KS", "Midwest"),
        (3, "Alabama", "AL", "South"),
    ]
    assert snapshot(spark, tmp_path, "dim_browser", "2021-10-31") == [
        (0, "Unknown"), (1, "Mozilla Firefox"), (2, "Safari"), (3, "Opera"),
    ]  # fmt: skip
    assert [r[0] for r in snapshot(spark, tmp_path, "dim_date", "2021-10-31")] == [
        0, 20210103, 20210425, 20210704,
    ]  # fmt: skip
    metrics = read_metrics(tmp_path / "_metrics" / "dt=2021-10-31" / "build_dimensions")
    assert metrics["checks"]["new_members"] == {
        "dim_date": 1, "dim_devices": 1, "dim_location": 1, "dim_os": 1, "dim_browser": 1,
    }  # fmt: skip
    assert metrics["sources"]["review_logs"]["rows_in"] == 2

    # Rerunning day 1 after day 2 keeps every id (the registry is every snapshot).
    run(spark, tmp_path, "2021-10-30", day1)
    assert snapshot(spark, tmp_path, "dim_devices", "2021-10-30") == snapshot(
        spark, tmp_path, "dim_devices", "2021-10-31"
    )


def test_each_run_has_its_own_snapshot_and_the_registry_reads_every_complete_one(spark, tmp_path):
    day = dt.date(2021, 4, 25)
    run(spark, tmp_path, "2021-10-31", [log(1, day, "Mobile", "Linux", "Kansas", None)], "run-a")
    # Another run of the same date (other inputs): its own folder beside run A's, which stays.
    run(spark, tmp_path, "2021-10-31", [log(1, day, "Tablet", "Linux", "Kansas", None)], "run-b")
    devices = tmp_path / "dims" / "dim_devices"

    def read(folder):
        return sorted(tuple(r) for r in spark.read.parquet(str(devices / folder)).collect())

    assert read("dt=2021-10-31/run=run-a") == [(0, "Unknown"), (1, "Mobile")]
    assert read("dt=2021-10-31/run=run-b") == [(0, "Unknown"), (1, "Mobile"), (2, "Tablet")]
    bare = devices / "dt=2021-10-31"
    assert not any(bare.glob("part-*")), "a run wrote into the bare date folder"

    # A snapshot without _SUCCESS (a write that did not finish) is not part of the registry.
    half = devices / "dt=2021-11-01" / "run=run-c"
    spark.createDataFrame([(3, "Phablet")], job.DIM_DEVICES.schema).write.parquet(str(half))
    (half / "_SUCCESS").unlink()
    run(spark, tmp_path, "2021-11-02", [log(1, day, "Computer", "Linux", "Kansas", None)], "run-d")
    assert read("dt=2021-11-02/run=run-d") == [
        (0, "Unknown"), (1, "Mobile"), (2, "Tablet"), (3, "Computer"),
    ]  # fmt: skip


def read_load_csv(folder: Path) -> list[list[str]]:
    (part,) = sorted(folder.glob("part-*.csv.gz"))
    return list(csv.reader(io.StringIO(gzip.decompress(part.read_bytes()).decode("utf-8"))))


def test_load_csv_is_what_copy_expects(spark, tmp_path):
    day = dt.date(2021, 12, 1)
    run(spark, tmp_path, "2021-12-01", [log(1, day, 'Mobile "X", v2', "Linux", "Guam", None)])
    devices = read_load_csv(tmp_path / "warehouse_load" / "dt=2021-12-01" / "dim_devices")
    assert devices == [["id_dim_devices", "device"], ["0", "Unknown"], ["1", 'Mobile "X", v2']]
    raw = gzip.decompress(
        next((tmp_path / "warehouse_load/dt=2021-12-01/dim_location").glob("part-*")).read_bytes()
    ).decode()
    # NULL is an empty unquoted field: the state_code of an unrecognised location, whose
    # region is Unknown (the warehouse's region is NOT NULL).
    assert raw.splitlines() == [
        "id_dim_location,location,state_code,region",
        "0,Unknown,,Unknown",
        "1,Guam,,Unknown",
    ]
    dates = read_load_csv(tmp_path / "warehouse_load" / "dt=2021-12-01" / "dim_date")
    assert dates == [
        ["id_dim_date", "log_date", "day", "month", "year", "season"],
        ["0", "", "", "", "", "Unknown"],
        ["20211201", "2021-12-01", "1", "12", "2021", "Winter"],
    ]


def test_a_registry_with_values_the_warehouse_cannot_hold_still_loads(spark, tmp_path):
    """An earlier run (before the checks) left a device too long for the warehouse, one with a
    control character, and a non-US location without a region in the registry."""
    long_device = "D" * 70
    old = {
        "dim_devices": [(0, "Unknown"), (1, "Mobile"), (2, long_device), (3, "Tab\x01let")],
        "dim_location": [(0, "Unknown", None, "Unknown"), (1, "Atlantis", None, None)],
    }
    for table, rows in old.items():
        dimension = next(d for d in job.DIMENSIONS if d.table == table)
        folder = tmp_path / "dims" / table / "dt=2021-10-29"
        spark.createDataFrame(rows, dimension.schema).write.parquet(str(folder))
    day = dt.date(2021, 10, 30)
    rows = [
        log(1, day, "Mobile", "Linux", "Atlantis", None),
        log(2, day, "Computer", "Linux", "Ohio", None),
    ]
    run(spark, tmp_path, "2021-10-30", rows)
    # The snapshot keeps every member: ids never change and are never handed out again.
    assert snapshot(spark, tmp_path, "dim_devices", "2021-10-30") == [
        (0, "Unknown"), (1, "Mobile"), (2, long_device), (3, "Tab\x01let"), (4, "Computer"),
    ]  # fmt: skip
    devices = read_load_csv(tmp_path / "warehouse_load" / "dt=2021-10-30" / "dim_devices")
    assert devices == [
        ["id_dim_devices", "device"],
        ["0", "Unknown"],
        ["1", "Mobile"],
        ["4", "Computer"],
    ]
    locations = read_load_csv(tmp_path / "warehouse_load" / "dt=2021-10-30" / "dim_location")
    assert locations[1:] == [
        ["0", "Unknown", "", "Unknown"],
        ["1", "Atlantis", "", "Unknown"],
        ["2", "Ohio", "OH", "Midwest"],
    ]
    metrics = read_metrics(tmp_path / "_metrics" / "dt=2021-10-30" / "build_dimensions")
    assert metrics["warnings"] == {"unloadable_members": 2, "locations_outside_us_states": 1}
    assert metrics["checks"]["unloadable_members"]["dim_devices"] == 2


def test_the_value_widths_are_the_warehouse_ddl(spark):
    """warehouse_types.VALUE_BYTES is what sql/warehouse/tables.sql declares."""
    import re

    from pyspark_jobs import warehouse_types

    ddl = (Path(__file__).resolve().parents[2] / "sql" / "warehouse" / "tables.sql").read_text()
    declared = {
        name: int(width)
        for name, width in re.findall(r"^\s*(\w+)\s+varchar\((\d+)\)", ddl, re.MULTILINE)
    }
    for column, width in warehouse_types.VALUE_BYTES.items():
        assert declared[column] == width, column
    assert warehouse_types.unloadable_reason("device", "M" * 64) is None
    assert warehouse_types.unloadable_reason("device", "\u00e9" * 33) == "value_too_long"
    assert warehouse_types.unloadable_reason("os", "a\x7fb") == "bad_character"
    assert warehouse_types.unloadable_reason("os", "a\ud800") == "bad_character"


def test_a_half_written_snapshot_is_not_part_of_the_registry(spark, tmp_path):
    """A snapshot folder without `_SUCCESS` (its job crashed or is still writing) is ignored."""
    dimension = job.DIM_DEVICES
    done = tmp_path / "dims" / "dim_devices" / "dt=2021-10-28"
    spark.createDataFrame([(0, "Unknown"), (1, "Mobile")], dimension.schema).write.parquet(
        str(done)
    )
    half = tmp_path / "dims" / "dim_devices" / "dt=2021-10-29"
    spark.createDataFrame([(0, "Unknown"), (2, "Phablet")], dimension.schema).write.parquet(
        str(half)
    )
    (half / "_SUCCESS").unlink()
    day = dt.date(2021, 10, 30)
    run(spark, tmp_path, "2021-10-30", [log(1, day, "Tablet", "Linux", "Ohio", None)])
    assert snapshot(spark, tmp_path, "dim_devices", "2021-10-30") == [
        (0, "Unknown"), (1, "Mobile"), (2, "Tablet"),
    ]  # fmt: skip


def test_load_files_written_on_the_driver_read_as_sparks_csv_writer_writes_them(spark, tmp_path):
    """write_load_csv_rows (the dimensions' load files, no Spark job) gives the text Spark's
    writer gives with LOAD_CSV_OPTIONS, for every kind of value a dimension holds."""
    from pyspark_jobs.lake_io import write_load_csv, write_load_csv_rows

    schema = "id int, value string, day date"
    rows = [
        (0, "Unknown", None),
        (1, 'Mobile "X", v2', dt.date(2021, 4, 25)),
        (2, "", dt.date(1, 1, 1)),
        (3, None, None),
        (4, "two\nlines", None),
        (5, "cr\rhere", None),
        (6, "Śląsk ✓ 日本", None),
        (7, "a\u00a0b", None),
        (-8, "'single'", None),
    ]
    spark_dir, driver_dir = tmp_path / "spark", tmp_path / "driver"
    write_load_csv(spark.createDataFrame(rows, schema).coalesce(1), str(spark_dir))
    write_load_csv_rows(spark, str(driver_dir), ["id", "value", "day"], rows)

    def text(folder):
        (part,) = sorted(folder.glob("part-*.csv.gz"))
        return gzip.decompress(part.read_bytes()).decode("utf-8")

    assert text(driver_dir) == text(spark_dir)
    assert (driver_dir / "_SUCCESS").exists()
