//! Quiet hours for invitations (docs/invitations.md#quiet-hours): a text message due inside
//! the tenant's quiet hours, read in the guardian's time zone when one is known and the
//! tenant's otherwise, waits in the outbox until they end — held when it is queued, and held
//! again when the dispatcher would send it inside them (a retry, a backlog, a setting changed
//! since). Email is never held. An admin may send one waiting invitation as urgent
//! ([`send_urgent`]): it goes at once, and the audit log and the invitation say so.

use super::InvitationItem;
use crate::audit::{self, AuditEntry};
use crate::db;
use crate::domain::{QuietHours, TenantId, TimeZoneName};
use crate::outbox::MessageKind;
use crate::outbox::store as outbox;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr, FromQueryResult, Value};

/// When a text message due at `now` may go, if the quiet hours hold it: read in
/// `guardian_zone` when it names a valid zone, else in `tenant_zone`.
pub(crate) fn until(
    quiet: QuietHours,
    tenant_zone: TimeZoneName,
    guardian_zone: Option<&str>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let zone = guardian_zone
        .and_then(|z| TimeZoneName::parse(z).ok())
        .unwrap_or(tenant_zone);
    quiet.ends_after(now, zone.zone())
}

/// Why an invitation cannot be sent as urgent.
#[derive(Debug, thiserror::Error)]
pub enum UrgentError {
    /// No such invitation in the tenant.
    #[error("invitation not found")]
    NotFound,
    /// It is not waiting to be sent (sent, failed, suppressed…).
    #[error("the invitation is not waiting to be sent (it is {0})")]
    NotWaiting(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// An invitation's delivery as stored.
#[derive(Debug, FromQueryResult)]
struct Delivery {
    status: Option<String>,
    held_for: Option<String>,
    channel: Option<String>,
}

/// Sends invitation `id` of `tenant` at once, whatever the hour: marked urgent (by
/// `actor`, audited as `invitation.urgent`), and its outbox row, if it waits, due now.
/// Only an invitation still waiting to be sent can be.
pub async fn send_urgent(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    id: i64,
    actor: &str,
) -> Result<InvitationItem, UrgentError> {
    let now = Utc::now();
    let txn = db::begin_write(db_conn).await?;
    let delivery = db::rows::query_one::<Delivery, _>(
        &txn,
        concat!(
            "SELECT o.status, o.held_for, i.channel FROM invitations i \
             LEFT JOIN outbox o ON o.kind = ",
            crate::outbox_kind!(Invitation),
            " AND o.ref_id = i.id WHERE i.tenant_id = $1 AND i.id = $2"
        ),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
    )
    .await?
    .ok_or(UrgentError::NotFound)?;
    match delivery.status.as_deref() {
        Some("queued") => {}
        other => {
            return Err(UrgentError::NotWaiting(other.unwrap_or("gone").to_string()));
        }
    }
    db::exec(
        &txn,
        "UPDATE invitations SET urgent_by = $1, urgent_at = $2 WHERE tenant_id = $3 AND id = $4",
        vec![
            actor.into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(id)),
        ],
    )
    .await?;
    outbox::release_held(&txn, tenant, (MessageKind::Invitation, id), now).await?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "invitation.urgent",
            target: Some(format!("invitation:{id}")),
            before: Some(serde_json::json!({
                "heldFor": delivery.held_for, "channel": delivery.channel
            })),
            after: Some(serde_json::json!({"urgent": true})),
        },
    )
    .await?;
    let item = super::get(&txn, tenant, id)
        .await?
        .map(|(item, _)| item)
        .ok_or(UrgentError::NotFound)?;
    txn.commit().await?;
    Ok(item)
}
