//! `tenants`: one row per school district.
use sea_orm::entity::prelude::*;

/// A tenant.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    /// Id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Short unique name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Default phone region (ISO 3166 alpha-2).
    pub region: String,
    /// Creation time (UTC).
    pub created_at: DateTimeUtc,
    /// The key of the tenant's signed links (join and unsubscribe), 32 random bytes as hex.
    pub link_secret: Option<String>,
}

/// No relations are navigated through the ORM.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
