//! Digests wait in `digest_deliveries` until a dispatcher hands them to the outbox a batch
//! at a time, and a sent digest's outbox row is removed once its delivery row records the
//! send: a weekly run of a million digests writes one small row per guardian, not two.
//!
//! `state`: `pending` (waiting for the outbox), `outbox` (an outbox row carries it: being
//! sent, retried, failed, dead or suppressed), `sent` (delivered at `sent_at`; its outbox
//! row is gone).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `digest_deliveries.state`, `sent_at` and the index of pending deliveries.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000010_digest_handoff"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Rows written before this migration already have their outbox row.
        let state = ColumnDef::new(Alias::new("state"))
            .text()
            .not_null()
            .default("outbox")
            .to_owned();
        for column in [state, ts_null("sent_at")] {
            manager
                .alter_table(
                    Table::alter()
                        .table("digest_deliveries")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // Partial: only deliveries waiting for the outbox are indexed, so the hand-over
        // finds the next batch without a scan and sent ones cost nothing.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_digest_deliveries_pending ON digest_deliveries (id) WHERE state = 'pending'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_digest_deliveries_pending")
            .await?;
        for column in ["sent_at", "state"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("digest_deliveries")
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
