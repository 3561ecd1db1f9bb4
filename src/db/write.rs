//! Read-write transactions ([`begin_write`]) and, on SQLite, the queue in front of them.
//!
//! SQLite lets one connection write at a time. Left to itself, a connection that finds the
//! write lock taken retries on SQLite's busy handler, which sleeps 1, 2, 5, 10 … 100 ms
//! between tries: under a steady stream of small writes (a school day: contact requests,
//! chat starts, assignment upserts) the unlucky writer sleeps far longer than the lock is
//! held (measured: p99 of writes 25–69 ms, maxima ~200 ms, at 200 writes/s), and it keeps
//! a pooled connection the whole time, so reads queue behind it. So the writers of this
//! process take turns on an async queue per database file first (FIFO, woken the moment the
//! previous writer commits), without holding a connection while they wait; the queue is
//! waited for at most the pool's acquire timeout (`database.request_busy_timeout_ms` for
//! requests), then the write fails as busy (503 `database_busy`, see [`super::busy`]).
//! Writers of other processes (a CLI import beside `serve`) still meet SQLite's own busy
//! timeout. PostgreSQL locks rows, not the database: no queue.

use sea_orm::{
    AccessMode, ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The writers' queue of each SQLite file this process has opened.
static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// This writer's turn on a SQLite file: held until the transaction ends.
pub type Turn = OwnedMutexGuard<()>;

/// Waits for this process's turn to write to the SQLite database of `db` (module docs), at
/// most the pool's acquire timeout; `None` on PostgreSQL and for in-memory databases.
pub async fn turn(db: &DatabaseConnection) -> Result<Option<Turn>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let pool = db.get_sqlite_connection_pool();
    let options = pool.connect_options();
    let file = options.get_filename();
    if file.as_os_str().is_empty() || file.as_os_str() == ":memory:" {
        return Ok(None);
    }
    let queue = {
        let mut queues = QUEUES.lock().unwrap_or_else(|e| e.into_inner());
        queues.entry(file.to_path_buf()).or_default().clone()
    };
    let wait = pool.options().get_acquire_timeout();
    match tokio::time::timeout(wait, queue.lock_owned()).await {
        Ok(turn) => Ok(Some(turn)),
        Err(_) => Err(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)),
    }
}

/// A read-write transaction begun by [`begin_write`]: use it as any connection, then
/// [`WriteTxn::commit`]. Dropped without a commit, it rolls back.
pub struct WriteTxn {
    // Declared first so it ends (rolls back when dropped) before the turn passes on.
    txn: DatabaseTransaction,
    _turn: Option<Turn>,
}

impl WriteTxn {
    /// Commits the transaction, then lets the next writer of the file go.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    /// Rolls the transaction back, then lets the next writer of the file go.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// Begins a read-write transaction. On SQLite it waits for this process's turn ([`turn`]),
/// then runs `BEGIN IMMEDIATE`, so a transaction that reads and then writes never fails
/// half-way with "database is locked". On PostgreSQL it is READ COMMITTED.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let turn = turn(db).await?;
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let txn = db
        .begin_with_options(TransactionOptions {
            isolation_level: (!sqlite).then_some(IsolationLevel::ReadCommitted),
            access_mode: (!sqlite).then_some(AccessMode::ReadWrite),
            sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
        })
        .await?;
    Ok(WriteTxn { txn, _turn: turn })
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}
