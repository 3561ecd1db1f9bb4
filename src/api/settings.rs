//! `GET|PATCH /api/v1/settings`: the caller's tenant settings (camelCase keys of SPEC §10).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use super::extract::ApiJson;
use crate::auth::{Principal, policy};
use crate::tenants::settings::{self, Key, Settings};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

/// The tenant's settings.
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "settings",
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The settings", body = Settings),
        (status = 403, description = "Not a tenant admin or approver", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Settings>, ApiError> {
    policy::read_settings(&principal)?;
    Ok(Json(settings::get(&state.db, principal.tenant).await?))
}

/// Changes some settings (tenant admins); audited with the values before and after.
#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    tag = "settings",
    request_body(content = SettingsPatch, description = "Keys to change, e.g. {\"updateParentInformation\": false, \"preferredInviteChannel\": \"sms\"}"),
    responses(
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 200, description = "The new settings", body = Settings),
        (status = 400, description = "Not a JSON object", body = ErrorBody),
        (status = 403, description = "Not a tenant admin", body = ErrorBody),
        (status = 422, description = "Unknown key or invalid value (`invalid_setting`, naming it and listing the valid values)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<Settings>, ApiError> {
    policy::update_settings(&principal)?;
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_setting",
            "name at least one setting to change",
        ));
    }
    let changes = body
        .iter()
        .map(|(name, value)| {
            let key = Key::parse_camel(name)?;
            Ok((key, key.parse_json(value)?))
        })
        .collect::<Result<Vec<_>, settings::SettingError>>()
        .map_err(settings::SettingsError::from)?;
    let actor = principal.actor();
    Ok(Json(
        settings::update(&state.db, principal.tenant, &changes, &actor).await?,
    ))
}

/// The body of `PATCH /api/v1/settings` in the OpenAPI document, built from the settings'
/// own key list ([`settings::patch_schema`]) so the two cannot drift.
pub struct SettingsPatch;

impl utoipa::PartialSchema for SettingsPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        serde_json::from_value(settings::patch_schema())
            .expect("the settings patch schema is a valid OpenAPI schema")
    }
}

impl utoipa::ToSchema for SettingsPatch {}
