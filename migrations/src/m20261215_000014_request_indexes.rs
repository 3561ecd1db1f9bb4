//! Indexes the request paths need at district scale (found by the query-plan tests,
//! `tests/it/scale.rs`): each list is read in id order within its tenant, so a page reads
//! only its own rows instead of sorting the tenant's, and deleting a contact checks the
//! digest unsubscribes that reference it through an index.

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds the request-path indexes.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261215_000014_request_indexes"
    }
}

/// `(table, columns)` of each index.
const INDEXES: &[(&str, &[&str])] = &[
    // `GET /api/v1/contact-requests` (all statuses), newest or oldest first by id.
    ("contact_requests", &["tenant_id", "id"]),
    // `GET /api/v1/digest/deliveries`: a week adds a million rows at district scale.
    ("digest_deliveries", &["tenant_id", "id"]),
    // The foreign key from digest_unsubscribes to contacts, checked on every contact delete.
    ("digest_unsubscribes", &["contact_id"]),
];

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in INDEXES {
            manager.create_index(index(table, columns, false)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("ix_{table}_{}", columns.join("_")))
                        .table(*table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
