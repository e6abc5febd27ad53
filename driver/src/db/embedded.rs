//! The embedded warehouse: the same tables, views, comments and load rules as the PostgreSQL
//! warehouse ([`super::warehouse`]), in one SQLite file on this machine, so a local run without
//! a database server still ends with a queryable warehouse (`<lake>/warehouse/movie_analytics.sqlite`).
//!
//! SQLite has no COPY: its bulk path is one transaction with a prepared INSERT reused for every
//! row, which is what the load does (rows streamed from the part files, gunzipped on the fly,
//! never a whole file in memory). The id checks, the dimension merge and the fact replacement
//! are the PostgreSQL statements themselves (schema `main`), with the run date written as a
//! plain `'YYYY-MM-DD'` literal (SQLite has no `DATE '...'`). SQLite has no `COMMENT ON`: the
//! comments of `sql/warehouse/comments.sql` go into the `_column_comments` table.
//!
//! Types, as SQLite stores them: ints as INTEGER, dates as `YYYY-MM-DD` text (which sorts and
//! compares like a date), `amount_spent` as a REAL (a double: exact for the amounts here, which
//! have at most 5 decimals and 10 significant digits; sums are rounded to about 15 digits).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use rusqlite::{params_from_iter, Connection, OpenFlags, TransactionBehavior};

use super::report::{Answer, QUESTIONS};
use super::user_purchase::BlockingReader;
use super::warehouse::{
    check_header, comments, dimension_conflict_queries, dimension_merge_sql, fact_check_queries_with,
    fact_replace_sql_with, load_table, part_files, split_sql, TableLoad, WarehouseReport, DIMENSIONS, FACT_COLUMNS,
    FACT_TABLE, TABLES_SQL, VIEWS_SQL,
};
use super::DbError;
use crate::store::{ObjectStore, ObjectUri};

/// Where the embedded warehouse lives, relative to the lake folder.
pub const EMBEDDED_FILE: &str = "warehouse/movie_analytics.sqlite";

/// The table holding the comments SQLite cannot attach to its objects.
pub const COMMENTS_TABLE: &str = "_column_comments";

/// The embedded warehouse file of a lake folder.
pub fn default_path(lake_dir: &Path) -> PathBuf {
    lake_dir.join(EMBEDDED_FILE)
}

fn sqlite_err(path: &Path, action: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> DbError {
    let path = path.to_path_buf();
    let action = action.into();
    move |source| DbError::Sqlite { path, action, reason: source.to_string() }
}

/// The warehouse DDL for SQLite: no schema, no `__SCHEMA__.` prefixes.
pub fn tables_sql() -> Vec<String> {
    split_sql(&TABLES_SQL.replace("__SCHEMA__.", ""))
        .into_iter()
        .filter(|s| !s.to_ascii_uppercase().starts_with("CREATE SCHEMA"))
        .collect()
}

/// The views for SQLite: each `CREATE OR REPLACE VIEW x` becomes `DROP VIEW IF EXISTS x` and
/// `CREATE VIEW x`.
pub fn views_sql() -> Vec<String> {
    let mut out = Vec::new();
    for statement in split_sql(&VIEWS_SQL.replace("__SCHEMA__.", "")) {
        match statement.strip_prefix("CREATE OR REPLACE VIEW ") {
            Some(rest) => {
                let name = rest.split_whitespace().next().unwrap_or_default();
                out.push(format!("DROP VIEW IF EXISTS {name}"));
                out.push(format!("CREATE VIEW {rest}"));
            }
            None => out.push(statement),
        }
    }
    out
}

/// Loads the run's dims and fact from `load_root` into the SQLite file at `path` (created with
/// its folder when missing), in one transaction: on any error nothing changes. Same rules as
/// the PostgreSQL load: dims upserted by natural key with their ids (an id that would change
/// refuses the load), the run date's fact rows replaced, other dates untouched.
pub async fn load_run(
    path: &Path,
    store: Arc<dyn ObjectStore>,
    load_root: &ObjectUri,
    run_date: NaiveDate,
) -> Result<WarehouseReport, DbError> {
    let mut plan = Vec::new();
    for table in DIMENSIONS.iter().map(|d| d.table).chain([FACT_TABLE]) {
        plan.push((table, part_files(store.as_ref(), load_root, table).await?));
    }
    let path = path.to_path_buf();
    let load_root = load_root.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || load_blocking(&path, store, handle, &plan, &load_root, run_date))
        .await
        .unwrap_or_else(|e| Err(DbError::Invariant { problem: format!("the SQLite load thread failed: {e}") }))
}

type Plan = Vec<(&'static str, Vec<ObjectUri>)>;

fn load_blocking(
    path: &Path,
    store: Arc<dyn ObjectStore>,
    handle: tokio::runtime::Handle,
    plan: &Plan,
    load_root: &ObjectUri,
    run_date: NaiveDate,
) -> Result<WarehouseReport, DbError> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|source| DbError::Write { target: folder.display().to_string(), source })?;
    }
    let mut conn = Connection::open(path).map_err(sqlite_err(path, "open the embedded warehouse"))?;
    conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(sqlite_err(path, "set the busy timeout"))?;
    conn.pragma_update(None, "foreign_keys", true).map_err(sqlite_err(path, "turn on the foreign keys"))?;
    // IMMEDIATE: the write lock from the start, so two loads never interleave (readers go on).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err(path, "start the load transaction"))?;
    for statement in tables_sql() {
        tx.execute_batch(&statement).map_err(sqlite_err(path, "create the warehouse tables"))?;
    }
    let mut tables = Vec::new();
    for (table, files) in plan {
        let load = load_table(table);
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS temp.{load}; CREATE TEMP TABLE {load} AS SELECT * FROM main.{table} WHERE 0"
        ))
        .map_err(sqlite_err(path, format!("create the temp table {load}")))?;
        let columns: &[&str] = match DIMENSIONS.iter().find(|d| d.table == *table) {
            Some(dim) => dim.columns,
            None => &FACT_COLUMNS,
        };
        let mut rows = 0;
        for file in files {
            let reader = handle.block_on(async {
                let reader = store.reader(file).await?;
                super::user_purchase::maybe_gunzip(reader, &file.to_string()).await
            })?;
            let blocking = BlockingReader { handle: handle.clone(), inner: reader };
            rows += insert_file(&tx, path, blocking, &file.to_string(), &load, columns)?;
        }
        tables.push(TableLoad { table: table.to_string(), files: files.len(), rows });
    }
    for dim in &DIMENSIONS {
        let load = load_table(dim.table);
        if let Some(problem) = first_problem(&tx, path, &dimension_conflict_queries("main", dim, &load))? {
            return Err(DbError::DimIdConflict { table: dim.table.to_string(), problem });
        }
        for statement in dimension_merge_sql("main", dim, &load) {
            tx.execute(&statement, []).map_err(sqlite_err(path, format!("merge into {}", dim.table)))?;
        }
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
    let literal = format!("'{run_date}'");
    if let Some(problem) = first_problem(&tx, path, &fact_check_queries_with("main", &fact_load, run_date, &literal))? {
        return Err(DbError::BadFact { problem });
    }
    let [delete, insert] =
        <[String; 2]>::try_from(fact_replace_sql_with("main", &fact_load, &literal)).expect("two statements");
    let fact_rows_replaced = tx.execute(&delete, []).map_err(sqlite_err(path, "delete the date's fact rows"))? as u64;
    tx.execute(&insert, []).map_err(sqlite_err(path, "insert the fact rows"))?;
    for statement in views_sql() {
        tx.execute_batch(&statement).map_err(sqlite_err(path, "create the warehouse views"))?;
    }
    write_comments(&tx, path)?;
    tx.commit().map_err(sqlite_err(path, "commit the warehouse load"))?;
    tracing::info!(%run_date, fact_rows, fact_rows_replaced, path = %path.display(), "embedded warehouse loaded");
    Ok(WarehouseReport { run_date, tables, fact_rows_replaced })
}

/// Replaces the content of `_column_comments` by the comments of `sql/warehouse/comments.sql`
/// (`column_name` is empty for the comment of the table or view itself).
fn write_comments(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<(), DbError> {
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {COMMENTS_TABLE} (object_name TEXT NOT NULL, column_name TEXT NOT NULL, \
         comment TEXT NOT NULL, PRIMARY KEY (object_name, column_name)); DELETE FROM {COMMENTS_TABLE};"
    ))
    .map_err(sqlite_err(path, "create the comments table"))?;
    let mut insert = tx
        .prepare(&format!("INSERT INTO {COMMENTS_TABLE} (object_name, column_name, comment) VALUES (?1, ?2, ?3)"))
        .map_err(sqlite_err(path, "prepare the comments"))?;
    for comment in comments() {
        insert
            .execute(rusqlite::params![comment.object, comment.column.unwrap_or_default(), comment.text])
            .map_err(sqlite_err(path, "write the comments"))?;
    }
    Ok(())
}

/// Streams one part file's CSV records into the temp table with one prepared INSERT; the
/// header must name exactly the table's columns (any order). An empty field is NULL (Spark
/// writes NULL as an empty field; no dimension value or fact field is an empty string).
fn insert_file(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    reader: impl std::io::Read,
    name: &str,
    load: &str,
    columns: &[&str],
) -> Result<u64, DbError> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(false).from_reader(reader);
    let mut records = csv.records();
    let header = match records.next() {
        // Spark writes an empty file for an empty partition.
        None => return Ok(0),
        Some(Ok(record)) => record.iter().collect::<Vec<_>>().join(","),
        Some(Err(e)) => return Err(bad_file(name, e)),
    };
    let header_columns =
        check_header(&header, columns).map_err(|problem| DbError::BadLoadFile { file: name.to_string(), problem })?;
    let placeholders = (1..=header_columns.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let mut insert = tx
        .prepare(&format!("INSERT INTO temp.{load} ({}) VALUES ({placeholders})", header_columns.join(", ")))
        .map_err(sqlite_err(path, format!("prepare the insert into {load}")))?;
    let mut rows = 0u64;
    for record in records {
        let record = record.map_err(|e| bad_file(name, e))?;
        if record.len() != header_columns.len() {
            return Err(DbError::BadLoadFile {
                file: name.to_string(),
                problem: format!(
                    "record {} has {} fields, the header {}",
                    rows + 1,
                    record.len(),
                    header_columns.len()
                ),
            });
        }
        let values = record.iter().map(|v| if v.is_empty() { None } else { Some(v) });
        insert.execute(params_from_iter(values)).map_err(sqlite_err(path, format!("insert {name} into {load}")))?;
        rows += 1;
    }
    Ok(rows)
}

fn bad_file(name: &str, e: csv::Error) -> DbError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => DbError::Read { source_name: name.to_string(), source },
        kind => DbError::BadLoadFile { file: name.to_string(), problem: format!("not readable as CSV: {kind:?}") },
    }
}

fn first_problem(tx: &rusqlite::Transaction<'_>, path: &Path, queries: &[String]) -> Result<Option<String>, DbError> {
    for query in queries {
        let mut statement = tx.prepare(query).map_err(sqlite_err(path, "check the loaded rows"))?;
        let mut rows = statement.query([]).map_err(sqlite_err(path, "check the loaded rows"))?;
        if let Some(row) = rows.next().map_err(sqlite_err(path, "check the loaded rows"))? {
            let problem: String = row.get(0).map_err(sqlite_err(path, "check the loaded rows"))?;
            return Ok(Some(problem));
        }
    }
    Ok(None)
}

/// Opens the embedded warehouse read-only; a missing file says how to make one.
pub fn open_read_only(path: &Path) -> Result<Connection, DbError> {
    if !path.is_file() {
        return Err(DbError::NoEmbeddedWarehouse { path: path.to_path_buf() });
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sqlite_err(path, "open the embedded warehouse"))?;
    conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(sqlite_err(path, "set the busy timeout"))?;
    Ok(conn)
}

/// A query's column names and rows, each value as text (`None` is NULL).
pub type TextRows = (Vec<String>, Vec<Vec<Option<String>>>);

/// Runs one query and returns its columns and rows, each value as text (`None` is NULL), like
/// PostgreSQL prints them: integers as they are, reals without a trailing `.0`.
pub fn query_text(conn: &Connection, path: &Path, sql: &str, action: &str) -> Result<TextRows, DbError> {
    let mut statement = conn.prepare(sql).map_err(sqlite_err(path, action))?;
    let columns: Vec<String> = statement.column_names().into_iter().map(str::to_string).collect();
    let width = columns.len();
    let mut rows = statement.query([]).map_err(sqlite_err(path, action))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_err(path, action))? {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let value = row.get_ref(i).map_err(sqlite_err(path, action))?;
            values.push(match value {
                rusqlite::types::ValueRef::Null => None,
                rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
                rusqlite::types::ValueRef::Real(x) => Some(x.to_string()),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Some(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(values);
    }
    Ok((columns, out))
}

/// The five questions against the embedded warehouse, in one read transaction (one snapshot),
/// with exactly the SQL of `sql/questions/`.
pub fn run_report(path: &Path) -> Result<Vec<Answer>, DbError> {
    let mut conn = open_read_only(path)?;
    let tx = conn.transaction().map_err(sqlite_err(path, "start a read transaction"))?;
    let has_fact: i64 = tx
        .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [FACT_TABLE], |r| r.get(0))
        .map_err(sqlite_err(path, "look for the warehouse tables"))?;
    if has_fact == 0 {
        return Err(DbError::NoEmbeddedWarehouse { path: path.to_path_buf() });
    }
    let mut answers = Vec::new();
    for (name, question, sql) in QUESTIONS {
        let (columns, rows) = query_text(&tx, path, sql, &format!("answer {name} (sql/questions/{name}.sql)"))?;
        answers.push(Answer { name: name.to_string(), question: question.to_string(), columns, rows });
    }
    tx.commit().map_err(sqlite_err(path, "end the report transaction"))?;
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ddl_and_views_are_rendered_for_sqlite() {
        let ddl = tables_sql();
        assert!(ddl.iter().all(|s| !s.contains("__SCHEMA__") && !s.starts_with("CREATE SCHEMA")), "{ddl:?}");
        assert_eq!(ddl.len(), 6);
        let views = views_sql();
        assert_eq!(views[0], "DROP VIEW IF EXISTS v_fact_movie_analytics");
        assert!(views[1].starts_with("CREATE VIEW v_fact_movie_analytics AS"), "{}", views[1]);
        assert_eq!(views[2], "DROP VIEW IF EXISTS v_customer_spend");
        let conn = Connection::open_in_memory().unwrap();
        for statement in ddl.iter().chain(&views) {
            conn.execute_batch(statement).unwrap();
        }
    }
}
