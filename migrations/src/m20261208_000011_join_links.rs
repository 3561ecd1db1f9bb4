//! The join page (SPEC §5): when an invitation was accepted, how long its link is valid
//! (a tenant setting, 14 days by default), a unique index that finds an invitation by its
//! token, and a per-tenant secret (`tenants.link_secret`, 32 random bytes as hex) that
//! signs the links of messages that need no stored token (the digest's one-click
//! unsubscribe). Existing tenants get a secret here; new tenants when they are created.

use crate::columns::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds `invitations.accepted_at`, `tenant_settings.invitation_validity_days`,
/// `tenants.link_secret` and the join-token index.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000011_join_links"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("invitations")
                    .add_column(ts_null("accepted_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_settings")
                    .add_column(
                        ColumnDef::new("invitation_validity_days")
                            .integer()
                            .not_null()
                            .default(14)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("tenants")
                    .add_column(text_null("link_secret"))
                    .to_owned(),
            )
            .await?;
        // 256 bits from each engine's cryptographic generator (SQLite's randomblob is
        // ChaCha20-based; PostgreSQL's gen_random_uuid uses pg_strong_random, 122 random
        // bits per UUID, so three of them).
        let random = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', '')"
            }
            _ => "lower(hex(randomblob(32)))",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE tenants SET link_secret = {random} WHERE link_secret IS NULL"
            ))
            .await?;
        manager
            .create_index(index("invitations", &["join_token"], true))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_invitations_join_token")
                    .table("invitations")
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            ("tenants", "link_secret"),
            ("tenant_settings", "invitation_validity_days"),
            ("invitations", "accepted_at"),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
