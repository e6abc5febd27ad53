"""build_fact: grain, Unknown members, amount_spent, invariants, and the job on tiny inputs."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from pyspark_jobs import build_dimensions, build_fact
from pyspark_jobs.errors import InvariantBroken, UnusableInput
from pyspark_jobs.tests.conftest import assertDataFrameEqual, read_metrics, write_text

RUN = "2021-10-31"
RUN_DATE = dt.date(2021, 10, 31)
REVIEW_SCHEMA = "customer_id int, review_id int, positive_review int, insert_date date"
LOG_SCHEMA = (
    "log_id int, log_date date, device string, os string, location string, browser string, "
    "ip string, phone_number string, insert_date date"
)
APRIL = dt.date(2021, 4, 25)
FACT_SCHEMA = (
    "customerid int, id_dim_date int, id_dim_devices int, id_dim_location int, id_dim_os int, "
    "id_dim_browser int, amount_spent decimal(18,5), review_score bigint, review_count bigint, "
    "insert_date date"
)
PURCHASES_CSV = (
    "invoice_number,stock_code,detail,quantity,invoice_date,unit_price,customer_id,country\n"
    '536365,85123A,"WHITE HANGING HEART, T-LIGHT",6,2010-12-01 08:26:00,2.550,17850,UK\n'
    "536366,22633,HAND WARMER,2,2010-12-01 08:28:00,1.850,17850,UK\n"
    "C536379,D,Discount,-1,2010-12-01 09:41:00,27.500,14527,UK\n"  # a return
    "536380,22961,JAM JAR,10,2010-12-01 09:41:00,1.000,14527,UK\n"
    "536381,22961,JAM JAR,3,2010-12-01 09:45:00,1.000,,UK\n"  # no customer
    "536382,22961,JAM JAR,many,2010-12-01 09:45:00,1.000,14527,UK\n"  # bad quantity
    "536383,22961,JAM JAR,1,2010-12-01 09:45:00,1.000,C14527,UK\n"  # bad customer id
)


def log(i, day, device="Mobile", os="Apple iOS", location="Kansas", browser="Safari"):
    return (i, day, device, os, location, browser, None, None, RUN_DATE)


def stage(spark, tmp_path: Path, reviews, logs, purchases_csv=PURCHASES_CSV):
    """Stage tiny inputs like the upstream jobs do, and build the run's dimensions."""
    paths = {
        "reviews": tmp_path / "classified_movie_review" / f"dt={RUN}",
        "logs": tmp_path / "review_logs" / f"dt={RUN}",
        "purchases": tmp_path / "user_purchase" / f"dt={RUN}",
    }
    spark.createDataFrame(reviews, REVIEW_SCHEMA).write.mode("overwrite").parquet(
        str(paths["reviews"])
    )
    spark.createDataFrame(logs, LOG_SCHEMA).write.mode("overwrite").parquet(str(paths["logs"]))
    write_text(paths["purchases"] / "user_purchase.csv", purchases_csv)
    build_dimensions.main(
        [
            "--run-date", RUN,
            "--review-logs", str(paths["logs"]),
            "--dims-root", str(tmp_path / "dims"),
            "--load-root", str(tmp_path / "warehouse_load" / f"dt={RUN}"),
            "--metrics", str(tmp_path / "_metrics" / "build_dimensions"),
        ]
    )  # fmt: skip
    return paths


def fact_args(tmp_path, paths, rejects=True):
    args = [
        "--run-date", RUN,
        "--reviews", str(paths["reviews"]),
        "--review-logs", str(paths["logs"]),
        "--purchases", str(paths["purchases"]),
        "--dims-root", str(tmp_path / "dims"),
        "--output", str(tmp_path / "fact_movie_analytics" / f"dt={RUN}"),
        "--load-root", str(tmp_path / "warehouse_load" / f"dt={RUN}"),
        "--metrics", str(tmp_path / "_metrics" / "build_fact"),
    ]  # fmt: skip
    if rejects:
        args += ["--rejects", str(tmp_path / "rejects" / "user_purchase" / f"dt={RUN}")]
    return args


def ids(spark, tmp_path, table):
    folder = tmp_path / "dims" / table / f"dt={RUN}"
    return {r[1]: r[0] for r in spark.read.parquet(str(folder)).collect()}


def test_fact_rows_at_the_grain_with_unknown_members_and_net_spend(spark, tmp_path):
    reviews = [
        (17850, 1, 1, RUN_DATE),  # two reviews of one customer in one session grain
        (17850, 2, 0, RUN_DATE),
        (17850, 3, 1, RUN_DATE),  # same customer, another device: another row
        (14527, 4, 0, RUN_DATE),  # customer with a return
        (20001, 5, 1, RUN_DATE),  # customer without purchases, review without a log row
    ]
    logs = [
        log(1, APRIL),
        log(2, APRIL),
        log(3, APRIL, device="Tablet"),
        log(4, APRIL, device=None, os="BeOS", browser=None, location="Lousiana"),
        log(99, APRIL),  # a log without a review: not in the fact
    ]
    paths = stage(spark, tmp_path, reviews, logs)
    assert build_fact.main(fact_args(tmp_path, paths)) == 0

    fact = spark.read.parquet(str(tmp_path / "fact_movie_analytics" / f"dt={RUN}"))
    assert tuple(fact.columns) == build_fact.FACT_COLUMNS
    devices = ids(spark, tmp_path, "dim_devices")
    os_ids = ids(spark, tmp_path, "dim_os")
    browsers = ids(spark, tmp_path, "dim_browser")
    locations = ids(spark, tmp_path, "dim_location")
    kansas = locations["Kansas"]
    spend_17850 = Decimal("6") * Decimal("2.55") + Decimal("2") * Decimal("1.85")
    expected = spark.createDataFrame(
        [
            (17850, 20210425, devices["Mobile"], kansas, os_ids["Apple iOS"],
             browsers["Safari"], spend_17850, 1, 2, RUN_DATE),
            (17850, 20210425, devices["Tablet"], kansas, os_ids["Apple iOS"],
             browsers["Safari"], spend_17850, 1, 1, RUN_DATE),
            (14527, 20210425, 0, locations["Lousiana"], os_ids["BeOS"], 0,
             Decimal("-17.5"), 0, 1, RUN_DATE),
            (20001, 0, 0, 0, 0, 0, Decimal("0"), 1, 1, RUN_DATE),
        ],
        FACT_SCHEMA,
    )  # fmt: skip
    assertDataFrameEqual(fact, expected)
    rows = [tuple(r) for r in fact.collect()]
    assert sum(r[8] for r in rows) == len(reviews)

    metrics = read_metrics(tmp_path / "_metrics" / "build_fact")
    assert metrics["sources"]["user_purchase"] == {
        "rows_in": 7,
        "rows_out": 5,
        "rows_rejected": 2,
        "rejected_by_reason": {"bad_customer_id": 1, "bad_quantity": 1},
    }
    assert metrics["warnings"] == {
        "reviews_without_log": 1,
        "customers_without_purchases": 1,
        "purchases_without_customer": 1,
    }
    assert metrics["checks"]["sum_review_count"] == metrics["checks"]["classified_reviews"] == 5
    assert metrics["outputs"] == {"fact_movie_analytics": 4}
    rejects = spark.read.parquet(str(tmp_path / "rejects" / "user_purchase" / f"dt={RUN}"))
    assert sorted((r["reason"], r["record_key"]) for r in rejects.collect()) == [
        ("bad_customer_id", "536383"),
        ("bad_quantity", "536382"),
    ]
    # The load CSV: one file per partition of the fact, each with the header, the rows once.
    load = tmp_path / "warehouse_load" / f"dt={RUN}" / "fact_movie_analytics"
    texts = [gzip.decompress(p.read_bytes()).decode() for p in sorted(load.glob("part-*.csv.gz"))]
    header = ",".join(build_fact.FACT_COLUMNS)
    assert texts and all(t.split("\n", 1)[0] == header for t in texts if t)
    data_lines = [line for t in texts for line in t.splitlines()[1:]]
    assert len(data_lines) == metrics["outputs"]["fact_movie_analytics"]


def test_duplicate_log_ids_break_the_review_count_invariant(spark, tmp_path):
    reviews = [(17850, 1, 1, RUN_DATE)]
    logs = [log(1, APRIL), log(1, APRIL, device="Tablet")]  # parse_logs never writes this
    paths = stage(spark, tmp_path, reviews, logs)
    with pytest.raises(InvariantBroken, match="SUM\\(review_count\\) is 2 but the run has 1"):
        build_fact.main(fact_args(tmp_path, paths))
    assert not (tmp_path / "fact_movie_analytics").exists()


def test_a_session_value_missing_from_its_dimension_breaks_an_invariant(spark, tmp_path):
    paths = stage(spark, tmp_path, [(17850, 1, 1, RUN_DATE)], [log(1, APRIL)])
    # review_logs rewritten after build_dimensions ran: its value has no key.
    spark.createDataFrame([log(1, APRIL, device="Watch")], LOG_SCHEMA).write.mode(
        "overwrite"
    ).parquet(str(paths["logs"]))
    with pytest.raises(InvariantBroken, match="missing from its dimension snapshot"):
        build_fact.main(fact_args(tmp_path, paths))


def test_missing_dimension_snapshot_is_an_unusable_input(spark, tmp_path):
    paths = stage(spark, tmp_path, [(17850, 1, 1, RUN_DATE)], [log(1, APRIL)])
    args = fact_args(tmp_path, paths)
    args[args.index("--dims-root") + 1] = str(tmp_path / "no-dims")
    with pytest.raises(UnusableInput, match="dim_date"):
        build_fact.main(args)


def test_purchases_export_without_its_columns_is_unusable(spark, tmp_path):
    paths = stage(
        spark, tmp_path, [(17850, 1, 1, RUN_DATE)], [log(1, APRIL)], "InvoiceNo,Quantity\n1,2\n"
    )
    with pytest.raises(UnusableInput, match="lacks the required column"):
        build_fact.main(fact_args(tmp_path, paths))
