//! Extractors whose rejections are [`ApiError`]s: the authenticated [`Principal`], path
//! parameters, query strings, JSON bodies (required or optional), and page parameters.

use super::AppState;
use super::error::ApiError;
use crate::auth::{Credential, Principal, Via, keys};
use crate::domain::TenantSlug;
use crate::roster::PageRequest;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate-limit middleware has verified the token already; verify here only on a
        // route without it.
        let credential = match parts.extensions.get::<Credential>() {
            Some(credential) => credential.clone(),
            None => Credential::read(parts.headers.get(AUTHORIZATION), &state.auth),
        };
        let token = match credential {
            Credential::Verified(token) => token,
            Credential::Missing => {
                return Err(ApiError::unauthorized(
                    "unauthenticated",
                    "this route needs an `Authorization: Bearer <token>` header",
                ));
            }
            Credential::NotBearer => {
                return Err(ApiError::unauthorized(
                    "unauthenticated",
                    "the Authorization header must be `Bearer <token>`",
                ));
            }
            Credential::Refused(e) => return Err(e.into()),
        };
        let unknown = || ApiError::unauthorized("invalid_token", "the token's tenant is unknown");
        let slug = TenantSlug::parse(&token.tenant_slug).map_err(|_| unknown())?;
        let tenant = state
            .tenants
            .id(&state.db, slug.as_str())
            .await?
            .ok_or_else(unknown)?;
        Ok(Principal {
            tenant,
            tenant_slug: slug.as_str().to_string(),
            identity: token.identity.clone(),
            via: Via::Api,
        })
    }
}

impl From<keys::SetupError> for ApiError {
    fn from(e: keys::SetupError) -> Self {
        ApiError::internal(e)
    }
}

/// A path parameter; a malformed one is a `400 invalid_path`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if has_nul(parts.uri.path()) {
            return Err(ApiError::bad_request("invalid_path", NUL_REFUSED));
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// A query string; a malformed one is a `400 invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(has_nul) {
            return Err(ApiError::bad_request("invalid_query", NUL_REFUSED));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// `?limit=&cursor=` of list routes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// Checks the limit against the configuration.
    pub fn request(self, state: &AppState) -> Result<PageRequest, ApiError> {
        let max = state.config.api.max_page_size.max(1);
        let limit = self.limit.unwrap_or(state.config.api.default_page_size);
        if limit == 0 || limit > max {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {max}"),
            ));
        }
        Ok(PageRequest {
            after: self.cursor.filter(|c| !c.is_empty()),
            limit,
        })
    }
}

/// `?limit=&cursor=` of lists paged by row id: the cursor is a row id.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IdPageParams {
    /// Items per page (default `api.default_page_size`, at most `api.max_page_size`).
    pub limit: Option<u64>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = r"^[0-9]{0,18}$")]
    pub cursor: Option<String>,
}

impl IdPageParams {
    /// Checks the limit against the configuration.
    pub fn request(self, state: &AppState) -> Result<PageRequest, ApiError> {
        PageParams {
            limit: self.limit,
            cursor: self.cursor,
        }
        .request(state)
    }
}

/// The numeric id a list's cursor holds (lists paged by row id).
pub fn id_cursor(page: &PageRequest) -> Result<Option<i64>, ApiError> {
    let invalid = || ApiError::bad_request("invalid_query", "cursor is not valid");
    // Only what the documented pattern allows: `parse` alone would take "-5" and "+5".
    page.after
        .as_deref()
        .map(|raw| {
            if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            raw.parse::<i64>().map_err(|_| invalid())
        })
        .transpose()
}

/// Longest accepted decision or erase reason, in characters.
pub const MAX_REASON_CHARS: usize = crate::domain::MAX_REASON_CHARS;

/// A trimmed optional reason; blank is none, too long is `422 invalid_field`.
pub fn reason(raw: Option<String>) -> Result<Option<String>, ApiError> {
    let reason = raw.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("reason: at most {MAX_REASON_CHARS} characters"),
        )
        .with_details(serde_json::json!({"field": "reason"})));
    }
    Ok(reason)
}

/// A JSON body; a malformed one is a `400 invalid_body`, one without a JSON content type
/// a `415 unsupported_media_type`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(request, state)
            .await
            .map_err(json_rejection)?;
        typed(value).map(ApiJson)
    }
}

/// A JSON value as `T`: text holding U+0000 is refused, whole numbers written with a
/// fraction (`465.0`) count as integers (as JSON Schema says), then the shape is checked.
fn typed<T: DeserializeOwned>(mut value: serde_json::Value) -> Result<T, ApiError> {
    if crate::domain::json_holds_nul(&value) {
        return Err(ApiError::bad_request("invalid_body", NUL_REFUSED));
    }
    whole_numbers_as_integers(&mut value);
    T::deserialize(value).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })
}

/// A JSON body read as bytes (routes that also take it without a JSON content type), with
/// the rules of [`ApiJson`].
pub fn json_from_bytes<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("the body is not valid JSON: {e}"))
    })?;
    typed(value)
}

/// Why text holding U+0000 is refused.
const NUL_REFUSED: &str = "text may not contain the NUL character (U+0000, `\\u0000` or `%00`): PostgreSQL cannot store it";

/// True when a raw (percent-encoded) path or query string encodes U+0000.
fn has_nul(raw: &str) -> bool {
    raw.contains("%00")
}

/// Rewrites `465.0` as `465` at any depth (numbers within the exactly representable range).
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// An optional JSON body: an empty body is `T::default()`; otherwise as [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> axum::extract::FromRequest<S>
    for OptionalJson<T>
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
        ApiJson::<T>::from_request(request, state)
            .await
            .map(|ApiJson(value)| OptionalJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_with_nul_are_refused_and_whole_floats_are_integers() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Body {
            size: u64,
            name: String,
        }
        let body: Body = typed(json!({"size": 465.0, "name": "a"})).unwrap();
        assert_eq!(body.size, 465);
        assert!(typed::<Body>(json!({"size": 4.5, "name": "a"})).is_err());
        let nul = typed::<Body>(json!({"size": 1, "name": "a\u{0}b"})).unwrap_err();
        assert_eq!(nul.code(), "invalid_body");
        assert!(has_nul("/api/v1/students/a%00b"));
        assert!(!has_nul("/api/v1/students/a%2500b"));
    }
}
