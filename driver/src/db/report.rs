//! The analysts' five questions (DESIGN.md 2.4), run against the warehouse. The SQL lives in
//! `sql/questions/` (embedded at build time) so analysts can run the same files by hand.

use tokio_postgres::SimpleQueryMessage;

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
    tx.batch_execute(&format!("SET LOCAL search_path TO {schema}")).await.map_err(query_err("set the search_path"))?;
    let mut answers = Vec::new();
    for (name, question, sql) in QUESTIONS {
        let messages =
            tx.simple_query(sql).await.map_err(query_err(format!("answer {name} (sql/questions/{name}.sql)")))?;
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
