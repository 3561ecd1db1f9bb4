//! `GET /api/v1/digest/deliveries`: the digest disclosure log — which guardian received a
//! digest about which students, for which week, and its delivery status (admins).
//! `GET|POST /api/v1/digest/unsubscribes`, `DELETE /api/v1/digest/unsubscribes/{contactId}`:
//! guardians unsubscribed from the digest, listed, added and lifted by admins.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::digest::deliver::{self, Delivery};
use crate::digest::unsubscribe::{self, Source, Unsubscribe};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Filters of the disclosure log.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only this week (`YYYY-Www`).
    pub week: Option<String>,
    /// Only this guardian.
    #[param(pattern = r"^[0-9]{1,18}$")]
    pub contact_id: Option<String>,
    /// Items per page.
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// A page of the disclosure log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    /// Newest first.
    pub items: Vec<Delivery>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

/// The digest disclosure log (global-admin, teams-admin, tenant-admin).
#[utoipa::path(
    get,
    path = "/api/v1/digest/deliveries",
    tag = "digest",
    params(DeliveryParams),
    responses(
        (status = 200, description = "Digests queued, newest first", body = DeliveryPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    policy::read_audit(&principal)?;
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
    let (items, next_cursor) = deliver::list(
        &state.db,
        principal.tenant,
        (params.week.as_deref(), contact),
        id_cursor(&page)?,
        page.limit,
    )
    .await?;
    Ok(Json(DeliveryPage { items, next_cursor }))
}

/// Paging of the unsubscribed guardians.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// Items per page.
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of unsubscribed guardians.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribePage {
    /// In contact order.
    pub items: Vec<Unsubscribe>,
    /// Cursor of the next page, or null.
    pub next_cursor: Option<String>,
}

/// Body of an admin unsubscribe.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnsubscribeBody {
    /// The guardian.
    pub contact_id: String,
}

fn contact_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::not_found("contact"))
}

/// Guardians unsubscribed from the weekly digest (global-admin, teams-admin, tenant-admin).
#[utoipa::path(
    get,
    path = "/api/v1/digest/unsubscribes",
    tag = "digest",
    params(UnsubscribeParams),
    responses(
        (status = 200, description = "Unsubscribed guardians", body = UnsubscribePage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn unsubscribes(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<UnsubscribeParams>,
) -> Result<Json<UnsubscribePage>, ApiError> {
    policy::digest_unsubscribes(&principal)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let (items, next_cursor) =
        unsubscribe::list(&state.db, principal.tenant, id_cursor(&page)?, page.limit).await?;
    Ok(Json(UnsubscribePage { items, next_cursor }))
}

/// Unsubscribes a guardian from the digest on their behalf (admins; audited; idempotent).
#[utoipa::path(
    post,
    path = "/api/v1/digest/unsubscribes",
    tag = "digest",
    request_body = UnsubscribeBody,
    responses(
        (status = 204, description = "Unsubscribed (or already)"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_unsubscribe(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<UnsubscribeBody>,
) -> Result<StatusCode, ApiError> {
    policy::digest_unsubscribes(&principal)?;
    let actor = principal.actor();
    match unsubscribe::unsubscribe(
        &state.db,
        principal.tenant,
        contact_id(&body.contact_id)?,
        Source::Admin,
        &actor,
    )
    .await?
    {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(ApiError::not_found("contact")),
    }
}

/// Lifts a guardian's unsubscribe: later digests include them again (admins; audited).
#[utoipa::path(
    delete,
    path = "/api/v1/digest/unsubscribes/{contactId}",
    tag = "digest",
    params(("contactId" = String, Path, description = "Contact id")),
    responses(
        (status = 204, description = "Lifted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "The guardian is not unsubscribed", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn lift_unsubscribe(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(contact): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    policy::digest_unsubscribes(&principal)?;
    let actor = principal.actor();
    if unsubscribe::resubscribe(&state.db, principal.tenant, contact_id(&contact)?, &actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("digest unsubscribe"))
    }
}
