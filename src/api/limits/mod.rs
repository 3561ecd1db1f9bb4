//! Rate limits (docs/api.md, "Rate limits"): one limiter per client address ([`client`]:
//! the peer, or the client a trusted proxy reports) and one per verified token subject
//! (tenant + subject of the JWT), answering over-limit requests with our JSON error,
//! `429 rate_limited`, and `Retry-After`.
//!
//! Every API request counts against its client address first, so a refused request costs
//! no token verification. The bearer token is then verified once, by [`authenticate`],
//! which keeps the outcome in the request for the [`Principal`](crate::auth::Principal)
//! extractor. A verified request also counts against its subject, whichever of the
//! subject's tokens it carries; a request whose token does not verify, or that has none,
//! counts against its address only, so made-up tokens cannot open new buckets.

pub mod client;

use super::error::{ApiError, code_for_status};
use crate::auth::{Credential, Verifier};
use crate::config::ApiConfig;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use client::{ClientHeader, ClientResolver, TrustedProxies};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// Keys requests on their client address ([`client`]; IPv6 per /64).
#[derive(Debug, Clone)]
pub struct ClientKeyExtractor(Arc<ClientResolver>);

impl KeyExtractor for ClientKeyExtractor {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .ok_or(GovernorError::UnableToExtractKey)?;
        Ok(client::limit_key(self.0.client(peer, req.headers())))
    }
}

type Shared<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, NoOpMiddleware>;
type ClientConfig = GovernorConfig<ClientKeyExtractor, NoOpMiddleware>;

/// `per_second` sustained requests with `burst`; `None` when the rate is 0.
fn quota(per_second: u64, burst: u32) -> Option<Quota> {
    if per_second == 0 {
        return None;
    }
    let period = Duration::from_nanos(1_000_000_000 / per_second.min(1_000_000_000));
    let burst = NonZeroU32::new(burst.max(1))?;
    Quota::with_period(period).map(|q| q.allow_burst(burst))
}

/// The client resolver of `[api]`. The start-up checks refuse a malformed
/// `trusted_proxies` or `client_address_header`; a configuration that skipped them trusts
/// no proxy (forwarding headers are then ignored, never believed).
fn resolver(config: &ApiConfig) -> ClientResolver {
    let proxies = TrustedProxies::parse(&config.trusted_proxies);
    let header = ClientHeader::parse(&config.client_address_header);
    match (proxies, header) {
        (Ok(proxies), Ok(header)) => ClientResolver::new(proxies, header),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(
                error = %e,
                "api.trusted_proxies or api.client_address_header is malformed: no proxy is trusted"
            );
            ClientResolver::default()
        }
    }
}

/// The per-address limiter of `[api]`; `None` when its rate is 0.
fn client_limiter(config: &ApiConfig) -> Option<Arc<ClientConfig>> {
    let quota = quota(config.client_requests_per_second, config.client_burst)?;
    GovernorConfigBuilder::default()
        .period(quota.replenish_interval())
        .burst_size(quota.burst_size().get())
        .key_extractor(ClientKeyExtractor(Arc::new(resolver(config))))
        .finish()
        .map(Arc::new)
}

/// What [`authenticate`] needs: the verifier, and the per-subject limiter (when on).
struct Subjects {
    verifier: Arc<Verifier>,
    limiter: Option<Arc<Shared<u64>>>,
    // Keys are a keyed hash of (tenant, kind, subject): fixed size, no copy of the strings
    // per request, not predictable from outside.
    hasher: RandomState,
}

/// Puts the API's limits on `router` (module docs): the per-address limiter outermost,
/// then [`authenticate`] with the per-subject limiter.
pub fn protect_api<S>(router: Router<S>, config: &ApiConfig, verifier: Arc<Verifier>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let subjects = Arc::new(Subjects {
        verifier,
        limiter: quota(config.token_requests_per_second, config.token_burst)
            .map(|quota| Arc::new(RateLimiter::keyed(quota))),
        hasher: RandomState::new(),
    });
    let client = client_limiter(config);
    if client.is_none() || subjects.limiter.is_none() {
        tracing::warn!("a rate limit is off: a rate in [api] is not positive");
    }
    forget_idle_keys(
        client.as_ref().map(|c| Arc::downgrade(c.limiter())),
        subjects.limiter.as_ref().map(Arc::downgrade),
    );
    let router = router.layer(middleware::from_fn_with_state(subjects, authenticate));
    match client {
        Some(client) => router.layer(GovernorLayer::new(client).error_handler(error_response)),
        None => router,
    }
}

/// Puts the per-address limit on the pages (their own buckets, the API's budget).
pub fn protect_pages<S>(router: Router<S>, config: &ApiConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let Some(client) = client_limiter(config) else {
        return router;
    };
    forget_idle_keys(Some(Arc::downgrade(client.limiter())), None);
    router.layer(GovernorLayer::new(client).error_handler(error_response))
}

/// Verifies the request's bearer token once and keeps the outcome (a [`Credential`]) in
/// the request; a verified request then counts against its subject's budget.
async fn authenticate(
    State(subjects): State<Arc<Subjects>>,
    mut request: Request,
    next: Next,
) -> Response<Body> {
    let credential = Credential::read(
        request.headers().get(header::AUTHORIZATION),
        &subjects.verifier,
    );
    if let (Some(limiter), Credential::Verified(token)) = (&subjects.limiter, &credential) {
        let key = subjects.hasher.hash_one(token.subject());
        if let Err(negative) = limiter.check_key(&key) {
            let wait_time = negative.wait_time_from(DefaultClock::default().now());
            return too_many(wait_time.as_secs());
        }
    }
    request.extensions_mut().insert(credential);
    next.run(request).await
}

/// The 429 of a refusal that asks to wait `wait_time` seconds (rounded up to 1).
fn too_many(wait_time: u64) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-after", wait_time.into());
    error_response(GovernorError::TooManyRequests {
        wait_time,
        headers: Some(headers),
    })
}

/// Every minute, forgets keys that are back to a full burst (so memory does not grow with
/// the number of distinct clients and subjects ever seen); ends when no limiter is in use
/// any more. Needs a Tokio runtime; without one (a router built outside a runtime) keys
/// are kept.
fn forget_idle_keys(client: Option<Weak<Shared<IpAddr>>>, subject: Option<Weak<Shared<u64>>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let client = client.as_ref().and_then(Weak::upgrade);
            let subject = subject.as_ref().and_then(Weak::upgrade);
            if client.is_none() && subject.is_none() {
                return;
            }
            if let Some(client) = client {
                forget(&client);
            }
            if let Some(subject) = subject {
                forget(&subject);
            }
        }
    });
}

fn forget<K: std::hash::Hash + Eq + Clone>(limiter: &Shared<K>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_follow_the_configuration() {
        assert!(quota(0, 10).is_none());
        let q = quota(1000, 3000).unwrap();
        assert_eq!(q.replenish_interval(), Duration::from_millis(1));
        assert_eq!(q.burst_size().get(), 3000);
        assert_eq!(quota(20, 0).unwrap().burst_size().get(), 1);
        assert_eq!(
            quota(u64::MAX, 1).unwrap().replenish_interval(),
            Duration::from_nanos(1)
        );
    }

    #[test]
    fn idle_keys_are_forgotten() {
        let limiter: Shared<u64> = RateLimiter::keyed(quota(1000, 1).unwrap());
        for key in 0..100 {
            assert!(limiter.check_key(&key).is_ok());
        }
        assert_eq!(limiter.len(), 100);
        // One cell comes back every millisecond; any wait past that frees every key.
        std::thread::sleep(Duration::from_millis(20));
        forget(&limiter);
        assert_eq!(limiter.len(), 0);
    }
}
