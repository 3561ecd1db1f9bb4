//! A guardian's message preferences: the weekly assignment digest (unsubscribing and
//! subscribing again go through the digest's own unsubscribe service,
//! [`crate::digest::unsubscribe`], audited there) and text messages (the sending number's
//! opt-outs that `STOP` and `START` replies keep, [`OptOuts`]; a change here is audited as
//! `sms.opt_out` or `sms.opt_in`), and the language they read (`contacts.preferred_language`,
//! audited as `contact.preferences`), with the tenant's default.

use crate::audit::{self, AuditEntry};
use crate::contacts::display_name;
use crate::db;
use crate::digest::unsubscribe::{self, Source};
use crate::domain::{LanguageTag, TenantId};
use crate::i18n::Locale;
use crate::outbox::consent::OptOuts;
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
    /// True when their number opted out of texts from the sending number.
    pub sms_opted_out: bool,
    /// Their preferred language (BCP 47), when known.
    pub language: Option<String>,
    /// The language their pages and messages are in.
    pub locale: Locale,
}

#[derive(Debug, FromQueryResult)]
struct Row {
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    mobile_phone: Option<String>,
    preferred_language: Option<String>,
    default_language: Option<String>,
    unsubscribed: i64,
}

/// The preferences of guardian `contact` of `tenant` (`None`: no such contact).
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    opt_outs: &OptOuts,
    tenant: TenantId,
    contact: i64,
) -> Result<Option<Preferences>, DbErr> {
    let row: Option<Row> = db::rows::query_one(
        conn,
        "SELECT c.given_name, c.family_name, c.email, c.mobile_phone, c.preferred_language, \
           (SELECT ts.default_language FROM tenant_settings ts WHERE ts.tenant_id = c.tenant_id) AS default_language, \
           (SELECT COUNT(*) FROM digest_unsubscribes u WHERE u.tenant_id = c.tenant_id AND u.contact_id = c.id) AS unsubscribed \
         FROM contacts c WHERE c.tenant_id = $1 AND c.id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let sms_opted_out = match &row.mobile_phone {
        Some(mobile) => opt_outs.opted_out(conn, mobile).await?,
        None => false,
    };
    Ok(Some(Preferences {
        name: display_name(
            row.given_name.as_deref(),
            row.family_name.as_deref(),
            row.email.as_deref(),
            row.mobile_phone.as_deref(),
        ),
        email: row.email,
        digest_unsubscribed: row.unsubscribed > 0,
        mobile: row.mobile_phone,
        sms_opted_out,
        locale: Locale::negotiate(
            row.preferred_language.as_deref(),
            row.default_language.as_deref(),
        ),
        language: row.preferred_language,
    }))
}

/// Sets guardian `contact`'s language (`None`: the school's), as `actor`; audited as
/// `contact.preferences`. False when nothing changed (or no such contact).
pub async fn set_language(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    language: Option<&LanguageTag>,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let text = language.map(|l| l.as_str().to_string());
    let changed = db::exec(
        &txn,
        "UPDATE contacts SET preferred_language = $1, preferred_language_provenance = 'guardian', \
           preferred_language_changed_at = $2, updated_at = $2 \
         WHERE tenant_id = $3 AND id = $4 AND preferred_language IS DISTINCT FROM $1",
        vec![
            Value::String(text.clone()),
            Value::ChronoDateTimeUtc(Some(Utc::now())),
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(contact)),
        ],
    )
    .await?
    .rows_affected()
        > 0;
    if changed {
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: "contact.preferences",
                target: Some(format!("contact:{contact}")),
                before: None,
                after: Some(serde_json::json!({ "preferredLanguage": text })),
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(changed)
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

/// Opts guardian `contact`'s mobile number out of texts from the sending number
/// (`receive` false) or back in (true), as `actor`, audited as `sms.opt_out` /
/// `sms.opt_in`. False when nothing changed or the guardian has no mobile number.
pub async fn set_sms(
    db_conn: &DatabaseConnection,
    opt_outs: &OptOuts,
    tenant: TenantId,
    contact: i64,
    receive: bool,
    actor: &str,
) -> Result<bool, DbErr> {
    let txn = db::begin_write(db_conn).await?;
    let Some(mobile) = read(&txn, opt_outs, tenant, contact)
        .await?
        .and_then(|p| p.mobile)
    else {
        txn.commit().await?;
        return Ok(false);
    };
    let now = Utc::now();
    let changed = if receive {
        opt_outs.opt_in(&txn, &mobile).await?
    } else {
        opt_outs.opt_out(&txn, &mobile, now).await?
    };
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
