//! Database connection: one code path for SQLite (embedded default) and PostgreSQL, chosen
//! by the URL. Also the small helpers the set-based SQL of the sync uses on both engines.

pub mod busy;
pub mod engine;
mod import_conn;
pub mod jobs;
pub mod rows;
pub mod trace;
pub mod write;

pub use import_conn::{ImportConn, RawRow};
pub use write::{WriteTxn, begin_write};

use crate::config::{DatabaseConfig, redact_url};
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, Value,
};
use std::time::Duration;

/// SQLite page cache of each connection of the jobs' pool (`PRAGMA cache_size`, negative:
/// KiB): bulk imports and digest runs reuse their pages.
const JOBS_CACHE_KIB: &str = "-65536";

/// SQLite page cache of each request connection. Requests touch a few random pages of a
/// large file, which the operating system's page cache holds for every connection at once;
/// a large private cache per connection only costs memory and lookups (measured at
/// 1,000,000 students, 4 connections: 64 MiB each served 8,500 teacher reads a second in
/// 350 MiB, 8 MiB 13,000 in 77 MiB, 2 MiB 13,000 in 45 MiB).
const REQUESTS_CACHE_KIB: &str = "-8192";

/// How long a pooled connection may sit idle before it is checked (pinged) on checkout.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(30);

/// Why the database could not be opened: one line with the cause (refused, unknown host,
/// timed out, wrong password, missing folder) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The database cannot be reached or opened.
    #[error("{0}")]
    Unreachable(String),
    /// Any other database failure while opening.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The file of a SQLite URL (`sqlite://PATH?…`, `sqlite:PATH`); `None` for PostgreSQL and
/// in-memory databases.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory");
    (!in_memory).then(|| std::path::PathBuf::from(path))
}

/// A SQLite URL with `mode=rwc` added when it names no mode, so the file is created on
/// first start whatever the operator wrote (sqlx's default opens an existing file only).
pub fn sqlite_url(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// What a pool serves, which decides how long its statements wait for a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Jobs and commands (imports, digest runs, the dispatcher, the CLI): a SQLite writer
    /// waits `database.sqlite_busy_timeout_ms` for the lock; PostgreSQL waits for row
    /// locks as long as it takes.
    Jobs,
    /// API requests and pages: a lock (SQLite's write lock; a PostgreSQL row lock, through
    /// `lock_timeout`) and a pooled connection are each waited for at most
    /// `database.request_busy_timeout_ms`; past it the request is answered 503
    /// `database_busy` (see [`busy`]).
    Requests,
}

/// Opens the database named by `config.url` for jobs and commands ([`Workload::Jobs`]).
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, ConnectError> {
    connect_for(config, Workload::Jobs).await
}

/// Opens the database named by `config.url` for `workload`, creating the SQLite file (and
/// its folder) when missing, and setting the per-connection pragmas SQLite needs for
/// concurrent use. On PostgreSQL one connection is tried first, for at most
/// `connect_timeout_seconds`, so an unreachable server fails fast with its cause.
pub async fn connect_for(
    config: &DatabaseConfig,
    workload: Workload,
) -> Result<DatabaseConnection, ConnectError> {
    let timeout = Duration::from_secs(config.connect_timeout_seconds.max(1));
    let url = if config.url.starts_with("sqlite:") {
        ensure_sqlite_folder(&config.url)?;
        sqlite_url(&config.url)
    } else {
        probe_postgres(&config.url, timeout).await?;
        config.url.clone()
    };
    let request_wait = Duration::from_millis(config.request_busy_timeout_ms.max(1));
    let (busy, acquire, lock_timeout) = match workload {
        Workload::Jobs => (
            Duration::from_millis(config.sqlite_busy_timeout_ms),
            Duration::from_secs(30),
            None,
        ),
        Workload::Requests => (request_wait, request_wait, Some(request_wait.as_millis())),
    };
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(config.pool_size())
        .min_connections(1)
        .acquire_timeout(acquire)
        // A ping on every checkout is one more round trip per statement (to the SQLite
        // worker thread, or to the PostgreSQL server): only a connection idle this long,
        // which a server or firewall may have dropped, is checked before use.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false);
    let cache_kib = match workload {
        Workload::Jobs => JOBS_CACHE_KIB,
        Workload::Requests => REQUESTS_CACHE_KIB,
    };
    options.map_sqlx_sqlite_opts(move |opts| {
        opts.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy)
            .foreign_keys(true)
            .pragma("temp_store", "FILE")
            .pragma("cache_size", cache_kib)
    });
    if let Some(ms) = lock_timeout {
        // A request that meets a row lock held by a long transaction (an import) fails
        // with 55P03 after this instead of waiting for the commit.
        options.map_sqlx_postgres_opts(move |opts| opts.options([("lock_timeout", ms)]));
    }
    tracing::debug!(url = %redact_url(&url), ?workload, "connecting to the database");
    Database::connect(options).await.map_err(|e| {
        match sqlite_file(&url) {
            Some(file) if !file.exists() => ConnectError::Unreachable(format!(
                "the SQLite file {} does not exist and the URL's mode does not create it (use ?mode=rwc): {e}",
                file.display()
            )),
            Some(file) => ConnectError::Unreachable(format!(
                "cannot open the SQLite file {}: {e}",
                file.display()
            )),
            None => ConnectError::Db(e),
        }
    })
}

/// Tries one PostgreSQL connection and names the cause when it fails.
async fn probe_postgres(url: &str, timeout: Duration) -> Result<(), ConnectError> {
    use sea_orm::sqlx::{Connection, postgres::PgConnectOptions};
    use std::str::FromStr;
    let shown = redact_url(url);
    let options = PgConnectOptions::from_str(url).map_err(|e| {
        ConnectError::Unreachable(format!("DATABASE_URL {shown} is not a PostgreSQL URL: {e}"))
    })?;
    let attempt =
        tokio::time::timeout(timeout, sea_orm::sqlx::PgConnection::connect_with(&options)).await;
    let cause = match attempt {
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            return Ok(());
        }
        Err(_) => format!("no answer within {} s (timed out)", timeout.as_secs()),
        Ok(Err(e)) => connect_cause(&e),
    };
    Err(ConnectError::Unreachable(format!(
        "cannot connect to the database at {shown}: {cause}"
    )))
}

/// The cause of a failed connection in words: refused, unknown host, timed out, or the
/// server's own message (e.g. a wrong password).
fn connect_cause(error: &sea_orm::sqlx::Error) -> String {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(io) => {
            let text = io.to_string();
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the server running and listening on that host and port?)".into()
                }
                std::io::ErrorKind::TimedOut => format!("timed out ({text})"),
                _ if text.contains("lookup address")
                    || text.contains("Name or service not known")
                    || text.contains("nodename nor servname") =>
                {
                    format!("the host name does not resolve (DNS: {text})")
                }
                _ => text,
            }
        }
        Error::Database(db) => db.message().to_string(),
        Error::Tls(e) => format!("TLS failed: {e}"),
        other => other.to_string(),
    }
}

/// The PostgreSQL advisory lock every migrating instance takes (session-scoped, on a
/// connection of its own): any number of instances may start at once on a fresh database,
/// one migrates and the others wait, then find nothing pending.
const MIGRATION_LOCK_KEY: i64 = 0x7063_6d69_6772_6174; // "pcmigrat"

/// How long a SQLite migration waits for another process that migrates the same file.
const SQLITE_MIGRATION_WAIT: Duration = Duration::from_secs(600);

/// Applies every pending migration, under a database-wide lock ([`migrate_reporting`]).
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migrate_reporting(db).await.map(|_| ())
}

/// Applies every pending migration and returns the names of those it applied, and how many
/// migrations the schema has in all. Several processes may call it at once on one database:
/// PostgreSQL serialises them with an advisory lock held on a dedicated connection for the
/// whole migration; SQLite runs the migration in one exclusive write transaction, which the
/// others wait for. The pending list is read under the lock, so the waiters apply nothing.
pub async fn migrate_reporting(db: &DatabaseConnection) -> Result<(Vec<String>, usize), DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => migrate_postgres(db).await,
        _ => migrate_sqlite(db).await,
    }
}

async fn migrate_postgres(db: &DatabaseConnection) -> Result<(Vec<String>, usize), DbErr> {
    use sea_orm::sqlx::{self, Connection};
    let to_db = |e: sqlx::Error| DbErr::Custom(format!("migration lock: {e}"));
    // Outside the pool: the lock belongs to this session, and the pool stays whole for the
    // migration itself.
    let mut session = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(to_db)?
        .detach();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut session)
        .await
        .map_err(to_db)?;
    let migrated = apply(db).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut session)
        .await;
    // Closing the session releases the lock whatever the unlock did.
    let _ = session.close().await;
    let migrated = migrated?;
    unlocked.map_err(to_db)?;
    Ok(migrated)
}

async fn migrate_sqlite(db: &DatabaseConnection) -> Result<(Vec<String>, usize), DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    let started = std::time::Instant::now();
    let txn = loop {
        // EXCLUSIVE: another process migrating the file waits here (its busy timeout, then
        // again) rather than meeting half-made tables.
        let begun = db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Exclusive),
                ..TransactionOptions::default()
            })
            .await;
        match begun {
            Ok(txn) => break txn,
            Err(e) if busy::is_busy(&e) && started.elapsed() < SQLITE_MIGRATION_WAIT => {
                tracing::info!("another process is migrating this database; waiting");
            }
            Err(e) => return Err(e),
        }
    };
    let pending = pending_names(&txn).await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await?;
    Ok((pending, Migrator::migrations().len()))
}

async fn apply(db: &DatabaseConnection) -> Result<(Vec<String>, usize), DbErr> {
    let pending = pending_names(db).await?;
    Migrator::up(db, None).await?;
    Ok((pending, Migrator::migrations().len()))
}

async fn pending_names<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_string())
        .collect())
}

fn ensure_sqlite_folder(url: &str) -> Result<(), ConnectError> {
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    // Created like the file itself (the default data/ folder, or the folder the operator
    // named); when that is impossible the line names the folder and the cause.
    std::fs::create_dir_all(parent).map_err(|e| {
        ConnectError::Unreachable(format!(
            "the folder {} of the SQLite database does not exist and cannot be created ({e}): create it, or fix DATABASE_URL",
            parent.display()
        ))
    })
}

/// Work of which a tenant runs one at a time on PostgreSQL, serialised by a
/// transaction-scoped advisory lock ([`TENANT_LOCK_SQL`]) rather than a row lock on
/// `tenants`: a row lock held for a whole import would also stop every insert that
/// references the tenant (a foreign-key check takes a key-share lock on it) and every
/// update of the row, for minutes. SQLite needs none: its write transaction is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantLock {
    /// A sync run (file import or OneRoster).
    Import = 1,
    /// A real digest run.
    Digest = 2,
    /// Counting a tenant's invitations against its limits and adding one: concurrent chat
    /// starts would otherwise each count the same total and all insert.
    Invitations = 3,
}

impl TenantLock {
    /// The advisory lock key of this kind of work for `tenant` (the kind in the top
    /// bits, the tenant id below).
    pub fn key(self, tenant: crate::domain::TenantId) -> i64 {
        ((self as i64) << 48) | (tenant.0 & 0xFFFF_FFFF_FFFF)
    }
}

/// Takes the PostgreSQL advisory lock `$1` ([`TenantLock::key`]) until the transaction
/// ends, waiting while another transaction holds it.
pub const TENANT_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1)";

/// Ids as an SQL list for `IN (…)`: `1, 2, 3` (numbers only, so nothing to escape; empty
/// when there are none).
pub fn id_list(ids: impl IntoIterator<Item = i64>) -> String {
    ids.into_iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a statement from SQL written with PostgreSQL placeholders (`$1`, `$2`, …); on
/// SQLite they become the equivalent numbered `?1`, `?2`, … (only placeholders are rewritten, see [`engine::placeholders`]).
pub fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = engine::placeholders::for_engine(backend, sql).into_owned();
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs one statement written with `$n` placeholders.
pub async fn exec<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<ExecResult, DbErr> {
    let started = std::time::Instant::now();
    let statement = stmt(conn.get_database_backend(), sql, values);
    trace::note(&statement);
    let result = conn.execute_raw(statement).await;
    log_slow(sql, started);
    result
}

/// Runs a statement the query builder made (an entity insert or update), recorded and
/// timed like [`exec`].
pub async fn exec_built<C: ConnectionTrait>(
    conn: &C,
    statement: Statement,
) -> Result<ExecResult, DbErr> {
    let started = std::time::Instant::now();
    trace::note(&statement);
    let sql = statement.sql.clone();
    let result = conn.execute_raw(statement).await;
    log_slow(&sql, started);
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
    let statement = stmt(conn.get_database_backend(), sql, values);
    trace::note(&statement);
    let result = conn.query_all_raw(statement).await;
    log_slow(sql, started);
    result
}

/// Runs a query that returns one integer column (e.g. `COUNT(*)`), read by the name the
/// query gives it; 0 when there is no row. A query with more than one column is an error
/// rather than a silent read of whichever comes first.
pub async fn count<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<i64, DbErr> {
    let rows = query(conn, sql, values).await?;
    match rows.first() {
        Some(row) => match row.column_names().as_slice() {
            [column] => row.try_get::<i64>("", column),
            columns => Err(DbErr::Custom(format!(
                "a count must return one column, this query returns {columns:?}"
            ))),
        },
        None => Ok(0),
    }
}

/// Whether a `SELECT COUNT(*) …` query counts anything.
pub async fn exists<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<bool, DbErr> {
    Ok(count(conn, sql, values).await? > 0)
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
