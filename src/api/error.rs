//! The one error type of the HTTP API and its single mapping to HTTP: every failure is
//! `{"error": {"code", "message", "details"}}` with a stable snake_case `code`. Server
//! errors (5xx) never carry internal detail: it is logged with the request id, and the
//! body names only that id.

use crate::auth::TokenError;
use crate::auth::policy::Denied;
use crate::contacts::ContactsError;
use crate::db::busy::Outage;
use axum::Json;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served (`x-request-id`), for error bodies and logs.
    pub static REQUEST_ID: String;
}

/// The request id of the current request, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The error body: `{"error": {...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code (see docs/api.md).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Structured detail, or null.
    #[schema(value_type = Object, nullable = true)]
    pub details: serde_json::Value,
}

/// An API failure (boxed: it travels through many `Result`s).
#[derive(Debug)]
pub struct ApiError(Box<Parts>);

#[derive(Debug)]
struct Parts {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: serde_json::Value,
    headers: HeaderMap,
    /// Logged, never sent.
    internal: Option<String>,
    /// Seconds of `Retry-After`, also given in the details of a 5xx.
    retry_after: Option<u64>,
    /// The details are shown on a 5xx too ([`ApiError::with_public_details`]).
    public: bool,
}

/// Seconds a client is asked to wait (`Retry-After`) after `503 database_busy`.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

/// Seconds a client is asked to wait (`Retry-After`) after `503 database_unavailable`.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 10;

/// Seconds a client is asked to wait (`Retry-After`) after `503 storage_full`.
pub const STORAGE_FULL_RETRY_AFTER_SECONDS: u64 = 60;

impl ApiError {
    /// A failure with a status, a stable code and a message for the caller.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
            headers: HeaderMap::new(),
            internal: None,
            retry_after: None,
            public: false,
        }))
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.0.details = details;
        self
    }

    /// Replaces the stable code.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.0.code = code;
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 401 with `code` and a `WWW-Authenticate: Bearer` challenge.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        let challenge = if code == "unauthenticated" {
            HeaderValue::from_static("Bearer")
        } else {
            HeaderValue::from_static("Bearer error=\"invalid_token\"")
        };
        Self::new(StatusCode::UNAUTHORIZED, code, message)
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    /// 503 `database_busy` with `Retry-After`: a lock or a pooled connection could not be
    /// had within `database.request_busy_timeout_ms` (an import or a digest run holds the
    /// SQLite write lock, a PostgreSQL row lock timed out, every connection is in use, or
    /// the server stopped answering). The request changed nothing; sent again later, it
    /// normally succeeds.
    pub fn database_busy() -> Self {
        Self::unavailable(
            "database_busy",
            format!(
                "the database is busy (a long job such as an import holds it) or not answering; nothing was changed: try again in {BUSY_RETRY_AFTER_SECONDS} seconds"
            ),
            BUSY_RETRY_AFTER_SECONDS,
        )
    }

    /// 503 `database_unavailable` with `Retry-After`: the database cannot be reached or
    /// used (connection refused or reset, server shutting down, file unreadable). The
    /// request changed nothing; the service reconnects by itself when the database is back.
    pub fn database_unavailable() -> Self {
        Self::unavailable(
            "database_unavailable",
            format!(
                "the database cannot be reached; nothing was changed: try again in {UNAVAILABLE_RETRY_AFTER_SECONDS} seconds"
            ),
            UNAVAILABLE_RETRY_AFTER_SECONDS,
        )
    }

    /// 503 `storage_full` with `Retry-After`: the database has no room to write (a full
    /// disk, SQLite's `max_page_count`, PostgreSQL `53100 disk_full`). The write was rolled
    /// back whole; it succeeds once an operator has made room.
    pub fn storage_full() -> Self {
        Self::unavailable(
            "storage_full",
            format!(
                "the database has no room to write (its disk is full); nothing was changed: try again in {STORAGE_FULL_RETRY_AFTER_SECONDS} seconds, once an operator has made room"
            ),
            STORAGE_FULL_RETRY_AFTER_SECONDS,
        )
    }

    /// 503 with `code`, `message` and `Retry-After: seconds`.
    fn unavailable(code: &'static str, message: String, seconds: u64) -> Self {
        let mut error = Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
            .with_header(header::RETRY_AFTER, HeaderValue::from(seconds));
        error.0.retry_after = Some(seconds);
        error
    }

    /// The 503 of an [`Outage`].
    pub fn outage(outage: Outage) -> Self {
        match outage {
            Outage::Busy => Self::database_busy(),
            Outage::Unavailable => Self::database_unavailable(),
            Outage::StorageFull => Self::storage_full(),
        }
    }

    /// The one mapping of a database failure to HTTP: the 503 of its [`Outage`]
    /// ([`crate::db::busy`]: busy, unavailable, storage full), otherwise 500 `internal`.
    pub fn database(e: DbErr) -> Self {
        match crate::db::busy::outage(&e) {
            Some(outage) => Self::outage(outage).logged(e),
            None => Self::internal(e),
        }
    }

    /// An unexpected failure of a capability (a tenant lookup, an import, …): the 503 of
    /// the [`Outage`] that caused it (anywhere in its `source()` chain), otherwise 500
    /// `internal`; the detail is logged, not sent.
    pub fn failure<E: std::error::Error + 'static>(e: E) -> Self {
        match crate::db::busy::caused_outage(&e) {
            Some(outage) => Self::outage(outage).logged(e),
            None => Self::internal(e),
        }
    }

    /// Adds details that a 5xx shows too (beside its request id): what is down, never
    /// internal detail.
    pub fn with_public_details(mut self, details: serde_json::Value) -> Self {
        self.0.public = true;
        self.0.details = details;
        self
    }

    /// Keeps `detail` for the log.
    fn logged(mut self, detail: impl std::fmt::Display) -> Self {
        self.0.internal = Some(detail.to_string());
        self
    }

    /// 500 `internal`: `detail` is logged, not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let mut error = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
        error.0.internal = Some(detail.to_string());
        error
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.0.code
    }

    /// The message for the caller.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

/// The error response for `status` with `code` and `message`; used for failures produced
/// outside handlers (rejections of layers, unknown routes, panics).
pub fn error_response(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let this = *self.0;
        let request_id = current_request_id();
        let (message, details) = if this.status.is_server_error() {
            let id = request_id.clone().unwrap_or_default();
            let detail = this.internal.as_deref().unwrap_or(&this.message);
            let mut details = serde_json::json!({ "requestId": id });
            if let (true, serde_json::Value::Object(public)) = (this.public, &this.details) {
                for (key, value) in public {
                    details[key] = value.clone();
                }
            }
            if let Some(seconds) = this.retry_after {
                // Expected under load (an import holds the lock): not an error of ours.
                tracing::warn!(request_id = %id, code = this.code, detail, "request answered busy");
                details["retryAfterSeconds"] = seconds.into();
            } else {
                tracing::error!(
                    request_id = request_id.as_deref().unwrap_or("-"),
                    status = this.status.as_u16(),
                    code = this.code,
                    detail,
                    "request failed"
                );
            }
            (format!("{} (request id {id})", this.message), details)
        } else {
            (this.message, this.details)
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: this.code.to_string(),
                message,
                details,
            },
        };
        let mut response = (this.status, Json(body)).into_response();
        response.headers_mut().extend(this.headers);
        response
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::unauthorized(e.code(), e.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(e: Denied) -> Self {
        match e {
            Denied::NotFound => ApiError::not_found("resource"),
            Denied::Forbidden(why) => ApiError::forbidden(why),
            Denied::Db(e) => e.into(),
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(e: DbErr) -> Self {
        ApiError::database(e)
    }
}

impl From<ContactsError> for ApiError {
    fn from(e: ContactsError) -> Self {
        match e {
            ContactsError::StudentNotFound(_) => ApiError::not_found("student"),
            ContactsError::ContactNotFound => ApiError::not_found("contact"),
            ContactsError::Db(e) => e.into(),
        }
    }
}

/// The stable code the API uses for a bare HTTP status (responses made by layers).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        408 => "request_timeout",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "unprocessable_entity",
        429 => "rate_limited",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "bad_request",
    }
}

impl From<crate::approvals::ApprovalError> for ApiError {
    fn from(e: crate::approvals::ApprovalError) -> Self {
        use crate::approvals::ApprovalError as E;
        let message = e.to_string();
        match e {
            E::InvalidField { field, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field}: {message}"),
            )
            .with_details(serde_json::json!({"field": field, "message": message})),
            E::EditsDisabled => ApiError::new(StatusCode::FORBIDDEN, "edits_disabled", message),
            E::NoChange => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_change", message),
            E::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            ),
            E::NotFound(what) => ApiError::not_found(what),
            E::AlreadyDecided(status) => {
                ApiError::new(StatusCode::CONFLICT, "already_decided", message)
                    .with_details(serde_json::json!({ "status": status }))
            }
            E::Stale(details) => {
                ApiError::new(StatusCode::CONFLICT, "stale_request", message).with_details(*details)
            }
            E::ContactGone => ApiError::new(StatusCode::CONFLICT, "contact_gone", message),
            E::OwnRequest => ApiError::new(StatusCode::FORBIDDEN, "own_request", message),
            E::MatchToConfirm(details) => {
                ApiError::new(StatusCode::CONFLICT, "match_to_confirm", message)
                    .with_details(*details)
            }
            E::AlreadyLifted => ApiError::new(StatusCode::CONFLICT, "already_lifted", message),
            E::Db(e) => e.into(),
        }
    }
}

impl ApiError {
    /// `422 invalid_field`: `field` of the body is not valid (`details.field`,
    /// `details.message`).
    pub fn invalid_field(field: &str, message: String) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("{field}: {message}"),
        )
        .with_details(serde_json::json!({"field": field, "message": message}))
    }
}

impl From<crate::invites::UrgentError> for ApiError {
    fn from(e: crate::invites::UrgentError) -> Self {
        use crate::invites::UrgentError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("invitation"),
            E::NotWaiting(status) => ApiError::new(StatusCode::CONFLICT, "not_waiting", message)
                .with_details(serde_json::json!({ "status": status })),
            E::Db(e) => e.into(),
        }
    }
}

impl From<crate::restrictions::RestrictionError> for ApiError {
    fn from(e: crate::restrictions::RestrictionError) -> Self {
        use crate::restrictions::RestrictionError as E;
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::InvalidField { field, message } => ApiError::invalid_field(field, message),
            E::Db(e) => e.into(),
        }
    }
}

impl From<crate::tenants::settings::SettingsError> for ApiError {
    fn from(e: crate::tenants::settings::SettingsError) -> Self {
        use crate::tenants::settings::SettingsError as E;
        match e {
            E::Invalid(invalid) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_setting",
                invalid.to_string(),
            )
            .with_details(serde_json::json!({"field": invalid.field, "message": invalid.message})),
            E::NotFound => ApiError::not_found("settings"),
            E::Db(e) => e.into(),
        }
    }
}

impl From<crate::chats::ChatError> for ApiError {
    fn from(e: crate::chats::ChatError) -> Self {
        use crate::chats::ChatError;
        let message = e.to_string();
        match e {
            ChatError::NotFound(what) => ApiError::not_found(what),
            ChatError::InvalidMembers(invalid) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_members", message)
                    .with_details(serde_json::json!({ "invalid": invalid }))
            }
            ChatError::TooMany { field, max } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_members",
                message,
            )
            .with_details(serde_json::json!({"field": field, "max": max})),
            ChatError::NoMembers => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                    .with_details(serde_json::json!({"field": "contactIds"}))
            }
            ChatError::ContactBlocked(contact) => {
                ApiError::new(StatusCode::CONFLICT, "contact_blocked", message)
                    .with_details(serde_json::json!({ "contactId": contact }))
            }
            ChatError::Blocked => ApiError::new(StatusCode::FORBIDDEN, "blocked", message),
            ChatError::Db(e) => e.into(),
        }
    }
}
