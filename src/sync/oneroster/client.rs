//! The HTTP side of a OneRoster 1.1 sync: OAuth2 client credentials, `limit`/`offset`
//! paging with the stop rules of SPEC §3.1, retries with backoff, and timeouts.
//!
//! Paging never follows `Link` headers: the offset advances by the rows actually received,
//! and the collection ends when it reaches `X-Total-Count`, or at an empty page when there
//! is no total. A page that only repeats records already received (a provider ignoring
//! `offset`), a URL asked twice, or more than `oneroster.max_pages` pages stops the run
//! with an error instead of looping.
//!
//! Requests go through the outbound guard ([`crate::outbound`]): the base and token URLs
//! must be public unless `outbound.allow_private`, checked on every request's resolved
//! address; a redirect is not followed (`provider_redirect`) and a body larger than
//! `outbound.max_response_bytes` is refused (`provider_too_large`).

use super::connection::{Connection, Secret};
use super::model::{Collection, Item, Pulled, User, parse_item};
use crate::config::{OneRosterConfig, OutboundConfig};
use crate::outbound::{OutboundError, Policy, ReadError};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Why the provider could not deliver the data; the run stops and nothing changes.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Connection refused, DNS, TLS, or a timeout, after the retries.
    #[error("the OneRoster provider is unreachable at {url}: {detail}")]
    Unreachable {
        /// The URL asked.
        url: String,
        /// What failed.
        detail: String,
    },
    /// An HTTP error status (after the retries for 429 and 5xx).
    #[error("the OneRoster provider answered HTTP {status} for {url}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body is not the JSON the collection needs.
    #[error("the OneRoster provider returned malformed JSON for {url}: {detail}")]
    Malformed {
        /// The URL asked.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The token endpoint or the API refused the credentials.
    #[error("OneRoster authentication failed: {0}")]
    Auth(String),
    /// Paging did not end by the rules.
    #[error("paging of /{collection} does not end: {detail}")]
    Loop {
        /// The collection.
        collection: &'static str,
        /// What was seen.
        detail: String,
    },
    /// The provider announced more rows than it delivered.
    #[error(
        "/{collection} stopped early: an empty page at offset {offset} while X-Total-Count is {total}"
    )]
    Truncated {
        /// The collection.
        collection: &'static str,
        /// Where the empty page came.
        offset: u64,
        /// The announced total.
        total: u64,
    },
    /// The base URL and a collection do not make a URL.
    #[error("the OneRoster base URL is not usable: {0}")]
    BadUrl(String),
    /// The outbound guard refused the request or its answer: an internal address, a
    /// redirect, a body past the cap.
    #[error("OneRoster request refused: {0}")]
    Outbound(OutboundError),
    /// A delta names more users it does not hold than `oneroster.max_delta_lookups`
    /// allows to fetch one by one.
    #[error(
        "the delta names {needed} users it does not hold, more than oneroster.max_delta_lookups ({limit}) allows to fetch one by one; nothing was changed: run a full sync (without --delta), or raise oneroster.max_delta_lookups"
    )]
    TooManyLookups {
        /// Users to look up.
        needed: u64,
        /// The limit.
        limit: u64,
    },
}

/// The code of a delta refused for [`ProviderError::TooManyLookups`].
pub const DELTA_TOO_LARGE: &str = "delta_too_large";

impl ProviderError {
    /// A stable code for reports (`provider_unreachable`, `provider_malformed`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "provider_unreachable",
            Self::Status { .. } => "provider_status",
            Self::Malformed { .. } => "provider_malformed",
            Self::Auth(_) => "provider_auth",
            Self::Loop { .. } => "provider_paging_loop",
            Self::Truncated { .. } => "provider_truncated",
            Self::BadUrl(_) => "provider_url",
            Self::Outbound(OutboundError::Redirect { .. }) => "provider_redirect",
            Self::Outbound(OutboundError::TooLarge { .. }) => "provider_too_large",
            Self::Outbound(_) => "provider_address_refused",
            Self::TooManyLookups { .. } => DELTA_TOO_LARGE,
        }
    }
}

/// Paging, retry and timeout settings of one run.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `limit` asked per page.
    pub page_size: u64,
    /// Most pages per collection.
    pub max_pages: u64,
    /// Retries per request.
    pub max_retries: u32,
    /// First backoff.
    pub retry_base: Duration,
    /// Longest wait between tries.
    pub retry_max: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Which addresses may be reached.
    pub outbound: Policy,
    /// Largest response body, bytes.
    pub max_body_bytes: usize,
}

impl ClientSettings {
    /// The settings of `config` with the connection's page size (capped by the maximum).
    pub fn new(config: &OneRosterConfig, page_size: u64) -> Self {
        Self {
            page_size: page_size.clamp(1, config.max_page_size.max(1)),
            max_pages: config.max_pages.max(1),
            max_retries: config.max_retries,
            retry_base: Duration::from_millis(config.retry_base_ms),
            retry_max: Duration::from_millis(config.retry_max_ms),
            request_timeout: Duration::from_secs(config.request_timeout_seconds.max(1)),
            connect_timeout: Duration::from_secs(config.connect_timeout_seconds.max(1)),
            outbound: Policy::default(),
            max_body_bytes: OutboundConfig::default().max_response_bytes,
        }
    }

    /// These settings under the `[outbound]` rules (without it: public addresses only,
    /// the default body cap).
    pub fn with_outbound(mut self, outbound: &OutboundConfig) -> Self {
        self.outbound = Policy::from_config(outbound);
        self.max_body_bytes = outbound.max_response_bytes;
        self
    }

    /// The wait before retry number `attempt` (0-based) when the server names none.
    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.retry_max)
    }
}

pub use crate::tls::install_crypto_provider;

struct Token {
    value: String,
    expires: Option<Instant>,
}

/// A response read whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A OneRoster client for one connection.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token_url: Url,
    client_id: String,
    secret: Secret,
    token: Option<Token>,
    settings: ClientSettings,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `connection` with `settings`.
    pub fn new(connection: &Connection, settings: ClientSettings) -> Result<Self, ProviderError> {
        let http = settings
            .outbound
            .client_builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("parent-connection/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::BadUrl(format!("cannot build the HTTP client: {e}")))?;
        let token_url = Url::parse(&connection.token_url)
            .map_err(|e| ProviderError::BadUrl(format!("{}: {e}", connection.token_url)))?;
        let base_url = Url::parse(connection.base_url.trim())
            .map_err(|e| ProviderError::BadUrl(format!("{}: {e}", connection.base_url)))?;
        for url in [&token_url, &base_url] {
            settings
                .outbound
                .check_url(url)
                .map_err(ProviderError::Outbound)?;
        }
        Ok(Self {
            http,
            base_url: connection.base_url.trim_end_matches('/').to_string(),
            token_url,
            client_id: connection.client_id.clone(),
            secret: connection.client_secret.clone(),
            token: None,
            settings,
        })
    }

    /// Reads a whole collection, page by page (`filter` is a OneRoster filter expression,
    /// e.g. `dateLastModified>'2026-01-01T00:00:00Z'`).
    pub async fn collection<T: Collection>(
        &mut self,
        filter: Option<&str>,
    ) -> Result<Pulled<T>, ProviderError> {
        let mut pulled = Pulled::default();
        let mut pager = Pager::<T>::new(filter);
        while let Some(page) = pager.next(self).await? {
            pulled.items.extend(page);
        }
        pulled.duplicates = pager.duplicates();
        Ok(pulled)
    }

    /// One user by id (`GET /users/{id}`); `None` when the provider does not know it.
    pub async fn user(&mut self, sourced_id: &str) -> Result<Option<Item<User>>, ProviderError> {
        let mut url = self.collection_url("users")?;
        url.path_segments_mut()
            .map_err(|_| ProviderError::BadUrl(self.base_url.clone()))?
            .push(sourced_id);
        let reply = self.get(&url).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_success(&url, &reply)?;
        let mut body: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| ProviderError::Malformed {
                url: crate::config::redact_url(url.as_str()),
                detail: e.to_string(),
            })?;
        match body.get_mut("user").map(serde_json::Value::take) {
            Some(value) if value.is_object() => Ok(Some(parse_item::<User>(value))),
            _ => Err(ProviderError::Malformed {
                url: crate::config::redact_url(url.as_str()),
                detail: "the body has no \"user\" object".into(),
            }),
        }
    }

    fn collection_url(&self, name: &str) -> Result<Url, ProviderError> {
        Url::parse(&format!("{}/{name}", self.base_url))
            .map_err(|e| ProviderError::BadUrl(format!("{}: {e}", self.base_url)))
    }

    fn page_url(
        &self,
        name: &str,
        offset: u64,
        filter: Option<&str>,
    ) -> Result<Url, ProviderError> {
        let mut url = self.collection_url(name)?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &self.settings.page_size.to_string());
            query.append_pair("offset", &offset.to_string());
            if let Some(filter) = filter {
                query.append_pair("filter", filter);
            }
        }
        Ok(url)
    }

    /// An authenticated GET; a 401 gets one fresh token and one more try.
    async fn get(&mut self, url: &Url) -> Result<Reply, ProviderError> {
        let mut refreshed = false;
        loop {
            let token = self.token().await?;
            let reply = self
                .execute(url, || {
                    self.http
                        .get(url.clone())
                        .bearer_auth(&token)
                        .header(ACCEPT, "application/json")
                })
                .await?;
            if reply.status != StatusCode::UNAUTHORIZED {
                return Ok(reply);
            }
            if refreshed {
                return Err(ProviderError::Auth(format!(
                    "{url} refused a fresh access token (HTTP 401)"
                )));
            }
            tracing::info!(%url, "access token refused; getting a new one");
            self.token = None;
            refreshed = true;
        }
    }

    /// The current access token, fetched when there is none or it is about to expire.
    async fn token(&mut self) -> Result<String, ProviderError> {
        let valid = self.token.as_ref().is_some_and(|t| {
            t.expires
                .is_none_or(|at| at > Instant::now() + Duration::from_secs(5))
        });
        if !valid {
            self.token = Some(self.fetch_token().await?);
        }
        Ok(self
            .token
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default())
    }

    async fn fetch_token(&self) -> Result<Token, ProviderError> {
        let url = self.token_url.clone();
        let reply = self
            .execute(&url, || {
                self.http
                    .post(url.clone())
                    .basic_auth(&self.client_id, Some(self.secret.expose()))
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body("grant_type=client_credentials")
            })
            .await?;
        let body: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
        if !reply.status.is_success() {
            // The OAuth2 error code (`invalid_client`, …) is safe to show; the body is not.
            let code = body
                .as_ref()
                .and_then(|b| b.get("error"))
                .and_then(|e| e.as_str())
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(ProviderError::Auth(format!(
                "the token endpoint {url} answered HTTP {}{code}; check the client id and secret",
                reply.status.as_u16()
            )));
        }
        let body = body.ok_or_else(|| ProviderError::Malformed {
            url: crate::config::redact_url(url.as_str()),
            detail: "the token response is not JSON".into(),
        })?;
        let value = body
            .get("access_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ProviderError::Malformed {
                url: crate::config::redact_url(url.as_str()),
                detail: "the token response has no access_token".into(),
            })?;
        let expires = body
            .get("expires_in")
            .and_then(|e| {
                e.as_f64()
                    .or_else(|| e.as_str().and_then(|s| s.parse().ok()))
            })
            .filter(|s| *s > 0.0)
            .map(|seconds| Instant::now() + Duration::from_secs_f64(seconds.min(86_400.0)));
        Ok(Token {
            value: value.to_string(),
            expires,
        })
    }

    /// Sends the request `build` makes, retrying transport errors, 429 and 5xx with
    /// backoff (honouring `Retry-After`), and reads the whole body.
    async fn execute(
        &self,
        url: &Url,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Reply, ProviderError> {
        let mut attempt = 0u32;
        loop {
            let outcome = match build().send().await {
                Ok(response) => {
                    crate::outbound::refuse_redirect(url.as_str(), &response)
                        .map_err(ProviderError::Outbound)?;
                    let (status, headers) = (response.status(), response.headers().clone());
                    match crate::outbound::read_capped(
                        url.as_str(),
                        response,
                        self.settings.max_body_bytes,
                    )
                    .await
                    {
                        Ok(body) => Ok(Reply {
                            status,
                            headers,
                            body,
                        }),
                        Err(ReadError::TooLarge(e)) => return Err(ProviderError::Outbound(e)),
                        Err(ReadError::Transport(e)) => Err(e),
                    }
                }
                Err(e) => match crate::outbound::refusal_in(&e) {
                    Some(refused) => return Err(ProviderError::Outbound(refused)),
                    None => Err(e),
                },
            };
            let wait = match outcome {
                Ok(reply) if retryable(reply.status) => {
                    if attempt >= self.settings.max_retries {
                        return Err(ProviderError::Status {
                            url: crate::config::redact_url(url.as_str()),
                            status: reply.status.as_u16(),
                        });
                    }
                    retry_after(&reply.headers).unwrap_or_else(|| self.settings.backoff(attempt))
                }
                Ok(reply) => return Ok(reply),
                Err(e) => {
                    if attempt >= self.settings.max_retries {
                        return Err(ProviderError::Unreachable {
                            url: crate::config::redact_url(url.as_str()),
                            detail: describe(&e),
                        });
                    }
                    self.settings.backoff(attempt)
                }
            };
            let wait = wait.min(self.settings.retry_max);
            tracing::info!(%url, attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "OneRoster request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// One collection read page by page with the stop rules of SPEC §3.1 (see the module
/// doc): what a streaming pull hands on page after page. Only the ids' hashes and the URLs
/// asked are kept, not the records.
#[derive(Debug)]
pub struct Pager<T> {
    filter: Option<String>,
    offset: u64,
    pages: u64,
    /// 64-bit hashes of the `sourcedId`s received (a million records cost ~16 MB, where
    /// the ids themselves would cost ~80 MB).
    seen_ids: crate::sync::fast::KeySet,
    seen_urls: HashSet<String>,
    duplicates: u64,
    done: bool,
    _records: std::marker::PhantomData<fn() -> T>,
}

impl<T: Collection> Pager<T> {
    /// A pager over `T` (`filter`: see [`Client::collection`]).
    pub fn new(filter: Option<&str>) -> Self {
        Self {
            filter: filter.map(str::to_string),
            offset: 0,
            pages: 0,
            seen_ids: Default::default(),
            seen_urls: HashSet::new(),
            duplicates: 0,
            done: false,
            _records: std::marker::PhantomData,
        }
    }

    /// Records skipped so far because an earlier page delivered their `sourcedId`.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The next page's records with their positions (1-based across pages), `None` once
    /// the collection is complete.
    pub async fn next(
        &mut self,
        client: &mut Client,
    ) -> Result<Option<Vec<(u64, Item<T>)>>, ProviderError> {
        if self.done {
            return Ok(None);
        }
        if self.pages >= client.settings.max_pages {
            return Err(ProviderError::Loop {
                collection: T::NAME,
                detail: format!(
                    "more than {} pages (oneroster.max_pages)",
                    client.settings.max_pages
                ),
            });
        }
        self.pages += 1;
        let offset = self.offset;
        let url = client.page_url(T::NAME, offset, self.filter.as_deref())?;
        if !self.seen_urls.insert(url.to_string()) {
            return Err(ProviderError::Loop {
                collection: T::NAME,
                detail: format!("{url} was asked for twice"),
            });
        }
        let reply = client.get(&url).await?;
        expect_success(&url, &reply)?;
        let total = total_count(&reply.headers);
        let values = page_array(&url, &reply.body, T::NAME)?;
        drop(reply);
        if values.is_empty() {
            if let Some(total) = total
                && offset < total
            {
                return Err(ProviderError::Truncated {
                    collection: T::NAME,
                    offset,
                    total,
                });
            }
            self.done = true;
            return Ok(None);
        }
        let received = values.len() as u64;
        let mut page = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let item = parse_item::<T>(value);
            let id = match &item {
                Item::Ok(record) => Some(id_hash(record.sourced_id())),
                Item::Bad { sourced_id, .. } => sourced_id.as_deref().map(id_hash),
            };
            if let Some(id) = id
                && !self.seen_ids.insert(id)
            {
                self.duplicates += 1;
                continue;
            }
            page.push((offset + i as u64 + 1, item));
        }
        if page.is_empty() {
            return Err(ProviderError::Loop {
                collection: T::NAME,
                detail: format!(
                    "the page at offset {offset} only repeats records already received (does the provider ignore offset?)"
                ),
            });
        }
        self.offset += received;
        if total.is_some_and(|total| self.offset >= total) {
            self.done = true;
        }
        Ok(Some(page))
    }
}

/// A 64-bit hash of a `sourcedId` (SipHash with fixed keys: the same in every run).
pub(crate) fn id_hash(id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn expect_success(url: &Url, reply: &Reply) -> Result<(), ProviderError> {
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(ProviderError::Status {
            url: crate::config::redact_url(url.as_str()),
            status: reply.status.as_u16(),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn total_count(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("x-total-count")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The array of records of a page (`{"users": [...]}`).
fn page_array(
    url: &Url,
    body: &[u8],
    name: &'static str,
) -> Result<Vec<serde_json::Value>, ProviderError> {
    let malformed = |detail: String| ProviderError::Malformed {
        url: crate::config::redact_url(url.as_str()),
        detail,
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    match value.get_mut(name).map(serde_json::Value::take) {
        Some(serde_json::Value::Array(items)) => Ok(items),
        Some(_) => Err(malformed(format!("\"{name}\" is not an array"))),
        None => Err(malformed(format!("the body has no \"{name}\" array"))),
    }
}

/// A transport error in one line, without the URL (reported beside it).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut detail = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut config = crate::config::Config::defaults().unwrap().oneroster;
        config.retry_base_ms = 100;
        config.retry_max_ms = 500;
        let settings = ClientSettings::new(&config, 100);
        assert_eq!(settings.backoff(0), Duration::from_millis(100));
        assert_eq!(settings.backoff(2), Duration::from_millis(400));
        assert_eq!(settings.backoff(10), Duration::from_millis(500));
    }
}
