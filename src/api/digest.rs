//! `GET /api/v1/digest/deliveries`: the digest disclosure log — which guardian received a
//! digest about which students, for which week, and its delivery status (admins).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, PageParams, id_cursor};
use crate::auth::{Principal, policy};
use crate::digest::deliver::{self, Delivery};
use axum::Json;
use axum::extract::State;
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
