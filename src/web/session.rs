//! Page sessions: a server-side row per signed-in browser (`web_sessions`), behind an
//! `HttpOnly`, `SameSite=Lax` cookie (`Secure`, named `__Host-pc_session`, when
//! `web.public_url` is `https://`). The cookie holds 32 random bytes; the row only their
//! SHA-256, so a copy of the table opens no session. A session ends after
//! `web.session_idle_minutes` without a request, `web.session_absolute_hours` after
//! sign-in, or at sign-out. Each session has its own CSRF token, which every form of a
//! signed-in page carries ([`WebSession::check_csrf`]).
//!
//! Routes: `POST /web/session` (a bearer token opens a session, only with
//! `web.token_signin`), `POST /web/signout`.

use super::error::PageError;
use crate::api::AppState;
use crate::audit::{self, AuditEntry};
use crate::auth::{Credential, Identity, Principal, Role, Via};
use crate::db;
use crate::domain::TenantId;
use crate::entities::web_sessions;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, IntoResponseParts, Redirect, Response, ResponseParts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sea_orm::{ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, Value};

/// The cookie's name over plain HTTP (development).
pub const COOKIE_NAME: &str = "pc_session";
/// The cookie's name over TLS: the `__Host-` prefix makes the browser refuse it unless it
/// is `Secure`, host-only and for `/`.
pub const SECURE_COOKIE_NAME: &str = "__Host-pc_session";
/// A session seen within this many seconds is not written again (one write a minute per
/// active session, not one per request).
const TOUCH_AFTER_SECONDS: i64 = 60;

/// Sets (or clears) the session cookie on a response.
pub struct SessionCookie(HeaderValue);

impl IntoResponseParts for SessionCookie {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.headers_mut().append(SET_COOKIE, self.0);
        Ok(res)
    }
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.config.web.is_tls() {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

fn cookie(state: &AppState, value: &str, clear: bool) -> SessionCookie {
    let secure = if state.config.web.is_tls() {
        "; Secure"
    } else {
        ""
    };
    let expiry = if clear { "; Max-Age=0" } else { "" };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{expiry}",
        cookie_name(state)
    );
    // The value is base64url and the attributes are ASCII: always a valid header value.
    SessionCookie(HeaderValue::from_str(&text).expect("cookie text is ASCII"))
}

/// 32 random bytes, base64url (43 characters).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    crate::secrets::to_hex(digest.as_ref())
}

/// A safe local redirect target from a `next` parameter: a path on this site (one leading
/// `/`, no scheme, no `//` or `/\` that a browser would read as another host); else `/`.
pub fn local_path(next: Option<&str>) -> String {
    match next.map(str::trim) {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path.chars().any(|c| c.is_control()) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Opens a session for `principal` (a person or a guardian; never an app) and records
/// `web.sign_in` with `method` (`oidc`, `token`, `code`, `join`) in the audit log; the
/// returned value sets the cookie. Expired sessions are deleted on the way (an indexed
/// range).
pub async fn start(
    state: &AppState,
    principal: &Principal,
    method: &str,
) -> Result<SessionCookie, DbErr> {
    let (kind, subject) = principal.identity.subject();
    let roles = match &principal.identity {
        Identity::User { roles, .. } => roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let now = Utc::now();
    let absolute = Duration::hours(i64::from(state.config.web.session_absolute_hours.max(1)));
    let token = random_token();
    let txn = db::begin_write(&state.db).await?;
    db::rows::exec(
        &txn,
        &web_sessions::Entity::delete_many().filter(web_sessions::Column::ExpiresAt.lt(now)),
    )
    .await?;
    db::rows::exec(
        &txn,
        &web_sessions::Entity::insert(web_sessions::ActiveModel {
            token_hash: Set(token_hash(&token)),
            tenant_id: Set(principal.tenant.0),
            kind: Set(kind.to_string()),
            subject: Set(subject.to_string()),
            roles: Set(roles),
            method: Set(method.to_string()),
            csrf_token: Set(random_token()),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(now + absolute),
            ..Default::default()
        }),
    )
    .await?;
    let web_principal = Principal {
        via: Via::Web,
        ..principal.clone()
    };
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(principal.tenant),
            actor: &web_principal.actor(),
            action: "web.sign_in",
            target: None,
            before: None,
            after: Some(serde_json::json!({ "method": method })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(cookie(state, &token, false))
}

/// The signed-in caller of a page: who they are (scoped like an API caller, with
/// [`Via::Web`]) and their session's CSRF token. Without a live session, a `GET` is sent
/// to `/signin?next=…` and anything else gets the 401 page.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The caller, for the policy and the services.
    pub principal: Principal,
    /// The value every form of this session carries in its `csrf` field.
    pub csrf: String,
    id: i64,
}

impl WebSession {
    /// Accepts a form only when its `csrf` field is this session's token (constant time);
    /// otherwise the 403 page (a form from another site, or from an ended session).
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if same_secret(self.csrf.as_bytes(), sent.trim().as_bytes()) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ))
        }
    }

    /// The role names of the signed-in person (empty for a guardian).
    pub fn roles(&self) -> &[Role] {
        match &self.principal.identity {
            Identity::User { roles, .. } => roles,
            _ => &[],
        }
    }
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session row with its tenant's slug.
#[derive(Debug, sea_orm::FromQueryResult)]
struct SessionRow {
    id: i64,
    tenant_id: i64,
    slug: String,
    kind: String,
    subject: String,
    roles: String,
    csrf_token: String,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

const FIND_SESSION: &str = "SELECT s.id, s.tenant_id, t.slug, s.kind, s.subject, s.roles, s.csrf_token, s.last_seen_at, s.expires_at FROM web_sessions s JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = $1";

/// The session token of the request's cookie, if any.
fn session_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

impl SessionRow {
    fn is_live(&self, now: DateTime<Utc>, idle: Duration) -> bool {
        now < self.expires_at && now < self.last_seen_at + idle
    }

    fn into_session(self) -> Result<WebSession, PageError> {
        let identity = match self.kind.as_str() {
            crate::auth::claims::KIND_USER => Identity::User {
                source_id: self.subject,
                roles: self
                    .roles
                    .split(',')
                    .filter_map(|r| r.parse().ok())
                    .collect(),
            },
            crate::auth::claims::KIND_CONTACT => Identity::Contact {
                contact_id: self.subject,
            },
            other => {
                return Err(PageError::Internal(format!(
                    "web session {} has kind '{other}'",
                    self.id
                )));
            }
        };
        Ok(WebSession {
            principal: Principal {
                tenant: TenantId(self.tenant_id),
                tenant_slug: self.slug,
                identity,
                via: Via::Web,
            },
            csrf: self.csrf_token,
            id: self.id,
        })
    }
}

/// Why a request has no session.
fn signed_out(parts: &Parts) -> PageError {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        PageError::SignIn(local_path(Some(next)))
    } else {
        PageError::Unauthenticated
    }
}

impl FromRequestParts<AppState> for WebSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let Some(token) = session_token(&parts.headers, cookie_name(state)) else {
            return Err(signed_out(parts));
        };
        let found: Option<SessionRow> = db::rows::query_one(
            &state.db,
            FIND_SESSION,
            vec![Value::String(Some(token_hash(token)))],
        )
        .await?;
        let Some(row) = found else {
            return Err(signed_out(parts));
        };
        let now = Utc::now();
        let idle = Duration::minutes(i64::from(state.config.web.session_idle_minutes.max(1)));
        if !row.is_live(now, idle) {
            end(state, row.id).await?;
            return Err(signed_out(parts));
        }
        if now - row.last_seen_at > Duration::seconds(TOUCH_AFTER_SECONDS) {
            touch(state, row.id, now).await?;
        }
        row.into_session()
    }
}

async fn touch(state: &AppState, id: i64, now: DateTime<Utc>) -> Result<(), DbErr> {
    db::rows::exec(
        &state.db,
        &web_sessions::Entity::update_many()
            .col_expr(web_sessions::Column::LastSeenAt, now.into())
            .filter(web_sessions::Column::Id.eq(id)),
    )
    .await
    .map(|_| ())
}

async fn end(state: &AppState, id: i64) -> Result<(), DbErr> {
    db::rows::exec(
        &state.db,
        &web_sessions::Entity::delete_many().filter(web_sessions::Column::Id.eq(id)),
    )
    .await
    .map(|_| ())
}

/// The form of `POST /web/signout`.
#[derive(Debug, serde::Deserialize)]
pub struct SignOutForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
}

/// `POST /web/signout`: ends the session, clears the cookie, and says so.
pub async fn sign_out(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(form): axum::Form<SignOutForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    end(&state, session.id).await?;
    audit::record(
        &state.db,
        AuditEntry {
            tenant_id: Some(session.principal.tenant),
            actor: &session.principal.actor(),
            action: "web.sign_out",
            target: None,
            before: None,
            after: None,
        },
    )
    .await?;
    let notice = super::Notice::new(
        "You are signed out",
        &["You signed out of Parent Connection. Close the browser on a shared computer."],
    );
    Ok((cookie(&state, "", true), notice).into_response())
}

/// The form of `POST /web/session` from a browser: the token pasted into the sign-in page.
#[derive(Debug, Default, serde::Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /web/session?next=…` with `Authorization: Bearer <token>` (integrations, tests), or
/// a form with a `token` field (the development sign-in form of `/signin`): opens a page
/// session for the token's person or guardian and answers `303` to `next` (default `/`)
/// with the cookie. Only when `web.token_signin` is on (otherwise 404, as if the route did
/// not exist); an app-only token, or a token that does not verify, is refused.
pub async fn token_sign_in(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<NextQuery>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    if !state.config.web.token_signin {
        return Err(PageError::NotFound);
    }
    let form: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let from_form = (!form.token.trim().is_empty())
        .then(|| HeaderValue::from_str(&format!("Bearer {}", form.token.trim())).ok())
        .flatten();
    let authorization = headers.get(AUTHORIZATION).or(from_form.as_ref());
    let next = query.next.or(form.next);
    let principal = match Credential::read(authorization, &state.auth) {
        Credential::Verified(token) => {
            let tenant = match crate::domain::TenantSlug::parse(&token.tenant_slug) {
                Ok(slug) => state.tenants.id(&state.db, slug.as_str()).await?,
                Err(_) => None,
            };
            let Some(tenant) = tenant else {
                return Err(PageError::Unauthenticated);
            };
            Principal {
                tenant,
                tenant_slug: token.tenant_slug.clone(),
                identity: token.identity.clone(),
                via: Via::Web,
            }
        }
        _ => return Err(PageError::Unauthenticated),
    };
    if matches!(principal.identity, Identity::App { .. }) {
        return Err(PageError::Forbidden(
            "An app-only credential cannot open a page session.",
        ));
    }
    let cookie = start(&state, &principal, "token").await?;
    let target = local_path(next.as_deref());
    Ok((StatusCode::SEE_OTHER, cookie, Redirect::to(&target)).into_response())
}

/// `?next=` of the sign-in routes: where to go once signed in.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NextQuery {
    /// A local path ([`local_path`]).
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            local_path(Some("/admin/settings?x=1")),
            "/admin/settings?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "admin",
            "",
            "/a\nb",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_cookie_is_read_by_name_only() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("other=1; pc_session=abc; x=y"),
        );
        assert_eq!(session_token(&headers, COOKIE_NAME), Some("abc"));
        assert_eq!(session_token(&headers, SECURE_COOKIE_NAME), None);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
