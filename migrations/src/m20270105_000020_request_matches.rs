//! The candidate match of an "add" request: a contact of the tenant whose email is the one
//! proposed. The approver sees it and chooses to link that contact or create a new one; it is
//! never linked silently (docs/approvals.md). Existing rows keep NULL (no match recorded):
//! approval looks the match up again anyway.

use sea_orm_migration::prelude::*;

/// Adds `contact_requests.match_contact_id`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270105_000020_request_matches"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("contact_requests")
                    .add_column(ColumnDef::new("match_contact_id").big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("contact_requests")
                    .drop_column("match_contact_id")
                    .to_owned(),
            )
            .await
    }
}
