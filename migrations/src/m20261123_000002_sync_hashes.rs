//! Change detection for large re-syncs: each synced row of the big tables remembers a 64-bit
//! hash of its natural key (`sync_key`) and of the values the last sync delivered for it
//! (`sync_hash`), so an import can tell unchanged rows apart in memory and write only the
//! changes (see docs/performance.md).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `sync_key` and `sync_hash`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_sync_hashes"
    }
}

/// Tables whose rows the import diffs in memory.
const TABLES: [&str; 4] = ["students", "contacts", "enrollments", "student_contacts"];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            // One column per statement: SQLite's ALTER TABLE adds one at a time.
            for column in ["sync_key", "sync_hash"] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table)
                            .add_column(big_null(column))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            for column in ["sync_key", "sync_hash"] {
                manager
                    .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                    .await?;
            }
        }
        Ok(())
    }
}
