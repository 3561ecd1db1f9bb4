//! `GET /education/users/{sourceId}?$select=relatedContacts`: a student's related contacts
//! in the shape of Microsoft Graph's `educationUser`, for app-only tokens with
//! `EduRoster.Read.All`. Active links of every relationship, except those an admin
//! restricted (docs/restrictions.md).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use crate::auth::{Principal, policy};
use crate::contacts::{self, display_name};
use crate::roster;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

/// Properties `$select` may name.
const PROPERTIES: [&str; 5] = [
    "id",
    "displayName",
    "givenName",
    "surname",
    "relatedContacts",
];
/// Properties returned without `$select` (as Graph does, `relatedContacts` only on request).
const DEFAULT: [&str; 4] = ["id", "displayName", "givenName", "surname"];

/// The query string.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// Comma-separated properties: id, displayName, givenName, surname, relatedContacts.
    #[serde(rename = "$select")]
    #[param(
        rename = "$select",
        pattern = r"^ *(id|displayName|givenName|surname|relatedContacts) *(, *(id|displayName|givenName|surname|relatedContacts) *)*$"
    )]
    pub select: Option<String>,
}

/// Graph `relatedContact`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedContact {
    /// Contact id.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Email address.
    pub email_address: Option<String>,
    /// E.164 mobile phone.
    pub mobile_phone: Option<String>,
    /// Graph `contactRelationship`: parent, relative, aide, doctor, guardian, child, other.
    pub relationship: String,
    /// Whether the contact has consented to access the student's data. Not tracked by this
    /// service yet: always false.
    pub access_consent: bool,
}

/// Graph `educationUser` with the selected properties.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EducationUser {
    /// OData context.
    #[serde(rename = "@odata.context")]
    pub odata_context: String,
    /// The student's SIS source id.
    pub id: String,
    /// Name to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<Option<String>>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub surname: Option<Option<String>>,
    /// The active related contacts, every relationship.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_contacts: Option<Vec<RelatedContact>>,
}

/// Maps a stored relationship to Graph's `contactRelationship` (SDS v1 `administrator` and
/// anything unknown become `other`).
fn graph_relationship(stored: &str) -> String {
    match stored {
        "parent" | "relative" | "aide" | "doctor" | "guardian" | "child" | "other" => {
            stored.to_string()
        }
        _ => "other".to_string(),
    }
}

/// A student as a Graph `educationUser`; `$select=relatedContacts` lists the student's
/// active related contacts of every relationship.
#[utoipa::path(
    get,
    path = "/education/users/{sourceId}",
    tag = "graph",
    params(("sourceId" = String, Path, description = "The student's SIS source id"), GraphQuery),
    responses(
        (status = 200, description = "The student", body = EducationUser),
        (status = 400, description = "Unknown property in $select", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an app-only token with EduRoster.Read.All", body = ErrorBody),
        (status = 404, description = "No such student in the tenant", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(student_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<GraphQuery>,
) -> Result<Json<EducationUser>, ApiError> {
    policy::graph_read(&principal)?;
    let selected: Vec<String> = match query.select.as_deref() {
        None => DEFAULT.iter().map(|s| s.to_string()).collect(),
        Some(raw) => raw
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    };
    if let Some(unknown) = selected.iter().find(|p| !PROPERTIES.contains(&p.as_str())) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "$select: unknown property '{unknown}' (use {})",
                PROPERTIES.join(", ")
            ),
        ));
    }
    let wants = |p: &str| selected.iter().any(|s| s == p);
    let Some((given, family)) =
        roster::find_student(&state.db, principal.tenant, &student_id).await?
    else {
        return Err(ApiError::not_found("user"));
    };
    let related_contacts = if wants("relatedContacts") {
        let items = contacts::for_student(
            &state.db,
            principal.tenant,
            &student_id,
            &contacts::Scope::Admin,
        )
        .await?;
        Some(
            items
                .into_iter()
                // A restricted link (custody, a court order) is left out: integrations
                // show these contacts to teachers.
                .filter(|c| c.status == "active" && c.restriction.is_none())
                .map(|c| RelatedContact {
                    id: c.id,
                    display_name: c.display_name,
                    email_address: c.email_address,
                    mobile_phone: c.mobile_phone,
                    relationship: graph_relationship(&c.relationship),
                    access_consent: false,
                })
                .collect(),
        )
    } else {
        None
    };
    let context = if query.select.is_some() {
        format!("$metadata#education/users({})/$entity", selected.join(","))
    } else {
        "$metadata#education/users/$entity".to_string()
    };
    Ok(Json(EducationUser {
        odata_context: context,
        display_name: wants("displayName").then(|| {
            let name = display_name(given.as_deref(), family.as_deref(), None, None);
            if name == "(no name)" {
                student_id.clone()
            } else {
                name
            }
        }),
        given_name: wants("givenName").then(|| given.clone()),
        surname: wants("surname").then(|| family.clone()),
        id: student_id,
        related_contacts,
    }))
}
