//! Database connection: one code path for SQLite (embedded default) and PostgreSQL, chosen
//! by the URL. Also the small helpers the set-based SQL of the sync uses on both engines.

mod import_conn;

pub use import_conn::{ImportConn, RawRow};

use crate::config::{DatabaseConfig, redact_url};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};
use std::time::Duration;

/// Opens the database named by `config.url`, creating the SQLite file (and its folder) when
/// missing, and setting the per-connection pragmas SQLite needs for concurrent use.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    if config.url.starts_with("sqlite:") {
        ensure_sqlite_folder(&config.url)?;
    }
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(config.max_connections.max(1))
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    let busy = Duration::from_millis(config.sqlite_busy_timeout_ms);
    options.map_sqlx_sqlite_opts(move |opts| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy)
            .foreign_keys(true)
            .pragma("temp_store", "FILE")
            .pragma("cache_size", "-65536")
    });
    tracing::debug!(url = %redact_url(&config.url), "connecting to the database");
    Database::connect(options).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

fn ensure_sqlite_folder(url: &str) -> Result<(), DbErr> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            DbErr::Custom(format!(
                "cannot create the folder {} for the database: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

/// Begins a read-write transaction. On SQLite it is `BEGIN IMMEDIATE`, so a transaction that
/// reads and then writes never fails half-way with "database is locked".
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    db.begin_with_options(TransactionOptions {
        isolation_level: (!sqlite).then_some(IsolationLevel::ReadCommitted),
        access_mode: (!sqlite).then_some(AccessMode::ReadWrite),
        sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
    })
    .await
}

/// Ids as an SQL list for `IN (…)`: `1, 2, 3` (numbers only, so nothing to escape; empty
/// when there are none).
pub fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a statement from SQL written with PostgreSQL placeholders (`$1`, `$2`, …); on
/// SQLite they become the equivalent numbered `?1`, `?2`, …
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs one statement written with `$n` placeholders.
pub async fn exec<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<ExecResult, DbErr> {
    let started = std::time::Instant::now();
    let result = conn
        .execute_raw(stmt(conn.get_database_backend(), sql, values))
        .await;
    log_slow(sql, started);
    result
}

/// Logs statements slower than 100 ms at debug level (the SQL only: never the values).
pub fn log_slow(sql: &str, started: std::time::Instant) {
    let elapsed = started.elapsed();
    if elapsed.as_millis() >= 100 {
        let head: String = sql.chars().take(160).collect();
        tracing::debug!(ms = elapsed.as_millis() as u64, sql = %head, "slow statement");
    }
}

/// Runs a query written with `$n` placeholders and returns every row.
pub async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    let started = std::time::Instant::now();
    let result = conn
        .query_all_raw(stmt(conn.get_database_backend(), sql, values))
        .await;
    log_slow(sql, started);
    result
}

/// Runs a query that returns one integer (e.g. `COUNT(*)`).
pub async fn count<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<i64, DbErr> {
    let rows = query(conn, sql, values).await?;
    match rows.first() {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}

/// A `WHERE` clause built from optional filters, with `$n` placeholders numbered in order.
pub struct Filters {
    sql: String,
    values: Vec<Value>,
}

impl Filters {
    /// Starts from `base` (which may already use `$1` … `$n` for `values`).
    pub fn new(base: &str, values: Vec<Value>) -> Self {
        Self {
            sql: base.to_string(),
            values,
        }
    }

    /// Appends ` AND {condition} $n` binding `value` (e.g. `and("r.status =", …)`).
    pub fn and(&mut self, condition: &str, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        self.sql
            .push_str(&format!(" AND {condition} ${}", self.values.len()));
        self
    }

    /// The SQL with `tail` appended (ordering, limit), and its values.
    pub fn finish(self, tail: &str) -> (String, Vec<Value>) {
        (format!("{} {tail}", self.sql), self.values)
    }
}

/// Cuts a page fetched with `LIMIT limit + 1` to `limit` items; the cursor of the next
/// page is `cursor` of the last item kept, `None` on the last page.
pub fn page<T>(
    mut items: Vec<T>,
    limit: u64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if items.len() as u64 > limit {
        items.truncate(limit as usize);
        let next = items.last().map(cursor);
        (items, next)
    } else {
        (items, None)
    }
}
