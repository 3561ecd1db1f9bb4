//! Erasure that erases (issue 19). An erasure record keeps the erased pair's SIS contact
//! key only as a keyed hash (for SDS v1 the key is the email): `key_hashed` says whether
//! `contact_source_key` already holds the hash. Rows written before this migration hold
//! the plain key; the migration cannot hash them (the privacy key is not the database's),
//! so the application converts them under its key the next time it erases, lifts or syncs
//! for the tenant (`crate::privacy::legacy` in the application).
//!
//! Adds the indexes the erase walks so it never scans a tenant-sized table: a contact's
//! requests by (tenant, contact), a guardian's page sessions by (tenant, kind, subject), a
//! contact's digest deliveries by (tenant, contact), and the tenant's import reports by
//! (tenant, id).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `contact_erasures.key_hashed` and the erase's indexes.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270105_000019_erasure_privacy"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("contact_erasures")
                    .add_column(
                        ColumnDef::new("key_hashed")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "contact_requests",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "digest_deliveries",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index("sync_runs", &["tenant_id", "id"], false))
            .await?;
        manager
            .create_index(index(
                "web_sessions",
                &["tenant_id", "kind", "subject"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name) in [
            ("web_sessions", "ix_web_sessions_tenant_id_kind_subject"),
            (
                "contact_requests",
                "ix_contact_requests_tenant_id_contact_id",
            ),
            (
                "digest_deliveries",
                "ix_digest_deliveries_tenant_id_contact_id",
            ),
            ("sync_runs", "ix_sync_runs_tenant_id_id"),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("contact_erasures")
                    .drop_column("key_hashed")
                    .to_owned(),
            )
            .await
    }
}
