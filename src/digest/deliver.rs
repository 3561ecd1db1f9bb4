//! Digests on their way out, and the disclosure log. A run records each digest as one
//! `digest_deliveries` row — unique per (week, guardian), which is what makes re-runs,
//! concurrent runs and restarts after a crash queue at most one digest per guardian and
//! week ([`Composer::queue_all`](super::compose::Composer::queue_all)) — and the run's id
//! range as a `digest_runs` row. Dispatchers then, each round:
//!
//! 1. hand the next deliveries of the oldest open run to the outbox ([`hand_over`]): one
//!    outbox row each, and the run's cursor `handed_through` moves past them, so the outbox
//!    holds a batch of digests at a time rather than a week's million;
//! 2. render each email when they send it ([`render_many`]), as the digest is then;
//! 3. on success remove the outbox row
//!    ([`remove_sent`](crate::outbox::store::remove_sent)): a handed-over delivery without
//!    an outbox row was sent. A digest that is retried, fails, dies or is suppressed keeps
//!    its outbox row, where the admin view shows it and it can be requeued.
//!
//! Delivery rows are written once and never updated (no dead row versions on PostgreSQL).
//! They are the disclosure log (who received a digest about which students, when).

use super::compose::{Composer, Digest, Queued};
use super::week::IsoWeek;
use crate::db;
use crate::domain::TenantId;
use crate::outbox::store::Claimed;
use crate::outbox::{Outgoing, message_id};
use crate::web::links::Links;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Digest deliveries recorded for `week` (sent or not).
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

/// Serialises the real runs of `tenant` inside the caller's transaction (PostgreSQL: a
/// transaction-scoped advisory lock; SQLite's write transaction is exclusive already), so
/// a run's new delivery ids hold no other run of the tenant and a second run sees the
/// first one's rows. Not a row lock on the tenant: that would also stop, for the whole
/// run, every update of the tenant's row (its link secret) ([`db::TenantLock`]).
pub async fn lock_tenant<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<(), DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres {
        db::exec(
            conn,
            db::TENANT_LOCK_SQL,
            vec![Value::BigInt(Some(db::TenantLock::Digest.key(tenant.0)))],
        )
        .await?;
    }
    Ok(())
}

/// Records the id range of a run's new deliveries (`digest_runs`), nothing handed over yet.
pub async fn record_run<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    week: &str,
    queued: Queued,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if queued.count == 0 {
        return Ok(());
    }
    db::exec(
        conn,
        "INSERT INTO digest_runs (tenant_id, week, first_id, last_id, handed_through, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Value::BigInt(Some(tenant.0)),
            week.into(),
            Value::BigInt(Some(queued.first_id)),
            Value::BigInt(Some(queued.last_id)),
            Value::BigInt(Some(queued.first_id - 1)),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?;
    Ok(())
}

/// Child sections and assignment lines over the deliveries a run recorded (its id range,
/// this tenant's rows only): one aggregate over the primary key range.
pub async fn run_totals<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    queued: Queued,
) -> Result<(u64, u64), DbErr> {
    if queued.count == 0 {
        return Ok((0, 0));
    }
    let length = match conn.get_database_backend() {
        DbBackend::Postgres => "json_array_length(CAST(students AS json))",
        _ => "json_array_length(students)",
    };
    let rows = db::query(
        conn,
        &format!(
            "SELECT CAST(COALESCE(SUM({length}), 0) AS BIGINT) AS children, \
               CAST(COALESCE(SUM(assignments), 0) AS BIGINT) AS assignments \
             FROM digest_deliveries WHERE id >= $1 AND id <= $2 AND tenant_id = $3"
        ),
        vec![
            Value::BigInt(Some(queued.first_id)),
            Value::BigInt(Some(queued.last_id)),
            Value::BigInt(Some(tenant.0)),
        ],
    )
    .await?;
    let row = rows
        .first()
        .ok_or_else(|| DbErr::Custom("the totals query returned no row".into()))?;
    let number = |column: &str| {
        row.try_get::<i64>("", column)
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    Ok((number("children")?, number("assignments")?))
}

/// Hands up to `limit` deliveries of the oldest run not fully handed over to the outbox,
/// due at `now`, and moves the run's cursor past them; returns how many. On PostgreSQL the
/// run is picked with `FOR UPDATE SKIP LOCKED`, so dispatchers side by side never hand
/// over the same delivery; on SQLite the hand-over is one `IMMEDIATE` transaction.
pub async fn hand_over(
    db_conn: &DatabaseConnection,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let open = "SELECT id, tenant_id, handed_through, last_id FROM digest_runs \
                WHERE handed_through < last_id ORDER BY id LIMIT 1";
    // A read first: most rounds have nothing to hand over and need no write lock.
    if limit == 0 || db::query(db_conn, open, vec![]).await?.is_empty() {
        return Ok(0);
    }
    let txn = db::begin_write(db_conn).await?;
    let lock = match db_conn.get_database_backend() {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let Some(run) = db::query(&txn, &format!("{open}{lock}"), vec![])
        .await?
        .into_iter()
        .next()
    else {
        txn.commit().await?;
        return Ok(0);
    };
    let (run_id, tenant, handed, last): (i64, i64, i64, i64) = (
        run.try_get_by_index(0)?,
        run.try_get_by_index(1)?,
        run.try_get_by_index(2)?,
        run.try_get_by_index(3)?,
    );
    let ids = db::query(
        &txn,
        &format!(
            "SELECT id FROM digest_deliveries WHERE id > $1 AND id <= $2 AND tenant_id = $3 ORDER BY id LIMIT {limit}"
        ),
        vec![
            Value::BigInt(Some(handed)),
            Value::BigInt(Some(last)),
            Value::BigInt(Some(tenant)),
        ],
    )
    .await?
    .iter()
    .map(|r| r.try_get_by_index::<i64>(0))
    .collect::<Result<Vec<_>, _>>()?;
    if !ids.is_empty() {
        // The recipient is the address now; the email itself is rendered at send time.
        let list = db::id_list(ids.iter().copied());
        db::exec(
            &txn,
            &format!(
                "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
                 SELECT d.tenant_id, 'digest', d.id, 'email', COALESCE(c.email, ''), 'queued', 0, $1, $1, $1 \
                 FROM digest_deliveries d LEFT JOIN contacts c ON c.id = d.contact_id WHERE d.id IN ({list}) ORDER BY d.id"
            ),
            vec![Value::ChronoDateTimeUtc(Some(now))],
        )
        .await?;
    }
    let through = match ids.last() {
        Some(id) if (ids.len() as u64) == limit => *id,
        _ => last,
    };
    db::exec(
        &txn,
        "UPDATE digest_runs SET handed_through = $1 WHERE id = $2",
        vec![Value::BigInt(Some(through)), Value::BigInt(Some(run_id))],
    )
    .await?;
    txn.commit().await?;
    Ok(ids.len() as u64)
}

/// Digests of `tenant` recorded but not handed to the outbox yet, counted up to `cap`.
pub async fn waiting<C: ConnectionTrait>(conn: &C, tenant: i64, cap: i64) -> Result<i64, DbErr> {
    db::count(
        conn,
        "SELECT COUNT(*) FROM (SELECT 1 FROM digest_runs r JOIN digest_deliveries d \
           ON d.id > r.handed_through AND d.id <= r.last_id AND d.tenant_id = r.tenant_id \
         WHERE r.tenant_id = $1 AND r.handed_through < r.last_id LIMIT $2) capped",
        vec![Value::BigInt(Some(tenant)), Value::BigInt(Some(cap))],
    )
    .await
}

/// Renders the digests behind outbox rows `claimed` as they are now, one composition query
/// per tenant and week; a row whose digest has nothing to report any more (the guardian
/// left, was erased, or lost their email) maps to `None`.
pub async fn render_many<C: ConnectionTrait>(
    conn: &C,
    (message_id_domain, links): (&str, &Links),
    claimed: &[&Claimed],
) -> Result<HashMap<i64, Option<Outgoing>>, DbErr> {
    let mut out: HashMap<i64, Option<Outgoing>> = claimed.iter().map(|c| (c.id, None)).collect();
    if claimed.is_empty() {
        return Ok(out);
    }
    let by_delivery: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
    let list = db::id_list(by_delivery.keys().copied());
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
        let secret = super::unsubscribe::secret(conn, tenant.id).await?;
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
            let unsubscribe = super::unsubscribe::link(links, &secret, tenant.id, contact);
            let rendered =
                super::render::render(digest, &tenant.name, &windows, schedule.zone, unsubscribe)
                    .map_err(|e| DbErr::Custom(format!("cannot render the digest: {e}")))?;
            out.insert(
                claimed.id,
                Some(Outgoing {
                    message_id: message_id(claimed.id, message_id_domain),
                    to: rendered.to,
                    subject: Some(rendered.subject),
                    body: rendered.body,
                    list_unsubscribe: Some(rendered.unsubscribe),
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
           CASE WHEN o.id IS NOT NULL THEN o.status WHEN r.handed_through >= d.id THEN 'sent' ELSE 'queued' END \
         FROM digest_deliveries d LEFT JOIN outbox o ON o.kind = 'digest' AND o.ref_id = d.id \
         LEFT JOIN digest_runs r ON r.tenant_id = d.tenant_id AND d.id >= r.first_id AND d.id <= r.last_id \
         WHERE d.tenant_id = $1",
        vec![Value::BigInt(Some(tenant.0))],
    );
    if let Some(week) = week {
        filters.and("d.week =", week);
    }
    if let Some(contact) = contact {
        // Through the (week, contact) key, one look-up per week the tenant ran.
        filters.and(
            "d.week IN (SELECT r.week FROM digest_runs r WHERE r.tenant_id = $1) AND d.contact_id =",
            contact,
        );
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
