//! Admin erasure of contacts (SPEC §3.3):
//! `POST /api/v1/students/{sourceId}/contacts/{contactId}/erase` (one contact),
//! `POST /api/v1/students/{sourceId}/contacts/erase` (every contact of the student),
//! `GET /api/v1/erasures` and `POST /api/v1/erasures/{id}/lift`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, OptionalJson, PageParams, id_cursor, reason};
use crate::approvals::erase::{self, EraseRequest, Erasure, ErasureFilter};
use crate::auth::{Principal, policy};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// The body of an erase.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// Why (kept with the erasure and in the audit log).
    pub reason: Option<String>,
}

/// What an erase did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Erased {
    /// One erasure per erased student–contact pair.
    pub erased: Vec<Erasure>,
}

/// A page of erasures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErasureList {
    /// Newest first.
    pub items: Vec<Erasure>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

async fn run(
    state: &AppState,
    principal: &Principal,
    student_id: &str,
    contact_id: Option<i64>,
    body: EraseBody,
) -> Result<Json<Erased>, ApiError> {
    policy::administer_contacts(principal)?;
    let actor = principal.actor();
    let erased = erase::erase(
        &state.db,
        EraseRequest {
            tenant: principal.tenant,
            student_source_id: student_id,
            contact_id,
            actor: &actor,
            reason: reason(body.reason)?,
            privacy: &state.privacy,
        },
    )
    .await?;
    Ok(Json(Erased { erased }))
}

/// Erases one contact from a student: the link is deleted, and the contact with all its
/// data once no other student links it. A sync still carrying the pair does not bring it
/// back until the erasure is lifted.
#[utoipa::path(
    post,
    path = "/api/v1/students/{sourceId}/contacts/{contactId}/erase",
    tag = "erasures",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        ("contactId" = String, Path, description = "The contact's id"),
    ),
    request_body(content = EraseBody, description = "Optional"),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "What was erased", body = Erased),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student, or the contact is not linked to it", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn erase_one(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((student_id, contact_id)): ApiPath<(String, String)>,
    OptionalJson(body): OptionalJson<EraseBody>,
) -> Result<Json<Erased>, ApiError> {
    let contact = contact_id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("contact"))?;
    run(&state, &principal, &student_id, Some(contact), body).await
}

/// Erases every contact of a student (as [`erase_one`] does for one).
#[utoipa::path(
    post,
    path = "/api/v1/students/{sourceId}/contacts/erase",
    tag = "erasures",
    params(("sourceId" = String, Path, description = "The student's SIS source id")),
    request_body(content = EraseBody, description = "Optional"),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "What was erased (empty when the student had no contact)", body = Erased),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn erase_all(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(student_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<EraseBody>,
) -> Result<Json<Erased>, ApiError> {
    run(&state, &principal, &student_id, None, body).await
}

/// `?studentId=&active=&limit=&cursor=` of the erasure list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ErasureParams {
    /// Only this student's erasures.
    pub student_id: Option<String>,
    /// `true`: only erasures not lifted.
    pub active: Option<bool>,
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// The tenant's erasures.
#[utoipa::path(
    get,
    path = "/api/v1/erasures",
    tag = "erasures",
    params(ErasureParams),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "Erasures, newest first", body = ErasureList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 403, description = "Not an approver", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ErasureParams>,
) -> Result<Json<ErasureList>, ApiError> {
    policy::administer_contacts(&principal)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let filter = ErasureFilter {
        student_source_id: params.student_id.as_deref(),
        active_only: params.active.unwrap_or(false),
    };
    let (items, next_cursor) = erase::list(
        &state.db,
        principal.tenant,
        filter,
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(ErasureList { items, next_cursor }))
}

/// Lifts an erasure: the next sync that carries the pair re-creates it.
#[utoipa::path(
    post,
    path = "/api/v1/erasures/{id}/lift",
    tag = "erasures",
    params(("id" = String, Path, description = "Erasure id")),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The lifted erasure", body = Erasure),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such erasure", body = ErrorBody),
        (status = 409, description = "Already lifted (`already_lifted`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn lift(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Erasure>, ApiError> {
    policy::administer_contacts(&principal)?;
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("erasure"))?;
    let actor = principal.actor();
    Ok(Json(
        erase::lift(&state.db, principal.tenant, id, &actor).await?,
    ))
}
