//! Staff sign-in with the district's OpenID Connect provider (issue 18): the authorization
//! code flow with PKCE (S256), `state` and `nonce`, through the `openidconnect` crate over
//! the project's reqwest (rustls with the ring provider; redirects are not followed).
//!
//! - `GET /web/oidc/start?next=…` ([`start`]) discovers the issuer (cached: [`Discovery`]),
//!   keeps the attempt server-side (`oidc_attempts`: state, PKCE verifier, nonce, next),
//!   binds it to the browser with a short-lived `HttpOnly` cookie holding the state, and
//!   redirects (303) to the provider.
//! - `GET /web/oidc/callback` ([`callback`]) takes the attempt (single use, at most
//!   [`ATTEMPT_LIFETIME_MINUTES`] old, the same browser), exchanges the code with the PKCE
//!   verifier, verifies the ID token (signature with the provider's JWKS, issuer, audience,
//!   nonce, expiry), maps its claims to a [`Principal`] ([`Settings`]), starts a session
//!   and redirects (303) to `next`.
//!
//! Every failure a person can meet is a page saying what went wrong with a "Try again"
//! link: the provider's `error=…`, a missing, used, expired or foreign `state`, an
//! unreachable provider, a token that does not verify (502), and a verified person the
//! service cannot admit (403: an unknown tenant, no user id, no mapped role).

use super::{Notice, internal};
use crate::api::AppState;
use crate::auth::{Identity, Principal, Role, Via};
use crate::config::WebConfig;
use crate::entities::oidc_attempts;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::session;

/// How long a started sign-in may take at the provider, minutes.
pub const ATTEMPT_LIFETIME_MINUTES: i64 = 10;

/// The cookie binding an attempt to the browser that started it (its `state`).
pub const STATE_COOKIE: &str = "pc_oidc_state";

/// The callback path, appended to `web.public_url` for the redirect URI.
pub const CALLBACK_PATH: &str = "/web/oidc/callback";

/// How long discovered provider metadata (and its JWKS) is used before it is read again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Where the tenant of a sign-in comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    /// Every sign-in belongs to this tenant (a district's own provider).
    Fixed(String),
    /// The ID token claim with this name holds the tenant slug.
    Claim(String),
}

/// `[web.oidc]` parsed: a configured provider and the claim mapping.
#[derive(Clone)]
pub struct Settings {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect: RedirectUrl,
    scopes: Vec<String>,
    /// Where the tenant comes from.
    pub tenant: TenantSource,
    /// The claim holding the staff member's SIS source id.
    pub user_claim: String,
    /// The claim holding the roles.
    pub roles_claim: String,
    /// The provider's role values and ours.
    pub roles: BTreeMap<String, Role>,
}

/// Why `[web.oidc]` cannot be used: the key and what it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingsError {
    /// The key (`web.oidc.issuer`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn settings_error(key: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key: key.into(),
        message: message.into(),
    }
}

fn nonempty(key: &str, value: &str) -> Result<String, SettingsError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(settings_error(
            key,
            "is empty; it is needed when web.oidc.issuer is set",
        ));
    }
    Ok(value.to_string())
}

impl Settings {
    /// The staff sign-in settings of `web`: `None` when `web.oidc.issuer` is empty (off).
    pub fn from_config(web: &WebConfig) -> Result<Option<Self>, SettingsError> {
        let oidc = &web.oidc;
        let issuer = oidc.issuer.trim();
        if issuer.is_empty() {
            return Ok(None);
        }
        let url = reqwest::Url::parse(issuer)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
        if url.is_none() {
            return Err(settings_error(
                "web.oidc.issuer",
                format!("'{issuer}' is not an http(s) URL"),
            ));
        }
        let redirect = format!(
            "{}{CALLBACK_PATH}",
            web.public_url.trim().trim_end_matches('/')
        );
        let redirect = RedirectUrl::new(redirect.clone()).map_err(|e| {
            settings_error("web.public_url", format!("'{redirect}' is not a URL: {e}"))
        })?;
        let secret = oidc.client_secret.trim();
        let tenant = match oidc.tenant.trim() {
            "" => TenantSource::Claim(nonempty("web.oidc.tenant_claim", &oidc.tenant_claim)?),
            slug => TenantSource::Fixed(slug.to_string()),
        };
        let mut roles = BTreeMap::new();
        for (value, role) in &oidc.roles {
            let role = role
                .parse::<Role>()
                .map_err(|e| settings_error("web.oidc.roles", format!("\"{value}\" = {e}")))?;
            roles.insert(value.clone(), role);
        }
        Ok(Some(Self {
            issuer: IssuerUrl::new(issuer.to_string())
                .map_err(|e| settings_error("web.oidc.issuer", e.to_string()))?,
            client_id: ClientId::new(nonempty("web.oidc.client_id", &oidc.client_id)?),
            client_secret: (!secret.is_empty()).then(|| ClientSecret::new(secret.to_string())),
            redirect,
            scopes: oidc
                .scopes
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != "openid")
                .collect(),
            tenant,
            user_claim: nonempty("web.oidc.user_claim", &oidc.user_claim)?,
            roles_claim: nonempty("web.oidc.roles_claim", &oidc.roles_claim)?,
            roles,
        }))
    }

    /// The person the verified ID token `claims` (its JSON payload) stands for: the tenant
    /// slug, the source id and the mapped roles, or what is missing.
    pub fn person(&self, claims: &Value) -> Result<Person, Refusal> {
        let tenant_slug = match &self.tenant {
            TenantSource::Fixed(slug) => slug.clone(),
            TenantSource::Claim(name) => {
                text_claim(claims, name).ok_or_else(|| Refusal::NoTenant(name.clone()))?
            }
        };
        let source_id = text_claim(claims, &self.user_claim)
            .ok_or_else(|| Refusal::NoUser(self.user_claim.clone()))?;
        let given: Vec<String> = match claim(claims, &self.roles_claim) {
            Some(Value::Array(values)) => values.iter().filter_map(text).collect(),
            Some(value) => text(value).into_iter().collect(),
            None => Vec::new(),
        };
        let mut roles: Vec<Role> = Vec::new();
        for role in given.iter().filter_map(|value| self.roles.get(value)) {
            if !roles.contains(role) {
                roles.push(*role);
            }
        }
        if roles.is_empty() {
            return Err(Refusal::NoRole {
                claim: self.roles_claim.clone(),
                given,
            });
        }
        Ok(Person {
            tenant_slug,
            source_id,
            roles,
        })
    }
}

/// A person whose ID token verified, before their tenant is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The tenant slug.
    pub tenant_slug: String,
    /// The staff SIS source id.
    pub source_id: String,
    /// Our roles (at least one).
    pub roles: Vec<Role>,
}

/// Why a verified person cannot sign in (a 403 page naming what is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant claim (named) is missing or empty.
    NoTenant(String),
    /// The tenant slug names no tenant.
    UnknownTenant(String),
    /// The user claim (named) is missing or empty.
    NoUser(String),
    /// No value of the roles claim maps to one of our roles.
    NoRole {
        /// The roles claim.
        claim: String,
        /// The values it held.
        given: Vec<String>,
    },
}

impl Refusal {
    fn lines(&self) -> Vec<String> {
        let first = match self {
            Refusal::NoTenant(claim) => format!(
                "Your district account does not say which district you belong to (the claim '{claim}' is missing)."
            ),
            Refusal::UnknownTenant(slug) => format!(
                "Your district account belongs to '{slug}', which is not set up in Parent Connection."
            ),
            Refusal::NoUser(claim) => format!(
                "Your district account does not carry your staff id (the claim '{claim}' is missing)."
            ),
            Refusal::NoRole { claim, given } if given.is_empty() => format!(
                "Your district account has no role in Parent Connection (the claim '{claim}' is missing or empty)."
            ),
            Refusal::NoRole { claim, given } => format!(
                "Your district account has no role in Parent Connection: the roles it lists in '{claim}' ({}) are not ones Parent Connection uses.",
                given.join(", ")
            ),
        };
        vec![
            first,
            "Ask your district's administrator to check your account, then try again.".into(),
        ]
    }
}

/// A claim by name: the top-level claim, or else a dotted path into nested objects
/// (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    claims.get(name).or_else(|| {
        name.split('.')
            .try_fold(claims, |value, part| value.get(part))
    })
}

/// A text or number as trimmed, non-empty text.
fn text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn text_claim(claims: &Value, name: &str) -> Option<String> {
    claim(claims, name).and_then(text)
}

/// The provider's discovered metadata (with its JWKS), read on first use and again after
/// [`DISCOVERY_TTL`] or when an ID token's key is not in it (key rotation); and the HTTP
/// client that talks to the provider. One per process, in [`AppState`].
#[derive(Default)]
pub struct Discovery {
    http: std::sync::OnceLock<reqwest::Client>,
    cached: tokio::sync::Mutex<Option<(Instant, String, CoreProviderMetadata)>>,
}

/// The provider could not be used: unreachable, or its answer did not verify.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Discovery failed.
    #[error("discovery of the OIDC issuer failed: {0}")]
    Discovery(String),
    /// The token endpoint failed or refused the code.
    #[error("the OIDC code exchange failed: {0}")]
    Exchange(String),
    /// The token response held no ID token.
    #[error("the OIDC token response holds no ID token")]
    NoIdToken,
    /// The ID token did not verify.
    #[error("the OIDC ID token did not verify: {0}")]
    Verify(String),
}

/// A transport failure of the HTTP client given to `openidconnect`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl Discovery {
    fn http(&self) -> reqwest::Client {
        self.http
            .get_or_init(|| {
                crate::tls::install_crypto_provider();
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .connect_timeout(Duration::from_secs(5))
                    // Following redirects would let a provider's answer point us anywhere.
                    .redirect(reqwest::redirect::Policy::none())
                    // Few requests, seconds apart (discovery, then one code exchange per
                    // sign-in): a pooled connection would mostly sit idle until the
                    // provider closes it, so none is kept.
                    .pool_max_idle_per_host(0)
                    .user_agent(concat!("parent-connection/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .unwrap_or_default()
            })
            .clone()
    }

    /// The metadata of `settings`' issuer; `fresh` reads it again.
    async fn metadata(
        &self,
        settings: &Settings,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, issuer, metadata)) = cached.as_ref()
            && !fresh
            && issuer == settings.issuer.as_str()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(metadata.clone());
        }
        let http = self.http();
        let client = move |request| send(http.clone(), request);
        let metadata = CoreProviderMetadata::discover_async(settings.issuer.clone(), &client)
            .await
            .map_err(|e| ProviderError::Discovery(chain(&e)))?;
        *cached = Some((
            Instant::now(),
            settings.issuer.to_string(),
            metadata.clone(),
        ));
        Ok(metadata)
    }

    /// Exchanges `code` and verifies the ID token; answers its JSON payload.
    async fn exchange(
        &self,
        settings: &Settings,
        code: String,
        verifier: String,
        nonce: &Nonce,
    ) -> Result<Value, ProviderError> {
        let metadata = self.metadata(settings, false).await?;
        let http = self.http();
        let send_with = move |request| send(http.clone(), request);
        let response = client(settings, metadata.clone())
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ProviderError::Exchange(chain(&e)))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&send_with)
            .await
            .map_err(|e| ProviderError::Exchange(chain(&e)))?;
        let id_token = response.id_token().ok_or(ProviderError::NoIdToken)?;
        let verified = {
            let client = client(settings, metadata);
            id_token
                .claims(&client.id_token_verifier(), nonce)
                .map(|_| ())
        };
        if let Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) = verified {
            // The provider may have rotated its keys since discovery: read them again once.
            let client = client(settings, self.metadata(settings, true).await?);
            id_token
                .claims(&client.id_token_verifier(), nonce)
                .map_err(|e| ProviderError::Verify(chain(&e)))?;
        } else {
            verified.map_err(|e| ProviderError::Verify(chain(&e)))?;
        }
        payload(&id_token.to_string())
    }
}

/// The JSON payload of a compact JWS whose signature was verified (the same bytes), so
/// every claim can be read by name, standard or not.
fn payload(jwt: &str) -> Result<Value, ProviderError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| ProviderError::Verify("the ID token is not a JWS".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| ProviderError::Verify(format!("the ID token's payload: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ProviderError::Verify(format!("the ID token's payload: {e}")))
}

type ConfiguredClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The client for `metadata`, with our redirect URI, authenticating at the token endpoint
/// as the provider supports (HTTP Basic, else the form body).
fn client(settings: &Settings, metadata: CoreProviderMetadata) -> ConfiguredClient {
    let post_only = metadata
        .token_endpoint_auth_methods_supported()
        .is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
    let client = CoreClient::from_provider_metadata(
        metadata,
        settings.client_id.clone(),
        settings.client_secret.clone(),
    )
    .set_redirect_uri(settings.redirect.clone());
    if post_only {
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
    }
}

/// `openidconnect`'s HTTP client: one request through our reqwest.
async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let request = reqwest::Request::try_from(request).map_err(|e| HttpError(chain(&e)))?;
    let response = http
        .execute(request)
        .await
        .map_err(|e| HttpError(chain(&e)))?;
    let mut builder = axum::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await.map_err(|e| HttpError(chain(&e)))?;
    builder
        .body(body.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

/// An error with its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A sign-in problem page: what went wrong and a "Try again" link back to the sign-in
/// page (which comes back to `next`); it also clears the state cookie.
fn problem(status: StatusCode, title: &str, lines: Vec<String>, next: &str) -> Response {
    let mut page = Notice::new(title, &[]).with_link(&super::error::sign_in_url(next), "Try again");
    page.lines = lines;
    (status, AppendHeaders([clear_state_cookie()]), page).into_response()
}

fn unavailable(error: &ProviderError, next: &str) -> Response {
    tracing::warn!(error = %error, "staff sign-in with the OIDC provider failed");
    let lines = match error {
        ProviderError::Discovery(_) => vec![
            "The district's sign-in service could not be reached just now.".to_string(),
            "Please try again in a minute.".into(),
        ],
        _ => vec![
            "The district's sign-in service did not complete the sign-in (its answer could not be used).".to_string(),
            "Please try again. If it keeps happening, tell your district's administrator.".into(),
        ],
    };
    problem(StatusCode::BAD_GATEWAY, "Sign-in did not work", lines, next)
}

fn not_configured() -> Response {
    Notice::new(
        "Staff sign-in is not configured",
        &["This service has no district sign-in set up (web.oidc.issuer)."],
    )
    .with_status(StatusCode::NOT_FOUND)
}

/// The settings, or the page to answer when there are none.
fn settings_of(state: &AppState) -> Result<Settings, Box<Response>> {
    match Settings::from_config(&state.config.web) {
        Ok(Some(settings)) => Ok(settings),
        Ok(None) => Err(Box::new(not_configured())),
        Err(e) => Err(Box::new(internal(e))),
    }
}

fn cookie_attributes(state: &AppState) -> &'static str {
    if state.config.web.is_tls() {
        "; Path=/web/oidc/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/web/oidc/; HttpOnly; SameSite=Lax"
    }
}

fn clear_state_cookie() -> (header::HeaderName, HeaderValue) {
    (
        header::SET_COOKIE,
        HeaderValue::from_static(
            "pc_oidc_state=; Path=/web/oidc/; Max-Age=0; HttpOnly; SameSite=Lax",
        ),
    )
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Compares two texts in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// `GET /web/oidc/start` parameters.
#[derive(Debug, serde::Deserialize)]
pub struct StartQuery {
    /// Where to go once signed in (a local path).
    pub next: Option<String>,
}

/// Redirects to the provider, keeping the attempt server-side.
pub async fn start(State(state): State<AppState>, Query(query): Query<StartQuery>) -> Response {
    let next = session::local_path(query.next.as_deref());
    let settings = match settings_of(&state) {
        Ok(settings) => settings,
        Err(page) => return *page,
    };
    let metadata = match state.oidc.metadata(&settings, false).await {
        Ok(metadata) => metadata,
        Err(e) => return unavailable(&e, &next),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = client(&settings, metadata);
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in &settings.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    let now = chrono::Utc::now();
    let cutoff = now - chrono::Duration::minutes(ATTEMPT_LIFETIME_MINUTES);
    let purged = oidc_attempts::Entity::delete_many()
        .filter(oidc_attempts::Column::CreatedAt.lt(cutoff))
        .exec(&state.db)
        .await;
    let row = oidc_attempts::ActiveModel {
        state: Set(csrf.secret().clone()),
        pkce_verifier: Set(verifier.secret().clone()),
        nonce: Set(nonce.secret().clone()),
        next: Set(next),
        created_at: Set(now),
        ..Default::default()
    };
    if let Err(e) = purged.and(row.insert(&state.db).await.map(|_| ())) {
        return internal(e);
    }
    let cookie = format!(
        "{STATE_COOKIE}={}; Max-Age={}{}",
        csrf.secret(),
        ATTEMPT_LIFETIME_MINUTES * 60,
        cookie_attributes(&state)
    );
    let Ok(cookie) = HeaderValue::from_str(&cookie) else {
        return internal(HttpError("the state cookie is not a header value".into()));
    };
    (
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Redirect::to(url.as_str()),
    )
        .into_response()
}

/// `GET /web/oidc/callback` parameters.
#[derive(Debug, serde::Deserialize)]
pub struct CallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// Our `state`.
    pub state: Option<String>,
    /// The provider's error code (`access_denied`).
    pub error: Option<String>,
    /// The provider's issuer (RFC 9207), when it sends it.
    pub iss: Option<String>,
}

/// Why an attempt cannot be finished.
enum Attempt {
    Found(oidc_attempts::Model),
    Unknown,
    Expired(oidc_attempts::Model),
}

/// Takes (deletes) the attempt with `state`: of two callbacks with one state, one finds it.
async fn take(state: &AppState, key: &str) -> Result<Attempt, sea_orm::DbErr> {
    let Some(row) = oidc_attempts::Entity::find()
        .filter(oidc_attempts::Column::State.eq(key))
        .one(&state.db)
        .await?
    else {
        return Ok(Attempt::Unknown);
    };
    let deleted = oidc_attempts::Entity::delete_by_id(row.id)
        .exec(&state.db)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(Attempt::Unknown);
    }
    let age = chrono::Utc::now() - row.created_at;
    if age > chrono::Duration::minutes(ATTEMPT_LIFETIME_MINUTES) {
        return Ok(Attempt::Expired(row));
    }
    Ok(Attempt::Found(row))
}

fn stale(next: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "This sign-in cannot be finished",
        vec![
            "This sign-in link was already used, has expired, or was started in another browser."
                .into(),
            "Start again from the sign-in page.".into(),
        ],
        next,
    )
}

/// Finishes the sign-in: checks the attempt, exchanges the code, verifies the ID token,
/// maps it to a principal and starts the session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(key) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return stale("/");
    };
    let bound = cookie(&headers, STATE_COOKIE).is_some_and(|c| same(c, key));
    let attempt = match take(&state, key).await {
        Ok(attempt) => attempt,
        Err(e) => return internal(e),
    };
    let row = match attempt {
        Attempt::Found(row) if bound => row,
        Attempt::Found(row) | Attempt::Expired(row) => return stale(&row.next),
        Attempt::Unknown => return stale("/"),
    };
    if let Some(error) = query.error.as_deref() {
        return provider_refused(error, &row.next);
    }
    let settings = match settings_of(&state) {
        Ok(settings) => settings,
        Err(page) => return *page,
    };
    if query.iss.as_deref().is_some_and(|iss| {
        iss.trim_end_matches('/') != settings.issuer.as_str().trim_end_matches('/')
    }) {
        return stale(&row.next);
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return stale(&row.next);
    };
    let nonce = Nonce::new(row.nonce.clone());
    let claims = match state
        .oidc
        .exchange(&settings, code, row.pkce_verifier.clone(), &nonce)
        .await
    {
        Ok(claims) => claims,
        Err(e) => return unavailable(&e, &row.next),
    };
    let principal = match principal(&state, &settings, &claims).await {
        Ok(Ok(principal)) => principal,
        Ok(Err(refusal)) => {
            tracing::info!(?refusal, "staff sign-in refused");
            return problem(
                StatusCode::FORBIDDEN,
                "You cannot sign in here",
                refusal.lines(),
                &row.next,
            );
        }
        Err(e) => return internal(e),
    };
    match session::start(&state, &principal, "oidc").await {
        Ok(cookie) => (
            cookie,
            AppendHeaders([clear_state_cookie()]),
            Redirect::to(&row.next),
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

/// The page for the provider's `error=…`.
fn provider_refused(error: &str, next: &str) -> Response {
    let (status, lines) = if error == "access_denied" {
        (
            StatusCode::FORBIDDEN,
            vec!["The district's sign-in service did not let you sign in (you may have cancelled it).".to_string()],
        )
    } else {
        let shown: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(60)
            .collect();
        (
            StatusCode::BAD_GATEWAY,
            vec![format!(
                "The district's sign-in service reported a problem ({shown})."
            )],
        )
    };
    problem(status, "Sign-in did not work", lines, next)
}

/// The principal of the verified `claims`, or why they cannot sign in.
async fn principal(
    state: &AppState,
    settings: &Settings,
    claims: &Value,
) -> Result<Result<Principal, Refusal>, sea_orm::DbErr> {
    let person = match settings.person(claims) {
        Ok(person) => person,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let Some(tenant) = state.tenants.id(&state.db, &person.tenant_slug).await? else {
        return Ok(Err(Refusal::UnknownTenant(person.tenant_slug)));
    };
    Ok(Ok(Principal {
        tenant,
        tenant_slug: person.tenant_slug,
        identity: Identity::User {
            source_id: person.source_id,
            roles: person.roles,
        },
        via: Via::Web,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn web(change: impl FnOnce(&mut crate::config::OidcConfig)) -> WebConfig {
        let mut web = WebConfig::default();
        web.oidc.issuer = "https://login.example.org/district".into();
        web.oidc.client_id = "pc".into();
        change(&mut web.oidc);
        web
    }

    #[test]
    fn settings_parse_and_name_the_bad_key() {
        assert!(
            Settings::from_config(&WebConfig::default())
                .unwrap()
                .is_none()
        );
        let settings = Settings::from_config(&web(|_| {})).unwrap().unwrap();
        assert_eq!(settings.tenant, TenantSource::Claim("tenant".into()));
        for role in Role::ALL {
            assert_eq!(
                settings.roles.get(role.as_str()),
                Some(&role),
                "the default mapping"
            );
        }
        assert_eq!(settings.roles.len(), Role::ALL.len());
        assert_eq!(
            settings.redirect.as_str(),
            "http://localhost:8080/web/oidc/callback"
        );
        let fixed = Settings::from_config(&web(|o| o.tenant = "nyc".into()))
            .unwrap()
            .unwrap();
        assert_eq!(fixed.tenant, TenantSource::Fixed("nyc".into()));
        for (change, key) in [
            (
                Box::new(|o: &mut crate::config::OidcConfig| o.issuer = "login".into())
                    as Box<dyn FnOnce(&mut crate::config::OidcConfig)>,
                "web.oidc.issuer",
            ),
            (Box::new(|o| o.client_id = " ".into()), "web.oidc.client_id"),
            (
                Box::new(|o| o.user_claim = String::new()),
                "web.oidc.user_claim",
            ),
            (
                Box::new(|o| {
                    o.roles.insert("Staff".into(), "admin".into());
                }),
                "web.oidc.roles",
            ),
        ] {
            let error = Settings::from_config(&web(change)).err().expect(key);
            assert_eq!(error.key, key, "{error}");
        }
    }

    #[test]
    fn claims_map_to_a_person_or_name_what_is_missing() {
        let mut settings = Settings::from_config(&web(|o| {
            o.roles_claim = "realm_access.roles".into();
            o.user_claim = "employee_id".into();
            o.roles = [("Staff.Teacher", "teacher"), ("Admin", "tenant-admin")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
        }))
        .unwrap()
        .unwrap();
        let claims = json!({"sub": "x", "tenant": "nyc", "employee_id": 42,
            "realm_access": {"roles": ["Staff.Teacher", "Other", "Staff.Teacher", "Admin"]}});
        assert_eq!(
            settings.person(&claims),
            Ok(Person {
                tenant_slug: "nyc".into(),
                source_id: "42".into(),
                roles: vec![Role::Teacher, Role::TenantAdmin],
            })
        );
        let one =
            json!({"tenant": "nyc", "employee_id": "t-1", "realm_access": {"roles": "Admin"}});
        assert_eq!(
            settings.person(&one).unwrap().roles,
            vec![Role::TenantAdmin]
        );
        assert_eq!(
            settings.person(&json!({"employee_id": "t"})),
            Err(Refusal::NoTenant("tenant".into()))
        );
        assert_eq!(
            settings.person(&json!({"tenant": "nyc", "employee_id": " "})),
            Err(Refusal::NoUser("employee_id".into()))
        );
        assert_eq!(
            settings.person(&json!({"tenant": "nyc", "employee_id": "t", "realm_access": {"roles": ["teacher"]}})),
            Err(Refusal::NoRole {
                claim: "realm_access.roles".into(),
                given: vec!["teacher".into()]
            })
        );
        settings.tenant = TenantSource::Fixed("bos".into());
        assert_eq!(settings.person(&claims).unwrap().tenant_slug, "bos");
    }

    #[test]
    fn the_state_cookie_is_read_and_compared() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; pc_oidc_state=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, STATE_COOKIE), Some("xyz"));
        assert!(same("xyz", "xyz") && !same("xyz", "xya") && !same("xyz", "xy"));
    }
}
