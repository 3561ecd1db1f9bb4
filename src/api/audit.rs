//! `GET /api/v1/audit`: the tenant's audit log with filters, newest first.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, PageParams, id_cursor};
use crate::audit::{self, AuditFilter, AuditItem};
use crate::auth::{Principal, policy};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Filters of the audit log.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// An action (`contact_request.approve`), or a prefix ending in `.` (`contact_request.`).
    pub action: Option<String>,
    /// Exact actor (e.g. `api:user:admin-1@nyc`).
    pub actor: Option<String>,
    /// Exact target (e.g. `contact_request:7`).
    pub target: Option<String>,
    /// At or after this time (RFC 3339).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time (RFC 3339).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Items per page.
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

/// A page of audit entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Entries, newest first.
    pub items: Vec<AuditItem>,
    /// Cursor of the next (older) page, or null.
    pub next_cursor: Option<String>,
}

/// The tenant's audit log (approvers and tenant admins). Contact values in the entries of
/// contact requests and erasures are shown to approvers only; tenant admins see the field
/// names, each value `"changed"`.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "Audit entries", body = AuditPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 403, description = "Not an approver or tenant admin", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    policy::read_audit(&principal)?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let before_id = id_cursor(&page)?;
    let filter = AuditFilter {
        action: params.action,
        actor: params.actor,
        target: params.target,
        since: params.since,
        until: params.until,
        before_id,
        limit: page.limit,
    };
    let (items, next_cursor) = audit::list(&state.db, principal.tenant, &filter).await?;
    let items = seen(&principal, items);
    Ok(Json(AuditPage { items, next_cursor }))
}

/// The entries as the caller may read them: contact values only for those who read every
/// student's contacts ([`policy::contact_values`]); the others see field names, "changed".
pub fn seen(principal: &Principal, items: Vec<AuditItem>) -> Vec<AuditItem> {
    match policy::contact_values(principal) {
        policy::ContactValues::Shown => items,
        policy::ContactValues::Hidden => items
            .into_iter()
            .map(AuditItem::without_contact_values)
            .collect(),
    }
}
