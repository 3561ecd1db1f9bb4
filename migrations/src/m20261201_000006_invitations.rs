//! Invitations (SPEC §5) and the transactional outbox that delivers them: an invitation and
//! its outbox row commit together; dispatchers claim outbox rows, send, and record the
//! outcome. Also SMS opt-outs (STOP/START replies), when a guardian joined, and the
//! tenant's invite limits.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `invitations`, `outbox`, `sms_opt_outs`, `contacts.joined_at` and the limits.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_invitations"
    }
}

fn int_default(name: &str, default: i32) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .integer()
        .not_null()
        .default(default)
        .to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            int_default("invite_limit_per_guardian", 3),
            int_default("invite_window_days", 7),
            int_default("invite_limit_per_tenant_per_day", 10000),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("tenant_settings")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("contacts")
                    .add_column(ts_null("joined_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("invitations")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("chat_id"))
                    .col(big("contact_id"))
                    .col(text("channel"))
                    .col(text("recipient"))
                    .col(text_null("fallback_reason"))
                    .col(text("trigger"))
                    .col(text("invited_by"))
                    .col(text("join_token"))
                    .col(ts("created_at"))
                    .foreign_key(&mut fk("invitations", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "invitations",
                &["tenant_id", "contact_id", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index("invitations", &["tenant_id", "created_at"], false))
            .await?;
        manager
            .create_index(index("invitations", &["chat_id"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("kind"))
                    .col(big("ref_id"))
                    .col(text("channel"))
                    .col(text("recipient"))
                    .col(text("status"))
                    .col(counter("attempts"))
                    .col(ts("next_attempt_at"))
                    .col(text_null("claimed_by"))
                    .col(ts_null("lease_until"))
                    .col(text_null("last_error"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .col(ts_null("sent_at"))
                    .foreign_key(&mut fk("outbox", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("outbox", &["status", "next_attempt_at"], false))
            .await?;
        manager
            .create_index(index("outbox", &["kind", "ref_id"], false))
            .await?;
        manager
            .create_index(index("outbox", &["tenant_id", "status"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sms_opt_outs")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("phone"))
                    .col(ts("opted_out_at"))
                    .foreign_key(&mut fk("sms_opt_outs", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("sms_opt_outs", &["tenant_id", "phone"], true))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["sms_opt_outs", "outbox", "invitations"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("contacts")
                    .drop_column("joined_at")
                    .to_owned(),
            )
            .await?;
        for column in [
            "invite_limit_per_guardian",
            "invite_window_days",
            "invite_limit_per_tenant_per_day",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("tenant_settings")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
