//! Staging: each file set is first loaded, row by row as it is parsed, into temporary
//! tables in canonical shape; cross-file checks and the reconcile are then set-based SQL
//! over them. Temporary tables live inside the import transaction, so a run that fails or
//! is killed leaves nothing behind.

use crate::db;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Value};
use tokio::sync::mpsc;

/// The staging tables. Every one starts with `src` (index of the file in the run's file
/// list) and `rec` (record number in that file), so any row can be reported precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageTable {
    /// Schools / orgs.
    Schools,
    /// SDS v2.1 `users.csv`, before users are split into students, staff and contacts.
    Users,
    /// SDS v2.1 `roles.csv`.
    Roles,
    /// Students.
    Students,
    /// Teachers and other staff.
    Staff,
    /// Classes / sections.
    Classes,
    /// Enrollments (`role` = `student` | `teacher`).
    Enrollments,
    /// Contacts in canonical shape.
    Contacts,
    /// Student–contact links.
    Links,
}

impl StageTable {
    /// Every staging table.
    pub const ALL: [StageTable; 9] = [
        Self::Schools,
        Self::Users,
        Self::Roles,
        Self::Students,
        Self::Staff,
        Self::Classes,
        Self::Enrollments,
        Self::Contacts,
        Self::Links,
    ];

    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Schools => "s_schools",
            Self::Users => "s_users",
            Self::Roles => "s_roles",
            Self::Students => "s_students",
            Self::Staff => "s_staff",
            Self::Classes => "s_classes",
            Self::Enrollments => "s_enrollments",
            Self::Contacts => "s_contacts",
            Self::Links => "s_links",
        }
    }

    /// Text columns after `src, rec`, in the order rows supply them.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Schools => &["source_id", "name"],
            Self::Users => &[
                "source_id",
                "given_name",
                "family_name",
                "email",
                "mobile_phone",
                "email_warning",
                "phone_column",
                "phone_warning",
            ],
            Self::Roles => &["user_id", "org_id", "role"],
            Self::Students => &["source_id", "given_name", "family_name"],
            Self::Staff => &["source_id", "given_name", "family_name", "email", "role"],
            Self::Classes => &["source_id", "school_source_id", "title"],
            Self::Enrollments => &["class_id", "person_id", "role"],
            Self::Contacts => &[
                "source_key",
                "source_id",
                "given_name",
                "family_name",
                "email",
                "mobile_phone",
                "email_column",
                "email_warning",
                "phone_column",
                "phone_warning",
            ],
            Self::Links => &["student_id", "contact_key", "relationship"],
        }
    }

    /// Indexes created once the table is loaded (for the checks and the reconcile).
    fn indexes(self) -> &'static [&'static str] {
        match self {
            Self::Schools | Self::Students | Self::Staff | Self::Classes | Self::Users => {
                &["source_id"]
            }
            Self::Roles => &["user_id, role"],
            Self::Enrollments => &["class_id, role, person_id"],
            Self::Contacts => &["source_key"],
            Self::Links => &["student_id, contact_key", "contact_key"],
        }
    }
}

/// Creates every staging table, empty, inside `txn`.
pub async fn create_tables(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    for table in StageTable::ALL {
        let name = table.name();
        if backend == DbBackend::Sqlite {
            db::exec(txn, &format!("DROP TABLE IF EXISTS temp.{name}"), vec![]).await?;
        }
        let columns: Vec<String> = table
            .columns()
            .iter()
            .map(|c| format!("{c} TEXT"))
            .collect();
        let on_commit = if backend == DbBackend::Postgres {
            " ON COMMIT DROP"
        } else {
            ""
        };
        db::exec(
            txn,
            &format!("CREATE TEMPORARY TABLE {name} (src BIGINT NOT NULL, rec BIGINT NOT NULL, {}){on_commit}", columns.join(", ")),
            vec![],
        )
        .await?;
    }
    Ok(())
}

/// Indexes the loaded staging tables and refreshes the planner's statistics.
pub async fn index_tables(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    for table in StageTable::ALL {
        for (i, columns) in table.indexes().iter().enumerate() {
            let name = table.name();
            db::exec(
                txn,
                &format!("CREATE INDEX {name}_ix{i} ON {name} ({columns})"),
                vec![],
            )
            .await?;
        }
    }
    analyze(txn).await
}

/// Refreshes planner statistics for the staging tables.
pub async fn analyze(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    for table in StageTable::ALL {
        let target = match txn.get_database_backend() {
            DbBackend::Sqlite => format!("temp.{}", table.name()),
            _ => table.name().to_string(),
        };
        db::exec(txn, &format!("ANALYZE {target}"), vec![]).await?;
    }
    Ok(())
}

/// Drops the staging tables (SQLite keeps temporary tables for the life of the pooled
/// connection; PostgreSQL drops them at commit by itself).
pub async fn drop_tables(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Sqlite {
        for table in StageTable::ALL {
            db::exec(
                txn,
                &format!("DROP TABLE IF EXISTS temp.{}", table.name()),
                vec![],
            )
            .await?;
        }
    }
    Ok(())
}

/// Rows for one staging table, `src` and `rec` first.
#[derive(Debug)]
pub struct Batch {
    /// Destination.
    pub table: StageTable,
    /// Rows: `src`, `rec`, then one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// Inserts a batch with multi-row `INSERT` statements sized under the engine's
/// bind-parameter limit. Returns the rows inserted.
pub async fn insert_batch(
    txn: &DatabaseTransaction,
    batch: Batch,
    rows_per_statement: usize,
) -> Result<u64, DbErr> {
    let width = batch.table.columns().len() + 2;
    let limit = match txn.get_database_backend() {
        DbBackend::Sqlite => 32_000,
        _ => 65_000,
    };
    let per_statement = rows_per_statement.clamp(1, limit / width);
    let head = format!(
        "INSERT INTO {} (src, rec, {}) VALUES ",
        batch.table.name(),
        batch.table.columns().join(", ")
    );
    let mut inserted = 0;
    let mut rows = batch.rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Value>> = rows.by_ref().take(per_statement).collect();
        let mut sql = String::with_capacity(head.len() + chunk.len() * width * 6);
        sql.push_str(&head);
        let mut values = Vec::with_capacity(chunk.len() * width);
        for (r, row) in chunk.into_iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ",(" });
            for (c, value) in row.into_iter().enumerate() {
                if c > 0 {
                    sql.push(',');
                }
                values.push(value);
                sql.push('$');
                sql.push_str(&values.len().to_string());
            }
            sql.push(')');
        }
        inserted += db::exec(txn, &sql, values).await?.rows_affected();
    }
    Ok(inserted)
}

/// The parser's side of staging: buffers rows per table and hands full batches to the
/// database task through a bounded channel (so parsing and writing overlap, in bounded
/// memory).
pub struct Stager {
    sender: mpsc::Sender<Batch>,
    buffers: Vec<(StageTable, Vec<Vec<Value>>)>,
    batch_rows: usize,
    closed: bool,
}

impl Stager {
    /// A stager sending batches of `batch_rows` rows.
    pub fn new(sender: mpsc::Sender<Batch>, batch_rows: usize) -> Self {
        Self {
            sender,
            buffers: Vec::new(),
            batch_rows: batch_rows.max(1) * 4,
            closed: false,
        }
    }

    /// Queues one row for `table`: `src`, `rec`, then the column values as text.
    pub fn push(&mut self, table: StageTable, src: usize, rec: u64, values: Vec<Option<String>>) {
        if self.closed {
            return;
        }
        debug_assert_eq!(values.len(), table.columns().len());
        let mut row = Vec::with_capacity(values.len() + 2);
        row.push(Value::BigInt(Some(src as i64)));
        row.push(Value::BigInt(Some(rec as i64)));
        row.extend(values.into_iter().map(Value::String));
        let index = match self.buffers.iter().position(|(t, _)| *t == table) {
            Some(i) => i,
            None => {
                self.buffers.push((table, Vec::new()));
                self.buffers.len() - 1
            }
        };
        self.buffers[index].1.push(row);
        if self.buffers[index].1.len() >= self.batch_rows {
            let rows = std::mem::take(&mut self.buffers[index].1);
            self.send(Batch { table, rows });
        }
    }

    /// Sends every buffered row.
    pub fn flush(&mut self) {
        for (table, rows) in std::mem::take(&mut self.buffers) {
            if !rows.is_empty() {
                self.send(Batch { table, rows });
            }
        }
    }

    /// False once the database side has stopped listening (it failed); parsing can stop.
    pub fn is_open(&self) -> bool {
        !self.closed
    }

    fn send(&mut self, batch: Batch) {
        if self.sender.blocking_send(batch).is_err() {
            self.closed = true;
        }
    }
}
