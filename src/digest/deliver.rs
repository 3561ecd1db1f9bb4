//! Digests at send time, and the disclosure log. Each queued digest is one
//! `digest_deliveries` row — unique per (tenant, guardian, week) — plus its outbox row,
//! written by [`Composer::queue_all`](super::compose::Composer::queue_all); a guardian
//! already queued for the week is skipped by `ON CONFLICT DO NOTHING`, which is what makes
//! re-runs, concurrent runs and restarts after a crash send at most one digest per
//! guardian and week. The rows are the disclosure log (who received a digest about which
//! students, when).

use super::compose::Composer;
use super::week::IsoWeek;
use crate::db;
use crate::domain::TenantId;
use crate::outbox::store::Claimed;
use crate::outbox::{Outgoing, message_id};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};
use serde::Serialize;

/// Renders the digest behind outbox row `claimed` as it is now; `None` when there is
/// nothing to report any more (the guardian left, was erased, or lost their email).
pub async fn render_delivery<C: ConnectionTrait>(
    conn: &C,
    message_id_domain: &str,
    claimed: &Claimed,
) -> Result<Option<Outgoing>, DbErr> {
    let rows = db::query(
        conn,
        "SELECT d.contact_id, d.week, t.slug FROM digest_deliveries d JOIN tenants t ON t.id = d.tenant_id \
         WHERE d.tenant_id = $1 AND d.id = $2",
        vec![
            Value::BigInt(Some(claimed.tenant_id)),
            Value::BigInt(Some(claimed.ref_id)),
        ],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let contact: i64 = row.try_get_by_index(0)?;
    let week: String = row.try_get_by_index(1)?;
    let slug: String = row.try_get_by_index(2)?;
    let tenant = crate::tenants::find(conn, &slug)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let week = IsoWeek::parse(&week).map_err(|e| DbErr::Custom(e.0))?;
    let (schedule, windows) =
        super::windows(&tenant, Some(week)).map_err(|e| DbErr::Custom(e.0))?;
    let Some(digest) = Composer::new(conn, tenant.id, windows, 1)
        .one(contact)
        .await?
    else {
        return Ok(None);
    };
    let rendered = super::render::render(&digest, &tenant.name, &windows, schedule.zone)
        .map_err(|e| DbErr::Custom(format!("cannot render the digest: {e}")))?;
    Ok(Some(Outgoing {
        message_id: message_id(claimed.id, message_id_domain),
        to: rendered.to,
        subject: Some(rendered.subject),
        body: rendered.body,
    }))
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
        "SELECT d.id, d.contact_id, d.week, d.students, d.assignments, d.queued_at, o.status \
         FROM digest_deliveries d LEFT JOIN outbox o ON o.kind = 'digest' AND o.ref_id = d.id WHERE d.tenant_id = $1",
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
                    Some("sending") | None => "queued".into(),
                    Some(other) => other.into(),
                },
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |d| d.id.clone()))
}
