//! `disclosures`: the table's shape (kept by hand: see docs/architecture.md "Adding a
//! table"). The disclosure log: one row per invitation or digest a server accepted.

use sea_orm::entity::prelude::*;

/// One row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "disclosures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: i64,
    /// `invitation` or `digest`.
    #[sea_orm(column_type = "Text")]
    pub kind: String,
    /// The invitation or digest delivery.
    pub ref_id: i64,
    /// The guardian; null once erased.
    pub contact_id: Option<i64>,
    /// `email` or `sms`.
    #[sea_orm(column_type = "Text")]
    pub channel: String,
    /// The address it went to; null once erased.
    #[sea_orm(column_type = "Text", nullable)]
    pub recipient: Option<String>,
    /// The email subject sent; null for SMS, after the retention or once erased.
    #[sea_orm(column_type = "Text", nullable)]
    pub subject: Option<String>,
    /// The body sent; null after the retention or once erased.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    /// The body sent, compressed (`outbox::disclosures` text format); null after the
    /// retention, once erased, and for entries from before it (whose `body` is set).
    #[sea_orm(column_type = "VarBinary(StringLen::None)", nullable)]
    pub body_deflate: Option<Vec<u8>>,
    /// SHA-256 (hex) of what was sent.
    #[sea_orm(column_type = "Text")]
    pub content_sha256: String,
    /// When the mail server or SMS gateway accepted it.
    pub accepted_at: DateTimeUtc,
    /// When its text was removed (retention or erasure).
    pub redacted_at: Option<DateTimeUtc>,
}

/// Foreign keys, for joins through the query builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Tenants,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenants.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
