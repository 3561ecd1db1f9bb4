//! Digest unsubscribes (SPEC §6, RFC 8058). Each digest carries a one-click link signed for
//! its guardian ([`crate::links`]); a POST to it records the guardian in
//! `digest_unsubscribes` at once (no sign-in, idempotent, audited), and every later run
//! leaves them out (an anti-join in the run's one statement), as does the dispatcher for a
//! digest of theirs still waiting to be sent. Invitations are not affected. Admins list
//! the unsubscribed guardians and lift an unsubscribe (API and CLI), audited too.

use crate::audit::{self, AuditEntry};
use crate::contacts::display_name;
use crate::db;
use crate::domain::TenantId;
use crate::links::{self, Links, Purpose};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};
use serde::Serialize;

/// Who unsubscribed a guardian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The guardian, through the link in a digest.
    Guardian,
    /// An admin.
    Admin,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Guardian => "guardian",
            Source::Admin => "admin",
        }
    }
}

/// One unsubscribed guardian.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unsubscribe {
    /// The guardian's contact id.
    pub contact_id: String,
    /// Their name.
    pub display_name: String,
    /// Their email address.
    pub email_address: Option<String>,
    /// `guardian` or `admin`.
    pub source: String,
    /// When (UTC).
    pub unsubscribed_at: DateTime<Utc>,
}

/// A guardian's unsubscribe addresses, as a digest carries them.
pub use crate::outbox::ListUnsubscribe as UnsubscribeLink;

/// The unsubscribe link of guardian `contact` of `tenant`, signed with the tenant's
/// `secret`.
pub fn link(links: &Links, secret: &str, tenant: TenantId, contact: i64) -> UnsubscribeLink {
    let token = links::sign(secret, Purpose::DigestUnsubscribe, tenant, contact);
    UnsubscribeLink {
        url: links.unsubscribe(&token),
        mailto: links.unsubscribe_mailto(&token),
    }
}

/// The tenant's link secret for signing (see [`links::signing_secret`]); an error when the
/// tenant is gone.
pub async fn secret<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<String, DbErr> {
    links::signing_secret(conn, tenant)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("tenant #{} has no link secret", tenant.0)))
}

/// Whether guardian `contact` of `tenant` is unsubscribed.
pub async fn is_unsubscribed<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<bool, DbErr> {
    db::exists(
        conn,
        "SELECT COUNT(*) FROM digest_unsubscribes WHERE tenant_id = $1 AND contact_id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await
}

/// Unsubscribes guardian `contact` of `tenant` from the digest, audited as
/// `digest.unsubscribe`. `Ok(None)`: no such contact; `Ok(Some(false))`: already
/// unsubscribed, nothing changed.
pub async fn unsubscribe(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    source: Source,
    actor: &str,
) -> Result<Option<bool>, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    if !crate::contacts::exists(&txn, tenant, contact).await? {
        txn.commit().await?;
        return Ok(None);
    }
    let now = Utc::now();
    let added = db::exec(
        &txn,
        "INSERT INTO digest_unsubscribes (tenant_id, contact_id, source, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, contact_id) DO NOTHING",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(contact)),
            source.as_str().into(),
            actor.into(),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?
    .rows_affected()
        > 0;
    if added {
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: "digest.unsubscribe",
                target: Some(format!("contact:{contact}")),
                before: None,
                after: Some(serde_json::json!({ "source": source.as_str(), "at": now })),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Some(added))
}

/// Lifts guardian `contact`'s unsubscribe (audited as `digest.resubscribe`): later runs
/// include them again. False when they were not unsubscribed.
pub async fn resubscribe(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let lifted = db::exec(
        &txn,
        "DELETE FROM digest_unsubscribes WHERE tenant_id = $1 AND contact_id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?
    .rows_affected()
        > 0;
    if lifted {
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: "digest.resubscribe",
                target: Some(format!("contact:{contact}")),
                before: Some(serde_json::json!({ "unsubscribed": true })),
                after: Some(serde_json::json!({ "unsubscribed": false })),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(lifted)
}

/// A page of the tenant's unsubscribed guardians in contact order (keyset on the unique
/// (tenant, contact) index), with the cursor of the next page.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    after_contact: Option<i64>,
    limit: u64,
) -> Result<(Vec<Unsubscribe>, Option<String>), DbErr> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT u.contact_id, u.source, u.created_at, c.given_name, c.family_name, c.email \
             FROM digest_unsubscribes u JOIN contacts c ON c.id = u.contact_id AND c.tenant_id = u.tenant_id \
             WHERE u.tenant_id = $1 AND u.contact_id > $2 ORDER BY u.contact_id LIMIT {}",
            limit + 1
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(after_contact.unwrap_or(0))),
        ],
    )
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            let text = |column: &str| row.try_get::<Option<String>>("", column);
            let email = text("email")?;
            Ok(Unsubscribe {
                contact_id: row.try_get::<i64>("", "contact_id")?.to_string(),
                display_name: display_name(
                    text("given_name")?.as_deref(),
                    text("family_name")?.as_deref(),
                    email.as_deref(),
                    None,
                ),
                email_address: email,
                source: row.try_get("", "source")?,
                unsubscribed_at: row.try_get("", "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, limit, |u| u.contact_id.clone()))
}
