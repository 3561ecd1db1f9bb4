//! The disclosure log's text, compressed (issue 21).
//!
//! - `disclosures.body_deflate`: the body sent, compressed with raw deflate against a fixed
//!   preset dictionary (`src/outbox/disclosures/text.rs`). New entries store the body only
//!   here and leave `body` null; entries written before this migration keep their plain
//!   `body`, and readers take whichever of the two is set. A week of a million digests
//!   (about 4.5 KB of text each) takes a fraction of the space.

use sea_orm_migration::prelude::*;

/// Adds `disclosures.body_deflate`.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20270119_000023_disclosure_text"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("disclosures")
                    .add_column(ColumnDef::new("body_deflate").binary().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("disclosures")
                    .drop_column("body_deflate")
                    .to_owned(),
            )
            .await
    }
}
