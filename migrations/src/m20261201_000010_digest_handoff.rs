//! Digests wait in `digest_deliveries` until a dispatcher hands them to the outbox a batch
//! at a time, and a sent digest's outbox row is removed: a weekly run of a million digests
//! writes one small row per guardian, not two, and the delivery rows are never updated.
//!
//! `digest_runs`: one row per real run that recorded deliveries — the run's id range
//! `first_id..=last_id` in `digest_deliveries` (runs of one tenant are serialised, so the
//! range holds no other run of that tenant; rows of other tenants in it are skipped) and
//! `handed_through`, how far dispatchers have handed the run's deliveries to the outbox.
//! A delivery at or below `handed_through` with no outbox row any more was sent.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `digest_runs` and swaps the delivery key to (week, contact).
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000010_digest_handoff"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("digest_runs")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("week"))
                    .col(big("first_id"))
                    .col(big("last_id"))
                    .col(big("handed_through"))
                    .col(ts("created_at"))
                    .foreign_key(&mut fk("digest_runs", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("digest_runs", &["tenant_id", "first_id"], false))
            .await?;
        // Deliveries recorded before this migration already have their outbox rows: one
        // run each per tenant and week, handed over entirely.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO digest_runs (tenant_id, week, first_id, last_id, handed_through, created_at) \
                 SELECT tenant_id, week, MIN(id), MAX(id), MAX(id), MIN(queued_at) \
                 FROM digest_deliveries GROUP BY tenant_id, week",
            )
            .await?;
        // Contact ids are unique across tenants, so (week, contact) is the digest's key:
        // narrower than (tenant, contact, week), and week first so that each week's entries
        // are appended in contact order rather than slotted between the earlier weeks' ones
        // (which leaves half-empty index pages: +77 MB instead of +39 MB a week at a million
        // guardians on PostgreSQL).
        manager
            .drop_index(
                Index::drop()
                    .name("ix_digest_deliveries_tenant_id_contact_id_week")
                    .table("digest_deliveries")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("digest_deliveries", &["week", "contact_id"], true))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_digest_deliveries_week_contact_id")
                    .table("digest_deliveries")
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
            .drop_table(Table::drop().table("digest_runs").if_exists().to_owned())
            .await
    }
}
