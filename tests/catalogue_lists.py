"""Reads sql/catalogue.json and the other lists of tables and columns, so tests can compare them.

Every function returns plain data (names, types); the tests say which file and column differ.
Shared by tests/test_catalogue.py and pyspark_jobs/tests/test_catalogue_outputs.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CATALOGUE_PATH = REPO / "sql" / "catalogue.json"
CATALOGUE_NAME = "sql/catalogue.json"


def catalogue() -> dict:
    return json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))


def warehouse_tables(cat: dict) -> list[dict]:
    """The dimensions then the fact, as {table, columns}."""
    return [*cat["dimensions"], cat["fact"]]


def spark_type(sql_type: str) -> str:
    """The Spark simpleString of a catalogue SQL type (what the jobs' Parquet holds)."""
    sql_type = sql_type.lower()
    if sql_type.startswith("varchar"):
        return "string"
    return {"int": "int", "bigint": "bigint", "date": "date"}.get(sql_type, sql_type)


def strip_sql_comments(sql: str) -> str:
    """Drops `-- ...` to the end of the line, outside single quotes."""
    out, quoted, i = [], False, 0
    while i < len(sql):
        c = sql[i]
        if c == "'":
            quoted = not quoted
        if not quoted and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _top_level_split(body: str) -> list[str]:
    parts, depth, current = [], 0, []
    for c in body:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _balanced(sql: str, open_at: int) -> str:
    """The text inside the parenthesis that opens at `open_at`."""
    depth = 0
    for i in range(open_at, len(sql)):
        if sql[i] == "(":
            depth += 1
        elif sql[i] == ")":
            depth -= 1
            if depth == 0:
                return sql[open_at + 1 : i]
    raise ValueError(f"unbalanced parenthesis at {open_at}")


CREATE_TABLE = re.compile(
    r"CREATE\s+(?:EXTERNAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:[\w${}]+\.)?(\w+)\s*\(",
    re.IGNORECASE,
)
COLUMN = re.compile(r"^(\w+)\s+(\w+(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?)(.*)$", re.DOTALL)
CONSTRAINT_WORDS = {"FOREIGN", "PRIMARY", "UNIQUE", "CONSTRAINT", "CHECK"}


def ddl_tables(sql: str) -> dict[str, dict]:
    """table -> {columns: [{name, type, not_null}], foreign_keys: [(column, table, column)]}
    for every CREATE [EXTERNAL] TABLE of a script."""
    sql = strip_sql_comments(sql)
    tables = {}
    for match in CREATE_TABLE.finditer(sql):
        body = _balanced(sql, match.end() - 1)
        columns, keys = [], []
        for item in _top_level_split(body):
            if item.split()[0].upper() in CONSTRAINT_WORDS:
                fk = re.match(
                    r"FOREIGN\s+KEY\s*\((\w+)\)\s*REFERENCES\s+(?:\w+\.)?(\w+)\s*\((\w+)\)",
                    item,
                    re.IGNORECASE,
                )
                if fk:
                    keys.append(fk.groups())
                continue
            found = COLUMN.match(item)
            if not found:
                raise ValueError(f"cannot read the column definition {item!r}")
            name, kind, rest = found.groups()
            columns.append(
                {
                    "name": name,
                    "type": re.sub(r"\s+", "", kind).lower(),
                    "not_null": bool(re.search(r"\bNOT\s+NULL\b", rest, re.IGNORECASE)),
                }
            )
        tables[match.group(1)] = {"columns": columns, "foreign_keys": keys}
    return tables


def view_columns(sql: str) -> dict[str, list[str]]:
    """view -> its output columns, from the outermost SELECT list of each CREATE VIEW."""
    sql = strip_sql_comments(sql)
    views = {}
    pattern = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:\w+\.)?(\w+)\s+AS", re.IGNORECASE)
    matches = list(pattern.finditer(sql))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(sql)
        text = sql[match.end() : end]
        # The outermost SELECT is the last one at the start of a line (CTEs are indented).
        selects = [m.end() for m in re.finditer(r"^SELECT\b", text, re.MULTILINE)]
        select_list = text[
            selects[-1] : re.search(r"^FROM\b", text[selects[-1] :], re.M).start() + selects[-1]
        ]
        names = []
        for item in _top_level_split(select_list):
            alias = re.search(r"\bAS\s+(\w+)\s*$", item, re.IGNORECASE)
            names.append(alias.group(1) if alias else item.split(".")[-1].strip())
        views[match.group(1)] = names
    return views


def comment_targets(sql: str) -> set[tuple[str, str | None]]:
    """(object, column or None) of every COMMENT ON statement."""
    pattern = re.compile(r"COMMENT ON (?:TABLE|VIEW|COLUMN) (?:\w+\.)(\w+)(?:\.(\w+))? IS", re.I)
    return {(m.group(1), m.group(2)) for m in pattern.finditer(strip_sql_comments(sql))}


def doc_table_signatures(markdown: str, heading: str) -> dict[str, list[tuple[str, str]]]:
    """table -> [(column, type)] from the indented `name(col type, ...)` block under `heading`."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    block = " ".join(line.strip() for line in section.splitlines() if line.startswith("    "))
    tables = {}
    for match in re.finditer(r"(\w+)\(", block):
        if match.group(1) in {"varchar", "decimal", "numeric"}:
            continue
        body = _balanced(block, match.end() - 1)
        tables[match.group(1)] = [tuple(item.split(None, 1)) for item in _top_level_split(body)]
    return tables
