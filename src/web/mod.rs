//! Server-rendered pages (SPEC §8): askama `.html` templates under `templates/web/`
//! (escaped), on one base layout (`templates/web/base.html`: `lang`, a viewport meta, a
//! `<main>`, visible keyboard focus, one stylesheet, no script).
//!
//! Every page response carries a Content-Security-Policy that allows no script at all,
//! `no-referrer` (the links hold tokens), `nosniff` (on the API's responses too:
//! [`nosniff`]), `no-store` and no framing (docs/web.md). A page
//! error is an HTML page with its status, never JSON: 404 for an unknown link, 410 for a
//! link that no longer works (an expired or cancelled invitation), 400/405/413/429/500 as
//! they come, and 503 with `Retry-After` when the database is busy (an import holds it).
//! Pages are rate limited per client address like the API (their own buckets, the same
//! budget; behind a trusted proxy the client it reports).
//!
//! Two pages are reached from links in messages by people without a session (the token in
//! the URL is the credential, so their POST forms need no other CSRF value):
//! - `GET|POST /join/{token}` ([`join`]): a guardian accepts an invitation;
//! - `GET|POST /unsubscribe/{token}` ([`unsubscribe`]): the digest's one-click unsubscribe
//!   (RFC 8058).
//!
//! Every other page needs a session ([`session::WebSession`], which sends a browser without
//! one to `/signin`): `/` ([`home`]); [`admin`]: `/admin/approvals` (decide teachers'
//! requests), `/admin/students/{id}` (contacts with provenance, history, erase, restrict),
//! `/admin/imports`, `/admin/settings`, `/admin/outbox`, `/admin/audit`, `/admin/oneroster`,
//! `/admin/digest`; [`teacher`]: `/teacher/…`; [`guardian`]: `/guardian`. People sign in at
//! `/signin` ([`signin`]: staff through [`oidc`], guardians with a code, developers with a
//! token). Each
//! handler asks [`crate::auth::policy`] first, like its API route, and calls the same
//! services; its forms come from [`form`] (the error next to the field) and carry the
//! session's CSRF token; its failures are one [`error::PageError`]; its frame is
//! [`layout::Layout`] (the navigation lists the pages the caller's roles reach).

pub mod admin;
pub mod error;
pub mod form;
pub mod guardian;
pub mod home;
pub mod join;
pub mod layout;
pub mod oidc;
pub mod session;
pub mod signin;
pub mod teacher;
pub mod unsubscribe;

use crate::api::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The Content-Security-Policy of every page: no script of any kind.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Path prefixes served as pages: their errors are HTML pages, not JSON.
const PAGE_PREFIXES: [&str; 8] = [
    "/join/",
    "/unsubscribe/",
    "/static/",
    "/web/",
    "/signin",
    "/admin/",
    "/teacher/",
    "/guardian",
];

/// True for a path that belongs to the pages (errors there are HTML).
pub fn is_page(path: &str) -> bool {
    path == "/"
        || PAGE_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix) || path == prefix.trim_end_matches('/'))
}

/// A time as the pages show it: `2026-12-05 14:03 UTC`.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A numeric id from a page's path; anything else is the 404 page (as the API's).
pub fn id_param(raw: &str) -> Result<i64, error::PageError> {
    raw.parse::<i64>().map_err(|_| error::PageError::NotFound)
}

/// A list page's `?cursor=` (an id): none when empty, the 404 page when not a number.
pub fn id_cursor(raw: Option<&str>) -> Result<Option<i64>, error::PageError> {
    raw.map(str::trim)
        .filter(|c| !c.is_empty())
        .map(id_param)
        .transpose()
}

/// A page with a heading and a few paragraphs (results and errors).
#[derive(Template, WebTemplate)]
#[template(path = "web/notice.html")]
pub struct Notice {
    /// Title and heading.
    pub title: String,
    /// Paragraphs.
    pub lines: Vec<String>,
    /// A link to go on with: (href, text).
    pub link: Option<(String, String)>,
    /// The language it is written in (`<html lang>`).
    pub lang: &'static str,
    /// The skip link's text, in that language.
    pub skip: String,
}

impl Notice {
    /// A notice with `title` and `lines`.
    pub fn new(title: impl Into<String>, lines: &[&str]) -> Self {
        Self {
            title: title.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            link: None,
            lang: "en",
            skip: "Skip to content".into(),
        }
    }

    /// The notice as written in `locale` (its text must be).
    pub fn in_language(mut self, locale: crate::i18n::Locale) -> Self {
        self.lang = locale.tag();
        self.skip = locale.text("skip-to-content");
        self
    }

    /// The notice with a link under its text.
    pub fn with_link(mut self, href: &str, text: &str) -> Self {
        self.link = Some((href.to_string(), text.to_string()));
        self
    }

    /// The notice as a response with `status`.
    pub fn with_status(self, status: StatusCode) -> Response {
        (status, self).into_response()
    }
}

/// The HTML error page for `status`.
pub fn status_page(status: StatusCode) -> Response {
    let (title, line) = match status {
        StatusCode::NOT_FOUND => (
            "Page not found",
            "This link does not lead anywhere. Check that you copied the whole link from the message.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "Not allowed",
            "This page cannot be used that way. Open the link from the message again.",
        ),
        StatusCode::TOO_MANY_REQUESTS => {
            ("Too many requests", "Please wait a minute and try again.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("Too large", "The form sent too much data."),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Busy right now",
            "The service is busy with a large update, or cannot reach its database, and could not do this just now. Nothing was changed: please try again in a minute.",
        ),
        s if s.is_server_error() => (
            "Something went wrong",
            "We could not show this page right now. Please try again in a few minutes.",
        ),
        _ => (
            "This request is not valid",
            "Open the link from the message again.",
        ),
    };
    Notice::new(title, &[line]).with_status(status)
}

/// A failure inside a page handler: logged, shown as the 500 page; or, when a busy,
/// unreachable or full database caused it ([`crate::db::busy::Outage`]), the 503 page with
/// `Retry-After`, like the API's `database_busy`, `database_unavailable` and `storage_full`.
pub fn internal<E: std::error::Error + 'static>(error: E) -> Response {
    if crate::db::busy::caused_outage(&error).is_some() {
        tracing::warn!(%error, "page answered busy");
        return busy_page();
    }
    tracing::error!(%error, "page failed");
    status_page(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The 503 page of a busy database, with `Retry-After`.
pub fn busy_page() -> Response {
    let seconds = crate::api::error::BUSY_RETRY_AFTER_SECONDS;
    let mut response = status_page(StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/web/web.css"),
    )
}

/// Adds the page security headers (module docs) to every response.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    secure(response.headers_mut());
    response
}

/// Sets the page security headers (module docs) on `headers`.
pub fn secure(headers: &mut axum::http::HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

/// Adds `X-Content-Type-Options: nosniff` to a response that has none: every response of
/// the service (the API's JSON too), so no browser second-guesses a declared content type.
pub async fn nosniff(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
}

/// The pages, with their security headers and the per-address rate limit.
pub fn router(state: &AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/join/{token}", get(join::show).post(join::accept))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::show).post(unsubscribe::one_click),
        )
        .route("/static/web.css", get(stylesheet))
        .route("/", get(home::show))
        .route("/web/session", axum::routing::post(session::token_sign_in))
        .route("/web/signout", axum::routing::post(session::sign_out))
        .route("/signin", get(signin::show))
        .route("/web/oidc/start", get(oidc::start))
        .route(oidc::CALLBACK_PATH, get(oidc::callback))
        .merge(admin::routes(state.config.api.max_upload_bytes))
        .merge(teacher::routes())
        .merge(guardian::routes());
    crate::api::limits::protect_pages(pages, &state.config.api)
        .layer(middleware::from_fn(security_headers))
}
