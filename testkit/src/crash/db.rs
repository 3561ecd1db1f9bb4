//! The databases of a crash run: a template per operation (made once, the slow part) and a
//! fresh copy of it for every trial (a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on
//! PostgreSQL), and the SQL the checks read, written once with `$n` placeholders.

use crate::pg;
use anyhow::{Context, Result};
use sea_orm::sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use std::path::{Path, PathBuf};

/// The database engine a run uses.
#[derive(Debug, Clone)]
pub enum Engine {
    /// SQLite files in the work folder.
    Sqlite,
    /// Databases created on the server of this admin URL (a role that may CREATE DATABASE).
    Postgres {
        /// Admin URL.
        admin_url: String,
    },
}

impl Engine {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// Where the databases of one run live.
#[derive(Debug, Clone)]
pub struct Databases {
    engine: Engine,
    work: PathBuf,
    prefix: String,
}

impl Databases {
    /// Databases of `engine` under `work` (SQLite) or named `crash_<pid>_…` (PostgreSQL).
    pub fn new(engine: Engine, work: &Path) -> Self {
        Self {
            engine,
            work: work.to_path_buf(),
            prefix: format!("crash_{}", std::process::id()),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn sqlite_file(&self, name: &str) -> PathBuf {
        self.work.join(name).join("db.sqlite")
    }

    /// A new empty database `name` (an old one is removed); its URL.
    pub async fn create(&self, name: &str) -> Result<String> {
        match &self.engine {
            Engine::Sqlite => {
                let file = self.sqlite_file(name);
                let dir = file.parent().context("no folder")?;
                remove_dir(dir)?;
                std::fs::create_dir_all(dir)?;
                Ok(format!("sqlite://{}?mode=rwc", file.display()))
            }
            Engine::Postgres { admin_url } => {
                pg::create_database(admin_url, &format!("{}_{name}", self.prefix)).await
            }
        }
    }

    /// A fresh copy `name` of the template `template` (which no session may use); its URL.
    pub async fn copy(&self, template: &str, name: &str) -> Result<String> {
        match &self.engine {
            Engine::Sqlite => {
                let url = self.create(name).await?;
                let (from, to) = (self.sqlite_file(template), self.sqlite_file(name));
                std::fs::copy(&from, &to)
                    .with_context(|| format!("cannot copy {}", from.display()))?;
                Ok(url)
            }
            Engine::Postgres { admin_url } => {
                let target = format!("{}_{name}", self.prefix);
                pg::drop_database(admin_url, &target).await?;
                let mut admin = PgConnection::connect(admin_url).await?;
                admin
                    .execute(AssertSqlSafe(format!(
                        "CREATE DATABASE \"{target}\" TEMPLATE \"{}_{template}\"",
                        self.prefix
                    )))
                    .await
                    .with_context(|| format!("cannot copy the template {template}"))?;
                admin.close().await.ok();
                let url = pg::with_database(admin_url, &target)?;
                relog_sequences(&url).await?;
                Ok(url)
            }
        }
    }

    /// Makes `name` safe to copy: on SQLite its write-ahead log folded into the file.
    pub async fn seal(&self, url: &str) -> Result<()> {
        if let Engine::Sqlite = self.engine {
            let db = connect(url).await?;
            exec(&db, "PRAGMA wal_checkpoint(TRUNCATE)", vec![]).await?;
            db.close().await?;
        }
        Ok(())
    }

    /// Removes the database `name`.
    pub async fn drop(&self, name: &str) -> Result<()> {
        match &self.engine {
            Engine::Sqlite => remove_dir(self.sqlite_file(name).parent().context("no folder")?),
            Engine::Postgres { admin_url } => {
                pg::drop_database(admin_url, &format!("{}_{name}", self.prefix)).await
            }
        }
    }
}

/// Writes every sequence of the copy at `url` to the write-ahead log again. A copied
/// sequence keeps the template's `log_cnt` (values already logged ahead, but logged for the
/// template's files): its next values are not logged, and a server crash then turns it
/// back below ids already committed (measured: audit_log's sequence at 11 with id 16 in the
/// table, and the next insert a duplicate key). `setval` logs the sequence afresh.
async fn relog_sequences(url: &str) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute(
        "DO $$ DECLARE r record; BEGIN \
         FOR r IN SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE last_value IS NOT NULL LOOP \
         PERFORM setval(format('%I.%I', r.schemaname, r.sequencename), r.last_value, true); \
         END LOOP; END $$",
    )
    .await
    .context("cannot log the copied sequences")?;
    conn.close().await.ok();
    Ok(())
}

/// Removes `dir` and what it holds; a folder that is not there is fine.
pub fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", dir.display())),
    }
}

/// A connection for the checks (one connection: nothing here runs in parallel).
pub async fn connect(url: &str) -> Result<DatabaseConnection> {
    let mut options = sea_orm::ConnectOptions::new(url.to_string());
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options)
        .await
        .with_context(|| format!("cannot open {}", pg::redact_url(url)))
}

fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = if backend == DbBackend::Sqlite {
        sql.replace('$', "?")
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Runs one statement; the rows it changed.
pub async fn exec<C: ConnectionTrait>(conn: &C, sql: &str, values: Vec<Value>) -> Result<u64> {
    let statement = statement(conn.get_database_backend(), sql, values);
    Ok(conn
        .execute_raw(statement)
        .await
        .with_context(|| sql.chars().take(80).collect::<String>())?
        .rows_affected())
}

/// The column `column` of every row, read as `T`.
async fn column<C: ConnectionTrait, T: sea_orm::TryGetable>(
    conn: &C,
    sql: &str,
    column: &str,
) -> Result<Vec<T>> {
    let statement = statement(conn.get_database_backend(), sql, vec![]);
    let rows = conn
        .query_all_raw(statement)
        .await
        .with_context(|| sql.to_string())?;
    rows.iter()
        .map(|row| Ok(row.try_get::<T>("", column)?))
        .collect()
}

/// The integer column `n` of every row.
pub async fn ints<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<Vec<i64>> {
    column(conn, sql, "n").await
}

/// The integer column `n` of the first row (0 without a row).
pub async fn int<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<i64> {
    Ok(ints(conn, sql).await?.first().copied().unwrap_or(0))
}

/// The text column `t` of every row.
pub async fn texts<C: ConnectionTrait>(conn: &C, sql: &str) -> Result<Vec<String>> {
    column(conn, sql, "t").await
}

/// `PRAGMA integrity_check` on SQLite (`ok` when sound); PostgreSQL recovers its own
/// files from its write-ahead log, so the check there is that every table reads whole.
pub async fn integrity(conn: &DatabaseConnection) -> Result<String> {
    if conn.get_database_backend() == DbBackend::Sqlite {
        let rows = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await?;
        let lines: Vec<String> = rows
            .iter()
            .filter_map(|row| row.try_get_by_index::<String>(0).ok())
            .collect();
        return Ok(lines.join("; "));
    }
    for table in [
        "contacts",
        "student_contacts",
        "outbox",
        "digest_deliveries",
        "contact_requests",
        "sync_runs",
    ] {
        int(conn, &format!("SELECT COUNT(*) AS n FROM {table}")).await?;
    }
    Ok("ok".into())
}
