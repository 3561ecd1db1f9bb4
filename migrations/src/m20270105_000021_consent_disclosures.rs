//! SMS consent per sending number, and the disclosure log (issue 19).
//!
//! - `sms_opt_outs` is keyed by a **keyed hash** of "sender|recipient" (`key_hash`) instead
//!   of (tenant, phone): a STOP to the shared sending number stops the texts of every tenant
//!   that sends from it, and the opt-out outlives the contact's erasure without keeping the
//!   number. The hash needs the application's privacy key, which a migration does not
//!   have: existing rows are kept with their number in `legacy_phone` (one row per number,
//!   the latest time; an opt-out from any tenant became one from every sender), and the
//!   application hashes them in its dispatcher's first round
//!   (`outbox::consent::convert_legacy`), or at the contact's erasure, whichever is first.
//! - `disclosures` records each invitation and digest sent: recipient, the time the server
//!   accepted it, the exact text (kept for `outbox.disclosure_text_days`) and its SHA-256;
//!   `disclosure_students` names the students each was about.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Reshapes `sms_opt_outs`; adds `disclosures` and `disclosure_students`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270105_000021_consent_disclosures"
    }
}

const OLD: &str = "sms_opt_outs_by_tenant";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        opt_outs_by_sender(manager).await?;
        disclosures(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["disclosure_students", "disclosures"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        // Hashed opt-outs cannot be turned back into numbers: only the unconverted stay.
        manager
            .rename_table(Table::rename().table("sms_opt_outs", OLD).to_owned())
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
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO sms_opt_outs (tenant_id, phone, opted_out_at) \
                 SELECT t.id, o.legacy_phone, o.opted_out_at FROM {OLD} o CROSS JOIN tenants t \
                 WHERE o.legacy_phone IS NOT NULL"
            ))
            .await?;
        manager
            .drop_table(Table::drop().table(OLD).to_owned())
            .await
    }
}

/// `sms_opt_outs (tenant_id, phone)` → `sms_opt_outs (key_hash | legacy_phone)`.
async fn opt_outs_by_sender(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .rename_table(Table::rename().table("sms_opt_outs", OLD).to_owned())
        .await?;
    manager
        .create_table(
            Table::create()
                .table("sms_opt_outs")
                .col(pk())
                .col(text_null("key_hash"))
                .col(text_null("legacy_phone"))
                .col(ts("opted_out_at"))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index("sms_opt_outs", &["key_hash"], true))
        .await?;
    manager
        .create_index(index("sms_opt_outs", &["legacy_phone"], true))
        .await?;
    // A number that opted out of any tenant's texts opted out of the shared sender.
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO sms_opt_outs (legacy_phone, opted_out_at) \
             SELECT phone, MAX(opted_out_at) FROM {OLD} GROUP BY phone ORDER BY phone"
        ))
        .await?;
    manager
        .drop_table(Table::drop().table(OLD).to_owned())
        .await
}

async fn disclosures(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("disclosures")
                .col(pk())
                .col(big("tenant_id"))
                .col(text("kind"))
                .col(big("ref_id"))
                .col(big_null("contact_id"))
                .col(text("channel"))
                .col(text_null("recipient"))
                .col(text_null("subject"))
                .col(text_null("body"))
                .col(text("content_sha256"))
                .col(ts("accepted_at"))
                .col(ts_null("redacted_at"))
                .foreign_key(&mut fk("disclosures", "tenant_id", "tenants"))
                .to_owned(),
        )
        .await?;
    for (columns, unique) in [
        (&["tenant_id", "id"][..], false),
        (&["tenant_id", "contact_id", "id"][..], false),
        (&["redacted_at", "accepted_at"][..], false),
    ] {
        manager
            .create_index(index("disclosures", columns, unique))
            .await?;
    }
    manager
        .create_table(
            Table::create()
                .table("disclosure_students")
                .col(big("disclosure_id"))
                .col(big("tenant_id"))
                .col(text("student_source_id"))
                .primary_key(
                    Index::create()
                        .col("tenant_id")
                        .col("student_source_id")
                        .col("disclosure_id"),
                )
                .foreign_key(&mut fk(
                    "disclosure_students",
                    "disclosure_id",
                    "disclosures",
                ))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index("disclosure_students", &["disclosure_id"], false))
        .await
}
