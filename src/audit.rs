//! The audit log: every admin action (imports, tenant changes, contact requests and
//! decisions, erasures, settings changes) is recorded with the actor, the time in UTC and
//! before/after values, and read back by admins with filters.

use crate::db::{self, ImportConn};
use crate::domain::TenantId;
use crate::entities::audit_log;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryTrait,
    Statement, Value,
};

/// One action to record.
pub struct AuditEntry<'a> {
    /// Tenant concerned.
    pub tenant_id: Option<crate::domain::TenantId>,
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
    /// The insert of this entry for `backend`.
    fn insert(self, backend: DbBackend) -> Statement {
        audit_log::Entity::insert(audit_log::ActiveModel {
            tenant_id: Set(self.tenant_id.map(|t| t.0)),
            actor: Set(self.actor.to_string()),
            action: Set(self.action.to_string()),
            target: Set(self.target),
            before: Set(self.before.map(|v| v.to_string())),
            after: Set(self.after.map(|v| v.to_string())),
            at: Set(chrono::Utc::now()),
            ..Default::default()
        })
        .build(backend)
    }
}

/// Writes `entry` on `conn` (pass the transaction of the action so both commit together).
pub async fn record<C: ConnectionTrait>(conn: &C, entry: AuditEntry<'_>) -> Result<(), DbErr> {
    let insert = entry.insert(conn.get_database_backend());
    db::exec_built(conn, insert).await.map(|_| ())
}

/// Writes `entry` inside an import's transaction.
pub async fn record_in(conn: &mut ImportConn, entry: AuditEntry<'_>) -> Result<(), DbErr> {
    let insert = entry.insert(conn.backend());
    conn.exec_built(insert).await.map(|_| ())
}

/// The actor name for commands run on this machine: `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// One audit entry as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditItem {
    /// Entry id.
    pub id: String,
    /// When (UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who acted.
    pub actor: String,
    /// What was done (`area.verb`).
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// State before.
    #[schema(value_type = Object, nullable = true)]
    pub before: Option<serde_json::Value>,
    /// State after.
    #[schema(value_type = Object, nullable = true)]
    pub after: Option<serde_json::Value>,
}

/// Actions whose before/after values hold contact data (names, email, phone, relationship):
/// contact requests and their decisions, erasures.
const CONTACT_ACTIONS: [&str; 2] = ["contact_request.", "contact."];

/// Keys of those entries that hold no contact data (ids, flags, states): kept as they are.
const STRUCTURAL_KEYS: [&str; 8] = [
    "action",
    "studentId",
    "contactId",
    "stale",
    "erasureId",
    "contactDeleted",
    "status",
    "liftedAt",
];

/// What stands for a hidden value.
pub const CHANGED: &str = "changed";

/// Replaces every value under `value` by [`CHANGED`], keeping the field names (and the
/// structural fields' values).
fn fields_only(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Object(map) => J::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let kept = STRUCTURAL_KEYS.contains(&key.as_str())
                        && !matches!(value, J::Object(_) | J::Array(_));
                    let value = if kept { value } else { fields_only(value) };
                    (key, value)
                })
                .collect(),
        ),
        J::Array(items) => J::Array(items.into_iter().map(fields_only).collect()),
        _ => J::String(CHANGED.into()),
    }
}

impl AuditItem {
    /// True when the entry's values may hold contact data.
    pub fn has_contact_values(&self) -> bool {
        CONTACT_ACTIONS.iter().any(|p| self.action.starts_with(p))
    }

    /// The entry for readers who may not read contacts (`auth::policy::contact_values`):
    /// the before/after of contact actions show their field names, each value "changed".
    pub fn without_contact_values(mut self) -> Self {
        if self.has_contact_values() {
            self.before = self.before.map(fields_only);
            self.after = self.after.map(fields_only);
        }
        self
    }
}

/// Which entries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix ending in `.` (e.g. `contact_request.`).
    pub action: Option<String>,
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// At or after (UTC).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before (UTC).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Entries after this one in the list's order (the cursor: an entry id).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u64,
}

/// The columns of an entry [`list`] reads.
#[derive(FromQueryResult)]
struct AuditRow {
    id: i64,
    at: chrono::DateTime<chrono::Utc>,
    actor: String,
    action: String,
    target: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// A page of the tenant's audit log, newest first (by time, then id), and the cursor of the
/// next page (the id of the page's last entry).
///
/// Every page walks an index that ends with (at, id), from the cursor's entry down, and
/// stops at the page's end: (tenant, at, id) without filters; (tenant, action, at, id),
/// (tenant, actor, at, id) or (tenant, target, at, id) with an exact filter. `since` and
/// `until` bound the same walk. An action prefix becomes the actions the tenant's log holds
/// under it (found with a skip scan of (tenant, action, …)), one walk each, merged.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    filter: &AuditFilter,
) -> Result<(Vec<AuditItem>, Option<String>), DbErr> {
    const COLUMNS: &str = "SELECT id, at, actor, action, target, before, after FROM audit_log";
    const ORDER: &str = "ORDER BY at DESC, id DESC";
    let take = filter.limit.saturating_add(1);
    let mut filters = db::Filters::new(
        &format!("{COLUMNS} WHERE tenant_id = $1"),
        vec![Value::BigInt(Some(tenant.0))],
    );
    let prefix = match filter.action.as_deref() {
        Some(prefix) if prefix.ends_with('.') => Some(prefix),
        Some(action) => {
            filters.and("action =", action);
            None
        }
        None => None,
    };
    if let Some(actor) = &filter.actor {
        filters.and("actor =", actor.as_str());
    }
    if let Some(target) = &filter.target {
        filters.and("target =", target.as_str());
    }
    if let Some(since) = filter.since {
        filters.and("at >=", since);
    }
    if let Some(until) = filter.until {
        filters.and("at <", until);
    }
    let (mut base, mut values) = filters.finish("");
    if let Some(cursor) = filter.before_id {
        // After the cursor's entry in (at, id) order; its time is read in the statement, so
        // it is compared exactly as stored. An unknown cursor gives an empty page.
        values.push(Value::BigInt(Some(cursor)));
        let n = values.len();
        let cursor_at =
            format!("(SELECT c.at FROM audit_log c WHERE c.tenant_id = $1 AND c.id = ${n})");
        base.push_str(&format!(
            "AND at <= {cursor_at} AND (at < {cursor_at} OR id < ${n})"
        ));
    }
    let (sql, values) = match prefix {
        None => (format!("{base} {ORDER} LIMIT {take}"), values),
        Some(prefix) => {
            let actions: Vec<String> = actions(conn, tenant)
                .await?
                .into_iter()
                .filter(|action| action.starts_with(prefix))
                .collect();
            if actions.is_empty() {
                return Ok((Vec::new(), None));
            }
            // One walk per action, each cut at the page size, then merged: a rare prefix
            // does not read the whole log to fill a page.
            let parts: Vec<String> = actions
                .into_iter()
                .enumerate()
                .map(|(i, action)| {
                    values.push(action.into());
                    format!(
                        "SELECT * FROM ({base} AND action = ${} {ORDER} LIMIT {take}) p{i}",
                        values.len()
                    )
                })
                .collect();
            (
                format!(
                    "SELECT * FROM ({}) u {ORDER} LIMIT {take}",
                    parts.join(" UNION ALL ")
                ),
                values,
            )
        }
    };
    let rows = db::query(conn, &sql, values).await?;
    let json = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
    let items = rows
        .iter()
        .map(|row| {
            let entry = AuditRow::from_query_result(row, "")?;
            Ok(AuditItem {
                id: entry.id.to_string(),
                at: entry.at,
                actor: entry.actor,
                action: entry.action,
                target: entry.target,
                before: json(entry.before),
                after: json(entry.after),
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(db::page(items, filter.limit, |i| i.id.clone()))
}

/// The distinct actions in the tenant's log: a skip scan of the (tenant, action, at, id) index,
/// one seek per action (a few dozen), not a read of the log.
async fn actions<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<Vec<String>, DbErr> {
    let rows = db::query(
        conn,
        "WITH RECURSIVE acts(action) AS ( \
           SELECT (SELECT action FROM audit_log WHERE tenant_id = $1 ORDER BY action LIMIT 1) \
           UNION ALL \
           SELECT (SELECT a.action FROM audit_log a WHERE a.tenant_id = $1 AND a.action > acts.action \
                   ORDER BY a.action LIMIT 1) \
           FROM acts WHERE acts.action IS NOT NULL) \
         SELECT action FROM acts WHERE action IS NOT NULL",
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?;
    rows.iter()
        .map(|row| row.try_get::<String>("", "action"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_values_keep_field_names_and_ids() {
        let item = AuditItem {
            id: "1".into(),
            at: chrono::Utc::now(),
            actor: "a".into(),
            action: "contact_request.approve".into(),
            target: None,
            before: Some(serde_json::json!({
                "contactId": "7",
                "current": {"emailAddress": "x@y.example", "givenName": null},
                "proposed": {"mobilePhone": "+12025550100"},
            })),
            after: None,
        };
        let hidden = item.without_contact_values();
        assert_eq!(
            hidden.before,
            Some(serde_json::json!({
                "contactId": "7",
                "current": {"emailAddress": "changed", "givenName": "changed"},
                "proposed": {"mobilePhone": "changed"},
            }))
        );
    }
}
