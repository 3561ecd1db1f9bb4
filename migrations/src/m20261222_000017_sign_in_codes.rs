//! Guardians' one-time sign-in codes (SPEC §8: "guardians with a one-time code"). A row is
//! one code sent to one address of one parent/guardian contact: the SHA-256 of the code
//! (salted with the row's own random salt), the browser flow it belongs to (the SHA-256 of
//! the flow cookie), the SHA-256 of the address it went to (for the per-address limit), its
//! clocks and its tries. `pending_code` holds the code only until the outbox has sent it.
//!
//! Also indexes contacts by (tenant, lower-case email) and (tenant, mobile phone): the
//! sign-in page finds a guardian by the address they type, at any district size.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds `sign_in_codes` and the contact address indexes.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261222_000017_sign_in_codes"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sign_in_codes")
                    .col(pk())
                    .col(big("tenant_id"))
                    .col(big("contact_id"))
                    // `email` or `sms`.
                    .col(text("channel"))
                    // Hex SHA-256 of the normalised address (the per-address limit).
                    .col(text("address_hash"))
                    // Hex SHA-256 of the browser's sign-in flow cookie.
                    .col(text("flow_hash"))
                    // Hex random salt and hex SHA-256 of salt ‖ code.
                    .col(text("salt"))
                    .col(text("code_hash"))
                    // The code until the outbox sent it (then NULL).
                    .col(text_null("pending_code"))
                    .col(counter("attempts"))
                    .col(ts("created_at"))
                    .col(ts("expires_at"))
                    .col(ts_null("used_at"))
                    .foreign_key(&mut fk("sign_in_codes", "tenant_id", "tenants"))
                    .foreign_key(&mut fk("sign_in_codes", "contact_id", "contacts"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "sign_in_codes",
                &["tenant_id", "address_hash", "created_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index("sign_in_codes", &["flow_hash"], false))
            .await?;
        manager
            .create_index(index("sign_in_codes", &["expires_at"], false))
            .await?;
        // The foreign key to contacts is checked on every contact delete (erasure).
        manager
            .create_index(index("sign_in_codes", &["contact_id"], false))
            .await?;
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE INDEX ix_contacts_tenant_id_lower_email ON contacts (tenant_id, lower(email))",
        )
        .await?;
        manager
            .create_index(index("contacts", &["tenant_id", "mobile_phone"], false))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_contacts_tenant_id_lower_email")
            .await?;
        conn.execute_unprepared("DROP INDEX IF EXISTS ix_contacts_tenant_id_mobile_phone")
            .await?;
        manager
            .drop_table(Table::drop().table("sign_in_codes").if_exists().to_owned())
            .await
    }
}
