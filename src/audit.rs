//! The audit log: every admin action (imports, tenant changes, …) is recorded with the
//! actor, the time in UTC and before/after values.

use crate::entities::audit_log;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

/// One action to record.
pub struct AuditEntry<'a> {
    /// Tenant concerned.
    pub tenant_id: Option<i64>,
    /// Who acted.
    pub actor: &'a str,
    /// What was done (`area.verb`).
    pub action: &'a str,
    /// What it was done to.
    pub target: Option<String>,
    /// State before, as JSON.
    pub before: Option<serde_json::Value>,
    /// State after, as JSON.
    pub after: Option<serde_json::Value>,
}

/// Writes `entry` on `conn` (pass the transaction of the action so both commit together).
pub async fn record<C: ConnectionTrait>(conn: &C, entry: AuditEntry<'_>) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        tenant_id: Set(entry.tenant_id),
        actor: Set(entry.actor.to_string()),
        action: Set(entry.action.to_string()),
        target: Set(entry.target),
        before: Set(entry.before.map(|v| v.to_string())),
        after: Set(entry.after.map(|v| v.to_string())),
        at: Set(chrono::Utc::now()),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The actor name for commands run on this machine: `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
