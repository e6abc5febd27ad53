//! The analysts' five questions (DESIGN.md 2.4), run against the warehouse. The SQL lives in
//! `sql/questions/` (embedded at build time) so analysts can run the same files by hand.
//!
//! Over Spectrum ([`spectrum_questions`]): the same five files, with the fact read from the
//! Redshift Spectrum external table (`<spectrum schema>.fact_movie_analytics`, the staging
//! Parquet of every registered `dt=` partition, sql/redshift/spectrum.sql) and the dimensions
//! from the warehouse schema: the dimensions have no external tables (their staging Parquet
//! holds one run's members; the warehouse keeps every member under ids that never change, the
//! ids the fact points at), and Redshift joins external and local tables in one query. The rest of each
//! question is unchanged, so the answers are the warehouse's whenever the staging fact holds
//! the rows the warehouse loaded.

use regex::Regex;
use tokio_postgres::SimpleQueryMessage;

use super::warehouse::{DIMENSIONS, FACT_TABLE};
use super::{check_identifier, query_err, DbError};

/// (short name, question, SQL), in order.
pub const QUESTIONS: [(&str, &str, &str); 5] = [
    (
        "q1_reviews_in_ca_ny_tx",
        "How many reviews were done in California, NY and Texas?",
        include_str!("../../../sql/questions/q1_reviews_in_ca_ny_tx.sql"),
    ),
    (
        "q2_apple_devices_in_ca_ny_tx",
        "Of those, how many with an Apple device, and how many for each device type?",
        include_str!("../../../sql/questions/q2_apple_devices_in_ca_ny_tx.sql"),
    ),
    (
        "q3_location_most_computer_chrome",
        "Which location has the most reviews from a computer in a Chrome browser?",
        include_str!("../../../sql/questions/q3_location_most_computer_chrome.sql"),
    ),
    (
        "q4_states_most_fewest_2021",
        "Which states have the most and the fewest reviews in 2021?",
        include_str!("../../../sql/questions/q4_states_most_fewest_2021.sql"),
    ),
    (
        "q5_most_used_device_east_west",
        "Which device is the most used to write reviews in the east (Northeast + South), and which in the west?",
        include_str!("../../../sql/questions/q5_most_used_device_east_west.sql"),
    ),
];

/// One question ready to run: its short name, its text and its SQL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Question {
    pub name: &'static str,
    pub question: &'static str,
    pub sql: String,
}

/// The five questions as they run on the warehouse (tables through the `search_path`).
pub fn warehouse_questions() -> Vec<Question> {
    QUESTIONS.iter().map(|(name, question, sql)| Question { name, question, sql: sql.to_string() }).collect()
}

/// The five questions over Spectrum: every `FROM` / `JOIN` of the fact reads
/// `<external_schema>.fact_movie_analytics` (the external table of sql/redshift/spectrum.sql),
/// every one of a dimension `<warehouse_schema>.dim_*`; CTE names stay. A question that reads
/// any other table is refused (its Spectrum form would be a guess), so a new question must be
/// added here knowingly.
pub fn spectrum_questions(external_schema: &str, warehouse_schema: &str) -> Result<Vec<Question>, DbError> {
    render_for_spectrum(&QUESTIONS, external_schema, warehouse_schema)
}

fn render_for_spectrum(
    questions: &[(&'static str, &'static str, &'static str)],
    external_schema: &str,
    warehouse_schema: &str,
) -> Result<Vec<Question>, DbError> {
    let external = check_identifier(external_schema)?;
    let warehouse = check_identifier(warehouse_schema)?;
    let reference = Regex::new(r"(?i)\b(FROM|JOIN)(\s+)([A-Za-z_][A-Za-z0-9_]*)\b(\s*\.)?").expect("a valid regex");
    let cte = Regex::new(r"(?i)(?:\bWITH|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(").expect("a valid regex");
    let mut out = Vec::new();
    for &(name, question, sql) in questions {
        let code = strip_comments(sql);
        let ctes: Vec<String> = cte.captures_iter(&code).map(|c| c[1].to_ascii_lowercase()).collect();
        let mut unknown = None;
        let mut rendered = String::new();
        for line in sql.lines() {
            let code = code_of(line);
            let replaced = reference.replace_all(code, |c: &regex::Captures| {
                let table = c[3].to_ascii_lowercase();
                let schema = if table == FACT_TABLE {
                    Some(external)
                } else if DIMENSIONS.iter().any(|d| d.table == table) {
                    Some(warehouse)
                } else {
                    None
                };
                match schema {
                    // Already qualified: `FROM x.y` names a schema, left as written.
                    _ if c.get(4).is_some() => c[0].to_string(),
                    Some(schema) => format!("{}{}{schema}.{}", &c[1], &c[2], &c[3]),
                    None => {
                        if !ctes.contains(&table) {
                            unknown.get_or_insert(table);
                        }
                        c[0].to_string()
                    }
                }
            });
            rendered.push_str(&replaced);
            rendered.push_str(&line[code.len()..]);
            rendered.push('\n');
        }
        if let Some(table) = unknown {
            return Err(DbError::Invariant {
                problem: format!(
                    "sql/questions/{name}.sql reads `{table}`, which the Spectrum rendering does not place (only \
                     {FACT_TABLE} goes to the external schema and the dim_* tables to the warehouse's)"
                ),
            });
        }
        let header = format!(
            "-- {name} over Redshift Spectrum: the fact from the external table {external}.{FACT_TABLE}\n\
             -- (the staging Parquet of every registered dt= partition), the dimensions from the warehouse\n\
             -- schema {warehouse} (Redshift joins external and local tables). Rendered by emr-driver from\n\
             -- sql/questions/{name}.sql.\n"
        );
        out.push(Question { name, question, sql: format!("{header}{rendered}") });
    }
    Ok(out)
}

/// The code of one line of SQL, before its `--` comment (the questions have no `--` inside a
/// string literal).
fn code_of(line: &str) -> &str {
    line.find("--").map_or(line, |at| &line[..at])
}

/// The SQL without its `--` comments.
fn strip_comments(sql: &str) -> String {
    sql.lines().map(code_of).collect::<Vec<_>>().join("\n")
}

/// The questions as one script for people: each under a comment with its number and text.
pub fn questions_script(questions: &[Question]) -> String {
    let mut out = String::new();
    for (i, q) in questions.iter().enumerate() {
        out.push_str(&format!("-- {}. {}\n{}\n", i + 1, q.question, q.sql.trim_end()));
        if i + 1 < questions.len() {
            out.push('\n');
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    pub name: String,
    pub question: String,
    pub columns: Vec<String>,
    /// Values as the database prints them; `None` is NULL.
    pub rows: Vec<Vec<Option<String>>>,
}

/// Runs the five questions against `schema` in one read-only transaction (one snapshot, so the
/// answers agree with each other even while a load runs).
pub async fn run_report(client: &mut tokio_postgres::Client, schema: &str) -> Result<Vec<Answer>, DbError> {
    let schema = check_identifier(schema)?;
    run_questions(client, schema, Some(schema), &warehouse_questions(), "").await
}

/// Runs the five questions over Spectrum ([`spectrum_questions`]): the fact of
/// `external_schema`, the dimensions of `warehouse_schema`, in one read-only transaction (the
/// dimensions are one snapshot; S3 is read as it is).
pub async fn run_spectrum_report(
    client: &mut tokio_postgres::Client,
    warehouse_schema: &str,
    external_schema: &str,
) -> Result<Vec<Answer>, DbError> {
    let questions = spectrum_questions(external_schema, warehouse_schema)?;
    let hint = format!(
        " over Spectrum (is the external table {external_schema}.{FACT_TABLE} there? `emr-driver run` creates it \
         when warehouse.glue_database is set)"
    );
    run_questions(client, warehouse_schema, None, &questions, &hint).await
}

/// `questions` in one read-only transaction, after checking that `schema` has the warehouse
/// tables; `search_path`: the schema unqualified tables resolve in.
async fn run_questions(
    client: &mut tokio_postgres::Client,
    schema: &str,
    search_path: Option<&str>,
    questions: &[Question],
    hint: &str,
) -> Result<Vec<Answer>, DbError> {
    let schema = check_identifier(schema)?;
    let tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
        .map_err(query_err("start a read-only transaction"))?;
    let has_fact = tx
        .query_opt(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'fact_movie_analytics'",
            &[&schema],
        )
        .await
        .map_err(query_err("look for the warehouse tables"))?;
    if has_fact.is_none() {
        return Err(DbError::NoWarehouse { schema: schema.to_string() });
    }
    if let Some(path) = search_path {
        let path = check_identifier(path)?;
        tx.batch_execute(&format!("SET LOCAL search_path TO {path}"))
            .await
            .map_err(query_err("set the search_path"))?;
    }
    let mut answers = Vec::new();
    for Question { name, question, sql } in questions {
        let messages =
            tx.simple_query(sql).await.map_err(query_err(format!("answer {name} (sql/questions/{name}.sql){hint}")))?;
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(description) => {
                    columns = description.iter().map(|c| c.name().to_string()).collect();
                }
                SimpleQueryMessage::Row(row) => {
                    rows.push((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect());
                }
                _ => {}
            }
        }
        answers.push(Answer { name: name.to_string(), question: question.to_string(), columns, rows });
    }
    tx.commit().await.map_err(query_err("end the report transaction"))?;
    Ok(answers)
}

/// The answers as aligned text tables, one per question.
pub fn format_text(answers: &[Answer]) -> String {
    let mut out = String::new();
    for (i, answer) in answers.iter().enumerate() {
        out.push_str(&format!("{}. {}\n", i + 1, answer.question));
        out.push_str(&format_table(&answer.columns, &answer.rows));
        out.push('\n');
    }
    out
}

/// One aligned table: numbers right-aligned, text left-aligned, NULL shown as `NULL`.
pub fn format_table(columns: &[String], rows: &[Vec<Option<String>>]) -> String {
    let cells: Vec<Vec<&str>> =
        rows.iter().map(|row| row.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, name)| {
            cells.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count())).max().unwrap_or(0).max(name.chars().count())
        })
        .collect();
    let numeric: Vec<bool> = (0..columns.len())
        .map(|i| !cells.is_empty() && cells.iter().all(|r| r.get(i).is_some_and(|c| c.parse::<f64>().is_ok())))
        .collect();
    let line = |values: &[&str]| -> String {
        let padded: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let pad = widths[i].saturating_sub(v.chars().count());
                if numeric[i] {
                    format!("{}{v}", " ".repeat(pad))
                } else {
                    format!("{v}{}", " ".repeat(pad))
                }
            })
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut out = line(&names);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&rule.iter().map(String::as_str).collect::<Vec<_>>()));
    if cells.is_empty() {
        out.push_str("  (no rows)\n");
    }
    for row in &cells {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_questions_over_spectrum_read_the_external_fact_and_the_warehouse_dimensions() {
        let questions = spectrum_questions("staging", "warehouse").unwrap();
        assert_eq!(questions.len(), 5);
        let table = Regex::new(r"(?i)\b(?:FROM|JOIN)\s+([a-z_]+(?:\.[a-z_]+)?)").unwrap();
        for (q, (name, _, original)) in questions.iter().zip(QUESTIONS) {
            assert_eq!(q.name, name);
            let code = strip_comments(&q.sql);
            let tables: Vec<&str> = table.captures_iter(&code).map(|c| c.get(1).unwrap().as_str()).collect();
            // Every question reads the external fact, and no table of the warehouse is left
            // unqualified (it would resolve through the search_path, not the schema asked).
            assert!(tables.contains(&"staging.fact_movie_analytics"), "{name}: {tables:?}");
            let warehouse_table = |t: &str| t == FACT_TABLE || DIMENSIONS.iter().any(|d| d.table == t);
            for t in &tables {
                match t.split_once('.') {
                    Some(("staging", table)) => assert_eq!(table, FACT_TABLE, "{name}"),
                    Some(("warehouse", table)) => {
                        assert!(table != FACT_TABLE && warehouse_table(table), "{name}: {t}")
                    }
                    Some(_) => panic!("{name}: {t} is in neither schema"),
                    // A CTE of the question.
                    None => assert!(!warehouse_table(t), "{name}: {t} is left unqualified"),
                }
            }
            // Only the table names changed: the SQL is the question's, once the prefixes go.
            let unprefixed = q.sql.replace("staging.", "").replace("warehouse.", "");
            assert!(unprefixed.ends_with(original), "{name}");
        }
        insta::assert_snapshot!(questions_script(&questions));
        // Another pair of schemas, and names that are not identifiers.
        let other = spectrum_questions("spectrum", "public").unwrap();
        assert!(
            other[0].sql.contains("LEFT JOIN spectrum.fact_movie_analytics f")
                && other[0].sql.contains("public.dim_location l")
        );
        assert!(matches!(spectrum_questions("staging; DROP", "warehouse"), Err(DbError::BadIdentifier { .. })));
        // A question reading another table is refused, not guessed; a `from` in a comment, a
        // CTE and an already qualified table are left alone.
        let view = [("q9", "?", "-- from a view\nSELECT * FROM v_fact_movie_analytics v\n")];
        let err = render_for_spectrum(&view, "staging", "warehouse").unwrap_err();
        assert!(err.to_string().contains("q9.sql reads `v_fact_movie_analytics`"), "{err}");
        let fine = [(
            "q9",
            "?",
            "-- counts from a computer\nWITH t AS (SELECT 1 AS n FROM other.fact_movie_analytics)\nSELECT n FROM t JOIN dim_os o ON true\n",
        )];
        let sql = &render_for_spectrum(&fine, "staging", "warehouse").unwrap()[0].sql;
        assert!(sql.ends_with(
            "-- counts from a computer\nWITH t AS (SELECT 1 AS n FROM other.fact_movie_analytics)\nSELECT n FROM t JOIN warehouse.dim_os o ON true\n"
        ), "{sql}");
        assert!(matches!(spectrum_questions("staging", "Warehouse"), Err(DbError::BadIdentifier { .. })));
    }

    #[test]
    fn formats_aligned_tables() {
        let columns = vec!["location".to_string(), "reviews".to_string()];
        let rows = vec![
            vec![Some("California".to_string()), Some("7".to_string())],
            vec![Some("Total".to_string()), Some("1234".to_string())],
        ];
        assert_eq!(
            format_table(&columns, &rows),
            "  location    reviews\n  ----------  -------\n  California        7\n  Total          1234\n"
        );
        assert_eq!(format_table(&columns, &[]), "  location  reviews\n  --------  -------\n  (no rows)\n");
    }
}
