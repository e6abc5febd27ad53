//! Which warehouse a command reads: PostgreSQL (a URL and a schema) or the embedded SQLite
//! file. `report`, `check` and the run's summary and HTML report go through this, so they work
//! the same on both.

use std::path::PathBuf;

use chrono::NaiveDate;
use serde::Serialize;
use tokio_postgres::SimpleQueryMessage;

use super::login::DbLogin;
use super::report::Answer;
use super::{check_identifier, embedded, query_err, DbError};
use crate::db::warehouse::FACT_TABLE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warehouse {
    /// PostgreSQL (local or RDS) and how to log in to it; the password is never shown.
    Postgres { login: DbLogin, schema: String },
    /// The embedded SQLite file (a local run without a database server).
    Embedded { path: PathBuf },
}

/// Rows of one run date in the fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedDate {
    pub run_date: NaiveDate,
    pub fact_rows: u64,
    /// `SUM(review_count)`: the run's classified reviews.
    pub reviews: u64,
}

impl Warehouse {
    /// `postgres` or `sqlite`.
    pub fn kind(&self) -> &'static str {
        match self {
            Warehouse::Postgres { .. } => "postgres",
            Warehouse::Embedded { .. } => "sqlite",
        }
    }

    /// Where it is, safe to print: the URL with its password redacted, or the file's path.
    pub fn location(&self) -> String {
        match self {
            Warehouse::Postgres { login, schema } => format!("{} (schema {schema})", login.shown()),
            Warehouse::Embedded { path } => path.display().to_string(),
        }
    }

    /// For people: `PostgreSQL postgres://u:***@h/db (schema public)`, `SQLite file .lake/...`.
    pub fn describe(&self) -> String {
        match self {
            Warehouse::Postgres { .. } => format!("PostgreSQL {}", self.location()),
            Warehouse::Embedded { .. } => format!("the embedded SQLite warehouse {}", self.location()),
        }
    }

    /// The five questions (the SQL of `sql/questions/`), in one snapshot.
    pub async fn answers(&self) -> Result<Vec<Answer>, DbError> {
        match self {
            Warehouse::Postgres { login, schema } => {
                let mut client = login.connect().await?;
                super::report::run_report(&mut client, schema).await
            }
            Warehouse::Embedded { path } => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || embedded::run_report(&path)).await.unwrap_or_else(|e| {
                    Err(DbError::Invariant { problem: format!("the SQLite report thread failed: {e}") })
                })
            }
        }
    }

    /// The five questions over Spectrum: the fact of the external schema `external_schema`,
    /// the dimensions of the warehouse ([`super::report::spectrum_questions`]). Only a
    /// database warehouse (Redshift) has an external schema.
    pub async fn spectrum_answers(&self, external_schema: &str) -> Result<Vec<Answer>, DbError> {
        match self {
            Warehouse::Postgres { login, schema } => {
                let mut client = login.connect().await?;
                super::report::run_spectrum_report(&mut client, schema, external_schema).await
            }
            Warehouse::Embedded { .. } => Err(DbError::SpectrumNeedsRedshift),
        }
    }

    /// Every run date in the fact with its rows and reviews, oldest first.
    pub async fn loaded_dates(&self) -> Result<Vec<LoadedDate>, DbError> {
        let rows = match self {
            Warehouse::Postgres { login, schema } => {
                let schema = check_identifier(schema)?;
                let client = login.connect().await?;
                let exists = client
                    .query_opt(
                        "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
                        &[&schema, &FACT_TABLE],
                    )
                    .await
                    .map_err(query_err("look for the warehouse tables"))?;
                if exists.is_none() {
                    return Err(DbError::NoWarehouse { schema: schema.to_string() });
                }
                let sql = format!(
                    "SELECT CAST(insert_date AS varchar), COUNT(*), COALESCE(SUM(review_count), 0) \
                     FROM {schema}.{FACT_TABLE} GROUP BY insert_date ORDER BY insert_date"
                );
                let messages =
                    client.simple_query(&sql).await.map_err(query_err("count the fact rows per run date"))?;
                messages
                    .into_iter()
                    .filter_map(|m| match m {
                        SimpleQueryMessage::Row(row) => {
                            Some((0..row.len()).map(|i| row.get(i).map(str::to_string)).collect::<Vec<_>>())
                        }
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            }
            Warehouse::Embedded { path } => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let conn = embedded::open_read_only(&path)?;
                    let sql = format!(
                        "SELECT insert_date, COUNT(*), COALESCE(SUM(review_count), 0) FROM {FACT_TABLE} \
                         GROUP BY insert_date ORDER BY insert_date"
                    );
                    embedded::query_text(&conn, &path, &sql, "count the fact rows per run date").map(|(_, rows)| rows)
                })
                .await
                .unwrap_or_else(|e| Err(DbError::Invariant { problem: format!("the SQLite thread failed: {e}") }))?
            }
        };
        rows.into_iter()
            .map(|row| {
                let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
                let bad =
                    |what: &str| DbError::Invariant { problem: format!("the warehouse returned {what}: {row:?}") };
                Ok(LoadedDate {
                    run_date: text(0).parse().map_err(|_| bad("an insert_date that is not a date"))?,
                    fact_rows: text(1).parse().map_err(|_| bad("a count that is not a number"))?,
                    reviews: text(2).parse().map_err(|_| bad("a review sum that is not a number"))?,
                })
            })
            .collect()
    }
}
