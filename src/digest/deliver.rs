//! Digests on their way out, and the disclosure log. A run records each digest as one
//! `digest_deliveries` row — unique per (week, guardian), which is what makes re-runs,
//! concurrent runs and restarts after a crash queue at most one digest per guardian and
//! week ([`Composer::queue_all`](super::compose::Composer::queue_all)) — and the run's id
//! range as a `digest_runs` row. Dispatchers then, each round:
//!
//! 1. hand the next deliveries of the oldest open run to the outbox ([`hand_over`]): one
//!    outbox row each, and the run's cursor `handed_through` moves past them, so the outbox
//!    holds a batch of digests at a time rather than a week's million;
//! 2. render each email when they send it ([`DigestMessages`]), as the digest is then; a
//!    group (tenant and week) that cannot be rendered fails alone, for now;
//! 3. on success remove the outbox row
//!    ([`remove_sent`](crate::outbox::store::remove_sent)): a handed-over delivery without
//!    an outbox row was sent. A digest that is retried, fails, dies or is suppressed keeps
//!    its outbox row, where the admin view shows it and it can be requeued.
//!
//! Delivery rows are written once and never updated (no dead row versions on PostgreSQL).
//! They are the disclosure log (who received a digest about which students, when).

use super::compose::{Composer, Digest, Queued};
use super::week::IsoWeek;
use crate::db::{self, WriteTxn, engine};
use crate::domain::TenantId;
use crate::links::Links;
use crate::outbox::disclosures::{About, about_claims};
use crate::outbox::port::{MessageKindHandler, Rendered};
use crate::outbox::store::{self as outbox, Claimed};
use crate::outbox::{MessageKind, Outgoing, message_id};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
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
    engine::claim::serialise(conn, db::TenantLock::Digest.key(tenant)).await
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
    let length = engine::json::array_length(conn, "students");
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
    let totals = Totals::from_query_result(row, "")?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok((count(totals.children), count(totals.assignments)))
}

/// The sums [`run_totals`] reads.
#[derive(Debug, FromQueryResult)]
struct Totals {
    children: i64,
    assignments: i64,
}

/// A run not fully handed over yet.
#[derive(Debug, FromQueryResult)]
struct OpenRun {
    id: i64,
    tenant_id: i64,
    handed_through: i64,
    last_id: i64,
}

/// An id, read by name.
#[derive(Debug, FromQueryResult)]
struct Id {
    id: i64,
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
    let lock = engine::claim::skip_locked(&txn);
    let Some(run) = db::query(&txn, &format!("{open}{lock}"), vec![])
        .await?
        .first()
        .map(|row| OpenRun::from_query_result(row, ""))
        .transpose()?
    else {
        txn.commit().await?;
        return Ok(0);
    };
    // One statement picks the next deliveries and queues them (the recipient is the
    // address now; the email itself is rendered at send time): a select of the ids and an
    // insert by id list took twice as long on PostgreSQL (measured, docs/performance.md).
    let ids = db::query(
        &txn,
        &format!(
            "INSERT INTO outbox (tenant_id, kind, ref_id, channel, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
             SELECT d.tenant_id, $1, d.id, $2, COALESCE(c.email, ''), $3, 0, $4, $4, $4 \
             FROM digest_deliveries d LEFT JOIN contacts c ON c.id = d.contact_id \
             WHERE d.id > $5 AND d.id <= $6 AND d.tenant_id = $7 ORDER BY d.id LIMIT {limit} \
             RETURNING ref_id AS id"
        ),
        vec![
            MessageKind::Digest.as_str().into(),
            crate::outbox::Channel::Email.as_str().into(),
            crate::outbox::Status::Queued.as_str().into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(run.handed_through)),
            Value::BigInt(Some(run.last_id)),
            Value::BigInt(Some(run.tenant_id)),
        ],
    )
    .await?
    .iter()
    .map(|r| Id::from_query_result(r, "").map(|r| r.id))
    .collect::<Result<Vec<_>, _>>()?;
    // RETURNING promises no order: the cursor moves to the largest id handed over.
    let through = match ids.iter().max() {
        Some(id) if (ids.len() as u64) == limit => *id,
        _ => run.last_id,
    };
    db::exec(
        &txn,
        "UPDATE digest_runs SET handed_through = $1 WHERE id = $2",
        vec![Value::BigInt(Some(through)), Value::BigInt(Some(run.id))],
    )
    .await?;
    txn.commit().await?;
    Ok(ids.len() as u64)
}

/// Digests of `tenant` recorded but not handed to the outbox yet, counted up to `cap`.
pub async fn waiting<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    cap: i64,
) -> Result<i64, DbErr> {
    db::count(
        conn,
        "SELECT COUNT(*) FROM (SELECT 1 FROM digest_runs r JOIN digest_deliveries d \
           ON d.id > r.handed_through AND d.id <= r.last_id AND d.tenant_id = r.tenant_id \
         WHERE r.tenant_id = $1 AND r.handed_through < r.last_id LIMIT $2) capped",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(cap))],
    )
    .await
}

/// The weekly digest kind of outbox message, as the dispatcher sees it: handed over a batch
/// at a time, rendered at send time, and gone from the outbox once sent.
#[derive(Debug, Clone)]
pub struct DigestMessages {
    message_id_domain: String,
    links: Links,
}

impl DigestMessages {
    /// Digests with Message-IDs in `message_id_domain` and unsubscribe links from `links`.
    pub fn new(message_id_domain: impl Into<String>, links: Links) -> Self {
        Self {
            message_id_domain: message_id_domain.into(),
            links,
        }
    }
}

#[async_trait::async_trait]
impl MessageKindHandler for DigestMessages {
    fn kind(&self) -> MessageKind {
        MessageKind::Digest
    }

    async fn hand_over(
        &self,
        db: &DatabaseConnection,
        limit: u64,
        now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        hand_over(db, limit, now).await
    }

    async fn render(
        &self,
        db: &DatabaseConnection,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, Rendered>, DbErr> {
        render_many(db, (&self.message_id_domain, &self.links), claimed).await
    }

    async fn finish_sent(
        &self,
        txn: &WriteTxn,
        held: &[outbox::Hold],
        _now: DateTime<Utc>,
    ) -> Result<u64, DbErr> {
        outbox::remove_sent(txn, held).await
    }

    async fn disclosed(
        &self,
        txn: &WriteTxn,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, About>, DbErr> {
        disclosed(txn, claimed).await
    }

    async fn waiting(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
        cap: i64,
    ) -> Result<i64, DbErr> {
        waiting(db, tenant, cap).await
    }
}

/// A delivery's guardian and students, as stored.
#[derive(Debug, FromQueryResult)]
struct DeliverySubject {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    students: String,
}

/// The guardian and students of each sent digest of `claimed` (the disclosure log).
async fn disclosed<C: ConnectionTrait>(
    conn: &C,
    claimed: &[&Claimed],
) -> Result<HashMap<i64, About>, DbErr> {
    if claimed.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<DeliverySubject> = db::rows::query_as(
        conn,
        &format!(
            "SELECT id, tenant_id, contact_id, students FROM digest_deliveries WHERE id IN ({})",
            db::id_list(claimed.iter().map(|c| c.ref_id))
        ),
        vec![],
    )
    .await?;
    Ok(about_claims(
        claimed,
        rows.into_iter().map(|row| {
            let about = About {
                contact_id: row.contact_id,
                students: serde_json::from_str(&row.students).unwrap_or_default(),
            };
            (row.id, TenantId(row.tenant_id), about)
        }),
    ))
}

/// The delivery behind a claimed digest.
#[derive(Debug, FromQueryResult)]
struct DeliveryRef {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    week: String,
}

/// Renders the digests behind outbox rows `claimed` as they are now, one composition query
/// per tenant and week; a row whose digest has nothing to report any more (the guardian
/// left, was erased, or lost their email) is [`Rendered::Gone`]. A group (tenant and week)
/// that cannot be rendered makes its rows [`Rendered::Failed`], and only those.
async fn render_many<C: ConnectionTrait>(
    conn: &C,
    (message_id_domain, links): (&str, &Links),
    claimed: &[&Claimed],
) -> Result<HashMap<i64, Rendered>, DbErr> {
    let mut out: HashMap<i64, Rendered> = claimed.iter().map(|c| (c.id, Rendered::Gone)).collect();
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
        let row = DeliveryRef::from_query_result(row, "")?;
        let Some(claimed) = by_delivery.get(&row.id) else {
            continue;
        };
        // Never cross tenants, even on a corrupt reference.
        if TenantId(row.tenant_id) != claimed.tenant_id {
            continue;
        }
        groups
            .entry((claimed.tenant_id.0, row.week))
            .or_default()
            .push((row.contact_id, *claimed));
    }
    for ((tenant, week), members) in groups {
        let tenant = TenantId(tenant);
        let group = Group {
            tenant,
            week: &week,
            message_id_domain,
            links,
        };
        match group.render(conn, &members).await {
            Ok(rendered) => out.extend(rendered),
            Err(reason) => {
                tracing::warn!(tenant = tenant.0, %week, %reason, "cannot render a group of digests");
                for (_, claimed) in &members {
                    out.insert(claimed.id, Rendered::Failed(reason.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The digests of one tenant and week, rendered together.
struct Group<'a> {
    tenant: TenantId,
    week: &'a str,
    message_id_domain: &'a str,
    links: &'a Links,
}

impl Group<'_> {
    /// Renders `members` ((contact, outbox row)); an error (why) fails them all.
    async fn render<C: ConnectionTrait>(
        &self,
        conn: &C,
        members: &[(i64, &Claimed)],
    ) -> Result<Vec<(i64, Rendered)>, String> {
        let tenant = crate::tenants::find_by_id(conn, self.tenant)
            .await
            .map_err(|e| e.to_string())?;
        let week = IsoWeek::parse(self.week).map_err(|e| e.0)?;
        let (schedule, windows) = super::windows(&tenant, Some(week)).map_err(|e| e.0)?;
        let secret = super::unsubscribe::secret(conn, tenant.id)
            .await
            .map_err(|e| e.to_string())?;
        let contacts: Vec<i64> = members.iter().map(|(contact, _)| *contact).collect();
        let digests: HashMap<i64, Digest> = Composer::new(conn, tenant.id, windows, 1)
            .for_contacts(&contacts)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|d| (d.contact_id, d))
            .collect();
        let texts = Texts {
            tenant: tenant.id,
            tenant_name: tenant.name,
            windows,
            zone: schedule.zone,
            language: tenant.settings.default_language,
            secret,
            links: self.links.clone(),
            message_id_domain: self.message_id_domain.to_owned(),
        };
        let members: Vec<(i64, i64)> = members
            .iter()
            .map(|(c, claimed)| (*c, claimed.id))
            .collect();
        // The text is the CPU work of a batch: on a blocking thread, beside the sends.
        tokio::task::spawn_blocking(move || texts.render(&digests, &members))
            .await
            .map_err(|e| format!("cannot render the digests: {e}"))
    }
}

/// What the texts of one tenant's digests of a week need, owned (rendered off the async
/// executor's threads).
struct Texts {
    tenant: TenantId,
    tenant_name: String,
    windows: super::Windows,
    zone: chrono_tz::Tz,
    language: crate::i18n::Locale,
    secret: String,
    links: Links,
    message_id_domain: String,
}

impl Texts {
    /// The message of each `members` ((contact, outbox id)) that has a digest in `digests`.
    fn render(
        &self,
        digests: &HashMap<i64, Digest>,
        members: &[(i64, i64)],
    ) -> Vec<(i64, Rendered)> {
        let mut out = Vec::with_capacity(members.len());
        let mut times = super::render::DueTimes::new(self.zone, self.language);
        for &(contact, outbox_id) in members {
            let Some(digest) = digests.get(&contact) else {
                continue;
            };
            let unsubscribe =
                super::unsubscribe::link(&self.links, &self.secret, self.tenant, contact);
            let rendered = match super::render::render_with(
                digest,
                (&self.tenant_name, &self.windows),
                &mut times,
                unsubscribe,
            ) {
                Ok(rendered) => Rendered::Ready(Outgoing {
                    message_id: message_id(outbox_id, &self.message_id_domain),
                    to: rendered.to,
                    subject: Some(rendered.subject),
                    body: rendered.body,
                    list_unsubscribe: Some(rendered.unsubscribe),
                    language: Some(rendered.language),
                }),
                Err(e) => Rendered::Failed(format!("cannot render the digest: {e}")),
            };
            out.push((outbox_id, rendered));
        }
        out
    }
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

/// A disclosure log entry as stored, with its delivery status.
#[derive(Debug, FromQueryResult)]
struct DeliveryRow {
    id: i64,
    contact_id: i64,
    week: String,
    students: String,
    assignments: i64,
    queued_at: DateTime<Utc>,
    status: Option<String>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id.to_string(),
            contact_id: row.contact_id.to_string(),
            week: row.week,
            students: serde_json::from_str(&row.students).unwrap_or_default(),
            assignments: row.assignments,
            queued_at: row.queued_at,
            // A message being sent right now is still queued as far as anyone can tell.
            status: match row.status.as_deref() {
                Some("sending") | None => "queued".into(),
                Some(other) => other.into(),
            },
        }
    }
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
        concat!(
            "SELECT d.id, d.contact_id, d.week, d.students, d.assignments, d.queued_at, \
               CASE WHEN o.id IS NOT NULL THEN o.status WHEN r.handed_through >= d.id THEN 'sent' ELSE 'queued' END AS status \
             FROM digest_deliveries d LEFT JOIN outbox o ON o.kind = ",
            crate::outbox_kind!(Digest),
            " AND o.ref_id = d.id \
             LEFT JOIN digest_runs r ON r.tenant_id = d.tenant_id AND d.id >= r.first_id AND d.id <= r.last_id \
             WHERE d.tenant_id = $1"
        ),
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
        .map(|row| DeliveryRow::from_query_result(row, "").map(Delivery::from))
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |d| d.id.clone()))
}
