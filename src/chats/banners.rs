//! Removal banners (SPEC §7): when a guardian stops being an active contact of a student —
//! a sync made the link inactive, an approved edit removed it, an admin erased or
//! restricted it — every
//! chat about that student with that guardian as a member gets a banner for the chat's
//! owner, asking them to remove the guardian. Membership is not changed, unless the tenant
//! turned on `auto_remove_inactive_guardians`: then the guardian is removed instead (and the
//! removal audited). A banner is cleared when the owner removes the guardian or the link is
//! active again.
//!
//! Everything here is set-based SQL run inside the transaction of the change that caused
//! it: a sync that deactivates 10,000 links creates their banners with one statement.

use crate::audit::{self, AuditEntry};
use crate::db::{self, ImportConn};
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

/// Why a guardian stopped being an active contact of the student (stored as
/// `chat_banners.cause`).
pub use crate::domain::BannerCause as Cause;

/// Which guardians of which chats stopped being active contacts.
#[derive(Debug, Clone, Copy)]
pub enum Affected {
    /// Links a sync deactivated at `now` (the run's time).
    DeactivatedBySync,
    /// One student–contact pair (database ids).
    Pair {
        /// Student id.
        student: i64,
        /// Contact id.
        contact: i64,
    },
}

impl Affected {
    /// Condition on member `m` of chat `c`, with the values it adds after `$1` (tenant) and
    /// `$2` (time), numbered from `$4`.
    fn condition(self) -> (&'static str, Vec<Value>) {
        match self {
            Affected::DeactivatedBySync => (
                "EXISTS (SELECT 1 FROM student_contacts l WHERE l.student_id = c.student_id AND l.contact_id = m.contact_id \
                   AND l.status = 'inactive' AND l.deactivated_at = $2)",
                vec![],
            ),
            Affected::Pair { student, contact } => (
                "c.student_id = $4 AND m.contact_id = $5",
                vec![Value::BigInt(Some(student)), Value::BigInt(Some(contact))],
            ),
        }
    }
}

/// The statements that record a change: banners, or removals when the tenant auto-removes.
fn statements(
    tenant: TenantId,
    now: DateTime<Utc>,
    cause: Cause,
    affected: Affected,
    auto_remove: bool,
) -> (String, Vec<Value>) {
    let (condition, extra) = affected.condition();
    let base = vec![
        Value::BigInt(Some(tenant.0)),
        Value::ChronoDateTimeUtc(Some(now)),
        Value::String(Some(cause.as_str().to_string())),
    ];
    let sql = if auto_remove {
        format!(
            "UPDATE chat_members SET removed_at = $2, removed_by = 'system:' || $3 \
             WHERE tenant_id = $1 AND removed_at IS NULL AND contact_id IS NOT NULL AND id IN ( \
               SELECT m.id FROM chat_members m JOIN chats c ON c.id = m.chat_id \
               WHERE m.tenant_id = $1 AND m.removed_at IS NULL AND {condition})"
        )
    } else {
        format!(
            "INSERT INTO chat_banners (tenant_id, chat_id, contact_id, cause, created_at) \
             SELECT m.tenant_id, m.chat_id, m.contact_id, $3, $2 FROM chat_members m JOIN chats c ON c.id = m.chat_id \
             WHERE m.tenant_id = $1 AND m.removed_at IS NULL AND m.contact_id IS NOT NULL AND {condition} \
               AND NOT EXISTS (SELECT 1 FROM chat_banners b WHERE b.chat_id = m.chat_id AND b.contact_id = m.contact_id AND b.cleared_at IS NULL)"
        )
    };
    (sql, [base, extra].concat())
}

/// Clears the open banners whose guardian is an active, unrestricted contact of the chat's
/// student again.
const CLEAR_REACTIVATED: &str = "UPDATE chat_banners SET cleared_at = $2, cleared_by = 'link_active' \
     WHERE tenant_id = $1 AND cleared_at IS NULL AND EXISTS ( \
       SELECT 1 FROM chats c JOIN student_contacts l ON l.student_id = c.student_id \
       WHERE c.id = chat_banners.chat_id AND l.contact_id = chat_banners.contact_id AND l.status = 'active' \
         AND l.restriction_id IS NULL)";

fn audit_entry(tenant: TenantId, cause: Cause, removed: u64) -> AuditEntry<'static> {
    AuditEntry {
        tenant_id: Some(tenant),
        actor: "system",
        action: "chat.auto_remove",
        target: None,
        before: None,
        after: Some(serde_json::json!({"removedMembers": removed, "cause": cause.as_str()})),
    }
}

/// Records `affected` inside a sync's transaction; `deactivated` / `reactivated` say
/// whether the run changed any link that way (nothing to do otherwise).
pub async fn after_sync(
    conn: &mut ImportConn,
    tenant: TenantId,
    now: DateTime<Utc>,
    auto_remove: bool,
    (deactivated, reactivated): (bool, bool),
) -> Result<(), DbErr> {
    if deactivated {
        let (sql, values) = statements(
            tenant,
            now,
            Cause::Sync,
            Affected::DeactivatedBySync,
            auto_remove,
        );
        let changed = conn.exec(&sql, values).await?;
        if auto_remove && changed > 0 {
            audit::record_in(conn, audit_entry(tenant, Cause::Sync, changed)).await?;
        }
    }
    if reactivated {
        conn.exec(
            CLEAR_REACTIVATED,
            vec![
                Value::BigInt(Some(tenant.0)),
                Value::ChronoDateTimeUtc(Some(now)),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Records that one guardian stopped being an active contact of one student (approved
/// removal, erase, restriction), inside the caller's transaction.
pub async fn after_pair_change<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    now: DateTime<Utc>,
    cause: Cause,
    (student, contact): (i64, i64),
) -> Result<(), DbErr> {
    let auto_remove = crate::tenants::settings::load(conn, tenant)
        .await?
        .is_some_and(|s| s.auto_remove_inactive_guardians);
    let (sql, values) = statements(
        tenant,
        now,
        cause,
        Affected::Pair { student, contact },
        auto_remove,
    );
    let changed = db::exec(conn, &sql, values).await?.rows_affected();
    if auto_remove && changed > 0 {
        audit::record(conn, audit_entry(tenant, cause, changed)).await?;
    }
    Ok(())
}

/// Clears banners whose guardian is active again (an approved addition, a restriction
/// lifted or ended), inside the caller's transaction.
pub async fn after_reactivation<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    db::exec(
        conn,
        CLEAR_REACTIVATED,
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await
    .map(|_| ())
}
