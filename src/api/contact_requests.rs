//! Teacher contact edits and their approval (SPEC §4):
//! `POST /api/v1/students/{sourceId}/contact-requests`, `GET /api/v1/contact-requests`,
//! `GET /api/v1/contact-requests/{id}`, `POST /api/v1/contact-requests/{id}/approve` and
//! `/reject`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson, id_cursor, reason};
use crate::approvals::proposal::RequestBody;
use crate::approvals::requests::{self, ListFilter, MAX_IDEMPOTENCY_KEY, RequestItem, Status};
use crate::approvals::{OnMatch, Proposal, decide};
use crate::auth::policy::{self, RequestScope};
use crate::auth::{Principal, policy::Denied};
use crate::tenants;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

/// The header that makes a submission safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_header",
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                ),
            )
        })?;
    Ok(Some(key.to_string()))
}

/// Proposes adding, changing or removing a contact of a student in one of the teacher's
/// classes. Nothing changes until an admin approves.
#[utoipa::path(
    post,
    path = "/api/v1/students/{sourceId}/contact-requests",
    tag = "contact-requests",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry-safe key: the same key and body return the first result"),
    ),
    request_body = RequestBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 201, description = "The pending request (or the first one, for a replayed key)", body = RequestItem),
        (status = 400, description = "Malformed body or header", body = ErrorBody),
        (status = 403, description = "Not a teacher, or teacher edits are turned off (`edits_disabled`)", body = ErrorBody),
        (status = 404, description = "No such student or contact within the teacher's reach", body = ErrorBody),
        (status = 422, description = "A field is not valid (`invalid_field`, naming it), nothing would change (`no_change`), or the key was used with another body (`idempotency_key_reused`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(student_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RequestBody>,
) -> Result<(StatusCode, Json<RequestItem>), ApiError> {
    let teacher = policy::submit_contact_request(&state.db, &principal, &student_id).await?;
    let key = idempotency_key(&headers)?;
    let tenant = tenants::find(&state.db, &principal.tenant_slug)
        .await
        .map_err(ApiError::failure)?;
    let proposal = Proposal::parse(&body, tenant.region)?;
    let actor = principal.actor();
    let (item, _replayed) = requests::submit(
        &state.db,
        requests::Submission {
            tenant: principal.tenant,
            student_source_id: &student_id,
            requested_by: &teacher,
            actor: &actor,
            idempotency_key: key.as_deref(),
            proposal,
        },
    )
    .await?;
    // The author is a teacher: never another contact's stored values (the candidate match).
    Ok((StatusCode::CREATED, Json(item.without_match())))
}

/// `?status=&studentId=&limit=&cursor=` of the request list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `pending`, `approved` or `rejected` (default: all).
    pub status: Option<Status>,
    /// Only requests about this student.
    pub student_id: Option<String>,
    /// Items per page.
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// A page of requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestPage {
    /// The requests, oldest first.
    pub items: Vec<RequestItem>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// Contact requests: every request for approvers, their own for teachers, each with the
/// values at submission, the current values and the proposal, and a `stale` flag.
#[utoipa::path(
    get,
    path = "/api/v1/contact-requests",
    tag = "contact-requests",
    params(ListParams),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The requests", body = RequestPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 403, description = "The caller's role never reads requests", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<RequestPage>, ApiError> {
    let scope = policy::read_contact_requests(&principal)?;
    let page = super::extract::PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let after = id_cursor(&page)?;
    let filter = ListFilter {
        status: params.status,
        requested_by: match &scope {
            RequestScope::All => None,
            RequestScope::OwnedBy(teacher) => Some(teacher.clone()),
        },
        student_source_id: params.student_id,
        after,
        limit: page.limit,
    };
    let (items, next_cursor) = requests::list(&state.db, principal.tenant, &filter).await?;
    let items = seen(&state, &principal, &scope, items).await?;
    Ok(Json(RequestPage { items, next_cursor }))
}

/// The requests as the caller may see them: a teacher reads contact values only about the
/// students they still teach, and never a candidate match ([`policy::request_values`]).
pub async fn seen(
    state: &AppState,
    principal: &Principal,
    scope: &RequestScope,
    items: Vec<RequestItem>,
) -> Result<Vec<RequestItem>, ApiError> {
    let students: Vec<&str> = items.iter().map(|i| i.student_id.as_str()).collect();
    let values = policy::request_values(&state.db, principal, scope, &students).await?;
    Ok(items
        .into_iter()
        .map(|item| {
            let shows = values.shows_values(&item.student_id);
            item.seen(shows, values.shows_match())
        })
        .collect())
}

/// A request id from the path: not a number is simply not found.
fn request_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found("contact request"))
}

/// One request (approvers: any; teachers: their own, with contact values only while they
/// still teach the student).
#[utoipa::path(
    get,
    path = "/api/v1/contact-requests/{id}",
    tag = "contact-requests",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The request", body = RequestItem),
        (status = 404, description = "No such request within the caller's reach", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RequestItem>, ApiError> {
    let scope = policy::read_contact_requests(&principal)?;
    let item = requests::get(&state.db, principal.tenant, request_id(&id)?)
        .await?
        .filter(|item| match &scope {
            RequestScope::All => true,
            RequestScope::OwnedBy(teacher) => &item.requested_by == teacher,
        })
        .ok_or(Denied::NotFound)?;
    let item = seen(&state, &principal, &scope, vec![item])
        .await?
        .pop()
        .ok_or(Denied::NotFound)?;
    Ok(Json(item))
}

/// The body of a decision.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionBody {
    /// Optional reason, shown to the teacher.
    pub reason: Option<String>,
    /// Approve a stale request anyway (after reviewing its current values).
    #[serde(default)]
    pub confirm_stale: bool,
    /// An "add" whose email is an existing contact's (`matchedContact`): `link` that contact,
    /// or `create` a new one. Required when there is a match.
    pub on_match: Option<OnMatch>,
}

async fn decide_with(
    state: &AppState,
    principal: &Principal,
    id: &str,
    body: DecisionBody,
    approve: bool,
) -> Result<Json<RequestItem>, ApiError> {
    policy::administer_contacts(principal)?;
    let tenant = tenants::find(&state.db, &principal.tenant_slug)
        .await
        .map_err(ApiError::failure)?;
    let actor = principal.actor();
    let reason = reason(body.reason)?;
    let decision = decide::Decision {
        tenant: principal.tenant,
        region: tenant.region,
        request_id: request_id(id)?,
        actor: &actor,
        reason,
        confirm_stale: body.confirm_stale,
        approver: policy::person(principal),
        on_match: body.on_match,
    };
    let item = if approve {
        decide::approve(&state.db, decision).await?
    } else {
        decide::reject(&state.db, decision).await?
    };
    Ok(Json(item))
}

/// Approves a pending request and applies it as `approved_edit`.
#[utoipa::path(
    post,
    path = "/api/v1/contact-requests/{id}/approve",
    tag = "contact-requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = DecisionBody, description = "Optional"),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The approved request, with what was applied", body = RequestItem),
        (status = 403, description = "Not an approver, or the approver's own request (`own_request`)", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided (`already_decided`), stale without confirmStale (`stale_request`, with current and proposed values), the contact was erased (`contact_gone`), or an added email matches an existing contact and onMatch is missing (`match_to_confirm`, with the match)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> Result<Json<RequestItem>, ApiError> {
    decide_with(&state, &principal, &id, body, true).await
}

/// Rejects a pending request; nothing else changes.
#[utoipa::path(
    post,
    path = "/api/v1/contact-requests/{id}/reject",
    tag = "contact-requests",
    params(("id" = String, Path, description = "Request id")),
    request_body(content = DecisionBody, description = "Optional"),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The rejected request", body = RequestItem),
        (status = 403, description = "Not an approver, or the approver's own request (`own_request`)", body = ErrorBody),
        (status = 404, description = "No such request", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<DecisionBody>,
) -> Result<Json<RequestItem>, ApiError> {
    decide_with(&state, &principal, &id, body, false).await
}
