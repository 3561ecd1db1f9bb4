//! `GET /api/v1/students/{sourceId}/contacts` and
//! `PATCH /api/v1/students/{sourceId}/contacts/{contactId}` (a guardian's language and time
//! zone, set by an approver).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use crate::auth::{Principal, policy};
use crate::contacts::preferences::{self, Preferences};
use crate::contacts::{self, ContactItem};
use crate::domain::{LanguageTag, TimeZoneName};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

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

/// The body of a contact's `PATCH`: the fields to change (at least one); `null` clears one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactPatch {
    /// The language the guardian reads: a BCP 47 tag (`es`, `pt-BR`, `zh-Hant`: language,
    /// optional script, region and variants), or null.
    #[serde(default, deserialize_with = "present")]
    #[schema(
        value_type = Option<String>,
        nullable,
        max_length = 35,
        pattern = r"^([A-Za-z]{2,3}|[A-Za-z]{5,8})([-_][A-Za-z]{4})?([-_]([A-Za-z]{2}|[0-9]{3}))?([-_]([A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*$"
    )]
    pub preferred_language: Option<Option<String>>,
    /// The guardian's IANA Area/Location time zone (`America/Chicago`), or null for the
    /// tenant's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub time_zone: Option<Option<String>>,
}

/// A field that is present, null or not: `Some(None)` for null.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl ContactPatch {
    /// The parsed changes, or a 422 naming the field.
    fn parse(self) -> Result<Preferences, ApiError> {
        if self.preferred_language.is_none() && self.time_zone.is_none() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give preferredLanguage or timeZone",
            ));
        }
        let preferred_language = self
            .preferred_language
            .map(|l| {
                l.map(|raw| LanguageTag::parse(&raw))
                    .transpose()
                    .map_err(|e| ApiError::invalid_field("preferredLanguage", e.0))
            })
            .transpose()?;
        let time_zone = self
            .time_zone
            .map(|z| {
                z.map(|raw| TimeZoneName::parse(&raw))
                    .transpose()
                    .map_err(|e| ApiError::invalid_field("timeZone", e.0))
            })
            .transpose()?;
        Ok(Preferences {
            preferred_language,
            time_zone,
        })
    }
}

/// Sets a guardian's preferred language and time zone (approvers; audited as
/// `contact.preferences`): invitations, digests and the guardian's pages are in that language
/// when a translation exists, and quiet hours are read in that time zone.
#[utoipa::path(
    patch,
    path = "/api/v1/students/{sourceId}/contacts/{contactId}",
    tag = "contacts",
    params(
        ("sourceId" = String, Path, description = "The student's SIS source id"),
        ("contactId" = String, Path, description = "The contact's id"),
    ),
    request_body = ContactPatch,
    responses(
        (status = 200, description = "The contact (admin view)", body = ContactItem),
        (status = 400, description = "Malformed body, or no field to change", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Not an approver", body = ErrorBody),
        (status = 404, description = "No such student, or the contact is not linked to it", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not a BCP 47 tag or an IANA time zone (`invalid_field`)", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((student_id, contact)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ContactPatch>,
) -> Result<Json<ContactItem>, ApiError> {
    policy::administer_contacts(&principal)?;
    let contact = contact
        .parse::<i64>()
        .map_err(|_| ApiError::not_found("contact"))?;
    let changes = body.parse()?;
    let actor = principal.actor();
    let item = preferences::set(
        &state.db,
        principal.tenant,
        (&student_id, contact),
        &changes,
        &actor,
    )
    .await?;
    Ok(Json(item))
}
