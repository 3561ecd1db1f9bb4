//! `disclosure_students`: the table's shape (kept by hand: see docs/architecture.md
//! "Adding a table"). The students a disclosure was about, by SIS id.

use sea_orm::entity::prelude::*;

/// One row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "disclosure_students")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: i64,
    #[sea_orm(primary_key, auto_increment = false, column_type = "Text")]
    pub student_source_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub disclosure_id: i64,
}

/// Foreign keys, for joins through the query builder.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::disclosures::Entity",
        from = "Column::DisclosureId",
        to = "super::disclosures::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Disclosures,
}

impl Related<super::disclosures::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Disclosures.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
