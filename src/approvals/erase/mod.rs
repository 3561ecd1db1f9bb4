//! Admin erasure of contacts (SPEC §3.3): distinct from `inactive`, an erase deletes the
//! student–contact link, and the contact itself (all its personal data) once no student
//! links it any more, with every copy of its personal data ([`scrub`], docs/privacy.md).
//! An erasure record keeps the student's SIS id and the contact's SIS key as a keyed hash
//! (for SDS v1 the key is the email), so that a sync still carrying the pair does not
//! re-create it ([`crate::sync::erasures`]) until an admin lifts the erasure. Pending
//! requests about an erased pair are rejected with it.

mod scrub;

use super::ApprovalError;
use super::requests::{Id, student_id};
use crate::audit::{self, AuditEntry};
use crate::chats::banners::{self, Cause};
use crate::db;
use crate::domain::{LinkStatus, Relationship, RequestStatus, TenantId};
use crate::entities::{
    contact_erasures, contact_requests, contacts, link_restrictions, student_contacts,
};
use crate::privacy::{PrivacyKey, Purpose};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Value,
};
use serde::Serialize;

/// The reason recorded on a pending request that an erasure rejects.
const REJECTED_BY_ERASURE: &str = "the contact was erased from the student";

/// One erased student–contact pair.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erasure {
    /// Erasure id (to lift it).
    pub id: String,
    /// The student's SIS source id.
    pub student_id: String,
    /// The erased contact's id (no longer valid once the contact was deleted).
    pub contact_id: Option<String>,
    /// True when the contact was deleted too (no other student linked it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_deleted: Option<bool>,
    /// Who erased.
    pub erased_by: String,
    /// When (UTC).
    pub erased_at: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
    /// Who lifted the erasure, if anyone.
    pub lifted_by: Option<String>,
    /// When it was lifted (UTC).
    pub lifted_at: Option<DateTime<Utc>>,
}

/// What to erase.
pub struct EraseRequest<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The student's SIS source id.
    pub student_source_id: &'a str,
    /// One contact, or `None` for every contact of the student.
    pub contact_id: Option<i64>,
    /// For the records and the audit log.
    pub actor: &'a str,
    /// Why (kept with the erasure).
    pub reason: Option<String>,
    /// The key of the hashes erasure keeps.
    pub privacy: &'a PrivacyKey,
}

impl From<contact_erasures::Model> for Erasure {
    fn from(row: contact_erasures::Model) -> Self {
        Erasure {
            id: row.id.to_string(),
            student_id: row.student_source_id,
            contact_id: row.contact_id.map(|c| c.to_string()),
            contact_deleted: None,
            erased_by: row.erased_by,
            erased_at: row.erased_at,
            reason: row.reason,
            lifted_by: row.lifted_by,
            lifted_at: row.lifted_at,
        }
    }
}

/// A link to erase, with what the audit log keeps of it.
#[derive(FromQueryResult)]
struct LinkToErase {
    contact_id: i64,
    source_key: String,
    relationship: Option<Relationship>,
    status: LinkStatus,
}

/// Erases one contact, or every contact, of a student; all-or-nothing.
pub async fn erase(
    db_conn: &DatabaseConnection,
    request: EraseRequest<'_>,
) -> Result<Vec<Erasure>, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    let tenant = Value::BigInt(Some(request.tenant.0));
    let student = student_id(&txn, request.tenant, request.student_source_id).await?;
    hash_legacy_keys(&txn, request.privacy, request.tenant).await?;
    let mut sql = "SELECT l.contact_id, c.source_key, l.relationship, l.status FROM student_contacts l \
                   JOIN contacts c ON c.id = l.contact_id WHERE l.tenant_id = $1 AND l.student_id = $2"
        .to_string();
    let mut values = vec![tenant.clone(), Value::BigInt(Some(student))];
    if let Some(contact) = request.contact_id {
        sql.push_str(" AND l.contact_id = $3");
        values.push(Value::BigInt(Some(contact)));
    }
    let links =
        db::rows::query_as::<LinkToErase, _>(&txn, &format!("{sql} ORDER BY l.contact_id"), values)
            .await?;
    if links.is_empty() && request.contact_id.is_some() {
        return Err(ApprovalError::NotFound("contact"));
    }
    let now = Utc::now();
    let mut erased = Vec::with_capacity(links.len());
    for link in &links {
        let contact = link.contact_id;
        let source_key = &link.source_key;
        let before = serde_json::json!({
            "relationship": link.relationship.map(Relationship::as_str),
            "status": link.status.as_str(),
        });
        let pair = PairErase {
            tenant: request.tenant,
            student,
            contact,
            now,
        };
        let id = pair.record(&txn, &request, source_key).await?;
        let contact_deleted = pair.delete(&txn, request.privacy).await?;
        banners::after_pair_change(&txn, request.tenant, now, Cause::Erased, (student, contact))
            .await?;
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(request.tenant),
                actor: request.actor,
                action: "contact.erase",
                target: Some(format!(
                    "student:{}/contact:{contact}",
                    request.student_source_id
                )),
                // Never the erased values: keeping them here would undo the erase.
                before: Some(before),
                after: Some(serde_json::json!({
                    "erasureId": id.to_string(),
                    "contactDeleted": contact_deleted,
                    "reason": request.reason,
                })),
            },
        )
        .await?;
        erased.push(Erasure {
            id: id.to_string(),
            student_id: request.student_source_id.to_string(),
            contact_id: Some(contact.to_string()),
            contact_deleted: Some(contact_deleted),
            erased_by: request.actor.to_string(),
            erased_at: now,
            reason: request.reason.clone(),
            lifted_by: None,
            lifted_at: None,
        });
    }
    txn.commit().await?;
    Ok(erased)
}

/// One pair being erased.
struct PairErase {
    tenant: TenantId,
    student: i64,
    contact: i64,
    now: DateTime<Utc>,
}

impl PairErase {
    /// Stores the erasure record; returns its id.
    async fn record<C: ConnectionTrait>(
        &self,
        conn: &C,
        request: &EraseRequest<'_>,
        source_key: &str,
    ) -> Result<i64, DbErr> {
        let row = contact_erasures::ActiveModel {
            tenant_id: Set(self.tenant.0),
            student_source_id: Set(request.student_source_id.to_string()),
            contact_source_key: Set(request.privacy.hash(Purpose::ErasureKey, source_key)),
            key_hashed: Set(true),
            contact_id: Set(Some(self.contact)),
            erased_by: Set(request.actor.to_string()),
            erased_at: Set(self.now),
            reason: Set(request.reason.clone()),
            ..Default::default()
        };
        let mut insert = contact_erasures::Entity::insert(row);
        insert.query().returning_col(contact_erasures::Column::Id);
        db::rows::one::<Id, _>(conn, &insert)
            .await?
            .map(|row| row.id)
            .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))
    }

    /// Deletes the link, rejects pending requests about the pair and redacts their values,
    /// and deletes the contact with every copy of its data when no other student links
    /// it; returns whether the contact was deleted.
    async fn delete<C: ConnectionTrait>(
        &self,
        conn: &C,
        privacy: &PrivacyKey,
    ) -> Result<bool, DbErr> {
        let link = student_contacts::Entity::delete_many()
            .filter(student_contacts::Column::TenantId.eq(self.tenant.0))
            .filter(student_contacts::Column::StudentId.eq(self.student))
            .filter(student_contacts::Column::ContactId.eq(self.contact));
        db::rows::exec(conn, &link).await?;
        // A restriction's reason is about this pair: erased with it, open or not.
        let restrictions = link_restrictions::Entity::delete_many()
            .filter(link_restrictions::Column::TenantId.eq(self.tenant.0))
            .filter(link_restrictions::Column::StudentId.eq(self.student))
            .filter(link_restrictions::Column::ContactId.eq(self.contact));
        db::rows::exec(conn, &restrictions).await?;
        let rejected = contact_requests::Entity::update_many()
            .col_expr(
                contact_requests::Column::Status,
                Expr::value(RequestStatus::Rejected.as_str()),
            )
            .col_expr(contact_requests::Column::DecidedBy, Expr::value("system"))
            .col_expr(contact_requests::Column::DecidedAt, Expr::value(self.now))
            .col_expr(
                contact_requests::Column::Reason,
                Expr::value(REJECTED_BY_ERASURE),
            )
            .filter(contact_requests::Column::TenantId.eq(self.tenant.0))
            .filter(contact_requests::Column::StudentId.eq(self.student))
            .filter(contact_requests::Column::ContactId.eq(self.contact))
            .filter(contact_requests::Column::Status.eq(RequestStatus::Pending.as_str()));
        db::rows::exec(conn, &rejected).await?;
        let remaining = db::count(
            conn,
            "SELECT COUNT(*) AS n FROM student_contacts WHERE tenant_id = $1 AND contact_id = $2",
            vec![
                Value::BigInt(Some(self.tenant.0)),
                Value::BigInt(Some(self.contact)),
            ],
        )
        .await?;
        let scrub = scrub::Scrub {
            tenant: self.tenant,
            contact: self.contact,
            now: self.now,
            privacy,
        };
        if remaining > 0 {
            scrub.pair(conn, self.student).await?;
            return Ok(false);
        }
        scrub.contact_everywhere(conn, self.student).await?;
        let contact = contacts::Entity::delete_many()
            .filter(contacts::Column::TenantId.eq(self.tenant.0))
            .filter(contacts::Column::Id.eq(self.contact));
        db::rows::exec(conn, &contact).await?;
        Ok(true)
    }
}

/// A plain SIS key of an erasure recorded before keys were hashed.
#[derive(FromQueryResult)]
struct LegacyKey {
    id: i64,
    contact_source_key: String,
}

/// Replaces the plain keys of the tenant's erasures recorded before migration 19 by their
/// keyed hashes (a no-op once done: the (tenant, id) index finds none to convert).
pub async fn hash_legacy_keys<C: ConnectionTrait>(
    conn: &C,
    privacy: &PrivacyKey,
    tenant: TenantId,
) -> Result<u64, DbErr> {
    let legacy = db::rows::query_as::<LegacyKey, _>(
        conn,
        "SELECT id, contact_source_key FROM contact_erasures WHERE tenant_id = $1 AND key_hashed = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::Bool(Some(false))],
    )
    .await?;
    for row in &legacy {
        db::exec(
            conn,
            "UPDATE contact_erasures SET contact_source_key = $1, key_hashed = $2 WHERE id = $3",
            vec![
                privacy
                    .hash(Purpose::ErasureKey, &row.contact_source_key)
                    .into(),
                Value::Bool(Some(true)),
                Value::BigInt(Some(row.id)),
            ],
        )
        .await?;
    }
    Ok(legacy.len() as u64)
}

/// Which erasures a page lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErasureFilter<'a> {
    /// Only this student's (SIS source id).
    pub student_source_id: Option<&'a str>,
    /// Only those not lifted.
    pub active_only: bool,
}

/// A page of the tenant's erasures, newest first: those with an id below `before` (the
/// cursor), at most `limit`, and the cursor of the next page. Walks the (tenant, id) index;
/// a student's erasures come from the (tenant, student, contact) index (a handful).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    filter: ErasureFilter<'_>,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<Erasure>, Option<String>), DbErr> {
    use contact_erasures::Column;
    let page = contact_erasures::Entity::find()
        .filter(Column::TenantId.eq(tenant.0))
        .apply_if(filter.active_only.then_some(()), |q, ()| {
            q.filter(Column::LiftedAt.is_null())
        })
        .apply_if(filter.student_source_id, |q, student| {
            q.filter(Column::StudentSourceId.eq(student))
        })
        .apply_if(before, |q, before| q.filter(Column::Id.lt(before)))
        .order_by_desc(Column::Id)
        .limit(limit.saturating_add(1));
    let items = db::rows::all::<contact_erasures::Model, _>(conn, &page)
        .await?
        .into_iter()
        .map(Erasure::from)
        .collect();
    Ok(db::page(items, limit, |e| e.id.clone()))
}

/// Lifts an erasure: the next sync that carries the pair re-creates it.
pub async fn lift(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    id: i64,
    actor: &str,
) -> Result<Erasure, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    use contact_erasures::Column;
    let lift = contact_erasures::Entity::update_many()
        .col_expr(Column::LiftedBy, Expr::value(actor))
        .col_expr(Column::LiftedAt, Expr::value(Utc::now()))
        .filter(Column::TenantId.eq(tenant.0))
        .filter(Column::Id.eq(id))
        .filter(Column::LiftedAt.is_null());
    let lifted = db::rows::exec(&txn, &lift).await?;
    let erasure = contact_erasures::Entity::find()
        .filter(Column::TenantId.eq(tenant.0))
        .filter(Column::Id.eq(id));
    let item = db::rows::one::<contact_erasures::Model, _>(&txn, &erasure)
        .await?
        .map(Erasure::from)
        .ok_or(ApprovalError::NotFound("erasure"))?;
    if lifted == 0 {
        return Err(ApprovalError::AlreadyLifted);
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor,
            action: "contact.erase_lift",
            target: Some(format!("erasure:{id}")),
            before: Some(
                serde_json::json!({"studentId": item.student_id, "contactId": item.contact_id}),
            ),
            after: Some(serde_json::json!({"liftedAt": item.lifted_at})),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(item)
}
