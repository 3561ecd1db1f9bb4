//! The HTTP API: tenant-scoped JSON routes behind bearer-token authentication, the
//! Graph-compatible read, import uploads, probes and the OpenAPI document.
//!
//! One file per resource ([`contacts`], [`contact_requests`], [`assignments`], [`erasures`], [`chats`], [`settings`],
//! [`audit`], [`classes`], [`graph`], [`imports`], [`health`]); the route table (`routes`)
//! registers each handler once, by its `#[utoipa::path]`, for both the router and the
//! OpenAPI document ([`routes()`] lists it);
//! every handler authenticates with the [`Principal`](crate::auth::Principal) extractor and
//! asks [`crate::auth::policy`] before touching data. Every failure, including unknown
//! routes, wrong methods, oversized bodies, timeouts, rate limits and panics, is the JSON
//! error of [`error`].

pub mod assignments;
pub mod audit;
pub mod chats;
pub mod classes;
pub mod contact_requests;
pub mod contacts;
pub mod digest;
pub mod disclosures;
pub mod erasures;
pub mod error;
pub mod extract;
pub mod graph;
pub mod health;
pub mod imports;
pub mod invitations;
pub mod limits;
pub mod oneroster;
pub mod openapi;
pub mod restrictions;
mod routes;
pub mod settings;
pub mod upload;

use crate::auth::Verifier;
use crate::auth::keys::SetupError;
use crate::config::Config;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use error::{ApiError, REQUEST_ID, code_for_status};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use routes::list as routes;

/// The request id header, set on every request and response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Database pool of the requests (short lock waits: [`crate::db::Workload::Requests`]).
    pub db: DatabaseConnection,
    /// Database pool of the jobs requests start (imports, OneRoster runs), which wait for
    /// locks as long as any job ([`crate::db::Workload::Jobs`]); the same pool as `db`
    /// unless [`AppState::with_jobs`] gives one.
    pub jobs: DatabaseConnection,
    /// Configuration.
    pub config: Arc<Config>,
    /// Token verification with the configured keys.
    pub auth: Arc<Verifier>,
    /// The OpenAPI document for this configuration, built on first request.
    pub openapi: Arc<std::sync::OnceLock<serde_json::Value>>,
    /// Tenant ids by slug, read once per process.
    pub tenants: Arc<crate::tenants::directory::Directory>,
    /// The outbox's message kinds ([`crate::server::message_kinds`]), built once: the
    /// outbox view asks each kind what waits outside the outbox.
    pub message_kinds: Arc<crate::outbox::port::MessageKinds>,
    /// The staff sign-in provider's discovered metadata, read on first use.
    pub oidc: Arc<crate::web::oidc::Discovery>,
    /// The key of the keyed hashes that stand in for erased personal data.
    pub privacy: Arc<crate::privacy::PrivacyKey>,
}

impl AppState {
    /// State for `config`, reading the token keys it names.
    pub fn new(db: DatabaseConnection, config: Config) -> Result<Self, SetupError> {
        let auth = Verifier::from_config(&config.auth)?;
        if !auth.has_keys() {
            tracing::warn!(
                "no token key is configured (JWT_SECRET, auth.rs256_public_key_paths, auth.jwks_path): every API request will be refused"
            );
        }
        let privacy = crate::privacy::PrivacyKey::from_config(&config)
            .map_err(|e| SetupError(e.to_string()))?;
        Ok(Self {
            privacy: Arc::new(privacy),
            jobs: db.clone(),
            db,
            message_kinds: Arc::new(crate::server::message_kinds(&config)),
            config: Arc::new(config),
            auth: Arc::new(auth),
            openapi: Arc::default(),
            tenants: Arc::default(),
            oidc: Arc::default(),
        })
    }

    /// Runs the jobs requests start on `jobs` (see [`AppState::jobs`]).
    pub fn with_jobs(mut self, jobs: DatabaseConnection) -> Self {
        self.jobs = jobs;
        self
    }
}

/// The application: the route table with each group's limits, the pages, and the error
/// and request-id layers. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the rate limiter keys on the
/// client address: the peer, or the client a trusted proxy reports).
pub fn router(state: AppState) -> Router {
    let api = &state.config.api;
    let request_timeout = Duration::from_secs(state.config.server.request_timeout_seconds.max(1));
    let import_timeout = Duration::from_secs(api.import_timeout_seconds.max(1));
    let table = routes::Table::new();
    let body_limit = RequestBodyLimitLayer::new(api.max_body_bytes);
    let timeout = |after| TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, after);
    let probes = Router::from(table.probes)
        .layer(body_limit)
        .layer(timeout(request_timeout));
    let requests = Router::from(table.requests)
        .layer(body_limit)
        .layer(timeout(request_timeout));
    let uploads = Router::from(table.uploads)
        .layer(DefaultBodyLimit::max(api.max_upload_bytes))
        .layer(timeout(import_timeout));
    let runs = Router::from(table.runs)
        .layer(body_limit)
        .layer(timeout(import_timeout));
    let protected =
        limits::protect_api(requests.merge(uploads).merge(runs), api, state.auth.clone());
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let pages = crate::web::router(&state);
    Router::new()
        .merge(probes)
        .merge(protected)
        .merge(pages)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(api.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(request_context))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                let id = request
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(crate::web::nosniff))
        .with_state(state)
}

/// Unknown routes.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}

/// Runs the request with its id in scope, then gives every error response that is not
/// already our JSON error (405 from the router, 413 and 408 from layers, rejections) the
/// one error shape, keeping headers such as `Allow` and `Retry-After`.
async fn request_context(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let page = crate::web::is_page(request.uri().path());
    let response = REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let status = response.status();
    if page {
        return page_error(response);
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .unwrap_or_default();
    let text = text.trim();
    let message = if status.is_client_error() && !text.is_empty() {
        text.to_string()
    } else {
        default_message(status).to_string()
    };
    let mut rebuilt = REQUEST_ID.sync_scope(id, || {
        ApiError::new(status, code_for_status(status), message).into_response()
    });
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
}

/// A page's error response as an HTML page (a page handler's own pages pass unchanged;
/// a rejection, 405, 413 or 429 from a layer becomes the page for its status, keeping
/// headers such as `Allow` and `Retry-After`).
fn page_error(response: Response) -> Response {
    let status = response.status();
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if status.as_u16() < 400 || html {
        return response;
    }
    let mut rebuilt = crate::web::status_page(status);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    crate::web::secure(rebuilt.headers_mut());
    rebuilt
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type",
        StatusCode::TOO_MANY_REQUESTS => "too many requests",
        s if s.is_server_error() => "internal error",
        _ => "the request is not valid",
    }
}
