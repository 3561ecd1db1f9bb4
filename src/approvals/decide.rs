//! An admin's decision on a pending request. Approval applies the change in the same
//! transaction as the decision, as provenance `approved_edit` with the approval time as the
//! change time, so latest-change-wins compares it with later syncs (SPEC §3.3). Of two
//! admins deciding at once exactly one decision is recorded: the other gets
//! [`ApprovalError::AlreadyDecided`].

use super::requests::{self, Id, RequestItem, Status, linked_values};
use super::{Action, ApprovalError, ContactFields, ContactValues};
use crate::audit::{self, AuditEntry};
use crate::chats::banners::{self, Cause};
use crate::db;
use crate::domain::{Region, TenantId};
use crate::entities::contact_requests;
use crate::sync::hashing::SyncKey;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Value,
};

/// What to do with an "add" whose email matches an existing contact of the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnMatch {
    /// Link the existing contact to the student (its stored values are kept).
    Link,
    /// Create a new contact with the proposed values.
    Create,
}

/// Who decides, and how.
pub struct Decision<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The tenant's phone region (stored proposals are read back with it).
    pub region: Region,
    /// The request.
    pub request_id: i64,
    /// For the request and the audit log.
    pub actor: &'a str,
    /// Optional reason shown to the teacher.
    pub reason: Option<String>,
    /// Approve a stale request anyway (the approver has seen the current values).
    pub confirm_stale: bool,
    /// The deciding person's SIS source id: nobody decides a request they made.
    pub approver: Option<&'a str>,
    /// For an "add" that matches an existing contact: link it or create a new one.
    pub on_match: Option<OnMatch>,
}

/// Approves a pending request and applies it.
pub async fn approve(
    db_conn: &DatabaseConnection,
    decision: Decision<'_>,
) -> Result<RequestItem, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    let request = pending(&txn, &decision).await?;
    if request.stale && !decision.confirm_stale {
        return Err(ApprovalError::Stale(Box::new(serde_json::json!({
            "submitted": request.submitted,
            "current": request.current,
            "proposed": request.proposed,
        }))));
    }
    let now = claim(&txn, &decision, Status::Approved).await?;
    let fields = ContactFields::from_json(&request.proposed, decision.region)?;
    let action = Action::parse(&request.action)
        .ok_or_else(|| DbErr::Custom(format!("unknown stored action {}", request.action)))?;
    let student = requests::student_id(&txn, decision.tenant, &request.student_id).await?;
    let contact_id = request.contact_id.as_deref().and_then(|c| c.parse().ok());
    let change = Change {
        tenant: decision.tenant,
        student,
        student_source_id: &request.student_id,
        request_id: decision.request_id,
        now,
    };
    let contact = match (action, contact_id) {
        (Action::Add, _) => {
            let contact = change.add(&txn, &fields, decision.on_match).await?;
            banners::after_reactivation(&txn, decision.tenant, now).await?;
            contact
        }
        (Action::Update, Some(contact)) => change.update(&txn, contact, &fields).await?,
        (Action::Remove, Some(contact)) => {
            change.remove(&txn, contact).await?;
            banners::after_pair_change(
                &txn,
                decision.tenant,
                now,
                Cause::ApprovedEdit,
                (student, contact),
            )
            .await?;
            contact
        }
        (_, None) => return Err(ApprovalError::ContactGone),
    };
    let applied = linked_values(&txn, decision.tenant, student, contact).await?;
    let applied = serde_json::json!({"contactId": contact.to_string(), "values": applied});
    let applied_to = contact_requests::Entity::update_many()
        .col_expr(
            contact_requests::Column::Applied,
            Expr::value(applied.to_string()),
        )
        .col_expr(contact_requests::Column::ContactId, Expr::value(contact))
        .filter(contact_requests::Column::Id.eq(decision.request_id));
    db::rows::exec(&txn, &applied_to).await?;
    record(
        &txn,
        &decision,
        "contact_request.approve",
        &request,
        Some(applied),
    )
    .await?;
    finish(txn, &decision).await
}

/// Rejects a pending request; nothing else changes.
pub async fn reject(
    db_conn: &DatabaseConnection,
    decision: Decision<'_>,
) -> Result<RequestItem, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    let request = pending(&txn, &decision).await?;
    claim(&txn, &decision, Status::Rejected).await?;
    record(&txn, &decision, "contact_request.reject", &request, None).await?;
    finish(txn, &decision).await
}

/// The request, if it is still pending.
async fn pending<C: ConnectionTrait>(
    conn: &C,
    decision: &Decision<'_>,
) -> Result<RequestItem, ApprovalError> {
    let request = requests::get(conn, decision.tenant, decision.request_id)
        .await?
        .ok_or(ApprovalError::NotFound("contact request"))?;
    if request.status != Status::Pending.as_str() {
        return Err(ApprovalError::AlreadyDecided(request.status));
    }
    if decision.approver == Some(request.requested_by.as_str()) {
        return Err(ApprovalError::OwnRequest);
    }
    Ok(request)
}

/// Records the decision only if the request is still pending, so that of two concurrent
/// deciders exactly one wins; returns the decision time.
async fn claim<C: ConnectionTrait>(
    conn: &C,
    decision: &Decision<'_>,
    status: Status,
) -> Result<DateTime<Utc>, ApprovalError> {
    let now = Utc::now();
    use contact_requests::Column;
    let decided = contact_requests::Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::DecidedBy, Expr::value(decision.actor))
        .col_expr(Column::DecidedAt, Expr::value(now))
        .col_expr(Column::Reason, Expr::value(decision.reason.clone()))
        .filter(Column::TenantId.eq(decision.tenant.0))
        .filter(Column::Id.eq(decision.request_id))
        .filter(Column::Status.eq(Status::Pending.as_str()));
    let claimed = db::rows::exec(conn, &decided).await?;
    if claimed == 0 {
        let now_status = requests::get(conn, decision.tenant, decision.request_id)
            .await?
            .map(|r| r.status)
            .unwrap_or_else(|| "decided".into());
        return Err(ApprovalError::AlreadyDecided(now_status));
    }
    Ok(now)
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    decision: &Decision<'_>,
    action: &str,
    request: &RequestItem,
    applied: Option<serde_json::Value>,
) -> Result<(), DbErr> {
    audit::record(
        conn,
        AuditEntry {
            tenant_id: Some(decision.tenant),
            actor: decision.actor,
            action,
            target: Some(format!("contact_request:{}", decision.request_id)),
            before: Some(serde_json::json!({
                "action": request.action,
                "studentId": request.student_id,
                "contactId": request.contact_id,
                "current": request.current,
                "proposed": request.proposed,
                "stale": request.stale,
            })),
            after: Some(serde_json::json!({
                "reason": decision.reason,
                "applied": applied,
            })),
        },
    )
    .await
}

async fn finish(txn: db::WriteTxn, decision: &Decision<'_>) -> Result<RequestItem, ApprovalError> {
    let item = requests::get(&txn, decision.tenant, decision.request_id)
        .await?
        .ok_or(ApprovalError::NotFound("contact request"))?;
    txn.commit().await?;
    Ok(item)
}

/// One approved change being applied.
struct Change<'a> {
    tenant: TenantId,
    student: i64,
    student_source_id: &'a str,
    request_id: i64,
    now: DateTime<Utc>,
}

/// The contact columns a proposal may set, with their proposed values.
fn contact_columns(fields: &ContactFields) -> Vec<(&'static str, Option<String>)> {
    let mut columns = Vec::new();
    if let Some(v) = &fields.given_name {
        columns.push(("given_name", v.clone()));
    }
    if let Some(v) = &fields.family_name {
        columns.push(("family_name", v.clone()));
    }
    if let Some(v) = &fields.email {
        columns.push(("email", v.as_ref().map(|e| e.as_str().to_string())));
    }
    if let Some(v) = &fields.mobile_phone {
        columns.push(("mobile_phone", v.as_ref().map(|p| p.as_str().to_string())));
    }
    columns
}

impl Change<'_> {
    fn tenant(&self) -> Value {
        Value::BigInt(Some(self.tenant.0))
    }

    fn now(&self) -> Value {
        Value::ChronoDateTimeUtc(Some(self.now))
    }

    /// Adds the proposed contact to the student. When a contact of the tenant already has
    /// the proposed email, the approver chose (`on_match`): link it as it is (its values are
    /// not overwritten), or create a new contact; without a choice nothing happens
    /// ([`ApprovalError::MatchToConfirm`]). Returns the contact id.
    async fn add<C: ConnectionTrait>(
        &self,
        conn: &C,
        fields: &ContactFields,
        on_match: Option<OnMatch>,
    ) -> Result<i64, ApprovalError> {
        let email = fields
            .email
            .clone()
            .flatten()
            .map(|e| e.as_str().to_lowercase());
        let existing = match &email {
            Some(email) => requests::email_match(conn, self.tenant, email).await?,
            None => None,
        };
        let (contact, source_key) = match (existing, on_match) {
            (None, _) => self.create_contact(conn, fields, email).await?,
            (Some(found), Some(OnMatch::Link)) => (found.id, found.source_key),
            // The email keys the existing contact: the new one gets a key of its own.
            (Some(_), Some(OnMatch::Create)) => self.create_contact(conn, fields, None).await?,
            (Some(found), None) => {
                let values = requests::contact_values(conn, self.tenant, found.id).await?;
                return Err(ApprovalError::MatchToConfirm(Box::new(serde_json::json!({
                    "matchedContact": values,
                }))));
            }
        };
        let relationship = fields.relationship.map(|r| r.as_str()).unwrap_or("other");
        let linked = db::exec(
            conn,
            "UPDATE student_contacts SET status = 'active', deactivated_at = NULL, held_by = NULL, held_at = NULL, \
               relationship = $1, relationship_provenance = 'approved_edit', relationship_changed_at = $2, last_seen_at = $2, updated_at = $2 \
             WHERE tenant_id = $3 AND student_id = $4 AND contact_id = $5",
            vec![
                relationship.into(),
                self.now(),
                self.tenant(),
                Value::BigInt(Some(self.student)),
                Value::BigInt(Some(contact)),
            ],
        )
        .await?
        .rows_affected();
        if linked == 0 {
            db::exec(
                conn,
                "INSERT INTO student_contacts (tenant_id, student_id, contact_id, relationship, relationship_provenance, \
                   relationship_changed_at, status, first_seen_at, last_seen_at, updated_at, sync_key) \
                 VALUES ($1, $2, $3, $4, 'approved_edit', $5, 'active', $5, $5, $5, $6)",
                vec![
                    self.tenant(),
                    Value::BigInt(Some(self.student)),
                    Value::BigInt(Some(contact)),
                    relationship.into(),
                    self.now(),
                    // The key a sync would give this pair, so a later snapshot finds it.
                    SyncKey::link(self.student_source_id, &source_key).into(),
                ],
            )
            .await?;
        }
        Ok(contact)
    }

    /// Creates a contact from proposed values. Its key is the email (lower-cased, as SDS v1
    /// keys contacts), or `edit:<request id>` without one.
    async fn create_contact<C: ConnectionTrait>(
        &self,
        conn: &C,
        fields: &ContactFields,
        email_key: Option<String>,
    ) -> Result<(i64, String), ApprovalError> {
        let source_key = email_key.unwrap_or_else(|| format!("edit:{}", self.request_id));
        let columns = contact_columns(fields);
        let mut names = vec![
            "tenant_id",
            "source_key",
            "sync_key",
            "created_at",
            "updated_at",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        let mut values = vec![
            self.tenant(),
            source_key.clone().into(),
            SyncKey::contact(&source_key).into(),
            self.now(),
            self.now(),
        ];
        for (column, value) in columns.into_iter().filter(|(_, v)| v.is_some()) {
            names.extend([
                column.to_string(),
                format!("{column}_provenance"),
                format!("{column}_changed_at"),
            ]);
            values.extend([Value::String(value), "approved_edit".into(), self.now()]);
        }
        let placeholders = (1..=values.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let id = db::rows::query_one::<Id, _>(
            conn,
            &format!(
                "INSERT INTO contacts ({}) VALUES ({placeholders}) RETURNING id",
                names.join(", ")
            ),
            values,
        )
        .await?
        .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))?
        .id;
        Ok((id, source_key))
    }

    /// Applies proposed values to a linked contact and its relationship to the student.
    async fn update<C: ConnectionTrait>(
        &self,
        conn: &C,
        contact: i64,
        fields: &ContactFields,
    ) -> Result<i64, ApprovalError> {
        self.linked(conn, contact).await?;
        let columns = contact_columns(fields);
        if !columns.is_empty() {
            let mut values = vec![self.now(), self.tenant(), Value::BigInt(Some(contact))];
            let mut sets = vec!["updated_at = $1".to_string()];
            for (column, value) in columns {
                values.push(Value::String(value));
                sets.push(format!(
                    "{column} = ${}, {column}_provenance = 'approved_edit', {column}_changed_at = $1",
                    values.len()
                ));
            }
            db::exec(
                conn,
                &format!(
                    "UPDATE contacts SET {} WHERE tenant_id = $2 AND id = $3",
                    sets.join(", ")
                ),
                values,
            )
            .await?;
        }
        if let Some(relationship) = fields.relationship {
            self.set_link(
                conn,
                contact,
                "relationship = $5, relationship_provenance = 'approved_edit', relationship_changed_at = $1",
                Some(relationship.as_str()),
            )
            .await?;
        }
        Ok(contact)
    }

    /// Removes the contact from the student: the link becomes inactive and is held, so a
    /// sync that still sends it unchanged does not bring it back (docs/approvals.md).
    async fn remove<C: ConnectionTrait>(
        &self,
        conn: &C,
        contact: i64,
    ) -> Result<i64, ApprovalError> {
        self.linked(conn, contact).await?;
        self.set_link(
            conn,
            contact,
            "status = 'inactive', deactivated_at = $1, held_by = 'approved_edit', held_at = $1",
            None,
        )
        .await?;
        Ok(contact)
    }

    /// Updates the student's link to `contact` with `set` (`$1` is the change time, `$5`
    /// the optional `value`).
    async fn set_link<C: ConnectionTrait>(
        &self,
        conn: &C,
        contact: i64,
        set: &str,
        value: Option<&str>,
    ) -> Result<(), DbErr> {
        let mut values = vec![
            self.now(),
            self.tenant(),
            Value::BigInt(Some(self.student)),
            Value::BigInt(Some(contact)),
        ];
        values.extend(value.map(Value::from));
        db::exec(
            conn,
            &format!(
                "UPDATE student_contacts SET {set}, updated_at = $1 WHERE tenant_id = $2 AND student_id = $3 AND contact_id = $4"
            ),
            values,
        )
        .await
        .map(|_| ())
    }

    /// The contact's values, if it is still linked to the student.
    async fn linked<C: ConnectionTrait>(
        &self,
        conn: &C,
        contact: i64,
    ) -> Result<ContactValues, ApprovalError> {
        linked_values(conn, self.tenant, self.student, contact)
            .await?
            .ok_or(ApprovalError::ContactGone)
    }
}
