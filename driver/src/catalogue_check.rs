//! The driver's lists of vendor columns, dimensions and warehouse columns against the one
//! catalogue, `sql/catalogue.json` (issue #13). The SQL, the Python jobs and the docs are checked
//! against the same file by `tests/test_catalogue.py`; this test covers the Rust constants, so a
//! change in the catalogue that the driver does not follow (or the other way round) fails here,
//! naming the constant to fix. Test-only: the driver keeps its constants (the COPY column lists
//! of `db::redshift` and `db::embedded` are built from `db::warehouse::DIMENSIONS` and
//! `FACT_COLUMNS`, so checking those checks them).

use serde_json::Value;

use crate::db::user_purchase::{COLUMNS as PURCHASE_COLUMNS, UCI_HEADER};
use crate::db::warehouse::{DIMENSIONS, FACT_COLUMNS, FACT_TABLE, VIEWS};
use crate::ingest::INPUTS;
use crate::pipeline::steps::{waves, STEPS};
use crate::preflight::{InputSpec, LOG_REVIEWS, MOVIE_REVIEW, USER_PURCHASE};

const CATALOGUE: &str = include_str!("../../sql/catalogue.json");

fn catalogue() -> Value {
    serde_json::from_str(CATALOGUE).expect("sql/catalogue.json is valid JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap_or_else(|| panic!("sql/catalogue.json: {value} is not a list")).iter().map(text).collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("sql/catalogue.json: {value} is not a string")).to_string()
}

fn names(columns: &Value) -> Vec<String> {
    columns.as_array().expect("a list of columns").iter().map(|c| text(&c["name"])).collect()
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every mismatch, so one run lists all there is to fix.
fn check(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn catalogue_vendor_files_are_the_preflight_inputs() {
    let cat = catalogue();
    let sources = cat["sources"].as_array().expect("sources");
    let mut problems = Vec::new();
    let specs: [(&str, InputSpec); 3] =
        [("MOVIE_REVIEW", MOVIE_REVIEW), ("LOG_REVIEWS", LOG_REVIEWS), ("USER_PURCHASE", USER_PURCHASE)];
    for (constant, spec) in specs {
        match sources.iter().find(|s| s["file"] == spec.name) {
            None => problems.push(format!(
                "driver/src/preflight.rs: {constant} reads {}, which no source of sql/catalogue.json names",
                spec.name
            )),
            Some(source) => {
                let wanted = strings(&source["required_columns"]);
                if owned(spec.required_columns) != wanted {
                    problems.push(format!(
                        "driver/src/preflight.rs: {constant}.required_columns is {:?}, sql/catalogue.json \
                         sources.{}.required_columns is {wanted:?}",
                        spec.required_columns,
                        text(&source["name"])
                    ));
                }
            }
        }
    }
    let files: Vec<String> = sources.iter().map(|s| text(&s["file"])).collect();
    let ingested: Vec<String> = INPUTS.iter().map(|s| s.name.to_string()).collect();
    if ingested != files {
        problems.push(format!(
            "driver/src/ingest.rs: INPUTS are {ingested:?}, the sources of sql/catalogue.json {files:?}"
        ));
    }
    check(problems);
}

#[test]
fn catalogue_user_purchase_is_the_loaders_table() {
    let cat = catalogue();
    let table = &cat["user_purchase_table"];
    let mut problems = Vec::new();
    let wanted = names(&table["columns"]);
    if owned(&PURCHASE_COLUMNS) != wanted {
        problems.push(format!(
            "driver/src/db/user_purchase.rs: COLUMNS is {PURCHASE_COLUMNS:?}, sql/catalogue.json \
             user_purchase_table.columns {wanted:?}"
        ));
    }
    let source = cat["sources"].as_array().unwrap().iter().find(|s| s["name"] == "user_purchase").unwrap();
    let header = strings(&source["required_columns"]);
    if owned(&UCI_HEADER) != header {
        problems.push(format!(
            "driver/src/db/user_purchase.rs: UCI_HEADER is {UCI_HEADER:?}, sql/catalogue.json \
             sources.user_purchase.required_columns {header:?} (same order as the columns)"
        ));
    }
    check(problems);
}

#[test]
fn catalogue_dimensions_and_fact_are_the_warehouse_load_lists() {
    let cat = catalogue();
    let dims = cat["dimensions"].as_array().expect("dimensions");
    let mut problems = Vec::new();
    let tables: Vec<&str> = DIMENSIONS.iter().map(|d| d.table).collect();
    let wanted: Vec<String> = dims.iter().map(|d| text(&d["table"])).collect();
    if owned(&tables) != wanted {
        problems.push(format!(
            "driver/src/db/warehouse.rs: DIMENSIONS are {tables:?}, sql/catalogue.json dimensions {wanted:?}"
        ));
    }
    for spec in dims {
        let table = text(&spec["table"]);
        let Some(dim) = DIMENSIONS.iter().find(|d| d.table == table) else { continue };
        for (field, found, key) in [("id", dim.id, "id"), ("natural_key", dim.natural_key, "natural_key")] {
            let want = text(&spec[key]);
            if found != want {
                problems.push(format!(
                    "driver/src/db/warehouse.rs: DIMENSIONS {table}.{field} is {found:?}, sql/catalogue.json {want:?}"
                ));
            }
        }
        let columns = names(&spec["columns"]);
        if owned(dim.columns) != columns {
            problems.push(format!(
                "driver/src/db/warehouse.rs: DIMENSIONS {table}.columns (the COPY column list) is {:?}, \
                 sql/catalogue.json {columns:?}",
                dim.columns
            ));
        }
    }
    let fact = &cat["fact"];
    if FACT_TABLE != text(&fact["table"]) {
        problems.push(format!(
            "driver/src/db/warehouse.rs: FACT_TABLE is {FACT_TABLE}, sql/catalogue.json {}",
            fact["table"]
        ));
    }
    let columns = names(&fact["columns"]);
    if owned(&FACT_COLUMNS) != columns {
        problems.push(format!(
            "driver/src/db/warehouse.rs: FACT_COLUMNS (the COPY column list) is {FACT_COLUMNS:?}, \
             sql/catalogue.json fact.columns {columns:?}"
        ));
    }
    let views = strings(&cat["views"]);
    if owned(&VIEWS) != views {
        problems.push(format!("driver/src/db/warehouse.rs: VIEWS is {VIEWS:?}, sql/catalogue.json views {views:?}"));
    }
    check(problems);
}

#[test]
fn catalogue_steps_are_the_plans_steps_templates_and_waves() {
    let cat = catalogue();
    let steps = cat["steps"].as_array().expect("steps");
    let wanted: Vec<(String, Vec<String>)> = steps.iter().map(|s| (text(&s["name"]), strings(&s["after"]))).collect();
    let mut problems = Vec::new();
    let planned: Vec<(String, Vec<String>)> = STEPS.iter().map(|s| (s.key.to_string(), owned(s.after))).collect();
    if planned != wanted {
        problems.push(format!(
            "driver/src/pipeline/steps.rs: STEPS (key, after) are {planned:?}, sql/catalogue.json steps (name, after) \
             {wanted:?}"
        ));
    }
    let names: Vec<String> = wanted.iter().map(|(name, _)| name.clone()).collect();
    // One driver/templates/steps/<step>.json.hbs each, and no template of a step the table lacks.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/steps");
    let mut templates: Vec<String> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{folder}: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.strip_suffix(".json.hbs").map(str::to_string))
        .collect();
    templates.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    if templates != sorted {
        problems.push(format!(
            "driver/templates/steps/ holds templates for {templates:?}, sql/catalogue.json steps {sorted:?} \
             (one <step>.json.hbs each, embedded by its STEPS entry in driver/src/pipeline/steps.rs)"
        ));
    }
    // The waves derived from the table: every step once, in a wave after every step it waits for.
    let waves = waves();
    let wave_of = |step: &str| waves.iter().position(|wave| wave.contains(&step));
    let mut waved: Vec<&str> = waves.iter().flat_map(|wave| wave.iter().copied()).collect();
    waved.sort_unstable();
    let sorted: Vec<&str> = sorted.iter().map(String::as_str).collect();
    if waved != sorted {
        problems
            .push(format!("driver/src/pipeline/steps.rs: waves() hold {waved:?}, sql/catalogue.json steps {sorted:?}"));
    }
    for (step, after) in &wanted {
        for before in after {
            if let (Some(a), Some(b)) = (wave_of(before.as_str()), wave_of(step.as_str())) {
                if a >= b {
                    problems.push(format!(
                        "driver/src/pipeline/steps.rs: waves() run {step} in wave {b}, not after {before} (wave {a}), \
                         which sql/catalogue.json says it waits for"
                    ));
                }
            }
        }
    }
    check(problems);
}
