//! Per-child restrictions (issue 22): an admin restricts one student–contact link (custody,
//! a court order) with a reason and an optional end.
//!
//! - `link_restrictions`: every restriction, open or ended, with who set it, why, until
//!   when, and who or what ended it (an admin, `expired`, or a newer restriction that
//!   replaced it): the history the student's admin page shows.
//! - `student_contacts.restriction_id`: the open restriction of the link, or null. The one
//!   visibility rule (`domain::visibility`) reads it on the row it already reads, so hiding a
//!   restricted link costs no extra lookup on any path; syncs never write it.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `link_restrictions` and `student_contacts.restriction_id`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270126_000024_link_restrictions"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("link_restrictions")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("student_id"))
                    .col(big("contact_id"))
                    .col(text("reason"))
                    .col(ts_null("until"))
                    .col(text("restricted_by"))
                    .col(ts("restricted_at"))
                    .col(text_null("ended_by"))
                    .col(ts_null("ended_at"))
                    .foreign_key(&mut fk("link_restrictions", "tenant_id", "tenants"))
                    .foreign_key(&mut fk("link_restrictions", "student_id", "students"))
                    .foreign_key(&mut fk("link_restrictions", "contact_id", "contacts"))
                    .to_owned(),
            )
            .await?;
        // The student page's history, newest first.
        manager
            .create_index(index(
                "link_restrictions",
                &["tenant_id", "student_id", "id"],
                false,
            ))
            .await?;
        // Open restrictions whose end has come (the expiry sweep), on either engine.
        manager
            .create_index(index("link_restrictions", &["ended_at", "until"], false))
            .await?;
        // Deleting a contact (erasure) finds its restrictions by index.
        manager
            .create_index(index("link_restrictions", &["contact_id"], false))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("student_contacts")
                    .add_column(big_null("restriction_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("student_contacts")
                    .drop_column("restriction_id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table("link_restrictions")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
