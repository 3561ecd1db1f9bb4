//! Per-child restrictions (issue 22, docs/restrictions.md): an admin restricts one
//! student–contact link — custody, a court order — with a reason and an optional end.
//!
//! A restricted link is hidden by the one visibility rule (`domain::visibility`: the link's
//! `restriction_id` is set), so everything that follows that rule follows the restriction:
//! teachers do not see the contact about that student, it gets no invitation and no digest
//! section for that child, it cannot be added to a chat, the guardian's own pages leave the
//! child out, and the Graph read omits it. Existing chats about the child get the owner's
//! banner ([`crate::chats::banners`], cause `restricted`). The contact's other children are
//! other links, unaffected.
//!
//! Syncs never write `restriction_id`: only [`restrict`], [`lift`] and [`expire_due`] do. A
//! restriction ends when an admin lifts it, or at its end (`until`): [`expire_due`] runs in
//! every `serve` once a minute, so a restriction ends within a minute of its end and never
//! before. Every change is audited in its own transaction; [`history`] lists a student's
//! restrictions, open and ended.

use crate::audit::{self, AuditEntry};
use crate::chats::banners::{self, Cause};
use crate::db;
use crate::domain::{Reason, TenantId, TimeZoneName};
use crate::entities::link_restrictions as entity;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::NotSet, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait};
use sea_orm::{FromQueryResult, Set, Value};
use serde::Serialize;
use std::time::Duration;

/// How often `serve` ends the restrictions whose end has come.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// Restrictions ended by one statement of [`expire_due`] at most.
const EXPIRY_BATCH: u64 = 500;

/// Who ended a restriction that reached its end.
pub const EXPIRED: &str = "expired";

/// A restriction's end as a person gives it: an RFC 3339 time with offset, or a date
/// (`YYYY-MM-DD`), which ends the restriction at the start of that day in `zone` (the
/// tenant's time zone). `None` when `raw` is blank.
pub fn parse_until(raw: &str, zone: TimeZoneName) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(time.with_timezone(&Utc)));
    }
    let date = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        "give a date (2027-06-30) or an RFC 3339 time with offset (2027-06-30T00:00:00-04:00)"
            .to_string()
    })?;
    // The first instant of the day: midnight, or the first time after a DST gap.
    (0..24)
        .find_map(|hour| {
            date.and_hms_opt(hour, 0, 0)
                .and_then(|local| local.and_local_timezone(zone.zone()).earliest())
        })
        .map(|start| Some(start.with_timezone(&Utc)))
        .ok_or_else(|| format!("{raw} does not exist in {}", zone.name()))
}

/// One restriction of a student–contact link, open or ended.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Restriction {
    /// Restriction id.
    pub id: String,
    /// The student's SIS source id.
    pub student_id: String,
    /// The contact's id.
    pub contact_id: String,
    /// Why (for admins only).
    pub reason: String,
    /// When it ends by itself (UTC), or null for no end.
    pub until: Option<DateTime<Utc>>,
    /// Who restricted.
    pub restricted_by: String,
    /// When (UTC).
    pub restricted_at: DateTime<Utc>,
    /// Who ended it: an admin, or `expired` when it reached its end.
    pub ended_by: Option<String>,
    /// When it ended (UTC); null while it is in force.
    pub ended_at: Option<DateTime<Utc>>,
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RestrictionError {
    /// No such student, contact linked to it, or restriction (within the tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is not valid (`field` is the JSON field name).
    #[error("{field}: {message}")]
    InvalidField {
        /// JSON field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A restriction to put on a link.
pub struct RestrictRequest<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The student's SIS source id.
    pub student_source_id: &'a str,
    /// The contact.
    pub contact_id: i64,
    /// For the record and the audit log.
    pub actor: &'a str,
    /// Why.
    pub reason: Reason,
    /// When it ends by itself; `None` for no end. Must be in the future.
    pub until: Option<DateTime<Utc>>,
}

/// The link of one student and contact, with its open restriction.
#[derive(Debug, FromQueryResult)]
struct Link {
    student_id: i64,
    link_id: Option<i64>,
    restriction_id: Option<i64>,
}

/// The student by its source id and its link to `contact` (one probe of each index).
async fn link<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_source_id: &str,
    contact: i64,
) -> Result<(i64, i64, Option<i64>), RestrictionError> {
    let found = db::rows::query_one::<Link, _>(
        conn,
        "SELECT s.id AS student_id, l.id AS link_id, l.restriction_id FROM students s \
         LEFT JOIN student_contacts l ON l.student_id = s.id AND l.contact_id = $3 AND l.tenant_id = $1 \
         WHERE s.tenant_id = $1 AND s.source_id = $2",
        vec![
            Value::BigInt(Some(tenant.0)),
            student_source_id.into(),
            Value::BigInt(Some(contact)),
        ],
    )
    .await?
    .ok_or(RestrictionError::NotFound("student"))?;
    let link = found.link_id.ok_or(RestrictionError::NotFound("contact"))?;
    Ok((found.student_id, link, found.restriction_id))
}

/// One restriction by id, with its student's source id.
#[derive(Debug, FromQueryResult)]
struct Row {
    id: i64,
    student_source_id: String,
    contact_id: i64,
    reason: String,
    until: Option<DateTime<Utc>>,
    restricted_by: String,
    restricted_at: DateTime<Utc>,
    ended_by: Option<String>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<Row> for Restriction {
    fn from(r: Row) -> Self {
        Restriction {
            id: r.id.to_string(),
            student_id: r.student_source_id,
            contact_id: r.contact_id.to_string(),
            reason: r.reason,
            until: r.until,
            restricted_by: r.restricted_by,
            restricted_at: r.restricted_at,
            ended_by: r.ended_by,
            ended_at: r.ended_at,
        }
    }
}

const SELECT: &str = "SELECT r.id, s.source_id AS student_source_id, r.contact_id, r.reason, r.until, \
       r.restricted_by, r.restricted_at, r.ended_by, r.ended_at \
     FROM link_restrictions r JOIN students s ON s.id = r.student_id";

async fn by_id<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: i64,
) -> Result<Restriction, RestrictionError> {
    db::rows::query_one::<Row, _>(
        conn,
        &format!("{SELECT} WHERE r.tenant_id = $1 AND r.id = $2"),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
    )
    .await?
    .map(Restriction::from)
    .ok_or(RestrictionError::NotFound("restriction"))
}

/// Ends restriction `id` of the link of `(student, contact)` (if still open) at `now`, by
/// `by`; whether it was open. The link is found by its unique (student, contact) index.
async fn end<C: ConnectionTrait>(
    conn: &C,
    (id, student, contact): (i64, i64, i64),
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let ended = db::exec(
        conn,
        "UPDATE link_restrictions SET ended_at = $2, ended_by = $3 WHERE id = $1 AND ended_at IS NULL",
        vec![
            Value::BigInt(Some(id)),
            Value::ChronoDateTimeUtc(Some(now)),
            by.into(),
        ],
    )
    .await?
    .rows_affected();
    db::exec(
        conn,
        "UPDATE student_contacts SET restriction_id = NULL \
         WHERE student_id = $2 AND contact_id = $3 AND restriction_id = $1",
        vec![
            Value::BigInt(Some(id)),
            Value::BigInt(Some(student)),
            Value::BigInt(Some(contact)),
        ],
    )
    .await?;
    Ok(ended > 0)
}

fn target(student_source_id: &str, contact: i64) -> String {
    format!("student:{student_source_id}/contact:{contact}")
}

fn summary(r: &Restriction) -> serde_json::Value {
    serde_json::json!({"id": r.id, "reason": r.reason, "until": r.until})
}

/// Restricts one student–contact link (active or not); a link already restricted has its
/// restriction replaced (the old one ends, by the same admin, in the same transaction, so
/// the link is never unrestricted in between). All-or-nothing, audited.
pub async fn restrict(
    db_conn: &DatabaseConnection,
    request: RestrictRequest<'_>,
) -> Result<Restriction, RestrictionError> {
    let now = Utc::now();
    if request.until.is_some_and(|until| until <= now) {
        return Err(RestrictionError::InvalidField {
            field: "until",
            message: "must be in the future".into(),
        });
    }
    let tenant = request.tenant;
    let txn = db::begin_write(db_conn).await?;
    let (student, link_id, open) =
        link(&txn, tenant, request.student_source_id, request.contact_id).await?;
    let before = match open {
        Some(open) => {
            let previous = by_id(&txn, tenant, open).await?;
            end(
                &txn,
                (open, student, request.contact_id),
                request.actor,
                now,
            )
            .await?;
            Some(summary(&previous))
        }
        None => None,
    };
    let row = entity::ActiveModel {
        id: NotSet,
        tenant_id: Set(tenant.0),
        student_id: Set(student),
        contact_id: Set(request.contact_id),
        reason: Set(request.reason.into_string()),
        until: Set(request.until),
        restricted_by: Set(request.actor.to_string()),
        restricted_at: Set(now),
        ended_by: Set(None),
        ended_at: Set(None),
    };
    let id = entity::Entity::insert(row).exec(&txn).await?.last_insert_id;
    db::exec(
        &txn,
        "UPDATE student_contacts SET restriction_id = $2 WHERE id = $1",
        vec![Value::BigInt(Some(link_id)), Value::BigInt(Some(id))],
    )
    .await?;
    banners::after_pair_change(
        &txn,
        tenant,
        now,
        Cause::Restricted,
        (student, request.contact_id),
    )
    .await?;
    let restriction = by_id(&txn, tenant, id).await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor: request.actor,
            action: "contact.restrict",
            target: Some(target(request.student_source_id, request.contact_id)),
            before,
            after: Some(summary(&restriction)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(restriction)
}

/// Lifts the open restriction of one student–contact link; audited. The contact is seen
/// about that student again if the link is otherwise visible (banners asking to remove
/// them are cleared then).
pub async fn lift(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    student_source_id: &str,
    contact: i64,
    actor: &str,
) -> Result<Restriction, RestrictionError> {
    let now = Utc::now();
    let txn = db::begin_write(db_conn).await?;
    let (student, _, open) = link(&txn, tenant, student_source_id, contact).await?;
    let open = open.ok_or(RestrictionError::NotFound("restriction"))?;
    end(&txn, (open, student, contact), actor, now).await?;
    banners::after_reactivation(&txn, tenant, now).await?;
    let lifted = by_id(&txn, tenant, open).await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "contact.unrestrict",
            target: Some(target(student_source_id, contact)),
            before: Some(summary(&lifted)),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(lifted)
}

/// An open restriction whose end has come.
#[derive(Debug, FromQueryResult)]
struct Due {
    id: i64,
    tenant_id: i64,
    student_id: i64,
    contact_id: i64,
    student_source_id: String,
    reason: String,
    until: Option<DateTime<Utc>>,
}

/// Ends every open restriction whose end is at or before `now`, in every tenant, in
/// batches (each its own transaction, audited as the `system`); returns how many ended.
/// Safe on several instances at once: a restriction is ended once.
pub async fn expire_due(db_conn: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let mut total = 0;
    loop {
        let due = db::rows::query_as::<Due, _>(
            db_conn,
            &format!(
                "SELECT r.id, r.tenant_id, r.student_id, r.contact_id, s.source_id AS student_source_id, r.reason, r.until \
                 FROM link_restrictions r JOIN students s ON s.id = r.student_id \
                 WHERE r.ended_at IS NULL AND r.until <= $1 ORDER BY r.until, r.id LIMIT {EXPIRY_BATCH}"
            ),
            vec![Value::ChronoDateTimeUtc(Some(now))],
        )
        .await?;
        if due.is_empty() {
            return Ok(total);
        }
        let txn = db::begin_write(db_conn).await?;
        let mut tenants = std::collections::BTreeSet::new();
        for r in &due {
            if !end(&txn, (r.id, r.student_id, r.contact_id), EXPIRED, now).await? {
                continue;
            }
            total += 1;
            let tenant = TenantId(r.tenant_id);
            tenants.insert(r.tenant_id);
            audit::record(
                &txn,
                AuditEntry {
                    tenant_id: Some(tenant),
                    actor: "system",
                    action: "contact.restriction_expired",
                    target: Some(target(&r.student_source_id, r.contact_id)),
                    before: Some(serde_json::json!({
                        "id": r.id.to_string(), "reason": r.reason, "until": r.until
                    })),
                    after: None,
                },
            )
            .await?;
        }
        for tenant in tenants {
            banners::after_reactivation(&txn, TenantId(tenant), now).await?;
        }
        txn.commit().await?;
        if (due.len() as u64) < EXPIRY_BATCH {
            return Ok(total);
        }
    }
}

/// Runs [`expire_due`] every [`EXPIRY_INTERVAL`] until the task is aborted.
pub fn spawn_expiry(db_conn: DatabaseConnection) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match expire_due(&db_conn, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(ended = n, "restrictions reached their end"),
                Err(e) => tracing::warn!(error = %e, "ending restrictions failed; retrying later"),
            }
            tokio::time::sleep(EXPIRY_INTERVAL).await;
        }
    })
}

/// The restrictions of student `student_source_id`, newest first, `limit` at a time from
/// before id `before`; with the cursor of the next page. An unknown student is not found.
pub async fn history<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_source_id: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<Restriction>, Option<String>), RestrictionError> {
    let student = db::rows::query_one::<StudentId, _>(
        conn,
        "SELECT id FROM students WHERE tenant_id = $1 AND source_id = $2",
        vec![Value::BigInt(Some(tenant.0)), student_source_id.into()],
    )
    .await?
    .ok_or(RestrictionError::NotFound("student"))?;
    let mut values = vec![
        Value::BigInt(Some(tenant.0)),
        Value::BigInt(Some(student.id)),
    ];
    let mut sql = format!("{SELECT} WHERE r.tenant_id = $1 AND r.student_id = $2");
    if let Some(before) = before {
        sql.push_str(" AND r.id < $3");
        values.push(Value::BigInt(Some(before)));
    }
    sql.push_str(&format!(" ORDER BY r.id DESC LIMIT {}", limit + 1));
    let mut rows = db::rows::query_as::<Row, _>(conn, &sql, values).await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok((rows.into_iter().map(Restriction::from).collect(), next))
}

/// A student's id.
#[derive(Debug, FromQueryResult)]
struct StudentId {
    id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_is_a_time_with_offset_or_the_start_of_a_local_day() {
        let zone = TimeZoneName::parse("America/New_York").unwrap();
        let at = |raw| parse_until(raw, zone).unwrap().unwrap().to_rfc3339();
        assert_eq!(at("2027-06-30"), "2027-06-30T04:00:00+00:00");
        assert_eq!(at("2027-01-15"), "2027-01-15T05:00:00+00:00");
        assert_eq!(at("2027-06-30T12:00:00+02:00"), "2027-06-30T10:00:00+00:00");
        assert_eq!(parse_until("  ", zone), Ok(None));
        assert!(parse_until("30/06/2027", zone).is_err());
        assert!(parse_until("2027-02-30", zone).is_err());
        // A day that starts with a DST gap starts at the end of the gap.
        let havana = TimeZoneName::parse("America/Havana").unwrap();
        let start = parse_until("2027-03-14", havana).unwrap().unwrap();
        assert_eq!(start.to_rfc3339(), "2027-03-14T05:00:00+00:00");
    }
}
