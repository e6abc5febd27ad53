"""Every list of vendor columns, dimensions and warehouse columns agrees with sql/catalogue.json.

The catalogue is the one place a table or column is declared; the SQL of every dialect, the
Python jobs and the docs are checked against it here (the Rust constants by the Rust test
`catalogue_check` in driver/src). A failure names the file and the column to fix. Adding a step,
a dimension or a vendor file: docs/architecture.md, "Adding a step, a dimension or a vendor file".
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import catalogue_lists as lists
import pytest
from catalogue_lists import CATALOGUE_NAME, REPO

from pyspark_jobs import (
    build_dimensions,
    build_fact,
    classify_reviews,
    parse_logs,
    run_job,
    warehouse_types,
)
from pyspark_jobs.tests.conftest import spark  # noqa: F401 - the session fixture

CAT = lists.catalogue()
SOURCES = {s["name"]: s for s in CAT["sources"]}
STAGING = {t["table"]: t for t in CAT["staging_tables"]}
TABLES = {t["table"]: t for t in lists.warehouse_tables(CAT)}


def read(relative: str) -> str:
    return (REPO / relative).read_text(encoding="utf-8")


def compare_columns(where: str, table: str, found: list[dict], expected: list[dict], keys):
    """Mismatches between `found` (a file's columns) and `expected` (the catalogue's), each
    naming the file, the table and the column."""
    problems = []
    names = [c["name"] for c in found]
    wanted = [c["name"] for c in expected]
    for name in wanted:
        if name not in names:
            problems.append(f"{where}: {table} lacks the column {name} ({CATALOGUE_NAME} has it)")
    for name in names:
        if name not in wanted:
            problems.append(f"{where}: {table}.{name} is not in {CATALOGUE_NAME}")
    if not problems and names != wanted:
        problems.append(
            f"{where}: {table} columns are in the order {names}, {CATALOGUE_NAME}: {wanted}"
        )
    by_name = {c["name"]: c for c in found}
    for column in expected:
        got = by_name.get(column["name"])
        for key in keys if got else ():
            want = column.get(key, False if key == "not_null" else None)
            if got.get(key, False) != want:
                problems.append(
                    f"{where}: {table}.{column['name']} has {key} {got.get(key)!r}, "
                    f"{CATALOGUE_NAME} says {want!r}"
                )
    return problems


def compare_tables(where: str, found: dict[str, dict], expected: dict[str, dict], keys):
    problems = []
    for table in expected:
        if table not in found:
            problems.append(f"{where}: no CREATE TABLE {table} ({CATALOGUE_NAME} declares it)")
    for table in found:
        if table not in expected:
            problems.append(f"{where}: CREATE TABLE {table} is not in {CATALOGUE_NAME}")
    for table, spec in expected.items():
        if table in found:
            problems += compare_columns(
                where, table, found[table]["columns"], spec["columns"], keys
            )
    return problems


def differences(found, wanted) -> str:
    """What to change in `found` to get `wanted`: the names missing, extra or out of order."""
    found, wanted = list(found), list(wanted)
    missing = [n for n in wanted if n not in found]
    extra = [n for n in found if n not in wanted]
    if missing or extra:
        return f"missing {missing}, not in the catalogue {extra}"
    return f"same names in another order: {found}, catalogue order {wanted}"


def check(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# --- SQL, every dialect -------------------------------------------------------------------


def test_the_warehouse_ddl_is_the_catalogue():
    """sql/warehouse/tables.sql: PostgreSQL, Redshift and (prefixes dropped) the embedded
    SQLite warehouse run this same file; driver/src/db/embedded.rs has no DDL of its own."""
    where = "sql/warehouse/tables.sql"
    found = lists.ddl_tables(read(where))
    problems = compare_tables(where, found, TABLES, ("type", "not_null"))
    fact = CAT["fact"]["table"]
    keys = set(found.get(fact, {}).get("foreign_keys", []))
    wanted = {(d["id"], d["table"], d["id"]) for d in CAT["dimensions"]}
    for missing in sorted(wanted - keys):
        problems.append(f"{where}: {fact} lacks FOREIGN KEY ({missing[0]}) REFERENCES {missing[1]}")
    for extra in sorted(keys - wanted):
        problems.append(f"{where}: {fact} FOREIGN KEY ({extra[0]}) is not a catalogue dimension")
    check(problems)


def test_the_embedded_warehouse_reuses_the_ddl():
    # If embedded.rs ever declares its own tables, this test must learn to read them.
    text = read("driver/src/db/embedded.rs")
    assert "CREATE TABLE IF NOT EXISTS dim_" not in text and "TABLES_SQL" in text, (
        "driver/src/db/embedded.rs no longer derives its tables from sql/warehouse/tables.sql: "
        "check its DDL against sql/catalogue.json here"
    )


def test_the_user_purchase_table_is_the_catalogue():
    where = "sql/user_purchase.sql"
    spec = CAT["user_purchase_table"]
    found = lists.ddl_tables(read(where))
    check(compare_tables(where, found, {spec["table"]: spec}, ("type",)))


def test_the_spectrum_tables_are_the_catalogue():
    """sql/redshift/spectrum.sql: the staging tables and the fact's Parquet (no NOT NULL)."""
    where = "sql/redshift/spectrum.sql"
    found = lists.ddl_tables(read(where))
    expected = {**STAGING, CAT["fact"]["table"]: CAT["fact"]}
    check(compare_tables(where, found, expected, ("type",)))


def test_the_spectrum_partitions_cover_every_external_table():
    text = read("sql/redshift/spectrum_partitions.sql")
    expected = {*STAGING, CAT["fact"]["table"]}
    missing = [t for t in sorted(expected) if not re.search(rf"\.{t}\b", text)]
    assert not missing, f"sql/redshift/spectrum_partitions.sql registers no partition of {missing}"


def test_the_fact_view_shows_every_warehouse_column():
    where = "sql/warehouse/views.sql"
    views = lists.view_columns(read(where))
    assert sorted(views) == sorted(CAT["views"]), (
        f"{where} creates the views {sorted(views)}, {CATALOGUE_NAME} lists {CAT['views']}"
    )
    shown = views["v_fact_movie_analytics"]
    wanted = [c["name"] for c in CAT["fact"]["columns"]] + [
        c["name"] for d in CAT["dimensions"] for c in d["columns"] if c["name"] != d["id"]
    ]
    problems = [
        f"{where}: v_fact_movie_analytics does not select {name}"
        for name in wanted
        if name not in shown
    ] + [
        f"{where}: v_fact_movie_analytics selects {name}, which no catalogue table has"
        for name in shown
        if name not in wanted
    ]
    text = lists.strip_sql_comments(read(where))
    problems += [
        f"{where}: v_fact_movie_analytics does not join {d['table']}"
        for d in CAT["dimensions"]
        if not re.search(rf"JOIN\s+__SCHEMA__\.{d['table']}\b", text)
    ]
    check(problems)


def test_every_table_view_and_column_has_one_comment():
    where = "sql/warehouse/comments.sql"
    targets = lists.comment_targets(read(where))
    views = lists.view_columns(read("sql/warehouse/views.sql"))
    wanted = {(t, None) for t in TABLES} | {
        (t, c["name"]) for t, spec in TABLES.items() for c in spec["columns"]
    }
    wanted |= {(v, None) for v in views} | {(v, c) for v, cols in views.items() for c in cols}
    problems = [
        f"{where}: no COMMENT ON {'COLUMN' if c else 'TABLE/VIEW'} {t}{'.' + c if c else ''}"
        for t, c in sorted(wanted - targets, key=str)
    ] + [
        f"{where}: comments {t}{'.' + c if c else ''}, which {CATALOGUE_NAME} / views.sql lack"
        for t, c in sorted(targets - wanted, key=str)
    ]
    check(problems)


# --- the Python jobs ----------------------------------------------------------------------


def test_the_jobs_require_the_catalogues_input_columns():
    problems = []
    for module, where in ((classify_reviews, "classify_reviews"), (parse_logs, "parse_logs")):
        source = SOURCES.get(module.SOURCE)
        if source is None:
            problems.append(
                f"pyspark_jobs/{where}.py: SOURCE {module.SOURCE!r} is not in {CATALOGUE_NAME}"
            )
            continue
        if list(module.REQUIRED_COLUMNS) != source["required_columns"]:
            problems.append(
                f"pyspark_jobs/{where}.py: REQUIRED_COLUMNS against {CATALOGUE_NAME} "
                f"sources.{source['name']}.required_columns: "
                + differences(module.REQUIRED_COLUMNS, source["required_columns"])
            )
        if source["output"] != module.OUTPUT or source["job"] != where:
            problems.append(
                f"pyspark_jobs/{where}.py: OUTPUT {module.OUTPUT!r}, {CATALOGUE_NAME} says job "
                f"{source['job']!r} writes {source['output']!r}"
            )
    used = list(build_fact.PURCHASE_COLUMNS)
    wanted = CAT["user_purchase_table"]["used_by_build_fact"]
    if used != wanted:
        problems.append(
            f"pyspark_jobs/build_fact.py: PURCHASE_COLUMNS against {CATALOGUE_NAME} "
            f"user_purchase_table.used_by_build_fact: " + differences(used, wanted)
        )
    export = [c["name"] for c in STAGING["user_purchase"]["columns"]]
    problems += [
        f"pyspark_jobs/build_fact.py: reads user_purchase.{c}, not a column of the export"
        for c in used
        if c not in export
    ]
    check(problems)


def test_the_dimension_job_builds_the_catalogues_dimensions():
    where = "pyspark_jobs/build_dimensions.py"
    problems = []
    jobs = {d.table: d for d in build_dimensions.DIMENSIONS}
    if list(jobs) != [d["table"] for d in CAT["dimensions"]]:
        problems.append(
            f"{where}: DIMENSIONS are {list(jobs)}, {CATALOGUE_NAME}: "
            f"{[d['table'] for d in CAT['dimensions']]}"
        )
    for spec in CAT["dimensions"]:
        job = jobs.get(spec["table"])
        if job is None:
            continue
        found = [{"name": f.name, "type": f.dataType.simpleString()} for f in job.schema.fields]
        expected = [
            {"name": c["name"], "type": lists.spark_type(c["type"])} for c in spec["columns"]
        ]
        problems += compare_columns(
            f"{where} (Spark types)", spec["table"], found, expected, ("type",)
        )
        for attribute, key in (("source_column", "source_column"), ("value_column", "natural_key")):
            if getattr(job, attribute) != spec[key]:
                problems.append(
                    f"{where}: {spec['table']} {attribute} {getattr(job, attribute)!r}, "
                    f"{CATALOGUE_NAME} {key} {spec[key]!r}"
                )
        if build_dimensions.id_column(job) != spec["id"]:
            problems.append(f"{where}: {spec['table']}'s first column must be its id {spec['id']}")
    check(problems)


def test_the_fact_job_writes_the_catalogues_fact():
    where = "pyspark_jobs/build_fact.py"
    fact = CAT["fact"]
    problems = []
    wanted = [c["name"] for c in fact["columns"]]
    if list(build_fact.FACT_COLUMNS) != wanted:
        problems.append(
            f"{where}: FACT_COLUMNS against {CATALOGUE_NAME} fact.columns: "
            + differences(build_fact.FACT_COLUMNS, wanted)
        )
    if fact["table"] != build_fact.OUTPUT:
        problems.append(
            f"{where}: OUTPUT {build_fact.OUTPUT!r}, {CATALOGUE_NAME}: {fact['table']!r}"
        )
    amount = next(c["type"] for c in fact["columns"] if c["name"] == "amount_spent")
    if amount != build_fact.AMOUNT_TYPE:
        problems.append(
            f"{where}: AMOUNT_TYPE {build_fact.AMOUNT_TYPE}, {CATALOGUE_NAME}: {amount}"
        )
    sessions = [d["source_column"] for d in CAT["dimensions"]]
    if list(build_fact.SESSION_COLUMNS) != sessions:
        problems.append(
            f"{where}: SESSION_COLUMNS against the source_column of each dimension in "
            f"{CATALOGUE_NAME}: " + differences(build_fact.SESSION_COLUMNS, sessions)
        )
    check(problems)


def test_the_value_checks_use_the_warehouse_widths():
    """warehouse_types.VALUE_BYTES: the byte width of each dimension's varchar natural key."""
    where = "pyspark_jobs/warehouse_types.py"
    widths = {}
    for d in CAT["dimensions"]:
        kind = next(c["type"] for c in d["columns"] if c["name"] == d["natural_key"])
        found = re.fullmatch(r"varchar\((\d+)\)", kind)
        if found:
            widths[d["source_column"]] = int(found.group(1))
    problems = [
        f"{where}: VALUE_BYTES[{c!r}] is {warehouse_types.VALUE_BYTES.get(c)}, {CATALOGUE_NAME}: "
        f"{w} (varchar({w}))"
        for c, w in widths.items()
        if warehouse_types.VALUE_BYTES.get(c) != w
    ] + [
        f"{where}: VALUE_BYTES[{c!r}] is no dimension's varchar natural key in {CATALOGUE_NAME}"
        for c in warehouse_types.VALUE_BYTES
        if c not in widths
    ]
    text_columns = [
        c["name"] for c in STAGING["review_logs"]["columns"] if c["type"].startswith("varchar")
    ]
    if list(parse_logs.TEXT_COLUMNS) != text_columns:
        problems.append(
            f"pyspark_jobs/parse_logs.py: TEXT_COLUMNS against the varchar columns of "
            f"review_logs in {CATALOGUE_NAME}: "
            + differences(parse_logs.TEXT_COLUMNS, text_columns)
        )
    check(problems)


def test_the_jobs_outputs_have_the_catalogues_columns_and_types(spark):  # noqa: F811
    """The staging and fact frames the jobs build (names and Spark types), from tiny inputs."""
    run_date = dt.date(2021, 10, 31)
    reviews_raw = spark.createDataFrame(
        [("1", "good", "7", None)],
        "cid string, review_str string, id_review string, _corrupt_record string",
    )
    logs_raw = spark.createDataFrame(
        [("7", "<reviewlog><log><logDate>04-25-2021</logDate></log></reviewlog>", None)],
        "id_review string, log string, _corrupt_record string",
    )
    frames = {
        "classified_movie_review": classify_reviews.classify(
            classify_reviews.tag_reviews(reviews_raw), run_date
        ),
        "review_logs": parse_logs.review_logs(parse_logs.tag_logs(logs_raw), run_date),
    }
    aggregated = spark.createDataFrame(
        [(1, 0, 0, 0, 0, 0, 1, 1)],
        "customer_id int, id_dim_date int, id_dim_devices int, id_dim_location int, "
        "id_dim_os int, id_dim_browser int, review_score bigint, review_count bigint",
    )
    spend = spark.createDataFrame([(1, 1.5)], "customer_id int, amount_spent double")
    fact = build_fact.fact_rows(aggregated, spend, run_date)
    frames[CAT["fact"]["table"]] = fact.select(*build_fact.FACT_COLUMNS)
    problems = []
    for table, frame in frames.items():
        spec = STAGING.get(table) or CAT["fact"]
        found = [{"name": f.name, "type": f.dataType.simpleString()} for f in frame.schema.fields]
        expected = [
            {"name": c["name"], "type": lists.spark_type(c["type"])} for c in spec["columns"]
        ]
        where = "pyspark_jobs/" + (spec.get("job") or "build_fact") + ".py (Spark types)"
        problems += compare_columns(where, table, found, expected, ("type",))
    check(problems)


def test_run_job_dispatches_the_catalogues_steps():
    steps = [s["name"] for s in CAT["steps"]]
    assert list(run_job.JOBS) == steps, (
        f"pyspark_jobs/run_job.py: JOBS against {CATALOGUE_NAME} steps: "
        + differences(run_job.JOBS, steps)
    )
    missing = [s for s in steps if not (REPO / "pyspark_jobs" / f"{s}.py").is_file()]
    assert not missing, f"pyspark_jobs/: no job module for the steps {missing}"


# --- docs ---------------------------------------------------------------------------------


def base_type(kind: str) -> str:
    return re.sub(r"\(.*\)", "", kind)


def test_the_architecture_doc_lists_the_catalogues_tables():
    where = 'docs/architecture.md ("Warehouse tables")'
    documented = lists.doc_table_signatures(read("docs/architecture.md"), "Warehouse tables")
    problems = []
    for table, spec in TABLES.items():
        if table not in documented:
            problems.append(f"{where}: does not list {table}")
            continue
        names = [name for name, _ in documented[table]]
        wanted = [c["name"] for c in spec["columns"]]
        if names != wanted:
            problems.append(f"{where}: {table}({', '.join(names)}), {CATALOGUE_NAME}: {wanted}")
            continue
        for (name, kind), column in zip(documented[table], spec["columns"]):
            # The doc may leave a varchar's length out; a type it gives must be the catalogue's.
            if kind not in (column["type"], base_type(column["type"])):
                problems.append(
                    f"{where}: {table}.{name} is {kind}, {CATALOGUE_NAME}: {column['type']}"
                )
    problems += [
        f"{where}: lists {t}, which {CATALOGUE_NAME} lacks" for t in documented if t not in TABLES
    ]
    check(problems)


def test_the_sql_readme_names_every_warehouse_table():
    text = read("sql/README.md")
    missing = [t for t in TABLES if f"`{t}`" not in text]
    assert not missing, f"sql/README.md (warehouse/tables.sql row) does not name {missing}"


def design_path() -> Path | None:
    """DESIGN.md lives beside the project (../shared), not in it; DESIGN_MD points at it."""
    for candidate in (os.environ.get("DESIGN_MD"), REPO.parent / "shared" / "DESIGN.md"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def test_the_design_contract_names_the_catalogues_columns():
    path = design_path()
    if path is None:
        pytest.skip("DESIGN.md not found: set DESIGN_MD=/path/to/shared/DESIGN.md")
    text = path.read_text(encoding="utf-8")
    where = f"{path} (section 2)"
    problems = []
    flat = re.sub(r"\s+", " ", text)
    dims = {
        t: [c.strip() for c in cols.split(",")]
        for t, cols in re.findall(r"`(dim_\w+)\(([^)]*)\)`", flat)
    }
    for d in CAT["dimensions"]:
        wanted = [c["name"] for c in d["columns"]]
        if dims.get(d["table"]) != wanted:
            problems.append(
                f"{where}: {d['table']}({dims.get(d['table'])}), {CATALOGUE_NAME}: {wanted}"
            )
    fact_part = flat.split("**fact_movie_analytics.**", 1)[1].split("###", 1)[0]
    documented = set(re.findall(r"\| `?([a-z_]+)`", fact_part)) | set(
        re.findall(r"`(id_dim_\w+)`", fact_part)
    )
    problems += [
        f"{where}: the fact_movie_analytics table does not describe {c['name']}"
        for c in CAT["fact"]["columns"]
        if c["name"] not in documented
    ]
    for table in ("classified_movie_review", "review_logs"):
        line = re.search(rf"\* `{table}` — ([^*]*)", flat).group(1)
        named = re.findall(r"`(\w+)`", line)
        wanted = [c["name"] for c in STAGING[table]["columns"]]
        # `log_id` (= `id_review`): the vendor names in the line are not columns.
        if [n for n in named if n in wanted] != wanted:
            problems.append(f"{where}: 2.2 {table} names {named}, {CATALOGUE_NAME}: {wanted}")
    check(problems)
