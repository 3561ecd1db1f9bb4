//! `GET /api/v1/students/{sourceId}/contacts`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiPath;
use crate::auth::{Principal, policy};
use crate::contacts::{self, ContactItem};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// A student's contacts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactList {
    /// The student's SIS source id.
    pub student_id: String,
    /// `teacher` (active parents and guardians) or `admin` (every role and status, with
    /// provenance).
    pub view: String,
    /// The contacts.
    pub items: Vec<ContactItem>,
}

/// A student's contacts: for a teacher of one of the student's classes, the active parents
/// and guardians; for an admin, every role and status with provenance.
#[utoipa::path(
    get,
    path = "/api/v1/students/{sourceId}/contacts",
    tag = "contacts",
    params(("sourceId" = String, Path, description = "The student's SIS source id")),
    responses(
        (status = 200, description = "The contacts", body = ContactList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role never reads contacts", body = ErrorBody),
        (status = 404, description = "No such student within the caller's reach", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn student_contacts(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(student_id): ApiPath<String>,
) -> Result<Json<ContactList>, ApiError> {
    let scope = policy::student_contacts(&principal)?;
    let items = contacts::for_student(&state.db, principal.tenant, &student_id, &scope).await?;
    Ok(Json(ContactList {
        student_id,
        view: match scope.view() {
            contacts::View::Teacher => "teacher",
            contacts::View::Admin => "admin",
        }
        .into(),
        items,
    }))
}
