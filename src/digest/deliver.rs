//! Digests on their way out, and the disclosure log. A run records each digest as one
//! pending `digest_deliveries` row — unique per (tenant, guardian, week), which is what
//! makes re-runs, concurrent runs and restarts after a crash queue at most one digest per
//! guardian and week ([`Composer::queue_all`](super::compose::Composer::queue_all)).
//! Dispatchers then, each round:
//!
//! 1. hand the next pending deliveries to the outbox ([`hand_over`]): one outbox row each,
//!    state `outbox`, so the outbox holds a batch of digests at a time rather than a
//!    million;
//! 2. render each email when they send it ([`render_many`]), as the digest is then;
//! 3. on success drop the outbox row and record `sent` and `sent_at` on the delivery
//!    ([`record_sent`]); a digest that is retried, fails, dies or is suppressed keeps its
//!    outbox row, where the admin view shows it and it can be requeued.
//!
//! The delivery rows are the disclosure log (who received a digest about which students,
//! when).

use super::compose::{Composer, Digest};
use super::week::IsoWeek;
use crate::db;
use crate::domain::TenantId;
use crate::outbox::store::Claimed;
use crate::outbox::{Outgoing, message_id};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Digest deliveries recorded for `week` (any state).
pub async fn recorded<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    week: &str,
) -> Result<u64, DbErr> {
    let n = db::count(
        conn,
        "SELECT COUNT(*) FROM digest_deliveries WHERE tenant_id = $1 AND week = $2",
        vec![Value::BigInt(Some(tenant.0)), week.into()],
    )
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Hands up to `limit` pending deliveries (any tenant, oldest first) to the outbox, due
/// at `now`; returns how many. On PostgreSQL the deliveries are picked with `FOR UPDATE
/// SKIP LOCKED`, so dispatchers running side by side hand over disjoint ones; on SQLite
/// the hand-over is one `IMMEDIATE` transaction.
pub async fn hand_over(
    db_conn: &DatabaseConnection,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    // The recipient is the address now; the email itself is rendered at send time.
    let outbox_row = "SELECT h.tenant_id, 'digest', h.id, 'email', COALESCE(c.email, ''), 'queued', 0, $1, $1, $1 \
         FROM handed h LEFT JOIN contacts c ON c.id = h.contact_id";
    let insert = "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at)";
    // A read first: most rounds have nothing to hand over and need no write lock.
    let pending = db::query(
        db_conn,
        "SELECT id FROM digest_deliveries WHERE state = 'pending' LIMIT 1",
        vec![],
    )
    .await?;
    if pending.is_empty() || limit == 0 {
        return Ok(0);
    }
    let now = Value::ChronoDateTimeUtc(Some(now));
    let txn = db::begin_write(db_conn).await?;
    let handed = match db_conn.get_database_backend() {
        DbBackend::Postgres => {
            db::exec(
                &txn,
                &format!(
                    "WITH picked AS (SELECT id FROM digest_deliveries WHERE state = 'pending' ORDER BY id LIMIT {limit} FOR UPDATE SKIP LOCKED), \
                     handed AS (UPDATE digest_deliveries d SET state = 'outbox' FROM picked WHERE d.id = picked.id \
                       RETURNING d.id, d.tenant_id, d.contact_id) \
                     {insert} {outbox_row} ORDER BY h.id"
                ),
                vec![now],
            )
            .await?
            .rows_affected()
        }
        // The write lock is held from the first statement, so both see the same rows.
        _ => {
            let handed = db::exec(
                &txn,
                &format!(
                    "{insert} WITH handed AS (SELECT id, tenant_id, contact_id FROM digest_deliveries \
                       WHERE state = 'pending' ORDER BY id LIMIT {limit}) \
                     {outbox_row} ORDER BY h.id"
                ),
                vec![now],
            )
            .await?
            .rows_affected();
            if handed > 0 {
                db::exec(
                &txn,
                &format!(
                    "UPDATE digest_deliveries SET state = 'outbox' WHERE id IN \
                     (SELECT id FROM digest_deliveries WHERE state = 'pending' ORDER BY id LIMIT {handed})"
                ),
                vec![],
            )
            .await?;
            }
            handed
        }
    };
    txn.commit().await?;
    Ok(handed)
}

/// Records, inside the caller's transaction, that the digests of outbox rows `ids` (which
/// `worker` still holds) were sent: their deliveries become `sent` at `now` and the outbox
/// rows are removed. Returns how many were still held.
pub async fn record_sent<C: ConnectionTrait>(
    conn: &C,
    worker: &str,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let held = format!(
        "FROM outbox WHERE id IN ({}) AND kind = 'digest' AND claimed_by = $1 AND status = 'sending'",
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    db::exec(
        conn,
        &format!(
            "UPDATE digest_deliveries SET state = 'sent', sent_at = $2 WHERE id IN (SELECT ref_id {held})"
        ),
        vec![worker.into(), Value::ChronoDateTimeUtc(Some(now))],
    )
    .await?;
    Ok(
        db::exec(conn, &format!("DELETE {held}"), vec![worker.into()])
            .await?
            .rows_affected(),
    )
}

/// Renders the digests behind outbox rows `claimed` as they are now, one composition query
/// per tenant and week; a row whose digest has nothing to report any more (the guardian
/// left, was erased, or lost their email) maps to `None`.
pub async fn render_many<C: ConnectionTrait>(
    conn: &C,
    message_id_domain: &str,
    claimed: &[&Claimed],
) -> Result<HashMap<i64, Option<Outgoing>>, DbErr> {
    let mut out: HashMap<i64, Option<Outgoing>> = claimed.iter().map(|c| (c.id, None)).collect();
    if claimed.is_empty() {
        return Ok(out);
    }
    let by_delivery: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
    let list = by_delivery
        .keys()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let rows = db::query(
        conn,
        &format!(
            "SELECT id, tenant_id, contact_id, week FROM digest_deliveries WHERE id IN ({list})"
        ),
        vec![],
    )
    .await?;
    // (tenant, week) → [(contact, outbox row)]
    let mut groups: BTreeMap<(i64, String), Vec<(i64, &Claimed)>> = BTreeMap::new();
    for row in &rows {
        let Some(claimed) = by_delivery.get(&row.try_get_by_index::<i64>(0)?) else {
            continue;
        };
        let tenant: i64 = row.try_get_by_index(1)?;
        // Never cross tenants, even on a corrupt reference.
        if tenant != claimed.tenant_id {
            continue;
        }
        groups
            .entry((tenant, row.try_get_by_index(3)?))
            .or_default()
            .push((row.try_get_by_index(2)?, *claimed));
    }
    for ((tenant, week), members) in groups {
        let tenant = crate::tenants::find_by_id(conn, TenantId(tenant))
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        let week = IsoWeek::parse(&week).map_err(|e| DbErr::Custom(e.0))?;
        let (schedule, windows) =
            super::windows(&tenant, Some(week)).map_err(|e| DbErr::Custom(e.0))?;
        let contacts: Vec<i64> = members.iter().map(|(contact, _)| *contact).collect();
        let digests: HashMap<i64, Digest> = Composer::new(conn, tenant.id, windows, 1)
            .for_contacts(&contacts)
            .await?
            .into_iter()
            .map(|d| (d.contact_id, d))
            .collect();
        for (contact, claimed) in members {
            let Some(digest) = digests.get(&contact) else {
                continue;
            };
            let rendered = super::render::render(digest, &tenant.name, &windows, schedule.zone)
                .map_err(|e| DbErr::Custom(format!("cannot render the digest: {e}")))?;
            out.insert(
                claimed.id,
                Some(Outgoing {
                    message_id: message_id(claimed.id, message_id_domain),
                    to: rendered.to,
                    subject: Some(rendered.subject),
                    body: rendered.body,
                }),
            );
        }
    }
    Ok(out)
}

/// One entry of the disclosure log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Delivery id.
    pub id: String,
    /// The guardian.
    pub contact_id: String,
    /// The week, `YYYY-Www`.
    pub week: String,
    /// SIS ids of the students the digest was about.
    pub students: Vec<String>,
    /// Assignment lines when it was queued.
    pub assignments: i64,
    /// When it was queued (UTC).
    pub queued_at: DateTime<Utc>,
    /// Delivery status of its email (`queued`, `sent`, `failed`, `dead`, `suppressed`).
    pub status: String,
    /// When its email was sent (UTC), once it was.
    pub sent_at: Option<DateTime<Utc>>,
}

/// A page of the tenant's disclosure log, newest first (optionally one week or guardian).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    (week, contact): (Option<&str>, Option<i64>),
    before_id: Option<i64>,
    limit: u64,
) -> Result<(Vec<Delivery>, Option<String>), DbErr> {
    let mut filters = db::Filters::new(
        "SELECT d.id, d.contact_id, d.week, d.students, d.assignments, d.queued_at, \
           CASE d.state WHEN 'outbox' THEN o.status ELSE d.state END, d.sent_at \
         FROM digest_deliveries d LEFT JOIN outbox o ON d.state = 'outbox' AND o.kind = 'digest' AND o.ref_id = d.id \
         WHERE d.tenant_id = $1",
        vec![Value::BigInt(Some(tenant.0))],
    );
    if let Some(week) = week {
        filters.and("d.week =", week);
    }
    if let Some(contact) = contact {
        filters.and("d.contact_id =", contact);
    }
    if let Some(before) = before_id {
        filters.and("d.id <", before);
    }
    let (sql, values) = filters.finish(&format!("ORDER BY d.id DESC LIMIT {}", limit + 1));
    let items = db::query(conn, &sql, values)
        .await?
        .iter()
        .map(|row| {
            let students: String = row.try_get_by_index(3)?;
            let status: Option<String> = row.try_get_by_index(6)?;
            Ok(Delivery {
                id: row.try_get_by_index::<i64>(0)?.to_string(),
                contact_id: row.try_get_by_index::<i64>(1)?.to_string(),
                week: row.try_get_by_index(2)?,
                students: serde_json::from_str(&students).unwrap_or_default(),
                assignments: row.try_get_by_index(4)?,
                queued_at: row.try_get_by_index(5)?,
                status: match status.as_deref() {
                    Some("sending" | "pending") | None => "queued".into(),
                    Some(other) => other.into(),
                },
                sent_at: row.try_get_by_index(7)?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |d| d.id.clone()))
}
