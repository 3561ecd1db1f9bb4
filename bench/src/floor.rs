//! The "engine floor": how long the database engine itself needs to load the same contact
//! and link rows with the plainest fast method, measured in the same run on the same
//! machine, so the import's time can be read as a multiple of it.
//!
//! - SQLite: one transaction, one prepared `INSERT` stepped once per row (through the SQLite
//!   C API on sqlx's connection handle, as the import's staging does).
//! - PostgreSQL: `COPY … FROM STDIN` into a temporary staging table, then one set-based
//!   `INSERT INTO target SELECT … FROM staging`, in one transaction.
//!
//! Both read the CSV files the same way the import does (streamed on a blocking thread,
//! overlapping with the database writes) but skip validation and normalisation, and the
//! target tables have a primary key and no other index.

use anyhow::{Context, Result, bail};
use parent_connection::db::ImportConn;
use parent_connection_testkit::generate::CONTACT_PREFIX;
use sea_orm::sqlx::{self, Acquire, AssertSqlSafe, SqlSafeStr};
use sea_orm::{DatabaseConnection, DbBackend, Value};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

const BATCH_ROWS: usize = 10_000;

/// One kind of row the floor loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Contact users of `users.csv`.
    Contacts,
    /// `relationships.csv` rows.
    Links,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Self::Contacts => "users.csv",
            Self::Links => "relationships.csv",
        }
    }
    fn table(self) -> &'static str {
        match self {
            Self::Contacts => "bench_floor_contacts",
            Self::Links => "bench_floor_links",
        }
    }
    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Contacts => &[
                "source_key",
                "given_name",
                "family_name",
                "email",
                "mobile_phone",
            ],
            Self::Links => &["student_key", "contact_key", "relationship"],
        }
    }
}

/// Rows loaded by the floor.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct FloorRows {
    /// Contact rows.
    pub contacts: u64,
    /// Link rows.
    pub links: u64,
}

impl FloorRows {
    /// Every row.
    pub fn total(&self) -> u64 {
        self.contacts + self.links
    }
}

/// What the floor does on `backend`, in a few words (for the report).
pub fn method(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "COPY FROM STDIN into a temp table + INSERT … SELECT, one transaction"
        }
        _ => "one prepared INSERT stepped per row (SQLite C API on sqlx's handle), one transaction",
    }
}

/// Loads the contacts and links of the set in `dir` into plain tables of `db` and returns
/// the row counts. Call [`cleanup`] afterwards (outside the timing).
pub async fn run(db: &DatabaseConnection, dir: &Path) -> Result<FloorRows> {
    match db.get_database_backend() {
        DbBackend::Sqlite => sqlite(db, dir).await,
        DbBackend::Postgres => postgres(db, dir).await,
        other => bail!("no engine floor for {other:?}"),
    }
}

/// Drops the floor's tables.
pub async fn cleanup(db: &DatabaseConnection) -> Result<()> {
    for kind in [Kind::Contacts, Kind::Links] {
        crate::sql::exec(
            db,
            &format!("DROP TABLE IF EXISTS {}", kind.table()),
            vec![],
        )
        .await
        .with_context(|| format!("cannot drop {}", kind.table()))?;
    }
    Ok(())
}

/// SQL built here from constant table and column names only (no input data).
fn sql(text: String) -> sqlx::SqlStr {
    AssertSqlSafe(std::sync::Arc::<str>::from(text)).into_sql_str()
}

fn create_sql(kind: Kind, backend: DbBackend) -> String {
    let id = match backend {
        DbBackend::Postgres => "id BIGSERIAL PRIMARY KEY",
        _ => "id INTEGER PRIMARY KEY",
    };
    let columns: Vec<String> = kind.columns().iter().map(|c| format!("{c} TEXT")).collect();
    format!(
        "CREATE TABLE {} ({id}, {})",
        kind.table(),
        columns.join(", ")
    )
}

async fn sqlite(db: &DatabaseConnection, dir: &Path) -> Result<FloorRows> {
    // The import's own connection type: a `BEGIN IMMEDIATE` transaction whose bulk insert
    // steps one prepared statement per row through the SQLite C API on sqlx's locked
    // handle. Executing the statement once per row through sqlx's async API instead costs a
    // round trip to sqlx's SQLite worker thread per row: measured at 60 µs per row on an
    // idle 2-vCPU VM (4.3M rows in 254 s) but 5 µs when the CPUs were busy, so it measures
    // thread wake-up latency, not the engine.
    let mut conn = ImportConn::begin(db)
        .await
        .context("cannot begin a SQLite transaction")?;
    let mut rows = FloorRows::default();
    for kind in [Kind::Contacts, Kind::Links] {
        conn.exec(&format!("DROP TABLE IF EXISTS {}", kind.table()), vec![])
            .await?;
        conn.exec(&create_sql(kind, DbBackend::Sqlite), vec![])
            .await?;
        let (mut receiver, reader) = read_rows(dir.join(kind.file()), kind);
        let mut loaded = 0u64;
        while let Some(batch) = receiver.recv().await {
            let values: Vec<Vec<Value>> = batch
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| Value::String((!v.is_empty()).then_some(v)))
                        .collect()
                })
                .collect();
            loaded += conn
                .bulk_insert(kind.table(), kind.columns(), &values)
                .await
                .with_context(|| format!("cannot insert into {}", kind.table()))?;
        }
        join_reader(reader, kind).await?;
        match kind {
            Kind::Contacts => rows.contacts = loaded,
            Kind::Links => rows.links = loaded,
        }
    }
    conn.commit()
        .await
        .context("cannot commit the SQLite floor")?;
    Ok(rows)
}

async fn postgres(db: &DatabaseConnection, dir: &Path) -> Result<FloorRows> {
    let pool = db.get_postgres_connection_pool();
    let mut conn = pool
        .acquire()
        .await
        .context("cannot get a PostgreSQL connection")?;
    let mut tx = conn
        .begin()
        .await
        .context("cannot begin a PostgreSQL transaction")?;
    let mut rows = FloorRows::default();
    for kind in [Kind::Contacts, Kind::Links] {
        let columns = kind.columns().join(", ");
        let staging = format!("{}_stage", kind.table());
        sqlx::query(sql(format!("DROP TABLE IF EXISTS {}", kind.table())))
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql(create_sql(kind, DbBackend::Postgres)))
            .execute(&mut *tx)
            .await?;
        let staging_columns: Vec<String> =
            kind.columns().iter().map(|c| format!("{c} TEXT")).collect();
        sqlx::query(sql(format!(
            "CREATE TEMPORARY TABLE {staging} ({}) ON COMMIT DROP",
            staging_columns.join(", ")
        )))
        .execute(&mut *tx)
        .await?;
        let (mut receiver, reader) = read_rows(dir.join(kind.file()), kind);
        let mut copy = tx
            .copy_in_raw(&format!(
                "COPY {staging} ({columns}) FROM STDIN (FORMAT csv)"
            ))
            .await
            .with_context(|| format!("cannot start COPY into {staging}"))?;
        let mut failure = None;
        while let Some(batch) = receiver.recv().await {
            // Unquoted empty fields are NULL in COPY's CSV format, as blanks are in the import.
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::with_capacity(batch.len() * 64));
            let mut encoded = Ok(());
            for row in &batch {
                encoded = encoded.and(writer.write_record(row));
            }
            let data = match encoded
                .map_err(anyhow::Error::from)
                .and_then(|()| writer.into_inner().map_err(|e| anyhow::anyhow!("{e}")))
            {
                Ok(data) => data,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            if let Err(e) = copy.send(data).await {
                failure = Some(anyhow::Error::from(e));
                break;
            }
        }
        if let Some(e) = failure {
            let _ = copy.abort("benchmark floor failed").await;
            return Err(e.context(format!("COPY into {staging} failed")));
        }
        let copied = copy
            .finish()
            .await
            .with_context(|| format!("COPY into {staging} failed"))?;
        join_reader(reader, kind).await?;
        let inserted = sqlx::query(sql(format!(
            "INSERT INTO {} ({columns}) SELECT {columns} FROM {staging}",
            kind.table()
        )))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("cannot insert into {}", kind.table()))?
        .rows_affected();
        if inserted != copied {
            bail!(
                "{} rows copied into {staging} but {inserted} inserted into {}",
                copied,
                kind.table()
            );
        }
        match kind {
            Kind::Contacts => rows.contacts = inserted,
            Kind::Links => rows.links = inserted,
        }
    }
    tx.commit()
        .await
        .context("cannot commit the PostgreSQL floor")?;
    Ok(rows)
}

type Reader = tokio::task::JoinHandle<Result<u64>>;

/// Streams the rows of `kind` from `path` in batches, from a blocking thread.
fn read_rows(path: PathBuf, kind: Kind) -> (mpsc::Receiver<Vec<Vec<String>>>, Reader) {
    let (sender, receiver) = mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut csv = csv::Reader::from_path(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let header = csv
            .headers()
            .with_context(|| format!("cannot read {}", path.display()))?
            .clone();
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{} has no '{name}' column", path.display()))
        };
        let picks: Vec<usize> = match kind {
            Kind::Contacts => [
                "sourcedId",
                "givenName",
                "familyName",
                "email",
                "sms",
                "phone",
            ]
            .iter()
            .map(|c| column(c))
            .collect::<Result<_>>()?,
            Kind::Links => [
                "userSourcedId",
                "relationshipUserSourcedId",
                "relationshipRole",
            ]
            .iter()
            .map(|c| column(c))
            .collect::<Result<_>>()?,
        };
        let mut record = csv::StringRecord::new();
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut read = 0;
        while csv
            .read_record(&mut record)
            .with_context(|| format!("cannot read {}", path.display()))?
        {
            let field = |i: usize| record.get(picks[i]).unwrap_or_default().to_string();
            let row = match kind {
                Kind::Contacts => {
                    if !record
                        .get(picks[0])
                        .unwrap_or_default()
                        .starts_with(CONTACT_PREFIX)
                    {
                        continue;
                    }
                    let sms = field(4);
                    vec![
                        field(0),
                        field(1),
                        field(2),
                        field(3),
                        if sms.is_empty() { field(5) } else { sms },
                    ]
                }
                Kind::Links => vec![field(0), field(1), field(2)],
            };
            batch.push(row);
            read += 1;
            if batch.len() == BATCH_ROWS
                && sender
                    .blocking_send(std::mem::replace(
                        &mut batch,
                        Vec::with_capacity(BATCH_ROWS),
                    ))
                    .is_err()
            {
                return Ok(read);
            }
        }
        if !batch.is_empty() {
            let _ = sender.blocking_send(batch);
        }
        Ok(read)
    });
    (receiver, reader)
}

async fn join_reader(reader: Reader, kind: Kind) -> Result<u64> {
    reader
        .await
        .with_context(|| format!("the reader of {} stopped", kind.file()))?
}
