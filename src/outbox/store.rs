//! Outbox rows: enqueueing (inside the caller's transaction), claiming due rows, recording
//! outcomes, and the admin view (counts by status, dead letters, requeue).
//!
//! Statuses: `queued` (due at `next_attempt_at`), `sending` (claimed by a dispatcher until
//! `lease_until`), `sent`, `failed` (final error), `dead` (out of attempts), `suppressed`
//! (not sent on purpose, e.g. the number opted out). A `sending` row whose lease ran out —
//! its dispatcher died — is due again, so nothing is lost and at most the messages that
//! were in flight are sent twice (with the same Message-ID / idempotency key).
//!
//! Every claim of a row sets its `claim_token` to a new value (one more than before): the
//! fencing token of that claim ([`Hold`]). The holder renews its lease ([`renew`]) while it
//! sends, and renews, records and releases only `WHERE id = ? AND claim_token = ?`, so a
//! holder whose claim ran out and was taken over changes nothing.

use super::{Channel, MessageKind, Status};
use crate::audit::{self, AuditEntry};
use crate::db::{self, engine::claim as engine};
use crate::domain::TenantId;
use crate::entities::outbox as entity;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult, Value,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Queues a message in the caller's transaction; returns the outbox id.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    kind: MessageKind,
    ref_id: i64,
    to: (Channel, &str),
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    insert(conn, tenant, (kind, ref_id), to, now, now).await
}

/// Queues a message someone is waiting for (a sign-in code) ahead of every other due row:
/// claims take rows in `next_attempt_at` order, and this one is due since
/// [`URGENT_DUE_AT`], so a backlog (a weekly digest run) never delays it. A retry after a
/// failure is scheduled by the backoff like any other row.
pub async fn enqueue_urgent<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    kind: MessageKind,
    ref_id: i64,
    to: (Channel, &str),
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let due = DateTime::<Utc>::from_timestamp(URGENT_DUE_AT, 0).unwrap_or(now);
    insert(conn, tenant, (kind, ref_id), to, now, due).await
}

/// When an urgent row is due (2000-01-01 UTC, before any other row).
pub const URGENT_DUE_AT: i64 = 946_684_800;

/// Why a queued row waits past the time it was queued (`outbox.held_for`).
pub const QUIET_HOURS: &str = "quiet_hours";

/// Queues a message that must wait until `until` (`why`: [`QUIET_HOURS`]) in the caller's
/// transaction; the admin view lists it with the time it goes. Returns the outbox id.
pub async fn enqueue_held<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    (kind, ref_id): (MessageKind, i64),
    to: (Channel, &str),
    now: DateTime<Utc>,
    (until, why): (DateTime<Utc>, &str),
) -> Result<i64, DbErr> {
    let id = insert(conn, tenant, (kind, ref_id), to, now, until).await?;
    db::exec(
        conn,
        "UPDATE outbox SET held_for = $1 WHERE id = $2",
        vec![why.into(), Value::BigInt(Some(id))],
    )
    .await?;
    Ok(id)
}

/// Makes the queued row of `kind` `ref_id` due now if it was held, in the caller's
/// transaction (an admin sends it as urgent); returns whether there was one.
pub async fn release_held<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    (kind, ref_id): (MessageKind, i64),
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let changed = db::exec(
        conn,
        "UPDATE outbox SET held_for = NULL, next_attempt_at = $1, updated_at = $1 \
         WHERE tenant_id = $2 AND kind = $3 AND ref_id = $4 AND status = 'queued'",
        vec![
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(tenant.0)),
            kind.as_str().into(),
            Value::BigInt(Some(ref_id)),
        ],
    )
    .await?
    .rows_affected();
    Ok(changed > 0)
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    (kind, ref_id): (MessageKind, i64),
    (channel, recipient): (Channel, &str),
    now: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let row = entity::ActiveModel {
        id: NotSet,
        tenant_id: Set(tenant.0),
        kind: Set(kind),
        ref_id: Set(ref_id),
        channel: Set(channel),
        recipient: Set(recipient.to_string()),
        status: Set(Status::Queued),
        attempts: Set(0),
        next_attempt_at: Set(due),
        claimed_by: Set(None),
        lease_until: Set(None),
        claim_token: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
        held_for: Set(None),
    };
    Ok(entity::Entity::insert(row).exec(conn).await?.last_insert_id)
}

/// A row claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Outbox id.
    pub id: i64,
    /// Tenant.
    pub tenant_id: TenantId,
    /// What it delivers.
    pub kind: MessageKind,
    /// The referenced row.
    pub ref_id: i64,
    /// Channel.
    pub channel: Channel,
    /// Email address or E.164 number.
    pub recipient: String,
    /// Attempts including this one.
    pub attempts: i64,
    /// The fencing token of this claim.
    pub token: i64,
}

impl Claimed {
    /// This claim: the row and its fencing token.
    pub fn hold(&self) -> Hold {
        Hold {
            id: self.id,
            token: self.token,
        }
    }
}

/// One claim of one row: its id and the fencing token the claim set (`outbox.claim_token`).
/// Only the current claim's holder changes the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hold {
    /// Outbox id.
    pub id: i64,
    /// The claim's token.
    pub token: i64,
}

/// A claimed row as stored: kind and channel stay text here, so that one row with a value
/// this build does not know fails alone ([`Unknown`]) instead of the whole claim.
#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: i64,
    tenant_id: i64,
    kind: String,
    ref_id: i64,
    channel: String,
    recipient: String,
    attempts: i64,
    claim_token: i64,
}

/// A claimed row whose kind or channel this build does not know.
#[derive(Debug, Clone)]
struct Unknown {
    hold: Hold,
    error: String,
}

impl ClaimedRow {
    fn parse(self) -> Result<Claimed, Unknown> {
        let hold = Hold {
            id: self.id,
            token: self.claim_token,
        };
        let unknown = |error: String| Unknown { hold, error };
        let kind = MessageKind::parse(&self.kind)
            .ok_or_else(|| unknown(format!("unknown outbox kind '{}'", self.kind)))?;
        let channel = Channel::parse(&self.channel)
            .ok_or_else(|| unknown(format!("unknown channel '{}'", self.channel)))?;
        Ok(Claimed {
            id: self.id,
            tenant_id: TenantId(self.tenant_id),
            kind,
            ref_id: self.ref_id,
            channel,
            recipient: self.recipient,
            attempts: self.attempts,
            token: self.claim_token,
        })
    }
}

/// Claims up to `limit` due rows for `worker` until `lease_until`, in one write
/// transaction, each with a new fencing token; concurrent dispatchers take disjoint rows
/// ([`engine::claim_statement`]).
/// A row of a kind or channel this build does not know fails for good at once, alone.
pub async fn claim(
    db_conn: &DatabaseConnection,
    worker: &str,
    limit: u64,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<Claimed>, DbErr> {
    let sql = engine::claim_statement(
        db_conn,
        engine::Claim {
            table: "outbox",
            due: "(status = 'queued' AND next_attempt_at <= $3) OR (status = 'sending' AND lease_until < $3)",
            order: "next_attempt_at, id",
            limit,
            set: "status = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3, \
                  claim_token = claim_token + 1",
            returning: "outbox.id, outbox.tenant_id, outbox.kind, outbox.ref_id, outbox.channel, outbox.recipient, outbox.attempts, \
                        outbox.claim_token",
        },
    );
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
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        match ClaimedRow::from_query_result(row, "")?.parse() {
            Ok(row) => claimed.push(row),
            Err(unknown) => {
                tracing::warn!(id = unknown.hold.id, error = %unknown.error, "outbox row fails");
                let outcome = Outcome::Failed {
                    error: unknown.error,
                };
                record(&txn, unknown.hold, &outcome, now).await?;
            }
        }
    }
    txn.commit().await?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// Gives back the claims of `held` still current without having tried to send them (a
/// dispatcher shutting down): due again at once for any dispatcher, with the attempt their
/// claim counted taken back. Returns how many.
pub async fn release(
    db_conn: &DatabaseConnection,
    held: &[Hold],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if held.is_empty() {
        return Ok(0);
    }
    let txn = db::begin_write(db_conn).await?;
    let released = on_held(
        &txn,
        "UPDATE outbox SET status = 'queued', claimed_by = NULL, lease_until = NULL, \
           attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $1",
        held,
        vec![Value::ChronoDateTimeUtc(Some(now))],
    )
    .await?;
    txn.commit().await?;
    Ok(released)
}

/// Extends to `lease_until` the claims of `held` that are still current (a dispatcher
/// still sending them); returns how many. A claim that ran out and was taken over is not
/// renewed.
pub async fn renew(
    db_conn: &DatabaseConnection,
    held: &[Hold],
    lease_until: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if held.is_empty() {
        return Ok(0);
    }
    let txn = db::begin_write(db_conn).await?;
    let renewed = on_held(
        &txn,
        "UPDATE outbox SET lease_until = $1",
        held,
        vec![Value::ChronoDateTimeUtc(Some(lease_until))],
    )
    .await?;
    txn.commit().await?;
    Ok(renewed)
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
    /// Not to be sent before `until` (quiet hours): queued again for then, the attempt not
    /// counted.
    Held {
        /// When it may go.
        until: DateTime<Utc>,
        /// Why ([`QUIET_HOURS`]).
        reason: String,
    },
}

/// Records `outcome` for the claim `hold` when it is still current (a row whose lease ran
/// out and that another dispatcher claimed is left to that dispatcher). Returns false when
/// the claim was no longer current.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    hold: Hold,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if let Outcome::Held { until, reason } = outcome {
        return record_held(conn, hold, (*until, reason), now).await;
    }
    let (status, next, error, sent_at) = match outcome {
        Outcome::Held { .. } => unreachable!("recorded above"),
        Outcome::Sent => (Status::Sent, None, None, Some(now)),
        Outcome::Retry { at, error } => (Status::Queued, Some(*at), Some(error.clone()), None),
        Outcome::Failed { error } => (Status::Failed, None, Some(error.clone()), None),
        Outcome::Dead { error } => (Status::Dead, None, Some(error.clone()), None),
        Outcome::Suppressed { reason } => (Status::Suppressed, None, Some(reason.clone()), None),
    };
    let changed = db::exec(
        conn,
        "UPDATE outbox SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at), last_error = COALESCE($3, last_error), \
           sent_at = COALESCE($4, sent_at), claimed_by = NULL, lease_until = NULL, updated_at = $5, held_for = NULL \
         WHERE id = $6 AND claim_token = $7 AND status = 'sending'",
        vec![
            status.as_str().into(),
            Value::ChronoDateTimeUtc(next),
            Value::String(error),
            Value::ChronoDateTimeUtc(sent_at),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(hold.id)),
            Value::BigInt(Some(hold.token)),
        ],
    )
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Queues the claimed row of `hold` again for `until`, held for `why`, taking back the
/// attempt its claim counted; false when the claim was no longer current.
async fn record_held<C: ConnectionTrait>(
    conn: &C,
    hold: Hold,
    (until, why): (DateTime<Utc>, &str),
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let changed = db::exec(
        conn,
        "UPDATE outbox SET status = 'queued', next_attempt_at = $1, held_for = $2, claimed_by = NULL, lease_until = NULL, \
           attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = $3 \
         WHERE id = $4 AND claim_token = $5 AND status = 'sending'",
        vec![
            Value::ChronoDateTimeUtc(Some(until)),
            why.into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(hold.id)),
            Value::BigInt(Some(hold.token)),
        ],
    )
    .await?
    .rows_affected();
    Ok(changed > 0)
}

/// Records `Sent` for the claims of `held` still current, in one statement; returns how
/// many were.
pub async fn record_sent<C: ConnectionTrait>(
    conn: &C,
    held: &[Hold],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    on_held(
        conn,
        "UPDATE outbox SET status = 'sent', sent_at = $1, claimed_by = NULL, lease_until = NULL, updated_at = $1, held_for = NULL",
        held,
        vec![Value::ChronoDateTimeUtc(Some(now))],
    )
    .await
}

/// Removes the rows of the claims of `held` still current after they were sent, for a
/// kind whose own table tells that they were (a weekly digest: handed over and no outbox
/// row any more); returns how many were current. A week's million digests leave no rows
/// behind.
pub async fn remove_sent<C: ConnectionTrait>(conn: &C, held: &[Hold]) -> Result<u64, DbErr> {
    on_held(conn, "DELETE FROM outbox", held, vec![]).await
}

/// Runs `statement` (an UPDATE or DELETE of `outbox` using `$1`… for `values`) on the rows
/// of `held` whose claim is still current (same fencing token, still sending); returns how
/// many.
async fn on_held<C: ConnectionTrait>(
    conn: &C,
    statement: &str,
    held: &[Hold],
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    if held.is_empty() {
        return Ok(0);
    }
    // Numbers only: nothing to escape. The id list keeps the primary key's index in use.
    let ids = db::id_list(held.iter().map(|h| h.id));
    let claims = held
        .iter()
        .map(|h| format!("({}, {})", h.id, h.token))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(db::exec(
        conn,
        &format!(
            "{statement} WHERE id IN ({ids}) AND status = 'sending' \
             AND (id, claim_token) IN (VALUES {claims})"
        ),
        values,
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

/// A dead or failed row as stored.
#[derive(Debug, FromQueryResult)]
struct DeadLetterRow {
    id: i64,
    kind: String,
    channel: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<DeadLetterRow> for DeadLetter {
    fn from(row: DeadLetterRow) -> Self {
        Self {
            id: row.id.to_string(),
            kind: row.kind,
            channel: row.channel,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            updated_at: row.updated_at,
        }
    }
}

/// The tenant's outbox: rows per status (each at most [`COUNT_CAP`]), and the latest dead
/// and failed messages. Messages of `kinds` still waiting outside the outbox count as
/// queued, from the admin's view.
pub async fn overview(
    db_conn: &DatabaseConnection,
    kinds: &super::port::MessageKinds,
    tenant: TenantId,
) -> Result<(BTreeMap<String, i64>, Vec<DeadLetter>), DbErr> {
    let mut counts = BTreeMap::new();
    for status in [
        Status::Queued,
        Status::Sending,
        Status::Sent,
        Status::Failed,
        Status::Dead,
        Status::Suppressed,
    ] {
        // Each count stops at the cap: an index range of at most COUNT_CAP entries.
        let count = db::count(
            db_conn,
            "SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE tenant_id = $1 AND status = $2 \
             LIMIT $3) capped",
            vec![
                Value::BigInt(Some(tenant.0)),
                status.as_str().into(),
                Value::BigInt(Some(COUNT_CAP)),
            ],
        )
        .await?;
        counts.insert(status.as_str().to_string(), count);
    }
    let pending = kinds.waiting(db_conn, tenant, COUNT_CAP).await?;
    if let Some(queued) = counts.get_mut(Status::Queued.as_str()) {
        *queued = (*queued + pending).min(COUNT_CAP);
    }
    let dead = db::query(
        db_conn,
        "SELECT id, kind, channel, status, attempts, last_error, updated_at FROM outbox \
         WHERE tenant_id = $1 AND status IN ('dead', 'failed') ORDER BY id DESC LIMIT 100",
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?
    .iter()
    .map(|row| DeadLetterRow::from_query_result(row, "").map(DeadLetter::from))
    .collect::<Result<Vec<_>, DbErr>>()?;
    Ok((counts, dead))
}

/// A queued message held past its time (quiet hours), for the admin view.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, FromQueryResult)]
#[serde(rename_all = "camelCase")]
pub struct HeldMessage {
    /// Outbox id.
    #[serde(serialize_with = "id_text")]
    #[schema(value_type = String)]
    pub id: i64,
    /// `invitation`, …
    pub kind: String,
    /// The row in the kind's own table (for an invitation: the invitation id).
    #[serde(serialize_with = "id_text")]
    #[schema(value_type = String)]
    pub ref_id: i64,
    /// `sms` (email is never held).
    pub channel: String,
    /// Why it waits: `quiet_hours`.
    pub held_for: String,
    /// When it goes (UTC).
    pub next_attempt_at: DateTime<Utc>,
}

fn id_text<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&id.to_string())
}

/// The tenant's held messages, the soonest to go first, at most `limit` (through the
/// partial index of held rows).
pub async fn held<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    limit: u64,
) -> Result<Vec<HeldMessage>, DbErr> {
    db::rows::query_as::<HeldMessage, _>(
        conn,
        &format!(
            "SELECT id, kind, ref_id, channel, held_for, next_attempt_at FROM outbox \
             WHERE tenant_id = $1 AND held_for IS NOT NULL AND status = 'queued' \
             ORDER BY next_attempt_at, id LIMIT {limit}"
        ),
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await
}

/// Puts a dead or failed message back in the queue with fresh attempts (audited). Returns
/// false when there is no such dead or failed message in the tenant.
pub async fn requeue(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
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
            Value::BigInt(Some(tenant.0)),
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
    tenant: TenantId,
    email: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    db::exec(
        conn,
        "INSERT INTO email_suppressions (tenant_id, email, reason, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, email) DO NOTHING",
        vec![
            Value::BigInt(Some(tenant.0)),
            super::suppressions::normalised(email).into(),
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

/// A suppressed address as stored.
#[derive(Debug, FromQueryResult)]
struct SuppressionRow {
    id: i64,
    email: String,
    reason: String,
    created_at: DateTime<Utc>,
}

/// A page of the tenant's suppressed addresses, newest first: those with an id below
/// `before` (the cursor), at most `limit`, and the cursor of the next page. Walks the
/// (tenant, id) index, so a page reads only its rows.
pub async fn suppressions<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
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
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(before.unwrap_or(i64::MAX))),
        ],
    )
    .await?
    .iter()
    .map(|row| {
        SuppressionRow::from_query_result(row, "").map(|row| Suppression {
            id: row.id.to_string(),
            email: row.email,
            reason: row.reason,
            created_at: row.created_at,
        })
    })
    .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |s| s.id.clone()))
}

/// Lifts a suppression (audited); false when there is none with this id in the tenant.
pub async fn lift_suppression(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    id: i64,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let lifted = db::exec(
        &txn,
        "DELETE FROM email_suppressions WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
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
