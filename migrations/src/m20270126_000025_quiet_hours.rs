//! Quiet hours (issue 22, item 2).
//!
//! - `tenant_settings.quiet_hours_start`, `quiet_hours_end`: `HH:MM` local times, null for
//!   none; text messages inside the window wait until it ends.
//! - `contacts.time_zone`: the guardian's IANA time zone when known (set by an admin), which
//!   quiet hours are read in instead of the tenant's; `contacts.preferred_language`: the
//!   guardian's language (a BCP 47 tag, e.g. `es`), for the messages and pages they read.
//! - `outbox.held_for`: why a queued row waits past its time (`quiet_hours`); its
//!   `next_attempt_at` is when it goes. Partial index: only held rows are indexed, so the
//!   admin view lists them without a scan and the other rows cost nothing.
//! - `invitations.urgent_by`, `urgent_at`: an admin sent the invitation as urgent (it goes
//!   at once, whatever the hour).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds the quiet-hours settings, the guardian's time zone and language, held outbox rows
/// and urgent invitations.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270126_000025_quiet_hours"
    }
}

const ADDED: [(&str, &str, bool); 7] = [
    ("tenant_settings", "quiet_hours_start", false),
    ("tenant_settings", "quiet_hours_end", false),
    ("contacts", "time_zone", false),
    ("contacts", "preferred_language", false),
    ("outbox", "held_for", false),
    ("invitations", "urgent_by", false),
    ("invitations", "urgent_at", true),
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, timestamp) in ADDED {
            let column = if timestamp {
                ts_null(column)
            } else {
                text_null(column)
            };
            manager
                .alter_table(Table::alter().table(table).add_column(column).to_owned())
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_outbox_held ON outbox (tenant_id, next_attempt_at) WHERE held_for IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_outbox_held")
            .await?;
        for (table, column, _) in ADDED.into_iter().rev() {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
