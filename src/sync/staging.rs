//! Staging: each file set is first loaded, row by row as it is parsed, into temporary
//! tables in canonical shape; cross-file checks and the reconcile are then set-based SQL
//! over them. Temporary tables live inside the import transaction, so a run that fails or
//! is killed leaves nothing behind.

use super::hashing::{SyncKey, hash_values};
use crate::db::ImportConn;
use crate::db::engine::temp;
use sea_orm::{DbErr, Value};
use tokio::sync::mpsc;

/// The staging tables. Every one starts with `src` (index of the file in the run's file
/// list) and `rec` (record number in that file), so any row can be reported precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageTable {
    /// Schools / orgs.
    Schools,
    /// SDS v2.1 `users.csv` as the exact rules read it (its ids), before users are split
    /// into students and staff. Only collected in memory by the report pass, never written
    /// to the database (see [`StageTable::STAGED`]).
    Users,
    /// SDS v2.1 `roles.csv` as the exact rules read it: `role` as SDS writes it,
    /// `role_group` = `staff` | `student` | `none`. Only collected in memory, like
    /// [`StageTable::Users`].
    Roles,
    /// Students.
    Students,
    /// Teachers and other staff.
    Staff,
    /// Classes / sections.
    Classes,
    /// Enrollments (`role` = `student` | `teacher`, see [`crate::domain::EnrollmentKind`]).
    Enrollments,
    /// Contacts in canonical shape.
    Contacts,
    /// Student–contact links.
    Links,
}

impl StageTable {
    /// Every table the readers write to the database (the diffed pipeline stages rows of
    /// these only; [`StageTable::Users`] and [`StageTable::Roles`] exist only for the
    /// report pass's rules, in memory).
    pub const STAGED: [StageTable; 7] = [
        Self::Schools,
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
            Self::Users => &["source_id"],
            Self::Roles => &["user_id", "org_id", "role", "role_group"],
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
                "preferred_language",
                "email_column",
                "email_warning",
                "phone_column",
                "phone_warning",
            ],
            Self::Links => &["student_id", "contact_key", "relationship"],
        }
    }

    /// How many leading columns form the row's natural key, for tables whose rows carry
    /// `sync_key` / `sync_hash` (see [`super::hashing`]); `None` for the others.
    pub fn key_len(self) -> Option<usize> {
        match self {
            Self::Students | Self::Contacts => Some(1),
            Self::Links => Some(2),
            Self::Enrollments => Some(3),
            _ => None,
        }
    }

    /// The position of a column that counts in the row's hash only when it holds a value:
    /// the contact's `preferred_language`, added after rows were hashed without it, so a
    /// source that gives none (OneRoster) hashes as it did before the column existed.
    fn hashed_only_when_given(self) -> Option<usize> {
        match self {
            Self::Contacts => self
                .columns()
                .iter()
                .position(|c| *c == "preferred_language"),
            _ => None,
        }
    }

    /// Indexes created once the table is loaded (for the checks and the reconcile).
    fn indexes(self) -> &'static [&'static str] {
        match self {
            Self::Schools | Self::Students | Self::Staff | Self::Classes => &["source_id"],
            Self::Users | Self::Roles => &[],
            Self::Enrollments => &["class_id, role, person_id"],
            Self::Contacts => &["source_key"],
            Self::Links => &["student_id, contact_key", "contact_key"],
        }
    }
}

/// Creates every staging table, empty, inside the import transaction.
pub async fn create_tables(conn: &mut ImportConn) -> Result<(), DbErr> {
    for table in StageTable::STAGED {
        let columns: Vec<String> = table
            .columns()
            .iter()
            .map(|c| format!("{c} TEXT"))
            .collect();
        temp::create(
            conn,
            table.name(),
            &format!(
                "src BIGINT NOT NULL, rec BIGINT NOT NULL, sync_key BIGINT, sync_hash BIGINT, {}",
                columns.join(", ")
            ),
        )
        .await?;
    }
    temp::create(conn, GONE, "tbl TEXT NOT NULL, k BIGINT NOT NULL").await
}

/// Keys (`sync_key`) of live rows that a diffed import found absent from the snapshot, by
/// live table name (`tbl`): the rows to deactivate.
pub const GONE: &str = "s_gone";

/// Stages the keys of live rows of `table` that the snapshot no longer holds.
pub async fn insert_gone(conn: &mut ImportConn, table: &str, keys: &[i64]) -> Result<(), DbErr> {
    for chunk in keys.chunks(20_000) {
        let rows: Vec<Vec<Value>> = chunk
            .iter()
            .map(|k| {
                vec![
                    Value::String(Some(table.to_string())),
                    Value::BigInt(Some(*k)),
                ]
            })
            .collect();
        conn.bulk_insert(GONE, &["tbl", "k"], &rows).await?;
    }
    Ok(())
}

/// Indexes the loaded staging tables and refreshes the planner's statistics.
pub async fn index_tables(conn: &mut ImportConn) -> Result<(), DbErr> {
    index_some(conn, &StageTable::STAGED).await
}

/// Indexes some staging tables, then refreshes the statistics of all of them.
pub async fn index_some(conn: &mut ImportConn, tables: &[StageTable]) -> Result<(), DbErr> {
    for table in tables {
        for (i, columns) in table.indexes().iter().enumerate() {
            let name = table.name();
            conn.exec(
                &format!("CREATE INDEX {name}_ix{i} ON {name} ({columns})"),
                vec![],
            )
            .await?;
        }
    }
    analyze(conn).await
}

/// Refreshes planner statistics for the staging tables.
pub async fn analyze(conn: &mut ImportConn) -> Result<(), DbErr> {
    // Without statistics on the keys to deactivate PostgreSQL may plan a nested loop that
    // scans the live table once per key.
    temp::analyze(conn, all_names()).await
}

/// Drops the staging tables (see [`temp::drop`]).
pub async fn drop_tables(conn: &mut ImportConn) -> Result<(), DbErr> {
    temp::drop(conn, all_names()).await
}

/// The names of every staging table and of [`GONE`].
fn all_names() -> impl Iterator<Item = &'static str> {
    StageTable::STAGED
        .into_iter()
        .map(StageTable::name)
        .chain([GONE])
}

/// Rows for one staging table, `src` and `rec` first.
#[derive(Debug)]
pub struct Batch {
    /// Destination.
    pub table: StageTable,
    /// Rows: `src`, `rec`, then one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// Inserts a batch with the engine's bulk path. Returns the rows inserted.
pub async fn insert_batch(conn: &mut ImportConn, batch: Batch) -> Result<u64, DbErr> {
    let mut columns = vec!["src", "rec", "sync_key", "sync_hash"];
    columns.extend_from_slice(batch.table.columns());
    conn.bulk_insert(batch.table.name(), &columns, &batch.rows)
        .await
}

/// The parser's side of staging: buffers rows per table and hands full batches to the
/// database task through a bounded channel (so parsing and writing overlap, in bounded
/// memory).
pub struct Stager {
    /// Judges each row before it is buffered (the diffed pass of readers that stage every
    /// row, see [`super::fast::Differ`]): only rows it admits are staged.
    pub differ: Option<super::fast::Differ>,
    sender: mpsc::Sender<Batch>,
    buffers: Vec<(StageTable, Vec<Vec<Value>>)>,
    batch_rows: usize,
    closed: bool,
}

impl Stager {
    /// A stager sending batches of `batch_rows` rows.
    pub fn new(sender: mpsc::Sender<Batch>, batch_rows: usize) -> Self {
        Self {
            differ: None,
            sender,
            buffers: Vec::new(),
            batch_rows: batch_rows.max(1),
            closed: false,
        }
    }

    /// Queues one row for `table`: `src`, `rec`, then the column values as text. For the
    /// tables with a [`StageTable::key_len`], `sync_key` hashes the key columns and
    /// `sync_hash` the other columns.
    pub fn push(&mut self, table: StageTable, src: usize, rec: u64, values: Vec<Option<String>>) {
        self.push_hashed(table, src, rec, None, values)
    }

    /// Like [`Stager::push`], with `sync_hash` given (a hash of the raw values, for rows
    /// whose staged values are derived from them).
    pub fn push_hashed(
        &mut self,
        table: StageTable,
        src: usize,
        rec: u64,
        sync_hash: Option<i64>,
        values: Vec<Option<String>>,
    ) {
        if self.closed {
            return;
        }
        debug_assert_eq!(values.len(), table.columns().len());
        let key = SyncKey::staged(table, &values);
        let hash = table
            .key_len()
            .map(|n| sync_hash.unwrap_or_else(|| staged_hash(table, n, &values)));
        if let Some(differ) = &mut self.differ
            && !differ.admit(table, src, rec, key.map(SyncKey::bits), hash, &values)
        {
            return;
        }
        let mut row = Vec::with_capacity(values.len() + 4);
        row.push(Value::BigInt(Some(src as i64)));
        row.push(Value::BigInt(Some(rec as i64)));
        row.push(Value::BigInt(key.map(SyncKey::get)));
        row.push(Value::BigInt(hash));
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

/// The `sync_hash` of a staged row of `table` whose natural key is its first `key_len`
/// values: a hash of the other values (see [`StageTable::hashed_only_when_given`]).
fn staged_hash(table: StageTable, key_len: usize, values: &[Option<String>]) -> i64 {
    let blank_unhashed = table.hashed_only_when_given();
    hash_values(
        values
            .iter()
            .enumerate()
            .skip(key_len)
            .filter(|(i, v)| !(v.is_none() && Some(*i) == blank_unhashed))
            .map(|(_, v)| v.as_deref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contact_without_a_language_hashes_as_before_the_column_existed() {
        let columns = StageTable::Contacts.columns();
        let mut row: Vec<Option<String>> = columns.iter().map(|c| Some(format!("v-{c}"))).collect();
        let language = columns
            .iter()
            .position(|c| *c == "preferred_language")
            .unwrap();
        row[language] = None;
        let before: Vec<Option<&str>> = row
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(i, _)| *i != language)
            .map(|(_, v)| v.as_deref())
            .collect();
        assert_eq!(
            staged_hash(StageTable::Contacts, 1, &row),
            hash_values(before)
        );
        let plain = staged_hash(StageTable::Contacts, 1, &row);
        row[language] = Some("es".into());
        assert_ne!(staged_hash(StageTable::Contacts, 1, &row), plain);
    }
}
