//! Digest unsubscribes (SPEC §6, RFC 8058): a guardian who unsubscribed (one-click from
//! the digest, or the confirmation page) gets no more weekly digests until they or an
//! admin undo it. One row per guardian; the digest run leaves them out with an anti-join
//! on the unique (tenant, contact) index. Invitations are not affected.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `digest_unsubscribes`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000012_digest_unsubscribes"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("digest_unsubscribes")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("contact_id"))
                    // `guardian` (the link in the digest) or `admin`.
                    .col(text("source"))
                    .col(text("actor"))
                    .col(ts("created_at"))
                    .foreign_key(&mut fk("digest_unsubscribes", "tenant_id", "tenants"))
                    .foreign_key(&mut fk("digest_unsubscribes", "contact_id", "contacts"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "digest_unsubscribes",
                &["tenant_id", "contact_id"],
                true,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("digest_unsubscribes")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
