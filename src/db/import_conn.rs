//! The import's own database connection: one pooled connection held for the whole run,
//! its changes in one transaction, used through sqlx directly so that bulk loading can take the
//! fastest path each engine has: a prepared statement stepped once per row through the
//! SQLite C API, and `COPY … FROM STDIN` on PostgreSQL. Statements use the same `$n`
//! placeholders and `sea_orm::Value` parameters as [`crate::db`].

use crate as app;
use crate::db::TenantLock;
use crate::db::engine::placeholders;
use crate::domain::TenantId;
use sea_orm::sqlx::{
    self, AssertSqlSafe, Executor, Postgres, Row, Sqlite, pool::PoolConnection, postgres::PgRow,
    sqlite::SqliteRow,
};
use sea_orm::{ConnAcquireErr, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement, Value};
use std::ffi::CString;

/// A transaction on one connection of the pool. Dropped without [`ImportConn::commit`], it
/// rolls back.
pub enum ImportConn {
    /// SQLite: its transaction begins with `BEGIN IMMEDIATE` (the write lock), at once or,
    /// from [`ImportConn::begin_unlocked`], at [`ImportConn::lock`].
    Sqlite(SqliteImport),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// The SQLite connection of an import. It is closed when dropped, never handed back to the
/// pool: an open transaction is rolled back by the close, and the temporary tables go
/// with it.
pub struct SqliteImport {
    conn: PoolConnection<Sqlite>,
    /// `BEGIN IMMEDIATE` ran and neither `COMMIT` nor `ROLLBACK` since.
    locked: bool,
}

/// A row returned by [`ImportConn::query`].
pub enum RawRow {
    /// From SQLite.
    Sqlite(SqliteRow),
    /// From PostgreSQL.
    Postgres(PgRow),
}

/// Keeps the sqlx error itself (not its text), so a busy database is recognised as such
/// ([`super::busy`]).
fn err(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        e => DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(e))),
    }
}

impl RawRow {
    /// The column named `column` (as the query names it: `SELECT COUNT(*) AS n` is `n`).
    pub fn get<T>(&self, column: &str) -> Result<T, DbErr>
    where
        T: for<'r> sqlx::Decode<'r, Sqlite>
            + sqlx::Type<Sqlite>
            + for<'r> sqlx::Decode<'r, Postgres>
            + sqlx::Type<Postgres>,
    {
        match self {
            Self::Sqlite(row) => row.try_get(column).map_err(err),
            Self::Postgres(row) => row.try_get(column).map_err(err),
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                Value::BigInt(v) => query.bind(v),
                Value::Int(v) => query.bind(v),
                Value::String(v) => query.bind(v),
                Value::Bool(v) => query.bind(v),
                Value::ChronoDateTimeUtc(v) => query.bind(v),
                other => return Err(DbErr::Custom(format!("unsupported parameter {other:?}"))),
            };
        }
        query
    }};
}

impl ImportConn {
    /// Takes a connection from the pool and begins a read-write transaction.
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let mut conn = Self::begin_unlocked(db).await?;
        conn.lock().await?;
        Ok(conn)
    }

    /// Takes a connection from the pool for a run whose first part writes only temporary
    /// tables: on SQLite no transaction is open (nothing is locked) until
    /// [`ImportConn::lock`], so API writes go on meanwhile; statements before it run each
    /// on its own. On PostgreSQL, where the transaction locks no one else out, it begins
    /// at once and `lock` does nothing.
    pub async fn begin_unlocked(db: &DatabaseConnection) -> Result<Self, DbErr> {
        match db.get_database_backend() {
            DbBackend::Sqlite => {
                let mut conn = db
                    .get_sqlite_connection_pool()
                    .acquire()
                    .await
                    .map_err(err)?;
                conn.close_on_drop();
                Ok(Self::Sqlite(SqliteImport {
                    conn,
                    locked: false,
                }))
            }
            DbBackend::Postgres => Ok(Self::Postgres(
                db.get_postgres_connection_pool()
                    .begin()
                    .await
                    .map_err(err)?,
            )),
            other => Err(DbErr::Custom(format!("unsupported database {other:?}"))),
        }
    }

    /// SQLite: begins the transaction with `BEGIN IMMEDIATE`, waiting for the write lock
    /// as long as the pool's busy timeout; from here on the changes are all-or-nothing.
    /// Does nothing on PostgreSQL or when the lock is held already.
    pub async fn lock(&mut self) -> Result<(), DbErr> {
        if let Self::Sqlite(sqlite) = self
            && !sqlite.locked
        {
            sqlite.conn.execute("BEGIN IMMEDIATE").await.map_err(err)?;
            sqlite.locked = true;
        }
        Ok(())
    }

    /// Gives the transaction room for the planner's hash joins and sorts over millions of
    /// staged rows (PostgreSQL's `work_mem` and `maintenance_work_mem`; SQLite has no such
    /// limit).
    pub async fn allow_large_sorts(&mut self) -> Result<(), DbErr> {
        if let Self::Postgres(_) = self {
            self.exec("SET LOCAL work_mem = '128MB'", vec![]).await?;
            self.exec("SET LOCAL maintenance_work_mem = '256MB'", vec![])
                .await?;
        }
        Ok(())
    }

    /// Runs `work` for `tenant` one at a time: a second transaction waits here until the
    /// first ends. PostgreSQL takes the advisory lock of [`TenantLock::key`] (not a row lock
    /// on the tenant, which would stop the tenant's other writers for the whole run);
    /// SQLite's write transaction is exclusive already.
    pub async fn lock_tenant(&mut self, work: TenantLock, tenant: TenantId) -> Result<(), DbErr> {
        if let Self::Postgres(_) = self {
            self.exec(
                app::db::TENANT_LOCK_SQL,
                vec![Value::BigInt(Some(work.key(tenant)))],
            )
            .await?;
        }
        Ok(())
    }

    /// Rows per [`ImportConn::bulk_insert`] batch, from the configured size: SQLite steps
    /// one row at a time whatever the batch, so smaller batches only save memory;
    /// PostgreSQL's `COPY` is much faster in large batches.
    pub fn bulk_batch_rows(&self, configured: usize) -> usize {
        match self {
            Self::Sqlite(_) => configured.min(2_000),
            Self::Postgres(_) => configured,
        }
    }

    /// SQLite: `PRAGMA data_version`, a number that changes whenever another connection
    /// commits a change to the database (this connection's own changes leave it alone);
    /// `None` on PostgreSQL. Equal numbers before a read and after [`ImportConn::lock`]
    /// mean nothing read in between can have changed.
    pub async fn data_version(&mut self) -> Result<Option<i64>, DbErr> {
        if let Self::Sqlite(_) = self {
            let rows = self.query("PRAGMA data_version", vec![]).await?;
            return match rows.first() {
                Some(row) => Ok(Some(row.get::<i64>("data_version")?)),
                None => Ok(None),
            };
        }
        Ok(None)
    }

    /// Whether the changes are inside the transaction ([`ImportConn::lock`]).
    pub fn is_locked(&self) -> bool {
        match self {
            Self::Sqlite(sqlite) => sqlite.locked,
            Self::Postgres(_) => true,
        }
    }

    /// The engine.
    pub fn backend(&self) -> DbBackend {
        match self {
            Self::Sqlite(_) => DbBackend::Sqlite,
            Self::Postgres(_) => DbBackend::Postgres,
        }
    }

    /// Commits (SQLite: when [`ImportConn::lock`] began the transaction).
    pub async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Sqlite(mut sqlite) => sqlite.end("COMMIT").await,
            Self::Postgres(tx) => tx.commit().await.map_err(err),
        }
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), DbErr> {
        match self {
            Self::Sqlite(mut sqlite) => sqlite.end("ROLLBACK").await,
            Self::Postgres(tx) => tx.rollback().await.map_err(err),
        }
    }

    /// Runs a statement written with `$n` placeholders; returns the rows affected.
    pub async fn exec(&mut self, sql: &str, values: Vec<Value>) -> Result<u64, DbErr> {
        let sql = placeholders::for_engine(self.backend(), sql).into_owned();
        self.exec_engine_sql(sql, values).await
    }

    /// Runs a statement the query builder made for this engine (an entity insert or update,
    /// see [`crate::entities`]); returns the rows affected.
    pub async fn exec_built(&mut self, statement: Statement) -> Result<u64, DbErr> {
        let values = statement.values.map(|v| v.0).unwrap_or_default();
        self.exec_engine_sql(statement.sql, values).await
    }

    /// Runs a query the query builder made for this engine (e.g. an insert `RETURNING`).
    pub async fn query_built(&mut self, statement: Statement) -> Result<Vec<RawRow>, DbErr> {
        let values = statement.values.map(|v| v.0).unwrap_or_default();
        self.query_engine_sql(statement.sql, values).await
    }

    async fn exec_engine_sql(&mut self, sql: String, values: Vec<Value>) -> Result<u64, DbErr> {
        let started = std::time::Instant::now();
        let affected = match self {
            Self::Sqlite(sqlite) => bind_all!(sqlx::query(AssertSqlSafe(sql.clone())), values)
                .execute(&mut *sqlite.conn)
                .await
                .map_err(err)?
                .rows_affected(),
            Self::Postgres(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql.clone())), values)
                .execute(&mut **tx)
                .await
                .map_err(err)?
                .rows_affected(),
        };
        app::db::log_slow(&sql, started);
        Ok(affected)
    }

    /// Runs a query written with `$n` placeholders and returns every row.
    pub async fn query(&mut self, sql: &str, values: Vec<Value>) -> Result<Vec<RawRow>, DbErr> {
        let sql = placeholders::for_engine(self.backend(), sql).into_owned();
        self.query_engine_sql(sql, values).await
    }

    async fn query_engine_sql(
        &mut self,
        sql: String,
        values: Vec<Value>,
    ) -> Result<Vec<RawRow>, DbErr> {
        let started = std::time::Instant::now();
        let rows = match self {
            Self::Sqlite(sqlite) => bind_all!(sqlx::query(AssertSqlSafe(sql.clone())), values)
                .fetch_all(&mut *sqlite.conn)
                .await
                .map_err(err)?
                .into_iter()
                .map(RawRow::Sqlite)
                .collect(),
            Self::Postgres(tx) => bind_all!(sqlx::query(AssertSqlSafe(sql.clone())), values)
                .fetch_all(&mut **tx)
                .await
                .map_err(err)?
                .into_iter()
                .map(RawRow::Postgres)
                .collect(),
        };
        app::db::log_slow(&sql, started);
        Ok(rows)
    }

    /// Runs a query returning one integer column named `n` (e.g. `SELECT COUNT(*) AS n`),
    /// 0 when there is no row or it is NULL.
    pub async fn count(&mut self, sql: &str, values: Vec<Value>) -> Result<i64, DbErr> {
        let rows = self.query(sql, values).await?;
        match rows.first() {
            Some(row) => Ok(row.get::<Option<i64>>("n")?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Streams the rows of a query returning three integer columns (NULL reads as 0) to
    /// `each`, without holding them all in memory. Parameters must be integers.
    pub async fn for_each_int3(
        &mut self,
        sql: &str,
        values: Vec<Value>,
        mut each: impl FnMut([i64; 3]),
    ) -> Result<(), DbErr> {
        let started = std::time::Instant::now();
        let sql = placeholders::for_engine(self.backend(), sql).into_owned();
        let mut ints = Vec::with_capacity(values.len());
        for value in values {
            match value {
                Value::BigInt(Some(v)) => ints.push(v),
                other => return Err(DbErr::Custom(format!("unsupported parameter {other:?}"))),
            }
        }
        match self {
            Self::Sqlite(sqlite) => {
                let mut handle = sqlite.conn.lock_handle().await.map_err(err)?;
                let raw = handle.as_raw_handle();
                // SAFETY: the handle is locked for this scope, so sqlx runs nothing else on
                // the connection meanwhile; the statement is finalized before returning.
                unsafe { sqlite_for_each_int3(raw.as_ptr(), &sql, &ints, &mut each)? }
            }
            Self::Postgres(tx) => {
                // `COPY … TO STDOUT` streams plain text lines, far cheaper per row than
                // rows of the extended protocol (docs/performance.md). COPY takes no
                // parameters: the integers (nothing else is accepted above) are written in.
                use futures_util::TryStreamExt;
                let mut inlined = sql.clone();
                for (i, v) in ints.iter().enumerate().rev() {
                    inlined = inlined.replace(&format!("${}", i + 1), &v.to_string());
                }
                let statement = format!("COPY ({inlined}) TO STDOUT");
                let mut stream = (**tx).copy_out_raw(&statement).await.map_err(err)?;
                let mut pending: Vec<u8> = Vec::new();
                while let Some(chunk) = stream.try_next().await.map_err(err)? {
                    pending.extend_from_slice(&chunk);
                    let mut start = 0;
                    while let Some(end) = pending[start..].iter().position(|b| *b == b'\n') {
                        each(parse_int3_line(&pending[start..start + end])?);
                        start += end + 1;
                    }
                    pending.drain(..start);
                }
                if !pending.is_empty() {
                    each(parse_int3_line(&pending)?);
                }
            }
        }
        app::db::log_slow(&sql, started);
        Ok(())
    }

    /// Appends `rows` (integers and texts only) to `table`: through one prepared statement
    /// stepped per row on SQLite, through `COPY … FROM STDIN (FORMAT csv)` on PostgreSQL.
    pub async fn bulk_insert(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<u64, DbErr> {
        if rows.is_empty() {
            return Ok(0);
        }
        match self {
            Self::Sqlite(sqlite) => {
                let placeholders = vec!["?"; columns.len()].join(", ");
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({placeholders})",
                    columns.join(", ")
                );
                let mut handle = sqlite.conn.lock_handle().await.map_err(err)?;
                let raw = handle.as_raw_handle();
                // SAFETY: the handle is locked for this scope, so sqlx runs nothing else on
                // the connection meanwhile; the statement is finalized before returning.
                unsafe { sqlite_bulk_insert(raw.as_ptr(), &sql, rows) }
            }
            Self::Postgres(tx) => {
                let mut data = Vec::with_capacity(rows.len() * columns.len() * 12);
                for row in rows {
                    write_csv_row(&mut data, row)?;
                }
                let statement = format!(
                    "COPY {table} ({}) FROM STDIN (FORMAT csv)",
                    columns.join(", ")
                );
                let mut copy = tx.copy_in_raw(&statement).await.map_err(err)?;
                copy.send(data).await.map_err(err)?;
                copy.finish().await.map_err(err)
            }
        }
    }
}

impl SqliteImport {
    async fn end(&mut self, statement: &'static str) -> Result<(), DbErr> {
        if self.locked {
            self.conn.execute(statement).await.map_err(err)?;
            self.locked = false;
        }
        Ok(())
    }
}

/// One CSV line for `COPY`: `None` is an unquoted empty field (NULL); text is always quoted
/// (so an empty string stays a string).
fn write_csv_row(out: &mut Vec<u8>, row: &[Value]) -> Result<(), DbErr> {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match value {
            Value::BigInt(Some(v)) => out.extend_from_slice(v.to_string().as_bytes()),
            Value::Int(Some(v)) => out.extend_from_slice(v.to_string().as_bytes()),
            Value::String(Some(text)) => {
                out.push(b'"');
                for byte in text.bytes() {
                    if byte == b'"' {
                        out.push(b'"');
                    }
                    out.push(byte);
                }
                out.push(b'"');
            }
            Value::BigInt(None) | Value::Int(None) | Value::String(None) => {}
            other => return Err(DbErr::Custom(format!("unsupported bulk value {other:?}"))),
        }
    }
    out.push(b'\n');
    Ok(())
}

/// Three integers of a `COPY … TO STDOUT` text line (tab-separated; `\\N`, NULL, reads 0).
fn parse_int3_line(line: &[u8]) -> Result<[i64; 3], DbErr> {
    let bad = || {
        DbErr::Custom(format!(
            "unexpected COPY line {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    let mut values = [0i64; 3];
    let mut fields = line.split(|b| *b == b'\t');
    for value in &mut values {
        let field = fields.next().ok_or_else(bad)?;
        if field != b"\\N" {
            *value = std::str::from_utf8(field)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(bad)?;
        }
    }
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok(values)
}

/// Steps a query with integer parameters, handing each row's first three columns to `each`.
///
/// # Safety
/// `db` must be a valid connection that nothing else uses during the call.
unsafe fn sqlite_for_each_int3(
    db: *mut libsqlite3_sys::sqlite3,
    sql: &str,
    params: &[i64],
    each: &mut impl FnMut([i64; 3]),
) -> Result<(), DbErr> {
    use libsqlite3_sys as ffi;
    let sql = CString::new(sql).map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    // SAFETY (whole block): standard use of the SQLite C API on a valid handle.
    unsafe {
        let fail = |what: &str| -> DbErr {
            let message = std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db))
                .to_string_lossy()
                .into_owned();
            DbErr::Custom(format!("database error while {what}: {message}"))
        };
        if ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
            != ffi::SQLITE_OK
        {
            return Err(fail("preparing a scan"));
        }
        for (i, v) in params.iter().enumerate() {
            ffi::sqlite3_bind_int64(stmt, (i + 1) as i32, *v);
        }
        let result = loop {
            match ffi::sqlite3_step(stmt) {
                ffi::SQLITE_ROW => each([
                    ffi::sqlite3_column_int64(stmt, 0),
                    ffi::sqlite3_column_int64(stmt, 1),
                    ffi::sqlite3_column_int64(stmt, 2),
                ]),
                ffi::SQLITE_DONE => break Ok(()),
                _ => break Err(fail("scanning")),
            }
        };
        ffi::sqlite3_finalize(stmt);
        result
    }
}

/// Inserts `rows` with one prepared statement.
///
/// # Safety
/// `db` must be a valid connection that nothing else uses during the call.
unsafe fn sqlite_bulk_insert(
    db: *mut libsqlite3_sys::sqlite3,
    sql: &str,
    rows: &[Vec<Value>],
) -> Result<u64, DbErr> {
    use libsqlite3_sys as ffi;
    let sql = CString::new(sql).map_err(|e| DbErr::Custom(e.to_string()))?;
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let fail = |db: *mut ffi::sqlite3, what: &str| -> DbErr {
        // SAFETY: `db` is valid; sqlite3_errmsg returns a NUL-terminated string it owns.
        let message = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
            .to_string_lossy()
            .into_owned();
        DbErr::Custom(format!("database error while {what}: {message}"))
    };
    // SAFETY (whole block): standard use of the SQLite C API on a valid handle; every
    // pointer passed comes from a live Rust value; SQLITE_TRANSIENT makes SQLite copy text.
    unsafe {
        if ffi::sqlite3_prepare_v2(db, sql.as_ptr(), -1, &mut stmt, std::ptr::null_mut())
            != ffi::SQLITE_OK
        {
            return Err(fail(db, "preparing a bulk insert"));
        }
        let mut inserted = 0u64;
        let mut result = Ok(());
        'rows: for row in rows {
            for (i, value) in row.iter().enumerate() {
                let index = (i + 1) as i32;
                let rc = match value {
                    Value::BigInt(Some(v)) => ffi::sqlite3_bind_int64(stmt, index, *v),
                    Value::Int(Some(v)) => ffi::sqlite3_bind_int64(stmt, index, i64::from(*v)),
                    Value::String(Some(text)) => ffi::sqlite3_bind_text(
                        stmt,
                        index,
                        text.as_ptr().cast(),
                        text.len() as i32,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    _ => ffi::sqlite3_bind_null(stmt, index),
                };
                if rc != ffi::SQLITE_OK {
                    result = Err(fail(db, "binding a bulk insert value"));
                    break 'rows;
                }
            }
            if ffi::sqlite3_step(stmt) != ffi::SQLITE_DONE {
                result = Err(fail(db, "bulk inserting"));
                break;
            }
            ffi::sqlite3_reset(stmt);
            inserted += 1;
        }
        ffi::sqlite3_finalize(stmt);
        result.map(|()| inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_int3_line;

    #[test]
    fn copy_lines_read_as_three_integers() {
        assert_eq!(parse_int3_line(b"-12\t34\t1").unwrap(), [-12, 34, 1]);
        assert_eq!(parse_int3_line(b"\\N\t\\N\t0").unwrap(), [0, 0, 0]);
        assert!(parse_int3_line(b"1\t2").is_err());
        assert!(parse_int3_line(b"1\t2\t3\t4").is_err());
        assert!(parse_int3_line(b"1\tx\t3").is_err());
    }
}
