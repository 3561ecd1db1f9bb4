//! Where a guardian's language came from (issue 22, item 3): `contacts.preferred_language`
//! (migration 25) gets the provenance columns every synced contact field has
//! (`_provenance`, `_changed_at`, `_sync`), so a `language` column in an SIS file applies
//! under latest-change-wins like a name or an email, and never undoes the language an admin
//! or the guardian chose later.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `contacts.preferred_language_provenance`, `_changed_at` and `_sync`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270126_000027_language_provenance"
    }
}

const ADDED: [(&str, bool); 3] = [
    ("preferred_language_provenance", false),
    ("preferred_language_changed_at", true),
    ("preferred_language_sync", false),
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, timestamp) in ADDED {
            let column = if timestamp {
                ts_null(column)
            } else {
                text_null(column)
            };
            manager
                .alter_table(
                    Table::alter()
                        .table("contacts")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, _) in ADDED.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table("contacts")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
