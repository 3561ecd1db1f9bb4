//! Teacher contact edits and admin decisions (SPEC §4), admin erasures (SPEC §3.3), and
//! the hold a removal approved by an admin puts on a synced link.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `contact_requests`, `contact_erasures` and the link hold columns.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000003_approvals"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [text_null("held_by"), ts_null("held_at")] {
            manager
                .alter_table(
                    Table::alter()
                        .table("student_contacts")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }

        // Partial: only held links are indexed (few), so the sync finds them without a scan
        // and the millions of other links cost nothing. Same SQL on both engines.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_student_contacts_held ON student_contacts (tenant_id) WHERE held_by IS NOT NULL",
            )
            .await?;

        // `student_id` and `contact_id` are plain numbers, not foreign keys: a request and
        // its audit trail outlive an erased contact.
        manager
            .create_table(
                Table::create()
                    .table("contact_requests")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("student_id"))
                    .col(text("student_source_id"))
                    .col(big_null("contact_id"))
                    .col(text("action"))
                    .col(text("proposed"))
                    .col(text_null("current"))
                    .col(text("requested_by"))
                    .col(ts("requested_at"))
                    .col(text_null("idempotency_key"))
                    .col(big_null("body_hash"))
                    .col(text("status"))
                    .col(text_null("decided_by"))
                    .col(ts_null("decided_at"))
                    .col(text_null("reason"))
                    .col(text_null("applied"))
                    .foreign_key(&mut fk("contact_requests", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "contact_requests",
                &["tenant_id", "status", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "contact_requests",
                &["tenant_id", "requested_by", "idempotency_key"],
                true,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("contact_erasures")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("student_source_id"))
                    .col(text("contact_source_key"))
                    .col(big_null("contact_id"))
                    .col(text("erased_by"))
                    .col(ts("erased_at"))
                    .col(text_null("reason"))
                    .col(text_null("lifted_by"))
                    .col(ts_null("lifted_at"))
                    .foreign_key(&mut fk("contact_erasures", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "contact_erasures",
                &["tenant_id", "student_source_id", "contact_source_key"],
                false,
            ))
            .await?;
        manager
            .create_index(index("audit_log", &["tenant_id", "action", "at"], false))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["contact_erasures", "contact_requests"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS ix_student_contacts_held")
            .await?;
        for column in ["held_by", "held_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("student_contacts")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
