//! Page sessions (SPEC §8): one row per signed-in browser. The cookie holds a random token;
//! the row holds only its SHA-256 (a copy of the table opens no session), who signed in
//! (tenant, kind, subject, roles), how, the session's CSRF token, and its clocks: idle
//! expiry counts from `last_seen_at`, absolute expiry is `expires_at`.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `web_sessions`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261222_000015_web_sessions"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("web_sessions")
                    .col(pk())
                    // Hex SHA-256 of the cookie's token.
                    .col(text("token_hash"))
                    .col(big("tenant_id"))
                    // `user` (staff) or `contact` (a guardian).
                    .col(text("kind"))
                    // Staff SIS source id, or the contact id.
                    .col(text("subject"))
                    // Role names, comma-separated (empty for a guardian).
                    .col(text("roles"))
                    // How they signed in: `oidc`, `token`, `code`, `join`.
                    .col(text("method"))
                    .col(text("csrf_token"))
                    .col(ts("created_at"))
                    .col(ts("last_seen_at"))
                    .col(ts("expires_at"))
                    .foreign_key(&mut fk("web_sessions", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("web_sessions", &["token_hash"], true))
            .await?;
        manager
            .create_index(index("web_sessions", &["expires_at"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("web_sessions").if_exists().to_owned())
            .await
    }
}
