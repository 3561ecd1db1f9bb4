//! OneRoster 1.1 REST connections: one per tenant, with the provider's URLs, the OAuth2
//! client id, the client secret encrypted at rest, the page size, and the delta watermark
//! of the last applied run (see docs/oneroster.md).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Creates `oneroster_connections`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_oneroster"
    }
}

const TABLE: &str = "oneroster_connections";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("base_url"))
                    .col(text("token_url"))
                    .col(text("client_id"))
                    // `v1:` + hex(nonce || ciphertext || tag); never the plain secret.
                    .col(text("client_secret_encrypted"))
                    .col(big("page_size"))
                    // The greatest `dateLastModified` of the last applied run, as the
                    // provider wrote it (the next delta filters on it).
                    .col(text_null("watermark"))
                    .col(ts_null("last_applied_at"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk(TABLE, "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(TABLE, &["tenant_id"], true))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TABLE).to_owned())
            .await
    }
}
