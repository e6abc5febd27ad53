"""Reading vendor CSV files: RFC 4180 records, header by name, and whole-file checks."""

from __future__ import annotations

import gzip

import pytest

from pyspark_jobs.csv_input import CORRUPT_RECORD, read_csv_strings
from pyspark_jobs.errors import UnusableInput
from pyspark_jobs.tests.conftest import write_text

REQUIRED = ("cid", "review_str", "id_review")


def rows(df):
    return [r.asDict() for r in df.collect()]


def test_quoted_fields_with_commas_doubled_quotes_and_newlines(spark, tmp_path):
    path = write_text(
        tmp_path / "movie_review.csv",
        "cid,review_str,id_review\r\n"
        '1,"good, really",10\r\n'
        '2,"she said ""good""\nand left",11\r\n'
        "3,plain <br /> text,12\n",
    )
    got = rows(read_csv_strings(spark, path, REQUIRED))
    assert [(r["cid"], r["review_str"], r["id_review"]) for r in got] == [
        ("1", "good, really", "10"),
        ("2", 'she said "good"\nand left', "11"),
        ("3", "plain <br /> text", "12"),
    ]
    assert all(r[CORRUPT_RECORD] is None for r in got)


def test_columns_are_found_by_header_name_in_any_order(spark, tmp_path):
    path = write_text(tmp_path / "r.csv", "\ufeffid_review,extra,cid,review_str\n10,x,1,text\n")
    (row,) = rows(read_csv_strings(spark, path, REQUIRED))
    assert (row["cid"], row["review_str"], row["id_review"], row["extra"]) == (
        "1",
        "text",
        "10",
        "x",
    )


def test_gzip_input_is_read(spark, tmp_path):
    path = tmp_path / "movie_review.csv.gz"
    path.write_bytes(gzip.compress(b"cid,review_str,id_review\n1,hello,10\n"))
    assert [r["review_str"] for r in rows(read_csv_strings(spark, str(path), REQUIRED))] == [
        "hello"
    ]


def test_a_record_with_the_wrong_number_of_fields_is_kept_as_corrupt(spark, tmp_path):
    path = write_text(
        tmp_path / "r.csv", "cid,review_str,id_review\n1,short\n2,a,b,c,13\n3,fine,14\n"
    )
    got = rows(read_csv_strings(spark, path, REQUIRED))
    assert [r[CORRUPT_RECORD] for r in got] == ["1,short", "2,a,b,c,13", None]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("r.csv", b"", "is empty (0 bytes)"),
        ("r.csv.gz", gzip.compress(b""), "is empty (no header line)"),
        ("r.csv.gz", b"not gzip at all", "cannot be read as text"),
        ("r.csv", b"cid,text,id_review\n1,x,2\n", "lacks the required column(s) review_str"),
        ("r.csv", b"cid,cid,review_str,id_review\n1,1,x,2\n", "more than once"),
        ("r.csv", b"\x00\x01\x02\xff\xfe binary\x00,\x00\n", "is not text"),
        ("r.csv", gzip.compress(b"cid,review_str,id_review\n1,x,2\n"), "looks gzip-compressed"),
    ],
)
def test_unusable_files_name_the_file_and_the_problem(spark, tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnusableInput) as raised:
        read_csv_strings(spark, str(path), REQUIRED)
    assert str(path) in str(raised.value)
    assert problem in str(raised.value)


def test_missing_file(spark, tmp_path):
    with pytest.raises(UnusableInput, match="does not exist"):
        read_csv_strings(spark, str(tmp_path / "nope.csv"), REQUIRED)


def test_a_folder_without_data_files_is_unusable(spark, tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "_SUCCESS").write_bytes(b"")
    with pytest.raises(UnusableInput, match="without any data file"):
        read_csv_strings(spark, str(tmp_path / "export"), REQUIRED)
