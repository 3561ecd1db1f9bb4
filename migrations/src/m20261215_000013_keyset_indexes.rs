//! Keyset indexes (issue 16): every list of the API is paged by row id, newest (or oldest)
//! first (the audit log by time, then id), so each list needs an index that starts with its
//! filter columns (tenant, owner, contact, chat, action, actor, target) and ends with its
//! order: a page then reads only its own rows instead of sorting everything its filters
//! match.
//!
//! SQLite appends the rowid to every index, so an index on `(tenant_id, owner_source_id)`
//! already orders by id there; PostgreSQL does not. The id is spelled out on both engines,
//! and an index that becomes a prefix of a new one is dropped (the longer one serves every
//! query the shorter one did).

use crate::columns::*;
use sea_orm_migration::prelude::*;

/// Adds the keyset indexes of the API's lists.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261215_000013_keyset_indexes"
    }
}

/// New indexes (table, columns).
const ADDED: &[(&str, &[&str])] = &[
    // `GET /api/v1/audit`, newest first by (at, id): unfiltered and each exact-match filter
    // on its own walk, with `since`/`until` as a range of the same walk.
    ("audit_log", &["tenant_id", "at", "id"]),
    ("audit_log", &["tenant_id", "action", "at", "id"]),
    ("audit_log", &["tenant_id", "actor", "at", "id"]),
    ("audit_log", &["tenant_id", "target", "at", "id"]),
    // `GET /api/v1/email-suppressions`.
    ("email_suppressions", &["tenant_id", "id"]),
    // `GET /api/v1/erasures`.
    ("contact_erasures", &["tenant_id", "id"]),
    // `GET /api/v1/chats`: an admin's (every chat), a teacher's own, a student's.
    ("chats", &["tenant_id", "id"]),
    ("chats", &["tenant_id", "owner_source_id", "id"]),
    ("chats", &["tenant_id", "student_id", "id"]),
    // Chats a teacher or a guardian is a member of, in chat order.
    (
        "chat_members",
        &["tenant_id", "teacher_source_id", "chat_id"],
    ),
    ("chat_members", &["tenant_id", "contact_id", "chat_id"]),
    // `GET /api/v1/blocks`.
    ("chat_blocks", &["tenant_id", "owner_source_id", "id"]),
    // `GET /api/v1/chats/{id}/invitations` and `GET /api/v1/contacts/{id}/invitations`.
    ("invitations", &["chat_id", "id"]),
    ("invitations", &["tenant_id", "contact_id", "id"]),
];

/// Indexes the new ones replace (each a prefix of a new one).
const REPLACED: &[(&str, &[&str])] = &[
    ("audit_log", &["tenant_id", "at"]),
    ("audit_log", &["tenant_id", "action", "at"]),
    ("chats", &["tenant_id", "owner_source_id"]),
    ("chats", &["tenant_id", "student_id"]),
    ("chat_members", &["tenant_id", "contact_id"]),
    ("invitations", &["chat_id"]),
];

fn drop(table: &'static str, columns: &[&str]) -> IndexDropStatement {
    Index::drop()
        .name(format!("ix_{table}_{}", columns.join("_")))
        .table(table)
        .to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in ADDED {
            manager.create_index(index(table, columns, false)).await?;
        }
        for (table, columns) in REPLACED {
            manager.drop_index(drop(table, columns)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in REPLACED {
            manager.create_index(index(table, columns, false)).await?;
        }
        for (table, columns) in ADDED {
            manager.drop_index(drop(table, columns)).await?;
        }
        Ok(())
    }
}
