"""The analysts' HTML report in a real headless browser (issue 15).

Loads hand-written warehouse load files (with a hostile location name) into the embedded
SQLite warehouse with `emr-driver load-warehouse --sqlite`, writes the report with
`emr-driver report --html`, then opens it in the OS's Chromium through Playwright and checks:
no request leaves the file (every request is recorded; only the file:// URL itself is made),
the numbers in the page's tables and charts equal the answers of sql/questions/*.sql run here
independently on the same warehouse with Python's sqlite3, the page fits a phone's width, and a
screenshot is not blank. Chromium comes from scripts/setup-browser.sh (Debian's `chromium`);
without it the test is skipped with the reason.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "target" / "release" / "emr-driver"
STAGING = "test-staging"
RUN_DATE = "2021-10-31"
RUN_ID = "2021-10-31-0123456789ab"
HOSTILE = "<img src=x onerror=alert(1)>Kansas"

QUESTIONS = [
    "q1_reviews_in_ca_ny_tx",
    "q2_apple_devices_in_ca_ny_tx",
    "q3_location_most_computer_chrome",
    "q4_states_most_fewest_2021",
    "q5_most_used_device_east_west",
]

DIMS = {
    "dim_date": (
        "id_dim_date,log_date,day,month,year,season",
        [
            "0,,,,,Unknown",
            "20210425,2021-04-25,25,4,2021,Spring",
            "20201103,2020-11-03,3,11,2020,Fall",
        ],
    ),
    "dim_devices": ("id_dim_devices,device", ["0,Unknown", "1,Mobile", "2,Computer", "3,Tablet"]),
    "dim_location": (
        "id_dim_location,location,state_code,region",
        [
            "0,Unknown,,Unknown",
            "1,California,CA,West",
            "2,New York,NY,Northeast",
            "3,Texas,TX,South",
            "4,Kansas,KS,Midwest",
            "5,Oregon,OR,West",
            "6,Florida,FL,South",
            # No review: the fewest of 2021 (question 4), so the page must show it as text.
            f'7,"{HOSTILE}",,Unknown',
        ],
    ),
    "dim_os": (
        "id_dim_os,os",
        ["0,Unknown", "1,Apple iOS", "2,Apple MacOS", "3,Microsoft Windows", "4,Linux"],
    ),
    "dim_browser": (
        "id_dim_browser,browser",
        ["0,Unknown", "1,Safari", "2,Google Chrome", "3,Mozilla Firefox"],
    ),
}
FACT_HEADER = (
    "customerid,id_dim_date,id_dim_devices,id_dim_location,id_dim_os,id_dim_browser,"
    "amount_spent,review_score,review_count,insert_date"
)


def fact_rows() -> list[str]:
    """Deterministic rows over every combination (a linear congruential sequence)."""
    rows, seen, state = [], set(), 12345
    while len(rows) < 150:
        state = (state * 1103515245 + 12345) % 2**31
        key = (
            12000 + state % 40,
            [0, 20210425, 20201103][state // 40 % 3],
            state // 120 % 4,
            state // 480 % 7,
            state // 3360 % 5,
            state // 16800 % 4,
        )
        if key in seen:
            continue
        seen.add(key)
        count = 1 + state // 67200 % 9
        rows.append(
            ",".join(str(k) for k in key)
            + f",{key[0] * 3}.25000,{state % (count + 1)},{count},{RUN_DATE}"
        )
    return rows


def write_part(folder: Path, header: str, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(
        folder / "part-00000-test-c000.csv.gz", "wt", encoding="utf-8", newline=""
    ) as out:
        out.write(header + "\n" + "\n".join(lines) + "\n")
    # A complete Spark write ends with its marker: the load refuses a folder without one.
    (folder / "_SUCCESS").write_bytes(b"")


def manifest() -> dict:
    counts = {
        "rows_in": 100,
        "rows_out": 96,
        "rows_rejected": 4,
        "rejected_by_reason": {"bad_xml": 1, "bad_date": 3},
    }
    return {
        "run_id": RUN_ID,
        "run_date": RUN_DATE,
        "target": "local",
        "config_hash": "0123456789ab",
        "state": "succeeded",
        "started_at": "2021-11-01T02:00:00Z",
        "ended_at": "2021-11-01T02:03:00Z",
        "artifacts": [],
        "cluster": None,
        "steps": [],
        "sources": {"log_reviews": counts},
        "manifest_uri": f"s3://{STAGING}/_runs/{RUN_ID}.json",
        "error": None,
    }


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def png_pixels(png: bytes) -> tuple[int, int, int, list[bytes]]:
    """Decodes an 8-bit RGB / RGBA PNG (what Chromium writes) into its rows of pixels."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        filter_type, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                line[i] = (line[i] + left) & 0xFF
            elif filter_type == 2:
                line[i] = (line[i] + up) & 0xFF
            elif filter_type == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (
                    line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)
                ) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def luminance_variance(png: bytes) -> float:
    width, height, channels, rows = png_pixels(png)
    values = []
    for row in rows[::4]:
        for x in range(0, width, 4):
            r, g, b = row[x * channels : x * channels + 3]
            values.append(0.299 * r + 0.587 * g + 0.114 * b)
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def as_text(value) -> str:
    return "NULL" if value is None else str(value)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if not DRIVER.is_file():
        pytest.skip(f"{DRIVER} is not built (cargo build --release)")
    tmp = tmp_path_factory.mktemp("report")
    lake, warehouse, page = tmp / "lake", tmp / "warehouse.sqlite", tmp / "report.html"
    load_root = lake / STAGING / "warehouse_load" / f"dt={RUN_DATE}"
    for table, (header, lines) in DIMS.items():
        write_part(load_root / table, header, lines)
    write_part(load_root / "fact_movie_analytics", FACT_HEADER, fact_rows())
    (lake / STAGING / "_runs").mkdir(parents=True)
    (lake / STAGING / "_runs" / f"{RUN_ID}.json").write_text(json.dumps(manifest()))
    common = [
        "--lake-dir",
        str(lake),
        "--set",
        f"buckets.staging={STAGING}",
        "--set",
        "pipeline.target=local",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WAREHOUSE_URL")}
    subprocess.run(
        [
            str(DRIVER),
            "load-warehouse",
            "--date",
            RUN_DATE,
            "--load-root",
            f"s3://{STAGING}/warehouse_load/dt={RUN_DATE}",
            "--sqlite",
            str(warehouse),
            *common,
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [str(DRIVER), "report", "--html", str(page), "--sqlite", str(warehouse), *common],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    return page, warehouse


def independent_answers(warehouse: Path) -> dict[str, list[list[str]]]:
    """The five questions' SQL files run here on the same warehouse, with Python's sqlite3."""
    conn = sqlite3.connect(f"file:{warehouse}?mode=ro", uri=True)
    try:
        return {
            name: [
                [as_text(v) for v in row]
                for row in conn.execute((REPO / "sql" / "questions" / f"{name}.sql").read_text())
            ]
            for name in QUESTIONS
        }
    finally:
        conn.close()


def test_the_report_opens_offline_in_chromium_with_the_sql_answers(report):
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("no Chromium: run scripts/setup-browser.sh (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in requirements/dev.txt"
    )
    page_file, warehouse = report
    url = page_file.resolve().as_uri()
    expected = independent_answers(warehouse)
    assert any(rows for rows in expected.values()), "the test data must answer the questions"

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            requests: list[str] = []

            def route(r):
                requests.append(r.request.url)
                if r.request.url == url:
                    r.continue_()
                else:
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            seen: list[str] = []  # every request the page made, routed or not
            page.on("request", lambda req: seen.append(req.url))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(300)  # lets any late fetch (a hostile <img>, a font) show up
            assert requests == [url], f"requests left the file: {requests}"
            assert seen == [url], f"requests left the file: {seen}"
            assert (
                page.evaluate("() => document.querySelectorAll('img, script, link, iframe').length")
                == 0
            )

            # The hostile location is text on the page, never markup.
            assert HOSTILE in page.inner_text("body")

            for name, rows in expected.items():
                section = page.locator(f"section#{name}")
                shown = section.locator("tbody tr").evaluate_all(
                    "trs => trs.map(tr => Array.from(tr.cells).map(td => td.textContent))"
                )
                assert shown == (rows or [["(no rows)"]]), name
                bars = section.locator("rect[data-value]").evaluate_all(
                    "rs => rs.map(r => [r.dataset.label, Number(r.dataset.value)])"
                )
                label = (
                    1
                    if name in ("q4_states_most_fewest_2021", "q5_most_used_device_east_west")
                    else 0
                )
                assert bars == [[r[label], int(r[-1])] for r in rows if r[0] != "Total"], name
                sentence = section.locator("p.answer").inner_text()
                for r in rows:
                    assert r[-1] in sentence, (name, r, sentence)

            assert page.inner_text("#latest-run-date") == RUN_DATE
            assert page.inner_text("#latest-run-id") == RUN_ID
            assert page.inner_text("#latest-fact-rows") == "150"

            shot = page.screenshot(full_page=False)
            assert luminance_variance(shot) > 100, "the screenshot is blank"

            # A phone: nothing wider than the screen.
            page.set_viewport_size({"width": 390, "height": 844})
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 1, f"the page is {overflow}px wider than a phone"
            assert luminance_variance(page.screenshot()) > 100
            # Print: the SQL is shown in full.
            page.emulate_media(media="print")
            assert (
                page.locator("pre").first.evaluate("e => getComputedStyle(e).maxHeight") == "none"
            )
        finally:
            browser.close()
