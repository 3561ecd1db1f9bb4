//! A guardian's message preferences: the weekly assignment digest (unsubscribing and
//! subscribing again go through the digest's own unsubscribe service,
//! [`crate::digest::unsubscribe`], audited there) and text messages (the `sms_opt_outs`
//! list that `STOP` and `START` replies keep; a change here is audited as `sms.opt_out` or
//! `sms.opt_in`).

use crate::audit::{self, AuditEntry};
use crate::contacts::display_name;
use crate::db;
use crate::digest::unsubscribe::{self, Source};
use crate::domain::TenantId;
use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};

/// What a guardian gets, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preferences {
    /// Their name.
    pub name: String,
    /// The email address on record.
    pub email: Option<String>,
    /// True when they unsubscribed from the weekly digest.
    pub digest_unsubscribed: bool,
    /// The mobile number on record (E.164).
    pub mobile: Option<String>,
    /// True when their number is on the tenant's SMS opt-out list.
    pub sms_opted_out: bool,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    mobile_phone: Option<String>,
    unsubscribed: i64,
    opted_out: i64,
}

/// The preferences of guardian `contact` of `tenant` (`None`: no such contact).
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<Option<Preferences>, DbErr> {
    let row: Option<Row> = db::rows::query_one(
        conn,
        "SELECT c.given_name, c.family_name, c.email, c.mobile_phone, \
           (SELECT COUNT(*) FROM digest_unsubscribes u WHERE u.tenant_id = c.tenant_id AND u.contact_id = c.id) AS unsubscribed, \
           (SELECT COUNT(*) FROM sms_opt_outs o WHERE o.tenant_id = c.tenant_id AND o.phone = c.mobile_phone) AS opted_out \
         FROM contacts c WHERE c.tenant_id = $1 AND c.id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    Ok(row.map(|row| Preferences {
        name: display_name(
            row.given_name.as_deref(),
            row.family_name.as_deref(),
            row.email.as_deref(),
            row.mobile_phone.as_deref(),
        ),
        email: row.email,
        digest_unsubscribed: row.unsubscribed > 0,
        mobile: row.mobile_phone,
        sms_opted_out: row.opted_out > 0,
    }))
}

/// Unsubscribes guardian `contact` from the weekly digest (`subscribed` false) or lifts
/// their unsubscribe (true), as `actor`; audited by the digest's service. False when
/// nothing changed (or no such contact).
pub async fn set_digest(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    subscribed: bool,
    actor: &str,
) -> Result<bool, DbErr> {
    if subscribed {
        unsubscribe::resubscribe(db_conn, tenant, contact, actor).await
    } else {
        Ok(
            unsubscribe::unsubscribe(db_conn, tenant, contact, Source::Guardian, actor)
                .await?
                .unwrap_or(false),
        )
    }
}

/// Puts guardian `contact`'s mobile number on the tenant's SMS opt-out list (`receive`
/// false) or takes it off (true), as `actor`, audited as `sms.opt_out` / `sms.opt_in`.
/// False when nothing changed or the guardian has no mobile number.
pub async fn set_sms(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    receive: bool,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let Some(mobile) = read(&txn, tenant, contact).await?.and_then(|p| p.mobile) else {
        txn.commit().await?;
        return Ok(false);
    };
    let now = Utc::now();
    let values = vec![Value::BigInt(Some(tenant.0)), mobile.as_str().into()];
    let changed = if receive {
        db::exec(
            &txn,
            "DELETE FROM sms_opt_outs WHERE tenant_id = $1 AND phone = $2",
            values,
        )
        .await?
    } else {
        db::exec(
            &txn,
            "INSERT INTO sms_opt_outs (tenant_id, phone, opted_out_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, phone) DO NOTHING",
            [values, vec![Value::ChronoDateTimeUtc(Some(now))]].concat(),
        )
        .await?
    }
    .rows_affected()
        > 0;
    if changed {
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: if receive { "sms.opt_in" } else { "sms.opt_out" },
                target: Some(format!("contact:{contact}")),
                before: Some(serde_json::json!({ "optedOut": receive })),
                after: Some(serde_json::json!({ "optedOut": !receive, "at": now })),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(changed)
}
