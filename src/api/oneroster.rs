//! `POST /api/v1/oneroster/runs` (run a OneRoster sync now, with the rules and report of
//! `parent-connection sync oneroster`) and `GET|PUT /api/v1/oneroster/connection` (the
//! tenant's connection; the client secret is accepted, stored encrypted, never returned).

use super::AppState;
use super::error::{ApiError, ErrorBody};
use crate::auth::{Principal, policy};
use crate::sync::oneroster::connection::{
    self, ConnectionError, ConnectionView, NewConnection, Secret,
};
use crate::sync::oneroster::{self, OneRosterError, SyncRequest};
use crate::sync::report::RunStatus;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Options of a run (the body may be empty).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunOptions {
    /// Only records changed since the last applied run.
    #[serde(default)]
    pub delta: bool,
    /// Apply even past the deletion guard.
    #[serde(default)]
    pub force: bool,
}

/// The connection to store (`clientSecret` is write-only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionInput {
    /// Base URL of the provider's API (`…/ims/oneroster/v1p1`): http or https.
    #[schema(
        pattern = r"^https?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[1-9][0-9]{0,3})?(/[^\s?#\u0000]*)?(\?[^\s#\u0000]*)?(#[^\s\u0000]*)?$"
    )]
    pub base_url: String,
    /// OAuth2 token endpoint: http or https.
    #[schema(
        pattern = r"^https?://[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)*(:[1-9][0-9]{0,3})?(/[^\s?#\u0000]*)?(\?[^\s#\u0000]*)?(#[^\s\u0000]*)?$"
    )]
    pub token_url: String,
    /// OAuth2 client id (not blank).
    #[schema(pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub client_id: String,
    /// OAuth2 client secret (stored encrypted, never returned).
    #[schema(min_length = 1)]
    pub client_secret: String,
    /// Rows asked per page (default `oneroster.default_page_size`, at most
    /// `oneroster.max_page_size`).
    #[schema(minimum = 1)]
    pub page_size: Option<u64>,
}

impl std::fmt::Debug for ConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionInput")
            .field("base_url", &self.base_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("page_size", &self.page_size)
            .finish()
    }
}

fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(body)
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    super::extract::json_from_bytes(body)
}

impl From<ConnectionError> for ApiError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::Key(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_configured", why)
            }
            ConnectionError::Undecryptable => {
                ApiError::new(StatusCode::CONFLICT, "secret_undecryptable", e.to_string())
            }
            ConnectionError::Invalid(why) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", why)
            }
            ConnectionError::Db(e) => e.into(),
        }
    }
}

impl From<OneRosterError> for ApiError {
    fn from(e: OneRosterError) -> Self {
        match e {
            OneRosterError::Tenant(_) => ApiError::not_found("tenant"),
            OneRosterError::NotConnected(_) => {
                ApiError::new(StatusCode::CONFLICT, "not_connected", e.to_string())
            }
            OneRosterError::NoWatermark(_) => {
                ApiError::new(StatusCode::CONFLICT, "no_watermark", e.to_string())
            }
            OneRosterError::Connection(e) => e.into(),
            OneRosterError::Sync(e) => ApiError::failure(e),
        }
    }
}

/// Runs a OneRoster sync of the caller's tenant now and returns its report. 201: applied;
/// 422 `import_refused` (errors in the data or the deletion guard) and 502
/// `provider_failed` (unreachable, HTTP errors, malformed JSON): nothing changed, the
/// report is in `details`.
#[utoipa::path(
    post,
    path = "/api/v1/oneroster/runs",
    tag = "oneroster",
    request_body(content = RunOptions, description = "Optional; empty means a full run"),
    responses(
        (status = 201, description = "Applied; the report (Location: the run)", body = Object),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin or teams-admin", body = ErrorBody),
        (status = 409, description = "No connection, or a delta without an earlier applied run", body = ErrorBody),
        (status = 422, description = "Refused; the report is in details", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 502, description = "The provider failed; the report is in details", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn run(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    policy::run_oneroster(&principal)?;
    let options: RunOptions = json_body(&body)?;
    let request = SyncRequest {
        tenant: principal.tenant_slug.clone(),
        delta: options.delta,
        force: options.force,
        actor: principal.actor(),
    };
    // The run goes on to its end even if the client goes away.
    let (db, config) = (state.jobs.clone(), state.config.clone());
    let report = tokio::spawn(async move { oneroster::sync(&db, &config, &request).await })
        .await
        .map_err(|e| ApiError::internal(format!("OneRoster task: {e}")))??;
    let body = serde_json::to_value(&report).map_err(ApiError::internal)?;
    let first = report
        .errors
        .first()
        .map(|e| e.to_string())
        .unwrap_or_default();
    match report.status {
        RunStatus::Applied | RunStatus::DryRun => {
            let mut response = (StatusCode::CREATED, Json(body)).into_response();
            if let Some(id) = report.run_id
                && let Ok(location) = HeaderValue::from_str(&format!("/api/v1/imports/{id}"))
            {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        }
        RunStatus::Refused => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "import_refused",
            format!(
                "the OneRoster run was refused and nothing changed ({} error(s)); first: {first}",
                report.errors.len()
            ),
        )
        .with_details(body)),
        RunStatus::Failed => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_failed",
            format!("the OneRoster provider failed and nothing changed: {first}"),
        )
        .with_details(body)),
    }
}

/// The tenant's OneRoster connection (never the secret).
#[utoipa::path(
    get,
    path = "/api/v1/oneroster/connection",
    tag = "oneroster",
    responses(
        (status = 200, description = "The connection", body = ConnectionView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin or teams-admin", body = ErrorBody),
        (status = 404, description = "No connection", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_connection(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ConnectionView>, ApiError> {
    policy::run_oneroster(&principal)?;
    connection::view(&state.db, principal.tenant)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("OneRoster connection"))
}

/// Stores (or replaces) the tenant's OneRoster connection; returns it without the secret.
#[utoipa::path(
    put,
    path = "/api/v1/oneroster/connection",
    tag = "oneroster",
    request_body = ConnectionInput,
    responses(
        (status = 200, description = "Stored", body = ConnectionView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Needs global-admin or teams-admin", body = ErrorBody),
        (status = 422, description = "A value is not acceptable", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "No oneroster.secret_key is configured", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_connection(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Json<ConnectionView>, ApiError> {
    policy::run_oneroster(&principal)?;
    let input: ConnectionInput = parse_json(&body)?;
    let new = NewConnection {
        base_url: input.base_url,
        token_url: input.token_url,
        client_id: input.client_id,
        client_secret: Secret::new(input.client_secret),
        page_size: input.page_size,
    };
    let view = connection::save(
        &state.db,
        &state.config,
        principal.tenant,
        &new,
        &principal.actor(),
    )
    .await?;
    Ok(Json(view))
}
