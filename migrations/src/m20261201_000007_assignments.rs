//! Assignments and the weekly digest's settings (SPEC §6): `assignments` keyed by
//! (tenant, class, external id), the per-class opt-out `class_digest_settings` (no row
//! means the default, guardians notified), and the tenant's digest day, hour and time zone.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `assignments`, `class_digest_settings` and the digest schedule settings.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000007_assignments"
    }
}

/// The schedule columns added to `tenant_settings`, with their defaults.
fn schedule_columns() -> [ColumnDef; 3] {
    [
        ColumnDef::new("digest_day")
            .text()
            .not_null()
            .default("saturday")
            .to_owned(),
        ColumnDef::new("digest_hour")
            .integer()
            .not_null()
            .default(8)
            .to_owned(),
        ColumnDef::new("digest_time_zone")
            .text()
            .not_null()
            .default("America/New_York")
            .to_owned(),
    ]
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in schedule_columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table("tenant_settings")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Deleting an assignment deletes its row (no tombstone): the digest only ever
        // reads what is due now, and a re-sent upsert simply re-creates it.
        manager
            .create_table(
                Table::create()
                    .table("assignments")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("class_id"))
                    .col(text("external_id"))
                    .col(text("title"))
                    .col(ts("due_at"))
                    .col(
                        ColumnDef::new("due_offset_seconds")
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new("points").double().null())
                    .col(text_null("instructions"))
                    .col(text("created_by"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk("assignments", "tenant_id", "tenants"))
                    .foreign_key(&mut fk("assignments", "class_id", "classes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "assignments",
                &["tenant_id", "class_id", "external_id"],
                true,
            ))
            .await?;
        manager
            .create_index(index("assignments", &["class_id", "due_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("class_digest_settings")
                    .col(
                        ColumnDef::new("class_id")
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(big("tenant_id"))
                    .col(
                        ColumnDef::new("notify_guardians")
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(text("updated_by"))
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk("class_digest_settings", "class_id", "classes"))
                    .foreign_key(&mut fk("class_digest_settings", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["class_digest_settings", "assignments"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        for column in ["digest_day", "digest_hour", "digest_time_zone"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("tenant_settings")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
