//! Digest deliveries (SPEC §6): one row per (tenant, guardian, week) — the unique key that
//! makes a digest run idempotent, and the disclosure log of who received a digest about
//! which students. Each row's email goes through the outbox (`kind = 'digest'`).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `digest_deliveries`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000008_digest_deliveries"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("digest_deliveries")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("contact_id"))
                    .col(text("week"))
                    .col(text("students"))
                    .col(counter("assignments"))
                    .col(ts("queued_at"))
                    .foreign_key(&mut fk("digest_deliveries", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "digest_deliveries",
                &["tenant_id", "contact_id", "week"],
                true,
            ))
            .await?;
        manager
            .create_index(index("digest_deliveries", &["tenant_id", "week"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("digest_deliveries")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
