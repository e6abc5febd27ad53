"""Per-step wall times of `emr-driver --output json run` runs, from their run manifests.

    python benchmarks/run_steps.py PREFIX RUN1.jsonl [RUN2.jsonl ...]

Each file is the stdout of one run: JSON events, one a line, the last `run_finished` with the
manifest (DESIGN.md 2.5). For every step it prints the median of its wall times (manifest
`started_at` / `ended_at`) over the runs, with the rows it read and rows per second, as
`FIGURE <PREFIX>.step.<key>.seconds` lines; then each source's rows in / out / rejected.
Only the manifest's documented fields are read, each one optional, so a change in the runner
leaves a shorter table, never a failed benchmark. Standard library only; Python 3.9+.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import sys

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def when(text: str) -> dt.datetime:
    """An RFC 3339 time; chrono writes up to nine fractional digits, Python reads six."""
    match = _TIME.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    stamp = base + "." + (fraction or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone in (None, "Z") else zone
    return dt.datetime.fromisoformat(stamp + zone)


def manifest_of(path: str) -> dict:
    manifest = None
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == "run_finished":
                    manifest = event.get("manifest")
    if manifest is None:
        sys.exit(f"run_steps: no run_finished event in {path}")
    return manifest


def step_rows(step: dict, manifest: dict):
    """Rows the step read: its metrics' sources (Spark jobs), the tables it loaded (warehouse),
    else the manifest's source of the same name (driver steps); None when unknown."""
    metrics = step.get("metrics") or {}
    if not isinstance(metrics, dict):
        return None
    if isinstance(metrics.get("sources"), dict) and metrics["sources"]:
        return sum(s.get("rows_in", 0) for s in metrics["sources"].values())
    if isinstance(metrics.get("tables"), list) and metrics["tables"]:
        return sum(t.get("rows", 0) for t in metrics["tables"])
    for name, counts in (manifest.get("sources") or {}).items():
        if name in step.get("key", ""):
            return counts.get("rows_in")
    return None


def main(argv: list) -> int:
    if len(argv) < 3:
        sys.exit(__doc__)
    prefix, paths = argv[1], argv[2:]
    manifests = [manifest_of(p) for p in paths]
    seconds: dict = {}
    rows: dict = {}
    kinds: dict = {}
    for manifest in manifests:
        for step in manifest.get("steps") or []:
            key = step.get("key", "?")
            kinds[key] = step.get("kind", "")
            seconds.setdefault(key, [])
            if step.get("started_at") and step.get("ended_at"):
                took = (when(step["ended_at"]) - when(step["started_at"])).total_seconds()
                seconds[key].append(took)
                rows[key] = step_rows(step, manifest)
    print(f"steps, median over {len(manifests)} run(s) (manifest started_at / ended_at):")
    for key, values in seconds.items():
        if not values:
            print(f"  {key:<28} {kinds[key]:<12} (no times)")
            continue
        median = statistics.median(values)
        count = rows.get(key)
        rate = f"{count / median:,.0f} rows/s" if count and median > 0 else "-"
        shown = f"{count:,}" if count is not None else "-"
        print(f"  {key:<28} {kinds[key]:<12} {median:7.1f} s {shown:>11} rows  {rate}")
        print(f"FIGURE {prefix}.step.{key}.seconds = {median:.1f} s")
    last = manifests[-1]
    print(f"last run {last.get('run_id', '?')}: {last.get('state', '?')}")
    for name, counts in sorted((last.get("sources") or {}).items()):
        print(
            f"  source {name}: in {counts.get('rows_in', 0):,}, out {counts.get('rows_out', 0):,}, "
            f"rejected {counts.get('rows_rejected', 0):,}"
        )
        print(f"FIGURE {prefix}.source.{name}.rows_out = {counts.get('rows_out', 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
