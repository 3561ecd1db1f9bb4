//! `sync_runs`: one row per import attempt, with its report.
use sea_orm::entity::prelude::*;

/// A sync run.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Tenant id.
    pub tenant_id: i64,
    /// `sds-v1`, `sds-v2.1`.
    pub format: String,
    /// Where the data came from (a folder).
    pub source: String,
    /// `applied`, `dry_run`, `refused`, `failed`.
    pub status: crate::domain::RunStatus,
    /// Dry run.
    pub dry_run: bool,
    /// Forced past the guards.
    pub forced: bool,
    /// Start (UTC).
    pub started_at: DateTimeUtc,
    /// End (UTC).
    pub finished_at: DateTimeUtc,
    /// Rows created.
    pub created: i64,
    /// Rows updated.
    pub updated: i64,
    /// Rows unchanged.
    pub unchanged: i64,
    /// Rows reactivated.
    pub reactivated: i64,
    /// Rows deactivated.
    pub deactivated: i64,
    /// Input rows rejected.
    pub rejected: i64,
    /// Errors.
    pub error_count: i64,
    /// Warnings.
    pub warning_count: i64,
    /// The full report as JSON.
    pub report: String,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
