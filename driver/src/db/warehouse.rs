//! The warehouse load: a run's dimensions and fact, from the CSV files the Spark jobs leave
//! under `s3://<staging>/warehouse_load/dt=D/<table>/`, into PostgreSQL with COPY, in one
//! transaction.
//!
//! Dimensions are upserted by natural key with the ids the files carry; an id that would
//! change (the warehouse already has the value under another id, or the id under another
//! value) refuses the whole load, because ids never change. The run date's fact rows are
//! replaced; other dates are untouched. The statements that merge temp tables into the
//! warehouse are shared with the Redshift rendering ([`super::redshift`]).

use bytes::Bytes;
use chrono::NaiveDate;
use futures::SinkExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};
use tokio_postgres::Transaction;

use super::user_purchase::maybe_gunzip;
use super::{check_identifier, query_err, DbError};
use crate::store::{ObjectStore, ObjectUri};

/// The warehouse DDL (`__SCHEMA__` stands for the schema).
pub const TABLES_SQL: &str = include_str!("../../../sql/warehouse/tables.sql");
/// The views BI tools read (`CREATE OR REPLACE VIEW`, `__SCHEMA__` as above).
pub const VIEWS_SQL: &str = include_str!("../../../sql/warehouse/views.sql");
/// `COMMENT ON` every table, view and column (`__SCHEMA__` as above).
pub const COMMENTS_SQL: &str = include_str!("../../../sql/warehouse/comments.sql");
/// The views of [`VIEWS_SQL`], in order.
pub const VIEWS: [&str; 2] = ["v_fact_movie_analytics", "v_customer_spend"];

/// One dimension: its table, id column, natural key and every column in file order.
#[derive(Debug, Clone, Copy)]
pub struct Dimension {
    pub table: &'static str,
    pub id: &'static str,
    pub natural_key: &'static str,
    pub columns: &'static [&'static str],
}

pub const DIMENSIONS: [Dimension; 5] = [
    Dimension {
        table: "dim_date",
        id: "id_dim_date",
        natural_key: "log_date",
        columns: &["id_dim_date", "log_date", "day", "month", "year", "season"],
    },
    Dimension {
        table: "dim_devices",
        id: "id_dim_devices",
        natural_key: "device",
        columns: &["id_dim_devices", "device"],
    },
    Dimension {
        table: "dim_location",
        id: "id_dim_location",
        natural_key: "location",
        columns: &["id_dim_location", "location", "state_code", "region"],
    },
    Dimension { table: "dim_os", id: "id_dim_os", natural_key: "os", columns: &["id_dim_os", "os"] },
    Dimension {
        table: "dim_browser",
        id: "id_dim_browser",
        natural_key: "browser",
        columns: &["id_dim_browser", "browser"],
    },
];

pub const FACT_TABLE: &str = "fact_movie_analytics";
pub const FACT_COLUMNS: [&str; 10] = [
    "customerid",
    "id_dim_date",
    "id_dim_devices",
    "id_dim_location",
    "id_dim_os",
    "id_dim_browser",
    "amount_spent",
    "review_score",
    "review_count",
    "insert_date",
];

/// The name of the temp table a table is loaded into first.
pub fn load_table(table: &str) -> String {
    format!("load_{table}")
}

/// The DDL for `schema`.
pub fn tables_sql(schema: &str) -> Result<String, DbError> {
    Ok(TABLES_SQL.replace("__SCHEMA__", check_identifier(schema)?))
}

/// The views for `schema`.
pub fn views_sql(schema: &str) -> Result<String, DbError> {
    Ok(VIEWS_SQL.replace("__SCHEMA__", check_identifier(schema)?))
}

/// The comments for `schema`.
pub fn comments_sql(schema: &str) -> Result<String, DbError> {
    Ok(COMMENTS_SQL.replace("__SCHEMA__", check_identifier(schema)?))
}

/// One comment of [`COMMENTS_SQL`]: on a table or view (`column` None) or on one of its columns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Comment {
    pub object: String,
    pub column: Option<String>,
    pub text: String,
}

/// The comments of [`COMMENTS_SQL`] as data (for a database without `COMMENT ON`).
pub fn comments() -> Vec<Comment> {
    let pattern = regex::Regex::new(
        r"(?s)^COMMENT ON (?:TABLE|VIEW|COLUMN) __SCHEMA__\.([a-z_]+)(?:\.([a-z_]+))? IS '((?:[^']|'')*)'$",
    )
    .expect("valid regex");
    split_sql(COMMENTS_SQL)
        .iter()
        .map(|statement| {
            let found = pattern.captures(statement).unwrap_or_else(|| panic!("comments.sql: unexpected `{statement}`"));
            Comment {
                object: found[1].to_string(),
                column: found.get(2).map(|c| c.as_str().to_string()),
                text: found[3].replace("''", "'"),
            }
        })
        .collect()
}

/// Splits a SQL script into statements on the `;` outside quotes, dropping `--` comments
/// (outside quotes) and empty statements.
pub fn split_sql(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            '-' if !quoted && chars.peek() == Some(&'-') => {
                for skipped in chars.by_ref() {
                    if skipped == '\n' {
                        current.push('\n');
                        break;
                    }
                }
            }
            ';' if !quoted => {
                statements.push(std::mem::take(&mut current));
            }
            _ => current.push(c),
        }
    }
    statements.push(current);
    statements.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

/// The foreign keys of the fact: (fact column, dimension table), one per dimension.
pub fn foreign_keys() -> Vec<(&'static str, &'static str)> {
    DIMENSIONS.iter().map(|d| (d.id, d.table)).collect()
}

/// Adds the fact's foreign keys that a table made before they existed lacks (PostgreSQL; a
/// new table gets them from the DDL).
pub async fn ensure_foreign_keys(client: &impl tokio_postgres::GenericClient, schema: &str) -> Result<(), DbError> {
    let schema = check_identifier(schema)?;
    let rows = client
        .query(
            "SELECT kcu.column_name::text FROM information_schema.table_constraints tc \
             JOIN information_schema.key_column_usage kcu \
               ON kcu.constraint_name = tc.constraint_name AND kcu.constraint_schema = tc.constraint_schema \
             WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = $1 AND tc.table_name = $2",
            &[&schema, &FACT_TABLE],
        )
        .await
        .map_err(query_err("read the fact's foreign keys"))?;
    let present: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for (column, table) in foreign_keys() {
        if !present.iter().any(|p| p == column) {
            client
                .batch_execute(&format!(
                    "ALTER TABLE {schema}.{FACT_TABLE} ADD FOREIGN KEY ({column}) REFERENCES {schema}.{table} ({column})"
                ))
                .await
                .map_err(query_err(format!("add the foreign key {FACT_TABLE}.{column}")))?;
        }
    }
    Ok(())
}

/// Creates or refreshes the views, the missing foreign keys and every comment (PostgreSQL).
pub async fn ensure_views_and_comments(
    client: &impl tokio_postgres::GenericClient,
    schema: &str,
) -> Result<(), DbError> {
    ensure_foreign_keys(client, schema).await?;
    client.batch_execute(&views_sql(schema)?).await.map_err(query_err("create the warehouse views"))?;
    client.batch_execute(&comments_sql(schema)?).await.map_err(query_err("comment the warehouse tables and views"))
}

/// Creates the schema and the warehouse tables if they are missing.
pub async fn ensure_tables(client: &impl tokio_postgres::GenericClient, schema: &str) -> Result<(), DbError> {
    client.batch_execute(&tables_sql(schema)?).await.map_err(query_err("create the warehouse tables"))
}

/// Updates the attributes of the dimension members already present (same id, same value)
/// and inserts the new ones. Plain SQL that PostgreSQL and Redshift both run; the id checks
/// ([`dimension_conflict_queries`]) must have passed first.
pub fn dimension_merge_sql(schema: &str, dim: &Dimension, load: &str) -> Vec<String> {
    let target = format!("{schema}.{}", dim.table);
    let attributes: Vec<&str> = dim.columns.iter().copied().filter(|c| *c != dim.id && *c != dim.natural_key).collect();
    let mut statements = Vec::new();
    if !attributes.is_empty() {
        let set = attributes.iter().map(|c| format!("{c} = l.{c}")).collect::<Vec<_>>().join(", ");
        statements.push(format!("UPDATE {target} SET {set} FROM {load} l WHERE {target}.{id} = l.{id}", id = dim.id));
    }
    let columns = dim.columns.join(", ");
    let selected = dim.columns.iter().map(|c| format!("l.{c}")).collect::<Vec<_>>().join(", ");
    statements.push(format!(
        "INSERT INTO {target} ({columns}) SELECT {selected} FROM {load} l \
         WHERE NOT EXISTS (SELECT 1 FROM {target} d WHERE d.{id} = l.{id})",
        id = dim.id
    ));
    statements
}

/// Queries that return a row describing the first id problem, or nothing when the
/// dimension can be merged: duplicates inside the file, a value whose id would change, an id
/// whose value would change.
pub fn dimension_conflict_queries(schema: &str, dim: &Dimension, load: &str) -> Vec<String> {
    let target = format!("{schema}.{}", dim.table);
    let (id, key) = (dim.id, dim.natural_key);
    vec![
        format!(
            "SELECT 'id ' || CAST({id} AS varchar) || ' appears ' || CAST(COUNT(*) AS varchar) || ' times in the load files' \
             FROM {load} GROUP BY {id} HAVING COUNT(*) > 1 LIMIT 1"
        ),
        format!(
            "SELECT 'value ' || COALESCE(CAST({key} AS varchar), 'NULL') || ' appears ' || CAST(COUNT(*) AS varchar) || ' times in the load files' \
             FROM {load} GROUP BY {key} HAVING COUNT(*) > 1 LIMIT 1"
        ),
        format!(
            "SELECT 'value ' || COALESCE(CAST(l.{key} AS varchar), 'NULL') || ' has id ' || CAST(d.{id} AS varchar) \
             || ' in the warehouse but id ' || CAST(l.{id} AS varchar) || ' in the load files' \
             FROM {load} l JOIN {target} d ON (d.{key} = l.{key} OR (d.{key} IS NULL AND l.{key} IS NULL)) \
             WHERE d.{id} <> l.{id} LIMIT 1"
        ),
        format!(
            "SELECT 'id ' || CAST(l.{id} AS varchar) || ' is ' || COALESCE(CAST(d.{key} AS varchar), 'NULL') \
             || ' in the warehouse but ' || COALESCE(CAST(l.{key} AS varchar), 'NULL') || ' in the load files' \
             FROM {load} l JOIN {target} d ON d.{id} = l.{id} \
             WHERE NOT (d.{key} = l.{key} OR (d.{key} IS NULL AND l.{key} IS NULL)) LIMIT 1"
        ),
    ]
}

/// Queries that return a row describing the first problem with the loaded fact rows, or
/// nothing: a row of another date, a key with no dimension member.
pub fn fact_check_queries(schema: &str, load: &str, run_date: NaiveDate) -> Vec<String> {
    fact_check_queries_with(schema, load, run_date, &format!("DATE '{run_date}'"))
}

/// [`fact_check_queries`] with the run date written as `date_literal` (SQLite has no `DATE '...'`).
pub fn fact_check_queries_with(schema: &str, load: &str, run_date: NaiveDate, date_literal: &str) -> Vec<String> {
    let mut queries = vec![format!(
        "SELECT CAST(COUNT(*) AS varchar) || ' fact row(s) have an insert_date other than {run_date}' \
         FROM {load} WHERE insert_date IS NULL OR insert_date <> {date_literal} HAVING COUNT(*) > 0"
    )];
    for dim in &DIMENSIONS {
        queries.push(format!(
            "SELECT CAST(COUNT(*) AS varchar) || ' fact row(s) have a {id} missing from {schema}.{table}, e.g. ' \
             || CAST(MIN(f.{id}) AS varchar) FROM {load} f \
             WHERE NOT EXISTS (SELECT 1 FROM {schema}.{table} d WHERE d.{id} = f.{id}) HAVING COUNT(*) > 0",
            id = dim.id,
            table = dim.table
        ));
    }
    queries
}

/// Replaces the run date's fact rows by the loaded ones.
pub fn fact_replace_sql(schema: &str, load: &str, run_date: NaiveDate) -> Vec<String> {
    fact_replace_sql_with(schema, load, &format!("DATE '{run_date}'"))
}

/// [`fact_replace_sql`] with the run date written as `date_literal`.
pub fn fact_replace_sql_with(schema: &str, load: &str, date_literal: &str) -> Vec<String> {
    let columns = FACT_COLUMNS.join(", ");
    vec![
        format!("DELETE FROM {schema}.{FACT_TABLE} WHERE insert_date = {date_literal}"),
        format!("INSERT INTO {schema}.{FACT_TABLE} ({columns}) SELECT {columns} FROM {load}"),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableLoad {
    pub table: String,
    pub files: usize,
    /// Rows read from the load files.
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WarehouseReport {
    pub run_date: NaiveDate,
    pub tables: Vec<TableLoad>,
    /// The run date's fact rows that were there before and were replaced.
    pub fact_rows_replaced: u64,
}

/// Loads the run's dims and fact from `load_root` (`s3://<staging>/warehouse_load/dt=D`)
/// into `schema`, in one transaction. On any error nothing changes.
pub async fn load_run(
    client: &mut tokio_postgres::Client,
    store: &dyn ObjectStore,
    schema: &str,
    load_root: &ObjectUri,
    run_date: NaiveDate,
) -> Result<WarehouseReport, DbError> {
    let ddl = tables_sql(schema)?;
    // Find every file before touching the database: a missing table fails fast.
    let mut plan = Vec::new();
    for table in DIMENSIONS.iter().map(|d| d.table).chain([FACT_TABLE]) {
        plan.push((table, part_files(store, load_root, table).await?));
    }
    let tx = client.transaction().await.map_err(query_err("start a transaction"))?;
    tx.batch_execute(&ddl).await.map_err(query_err("create the warehouse tables"))?;
    // One load at a time (two runs adding the same new member would collide); readers such as
    // `report` are not blocked.
    let all_tables: Vec<String> = plan.iter().map(|(table, _)| format!("{schema}.{table}")).collect();
    tx.batch_execute(&format!("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE", all_tables.join(", ")))
        .await
        .map_err(query_err("lock the warehouse tables for the load"))?;
    let mut tables = Vec::new();
    for (table, files) in &plan {
        let load = load_table(table);
        let columns: &[&str] = match DIMENSIONS.iter().find(|d| d.table == *table) {
            Some(dim) => dim.columns,
            None => &FACT_COLUMNS,
        };
        tx.batch_execute(&format!("CREATE TEMP TABLE {load} (LIKE {schema}.{table}) ON COMMIT DROP"))
            .await
            .map_err(query_err(format!("create the temp table {load}")))?;
        let mut rows = 0;
        for file in files {
            rows += copy_file(&tx, store, file, &load, table, columns).await?;
        }
        tables.push(TableLoad { table: table.to_string(), files: files.len(), rows });
    }
    for dim in &DIMENSIONS {
        let load = load_table(dim.table);
        if let Some(problem) = first_problem(&tx, &dimension_conflict_queries(schema, dim, &load)).await? {
            return Err(DbError::DimIdConflict { table: dim.table.to_string(), problem });
        }
        execute_all(&tx, &dimension_merge_sql(schema, dim, &load), dim.table).await?;
    }
    let fact_load = load_table(FACT_TABLE);
    let fact_rows = tables.iter().find(|t| t.table == FACT_TABLE).map_or(0, |t| t.rows);
    if fact_rows == 0 {
        return Err(DbError::BadFact {
            problem: format!(
                "the fact files under {} hold no rows: a run never loads as an empty day",
                load_root.join(FACT_TABLE)
            ),
        });
    }
    if let Some(problem) = first_problem(&tx, &fact_check_queries(schema, &fact_load, run_date)).await? {
        return Err(DbError::BadFact { problem });
    }
    let [delete, insert] =
        <[String; 2]>::try_from(fact_replace_sql(schema, &fact_load, run_date)).expect("two statements");
    let fact_rows_replaced =
        tx.execute(delete.as_str(), &[]).await.map_err(query_err("delete the date's fact rows"))?;
    tx.execute(insert.as_str(), &[]).await.map_err(query_err("insert the fact rows"))?;
    ensure_views_and_comments(&tx, schema).await?;
    tx.commit().await.map_err(query_err("commit the warehouse load"))?;
    tracing::info!(%run_date, fact_rows, fact_rows_replaced, "warehouse loaded");
    Ok(WarehouseReport { run_date, tables, fact_rows_replaced })
}

/// Checks that every table's load folder under `load_root` is a complete Spark write (its
/// `_SUCCESS` marker and at least one part file), without reading any file: what a Redshift
/// load, which reads the files itself, must know before its COPY.
pub async fn check_complete(store: &dyn ObjectStore, load_root: &ObjectUri) -> Result<(), DbError> {
    for table in DIMENSIONS.iter().map(|d| d.table).chain([FACT_TABLE]) {
        part_files(store, load_root, table).await?;
    }
    Ok(())
}

/// The Spark part files of one table, in name order (`_SUCCESS`, `.crc` and other files
/// skipped). None is an error: the job that writes the table did not run. A folder without
/// Spark's `_SUCCESS` marker (written once every part file is committed) is a write that
/// crashed or is still running: refused, never loaded in part.
pub(crate) async fn part_files(
    store: &dyn ObjectStore,
    load_root: &ObjectUri,
    table: &str,
) -> Result<Vec<ObjectUri>, DbError> {
    let folder = load_root.join(table);
    let prefix = folder.join("");
    // Only direct children: a nested folder is not part of this table.
    let children: Vec<ObjectUri> = store
        .list(&prefix)
        .await?
        .into_iter()
        .map(|meta| meta.uri)
        .filter(|uri| uri.key[prefix.key.len()..] == *uri.file_name())
        .collect();
    let files: Vec<ObjectUri> = children
        .iter()
        .filter(|uri| {
            let name = uri.file_name();
            name.starts_with("part-") && !name.ends_with(".crc")
        })
        .cloned()
        .collect();
    if files.is_empty() {
        return Err(DbError::NoPartFiles { folder: folder.to_string(), table: table.to_string() });
    }
    if !children.iter().any(|uri| uri.file_name() == "_SUCCESS") {
        return Err(DbError::IncompleteWrite { folder: folder.to_string(), table: table.to_string() });
    }
    Ok(files)
}

/// Streams one part file (gunzipped when gzip) into `COPY load FROM STDIN`, with the columns
/// in the order of the file's header, which must name exactly the table's columns.
async fn copy_file(
    tx: &Transaction<'_>,
    store: &dyn ObjectStore,
    file: &ObjectUri,
    load: &str,
    table: &str,
    columns: &[&str],
) -> Result<u64, DbError> {
    let name = file.to_string();
    let read_err = |source| DbError::Read { source_name: name.clone(), source };
    let reader = maybe_gunzip(store.reader(file).await?, &name).await?;
    let mut reader = tokio::io::BufReader::with_capacity(1 << 16, reader);
    let mut header = String::new();
    if reader.read_line(&mut header).await.map_err(read_err)? == 0 {
        // Spark writes an empty file for an empty partition.
        return Ok(0);
    }
    let header_columns =
        check_header(&header, columns).map_err(|problem| DbError::BadLoadFile { file: name.clone(), problem })?;
    let copy = format!("COPY {load} ({}) FROM STDIN (FORMAT csv)", header_columns.join(", "));
    let sink = tx.copy_in::<_, Bytes>(copy.as_str()).await.map_err(query_err(format!("start COPY of {name}")))?;
    futures::pin_mut!(sink);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer).await.map_err(read_err)?;
        if read == 0 {
            break;
        }
        sink.send(Bytes::copy_from_slice(&buffer[..read]))
            .await
            .map_err(query_err(format!("COPY {name} into {table}")))?;
    }
    sink.as_mut().finish().await.map_err(query_err(format!("COPY {name} into {table}")))
}

/// The header's column names, checked to be exactly `expected` in any order.
pub(crate) fn check_header(header: &str, expected: &[&str]) -> Result<Vec<String>, String> {
    let found: Vec<String> =
        header.trim_end_matches(['\r', '\n']).split(',').map(|c| c.trim().trim_matches('"').to_string()).collect();
    let mut sorted_found: Vec<&str> = found.iter().map(String::as_str).collect();
    sorted_found.sort_unstable();
    let mut sorted_expected = expected.to_vec();
    sorted_expected.sort_unstable();
    if sorted_found != sorted_expected {
        return Err(format!(
            "the header is `{}` but the table needs the columns {} (the Spark job and the warehouse disagree)",
            found.join(","),
            expected.join(",")
        ));
    }
    Ok(found)
}

async fn first_problem(tx: &Transaction<'_>, queries: &[String]) -> Result<Option<String>, DbError> {
    for query in queries {
        if let Some(row) = tx.query_opt(query.as_str(), &[]).await.map_err(query_err("check the loaded rows"))? {
            return Ok(Some(row.get(0)));
        }
    }
    Ok(None)
}

async fn execute_all(tx: &Transaction<'_>, statements: &[String], table: &str) -> Result<(), DbError> {
    for statement in statements {
        tx.execute(statement.as_str(), &[]).await.map_err(query_err(format!("merge into {table}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_must_name_exactly_the_tables_columns() {
        assert_eq!(check_header("os,id_dim_os\r\n", &["id_dim_os", "os"]).unwrap(), vec!["os", "id_dim_os"]);
        let err = check_header("id_dim_os,os_name\n", &["id_dim_os", "os"]).unwrap_err();
        assert!(err.contains("os_name"), "{err}");
        assert!(check_header("id_dim_os\n", &["id_dim_os", "os"]).is_err());
    }

    #[test]
    fn the_ddl_needs_a_plain_schema_name() {
        assert!(tables_sql("warehouse").unwrap().contains("warehouse.dim_os"));
        assert!(tables_sql("x; drop table y").is_err());
    }
}
