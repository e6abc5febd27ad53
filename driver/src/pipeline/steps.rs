//! The one table of the pipeline's Spark steps (issue #13): each step's key, its embedded
//! template, what it waits for, and what it reads and writes in [`LakeUris`] terms. Everything
//! else derives from [`STEPS`]: the templates the plan renders (`plan.rs`), the dependencies of
//! the rendered steps, the waves `run` executes ([`waves`]), the per-job metrics folders
//! (`LakeUris::metrics`), the output folders a completed step records (`publish::step_outputs`)
//! and which steps must run again when what they read was written again. `catalogue_check`
//! compares the table with `sql/catalogue.json`.
//!
//! The driver's own steps (deploy, the user_purchase staging, the warehouse load) are not Spark
//! steps; their keys are here too, because the manifest records them beside the Spark steps.

use crate::plan::LakeUris;

/// Work the driver does itself, recorded in the manifest beside the Spark steps.
pub const DEPLOY: &str = "deploy";
pub const USER_PURCHASE: &str = "user_purchase";
pub const LOAD_WAREHOUSE: &str = "load_warehouse";

/// A dataset of the lake layout (docs/architecture.md, "Lake layout") that a step reads or
/// writes, named by the [`LakeUris`] field that locates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// The vendor's movie_review parts (`uris.movie_review_input`).
    MovieReviewInput,
    /// The vendor's log_reviews parts (`uris.log_reviews_input`).
    LogReviewsInput,
    /// The driver's export of user_purchase (`uris.user_purchase_export`), written by the
    /// driver step [`USER_PURCHASE`].
    UserPurchaseExport,
    ClassifiedMovieReview,
    ReviewLogs,
    RejectsMovieReview,
    RejectsLogReviews,
    RejectsUserPurchase,
    /// Every complete snapshot of every dimension, of any date and run (`uris.dims_root`):
    /// the id registry build_dimensions extends. Written by earlier runs, not by a step of this
    /// one.
    DimensionRegistry,
    /// This run's dimensions: the snapshot of every dimension (`uris.dims_snapshots`, under
    /// `uris.dims_root`) and its warehouse load file (`uris.load_root/<dim>`).
    Dimensions,
    FactMovieAnalytics,
    /// The warehouse load file of the fact (`uris.load_root/fact_movie_analytics`).
    FactLoad,
}

impl Dataset {
    /// The [`LakeUris`] fields (and template variables `uris.<field>`) that locate it.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Dataset::MovieReviewInput => &["movie_review_input"],
            Dataset::LogReviewsInput => &["log_reviews_input"],
            Dataset::UserPurchaseExport => &["user_purchase_export"],
            Dataset::ClassifiedMovieReview => &["classified_movie_review"],
            Dataset::ReviewLogs => &["review_logs"],
            Dataset::RejectsMovieReview => &["rejects_movie_review"],
            Dataset::RejectsLogReviews => &["rejects_log_reviews"],
            Dataset::RejectsUserPurchase => &["rejects_user_purchase"],
            Dataset::DimensionRegistry => &["dims_root"],
            Dataset::Dimensions => &["dims_root", "load_root"],
            Dataset::FactLoad => &["load_root"],
            Dataset::FactMovieAnalytics => &["fact_movie_analytics"],
        }
    }

    /// Its folders of this run, as `(output name, folder URI)`: the names the manifest and the
    /// date's pointer record outputs under (`classified_movie_review`, `dims/dim_os`,
    /// `warehouse_load/dim_os`...). Empty for what no step of the run writes (the vendor inputs,
    /// the registry).
    pub fn folders(self, uris: &LakeUris) -> Vec<(String, String)> {
        let one = |name: &str, uri: &str| vec![(name.to_string(), uri.to_string())];
        match self {
            Dataset::MovieReviewInput | Dataset::LogReviewsInput | Dataset::DimensionRegistry => Vec::new(),
            Dataset::UserPurchaseExport => one("user_purchase", &uris.user_purchase_export),
            Dataset::ClassifiedMovieReview => one("classified_movie_review", &uris.classified_movie_review),
            Dataset::ReviewLogs => one("review_logs", &uris.review_logs),
            Dataset::RejectsMovieReview => one("rejects/movie_review", &uris.rejects_movie_review),
            Dataset::RejectsLogReviews => one("rejects/log_reviews", &uris.rejects_log_reviews),
            Dataset::RejectsUserPurchase => one("rejects/user_purchase", &uris.rejects_user_purchase),
            Dataset::Dimensions => uris
                .dims_snapshots
                .iter()
                .flat_map(|(dim, snapshot)| {
                    [
                        (format!("dims/{dim}"), snapshot.clone()),
                        (format!("warehouse_load/{dim}"), format!("{}/{dim}", uris.load_root)),
                    ]
                })
                .collect(),
            Dataset::FactMovieAnalytics => one("fact_movie_analytics", &uris.fact_movie_analytics),
            Dataset::FactLoad => {
                one("warehouse_load/fact_movie_analytics", &format!("{}/fact_movie_analytics", uris.load_root))
            }
        }
    }
}

/// One Spark step of the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    /// The step key: the job's name in `run_job.py`, the manifest key, the end of the step name.
    pub key: &'static str,
    /// `driver/templates/steps/<key>.json.hbs`, embedded so the binary works from any directory.
    pub template: &'static str,
    /// The steps it waits for (all earlier in [`STEPS`]).
    pub after: &'static [&'static str],
    /// What it reads (every `uris.*` its template passes as an input).
    pub reads: &'static [Dataset],
    /// What it writes beside its metrics folder (`uris.metrics.<key>`), in the order the
    /// manifest lists them.
    pub writes: &'static [Dataset],
}

impl StepSpec {
    /// True for the step that hands out new dimension ids (build_dimensions): it extends the
    /// registry shared by every date, so it holds the registry's lock while it runs and, in a
    /// backfill, takes its turn in date order.
    pub fn extends_dimension_registry(&self) -> bool {
        self.reads.contains(&Dataset::DimensionRegistry) && self.writes.contains(&Dataset::Dimensions)
    }

    /// The template's name in messages: `steps/<key>.json.hbs`.
    pub fn template_name(&self) -> String {
        format!("steps/{}.json.hbs", self.key)
    }
}

/// The pipeline's Spark steps, in DAG order (a step after every step it waits for).
pub const STEPS: &[StepSpec] = &[
    StepSpec {
        key: "classify_reviews",
        template: include_str!("../../templates/steps/classify_reviews.json.hbs"),
        after: &[],
        reads: &[Dataset::MovieReviewInput],
        writes: &[Dataset::ClassifiedMovieReview, Dataset::RejectsMovieReview],
    },
    StepSpec {
        key: "parse_logs",
        template: include_str!("../../templates/steps/parse_logs.json.hbs"),
        after: &[],
        reads: &[Dataset::LogReviewsInput],
        writes: &[Dataset::ReviewLogs, Dataset::RejectsLogReviews],
    },
    StepSpec {
        key: "build_dimensions",
        template: include_str!("../../templates/steps/build_dimensions.json.hbs"),
        after: &["parse_logs"],
        reads: &[Dataset::ReviewLogs, Dataset::DimensionRegistry],
        writes: &[Dataset::Dimensions],
    },
    StepSpec {
        key: "build_fact",
        template: include_str!("../../templates/steps/build_fact.json.hbs"),
        after: &["classify_reviews", "parse_logs", "build_dimensions"],
        reads: &[Dataset::ClassifiedMovieReview, Dataset::ReviewLogs, Dataset::UserPurchaseExport, Dataset::Dimensions],
        writes: &[Dataset::FactMovieAnalytics, Dataset::FactLoad, Dataset::RejectsUserPurchase],
    },
];

/// What the driver's own steps write (their outputs are recorded as a Spark step's are).
pub const DRIVER_WRITES: &[(&str, &[Dataset])] = &[(USER_PURCHASE, &[Dataset::UserPurchaseExport])];

/// The Spark step `key`.
pub fn step(key: &str) -> Option<&'static StepSpec> {
    STEPS.iter().find(|s| s.key == key)
}

/// The Spark steps' keys, in DAG order.
pub fn keys() -> impl Iterator<Item = &'static str> {
    STEPS.iter().map(|s| s.key)
}

/// What step `key` (a Spark step or a driver step) writes.
pub fn writes(key: &str) -> &'static [Dataset] {
    match step(key) {
        Some(spec) => spec.writes,
        None => DRIVER_WRITES.iter().find(|(k, _)| *k == key).map(|(_, w)| *w).unwrap_or(&[]),
    }
}

/// The step (Spark or driver) of this run that writes `dataset`, if one does.
pub fn writer(dataset: Dataset) -> Option<&'static str> {
    STEPS
        .iter()
        .map(|s| (s.key, s.writes))
        .chain(DRIVER_WRITES.iter().copied())
        .find(|(_, writes)| writes.contains(&dataset))
        .map(|(key, _)| key)
}

/// Every step of this run whose output step `key` reads: what it waits for, and the driver
/// steps that write what it reads (build_fact reads the user_purchase export). A step one of
/// these wrote again in this attempt must run again.
pub fn upstream(key: &str) -> Vec<&'static str> {
    let Some(spec) = step(key) else { return Vec::new() };
    let mut upstream: Vec<&'static str> = spec.after.to_vec();
    for dataset in spec.reads {
        if let Some(writer) = writer(*dataset) {
            if writer != spec.key && !upstream.contains(&writer) {
                upstream.push(writer);
            }
        }
    }
    upstream
}

/// The wave of each step, in [`STEPS`] order: 0 for a step that waits for nothing, else one
/// more than the latest wave of what it waits for.
fn wave_numbers() -> Vec<usize> {
    let mut numbers: Vec<usize> = Vec::with_capacity(STEPS.len());
    for spec in STEPS {
        let wave = spec
            .after
            .iter()
            .map(|before| {
                let index =
                    STEPS.iter().position(|s| s.key == *before).filter(|i| *i < numbers.len()).unwrap_or_else(|| {
                        panic!("{} waits for {before}, which is not an earlier step of STEPS", spec.key)
                    });
                numbers[index] + 1
            })
            .max()
            .unwrap_or(0);
        numbers.push(wave);
    }
    numbers
}

/// The Spark steps in waves: the steps of a wave are independent and run together (as far as
/// the runner's concurrency allows); a wave starts when the one before it completed. A step's
/// wave is one more than the latest wave of the steps it waits for.
pub fn waves() -> Vec<Vec<&'static str>> {
    let numbers = wave_numbers();
    let count = numbers.iter().max().map_or(0, |m| m + 1);
    let mut waves = vec![Vec::new(); count];
    for (spec, wave) in STEPS.iter().zip(numbers) {
        waves[wave].push(spec.key);
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn waves_follow_the_dependencies() {
        assert_eq!(waves(), vec![vec!["classify_reviews", "parse_logs"], vec!["build_dimensions"], vec!["build_fact"]]);
    }

    #[test]
    fn keys_are_unique_and_driver_keys_are_not_spark_steps() {
        let keys: BTreeSet<&str> = keys().collect();
        assert_eq!(keys.len(), STEPS.len());
        for driver in [DEPLOY, USER_PURCHASE, LOAD_WAREHOUSE] {
            assert!(step(driver).is_none(), "{driver}");
        }
    }

    #[test]
    fn build_fact_runs_again_after_a_new_user_purchase_export() {
        assert_eq!(upstream("build_fact"), vec!["classify_reviews", "parse_logs", "build_dimensions", USER_PURCHASE]);
        assert_eq!(upstream("build_dimensions"), vec!["parse_logs"]);
        assert!(upstream("classify_reviews").is_empty());
        assert!(upstream(USER_PURCHASE).is_empty());
    }

    #[test]
    fn only_build_dimensions_extends_the_registry() {
        let extending: Vec<&str> = STEPS.iter().filter(|s| s.extends_dimension_registry()).map(|s| s.key).collect();
        assert_eq!(extending, vec!["build_dimensions"]);
    }

    /// What a step reads from this run was written by a step it waits for (or by the driver
    /// before the Spark steps start), and every dataset has at most one writer.
    #[test]
    fn reads_are_written_by_what_a_step_waits_for() {
        let mut problems = Vec::new();
        for spec in STEPS {
            for dataset in spec.reads {
                match writer(*dataset) {
                    Some(w) if step(w).is_some() && !spec.after.contains(&w) => problems
                        .push(format!("{} reads {dataset:?}, written by {w}, but does not wait for it", spec.key)),
                    _ => {}
                }
            }
        }
        let mut written = BTreeSet::new();
        for (key, writes) in STEPS.iter().map(|s| (s.key, s.writes)).chain(DRIVER_WRITES.iter().copied()) {
            for dataset in writes {
                if !written.insert(format!("{dataset:?}")) {
                    problems.push(format!("{dataset:?} is written by {key} and another step"));
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// The table says what each template passes: the `uris.*` variables of a step's template
    /// (its metrics folder aside) are exactly the fields of what it reads and writes.
    #[test]
    fn templates_pass_what_the_table_says() {
        let mut problems = Vec::new();
        for spec in STEPS {
            let mut used = BTreeSet::new();
            for piece in spec.template.split("{{uris.").skip(1) {
                let field = piece.split("}}").next().unwrap_or_default();
                if !field.starts_with("metrics.") {
                    used.insert(field.to_string());
                }
            }
            let declared: BTreeSet<String> =
                spec.reads.iter().chain(spec.writes).flat_map(|d| d.fields()).map(|f| f.to_string()).collect();
            if used != declared {
                problems.push(format!(
                    "{}: the template passes uris {used:?}, STEPS says it reads and writes {declared:?}",
                    spec.template_name()
                ));
            }
            let metrics = format!("{{{{uris.metrics.{}}}}}", spec.key);
            if !spec.template.contains(&metrics) {
                problems.push(format!("{}: no {metrics}", spec.template_name()));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
