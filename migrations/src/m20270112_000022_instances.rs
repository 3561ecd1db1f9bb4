//! Several `serve` instances on one database (issue 20).
//!
//! - `outbox.claim_token`: the fencing token of a row's claim. Every claim sets it to a new
//!   value (one more than before); a dispatcher renews its lease and records an outcome only
//!   `WHERE id = ? AND claim_token = ?`, so a holder whose claim was taken over changes
//!   nothing.
//! - `scheduled_runs`: one row per scheduled job and due key (a tenant's digest of a week,
//!   a OneRoster connection's sync of a period). An instance runs the job only when it
//!   inserts or takes over the row; a claim whose lease ran out (its instance died) is taken
//!   over, a finished one (`done_at`) is never run again.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `outbox.claim_token` and the `scheduled_runs` table.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270112_000022_instances"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .add_column(counter("claim_token"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("scheduled_runs")
                    .col(pk())
                    .col(text("job"))
                    .col(text("run_key"))
                    .col(text("claimed_by"))
                    .col(counter("claim_token"))
                    .col(ts("claimed_at"))
                    .col(ts("lease_until"))
                    .col(ts_null("done_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("scheduled_runs", &["job", "run_key"], true))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("scheduled_runs").if_exists().to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("outbox")
                    .drop_column("claim_token")
                    .to_owned(),
            )
            .await
    }
}
