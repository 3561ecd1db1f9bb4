//! Block lists: a chat owner blocks a guardian, who then cannot start any chat with that
//! owner (and whom the owner cannot add to a chat until the block is lifted). Blocking can
//! also remove the guardian from one of the owner's chats in the same step.

use super::ChatError;
use super::store;
use crate::audit::{self, AuditEntry};
use crate::contacts::ContactName;
use crate::db;
use crate::domain::TenantId;
use crate::entities::chat_blocks;
use crate::roster::teaches_student;
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Set, Value,
};
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

/// A row that names a contact.
#[derive(FromQueryResult)]
struct ContactId {
    contact_id: i64,
}

/// One block with its guardian's name (`found` is null once the contact was erased).
#[derive(FromQueryResult)]
struct BlockRow {
    id: i64,
    contact_id: i64,
    created_at: DateTime<Utc>,
    found: Option<i64>,
    #[sea_orm(nested)]
    name: ContactName,
}

/// The owner's block of one contact.
fn one_block(tenant: TenantId, owner: &str, contact: i64) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(chat_blocks::Column::TenantId.eq(tenant.0))
        .add(chat_blocks::Column::OwnerSourceId.eq(owner))
        .add(chat_blocks::Column::ContactId.eq(contact))
}

/// The contacts `owner` blocked.
pub async fn blocked_by<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
) -> Result<BTreeSet<i64>, DbErr> {
    Ok(db::rows::query_as::<ContactId, _>(
        conn,
        "SELECT contact_id FROM chat_blocks WHERE tenant_id = $1 AND owner_source_id = $2",
        vec![Value::BigInt(Some(tenant.0)), owner.into()],
    )
    .await?
    .into_iter()
    .map(|r| r.contact_id)
    .collect())
}

/// True when the owner may block `contact`: a guardian of one of their chats (whose name
/// the chat shows them), or a contact the teacher may see (`domain::visibility`: active link,
/// parent or guardian) of a student they teach now. Anything else reads as not found, like
/// a contact that does not exist, so a block reveals no name the teacher could not see.
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
        "SELECT COUNT(*) AS n FROM chat_members m JOIN chats c ON c.id = m.chat_id \
         WHERE c.tenant_id = $1 AND c.owner_source_id = $2 AND m.contact_id = $3",
        values.clone(),
    )
    .await?;
    if in_chat > 0 {
        return Ok(true);
    }
    db::exists(
        conn,
        &format!(
            "SELECT COUNT(*) FROM student_contacts l JOIN students s ON s.id = l.student_id \
             WHERE l.tenant_id = $1 AND l.contact_id = $3 AND {} AND s.tenant_id = $1 AND {}",
            crate::visible_link!("l"),
            teaches_student(2)
        ),
        values,
    )
    .await
}

async fn contact_name<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<String, DbErr> {
    let name = db::rows::query_one::<ContactName, _>(
        conn,
        "SELECT given_name, family_name, email, mobile_phone FROM contacts WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    Ok(name.map_or_else(|| "(erased contact)".into(), |n| n.display()))
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
        let block = chat_blocks::ActiveModel {
            tenant_id: Set(tenant.0),
            owner_source_id: Set(owner.to_string()),
            contact_id: Set(contact),
            created_at: Set(now),
            ..Default::default()
        };
        db::rows::exec(&txn, &chat_blocks::Entity::insert(block)).await?;
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
            tenant_id: Some(tenant),
            actor,
            action: "chat.block",
            target: Some(format!("contact:{contact}")),
            before: None,
            after: Some(serde_json::json!({"owner": owner, "removedFromChat": remove_from.map(|c| c.to_string())})),
        },
    )
    .await?;
    let created_at = db::rows::one::<chat_blocks::Model, _>(
        &txn,
        &chat_blocks::Entity::find().filter(one_block(tenant, owner, contact)),
    )
    .await?
    .map_or(now, |b| b.created_at);
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
    let rows = db::rows::query_as::<BlockRow, _>(
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
        .into_iter()
        .map(|row| {
            let item = BlockItem {
                contact_id: row.contact_id.to_string(),
                display_name: match row.found {
                    Some(_) => row.name.display(),
                    None => "(erased contact)".into(),
                },
                created_at: row.created_at,
                removed_from_chat: false,
            };
            (row.id, item)
        })
        .collect::<Vec<_>>();
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
    let lifted = db::rows::exec(
        &txn,
        &chat_blocks::Entity::delete_many().filter(one_block(tenant, owner, contact)),
    )
    .await?;
    if lifted == 0 {
        return Err(ChatError::NotFound("block"));
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
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
