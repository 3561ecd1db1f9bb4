//! Pending contact requests: submitting one (idempotent under `Idempotency-Key`), and
//! reading them back with the values at submission, the current values and the proposal
//! side by side. A request is *stale* when the contact or its link changed after it was
//! made.

use super::{Action, ApprovalError, ContactValues, Proposal};
use crate::audit::{self, AuditEntry};
use crate::db;
use crate::domain::visibility::{LinkFacts, teacher_may_see};
use crate::domain::{LinkStatus, Relationship, RequestAction, TenantId};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, Value};
use serde::Serialize;

/// Longest accepted `Idempotency-Key`, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

/// Status of a request (stored as `contact_requests.status`).
pub use crate::domain::RequestStatus as Status;

/// One request as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestItem {
    /// Request id.
    pub id: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// `add`, `update` or `remove`.
    pub action: String,
    /// The student's SIS source id.
    pub student_id: String,
    /// The contact concerned (update, remove; for an approved add, the contact it made).
    pub contact_id: Option<String>,
    /// The proposed values: only the fields to change (`null` clears one).
    #[schema(value_type = Object)]
    pub proposed: serde_json::Value,
    /// The contact's values when the request was made (update, remove).
    pub submitted: Option<ContactValues>,
    /// The contact's values now (update, remove; `null` once the contact was erased).
    pub current: Option<ContactValues>,
    /// True when the contact or its link changed after the request was made.
    pub stale: bool,
    /// The teacher's SIS source id.
    pub requested_by: String,
    /// When the request was made (UTC).
    pub requested_at: DateTime<Utc>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When it was decided (UTC).
    pub decided_at: Option<DateTime<Utc>>,
    /// The decision's reason.
    pub reason: Option<String>,
    /// What an approval applied.
    #[schema(value_type = Object, nullable = true)]
    pub applied: Option<serde_json::Value>,
    /// An "add" only, for approvers: an existing contact of the tenant with the proposed
    /// email. Approving then needs a choice (`onMatch`: link it, or create a new contact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_contact: Option<MatchedContact>,
}

/// An existing contact whose email is the one an "add" proposes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchedContact {
    /// The contact's id.
    pub contact_id: String,
    /// Its stored values (no relationship: it is not linked to this student).
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email.
    pub email_address: Option<String>,
    /// E.164 mobile.
    pub mobile_phone: Option<String>,
}

impl RequestItem {
    /// The request without any contact's stored values: what a teacher reads once they no
    /// longer teach the student (the values when requested, now and as applied are
    /// dropped; the teacher's own proposal stays).
    pub fn without_contact_values(mut self) -> Self {
        self.submitted = None;
        self.current = None;
        self.stale = false;
        self.matched_contact = None;
        if let Some(applied) = &mut self.applied
            && let Some(applied) = applied.as_object_mut()
        {
            applied.remove("values");
        }
        self
    }

    /// The request as a reader sees it: with or without contact values, with or without the
    /// candidate match (the reader's rights come from `auth::policy::RequestValues`).
    pub fn seen(self, values: bool, matched: bool) -> Self {
        let item = if values {
            self
        } else {
            self.without_contact_values()
        };
        if matched { item } else { item.without_match() }
    }

    /// The request without its candidate match: the teacher's view (the match is another
    /// person's stored data, shown to approvers only).
    pub fn without_match(mut self) -> Self {
        self.matched_contact = None;
        self
    }
}

/// A submission, parsed and authorised.
pub struct Submission<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The student's SIS source id.
    pub student_source_id: &'a str,
    /// The teacher's SIS source id.
    pub requested_by: &'a str,
    /// For the audit log.
    pub actor: &'a str,
    /// `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<&'a str>,
    /// The proposal.
    pub proposal: Proposal,
}

/// The columns [`RequestRow`] reads, over `contact_requests r` with the live link `l` and
/// contact `c` left-joined.
const SELECT: &str = "SELECT r.id, r.status, r.action, r.student_source_id, r.contact_id, r.proposed, r.current, \
       r.requested_by, r.requested_at, r.decided_by, r.decided_at, r.reason, r.applied, \
       c.given_name, c.family_name, c.email, c.mobile_phone, l.relationship, l.status AS link_status, \
       c.given_name_changed_at, c.family_name_changed_at, c.email_changed_at, c.mobile_phone_changed_at, \
       l.relationship_changed_at, l.deactivated_at, l.id AS link_id, \
       m.id AS match_id, m.given_name AS match_given_name, m.family_name AS match_family_name, \
       m.email AS match_email, m.mobile_phone AS match_mobile_phone \
     FROM contact_requests r \
     LEFT JOIN student_contacts l ON l.student_id = r.student_id AND l.contact_id = r.contact_id \
     LEFT JOIN contacts c ON c.id = l.contact_id \
     LEFT JOIN contacts m ON m.id = r.match_contact_id AND m.tenant_id = r.tenant_id";

/// A contact's values with its link to the student, read by name.
#[derive(FromQueryResult)]
struct LinkedValues {
    given_name: Option<String>,
    family_name: Option<String>,
    email: Option<String>,
    mobile_phone: Option<String>,
    relationship: Option<Relationship>,
    link_status: Option<LinkStatus>,
    restriction_id: Option<i64>,
}

impl LinkedValues {
    /// Whether a teacher sees this contact (`domain::visibility`).
    fn teacher_may_see(&self) -> bool {
        teacher_may_see(LinkFacts {
            active: self.link_status == Some(LinkStatus::Active),
            relationship: self.relationship,
            restricted: self.restriction_id.is_some(),
        })
        .is_ok()
    }
}

impl From<LinkedValues> for ContactValues {
    fn from(v: LinkedValues) -> Self {
        ContactValues {
            given_name: v.given_name,
            family_name: v.family_name,
            email_address: v.email,
            mobile_phone: v.mobile_phone,
            relationship: v.relationship.map(|r| r.as_str().to_string()),
            status: v.link_status.map(|s| s.as_str().to_string()),
        }
    }
}

/// One request as [`SELECT`] reads it.
#[derive(FromQueryResult)]
struct RequestRow {
    id: i64,
    status: Status,
    action: RequestAction,
    student_source_id: String,
    contact_id: Option<i64>,
    proposed: String,
    current: Option<String>,
    requested_by: String,
    requested_at: DateTime<Utc>,
    decided_by: Option<String>,
    decided_at: Option<DateTime<Utc>>,
    reason: Option<String>,
    applied: Option<String>,
    #[sea_orm(nested)]
    values: LinkedValues,
    given_name_changed_at: Option<DateTime<Utc>>,
    family_name_changed_at: Option<DateTime<Utc>>,
    email_changed_at: Option<DateTime<Utc>>,
    mobile_phone_changed_at: Option<DateTime<Utc>>,
    relationship_changed_at: Option<DateTime<Utc>>,
    deactivated_at: Option<DateTime<Utc>>,
    link_id: Option<i64>,
    match_id: Option<i64>,
    match_given_name: Option<String>,
    match_family_name: Option<String>,
    match_email: Option<String>,
    match_mobile_phone: Option<String>,
}

fn json(text: Option<&str>) -> Option<serde_json::Value> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

fn item(row: RequestRow) -> RequestItem {
    let changes = [
        row.given_name_changed_at,
        row.family_name_changed_at,
        row.email_changed_at,
        row.mobile_phone_changed_at,
        row.relationship_changed_at,
        row.deactivated_at,
    ];
    // Only a pending request can be stale: a decision itself changes the contact.
    let stale = row.status == Status::Pending
        && changes
            .iter()
            .any(|t| t.is_some_and(|t| t > row.requested_at));
    RequestItem {
        id: row.id.to_string(),
        status: row.status.as_str().to_string(),
        action: row.action.as_str().to_string(),
        student_id: row.student_source_id,
        contact_id: row.contact_id.map(|id| id.to_string()),
        proposed: json(Some(&row.proposed)).unwrap_or(serde_json::Value::Null),
        submitted: json(row.current.as_deref()).and_then(|v| serde_json::from_value(v).ok()),
        current: row.link_id.map(|_| ContactValues::from(row.values)),
        stale,
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        decided_by: row.decided_by,
        decided_at: row.decided_at,
        reason: row.reason,
        applied: json(row.applied.as_deref()),
        // Only while pending: once decided, `applied` says what was done.
        matched_contact: row
            .match_id
            .filter(|_| row.status == Status::Pending)
            .map(|id| MatchedContact {
                contact_id: id.to_string(),
                given_name: row.match_given_name,
                family_name: row.match_family_name,
                email_address: row.match_email,
                mobile_phone: row.match_mobile_phone,
            }),
    }
}

/// One request of the tenant.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: i64,
) -> Result<Option<RequestItem>, DbErr> {
    Ok(db::rows::query_one::<RequestRow, _>(
        conn,
        &format!("{SELECT} WHERE r.tenant_id = $1 AND r.id = $2"),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
    )
    .await?
    .map(item))
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only requests by this teacher (teachers see only their own).
    pub requested_by: Option<String>,
    /// Only requests about this student.
    pub student_source_id: Option<String>,
    /// Requests with a larger id than this (the cursor).
    pub after: Option<i64>,
    /// Page size.
    pub limit: u64,
}

/// A page of requests, oldest first; `next` is the cursor of the next page.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    filter: &ListFilter,
) -> Result<(Vec<RequestItem>, Option<String>), DbErr> {
    let mut filters = db::Filters::new(
        &format!("{SELECT} WHERE r.tenant_id = $1"),
        vec![Value::BigInt(Some(tenant.0))],
    );
    if let Some(status) = filter.status {
        filters.and("r.status =", status.as_str());
    }
    if let Some(teacher) = &filter.requested_by {
        filters.and("r.requested_by =", teacher.as_str());
    }
    if let Some(student) = &filter.student_source_id {
        filters.and("r.student_source_id =", student.as_str());
    }
    if let Some(after) = filter.after {
        filters.and("r.id >", after);
    }
    let (sql, values) = filters.finish(&format!("ORDER BY r.id LIMIT {}", filter.limit + 1));
    let items = db::rows::query_as::<RequestRow, _>(conn, &sql, values)
        .await?
        .into_iter()
        .map(item)
        .collect();
    Ok(db::page(items, filter.limit, |i| i.id.clone()))
}

/// A row's id.
#[derive(FromQueryResult)]
pub(super) struct Id {
    pub(super) id: i64,
}

/// The first request stored under an `Idempotency-Key`.
#[derive(FromQueryResult)]
struct Replayed {
    id: i64,
    body_hash: Option<i64>,
}

/// The student's id in the tenant.
pub(super) async fn student_id<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    source_id: &str,
) -> Result<i64, ApprovalError> {
    db::rows::query_one::<Id, _>(
        conn,
        "SELECT id FROM students WHERE tenant_id = $1 AND source_id = $2",
        vec![Value::BigInt(Some(tenant.0)), source_id.into()],
    )
    .await?
    .map(|row| row.id)
    .ok_or(ApprovalError::NotFound("student"))
}

/// A contact found for an added one.
#[derive(FromQueryResult)]
pub(super) struct EmailMatch {
    pub(super) id: i64,
    pub(super) source_key: String,
}

/// The contact of the tenant an "add" with `email` matches: keyed by that email (SDS v1) or
/// holding it (through the (tenant, lower(email)) index).
pub(super) async fn email_match<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    email: &str,
) -> Result<Option<EmailMatch>, DbErr> {
    db::rows::query_one::<EmailMatch, _>(
        conn,
        "SELECT id, source_key FROM contacts WHERE tenant_id = $1 AND (source_key = $2 OR LOWER(email) = $2) ORDER BY id LIMIT 1",
        vec![Value::BigInt(Some(tenant.0)), email.to_lowercase().into()],
    )
    .await
}

/// A contact's stored values, as [`MatchedContact`].
pub(super) async fn contact_values<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact_id: i64,
) -> Result<Option<MatchedContact>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        id: i64,
        given_name: Option<String>,
        family_name: Option<String>,
        email: Option<String>,
        mobile_phone: Option<String>,
    }
    let row = db::rows::query_one::<Row, _>(
        conn,
        "SELECT id, given_name, family_name, email, mobile_phone FROM contacts WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact_id))],
    )
    .await?;
    Ok(row.map(|r| MatchedContact {
        contact_id: r.id.to_string(),
        given_name: r.given_name,
        family_name: r.family_name,
        email_address: r.email,
        mobile_phone: r.mobile_phone,
    }))
}

/// The current values of a contact linked to a student (any link status).
pub(super) async fn linked_values<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_id: i64,
    contact_id: i64,
) -> Result<Option<ContactValues>, DbErr> {
    Ok(linked(conn, tenant, student_id, contact_id)
        .await?
        .map(ContactValues::from))
}

/// A contact linked to a student (any link status) with its link.
async fn linked<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_id: i64,
    contact_id: i64,
) -> Result<Option<LinkedValues>, DbErr> {
    db::rows::query_one::<LinkedValues, _>(
        conn,
        "SELECT c.given_name, c.family_name, c.email, c.mobile_phone, l.relationship, l.status AS link_status, l.restriction_id \
         FROM student_contacts l JOIN contacts c ON c.id = l.contact_id \
         WHERE l.tenant_id = $1 AND l.student_id = $2 AND l.contact_id = $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(student_id)),
            Value::BigInt(Some(contact_id)),
        ],
    )
    .await
}

/// True when `proposal` would change nothing of `current`.
fn changes_nothing(proposal: &Proposal, current: &ContactValues) -> bool {
    let f = &proposal.fields;
    let same = |change: &Option<Option<String>>, now: &Option<String>| {
        change.as_ref().is_none_or(|value| value == now)
    };
    same(&f.given_name, &current.given_name)
        && same(&f.family_name, &current.family_name)
        && same(
            &f.email
                .as_ref()
                .map(|v| v.as_ref().map(|e| e.as_str().to_string())),
            &current.email_address,
        )
        && same(
            &f.mobile_phone
                .as_ref()
                .map(|v| v.as_ref().map(|p| p.as_str().to_string())),
            &current.mobile_phone,
        )
        && f.relationship
            .is_none_or(|r| Some(r.as_str()) == current.relationship.as_deref())
}

/// Hash of what a submission asks for, to tell a replay from a different body under the
/// same `Idempotency-Key`.
fn body_hash(submission: &Submission<'_>) -> i64 {
    let p = &submission.proposal;
    crate::sync::hashing::hash_values([
        Some(submission.student_source_id),
        Some(p.action.as_str()),
        p.contact_id.map(|id| id.to_string()).as_deref(),
        Some(p.fields.to_json().to_string().as_str()),
    ])
}

/// A replay of an earlier submission with the same key: its request, or an error when the
/// body differs. `None` when the key is new.
async fn replay<C: ConnectionTrait>(
    conn: &C,
    submission: &Submission<'_>,
    hash: i64,
) -> Result<Option<RequestItem>, ApprovalError> {
    let Some(key) = submission.idempotency_key else {
        return Ok(None);
    };
    let first = db::rows::query_one::<Replayed, _>(
        conn,
        "SELECT id, body_hash FROM contact_requests WHERE tenant_id = $1 AND requested_by = $2 AND idempotency_key = $3",
        vec![
            Value::BigInt(Some(submission.tenant.0)),
            submission.requested_by.into(),
            key.into(),
        ],
    )
    .await?;
    let Some(first) = first else {
        return Ok(None);
    };
    if first.body_hash != Some(hash) {
        return Err(ApprovalError::IdempotencyKeyReused);
    }
    Ok(get(conn, submission.tenant, first.id).await?)
}

/// Stores a pending request (or returns the first one for a replayed `Idempotency-Key`:
/// the flag is then true). Nothing in the contact data changes.
pub async fn submit(
    db_conn: &DatabaseConnection,
    submission: Submission<'_>,
) -> Result<(RequestItem, bool), ApprovalError> {
    let hash = body_hash(&submission);
    if let Some(first) = replay(db_conn, &submission, hash).await? {
        return Ok((first, true));
    }
    match insert(db_conn, &submission, hash).await {
        Ok(item) => Ok((item, false)),
        // A concurrent retry with the same key won the unique index: answer with its result.
        Err(ApprovalError::Db(e)) if submission.idempotency_key.is_some() => {
            match replay(db_conn, &submission, hash).await? {
                Some(first) => Ok((first, true)),
                None => Err(ApprovalError::Db(e)),
            }
        }
        Err(e) => Err(e),
    }
}

async fn insert(
    db_conn: &DatabaseConnection,
    submission: &Submission<'_>,
    hash: i64,
) -> Result<RequestItem, ApprovalError> {
    let txn = db::begin_write(db_conn).await?;
    let tenant = submission.tenant;
    let enabled = crate::tenants::settings::load(&txn, tenant)
        .await?
        .is_some_and(|s| s.update_parent_information);
    if !enabled {
        return Err(ApprovalError::EditsDisabled);
    }
    let student = student_id(&txn, tenant, submission.student_source_id).await?;
    let proposal = &submission.proposal;
    let current = match proposal.contact_id {
        None => None,
        Some(contact) => {
            // Teachers propose changes to the contacts they see: active parents/guardians
            // whose link no admin restricted.
            let values = linked(&txn, tenant, student, contact)
                .await?
                .filter(LinkedValues::teacher_may_see)
                .map(ContactValues::from)
                .ok_or(ApprovalError::NotFound("contact"))?;
            if proposal.action == Action::Update && changes_nothing(proposal, &values) {
                return Err(ApprovalError::NoChange);
            }
            Some(values)
        }
    };
    let matched = match (proposal.action, proposal.fields.email.clone().flatten()) {
        (Action::Add, Some(email)) => email_match(&txn, tenant, email.as_str())
            .await?
            .map(|found| found.id),
        _ => None,
    };
    let now = Utc::now();
    let proposed = proposal.fields.to_json();
    let current_json = current
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    let inserted = db::rows::query_one::<Id, _>(
        &txn,
        "INSERT INTO contact_requests (tenant_id, student_id, student_source_id, contact_id, action, proposed, current, \
           requested_by, requested_at, idempotency_key, body_hash, status, match_contact_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12) RETURNING id",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(student)),
            submission.student_source_id.into(),
            Value::BigInt(proposal.contact_id),
            proposal.action.as_str().into(),
            proposed.to_string().into(),
            Value::String(current_json.as_ref().map(|v| v.to_string())),
            submission.requested_by.into(),
            Value::ChronoDateTimeUtc(Some(now)),
            Value::String(submission.idempotency_key.map(str::to_string)),
            Value::BigInt(Some(hash)),
            Value::BigInt(matched),
        ],
    )
    .await?;
    let id = inserted
        .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))?
        .id;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant),
            actor: submission.actor,
            action: "contact_request.submit",
            target: Some(format!("contact_request:{id}")),
            before: current_json,
            after: Some(serde_json::json!({
                "action": proposal.action.as_str(),
                "studentId": submission.student_source_id,
                "contactId": proposal.contact_id.map(|c| c.to_string()),
                "proposed": proposed,
            })),
        },
    )
    .await?;
    let item = get(&txn, tenant, id)
        .await?
        .ok_or(ApprovalError::NotFound("contact request"))?;
    txn.commit().await?;
    Ok(item)
}
