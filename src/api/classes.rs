//! `GET /api/v1/classes` and `GET /api/v1/classes/{id}/students`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, PageParams};
use crate::auth::{Principal, policy};
use crate::roster::{self, ClassItem, StudentItem};
use axum::Json;
use axum::extract::State;
use serde::Serialize;

/// A page of classes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassPage {
    /// The classes, ordered by id.
    pub items: Vec<ClassItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a class's students.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentPage {
    /// The class's SIS source id.
    pub class_id: String,
    /// The students, ordered by id.
    pub items: Vec<StudentItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Classes: a teacher's own active classes; for admins every class with its status.
#[utoipa::path(
    get,
    path = "/api/v1/classes",
    tag = "classes",
    params(PageParams),
    responses(
        (status = 200, description = "A page of classes", body = ClassPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role never lists classes", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ClassPage>, ApiError> {
    let scope = policy::class_scope(&principal)?;
    let request = params.request(&state)?;
    let page = roster::classes(&state.db, principal.tenant, &scope, &request).await?;
    Ok(Json(ClassPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// The students of a class: for its teacher the active students; for admins every student
/// ever enrolled, with the enrollment's status.
#[utoipa::path(
    get,
    path = "/api/v1/classes/{id}/students",
    tag = "classes",
    params(("id" = String, Path, description = "The class's SIS source id"), PageParams),
    responses(
        (status = 200, description = "A page of students", body = StudentPage),
        (status = 400, description = "Bad paging parameters", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The caller's role never lists classes", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn students(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(class_id): ApiPath<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<StudentPage>, ApiError> {
    let (id, active_only) = policy::class(&state.db, &principal, &class_id).await?;
    let request = params.request(&state)?;
    let page =
        roster::class_students(&state.db, principal.tenant, id, active_only, &request).await?;
    Ok(Json(StudentPage {
        class_id,
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}
