//! The languages families read (issue 22, item 3): `tenant_settings.default_language`, the
//! language of a guardian's messages when theirs (`contacts.preferred_language`, migration
//! 25) has no translation; English unless the district chooses another shipped locale.

use sea_orm_migration::prelude::*;

/// Adds `tenant_settings.default_language`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270126_000026_languages"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_settings")
                    .add_column(
                        ColumnDef::new("default_language")
                            .text()
                            .not_null()
                            .default("en"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_settings")
                    .drop_column("default_language")
                    .to_owned(),
            )
            .await
    }
}
