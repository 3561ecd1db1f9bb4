//! Staff sign-in attempts with the district's OpenID Connect provider (issue 18): one row
//! per `GET /web/oidc/start`, holding what the callback needs to finish it — the `state`
//! sent to the provider (unique: the callback finds its row by it), the PKCE verifier, the
//! nonce the ID token must carry, and where to go afterwards. A row is deleted when the
//! callback uses it (single use) and is refused after 10 minutes; old rows are purged
//! through the `created_at` index.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `oidc_attempts`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261222_000016_oidc_attempts"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("oidc_attempts")
                    .col(pk())
                    .col(text("state"))
                    .col(text("pkce_verifier"))
                    .col(text("nonce"))
                    // A local path (`/admin/settings`), checked before it is stored.
                    .col(text("next"))
                    .col(ts("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("oidc_attempts", &["state"], true))
            .await?;
        manager
            .create_index(index("oidc_attempts", &["created_at"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("oidc_attempts").if_exists().to_owned())
            .await
    }
}
