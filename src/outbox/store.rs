//! Outbox rows: enqueueing (inside the caller's transaction), claiming due rows, recording
//! outcomes, and the admin view (counts by status, dead letters, requeue).
//!
//! Statuses: `queued` (due at `next_attempt_at`), `sending` (claimed by a dispatcher until
//! `lease_until`), `sent`, `failed` (final error), `dead` (out of attempts), `suppressed`
//! (not sent on purpose, e.g. the number opted out). A `sending` row whose lease ran out —
//! its dispatcher died — is due again, so nothing is lost and at most the messages that
//! were in flight are sent twice (with the same Message-ID / idempotency key).

use super::Channel;
use crate::audit::{self, AuditEntry};
use crate::db;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Value};
use serde::Serialize;
use std::collections::BTreeMap;

/// What an outbox row delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An invitation (`ref_id` = `invitations.id`).
    Invitation,
}

impl Kind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invitation => "invitation",
        }
    }
}

/// Queues a message in the caller's transaction; returns the outbox id.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    tenant: i64,
    kind: Kind,
    ref_id: i64,
    (channel, recipient): (Channel, &str),
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    db::query(
        conn,
        "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $6, $6) RETURNING id",
        vec![
            Value::BigInt(Some(tenant)),
            kind.as_str().into(),
            Value::BigInt(Some(ref_id)),
            channel.as_str().into(),
            recipient.into(),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?
    .first()
    .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))?
    .try_get_by_index(0)
}

/// A row claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Outbox id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: i64,
    /// `invitation`, …
    pub kind: String,
    /// The referenced row.
    pub ref_id: i64,
    /// Channel.
    pub channel: String,
    /// Email address or E.164 number.
    pub recipient: String,
    /// Attempts including this one.
    pub attempts: i64,
}

fn claimed(row: &QueryResult) -> Result<Claimed, DbErr> {
    Ok(Claimed {
        id: row.try_get_by_index(0)?,
        tenant_id: row.try_get_by_index(1)?,
        kind: row.try_get_by_index(2)?,
        ref_id: row.try_get_by_index(3)?,
        channel: row.try_get_by_index(4)?,
        recipient: row.try_get_by_index(5)?,
        attempts: row.try_get_by_index(6)?,
    })
}

/// Claims up to `limit` due rows for `worker` until `lease_until`. On PostgreSQL the rows
/// are picked with `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers take disjoint rows;
/// on SQLite the claim is one `IMMEDIATE` transaction, so claims are serialised.
pub async fn claim(
    db_conn: &DatabaseConnection,
    worker: &str,
    limit: u64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbErr> {
    let due = "(status = 'queued' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_until < $3)";
    let set = "status = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3";
    let returning = "RETURNING outbox.id, outbox.tenant_id, outbox.kind, outbox.ref_id, outbox.channel, outbox.recipient, outbox.attempts";
    let sql = match db_conn.get_database_backend() {
        // A CTE runs its LIMIT once; inside `IN (…)` PostgreSQL may claim more than asked.
        DbBackend::Postgres => format!(
            "WITH picked AS (SELECT id FROM outbox WHERE {due} ORDER BY next_attempt_at, id LIMIT {limit} FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET {set} FROM picked WHERE outbox.id = picked.id {returning}"
        ),
        _ => format!(
            "UPDATE outbox SET {set} WHERE id IN (SELECT id FROM outbox WHERE {due} ORDER BY next_attempt_at, id LIMIT {limit}) {returning}"
        ),
    };
    let txn = db::begin_write(db_conn).await?;
    let rows = db::query(
        &txn,
        &sql,
        vec![
            worker.into(),
            Value::ChronoDateTimeUtc(Some(lease_until)),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?;
    txn.commit().await?;
    let mut claimed = rows.iter().map(claimed).collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// What became of one claimed row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Failed for now: due again at `at`.
    Retry {
        /// Next attempt.
        at: DateTime<Utc>,
        /// Why.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// Why.
        error: String,
    },
    /// Out of attempts.
    Dead {
        /// The last error.
        error: String,
    },
    /// Not sent on purpose.
    Suppressed {
        /// Why.
        reason: String,
    },
}

/// Records `outcome` for a row `worker` still holds (a row whose lease ran out and that
/// another dispatcher claimed is left to that dispatcher). Returns false when the row was
/// no longer held.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    worker: &str,
    id: i64,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (status, next, error, sent_at) = match outcome {
        Outcome::Sent => ("sent", None, None, Some(now)),
        Outcome::Retry { at, error } => ("queued", Some(*at), Some(error.clone()), None),
        Outcome::Failed { error } => ("failed", None, Some(error.clone()), None),
        Outcome::Dead { error } => ("dead", None, Some(error.clone()), None),
        Outcome::Suppressed { reason } => ("suppressed", None, Some(reason.clone()), None),
    };
    let changed = db::exec(
        conn,
        "UPDATE outbox SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), last_error = COALESCE($3, last_error), \
           sent_at = COALESCE($4, sent_at), claimed_by = NULL, lease_until = NULL, updated_at = $5 \
         WHERE id = $6 AND claimed_by = $7 AND status = 'sending'",
        vec![
            status.into(),
            Value::ChronoDateTimeUtc(next),
            Value::String(error),
            Value::ChronoDateTimeUtc(sent_at),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(id)),
            worker.into(),
        ],
    )
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records `Sent` for many rows `worker` still holds, in one statement; returns how many
/// were still held.
pub async fn record_sent<C: ConnectionTrait>(
    conn: &C,
    worker: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    on_held(
        conn,
        "UPDATE outbox SET status = 'sent', sent_at = $2, claimed_by = NULL, lease_until = NULL, updated_at = $2",
        (worker, ids),
        vec![Value::ChronoDateTimeUtc(Some(now))],
    )
    .await
}

/// Removes the rows `worker` still holds of `ids` after they were sent, for a kind whose
/// own table tells that they were (a weekly digest: handed over and no outbox row any
/// more); returns how many were still held. A week's million digests leave no rows behind.
pub async fn remove_sent<C: ConnectionTrait>(
    conn: &C,
    worker: &str,
    ids: &[i64],
) -> Result<u64, DbErr> {
    on_held(conn, "DELETE FROM outbox", (worker, ids), vec![]).await
}

/// Runs `statement` (an UPDATE or DELETE of `outbox`; `$1` is the worker, `$2`… are
/// `values`) on the rows of `ids` that `worker` still holds; returns how many.
async fn on_held<C: ConnectionTrait>(
    conn: &C,
    statement: &str,
    (worker, ids): (&str, &[i64]),
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let list = db::id_list(ids.iter().copied());
    let mut all = vec![worker.into()];
    all.extend(values);
    Ok(db::exec(
        conn,
        &format!("{statement} WHERE id IN ({list}) AND claimed_by = $1 AND status = 'sending'"),
        all,
    )
    .await?
    .rows_affected())
}

/// A dead or failed message, for the admin view.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Outbox id.
    pub id: String,
    /// `invitation`, …
    pub kind: String,
    /// `email` or `sms`.
    pub channel: String,
    /// `dead` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// Last change (UTC).
    pub updated_at: DateTime<Utc>,
}

/// The most rows the outbox view counts per status: counting reads every row counted, and
/// a district's outbox keeps every invitation it ever sent.
pub const COUNT_CAP: i64 = 10_000;

/// The tenant's outbox: rows per status (each at most [`COUNT_CAP`]), and the latest dead
/// and failed messages.
pub async fn overview<C: ConnectionTrait>(
    conn: &C,
    tenant: i64,
) -> Result<(BTreeMap<String, i64>, Vec<DeadLetter>), DbErr> {
    let mut counts = BTreeMap::new();
    for status in ["queued", "sending", "sent", "failed", "dead", "suppressed"] {
        // Each count stops at the cap: an index range of at most COUNT_CAP entries.
        let count = db::count(
            conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE tenant_id = $1 AND status = $2 \
             LIMIT $3) capped",
            vec![
                Value::BigInt(Some(tenant)),
                Value::String(Some(status.to_string())),
                Value::BigInt(Some(COUNT_CAP)),
            ],
        )
        .await?;
        counts.insert(status.to_string(), count);
    }
    // Digests waiting to be handed to the outbox are queued too, from the admin's view.
    let pending = crate::digest::deliver::waiting(conn, tenant, COUNT_CAP).await?;
    if let Some(queued) = counts.get_mut("queued") {
        *queued = (*queued + pending).min(COUNT_CAP);
    }
    let dead = db::query(
        conn,
        "SELECT id, kind, channel, status, attempts, last_error, updated_at FROM outbox \
         WHERE tenant_id = $1 AND status IN ('dead', 'failed') ORDER BY id DESC LIMIT 100",
        vec![Value::BigInt(Some(tenant))],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(DeadLetter {
            id: row.try_get_by_index::<i64>(0)?.to_string(),
            kind: row.try_get_by_index(1)?,
            channel: row.try_get_by_index(2)?,
            status: row.try_get_by_index(3)?,
            attempts: row.try_get_by_index(4)?,
            last_error: row.try_get_by_index(5)?,
            updated_at: row.try_get_by_index(6)?,
        })
    })
    .collect::<Result<Vec<_>, DbErr>>()?;
    Ok((counts, dead))
}

/// Puts a dead or failed message back in the queue with fresh attempts (audited). Returns
/// false when there is no such dead or failed message in the tenant.
pub async fn requeue(
    db_conn: &DatabaseConnection,
    tenant: i64,
    id: i64,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let now = Utc::now();
    let changed = db::exec(
        &txn,
        "UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = $1, updated_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND status IN ('dead', 'failed')",
        vec![
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(tenant)),
            Value::BigInt(Some(id)),
        ],
    )
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "outbox.requeue",
            target: Some(format!("outbox:{id}")),
            before: None,
            after: Some(serde_json::json!({"status": "queued"})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Suppresses `email` for the tenant after a final refusal (kept once per address).
pub async fn suppress_email<C: ConnectionTrait>(
    conn: &C,
    tenant: i64,
    email: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    db::exec(
        conn,
        "INSERT INTO email_suppressions (tenant_id, email, reason, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, email) DO NOTHING",
        vec![
            Value::BigInt(Some(tenant)),
            email.to_lowercase().into(),
            reason.into(),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await
    .map(|_| ())
}

/// A suppressed address, for the admin view.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// Id (to lift it).
    pub id: String,
    /// The address (lower-cased).
    pub email: String,
    /// The mail server's final answer.
    pub reason: String,
    /// When (UTC).
    pub created_at: DateTime<Utc>,
}

/// A page of the tenant's suppressed addresses, newest first: those with an id below
/// `before` (the cursor), at most `limit`, and the cursor of the next page. Walks the
/// (tenant, id) index, so a page reads only its rows.
pub async fn suppressions<C: ConnectionTrait>(
    conn: &C,
    tenant: i64,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<Suppression>, Option<String>), DbErr> {
    let items = db::query(
        conn,
        &format!(
            "SELECT id, email, reason, created_at FROM email_suppressions \
             WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT {}",
            limit.saturating_add(1)
        ),
        vec![
            Value::BigInt(Some(tenant)),
            Value::BigInt(Some(before.unwrap_or(i64::MAX))),
        ],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(Suppression {
            id: row.try_get::<i64>("", "id")?.to_string(),
            email: row.try_get("", "email")?,
            reason: row.try_get("", "reason")?,
            created_at: row.try_get("", "created_at")?,
        })
    })
    .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |s| s.id.clone()))
}

/// Lifts a suppression (audited); false when there is none with this id in the tenant.
pub async fn lift_suppression(
    db_conn: &DatabaseConnection,
    tenant: i64,
    id: i64,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let lifted = db::exec(
        &txn,
        "DELETE FROM email_suppressions WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant)), Value::BigInt(Some(id))],
    )
    .await?
    .rows_affected();
    if lifted == 0 {
        return Ok(false);
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "outbox.unsuppress",
            target: Some(format!("email_suppression:{id}")),
            before: None,
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// True when `phone` replied STOP to the tenant's messages (and has not replied START).
pub async fn opted_out<C: ConnectionTrait>(
    conn: &C,
    tenant: i64,
    phone: &str,
) -> Result<bool, DbErr> {
    Ok(db::count(
        conn,
        "SELECT COUNT(*) FROM sms_opt_outs WHERE tenant_id = $1 AND phone = $2",
        vec![Value::BigInt(Some(tenant)), phone.into()],
    )
    .await?
        > 0)
}
