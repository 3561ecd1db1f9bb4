//! A class's assignments and its digest switch (SPEC §6, §10):
//! `POST|GET /api/v1/classes/{classSourceId}/assignments`,
//! `PUT|DELETE /api/v1/classes/{classSourceId}/assignments/{externalId}` and
//! `GET|PATCH /api/v1/classes/{classSourceId}/digest`.

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, PageParams};
use crate::assignments::store::{self, ListFilter};
use crate::assignments::{AssignmentItem, FieldError, NewAssignment, Upserted, fields};
use crate::auth::{Principal, policy};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of a create or replace. Fields are read loosely and checked one by one, so a
/// wrong type is a `422 invalid_field` naming the field, like a wrong value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentBody {
    /// The caller's id, 1–200 characters, unique per class (the upsert key). On `PUT` it
    /// may be left out; when given it must equal the path's.
    #[schema(value_type = Option<String>)]
    pub external_id: Option<Value>,
    /// 1–300 characters, one line.
    #[schema(value_type = String)]
    pub title: Option<Value>,
    /// RFC 3339 date-time with an offset, e.g. `2026-11-20T23:59:00-05:00`.
    #[schema(value_type = String)]
    pub due_at: Option<Value>,
    /// A number ≥ 0, or null.
    #[schema(value_type = Option<f64>)]
    pub points: Option<Value>,
    /// Up to 2,000 characters, or null.
    #[schema(value_type = Option<String>)]
    pub instructions: Option<Value>,
}

impl AssignmentBody {
    /// Checks every field; `path_id` is the external id of a `PUT` path.
    fn parse(&self, path_id: Option<&str>) -> Result<NewAssignment, FieldError> {
        let given = fields::json_text("externalId", self.external_id.as_ref())?;
        let external_id = match path_id {
            Some(path) if !given.is_empty() && given.trim() != path => {
                return Err(FieldError {
                    field: "externalId",
                    message: format!("'{given}' differs from the path's '{path}'"),
                });
            }
            Some(path) => fields::external_id(path)?,
            None => fields::external_id(given)?,
        };
        Ok(NewAssignment {
            external_id,
            title: fields::title(fields::json_text("title", self.title.as_ref())?)?,
            due_at: fields::due_at(fields::json_text("dueAt", self.due_at.as_ref())?)?,
            points: fields::points_json(self.points.as_ref())?,
            instructions: fields::instructions(fields::json_text(
                "instructions",
                self.instructions.as_ref(),
            )?)?,
        })
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            e.to_string(),
        )
        .with_details(serde_json::json!({"field": e.field, "message": e.message}))
    }
}

async fn upsert(
    state: &AppState,
    principal: &Principal,
    class: &str,
    body: &AssignmentBody,
    path_id: Option<&str>,
) -> Result<(StatusCode, Json<AssignmentItem>), ApiError> {
    let class_id = policy::write_assignments(&state.db, principal, class).await?;
    let assignment = body.parse(path_id)?;
    let done = store::upsert(
        &state.db,
        principal.tenant,
        class_id,
        &assignment,
        &principal.actor(),
    )
    .await?;
    let item = store::get(
        &state.db,
        principal.tenant,
        class_id,
        class,
        &assignment.external_id,
    )
    .await?
    .ok_or_else(|| ApiError::internal("an upserted assignment is missing"))?;
    let status = if done == Upserted::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(item)))
}

/// Creates an assignment, or updates the one with the same `externalId` in the class.
#[utoipa::path(
    post,
    path = "/api/v1/classes/{classSourceId}/assignments",
    tag = "assignments",
    params(("classSourceId" = String, Path, description = "The class's SIS source id")),
    request_body = AssignmentBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 201, description = "Created", body = AssignmentItem),
        (status = 200, description = "Updated (or already as given)", body = AssignmentItem),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 403, description = "Not the class owner nor an app with EduAssignments.ReadWrite.All", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
        (status = 422, description = "A field is not valid (`invalid_field`, `details.field` names it)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(class): ApiPath<String>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<(StatusCode, Json<AssignmentItem>), ApiError> {
    upsert(&state, &principal, &class, &body, None).await
}

/// Creates or replaces the assignment `externalId` of the class.
#[utoipa::path(
    put,
    path = "/api/v1/classes/{classSourceId}/assignments/{externalId}",
    tag = "assignments",
    params(
        ("classSourceId" = String, Path, description = "The class's SIS source id"),
        ("externalId" = String, Path, description = "The assignment's external id"),
    ),
    request_body = AssignmentBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 201, description = "Created", body = AssignmentItem),
        (status = 200, description = "Replaced (or already as given)", body = AssignmentItem),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 403, description = "Not the class owner nor an app with EduAssignments.ReadWrite.All", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
        (status = 422, description = "A field is not valid (`invalid_field`)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn replace(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((class, external_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> Result<(StatusCode, Json<AssignmentItem>), ApiError> {
    upsert(&state, &principal, &class, &body, Some(&external_id)).await
}

/// Deletes the assignment `externalId` of the class (the row is removed).
#[utoipa::path(
    delete,
    path = "/api/v1/classes/{classSourceId}/assignments/{externalId}",
    tag = "assignments",
    params(
        ("classSourceId" = String, Path, description = "The class's SIS source id"),
        ("externalId" = String, Path, description = "The assignment's external id"),
    ),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the class owner nor an app with EduAssignments.ReadWrite.All", body = ErrorBody),
        (status = 404, description = "No such class or assignment within the caller's reach", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((class, external_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let class_id = policy::write_assignments(&state.db, &principal, &class).await?;
    if store::delete(&state.db, principal.tenant, class_id, &external_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("assignment"))
    }
}

/// `?from=&to=&limit=&cursor=` of the assignment list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Due at or after (RFC 3339 with an offset).
    pub from: Option<String>,
    /// Due before (RFC 3339 with an offset).
    pub to: Option<String>,
    /// Items per page.
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of assignments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentPage {
    /// The class's SIS source id.
    pub class_id: String,
    /// The assignments by due time.
    pub items: Vec<AssignmentItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn instant(
    name: &'static str,
    raw: Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    raw.filter(|r| !r.trim().is_empty())
        .map(|r| {
            fields::due_at(&r)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::bad_request("invalid_query", format!("{name}: {}", e.message))
                })
        })
        .transpose()
}

/// A class's assignments by due time, optionally only those due in `[from, to)`.
#[utoipa::path(
    get,
    path = "/api/v1/classes/{classSourceId}/assignments",
    tag = "assignments",
    params(("classSourceId" = String, Path, description = "The class's SIS source id"), ListParams),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "A page of assignments", body = AssignmentPage),
        (status = 400, description = "Bad query (`invalid_query`)", body = ErrorBody),
        (status = 403, description = "The caller's role never reads assignments", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(class): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<AssignmentPage>, ApiError> {
    let class_id = policy::read_assignments(&state.db, &principal, &class).await?;
    let page = PageParams {
        limit: params.limit,
        cursor: params.cursor,
    }
    .request(&state)?;
    let after = page
        .after
        .as_deref()
        .map(|c| {
            store::parse_cursor(c)
                .ok_or_else(|| ApiError::bad_request("invalid_query", "cursor is not valid"))
        })
        .transpose()?;
    let filter = ListFilter {
        from: instant("from", params.from)?,
        to: instant("to", params.to)?,
        after,
        limit: page.limit,
    };
    let (items, next_cursor) =
        store::list(&state.db, principal.tenant, class_id, &class, &filter).await?;
    Ok(Json(AssignmentPage {
        class_id: class,
        items,
        next_cursor,
    }))
}

/// A class's digest switch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassDigest {
    /// The class's SIS source id.
    pub class_id: String,
    /// Whether the weekly digest lists this class's assignments (default true).
    pub notify_guardians: bool,
}

/// The body of `PATCH …/digest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClassDigestBody {
    /// False: leave this class out of the guardians' weekly digest.
    pub notify_guardians: bool,
}

/// Whether the class's assignments go into the guardians' weekly digest.
#[utoipa::path(
    get,
    path = "/api/v1/classes/{classSourceId}/digest",
    tag = "assignments",
    params(("classSourceId" = String, Path, description = "The class's SIS source id")),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The switch", body = ClassDigest),
        (status = 403, description = "Neither the class owner nor an admin", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_digest(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(class): ApiPath<String>,
) -> Result<Json<ClassDigest>, ApiError> {
    let class_id = policy::class_digest(&state.db, &principal, &class, false).await?;
    let notify_guardians = store::notify_guardians(&state.db, principal.tenant, class_id).await?;
    Ok(Json(ClassDigest {
        class_id: class,
        notify_guardians,
    }))
}

/// The class owner opts the class out of (or back into) the weekly digest; audited
/// (`class.digest_update`).
#[utoipa::path(
    patch,
    path = "/api/v1/classes/{classSourceId}/digest",
    tag = "assignments",
    params(("classSourceId" = String, Path, description = "The class's SIS source id")),
    request_body = ClassDigestBody,
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The new switch", body = ClassDigest),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 403, description = "Not the class owner", body = ErrorBody),
        (status = 404, description = "No such class within the caller's reach", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn set_digest(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(class): ApiPath<String>,
    ApiJson(body): ApiJson<ClassDigestBody>,
) -> Result<Json<ClassDigest>, ApiError> {
    let class_id = policy::class_digest(&state.db, &principal, &class, true).await?;
    store::set_notify_guardians(
        &state.db,
        principal.tenant,
        class_id,
        &class,
        body.notify_guardians,
        &principal.actor(),
    )
    .await?;
    Ok(Json(ClassDigest {
        class_id: class,
        notify_guardians: body.notify_guardians,
    }))
}
