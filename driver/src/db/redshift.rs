//! The warehouse load as Redshift runs it: the same merge statements as the PostgreSQL load
//! ([`super::warehouse`]), but the files are read by Redshift itself with
//! `COPY ... FROM 's3://...' IAM_ROLE '...'` instead of being streamed through the driver.
//!
//! Redshift does not enforce PRIMARY KEY / UNIQUE, so the id checks are queries the caller
//! runs between the statements ([`RedshiftStatement::Check`]): any row returned is the
//! problem, and the caller must ROLLBACK. Only the role ARN goes into the SQL, never a secret.

use chrono::NaiveDate;

use super::warehouse::{
    comments_sql, dimension_conflict_queries, dimension_merge_sql, fact_check_queries, fact_replace_sql, load_table,
    split_sql, tables_sql, views_sql, DIMENSIONS, FACT_COLUMNS, FACT_TABLE,
};
use super::DbError;
use crate::store::ObjectUri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedshiftStatement {
    /// Run it.
    Execute(String),
    /// Run it: it must return no row; a row is a message saying what is wrong (then ROLLBACK).
    Check(String),
}

impl RedshiftStatement {
    pub fn sql(&self) -> &str {
        match self {
            RedshiftStatement::Execute(sql) | RedshiftStatement::Check(sql) => sql,
        }
    }
}

/// The Spectrum setup over the staging layer, with `${...}` placeholders (see the file).
pub const SPECTRUM_SQL: &str = include_str!("../../../sql/redshift/spectrum.sql");

/// The partitions of one run date in those external tables (see the file).
pub const SPECTRUM_PARTITIONS_SQL: &str = include_str!("../../../sql/redshift/spectrum_partitions.sql");

/// Where the Spectrum external schema is and what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpectrumSettings {
    /// The external schema in Redshift (`warehouse.spectrum_schema`).
    pub schema: String,
    /// The Glue database behind it (`warehouse.glue_database`, Terraform output
    /// `redshift_glue_database`).
    pub glue_database: String,
    /// The role Redshift assumes for S3 and Glue (the COPY role).
    pub role_arn: String,
    pub staging_bucket: String,
}

/// One statement of the Spectrum setup, run on its own outside a transaction. When `unless`
/// is set, it is a query: a row back means the object exists, and the statement is skipped
/// (Redshift's CREATE EXTERNAL TABLE has no IF NOT EXISTS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpectrumStatement {
    pub unless: Option<String>,
    pub sql: String,
}

/// The external schema and tables (created when absent) and the run date's partitions:
/// `partitions` maps each partition placeholder of spectrum_partitions.sql (the table name) to
/// the folder the run published that table in.
pub fn render_spectrum_sql(
    settings: &SpectrumSettings,
    run_date: NaiveDate,
    partitions: &[(&str, &ObjectUri)],
) -> Result<Vec<SpectrumStatement>, DbError> {
    let schema = super::check_identifier(&settings.schema)?;
    let glue = super::check_identifier(&settings.glue_database)?;
    let role = check_role_arn(&settings.role_arn)?;
    if crate::config::check_bucket_name(&settings.staging_bucket).is_err() {
        return Err(DbError::BadLoadFile {
            file: settings.staging_bucket.clone(),
            problem: "not an S3 bucket name".into(),
        });
    }
    let date = run_date.format("%Y-%m-%d").to_string();
    let mut values: Vec<(String, String)> = vec![
        ("external_schema".into(), schema.to_string()),
        ("glue_database".into(), glue.to_string()),
        ("spectrum_role_arn".into(), role.to_string()),
        ("staging_bucket".into(), settings.staging_bucket.clone()),
        ("run_date".into(), date),
    ];
    for (name, folder) in partitions {
        let folder = folder.to_string();
        if folder.contains(['\'', '\\']) {
            return Err(DbError::BadLoadFile { file: folder, problem: "quotes or backslashes in the URI".into() });
        }
        values.push((name.to_string(), folder.trim_end_matches('/').to_string()));
    }
    let fill = |text: &str| -> Result<String, DbError> {
        let mut out = text.to_string();
        for (name, value) in &values {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        match regex::Regex::new(r"\$\{([a-z_]+)\}").expect("valid").captures(&out) {
            Some(left) => {
                Err(DbError::Invariant { problem: format!("no value for the Spectrum placeholder {}", &left[0]) })
            }
            None => Ok(out),
        }
    };
    let table_name = regex::Regex::new(r"(?i)^CREATE EXTERNAL TABLE\s+([a-z_0-9]+)\.([a-z_0-9]+)").expect("valid");
    let mut out = Vec::new();
    for sql in ddl_statements(&fill(SPECTRUM_SQL)?) {
        let unless = table_name.captures(&sql).map(|c| {
            format!("SELECT 1 FROM svv_external_tables WHERE schemaname = '{}' AND tablename = '{}'", &c[1], &c[2])
        });
        out.push(SpectrumStatement { unless, sql });
    }
    for sql in ddl_statements(&fill(SPECTRUM_PARTITIONS_SQL)?) {
        out.push(SpectrumStatement { unless: None, sql });
    }
    Ok(out)
}

/// The Spectrum statements as a script for reading.
pub fn spectrum_script(statements: &[SpectrumStatement]) -> String {
    statements
        .iter()
        .map(|s| match &s.unless {
            Some(probe) => format!("-- unless {probe} returns a row:\n{};\n", s.sql),
            None => format!("{};\n", s.sql),
        })
        .collect()
}

/// Runs the Spectrum statements one by one (autocommit); returns how many ran (skipped ones
/// not counted).
pub async fn execute_spectrum(
    client: &mut tokio_postgres::Client,
    statements: &[SpectrumStatement],
) -> Result<usize, DbError> {
    let mut ran = 0;
    for (i, statement) in statements.iter().enumerate() {
        if let Some(probe) = &statement.unless {
            let rows = client
                .simple_query(probe)
                .await
                .map_err(super::query_err(format!("check Spectrum statement {}", i + 1)))?;
            if rows.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))) {
                continue;
            }
        }
        client.batch_execute(&statement.sql).await.map_err(super::query_err(format!(
            "run Spectrum statement {} ({})",
            i + 1,
            first_words(&statement.sql)
        )))?;
        ran += 1;
    }
    Ok(ran)
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}

/// Every statement, as a script for reading (checks marked with a comment).
pub fn to_script(statements: &[RedshiftStatement]) -> String {
    statements
        .iter()
        .map(|s| match s {
            RedshiftStatement::Execute(sql) => format!("{sql};\n"),
            RedshiftStatement::Check(sql) => format!("-- check: must return no row, else ROLLBACK\n{sql};\n"),
        })
        .collect()
}

/// Checks an IAM role ARN (`arn:aws:iam::123456789012:role/name`, also other partitions and
/// role paths) before it is quoted into SQL.
pub fn check_role_arn(arn: &str) -> Result<&str, DbError> {
    let pattern =
        regex::Regex::new(r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$").expect("valid regex");
    if pattern.is_match(arn) {
        Ok(arn)
    } else {
        Err(DbError::BadRoleArn { arn: arn.to_string() })
    }
}

/// Runs a rendered load on Redshift over its PostgreSQL protocol, statement by statement.
/// A `Check` that returns a row rolls the transaction back and fails with the row's message.
/// Returns how many statements ran.
pub async fn execute(client: &mut tokio_postgres::Client, statements: &[RedshiftStatement]) -> Result<usize, DbError> {
    for (done, statement) in statements.iter().enumerate() {
        let outcome = match statement {
            RedshiftStatement::Execute(sql) => client.batch_execute(sql).await.map(|_| None),
            RedshiftStatement::Check(sql) => client.simple_query(sql).await.map(|messages| {
                messages.into_iter().find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(row) => {
                        Some(row.get(0).unwrap_or("a check failed").to_string())
                    }
                    _ => None,
                })
            }),
        };
        let failure = match outcome {
            Ok(None) => continue,
            Ok(Some(problem)) => DbError::BadFact { problem },
            Err(e) => super::query_err(format!("run statement {} of the Redshift load", done + 1))(e),
        };
        // Best effort: the server also aborts the transaction when the session ends.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(failure);
    }
    Ok(statements.len())
}

/// The statements of one run's load, in order, inside one transaction.
pub fn render_load_sql(
    schema: &str,
    load_root: &ObjectUri,
    iam_role_arn: &str,
    run_date: NaiveDate,
) -> Result<Vec<RedshiftStatement>, DbError> {
    let arn = check_role_arn(iam_role_arn)?;
    if load_root.to_string().contains(['\'', '\\']) {
        return Err(DbError::BadLoadFile {
            file: load_root.to_string(),
            problem: "quotes or backslashes in the URI".into(),
        });
    }
    let mut out = vec![RedshiftStatement::Execute("BEGIN".into())];
    out.extend(ddl_statements(&tables_sql(schema)?).into_iter().map(RedshiftStatement::Execute));
    let tables = DIMENSIONS.iter().map(|d| (d.table, d.columns)).chain([(FACT_TABLE, &FACT_COLUMNS[..])]);
    for (table, columns) in tables {
        let load = load_table(table);
        out.push(RedshiftStatement::Execute(format!("CREATE TEMP TABLE {load} (LIKE {schema}.{table})")));
        // The `part-` prefix keeps `_SUCCESS` and any other file out of the COPY.
        let files = load_root.join(table).join("part-");
        out.push(RedshiftStatement::Execute(format!(
            "COPY {load} ({}) FROM '{files}' IAM_ROLE '{arn}' FORMAT AS CSV IGNOREHEADER 1 GZIP",
            columns.join(", ")
        )));
    }
    for dim in &DIMENSIONS {
        let load = load_table(dim.table);
        out.extend(dimension_conflict_queries(schema, dim, &load).into_iter().map(RedshiftStatement::Check));
        out.extend(dimension_merge_sql(schema, dim, &load).into_iter().map(RedshiftStatement::Execute));
    }
    let fact_load = load_table(FACT_TABLE);
    out.push(RedshiftStatement::Check(format!(
        "SELECT 'the fact load files hold no rows' FROM (SELECT COUNT(*) AS n FROM {fact_load}) c WHERE c.n = 0"
    )));
    out.extend(fact_check_queries(schema, &fact_load, run_date).into_iter().map(RedshiftStatement::Check));
    out.extend(fact_replace_sql(schema, &fact_load, run_date).into_iter().map(RedshiftStatement::Execute));
    // The views and comments BI tools read, refreshed by every load (a table made before the
    // foreign keys existed keeps none: Redshift's keys are informational only).
    out.extend(split_sql(&views_sql(schema)?).into_iter().map(RedshiftStatement::Execute));
    out.extend(split_sql(&comments_sql(schema)?).into_iter().map(RedshiftStatement::Execute));
    out.push(RedshiftStatement::Execute("COMMIT".into()));
    Ok(out)
}

/// Splits the DDL file into statements, dropping comment-only lines.
fn ddl_statements(ddl: &str) -> Vec<String> {
    let without_comments: String = ddl
        .lines()
        .map(|line| match line.find("--") {
            Some(i) => line[..i].trim_end(),
            None => line,
        })
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/movie-analytics-redshift";

    fn root() -> ObjectUri {
        ObjectUri::parse("s3://movie-staging/warehouse_load/dt=2021-10-31").unwrap()
    }

    #[test]
    fn renders_the_load_script() {
        let date = NaiveDate::from_ymd_opt(2021, 10, 31).unwrap();
        let statements = render_load_sql("warehouse", &root(), ROLE, date).unwrap();
        assert_eq!(statements.first().unwrap().sql(), "BEGIN");
        assert_eq!(statements.last().unwrap().sql(), "COMMIT");
        insta::assert_snapshot!(to_script(&statements));
    }

    #[test]
    fn copies_only_part_files_with_the_role() {
        let date = NaiveDate::from_ymd_opt(2021, 10, 31).unwrap();
        let statements = render_load_sql("warehouse", &root(), ROLE, date).unwrap();
        let copy = statements.iter().find(|s| s.sql().starts_with("COPY load_dim_os")).unwrap();
        assert_eq!(
            copy.sql(),
            "COPY load_dim_os (id_dim_os, os) FROM 's3://movie-staging/warehouse_load/dt=2021-10-31/dim_os/part-' \
             IAM_ROLE 'arn:aws:iam::123456789012:role/movie-analytics-redshift' FORMAT AS CSV IGNOREHEADER 1 GZIP"
        );
        let script = to_script(&statements);
        assert!(script.contains("DELETE FROM warehouse.fact_movie_analytics WHERE insert_date = DATE '2021-10-31'"));
        assert!(!script.to_lowercase().contains("secret") && !script.contains("ACCESS_KEY"));
    }

    fn spectrum() -> SpectrumSettings {
        SpectrumSettings {
            schema: "staging".into(),
            glue_database: "movie_analytics_dev_staging".into(),
            role_arn: ROLE.into(),
            staging_bucket: "movie-staging".into(),
        }
    }

    fn partitions() -> Vec<(&'static str, ObjectUri)> {
        ["classified_movie_review", "review_logs", "fact_movie_analytics", "user_purchase"]
            .into_iter()
            .map(|t| (t, ObjectUri::parse(&format!("s3://movie-staging/{t}/dt=2021-10-31")).unwrap()))
            .collect()
    }

    #[test]
    fn renders_the_spectrum_schema_and_the_runs_partitions() {
        let date = NaiveDate::from_ymd_opt(2021, 10, 31).unwrap();
        let parts = partitions();
        let refs: Vec<(&str, &ObjectUri)> = parts.iter().map(|(t, u)| (*t, u)).collect();
        let statements = render_spectrum_sql(&spectrum(), date, &refs).unwrap();
        insta::assert_snapshot!(spectrum_script(&statements));
        // The schema first; every external table guarded; one partition per staging table.
        assert!(statements[0].sql.starts_with("CREATE EXTERNAL SCHEMA IF NOT EXISTS staging"));
        let tables: Vec<&SpectrumStatement> =
            statements.iter().filter(|s| s.sql.starts_with("CREATE EXTERNAL TABLE")).collect();
        assert_eq!(tables.len(), 4);
        assert!(tables.iter().all(|s| s.unless.as_deref().is_some_and(|u| u.contains("svv_external_tables"))));
        let adds: Vec<&str> =
            statements.iter().map(|s| s.sql.as_str()).filter(|s| s.contains("ADD IF NOT EXISTS PARTITION")).collect();
        assert_eq!(adds.len(), 4);
        assert!(adds.contains(
            &"ALTER TABLE staging.review_logs ADD IF NOT EXISTS PARTITION (dt = '2021-10-31')\nLOCATION 's3://movie-staging/review_logs/dt=2021-10-31/'"
        ), "{adds:?}");
        assert!(!spectrum_script(&statements).contains("${"));
    }

    #[test]
    fn spectrum_refuses_bad_names_and_a_missing_partition_folder() {
        let date = NaiveDate::from_ymd_opt(2021, 10, 31).unwrap();
        let parts = partitions();
        let refs: Vec<(&str, &ObjectUri)> = parts.iter().map(|(t, u)| (*t, u)).collect();
        let bad_schema = SpectrumSettings { schema: "staging; DROP".into(), ..spectrum() };
        assert!(matches!(render_spectrum_sql(&bad_schema, date, &refs), Err(DbError::BadIdentifier { .. })));
        let bad_role = SpectrumSettings { role_arn: "x".into(), ..spectrum() };
        assert!(matches!(render_spectrum_sql(&bad_role, date, &refs), Err(DbError::BadRoleArn { .. })));
        let err = render_spectrum_sql(&spectrum(), date, &refs[..3]).unwrap_err();
        assert!(err.to_string().contains("${user_purchase}"), "{err}");
    }

    #[test]
    fn the_spectrum_sql_uses_only_documented_placeholders_and_the_fact_columns() {
        let placeholders: std::collections::BTreeSet<&str> = regex::Regex::new(r"\$\{([a-z_]+)\}")
            .unwrap()
            .captures_iter(SPECTRUM_SQL)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        let expected = ["external_schema", "glue_database", "spectrum_role_arn", "staging_bucket"];
        assert_eq!(placeholders.into_iter().collect::<Vec<_>>(), expected);
        let fact = SPECTRUM_SQL.split("fact_movie_analytics (").nth(1).unwrap().split("\n)").next().unwrap();
        let columns: Vec<&str> = fact.lines().filter_map(|l| l.split_whitespace().next()).collect();
        assert_eq!(columns, FACT_COLUMNS);
    }

    #[test]
    fn refuses_what_is_not_a_role_arn_or_a_plain_schema() {
        let date = NaiveDate::from_ymd_opt(2021, 10, 31).unwrap();
        for bad in [
            "",
            "arn:aws:iam::12345:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/x' CREDENTIALS 'aws_access_key_id=A",
        ] {
            assert!(
                matches!(render_load_sql("warehouse", &root(), bad, date), Err(DbError::BadRoleArn { .. })),
                "{bad}"
            );
        }
        assert!(check_role_arn("arn:aws-us-gov:iam::123456789012:role/path/name").is_ok());
        assert!(render_load_sql("ware house", &root(), ROLE, date).is_err());
        let quoted = ObjectUri::parse("s3://b/it's").unwrap();
        assert!(render_load_sql("warehouse", &quoted, ROLE, date).is_err());
    }
}
