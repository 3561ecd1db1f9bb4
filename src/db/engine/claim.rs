//! Claiming rows for work so that two workers never take the same row, and the upkeep a
//! work queue needs. PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so workers side
//! by side take disjoint rows without waiting; SQLite has no row locks (sea-query drops the
//! clause), and its write transaction (`BEGIN IMMEDIATE`, see [`crate::db::begin_write`])
//! already runs one claim at a time.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};

/// What a claim statement picks and changes (see [`claim_statement`]).
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// The queue table.
    pub table: &'a str,
    /// Which rows are due (a condition on the table's columns).
    pub due: &'a str,
    /// The order in which due rows are taken.
    pub order: &'a str,
    /// At most this many rows.
    pub limit: u64,
    /// The `SET` list marking a row as claimed.
    pub set: &'a str,
    /// The columns returned for every claimed row (qualified with the table name).
    pub returning: &'a str,
}

/// The `UPDATE … RETURNING` that claims up to `claim.limit` due rows, in one statement, for
/// `conn`'s engine. Run it inside a write transaction.
pub fn claim_statement<C: ConnectionTrait>(conn: &C, claim: Claim<'_>) -> String {
    let Claim {
        table,
        due,
        order,
        limit,
        set,
        returning,
    } = claim;
    match conn.get_database_backend() {
        // A CTE runs its LIMIT once; inside `IN (…)` PostgreSQL may claim more than asked.
        DbBackend::Postgres => format!(
            "WITH picked AS (SELECT id FROM {table} WHERE {due} ORDER BY {order} LIMIT {limit} FOR UPDATE SKIP LOCKED) \
             UPDATE {table} SET {set} FROM picked WHERE {table}.id = picked.id RETURNING {returning}"
        ),
        _ => format!(
            "UPDATE {table} SET {set} WHERE id IN (SELECT id FROM {table} WHERE {due} ORDER BY {order} LIMIT {limit}) \
             RETURNING {returning}"
        ),
    }
}

/// The clause that makes a `SELECT` inside a write transaction lock the rows it picks and
/// skip rows another worker has locked: `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on
/// SQLite (whose write transaction is exclusive).
pub fn skip_locked<C: ConnectionTrait>(conn: &C) -> &'static str {
    match conn.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    }
}

/// Serialises work keyed by `key` until the caller's transaction ends: a
/// transaction-scoped advisory lock on PostgreSQL (waiting while another transaction holds
/// it); nothing on SQLite, whose write transaction is exclusive already.
pub async fn serialise<C: ConnectionTrait>(conn: &C, key: i64) -> Result<(), DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres {
        crate::db::exec(
            conn,
            crate::db::TENANT_LOCK_SQL,
            vec![Value::BigInt(Some(key))],
        )
        .await?;
    }
    Ok(())
}

/// Whether [`vacuum`] does anything on `conn`'s engine.
pub fn needs_vacuum<C: ConnectionTrait>(conn: &C) -> bool {
    conn.get_database_backend() == DbBackend::Postgres
}

/// Vacuums a queue table on PostgreSQL, where every claimed and finished row leaves dead
/// row versions that autovacuum, looking at most once a minute, lets pile up; SQLite
/// reuses the pages itself.
pub async fn vacuum<C: ConnectionTrait>(conn: &C, table: &str) -> Result<(), DbErr> {
    if needs_vacuum(conn) {
        crate::db::exec(conn, &format!("VACUUM {table}"), vec![]).await?;
    }
    Ok(())
}

/// The rows a set-based `INSERT` added: how many, and their id range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::FromQueryResult)]
pub struct InsertedRange {
    /// Rows inserted.
    pub count: i64,
    /// The first new id (0 when none).
    pub first_id: i64,
    /// The last new id (0 when none).
    pub last_id: i64,
}

/// Runs `insert` (an `INSERT … SELECT` into `table`, whose ids grow) and claims the id
/// range of the rows it added. The caller holds the work's lock ([`serialise`]) inside a
/// write transaction, so no other writer adds rows to that range: PostgreSQL reads the
/// range from `RETURNING id`; SQLite, whose write lock is held, from the largest id before
/// and after.
pub async fn insert_range<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    insert: &str,
    values: Vec<Value>,
) -> Result<InsertedRange, DbErr> {
    use sea_orm::FromQueryResult;
    if conn.get_database_backend() == DbBackend::Postgres {
        let rows = crate::db::query(
            conn,
            &format!(
                "WITH ins AS ({insert} RETURNING id) \
                 SELECT COUNT(*) AS count, COALESCE(MIN(id), 0) AS first_id, COALESCE(MAX(id), 0) AS last_id FROM ins"
            ),
            values,
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| DbErr::Custom(format!("the insert into {table} returned no row")))?;
        return InsertedRange::from_query_result(row, "");
    }
    let max_id = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
    let before = crate::db::count(conn, &max_id, vec![]).await?;
    let count = crate::db::exec(conn, insert, values).await?.rows_affected();
    let after = crate::db::count(conn, &max_id, vec![]).await?;
    Ok(InsertedRange {
        count: i64::try_from(count).unwrap_or(i64::MAX),
        first_id: before + 1,
        last_id: after,
    })
}
