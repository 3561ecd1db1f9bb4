//! Chats started from Parent Connection (SPEC §7): the chat, its members (guardians and
//! other teachers), removal banners for the owner, the owners' block lists, and the tenant
//! switch that removes inactive guardians from chats instead of showing a banner.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `chats`, `chat_members`, `chat_banners`, `chat_blocks` and the tenant switch.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_chats"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_settings")
                    .add_column(
                        ColumnDef::new("auto_remove_inactive_guardians")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("chats")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("owner_source_id"))
                    .col(big("student_id"))
                    .col(text("student_source_id"))
                    .col(text("started_by"))
                    .col(ts("created_at"))
                    .col(ts("updated_at"))
                    .foreign_key(&mut fk("chats", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("chats", &["tenant_id", "owner_source_id"], false))
            .await?;
        manager
            .create_index(index("chats", &["tenant_id", "student_id"], false))
            .await?;
        // `contact_id` is a plain number, not a foreign key: an erased contact's membership
        // (and the banner asking the owner to remove it) outlives the contact row.
        manager
            .create_table(
                Table::create()
                    .table("chat_members")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("chat_id"))
                    .col(big_null("contact_id"))
                    .col(text_null("teacher_source_id"))
                    .col(ts("added_at"))
                    .col(ts_null("removed_at"))
                    .col(text_null("removed_by"))
                    .foreign_key(&mut fk("chat_members", "chat_id", "chats"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("chat_members", &["chat_id"], false))
            .await?;
        manager
            .create_index(index("chat_members", &["tenant_id", "contact_id"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("chat_banners")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("chat_id"))
                    .col(big("contact_id"))
                    .col(text("cause"))
                    .col(ts("created_at"))
                    .col(ts_null("cleared_at"))
                    .col(text_null("cleared_by"))
                    .foreign_key(&mut fk("chat_banners", "chat_id", "chats"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("chat_banners", &["chat_id", "contact_id"], false))
            .await?;
        manager
            .create_index(index("chat_banners", &["tenant_id", "cleared_at"], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("chat_blocks")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(text("owner_source_id"))
                    .col(big("contact_id"))
                    .col(ts("created_at"))
                    .foreign_key(&mut fk("chat_blocks", "tenant_id", "tenants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "chat_blocks",
                &["tenant_id", "owner_source_id", "contact_id"],
                true,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["chat_blocks", "chat_banners", "chat_members", "chats"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("tenant_settings")
                    .drop_column("auto_remove_inactive_guardians")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
