//! `emr-driver generate`: writes the three vendor input files (see `crate::generate`).

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::cli::{Global, Output};
use crate::error::{Error, ExitCode, Result};
use crate::generate::{self, Generated, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write movie_review.csv, log_reviews.csv, user_purchase.csv and
    /// _generated.json into (created if missing; existing files are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of reviews (and of logs: review ids 1..N).
    #[arg(long, default_value_t = 1000)]
    pub reviews: u64,
    /// Number of purchase rows [default: 5 per review].
    #[arg(long)]
    pub purchases: Option<u64>,
    /// Seed: the same seed writes byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Average review text length in bytes (the real vendor files average 908).
    #[arg(long, default_value_t = generate::DEFAULT_REVIEW_LENGTH)]
    pub review_length: usize,
    /// Share of review and log records deliberately broken (bad ids, bad XML, bad dates,
    /// duplicates); `_generated.json` counts them.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Write .csv.gz files instead of .csv.
    #[arg(long)]
    pub gzip: bool,
    /// First logDate (YYYY-MM-DD).
    #[arg(long, default_value = "2021-01-01")]
    pub start_date: NaiveDate,
    /// Last logDate (YYYY-MM-DD).
    #[arg(long, default_value = "2021-12-31")]
    pub end_date: NaiveDate,
}

impl Args {
    fn options(&self) -> Options {
        Options {
            out: self.out.clone(),
            reviews: self.reviews,
            purchases: self.purchases,
            seed: self.seed,
            review_length: self.review_length,
            malformed_rate: self.malformed_rate,
            gzip: self.gzip,
            start_date: self.start_date,
            end_date: self.end_date,
        }
    }
}

pub async fn run(args: Args, global: &Global) -> Result<ExitCode> {
    let options = args.options();
    let generated = tokio::task::spawn_blocking(move || generate::generate(&options))
        .await
        .map_err(|e| Error::new(ExitCode::Internal, format!("the generator stopped unexpectedly: {e}")))??;
    report(&generated);
    if global.output == Output::Json {
        let json = serde_json::to_string(&generated.summary).expect("the summary always serializes");
        println!("{json}");
    }
    Ok(ExitCode::Success)
}

/// What was written, for people, on stderr.
fn report(generated: &Generated) {
    let files = &generated.summary.files;
    let counts = [
        (files.user_purchase.rows, files.user_purchase.bytes),
        (files.movie_review.rows, files.movie_review.bytes),
        (files.log_reviews.rows, files.log_reviews.bytes),
    ];
    for ((path, seconds), (rows, bytes)) in generated.seconds.iter().zip(counts) {
        eprintln!("wrote {}: {rows} rows, {bytes} bytes, {seconds:.2} s", path.display());
    }
    let broken = files.movie_review.expected.rows_rejected + files.log_reviews.expected.rows_rejected;
    eprintln!(
        "wrote {}: {} reviews ({} with `good`), {broken} rows a correct run rejects",
        generated.summary_path.display(),
        files.movie_review.expected.rows_out,
        files.movie_review.expected_positive_reviews
    );
}
