//! Rate limits (tower-governor): one limiter per client address and one per bearer token,
//! answering over-limit requests with our JSON error, `429 rate_limited`, and `Retry-After`.

use super::error::{ApiError, code_for_status};
use crate::config::ApiConfig;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use governor::RateLimiter;
use governor::clock::DefaultClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tower_governor::GovernorError;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::{KeyExtractor, PeerIpKeyExtractor};

/// Rate-limit key of the per-token limiter: a hash of the bearer token (the token itself
/// is not kept), or the client address for requests without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKey {
    /// Hash of a bearer token.
    Token(u64),
    /// Peer address (no token).
    Client(IpAddr),
}

/// Extracts [`TokenKey`]s.
#[derive(Debug, Clone, Copy)]
pub struct TokenKeyExtractor;

impl KeyExtractor for TokenKeyExtractor {
    type Key = TokenKey;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match token {
            Some(token) => {
                let mut hasher = DefaultHasher::new();
                token.hash(&mut hasher);
                Ok(TokenKey::Token(hasher.finish()))
            }
            None => PeerIpKeyExtractor.extract(req).map(TokenKey::Client),
        }
    }
}

type Config<K> = GovernorConfig<K, NoOpMiddleware>;
type Shared<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, NoOpMiddleware>;

/// A limiter config of `per_second` sustained requests with `burst`.
fn config<K: KeyExtractor>(key: K, per_second: u64, burst: u32) -> Option<Config<K>> {
    let period = Duration::from_nanos(1_000_000_000 / per_second.clamp(1, 1_000_000_000));
    GovernorConfigBuilder::default()
        .period(period)
        .burst_size(burst.max(1))
        .key_extractor(key)
        .finish()
}

/// The two limiter configurations.
pub struct Limiters {
    /// Per client address.
    pub client: Arc<Config<PeerIpKeyExtractor>>,
    /// Per bearer token.
    pub token: Arc<Config<TokenKeyExtractor>>,
}

impl Limiters {
    /// From `[api]`; starts a task that forgets idle keys while the limiters live. `None`
    /// when a rate is not positive.
    pub fn new(config: &ApiConfig) -> Option<Self> {
        let limiters = Self {
            client: Arc::new(self::config(
                PeerIpKeyExtractor,
                config.client_requests_per_second,
                config.client_burst,
            )?),
            token: Arc::new(self::config(
                TokenKeyExtractor,
                config.token_requests_per_second,
                config.token_burst,
            )?),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = Arc::downgrade(limiters.client.limiter());
            let token = Arc::downgrade(limiters.token.limiter());
            runtime.spawn(forget_idle(client, token));
        }
        Some(limiters)
    }
}

/// Every minute, forgets keys that are back to a full burst; ends when neither limiter is
/// in use any more (the pages keep only the client limiter).
async fn forget_idle(client: Weak<Shared<IpAddr>>, token: Weak<Shared<TokenKey>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let (client, token) = (client.upgrade(), token.upgrade());
        if client.is_none() && token.is_none() {
            return;
        }
        if let Some(client) = client {
            client.retain_recent();
        }
        if let Some(token) = token {
            token.retain_recent();
        }
    }
}

/// Our JSON error for a limiter's refusal.
pub fn error_response(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, headers } => {
            let wait = wait_time.max(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests: retry in {wait} s"),
            )
            .with_details(serde_json::json!({ "retryAfterSeconds": wait }))
            .into_response();
            if let Some(headers) = headers {
                for (name, value) in &headers {
                    if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                        response.headers_mut().insert(name.clone(), value.clone());
                    }
                }
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        GovernorError::UnableToExtractKey => {
            ApiError::internal("rate limiter: no client address (serve with connect info)")
                .into_response()
        }
        GovernorError::Other { code, msg, .. } => ApiError::new(
            code,
            code_for_status(code),
            msg.unwrap_or_else(|| "request refused".into()),
        )
        .into_response(),
    }
}
