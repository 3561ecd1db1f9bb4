//! `audit_log`: who did what, when (UTC), with before/after values.
use sea_orm::entity::prelude::*;

/// An audit entry.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Tenant, when the action concerns one.
    pub tenant_id: Option<i64>,
    /// Who acted, e.g. `cli:root` or `user:T123`.
    pub actor: String,
    /// What was done, e.g. `import.applied`.
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// JSON before.
    pub before: Option<String>,
    /// JSON after.
    pub after: Option<String>,
    /// When (UTC).
    pub at: DateTimeUtc,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
