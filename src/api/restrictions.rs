//! Per-child restrictions (issue 22, docs/restrictions.md):
//! `POST /api/v1/students/{sourceId}/contacts/{contactId}/restriction` restricts one
//! student–contact link, `DELETE` on the same path lifts it, and
//! `GET /api/v1/students/{sourceId}/restrictions` lists the student's restrictions, open and
//! ended. Approvers only (`auth::policy::administer_contacts`).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::domain::Reason;
use crate::restrictions::{self, RestrictRequest, Restriction};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The body of a restriction.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictBody {
    /// Why (custody, a court order): required (not blank), kept with the restriction and in
    /// the audit log, shown to admins only.
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub reason: String,
    /// When the restriction ends by itself (RFC 3339 with offset, in the future); absent or
    /// null for no end.
    #[schema(format = DateTime)]
    pub until: Option<String>,
}

/// A page of restrictions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestrictionList {
    /// Newest first.
    pub items: Vec<Restriction>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

fn contact_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found("contact"))
}

/// `until` as a UTC time, or a 422 naming the field.
pub fn parse_until(raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::invalid_field(
                    "until",
                    "must be an RFC 3339 time with offset, e.g. 2027-06-30T00:00:00-04:00".into(),
                )
            })
    })
    .transpose()
}

/// Restricts one student–contact link: teachers no longer see the contact about this
/// student, it gets no invitation and no digest section for the child, cannot be added to a
/// chat, and chats about the child show their owner a banner. Syncs never lift it. A link
/// already restricted has its restriction replaced.
#[utoipa::path(
    post,
    path = "/api/v1/students/{sourceId}/contacts/{contactId}/restriction",
    tag = "restrictions",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        ("contactId" = String, Path, description = "The contact's id"),
    ),
    request_body = RestrictBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 201, description = "The restriction now in force", body = Restriction),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student, or the contact is not linked to it", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No reason, or `until` not a future RFC 3339 time (`invalid_field`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn restrict(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((student_id, contact)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RestrictBody>,
) -> Result<(StatusCode, Json<Restriction>), ApiError> {
    policy::administer_contacts(&principal)?;
    let contact = contact_id(&contact)?;
    let reason = Reason::parse(&body.reason)
        .map_err(|e| ApiError::invalid_field("reason", e.to_string()))?;
    let until = parse_until(body.until.as_deref())?;
    let actor = principal.actor();
    let restriction = restrictions::restrict(
        &state.db,
        RestrictRequest {
            tenant: principal.tenant,
            student_source_id: &student_id,
            contact_id: contact,
            actor: &actor,
            reason,
            until,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(restriction)))
}

/// Lifts the restriction of one student–contact link: the contact is seen about this
/// student again when the link is otherwise visible.
#[utoipa::path(
    delete,
    path = "/api/v1/students/{sourceId}/contacts/{contactId}/restriction",
    tag = "restrictions",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        ("contactId" = String, Path, description = "The contact's id"),
    ),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The lifted restriction", body = Restriction),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student, contact linked to it, or restriction in force", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn lift(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((student_id, contact)): ApiPath<(String, String)>,
) -> Result<Json<Restriction>, ApiError> {
    policy::administer_contacts(&principal)?;
    let contact = contact_id(&contact)?;
    let actor = principal.actor();
    let lifted =
        restrictions::lift(&state.db, principal.tenant, &student_id, contact, &actor).await?;
    Ok(Json(lifted))
}

/// `?limit=&cursor=` of a student's restrictions.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RestrictionParams {
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// The student's restrictions, in force and ended, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/students/{sourceId}/restrictions",
    tag = "restrictions",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        RestrictionParams,
    ),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "Restrictions, newest first", body = RestrictionList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(student_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<RestrictionParams>,
) -> Result<Json<RestrictionList>, ApiError> {
    policy::administer_contacts(&principal)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let (items, next_cursor) = restrictions::history(
        &state.db,
        principal.tenant,
        &student_id,
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(RestrictionList { items, next_cursor }))
}
