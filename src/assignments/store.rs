//! Storing and reading assignments, and the per-class digest switch. Portable SQL for
//! SQLite and PostgreSQL; every statement is scoped by tenant.

use super::NewAssignment;
use crate::audit::{self, AuditEntry};
use crate::db::{self, engine::upsert};
use crate::domain::TenantId;
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, QueryResult, Value};
use serde::Serialize;

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Upserted {
    /// A new assignment.
    Created,
    /// An existing one changed.
    Updated,
    /// An existing one already held these values.
    Unchanged,
}

/// One assignment as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentItem {
    /// The caller's id, unique per class.
    pub external_id: String,
    /// The class's SIS source id.
    pub class_id: String,
    /// Title.
    pub title: String,
    /// Due date-time (RFC 3339) in the offset it was given in.
    pub due_at: String,
    /// Points, if any.
    pub points: Option<f64>,
    /// Short instructions, if any.
    pub instructions: Option<String>,
    /// First stored (UTC).
    pub created_at: DateTime<Utc>,
    /// Last changed (UTC).
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "a.id, a.external_id, a.title, a.due_at, a.due_offset_seconds, a.points, \
                       a.instructions, a.created_at, a.updated_at";

/// Due instant shown in the offset it was given in.
pub fn with_offset(due_at: DateTime<Utc>, offset_seconds: i32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(offset_seconds)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    due_at.with_timezone(&offset)
}

/// An assignment as [`COLUMNS`] reads it.
#[derive(FromQueryResult)]
struct AssignmentRow {
    id: i64,
    external_id: String,
    title: String,
    due_at: DateTime<Utc>,
    due_offset_seconds: i32,
    points: Option<f64>,
    instructions: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The row's id and due instant, and the item the API shows.
fn item(
    row: &QueryResult,
    class_source_id: &str,
) -> Result<(i64, DateTime<Utc>, AssignmentItem), DbErr> {
    let row = AssignmentRow::from_query_result(row, "")?;
    Ok((
        row.id,
        row.due_at,
        AssignmentItem {
            external_id: row.external_id,
            class_id: class_source_id.to_string(),
            title: row.title,
            due_at: with_offset(row.due_at, row.due_offset_seconds).to_rfc3339(),
            points: row.points,
            instructions: row.instructions,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
    ))
}

fn values(assignment: &NewAssignment) -> [Value; 5] {
    [
        Value::String(Some(assignment.title.clone())),
        Value::ChronoDateTimeUtc(Some(assignment.due_at.with_timezone(&Utc))),
        Value::Int(Some(assignment.due_at.offset().local_minus_utc())),
        Value::Double(assignment.points),
        Value::String(assignment.instructions.clone()),
    ]
}

/// Creates the assignment, or updates the one with the same external id in the class
/// when a value differs. `created_by` names the actor (kept on the row).
pub async fn upsert<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
    assignment: &NewAssignment,
    created_by: &str,
) -> Result<Upserted, DbErr> {
    let now = Value::ChronoDateTimeUtc(Some(Utc::now()));
    let key = [
        Value::BigInt(Some(tenant.0)),
        Value::BigInt(Some(class_id)),
        Value::String(Some(assignment.external_id.clone())),
    ];
    let mut insert: Vec<Value> = key.to_vec();
    insert.extend(values(assignment));
    insert.push(Value::String(Some(created_by.to_string())));
    insert.push(now.clone());
    let inserted = db::exec(
        conn,
        &format!(
            "INSERT INTO assignments (tenant_id, class_id, external_id, title, due_at, \
               due_offset_seconds, points, instructions, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) {}",
            upsert::do_nothing_sql(&["tenant_id", "class_id", "external_id"])
        ),
        insert,
    )
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Upserted::Created);
    }
    // Only when something changed: a blind update would bump updated_at and bloat.
    let mut update: Vec<Value> = key.to_vec();
    update.extend(values(assignment));
    update.push(now);
    let updated = db::exec(
        conn,
        "UPDATE assignments SET title = $4, due_at = $5, due_offset_seconds = $6, points = $7, \
           instructions = $8, updated_at = $9 \
         WHERE tenant_id = $1 AND class_id = $2 AND external_id = $3 \
           AND (title <> $4 OR due_at <> $5 OR due_offset_seconds <> $6 \
             OR points IS DISTINCT FROM $7 OR instructions IS DISTINCT FROM $8)",
        update,
    )
    .await?;
    Ok(if updated.rows_affected() == 1 {
        Upserted::Updated
    } else {
        Upserted::Unchanged
    })
}

/// One assignment of a class.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
    class_source_id: &str,
    external_id: &str,
) -> Result<Option<AssignmentItem>, DbErr> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM assignments a \
             WHERE a.tenant_id = $1 AND a.class_id = $2 AND a.external_id = $3"
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(class_id)),
            Value::String(Some(external_id.to_string())),
        ],
    )
    .await?;
    rows.first()
        .map(|row| item(row, class_source_id).map(|(_, _, item)| item))
        .transpose()
}

/// Deletes an assignment; false when there was none.
pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
    external_id: &str,
) -> Result<bool, DbErr> {
    let result = db::exec(
        conn,
        "DELETE FROM assignments WHERE tenant_id = $1 AND class_id = $2 AND external_id = $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(class_id)),
            Value::String(Some(external_id.to_string())),
        ],
    )
    .await?;
    Ok(result.rows_affected() > 0)
}

/// Which assignments of a class to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Due at or after.
    pub from: Option<DateTime<Utc>>,
    /// Due before.
    pub to: Option<DateTime<Utc>>,
    /// After this `(due_at, id)` (the cursor).
    pub after: Option<(DateTime<Utc>, i64)>,
    /// Items per page.
    pub limit: u64,
}

/// A class's assignments by due date, then id; returns the items and the next cursor.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
    class_source_id: &str,
    filter: &ListFilter,
) -> Result<(Vec<AssignmentItem>, Option<String>), DbErr> {
    let mut values = vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(class_id))];
    let mut sql = String::from("WHERE a.tenant_id = $1 AND a.class_id = $2");
    let bind = |values: &mut Vec<Value>, value: Value| {
        values.push(value);
        values.len()
    };
    if let Some(from) = filter.from {
        let n = bind(&mut values, from.into());
        sql.push_str(&format!(" AND a.due_at >= ${n}"));
    }
    if let Some(to) = filter.to {
        let n = bind(&mut values, to.into());
        sql.push_str(&format!(" AND a.due_at < ${n}"));
    }
    if let Some((due, id)) = filter.after {
        let d = bind(&mut values, due.into());
        let i = bind(&mut values, id.into());
        sql.push_str(&format!(
            " AND (a.due_at > ${d} OR (a.due_at = ${d} AND a.id > ${i}))"
        ));
    }
    let limit = i64::try_from(filter.limit.saturating_add(1)).unwrap_or(i64::MAX);
    let n = bind(&mut values, limit.into());
    let rows = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM assignments a {sql} ORDER BY a.due_at, a.id LIMIT ${n}"),
        values,
    )
    .await?;
    let items = rows
        .iter()
        .map(|row| item(row, class_source_id).map(|(id, due, item)| ((due, id), item)))
        .collect::<Result<Vec<_>, DbErr>>()?;
    let (items, next) = db::page(items, filter.limit, |((due, id), _)| cursor(*due, *id));
    Ok((items.into_iter().map(|(_, item)| item).collect(), next))
}

/// The cursor of an item: its due instant and id.
pub fn cursor(due: DateTime<Utc>, id: i64) -> String {
    format!("{}_{id}", due.timestamp_micros())
}

/// Reads a cursor made by [`cursor`].
pub fn parse_cursor(raw: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = raw.split_once('_')?;
    let due = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((due, id.parse().ok()?))
}

/// Whether the class's guardians get the digest (true unless its owner opted out).
pub async fn notify_guardians<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
) -> Result<bool, DbErr> {
    let rows = db::query(
        conn,
        "SELECT notify_guardians FROM class_digest_settings WHERE tenant_id = $1 AND class_id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(class_id))],
    )
    .await?;
    rows.first()
        .map(|row| row.try_get::<bool>("", "notify_guardians"))
        .transpose()
        .map(|v| v.unwrap_or(true))
}

/// Sets the class's digest switch, audited (`class.digest_update`).
pub async fn set_notify_guardians(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    class_id: i64,
    class_source_id: &str,
    notify: bool,
    actor: &str,
) -> Result<DateTime<Utc>, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let before = notify_guardians(&txn, tenant, class_id).await?;
    let now = Utc::now();
    db::exec(
        &txn,
        &format!(
            "INSERT INTO class_digest_settings (class_id, tenant_id, notify_guardians, updated_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5) {}",
            upsert::update_columns_sql(
                &["class_id"],
                &["notify_guardians", "updated_by", "updated_at"]
            )
        ),
        vec![
            Value::BigInt(Some(class_id)),
            Value::BigInt(Some(tenant.0)),
            Value::Bool(Some(notify)),
            Value::String(Some(actor.to_string())),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "class.digest_update",
            target: Some(format!("class:{class_source_id}")),
            before: Some(serde_json::json!({ "notifyGuardians": before })),
            after: Some(serde_json::json!({ "notifyGuardians": notify })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(now)
}
