//! Suppressed email addresses: an address the mail server refused for good (SMTP 5xx) gets
//! no more invitations or digests until an admin lifts the suppression.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `email_suppressions`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000009_email_suppressions"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("email_suppressions")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("email"))
                    .col(text("reason"))
                    .col(ts("created_at"))
                    .foreign_key(&mut fk("email_suppressions", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("email_suppressions", &["tenant_id", "email"], true))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("email_suppressions")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
