//! `GET /api/v1/disclosures`: the disclosure log (FERPA §99.32) — each invitation and
//! weekly digest a mail server or SMS gateway accepted: to whom, at which address, when,
//! about which students, and the exact text sent (kept for `outbox.disclosure_text_days`,
//! then only its SHA-256). Admins who may read contacts (global-admin, teams-admin).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, PageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::outbox::disclosures::{self, Disclosure, Filter};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Filters and page of the disclosure log.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DisclosureParams {
    /// Only entries about this student (SIS id).
    #[param(max_length = 255)]
    pub student_id: Option<String>,
    /// Only entries sent to this guardian.
    #[param(pattern = r"^[0-9]{1,18}$")]
    pub contact_id: Option<String>,
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// A page of the disclosure log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisclosurePage {
    /// Newest first.
    pub items: Vec<Disclosure>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

/// The disclosure log, newest first, optionally of one student or guardian.
#[utoipa::path(
    get,
    path = "/api/v1/disclosures",
    tag = "disclosures",
    params(DisclosureParams),
    responses(
        (status = 200, description = "Invitations and digests sent, newest first", body = DisclosurePage),
        (status = 400, description = "Bad query (`invalid_query`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin who may read contacts", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<DisclosureParams>,
) -> Result<Json<DisclosurePage>, ApiError> {
    policy::administer_contacts(&principal)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let contact = params
        .contact_id
        .map(|c| c.parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_query", "contactId is not a contact id"))?;
    let student = params.student_id.as_deref().map(str::trim);
    if student.is_some_and(|s| s.is_empty() || s.len() > 255) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "studentId is not a student id",
        ));
    }
    let (items, next_cursor) = disclosures::list(
        &state.db,
        principal.tenant,
        Filter { student, contact },
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(DisclosurePage { items, next_cursor }))
}
