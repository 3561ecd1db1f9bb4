//! The audit log: every admin action (imports, tenant changes, …) is recorded with the
//! actor, the time in UTC and before/after values.

use crate::db::{self, ImportConn};
use sea_orm::{ConnectionTrait, DbErr, Value};

const INSERT: &str = "INSERT INTO audit_log (tenant_id, actor, action, target, before, after, at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

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

impl AuditEntry<'_> {
    fn values(self) -> Vec<Value> {
        vec![
            Value::BigInt(self.tenant_id),
            Value::String(Some(self.actor.to_string())),
            Value::String(Some(self.action.to_string())),
            Value::String(self.target),
            Value::String(self.before.map(|v| v.to_string())),
            Value::String(self.after.map(|v| v.to_string())),
            Value::ChronoDateTimeUtc(Some(chrono::Utc::now())),
        ]
    }
}

/// Writes `entry` on `conn` (pass the transaction of the action so both commit together).
pub async fn record<C: ConnectionTrait>(conn: &C, entry: AuditEntry<'_>) -> Result<(), DbErr> {
    db::exec(conn, INSERT, entry.values()).await.map(|_| ())
}

/// Writes `entry` inside an import's transaction.
pub async fn record_in(conn: &mut ImportConn, entry: AuditEntry<'_>) -> Result<(), DbErr> {
    conn.exec(INSERT, entry.values()).await.map(|_| ())
}

/// The actor name for commands run on this machine: `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}
