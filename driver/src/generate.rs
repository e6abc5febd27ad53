//! The sample-data generator (`emr-driver generate`): the three vendor input files in their
//! real formats (DESIGN.md 2.1), joinable with each other, byte-identical for a seed on every
//! platform, with an optional share of deliberately broken records and a `_generated.json`
//! summary saying how many of each a correct job must reject.
//!
//! Speed: rows are rendered into reused buffers and streamed through 1 MiB buffered writers;
//! the purchases go first (the reviews need the customer ids that really purchased), then the
//! reviews and the logs are written in parallel from independent random streams.

mod faults;
mod logs;
mod purchases;
mod reviews;
pub mod rng;
mod sink;
mod text;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{Days, NaiveDate};
use serde::Serialize;

pub use faults::{Expected, FaultTally};
pub use purchases::PurchaseStats;
pub use text::POSITIVE_SHARE;

use crate::error::{ExitCode, ExitStatus};
use faults::{FaultPlan, LOG_FAULTS, REVIEW_FAULTS};
use rng::Rng;
use sink::Sink;

/// The real vendor reviews average 908 bytes of text.
pub const DEFAULT_REVIEW_LENGTH: usize = 908;
pub const DEFAULT_PURCHASES_PER_REVIEW: u64 = 5;
pub const SUMMARY_FILE: &str = "_generated.json";
/// Customer ids that never purchased: below the UCI range (which starts at 12346).
const NON_PURCHASERS: std::ops::Range<u32> = 10_000..10_200;
const MAX_DATE_RANGE_DAYS: u64 = 36_600;

/// Random streams: one per file and purpose, so each is independent of the others.
const STREAM_PURCHASES: u64 = 1;
const STREAM_REVIEWS: u64 = 2;
const STREAM_REVIEW_FAULTS: u64 = 3;
const STREAM_LOGS: u64 = 4;
const STREAM_LOG_FAULTS: u64 = 5;

#[derive(Debug, Clone)]
pub struct Options {
    pub out: PathBuf,
    pub reviews: u64,
    /// Purchase rows; `None` is `DEFAULT_PURCHASES_PER_REVIEW` per review.
    pub purchases: Option<u64>,
    pub seed: u64,
    /// Average review text length in bytes.
    pub review_length: usize,
    /// Share of review and log records deliberately broken.
    pub malformed_rate: f64,
    pub gzip: bool,
    /// `logDate` range, inclusive.
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

impl Options {
    /// The defaults of the command line: 1000 reviews, seed 42, clean records, all of 2021.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        Options {
            out: out.into(),
            reviews: 1000,
            purchases: None,
            seed: 42,
            review_length: DEFAULT_REVIEW_LENGTH,
            malformed_rate: 0.0,
            gzip: false,
            start_date: NaiveDate::from_ymd_opt(2021, 1, 1).expect("a valid date"),
            end_date: NaiveDate::from_ymd_opt(2021, 12, 31).expect("a valid date"),
        }
    }

    pub fn purchase_rows(&self) -> u64 {
        self.purchases.unwrap_or(self.reviews.saturating_mul(DEFAULT_PURCHASES_PER_REVIEW))
    }

    fn validate(&self) -> Result<(), GenerateError> {
        let invalid = |option, value: String, fix| Err(GenerateError::InvalidOption { option, value, fix });
        if self.reviews == 0 {
            return invalid("reviews", "0".into(), "give at least 1 review");
        }
        if !(100..=100_000).contains(&self.review_length) {
            return invalid(
                "review-length",
                self.review_length.to_string(),
                "give an average between 100 and 100000 bytes",
            );
        }
        if !(0.0..=1.0).contains(&self.malformed_rate) {
            return invalid(
                "malformed-rate",
                self.malformed_rate.to_string(),
                "give a share between 0 and 1, e.g. 0.01",
            );
        }
        if self.start_date > self.end_date {
            return invalid("start-date", self.start_date.to_string(), "give a --start-date on or before --end-date");
        }
        if self.date_range_days() > MAX_DATE_RANGE_DAYS {
            return invalid("end-date", self.end_date.to_string(), "keep the logDate range within 100 years");
        }
        Ok(())
    }

    fn date_range_days(&self) -> u64 {
        (self.end_date - self.start_date).num_days().unsigned_abs() + 1
    }

    fn file_name(&self, stem: &str) -> String {
        if self.gzip {
            format!("{stem}.csv.gz")
        } else {
            format!("{stem}.csv")
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("--{option} {value:?} is not usable: {fix}")]
    InvalidOption { option: &'static str, value: String, fix: &'static str },
    #[error("could not write {path}: {source}; check that --out names a writable directory on a disk with free space")]
    Write { path: PathBuf, source: io::Error },
}

impl ExitStatus for GenerateError {
    fn exit_code(&self) -> ExitCode {
        ExitCode::BadInput
    }
}

/// `_generated.json`: what was written and what a correct pipeline makes of it. Holds no
/// times, so it is as reproducible as the files.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub generator: &'static str,
    pub seed: u64,
    pub reviews: u64,
    pub purchases: u64,
    pub review_length: usize,
    pub malformed_rate: f64,
    pub gzip: bool,
    pub start_date: String,
    pub end_date: String,
    pub files: Files,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Files {
    pub movie_review: ReviewFile,
    pub log_reviews: LogFile,
    pub user_purchase: PurchaseFile,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReviewFile {
    pub file: String,
    /// Data rows (CSV records, not lines: a text may hold a newline).
    pub rows: u64,
    pub bytes: u64,
    pub injected: std::collections::BTreeMap<&'static str, u64>,
    pub expected: Expected,
    /// Reviews containing the word `good` among the `expected.rows_out` rows.
    pub expected_positive_reviews: u64,
    /// Inclusive range of the customer ids that never purchased.
    pub non_purchaser_customer_ids: [u32; 2],
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogFile {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub injected: std::collections::BTreeMap<&'static str, u64>,
    pub expected: Expected,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PurchaseFile {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    #[serde(flatten)]
    pub stats: PurchaseStats,
}

/// A file written and the seconds it took.
pub type Timing = (PathBuf, f64);

/// The summary plus how long each file took (kept out of the summary: it varies).
#[derive(Debug, Clone)]
pub struct Generated {
    pub summary: Summary,
    pub summary_path: PathBuf,
    /// (file path, seconds), in the order written.
    pub seconds: Vec<Timing>,
}

/// Writes the three files and `_generated.json` into `options.out` (created if missing).
pub fn generate(options: &Options) -> Result<Generated, GenerateError> {
    options.validate()?;
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(|source| GenerateError::Write { path: out.clone(), source })?;
    let dates = log_dates(options);
    let non_purchasers: Vec<u32> = NON_PURCHASERS.collect();
    let mut seconds = Vec::new();

    let (purchase_file, purchasers, took) = write_purchases(options)?;
    seconds.push(took);
    let customers = reviews::Customers { purchasers: &purchasers, non_purchasers: &non_purchasers };
    let (review_result, log_result) = std::thread::scope(|scope| {
        let logs = scope.spawn(|| write_logs(options, &dates));
        let reviews = write_reviews(options, customers);
        (reviews, logs.join().expect("the log writer does not panic"))
    });
    let (review_file, took) = review_result?;
    seconds.push(took);
    let (log_file, took) = log_result?;
    seconds.push(took);

    let summary = Summary {
        generator: "emr-driver generate",
        seed: options.seed,
        reviews: options.reviews,
        purchases: options.purchase_rows(),
        review_length: options.review_length,
        malformed_rate: options.malformed_rate,
        gzip: options.gzip,
        start_date: options.start_date.to_string(),
        end_date: options.end_date.to_string(),
        files: Files { movie_review: review_file, log_reviews: log_file, user_purchase: purchase_file },
    };
    let summary_path = out.join(SUMMARY_FILE);
    write_summary(&summary, &summary_path)?;
    Ok(Generated { summary, summary_path, seconds })
}

fn write_purchases(options: &Options) -> Result<(PurchaseFile, Vec<u32>, Timing), GenerateError> {
    let started = Instant::now();
    let file = options.file_name("user_purchase");
    let path = options.out.join(&file);
    let rows = options.purchase_rows();
    let mut writer = purchases::PurchaseWriter::new(Rng::stream(options.seed, STREAM_PURCHASES), rows);
    let (purchasers, (rows, bytes)) = write_file(&path, options.gzip, |sink| writer.write(rows, sink))?;
    let summary = PurchaseFile { file, rows, bytes, stats: writer.stats.clone() };
    Ok((summary, purchasers, (path, started.elapsed().as_secs_f64())))
}

fn write_reviews(options: &Options, customers: reviews::Customers) -> Result<(ReviewFile, Timing), GenerateError> {
    let started = Instant::now();
    let file = options.file_name("movie_review");
    let path = options.out.join(&file);
    let faults = FaultPlan::new(Rng::stream(options.seed, STREAM_REVIEW_FAULTS), options.malformed_rate, REVIEW_FAULTS);
    let mut writer = reviews::ReviewWriter::new(
        customers,
        text::ReviewText::new(options.review_length),
        Rng::stream(options.seed, STREAM_REVIEWS),
        faults,
        FaultTally::new(REVIEW_FAULTS),
    );
    let ((), (rows, bytes)) = write_file(&path, options.gzip, |sink| writer.write(options.reviews, sink))?;
    let summary = ReviewFile {
        file,
        rows,
        bytes,
        injected: writer.tally.injected.clone(),
        expected: writer.tally.expected(rows),
        expected_positive_reviews: writer.expected_positive,
        non_purchaser_customer_ids: [NON_PURCHASERS.start, NON_PURCHASERS.end - 1],
    };
    Ok((summary, (path, started.elapsed().as_secs_f64())))
}

fn write_logs(options: &Options, dates: &[String]) -> Result<(LogFile, Timing), GenerateError> {
    let started = Instant::now();
    let file = options.file_name("log_reviews");
    let path = options.out.join(&file);
    let faults = FaultPlan::new(Rng::stream(options.seed, STREAM_LOG_FAULTS), options.malformed_rate, LOG_FAULTS);
    let mut writer =
        logs::LogWriter::new(dates, Rng::stream(options.seed, STREAM_LOGS), faults, FaultTally::new(LOG_FAULTS));
    let ((), (rows, bytes)) = write_file(&path, options.gzip, |sink| writer.write(options.reviews, sink))?;
    let summary =
        LogFile { file, rows, bytes, injected: writer.tally.injected.clone(), expected: writer.tally.expected(rows) };
    Ok((summary, (path, started.elapsed().as_secs_f64())))
}

/// Creates `path`, lets `body` fill it, closes it; returns the body's value and (rows, bytes).
fn write_file<T>(
    path: &Path,
    gzip: bool,
    body: impl FnOnce(&mut Sink) -> io::Result<T>,
) -> Result<(T, (u64, u64)), GenerateError> {
    let wrap = |source| GenerateError::Write { path: path.to_path_buf(), source };
    let mut sink = Sink::create(path, gzip).map_err(wrap)?;
    let value = body(&mut sink).map_err(wrap)?;
    let counts = sink.finish().map_err(wrap)?;
    Ok((value, counts))
}

fn write_summary(summary: &Summary, path: &Path) -> Result<(), GenerateError> {
    let mut json = serde_json::to_string_pretty(summary).expect("the summary always serializes");
    json.push('\n');
    std::fs::write(path, json).map_err(|source| GenerateError::Write { path: path.to_path_buf(), source })
}

/// `MM-dd-yyyy` for every day of the range, formatted once instead of once per row.
fn log_dates(options: &Options) -> Vec<String> {
    (0..options.date_range_days())
        .map(|offset| (options.start_date + Days::new(offset)).format("%m-%d-%Y").to_string())
        .collect()
}
