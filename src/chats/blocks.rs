//! Block lists: a chat owner blocks a guardian, who then cannot start any chat with that
//! owner (and whom the owner cannot add to a chat until the block is lifted). Blocking can
//! also remove the guardian from one of the owner's chats in the same step.

use super::ChatError;
use super::store;
use crate::audit::{self, AuditEntry};
use crate::contacts::display_name;
use crate::db;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Value};
use serde::Serialize;
use std::collections::BTreeSet;

/// One blocked guardian.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockItem {
    /// The guardian's contact id.
    pub contact_id: String,
    /// Name to show.
    pub display_name: String,
    /// When the block was made (UTC).
    pub created_at: DateTime<Utc>,
    /// True when this request also removed the guardian from a chat.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub removed_from_chat: bool,
}

/// The contacts `owner` blocked.
pub async fn blocked_by<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
) -> Result<BTreeSet<i64>, DbErr> {
    db::query(
        conn,
        "SELECT contact_id FROM chat_blocks WHERE tenant_id = $1 AND owner_source_id = $2",
        vec![Value::BigInt(Some(tenant.0)), owner.into()],
    )
    .await?
    .iter()
    .map(|r| r.try_get_by_index::<i64>(0))
    .collect()
}

/// True when the owner may block `contact`: a guardian of one of their chats, or a contact
/// of a student they teach.
async fn reachable<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
    contact: i64,
) -> Result<bool, DbErr> {
    let values = vec![
        Value::BigInt(Some(tenant.0)),
        owner.into(),
        Value::BigInt(Some(contact)),
    ];
    let in_chat = db::count(
        conn,
        "SELECT COUNT(*) FROM chat_members m JOIN chats c ON c.id = m.chat_id \
         WHERE c.tenant_id = $1 AND c.owner_source_id = $2 AND m.contact_id = $3",
        values.clone(),
    )
    .await?;
    if in_chat > 0 {
        return Ok(true);
    }
    let taught = db::count(
        conn,
        "SELECT COUNT(*) FROM student_contacts l \
         JOIN enrollments se ON se.person_id = l.student_id AND se.role = 'student' AND se.status = 'active' \
         JOIN enrollments te ON te.class_id = se.class_id AND te.role = 'teacher' AND te.status = 'active' \
         JOIN staff t ON t.id = te.person_id \
         WHERE l.tenant_id = $1 AND t.source_id = $2 AND t.tenant_id = $1 AND l.contact_id = $3",
        values,
    )
    .await?;
    Ok(taught > 0)
}

async fn contact_name<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<String, DbErr> {
    let rows = db::query(
        conn,
        "SELECT given_name, family_name, email, mobile_phone FROM contacts WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    Ok(match rows.first() {
        None => "(erased contact)".into(),
        Some(r) => {
            let text = |i: usize| r.try_get_by_index::<Option<String>>(i);
            display_name(
                text(0)?.as_deref(),
                text(1)?.as_deref(),
                text(2)?.as_deref(),
                text(3)?.as_deref(),
            )
        }
    })
}

/// Blocks `contact` for `owner` (blocking twice changes nothing) and, when `remove_from`
/// names one of the owner's chats, removes the guardian from it in the same transaction.
pub async fn block(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    owner: &str,
    contact: i64,
    remove_from: Option<i64>,
    actor: &str,
) -> Result<BlockItem, ChatError> {
    let txn = db::begin_write(db_conn).await?;
    if !reachable(&txn, tenant, owner, contact).await? {
        return Err(ChatError::NotFound("contact"));
    }
    let now = Utc::now();
    if !blocked_by(&txn, tenant, owner).await?.contains(&contact) {
        db::exec(
            &txn,
            "INSERT INTO chat_blocks (tenant_id, owner_source_id, contact_id, created_at) VALUES ($1, $2, $3, $4)",
            vec![
                Value::BigInt(Some(tenant.0)),
                owner.into(),
                Value::BigInt(Some(contact)),
                Value::ChronoDateTimeUtc(Some(now)),
            ],
        )
        .await?;
    }
    let removed_from_chat = match remove_from {
        Some(chat) => {
            store::remove_member(&txn, tenant, chat, owner, contact).await?;
            true
        }
        None => false,
    };
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant.0),
            actor,
            action: "chat.block",
            target: Some(format!("contact:{contact}")),
            before: None,
            after: Some(serde_json::json!({"owner": owner, "removedFromChat": remove_from.map(|c| c.to_string())})),
        },
    )
    .await?;
    let created_at = db::query(
        &txn,
        "SELECT created_at FROM chat_blocks WHERE tenant_id = $1 AND owner_source_id = $2 AND contact_id = $3",
        vec![Value::BigInt(Some(tenant.0)), owner.into(), Value::BigInt(Some(contact))],
    )
    .await?
    .first()
    .map(|r| r.try_get_by_index(0))
    .transpose()?
    .unwrap_or(now);
    let item = BlockItem {
        contact_id: contact.to_string(),
        display_name: contact_name(&txn, tenant, contact).await?,
        created_at,
        removed_from_chat,
    };
    txn.commit().await?;
    Ok(item)
}

/// A page of the owner's block list, newest first: blocks with an id below `before` (the
/// cursor), at most `limit`, and the cursor of the next page (through the (tenant, owner,
/// id) index).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<BlockItem>, Option<String>), DbErr> {
    let rows = db::query(
        conn,
        &format!(
            "SELECT b.id, b.contact_id, b.created_at, c.id AS found, c.given_name, c.family_name, c.email, c.mobile_phone \
             FROM chat_blocks b LEFT JOIN contacts c ON c.id = b.contact_id AND c.tenant_id = b.tenant_id \
             WHERE b.tenant_id = $1 AND b.owner_source_id = $2 AND b.id < $3 ORDER BY b.id DESC LIMIT {}",
            limit.saturating_add(1)
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            owner.into(),
            Value::BigInt(Some(before.unwrap_or(i64::MAX))),
        ],
    )
    .await?;
    let blocks = rows
        .iter()
        .map(|row| {
            let text = |column: &str| row.try_get::<Option<String>>("", column);
            let found = row.try_get::<Option<i64>>("", "found")?.is_some();
            let item = BlockItem {
                contact_id: row.try_get::<i64>("", "contact_id")?.to_string(),
                display_name: if found {
                    display_name(
                        text("given_name")?.as_deref(),
                        text("family_name")?.as_deref(),
                        text("email")?.as_deref(),
                        text("mobile_phone")?.as_deref(),
                    )
                } else {
                    "(erased contact)".into()
                },
                created_at: row.try_get("", "created_at")?,
                removed_from_chat: false,
            };
            Ok((row.try_get::<i64>("", "id")?, item))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    let (blocks, next_cursor) = db::page(blocks, limit, |(id, _)| id.to_string());
    Ok((
        blocks.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    ))
}

/// Lifts the owner's block of `contact`.
pub async fn unblock(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    owner: &str,
    contact: i64,
    actor: &str,
) -> Result<(), ChatError> {
    let txn = db::begin_write(db_conn).await?;
    let lifted = db::exec(
        &txn,
        "DELETE FROM chat_blocks WHERE tenant_id = $1 AND owner_source_id = $2 AND contact_id = $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            owner.into(),
            Value::BigInt(Some(contact)),
        ],
    )
    .await?
    .rows_affected();
    if lifted == 0 {
        return Err(ChatError::NotFound("block"));
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant.0),
            actor,
            action: "chat.unblock",
            target: Some(format!("contact:{contact}")),
            before: Some(serde_json::json!({"owner": owner})),
            after: None,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
