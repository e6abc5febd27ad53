//! `user_purchase` against the real PostgreSQL on 127.0.0.1:5432: load (the real 541,908-row
//! file and tiny inline ones), bad rows, reload, export round trip.

use crate::db_common;

use std::collections::BTreeMap;
use std::io::Read;

use db_common::{full_size_purchase_files, reader, TestDb};
use emr_driver::db::export::{export_user_purchase, ExportTarget};
use emr_driver::db::user_purchase::{load, uci_to_export, BadRow, LoadOptions};
use emr_driver::db::DbError;
use emr_driver::error::{ExitCode, ExitStatus};
use emr_driver::store::local::LocalStore;
use emr_driver::store::{ObjectStore, ObjectUri};

const HEADER: &str = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n";

/// Exact money in thousandths, parsed here independently of the code under test.
fn thousandths(text: &str) -> i128 {
    let negative = text.starts_with('-');
    let digits = text.trim_start_matches('-');
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(frac.len() <= 3, "{text}");
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().unwrap() };
    let frac: i128 = format!("{frac:0<3}").parse().unwrap();
    let value = whole * 1000 + frac;
    if negative {
        -value
    } else {
        value
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

async fn table_rows(client: &tokio_postgres::Client) -> Vec<Vec<Option<String>>> {
    let rows = client
        .query(
            "SELECT invoice_number, stock_code, detail, quantity::text, invoice_date::text, unit_price::text, \
             customer_id::text, country FROM user_purchase ORDER BY invoice_number, stock_code",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (0..8).map(|i| row.get::<_, Option<String>>(i)).collect()).collect()
}

#[tokio::test]
async fn loads_full_size_files_with_the_right_spend_per_customer_and_exports_them_back() {
    let scratch = tempfile::tempdir().unwrap();
    for (index, path) in full_size_purchase_files(scratch.path()).iter().enumerate() {
        load_and_export_full_size(path, index).await;
    }
}

async fn load_and_export_full_size(path: &std::path::Path, index: usize) {
    // Expected, computed here with the csv crate and integer thousandths.
    let mut expected_spend: BTreeMap<Option<i32>, i128> = BTreeMap::new();
    let mut expected_rows = 0u64;
    let mut csv = csv::Reader::from_reader(flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()));
    let headers = csv.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (quantity, price, customer) = (col("Quantity"), col("UnitPrice"), col("CustomerID"));
    for record in csv.records() {
        let record = record.unwrap();
        let customer_id = match &record[customer] {
            "" => None,
            id => Some(id.parse::<i32>().unwrap()),
        };
        let spend = record[quantity].parse::<i128>().unwrap() * thousandths(&record[price]);
        *expected_spend.entry(customer_id).or_default() += spend;
        expected_rows += 1;
    }
    assert_eq!(expected_rows, 541_908);

    let db = TestDb::create(&format!("full_size_{index}")).await;
    let mut client = db.client().await;
    let file = tokio::fs::File::open(path).await.unwrap();
    let report = load(&mut client, file, "user_purchase.csv.gz", LoadOptions::default()).await.unwrap();
    assert_eq!(report.rows_loaded, expected_rows);
    assert_eq!(report.bad_row_count, 0);

    let count: i64 = client.query_one("SELECT COUNT(*) FROM user_purchase", &[]).await.unwrap().get(0);
    assert_eq!(count as u64, expected_rows);
    let rows = client
        .query("SELECT customer_id, SUM(quantity * unit_price)::text FROM user_purchase GROUP BY customer_id", &[])
        .await
        .unwrap();
    let actual_spend: BTreeMap<Option<i32>, i128> =
        rows.iter().map(|row| (row.get::<_, Option<i32>>(0), thousandths(row.get::<_, &str>(1)))).collect();
    assert_eq!(actual_spend.len(), expected_spend.len());
    assert_eq!(actual_spend, expected_spend);

    // The export of the table is byte for byte what the driver writes from the file directly.
    let lake = tempfile::tempdir().unwrap();
    let store = LocalStore::new(lake.path());
    let uri = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz").unwrap();
    let exported = export_user_purchase(&client, &store, &ExportTarget::File(uri.clone())).await.unwrap();
    assert_eq!(exported.rows, expected_rows);
    let exported_bytes = store.get_bytes(&uri).await.unwrap();
    assert_eq!(exported.bytes, exported_bytes.len() as u64);
    let mut converted = Vec::new();
    let file = tokio::fs::File::open(path).await.unwrap();
    uci_to_export(file, "user_purchase.csv.gz", &mut converted, LoadOptions::default()).await.unwrap();
    assert!(gunzip(&exported_bytes) == converted, "export and direct conversion differ");

    // As the pipeline stages it, in parts: each starts with the header, and the parts without
    // their headers, in order, are the one-file export (so no record is cut or lost).
    let folder = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/run=r1").unwrap();
    let target = ExportTarget::Parts { folder: folder.clone(), part_size: 8 << 20 };
    let parted = export_user_purchase(&client, &store, &target).await.unwrap();
    assert_eq!(parted.rows, expected_rows);
    let header_end = converted.iter().position(|b| *b == b'\n').unwrap() + 1;
    let (header, mut joined) = (&converted[..header_end], Vec::new());
    let mut names: Vec<String> =
        store.list(&folder.join("")).await.unwrap().iter().map(|m| m.uri.file_name().to_string()).collect();
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("_SUCCESS"), "{names:?}");
    names.remove(0);
    assert!(names.len() >= 2, "{} bytes in parts of 8 MiB: {names:?}", converted.len());
    for name in &names {
        let part = gunzip(&store.get_bytes(&folder.join(name)).await.unwrap());
        assert!(part.starts_with(header), "{name} does not start with the header");
        joined.extend_from_slice(&part[header_end..]);
    }
    assert!(joined == converted[header_end..], "the parts do not add up to the export");
}

#[tokio::test]
async fn bad_rows_fail_the_load_and_leave_the_table_as_it_was() {
    let db = TestDb::create("bad_rows").await;
    let mut client = db.client().await;
    let good = format!("{HEADER}1,A,a,1,1/2/2011 3:04,1.5,10,France\r\n2,B,b,2,1/2/2011 3:05,2,,France\r\n");
    load(&mut client, reader(&good), "good.csv", LoadOptions::default()).await.unwrap();
    let before = table_rows(&client).await;
    assert_eq!(before.len(), 2);

    let bad = format!(
        "{HEADER}\
         3,C,\"two\r\nlines\",1,1/2/2011 3:04,1.5,10,France\r\n\
         4,D,d,x,1/2/2011 3:04,1.5,10,France\r\n\
         5,E,e,1,2/30/2011 3:04,1.5,10,France\r\n\
         6,F,f,1,1/2/2011 3:04,1.5,10\r\n\
         7,G,g,1,1/2/2011 3:04,1.2345,10,France\r\n\
         8,H,h,1,1/2/2011 3:04,1.5,ten,France\r\n\
         9,I,i,1,1/2/2011 3:04,1.5,11,A country name far too long\r\n\
         10,J,j,1,1/2/2011 3:04,1.5,12,Spain\r\n"
    );
    let err = load(&mut client, reader(&bad), "bad.csv", LoadOptions::default()).await.unwrap_err();
    assert!(matches!(err, DbError::BadRows { count: 6, .. }), "{err}");
    assert_eq!(err.exit_code(), ExitCode::BadInput);
    assert!(err.to_string().contains("line 4: Quantity `x` is not a whole number"), "{err}");
    assert_eq!(table_rows(&client).await, before, "a failed load changes nothing");

    let report = load(&mut client, reader(&bad), "bad.csv", LoadOptions { skip_bad_rows: true }).await.unwrap();
    assert_eq!(report.rows_loaded, 2);
    assert_eq!(report.bad_row_count, 6);
    let lines: Vec<(u64, &str)> = report.bad_rows.iter().map(|b| (b.line, b.reason.as_str())).collect();
    assert_eq!(
        lines,
        vec![
            (4, "Quantity `x` is not a whole number"),
            (5, "InvoiceDate `2/30/2011 3:04` is not a date like 12/1/2010 8:26"),
            (6, "expected 8 fields, found 7"),
            (7, "UnitPrice `1.2345` has more than 3 decimals (the column is numeric(8,3))"),
            (8, "CustomerID `ten` is not a whole number"),
            (9, "Country is 27 characters long, longer than the 20 the table allows"),
        ]
    );
    let after = table_rows(&client).await;
    let invoices: Vec<&str> = after.iter().map(|r| r[0].as_deref().unwrap()).collect();
    assert_eq!(invoices, vec!["10", "3"]);
    assert_eq!(after[1][2].as_deref(), Some("two\r\nlines"));
}

#[tokio::test]
async fn a_missing_column_fails_clearly_and_changes_nothing() {
    let db = TestDb::create("missing_col").await;
    let mut client = db.client().await;
    let good = format!("{HEADER}1,A,a,1,1/2/2011 3:04,1.5,10,France\r\n");
    load(&mut client, reader(&good), "good.csv", LoadOptions::default()).await.unwrap();
    let renamed = "InvoiceNo,StockCode,Description,Qty,InvoiceDate,UnitPrice,CustomerID,Country\r\n1,A,a,1,1/2/2011 3:04,1.5,10,France\r\n";
    let err = load(&mut client, reader(renamed), "renamed.csv", LoadOptions { skip_bad_rows: true }).await.unwrap_err();
    assert!(matches!(&err, DbError::MissingColumn { column, .. } if column == "Quantity"), "{err}");
    assert_eq!(table_rows(&client).await.len(), 1);
    let err =
        load(&mut client, reader(HEADER), "header_only.csv", LoadOptions { skip_bad_rows: true }).await.unwrap_err();
    assert!(matches!(&err, DbError::NoRows { .. }), "{err}");
    assert_eq!(table_rows(&client).await.len(), 1, "an empty file does not empty the table");
}

#[tokio::test]
async fn a_reload_replaces_the_previous_content() {
    let db = TestDb::create("reload").await;
    let mut client = db.client().await;
    let first = format!("{HEADER}1,A,a,1,1/2/2011 3:04,1.5,10,France\r\n2,B,b,1,1/2/2011 3:04,1.5,10,France\r\n3,C,c,1,1/2/2011 3:04,1.5,10,France\r\n");
    let second = format!(
        "{HEADER}7,X,x,-2,12/31/2011 23:59,0.001,,United Kingdom\r\n8,Y,,5,1/1/2011 0:00,99999.999,42,EIRE\r\n"
    );
    load(&mut client, reader(&first), "first.csv", LoadOptions::default()).await.unwrap();
    let report = load(&mut client, reader(&second), "second.csv", LoadOptions::default()).await.unwrap();
    assert_eq!(report.rows_loaded, 2);
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        table_rows(&client).await,
        vec![
            vec![s("7"), s("X"), s("x"), s("-2"), s("2011-12-31 23:59:00"), s("0.001"), None, s("United Kingdom")],
            vec![s("8"), s("Y"), None, s("5"), s("2011-01-01 00:00:00"), s("99999.999"), s("42"), s("EIRE")],
        ]
    );
}

#[tokio::test]
async fn the_export_round_trips_exactly() {
    let db = TestDb::create("export").await;
    let mut client = db.client().await;
    let input = format!(
        "{HEADER}\
         C536379,D,\"Discount, \"\"special\"\"\",-1,12/1/2010 9:41,27.5,14527,United Kingdom\r\n\
         536380,22,\"two\nlines \u{fffd}\",1,12/1/2010 9:41,1,,France\r\n\
         536381,23,,3,12/1/2010 10:00,0.42,12583,France\r\n"
    );
    load(&mut client, reader(&input), "tricky.csv", LoadOptions::default()).await.unwrap();
    let lake = tempfile::tempdir().unwrap();
    let store = LocalStore::new(lake.path());
    let uri = ObjectUri::parse("s3://staging/user_purchase/dt=2021-10-31/user_purchase.csv.gz").unwrap();
    let report = export_user_purchase(&client, &store, &ExportTarget::File(uri.clone())).await.unwrap();
    assert_eq!(report.rows, 3, "records, not lines: one description holds a newline");

    let exported = gunzip(&store.get_bytes(&uri).await.unwrap());
    let mut csv = csv::ReaderBuilder::new().from_reader(exported.as_slice());
    assert_eq!(
        csv.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "invoice_number",
            "stock_code",
            "detail",
            "quantity",
            "invoice_date",
            "unit_price",
            "customer_id",
            "country"
        ]
    );
    let mut from_file: Vec<Vec<Option<String>>> = csv
        .records()
        .map(|r| r.unwrap().iter().map(|v| if v.is_empty() { None } else { Some(v.to_string()) }).collect())
        .collect();
    from_file.sort();
    assert_eq!(from_file, table_rows(&client).await);

    let mut converted = Vec::new();
    uci_to_export(reader(&input), "tricky.csv", &mut converted, LoadOptions::default()).await.unwrap();
    assert_eq!(String::from_utf8(exported).unwrap(), String::from_utf8(converted).unwrap());
}

#[tokio::test]
async fn bad_row_reports_keep_line_numbers_of_multi_line_records() {
    let db = TestDb::create("lines").await;
    let mut client = db.client().await;
    let input =
        format!("{HEADER}1,A,\"a\r\nb\r\nc\",1,1/2/2011 3:04,1.5,10,France\r\n2,B,b,1,1/2/2011 3:04,abc,10,France\r\n");
    let report = load(&mut client, reader(&input), "x.csv", LoadOptions { skip_bad_rows: true }).await.unwrap();
    assert_eq!(report.bad_rows, vec![BadRow { line: 5, reason: "UnitPrice `abc` is not a number".into() }]);
}

/// A reader over `text` that, after its last byte and before its end, waits at `barrier`: two
/// loads reading such files are both mid-COPY at the same time, however the scheduler runs.
fn gated_reader(text: String, barrier: std::sync::Arc<tokio::sync::Barrier>) -> impl tokio::io::AsyncRead + Send {
    use futures::StreamExt;
    let data = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(text))]);
    let gate = futures::stream::once(async move {
        barrier.wait().await;
        Ok(bytes::Bytes::new())
    });
    tokio_util::io::StreamReader::new(data.chain(gate))
}

fn invoices_of(export: &[u8]) -> Vec<String> {
    let mut csv = csv::ReaderBuilder::new().from_reader(export);
    let mut invoices: Vec<String> = csv.records().map(|r| r.unwrap()[0].to_string()).collect();
    invoices.sort();
    invoices
}

/// Two runs (two dates) load and export different files at once on one fresh database. A
/// barrier holds each file's end until both loads are inside their COPY, so the two
/// transactions overlap for certain (with one shared table truncated and reloaded by each, the
/// second load would wait for the first to commit and never reach the barrier). Each export
/// holds exactly its own file's rows, and the shared table ends as one of the two files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_loads_and_exports_at_once_each_export_their_own_rows() {
    let db = TestDb::create("up_concurrent").await;
    let lake = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalStore::new(lake.path()));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let file = |first: u32, count: u32| {
        let mut text = HEADER.to_string();
        for i in first..first + count {
            text.push_str(&format!("{i},S{i},item {i},2,1/2/2011 3:04,1.5,{},France\r\n", 10000 + i % 7));
        }
        text
    };
    let runs = [("2021-10-30", file(100, 40)), ("2021-10-31", file(500, 25))];
    let mut tasks = Vec::new();
    for (day, text) in runs.clone() {
        let (url, store, barrier) = (db.url.clone(), std::sync::Arc::clone(&store), std::sync::Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            let mut client = emr_driver::db::connect(&url).await.unwrap();
            let uri = ObjectUri::parse(&format!("s3://staging/user_purchase/dt={day}/user_purchase.csv.gz")).unwrap();
            let reader = gated_reader(text, barrier);
            let name = format!("{day}.csv");
            let (loaded, exported) = emr_driver::db::user_purchase::load_and_export(
                &mut client,
                reader,
                &name,
                LoadOptions::default(),
                store.as_ref(),
                &ExportTarget::File(uri.clone()),
            )
            .await
            .unwrap();
            (loaded.rows_loaded, exported.rows, uri)
        }));
    }
    let bound = std::time::Duration::from_secs(120);
    let mut exports = Vec::new();
    for task in tasks {
        let outcome = tokio::time::timeout(bound, task).await.expect("both loads finish (none waits on the other)");
        exports.push(outcome.unwrap());
    }
    let mut expected_per_run = Vec::new();
    for ((_, text), (loaded, exported, uri)) in runs.iter().zip(&exports) {
        let expected: Vec<String> = {
            let mut v: Vec<String> = text
                .lines()
                .skip(1)
                .filter(|l| !l.is_empty())
                .map(|l| l.split(',').next().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!((*loaded, *exported), (expected.len() as u64, expected.len() as u64));
        assert_eq!(invoices_of(&gunzip(&store.get_bytes(uri).await.unwrap())), expected, "{uri}");
        expected_per_run.push(expected);
    }
    let client = db.client().await;
    let mut in_table: Vec<String> = table_rows(&client).await.into_iter().map(|r| r[0].clone().unwrap()).collect();
    in_table.sort();
    assert!(expected_per_run.contains(&in_table), "the shared table is one whole file: {in_table:?}");
}
