//! A guardian's preferences an admin sets (docs/restrictions.md's sibling,
//! docs/invitations.md#quiet-hours): the language they read (`preferredLanguage`, a BCP 47
//! tag) and their time zone (`timeZone`, read by the quiet hours instead of the tenant's).
//! `PATCH /api/v1/students/{sourceId}/contacts/{contactId}`: only for a contact linked to
//! that student (any status), audited, all-or-nothing.

use super::{ContactItem, ContactsError, Scope, for_student};
use crate::audit::{self, AuditEntry};
use crate::db;
use crate::domain::{LanguageTag, TenantId, TimeZoneName};
use chrono::Utc;
use sea_orm::{DatabaseConnection, Value};

/// What to change: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// The language the guardian reads.
    pub preferred_language: Option<Option<LanguageTag>>,
    /// The guardian's time zone.
    pub time_zone: Option<Option<TimeZoneName>>,
}

/// Sets `changes` on contact `contact` of student `student_source_id`; the contact as the
/// admin view shows it afterwards.
pub async fn set(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    (student_source_id, contact): (&str, i64),
    changes: &Preferences,
    actor: &str,
) -> Result<ContactItem, ContactsError> {
    let txn = db::begin_write(db_conn).await?;
    let linked = db::exists(
        &txn,
        "SELECT COUNT(*) FROM student_contacts l JOIN students s ON s.id = l.student_id \
         WHERE s.tenant_id = $1 AND s.source_id = $2 AND l.contact_id = $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            student_source_id.into(),
            Value::BigInt(Some(contact)),
        ],
    )
    .await?;
    if !linked {
        return Err(ContactsError::ContactNotFound);
    }
    let mut sets = Vec::new();
    // $3, the change's time, also dates the language's provenance.
    let mut values = vec![
        Value::BigInt(Some(tenant.0)),
        Value::BigInt(Some(contact)),
        Value::ChronoDateTimeUtc(Some(Utc::now())),
    ];
    let mut after = serde_json::Map::new();
    if let Some(language) = &changes.preferred_language {
        let text = language.as_ref().map(|l| l.as_str().to_string());
        values.push(Value::String(text.clone()));
        sets.push(format!(
            "preferred_language = ${}, preferred_language_provenance = 'admin', \
             preferred_language_changed_at = $3",
            values.len()
        ));
        after.insert("preferredLanguage".into(), text.into());
    }
    if let Some(zone) = &changes.time_zone {
        let text = zone.map(|z| z.name().to_string());
        values.push(Value::String(text.clone()));
        sets.push(format!("time_zone = ${}", values.len()));
        after.insert("timeZone".into(), text.into());
    }
    if !sets.is_empty() {
        sets.push("updated_at = $3".to_string());
        db::exec(
            &txn,
            &format!(
                "UPDATE contacts SET {} WHERE tenant_id = $1 AND id = $2",
                sets.join(", ")
            ),
            values,
        )
        .await?;
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(tenant),
                actor,
                action: "contact.preferences",
                target: Some(format!("student:{student_source_id}/contact:{contact}")),
                before: None,
                after: Some(serde_json::Value::Object(after)),
            },
        )
        .await?;
    }
    let item = for_student(&txn, tenant, student_source_id, &Scope::Admin)
        .await?
        .into_iter()
        .find(|c| c.id == contact.to_string())
        .ok_or(ContactsError::ContactNotFound)?;
    txn.commit().await?;
    Ok(item)
}
