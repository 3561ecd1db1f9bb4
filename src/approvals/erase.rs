//! Admin erasure of contacts (SPEC §3.3): distinct from `inactive`, an erase deletes the
//! student–contact link, and the contact itself (all its personal data) once no student
//! links it any more. An erasure record keeps only the SIS keys of the pair, so that a sync
//! still carrying it does not re-create it ([`crate::sync::erasures`]) until an admin
//! lifts the erasure. Pending requests about an erased pair are rejected with it.

use super::ApprovalError;
use super::requests::student_id;
use crate::audit::{self, AuditEntry};
use crate::chats::banners::{self, Cause};
use crate::db;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Value};
use serde::Serialize;

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
}

const SELECT: &str = "SELECT id, student_source_id, contact_id, erased_by, erased_at, reason, lifted_by, lifted_at FROM contact_erasures";

fn erasure(row: &QueryResult) -> Result<Erasure, DbErr> {
    let contact: Option<i64> = row.try_get_by_index(2)?;
    Ok(Erasure {
        id: row.try_get_by_index::<i64>(0)?.to_string(),
        student_id: row.try_get_by_index(1)?,
        contact_id: contact.map(|c| c.to_string()),
        contact_deleted: None,
        erased_by: row.try_get_by_index(3)?,
        erased_at: row.try_get_by_index(4)?,
        reason: row.try_get_by_index(5)?,
        lifted_by: row.try_get_by_index(6)?,
        lifted_at: row.try_get_by_index(7)?,
    })
}

/// Erases one contact, or every contact, of a student; all-or-nothing.
pub async fn erase(
    db_conn: &DatabaseConnection,
    request: EraseRequest<'_>,
) -> Result<Vec<Erasure>, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    let tenant = Value::BigInt(Some(request.tenant.0));
    let student = student_id(&txn, request.tenant, request.student_source_id).await?;
    let mut sql = "SELECT l.contact_id, c.source_key, l.relationship, l.status FROM student_contacts l \
                   JOIN contacts c ON c.id = l.contact_id WHERE l.tenant_id = $1 AND l.student_id = $2"
        .to_string();
    let mut values = vec![tenant.clone(), Value::BigInt(Some(student))];
    if let Some(contact) = request.contact_id {
        sql.push_str(" AND l.contact_id = $3");
        values.push(Value::BigInt(Some(contact)));
    }
    let links = db::query(&txn, &format!("{sql} ORDER BY l.contact_id"), values).await?;
    if links.is_empty() && request.contact_id.is_some() {
        return Err(ApprovalError::NotFound("contact"));
    }
    let now = Utc::now();
    let mut erased = Vec::with_capacity(links.len());
    for link in &links {
        let contact: i64 = link.try_get_by_index(0)?;
        let source_key: String = link.try_get_by_index(1)?;
        let before = serde_json::json!({
            "relationship": link.try_get_by_index::<Option<String>>(2)?,
            "status": link.try_get_by_index::<Option<String>>(3)?,
        });
        let pair = PairErase {
            tenant: request.tenant,
            student,
            contact,
            now,
        };
        let id = pair.record(&txn, &request, &source_key).await?;
        let contact_deleted = pair.delete(&txn).await?;
        banners::after_pair_change(
            &txn,
            request.tenant.0,
            now,
            Cause::Erased,
            (student, contact),
        )
        .await?;
        audit::record(
            &txn,
            AuditEntry {
                tenant_id: Some(request.tenant.0),
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
        let rows = db::query(
            conn,
            "INSERT INTO contact_erasures (tenant_id, student_source_id, contact_source_key, contact_id, erased_by, erased_at, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            vec![
                Value::BigInt(Some(self.tenant.0)),
                request.student_source_id.into(),
                source_key.into(),
                Value::BigInt(Some(self.contact)),
                request.actor.into(),
                Value::ChronoDateTimeUtc(Some(self.now)),
                Value::String(request.reason.clone()),
            ],
        )
        .await?;
        rows.first()
            .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))?
            .try_get_by_index(0)
    }

    /// Deletes the link, rejects pending requests about the pair, and deletes the contact
    /// when no other student links it; returns whether the contact was deleted.
    async fn delete<C: ConnectionTrait>(&self, conn: &C) -> Result<bool, DbErr> {
        let (tenant, student, contact) = (
            Value::BigInt(Some(self.tenant.0)),
            Value::BigInt(Some(self.student)),
            Value::BigInt(Some(self.contact)),
        );
        db::exec(
            conn,
            "DELETE FROM student_contacts WHERE tenant_id = $1 AND student_id = $2 AND contact_id = $3",
            vec![tenant.clone(), student.clone(), contact.clone()],
        )
        .await?;
        db::exec(
            conn,
            "UPDATE contact_requests SET status = 'rejected', decided_by = 'system', decided_at = $1, \
               reason = 'the contact was erased from the student' \
             WHERE tenant_id = $2 AND student_id = $3 AND contact_id = $4 AND status = 'pending'",
            vec![
                Value::ChronoDateTimeUtc(Some(self.now)),
                tenant.clone(),
                student,
                contact.clone(),
            ],
        )
        .await?;
        let remaining = db::count(
            conn,
            "SELECT COUNT(*) FROM student_contacts WHERE tenant_id = $1 AND contact_id = $2",
            vec![tenant.clone(), contact.clone()],
        )
        .await?;
        if remaining > 0 {
            return Ok(false);
        }
        db::exec(
            conn,
            "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2",
            vec![tenant, contact],
        )
        .await?;
        Ok(true)
    }
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
    let unlifted = if filter.active_only {
        " AND lifted_at IS NULL"
    } else {
        ""
    };
    let mut filters = db::Filters::new(
        &format!("{SELECT} WHERE tenant_id = $1{unlifted}"),
        vec![Value::BigInt(Some(tenant.0))],
    );
    if let Some(student) = filter.student_source_id {
        filters.and("student_source_id =", student);
    }
    if let Some(before) = before {
        filters.and("id <", before);
    }
    let (sql, values) = filters.finish(&format!(
        "ORDER BY id DESC LIMIT {}",
        limit.saturating_add(1)
    ));
    let items = db::query(conn, &sql, values)
        .await?
        .iter()
        .map(erasure)
        .collect::<Result<Vec<_>, DbErr>>()?;
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
    let lifted = db::exec(
        &txn,
        "UPDATE contact_erasures SET lifted_by = $1, lifted_at = $2 WHERE tenant_id = $3 AND id = $4 AND lifted_at IS NULL",
        vec![
            actor.into(),
            Value::ChronoDateTimeUtc(Some(Utc::now())),
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(id)),
        ],
    )
    .await?
    .rows_affected();
    let rows = db::query(
        &txn,
        &format!("{SELECT} WHERE tenant_id = $1 AND id = $2"),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
    )
    .await?;
    let item = rows
        .first()
        .map(erasure)
        .transpose()?
        .ok_or(ApprovalError::NotFound("erasure"))?;
    if lifted == 0 {
        return Err(ApprovalError::AlreadyLifted);
    }
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant.0),
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
