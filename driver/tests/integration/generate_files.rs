//! `emr-driver generate`: the files parse as the vendor formats, join with each other, are
//! byte-identical for a seed, and hold exactly the broken records the summary announces
//! (counted here independently of the generator).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use emr_driver::generate::{generate, Options, Summary, POSITIVE_SHARE};
use regex::Regex;

fn options(dir: &Path, reviews: u64, rate: f64) -> Options {
    let mut options = Options::new(dir);
    options.reviews = reviews;
    options.malformed_rate = rate;
    options
}

fn read(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "gz") {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut plain).unwrap();
        plain
    } else {
        bytes
    }
}

fn records(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn summary_of(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("_generated.json")).unwrap()).unwrap()
}

/// DESIGN.md 2.3: words are maximal runs of Unicode letters and digits, case-insensitive.
fn has_word_good(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|w| w.to_lowercase() == "good")
}

fn is_integer(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reject counts by reason for records keyed by `id`, as DESIGN.md 2.3 defines them: bad
/// records first, then identical copies (all but one) and conflicting ids (every copy).
#[derive(Default)]
struct Verdict {
    rejected: BTreeMap<String, u64>,
    /// Kept records by id.
    kept: BTreeMap<u64, Vec<String>>,
}

fn judge(rows: Vec<(Result<u64, &'static str>, Vec<String>)>) -> Verdict {
    let mut verdict = Verdict::default();
    let mut by_id: BTreeMap<u64, Vec<Vec<String>>> = BTreeMap::new();
    for (id, row) in rows {
        match id {
            Ok(id) => by_id.entry(id).or_default().push(row),
            Err(reason) => *verdict.rejected.entry(reason.to_string()).or_default() += 1,
        }
    }
    for (id, copies) in by_id {
        let distinct: HashSet<&Vec<String>> = copies.iter().collect();
        if distinct.len() > 1 {
            *verdict.rejected.entry("duplicate_key".into()).or_default() += copies.len() as u64;
        } else {
            if copies.len() > 1 {
                *verdict.rejected.entry("duplicate_identical".into()).or_default() += copies.len() as u64 - 1;
            }
            verdict.kept.insert(id, copies[0].clone());
        }
    }
    verdict
}

fn judge_reviews(rows: &[Vec<String>]) -> Verdict {
    judge(
        rows.iter()
            .map(|r| {
                let id = if !is_integer(&r[2]) {
                    Err("bad_id")
                } else if !is_integer(&r[0]) {
                    Err("bad_customer_id")
                } else {
                    Ok(r[2].parse().unwrap())
                };
                (id, r.clone())
            })
            .collect(),
    )
}

fn judge_logs(rows: &[Vec<String>]) -> Verdict {
    // The vendor layout, element by element; anything else is not the well-formed document
    // the generator writes (an `&` in a value is not well-formed XML).
    let layout = Regex::new(
        r"^<reviewlog><log>(?:<logDate>([^<&]*)</logDate>)?<device>[^<&]+</device><location>[^<&]+</location><os>[^<&]+</os><ipAddress>[0-9.]+</ipAddress><phoneNumber>[0-9-]+</phoneNumber></log></reviewlog>$",
    )
    .unwrap();
    judge(
        rows.iter()
            .map(|r| {
                let id = if !is_integer(&r[0]) {
                    Err("bad_id")
                } else {
                    match layout.captures(&r[1]) {
                        None => Err("bad_xml"),
                        Some(c) => match c.get(1).map(|m| m.as_str()) {
                            Some(d) if d.len() == 10 && NaiveDate::parse_from_str(d, "%m-%d-%Y").is_ok() => {
                                Ok(r[0].parse().unwrap())
                            }
                            _ => Err("bad_date"),
                        },
                    }
                };
                (id, r.clone())
            })
            .collect(),
    )
}

fn expected_rejects(summary: &serde_json::Value, file: &str) -> BTreeMap<String, u64> {
    let reasons = summary["files"][file]["expected"]["rejected_by_reason"].as_object().unwrap();
    reasons.iter().filter(|(_, n)| n.as_u64() != Some(0)).map(|(k, n)| (k.clone(), n.as_u64().unwrap())).collect()
}

#[test]
fn files_have_the_vendor_headers_and_line_ends() {
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 500, 0.0)).unwrap();
    let reviews = read(&dir.path().join("movie_review.csv"));
    let logs = read(&dir.path().join("log_reviews.csv"));
    let purchases = read(&dir.path().join("user_purchase.csv"));

    assert_eq!(records(&reviews).0, ["cid", "review_str", "id_review"]);
    assert_eq!(records(&logs).0, ["id_review", "log"]);
    assert_eq!(
        records(&purchases).0,
        ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    );
    // CRLF for the purchases only, and on every line of it.
    assert!(!reviews.contains(&b'\r') && !logs.contains(&b'\r'));
    let lf = purchases.iter().filter(|b| **b == b'\n').count();
    let crlf = purchases.windows(2).filter(|w| w == b"\r\n").count();
    assert_eq!(lf, crlf);
    assert!(purchases.ends_with(b"\r\n"));
    assert_eq!(records(&purchases).1.len(), 2500, "5 purchase rows per review by default");
}

#[test]
fn purchases_follow_the_uci_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 2000, 0.0);
    opts.purchases = Some(10_000);
    generate(&opts).unwrap();
    let raw = read(&dir.path().join("user_purchase.csv"));
    let (_, rows) = records(&raw);
    let date = Regex::new(r"^(1[0-2]|[1-9])/([1-9]|[12][0-9]|3[01])/20\d\d ([0-9]|1[0-9]|2[0-3]):[0-5][0-9]$").unwrap();
    let price = Regex::new(r"^(0|[1-9][0-9]*)(\.[0-9]?[1-9])?$").unwrap();
    let mut without_customer = 0;
    for row in &rows {
        assert!(date.is_match(&row[4]), "date {:?}", row[4]);
        assert!(price.is_match(&row[5]), "price {:?}", row[5]);
        let quantity: i64 = row[3].parse().unwrap();
        assert_eq!(row[0].starts_with('C'), quantity < 0, "{row:?}");
        if row[6].is_empty() {
            without_customer += 1;
        } else {
            row[6].parse::<u32>().unwrap();
        }
    }
    let share = without_customer as f64 / rows.len() as f64;
    assert!((0.2..0.3).contains(&share), "rows without CustomerID: {share}");
    assert!(rows.iter().any(|r| r[2].contains('\u{fffd}')), "a few U+FFFD");
    assert!(rows.iter().any(|r| r[2].contains(',')) && rows.iter().any(|r| r[2].contains('"')));
    // Quoted only when needed, as the UCI file: each line is its fields, quoted only when
    // they hold a comma or a quote, quotes doubled.
    let text = String::from_utf8(raw).unwrap();
    for (line, row) in text.split("\r\n").skip(1).zip(&rows) {
        let minimal: Vec<String> = row
            .iter()
            .map(|f| if f.contains([',', '"']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f.clone() })
            .collect();
        assert_eq!(line, minimal.join(","));
    }
    assert!(text.contains("\"\""), "a doubled quote somewhere");
}

#[test]
fn reviews_and_logs_join_and_customers_come_from_purchases() {
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 2000, 0.0)).unwrap();
    let (_, reviews) = records(&read(&dir.path().join("movie_review.csv")));
    let (_, logs) = records(&read(&dir.path().join("log_reviews.csv")));
    let (_, purchases) = records(&read(&dir.path().join("user_purchase.csv")));

    let review_ids: Vec<u64> = reviews.iter().map(|r| r[2].parse().unwrap()).collect();
    let log_ids: Vec<u64> = logs.iter().map(|r| r[0].parse().unwrap()).collect();
    let one_to_n: Vec<u64> = (1..=2000).collect();
    assert_eq!(review_ids, one_to_n);
    assert_eq!(log_ids, one_to_n);

    let purchasers: HashSet<u32> =
        purchases.iter().filter(|r| !r[6].is_empty()).map(|r| r[6].parse().unwrap()).collect();
    let summary = summary_of(dir.path());
    let range = &summary["files"]["movie_review"]["non_purchaser_customer_ids"];
    let (low, high) = (range[0].as_u64().unwrap() as u32, range[1].as_u64().unwrap() as u32);
    let cids: Vec<u32> = reviews.iter().map(|r| r[0].parse().unwrap()).collect();
    let non_purchasing = cids.iter().filter(|c| !purchasers.contains(c)).count();
    assert!(cids.iter().all(|c| purchasers.contains(c) || (low..=high).contains(c)));
    assert!(purchasers.iter().all(|c| !(low..=high).contains(c)));
    assert!(non_purchasing > 0 && non_purchasing < 200, "a few reviewers never purchased: {non_purchasing}");
    assert_eq!(summary["files"]["user_purchase"]["customers"].as_u64().unwrap() as usize, purchasers.len());
}

#[test]
fn review_texts_carry_the_vendor_quirks_and_the_real_positive_share() {
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 3000, 0.0)).unwrap();
    let (_, reviews) = records(&read(&dir.path().join("movie_review.csv")));
    let texts: Vec<&str> = reviews.iter().map(|r| r[1].as_str()).collect();
    let positive = texts.iter().filter(|t| has_word_good(t)).count();
    let share = positive as f64 / texts.len() as f64;
    assert!((share - POSITIVE_SHARE).abs() < 0.03, "positive share {share}");
    let summary = summary_of(dir.path());
    assert_eq!(summary["files"]["movie_review"]["expected_positive_reviews"], positive as u64);

    let mean = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / texts.len() as f64;
    assert!((mean - 908.0).abs() < 50.0, "average review length {mean}");
    for quirk in ["<br />", ",", "\"", "\n", "goodbye", "g00d", "good-looking", "GOOD"] {
        assert!(texts.iter().any(|t| t.contains(quirk)), "no review contains {quirk:?}");
    }
    assert!(texts.iter().any(|t| !t.is_ascii()), "some Unicode");
}

#[test]
fn logs_use_the_vendor_values_and_date_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 3000, 0.0);
    opts.start_date = NaiveDate::from_ymd_opt(2021, 3, 1).unwrap();
    opts.end_date = NaiveDate::from_ymd_opt(2021, 3, 31).unwrap();
    generate(&opts).unwrap();
    let (_, logs) = records(&read(&dir.path().join("log_reviews.csv")));
    let verdict = judge_logs(&logs);
    assert!(verdict.rejected.is_empty(), "{:?}", verdict.rejected);
    let value = |xml: &str, tag: &str| {
        let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
        xml[start..xml.find(&format!("</{tag}>")).unwrap()].to_string()
    };
    let mut seen: HashMap<&str, HashSet<String>> = HashMap::new();
    for row in &logs {
        for tag in ["logDate", "device", "os", "location"] {
            seen.entry(tag).or_default().insert(value(&row[1], tag));
        }
    }
    let set = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<HashSet<_>>();
    assert_eq!(seen["device"], set(&["Mobile", "Tablet", "Computer"]));
    assert_eq!(seen["os"], set(&["Apple MacOS", "Apple iOS", "Linux", "Microsoft Windows", "Google Android"]));
    assert!(seen["logDate"].iter().all(|d| d.starts_with("03-") && d.ends_with("-2021")));
    assert_eq!(seen["logDate"].len(), 31);
    for vendor in ["Pensylvania", "Lousiana", "Massachussets", "California", "New York", "Texas"] {
        assert!(seen["location"].contains(vendor), "{vendor}");
    }
    assert!(seen["location"].len() >= 50 && seen["location"].len() <= 53);
}

#[test]
fn the_summary_announces_exactly_the_broken_records_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 4000, 0.05)).unwrap();
    let summary = summary_of(dir.path());
    let (_, reviews) = records(&read(&dir.path().join("movie_review.csv")));
    let (_, logs) = records(&read(&dir.path().join("log_reviews.csv")));

    let review_verdict = judge_reviews(&reviews);
    assert_eq!(review_verdict.rejected, expected_rejects(&summary, "movie_review"));
    for reason in ["bad_id", "bad_customer_id", "duplicate_identical", "duplicate_key"] {
        assert!(review_verdict.rejected.get(reason).copied().unwrap_or(0) > 0, "no {reason} review");
    }
    let kept_positive = review_verdict.kept.values().filter(|r| has_word_good(&r[1])).count() as u64;
    assert_eq!(summary["files"]["movie_review"]["expected_positive_reviews"], kept_positive);
    assert_eq!(summary["files"]["movie_review"]["expected"]["rows_out"], review_verdict.kept.len() as u64);
    assert_eq!(summary["files"]["movie_review"]["rows"], reviews.len() as u64);

    let log_verdict = judge_logs(&logs);
    assert_eq!(log_verdict.rejected, expected_rejects(&summary, "log_reviews"));
    for reason in ["bad_id", "bad_xml", "bad_date", "duplicate_identical", "duplicate_key"] {
        assert!(log_verdict.rejected.get(reason).copied().unwrap_or(0) > 0, "no {reason} log");
    }
    assert_eq!(summary["files"]["log_reviews"]["expected"]["rows_out"], log_verdict.kept.len() as u64);
    assert_eq!(summary["files"]["log_reviews"]["rows"], logs.len() as u64);
}

fn file_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p: PathBuf| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn the_same_seed_writes_byte_identical_files() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&options(a.path(), 800, 0.02)).unwrap();
    generate(&options(b.path(), 800, 0.02)).unwrap();
    let mut other_seed = options(c.path(), 800, 0.02);
    other_seed.seed = 43;
    generate(&other_seed).unwrap();
    let (first, second, third) = (file_bytes(a.path()), file_bytes(b.path()), file_bytes(c.path()));
    assert_eq!(first.len(), 4);
    assert!(first == second, "same seed, different bytes");
    for name in ["movie_review.csv", "log_reviews.csv", "user_purchase.csv"] {
        assert_ne!(first[name], third[name], "{name} ignores the seed");
    }
}

#[test]
fn gzip_holds_the_same_rows_and_is_reproducible_too() {
    let (plain, gz, gz_again) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&options(plain.path(), 300, 0.02)).unwrap();
    for dir in [&gz, &gz_again] {
        let mut opts = options(dir.path(), 300, 0.02);
        opts.gzip = true;
        generate(&opts).unwrap();
    }
    assert!(file_bytes(gz.path()) == file_bytes(gz_again.path()));
    for stem in ["movie_review", "log_reviews", "user_purchase"] {
        let zipped = gz.path().join(format!("{stem}.csv.gz"));
        assert_eq!(read(&zipped), read(&plain.path().join(format!("{stem}.csv"))), "{stem}");
    }
    let summary: Summary = {
        // The summary names the files actually written.
        let value = summary_of(gz.path());
        assert_eq!(value["files"]["movie_review"]["file"], "movie_review.csv.gz");
        assert_eq!(value["gzip"], true);
        let mut opts = options(tempfile::tempdir().unwrap().path(), 1, 0.0);
        opts.gzip = true;
        generate(&opts).unwrap().summary
    };
    assert_eq!(summary.files.log_reviews.rows, 1);
}

#[test]
fn bad_options_are_refused_with_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), 10, 1.5);
    let error = generate(&opts).unwrap_err().to_string();
    assert!(error.contains("--malformed-rate") && error.contains("between 0 and 1"), "{error}");
    opts.malformed_rate = 0.0;
    opts.start_date = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap();
    let error = generate(&opts).unwrap_err().to_string();
    assert!(error.contains("--start-date"), "{error}");
    opts.start_date = opts.end_date;
    opts.reviews = 0;
    assert!(generate(&opts).unwrap_err().to_string().contains("--reviews"));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");
}

/// The real vendor files, for layout comparison (CI lays `shared/` beside the clone).
fn shared_data() -> PathBuf {
    match std::env::var_os("SHARED_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
    }
}

/// The first `n` lines of a real gzip file (lines end with `\n`, CR kept).
fn real_head(name: &str, n: usize) -> Vec<String> {
    let path = shared_data().join(name);
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; set SHARED_DATA_DIR to the folder of the real data", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).take(200_000).read_to_string(&mut text).ok();
    text.split_inclusive('\n').take(n).map(str::to_string).collect()
}

/// A plain line's shape: each field reduced to its kind (integer, decimal, UCI date, text,
/// empty; an XML document to its tag skeleton), plus the line end, so layouts compare.
fn shape(line: &str) -> String {
    let (body, end) = match line.strip_suffix("\r\n") {
        Some(body) => (body, "CRLF"),
        None => (line.strip_suffix('\n').unwrap_or(line), "LF"),
    };
    let integer = Regex::new(r"^-?[0-9]+$").unwrap();
    let decimal = Regex::new(r"^[0-9]+\.[0-9]+$").unwrap();
    let date = Regex::new(r"^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4} [0-9]{1,2}:[0-9]{2}$").unwrap();
    let values = Regex::new(r">[^<]*<").unwrap();
    let kinds: Vec<String> = body
        .split(',')
        .map(|field| match field {
            "" => "empty".to_string(),
            f if f.starts_with('<') => values.replace_all(f, "><").into_owned(),
            f if integer.is_match(f) => "number".to_string(),
            f if decimal.is_match(f) => "number".to_string(),
            f if date.is_match(f) => "date".to_string(),
            _ => "text".to_string(),
        })
        .collect();
    format!("{} {end}", kinds.join(","))
}

/// Compares with the real files when they are there; a fresh clone has none (the other tests
/// here check the layout rules themselves), so the comparison then says so and passes.
#[test]
fn layouts_match_the_real_vendor_files() {
    if !shared_data().join("log_reviews.csv.gz").exists() {
        eprintln!("the real vendor files are not at {}: layout comparison not run", shared_data().display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    generate(&options(dir.path(), 200, 0.0)).unwrap();
    for (generated, real) in [("log_reviews.csv", "log_reviews.csv.gz"), ("user_purchase.csv", "user_purchase.csv.gz")]
    {
        let ours = String::from_utf8(read(&dir.path().join(generated))).unwrap();
        let ours: Vec<&str> = ours.split_inclusive('\n').collect();
        let theirs = real_head(real, 2000);
        assert_eq!(ours[0], theirs[0], "{generated}: header and its line end");
        // Every plain (unquoted, ASCII) line of ours has the shape of some real line.
        let real_shapes: HashSet<String> = theirs[1..].iter().map(|l| shape(l)).collect();
        let plain = ours[1..].iter().filter(|l| !l.contains('"') && l.is_ascii()).take(50);
        for line in plain {
            assert!(real_shapes.contains(&shape(line)), "{generated}: {line:?} has no real counterpart");
        }
    }
    let ours = String::from_utf8(read(&dir.path().join("movie_review.csv"))).unwrap();
    assert_eq!(ours.lines().next(), real_head("movie_review.csv.gz", 1)[0].lines().next());
}

/// The committed sample is what the generator writes for the options its summary records
/// (`scripts/make-sample.sh` passes them): regenerating gives the same bytes.
#[test]
fn the_committed_sample_is_reproducible() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample");
    let recorded = summary_of(&sample);
    let date = |key: &str| NaiveDate::parse_from_str(recorded[key].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut opts =
        options(dir.path(), recorded["reviews"].as_u64().unwrap(), recorded["malformed_rate"].as_f64().unwrap());
    opts.purchases = recorded["purchases"].as_u64();
    opts.seed = recorded["seed"].as_u64().unwrap();
    opts.review_length = recorded["review_length"].as_u64().unwrap() as usize;
    opts.gzip = recorded["gzip"].as_bool().unwrap();
    opts.start_date = date("start_date");
    opts.end_date = date("end_date");
    generate(&opts).unwrap();
    for (name, bytes) in file_bytes(dir.path()) {
        let committed = std::fs::read(sample.join(&name)).unwrap_or_else(|e| panic!("sample/{name}: {e}"));
        assert!(committed == bytes, "sample/{name} differs from a fresh run: rerun scripts/make-sample.sh");
    }
    let total: u64 = file_bytes(&sample).values().map(|b| b.len() as u64).sum();
    assert!(total < 2 * 1024 * 1024, "the sample stays well under 2 MiB: {total} bytes");
}

/// Broken records come from their own random stream: the clean rows, and the purchases, are
/// the same whatever the malformed rate.
#[test]
fn the_malformed_rate_leaves_the_clean_rows_alone() {
    let (clean, broken) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&options(clean.path(), 1500, 0.0)).unwrap();
    generate(&options(broken.path(), 1500, 0.05)).unwrap();
    let purchases = |dir: &Path| read(&dir.join("user_purchase.csv"));
    assert!(purchases(clean.path()) == purchases(broken.path()));
    for (file, judge) in
        [("movie_review.csv", judge_reviews as fn(&[Vec<String>]) -> Verdict), ("log_reviews.csv", judge_logs)]
    {
        let reference = judge(&records(&read(&clean.path().join(file))).1).kept;
        let kept = judge(&records(&read(&broken.path().join(file))).1).kept;
        assert!(kept.len() > 1300 && kept.len() < 1500, "{file}: {}", kept.len());
        for (id, row) in kept {
            assert_eq!(reference[&id], row, "{file} id {id}");
        }
    }
}
