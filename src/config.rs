//! Configuration: the defaults in `config/default.toml` (compiled in, so the binary works
//! from any directory), then an optional file named by `PARENT_CONNECTION_CONFIG`, then
//! environment variables `PARENT_CONNECTION__<SECTION>__<KEY>` and the shortcuts
//! `DATABASE_URL`, `MAIL_URL`, `SMS_URL`, `JWT_SECRET`.

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The compiled-in defaults: the text of `config/default.toml`.
pub const DEFAULTS: &str = include_str!("../config/default.toml");

/// Every setting of the service.
#[derive(Clone, Deserialize, Serialize)]
pub struct Config {
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Database connection.
    pub database: DatabaseConfig,
    /// Limits of file imports.
    pub import: ImportConfig,
    /// Values given to new tenants.
    pub tenant_defaults: TenantDefaults,
    /// Logging.
    pub log: LogConfig,
    /// Outgoing email.
    pub mail: MailConfig,
    /// Outgoing SMS.
    pub sms: SmsConfig,
    /// Invitations.
    pub invites: InvitesConfig,
    /// The outbox dispatcher.
    pub outbox: OutboxConfig,
    /// The weekly digest scheduler.
    pub digest: DigestConfig,
    /// Token verification.
    pub auth: AuthConfig,
    /// HTTP API limits.
    pub api: ApiConfig,
    /// OneRoster 1.1 REST sync.
    pub oneroster: OneRosterConfig,
    /// Server-rendered pages and the links messages carry.
    #[serde(default)]
    pub web: WebConfig,
}

/// `[web]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WebConfig {
    /// Public base URL of the pages, as guardians reach them (links in messages).
    pub public_url: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
        }
    }
}

impl Config {
    /// The join link base: `invites.join_url` when set, else `{web.public_url}/join/`.
    pub fn join_url(&self) -> String {
        let configured = self.invites.join_url.trim();
        if configured.is_empty() {
            format!("{}/join/", self.web.public_url.trim().trim_end_matches('/'))
        } else {
            configured.to_string()
        }
    }
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ServerConfig {
    /// Listen address.
    pub bind: String,
    /// Grace period on shutdown, seconds.
    pub shutdown_grace_seconds: u64,
    /// Per-request timeout, seconds.
    pub request_timeout_seconds: u64,
}

/// `[database]`
#[derive(Clone, Deserialize, Serialize)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// SQLite busy timeout, milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// Migrate when `serve` starts.
    pub migrate_on_start: bool,
}

/// `[import]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ImportConfig {
    /// Largest file, bytes.
    pub max_file_bytes: u64,
    /// Largest record, bytes.
    pub max_record_bytes: usize,
    /// Largest field, bytes.
    pub max_field_bytes: usize,
    /// Row errors before reading stops.
    pub error_cap: usize,
    /// Warnings listed per report.
    pub warning_cap: usize,
    /// Rows per staging statement.
    pub batch_rows: usize,
    /// Diff SDS v2.1 snapshots against the live rows in memory and write only the changes
    /// (false: always stage and check everything in SQL).
    pub diff_in_memory: bool,
}

/// `[tenant_defaults]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TenantDefaults {
    /// Default phone region.
    pub region: String,
    /// Default deletion guard, percent of active links.
    pub deletion_guard_percent: i32,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: String,
    /// Filter directive.
    pub level: String,
}

/// `[mail]`
#[derive(Clone, Deserialize, Serialize)]
pub struct MailConfig {
    /// lettre URL.
    pub url: String,
    /// From header.
    pub from: String,
    /// Domain of Message-IDs.
    pub message_id_domain: String,
    /// SMTP connections.
    pub pool_size: usize,
    /// SMTP timeout, seconds.
    pub timeout_seconds: u64,
    /// PEM file of an extra trusted CA (empty: the public web roots only).
    pub tls_root_certificate: String,
    /// DKIM selector (empty: messages are not signed).
    #[serde(default)]
    pub dkim_selector: String,
    /// DKIM signing domain (`d=`).
    #[serde(default)]
    pub dkim_domain: String,
    /// PEM file of the DKIM private key (RSA, PKCS#1 or PKCS#8).
    #[serde(default)]
    pub dkim_private_key_path: String,
    /// Mailbox that takes unsubscribe requests by email (the `mailto:` of
    /// `List-Unsubscribe`); empty: the HTTPS one-click link only.
    #[serde(default)]
    pub unsubscribe_mailto: String,
}

/// `[sms]`
#[derive(Clone, Deserialize, Serialize)]
pub struct SmsConfig {
    /// Gateway base URL; empty disables SMS.
    pub url: String,
    /// Account SID.
    pub account_sid: String,
    /// Auth token (secret).
    pub auth_token: String,
    /// Sending number.
    pub from: String,
    /// Name opening every SMS.
    pub sender_name: String,
    /// Request timeout, seconds.
    pub timeout_seconds: u64,
    /// Inbound webhook secret.
    pub webhook_secret: String,
}

/// `[invites]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct InvitesConfig {
    /// Join link base; empty: `{web.public_url}/join/`.
    pub join_url: String,
}

/// `[digest]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DigestConfig {
    /// Schedule inside `serve`.
    pub schedule_in_serve: bool,
    /// Seconds between checks.
    pub check_interval_seconds: u64,
    /// How late a digest may still be sent, hours.
    pub catch_up_hours: u64,
}

/// `[outbox]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OutboxConfig {
    /// Dispatch inside `serve`.
    pub dispatch_in_serve: bool,
    /// Rows per claim.
    pub batch_size: u64,
    /// Parallel sends.
    pub concurrency: usize,
    /// Attempts before dead-lettering.
    pub max_attempts: i64,
    /// First retry delay, seconds.
    pub backoff_base_seconds: u64,
    /// Largest retry delay, seconds.
    pub backoff_max_seconds: u64,
    /// Claim lease, seconds.
    pub lease_seconds: u64,
    /// Idle poll interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Email send rate per second.
    pub email_per_second: u32,
    /// SMS send rate per second.
    pub sms_per_second: u32,
}

/// `[auth]`
#[derive(Clone, Deserialize, Serialize)]
pub struct AuthConfig {
    /// HS256 development key.
    pub jwt_secret: String,
    /// Accepted signature algorithms (`HS256`, `RS256`).
    pub algorithms: Vec<String>,
    /// Required `aud`.
    pub audience: String,
    /// Required `iss` (also the issuer of minted tokens).
    pub issuer: String,
    /// PEM files of RS256 public keys.
    pub rs256_public_key_paths: Vec<String>,
    /// JWKS file of RS256 public keys; empty for none.
    pub jwks_path: String,
    /// Clock skew allowed on `exp` and `nbf`, seconds.
    pub leeway_seconds: u64,
    /// RS256 private key (PEM) the `token` command signs with instead of `jwt_secret`.
    pub signing_key_path: String,
    /// `kid` put in tokens signed with `signing_key_path`.
    pub signing_key_id: String,
    /// Lifetime of minted tokens when `--ttl` is not given.
    pub default_token_ttl: String,
}

/// `[api]`
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ApiConfig {
    /// Largest request body, bytes (uploads have their own limit).
    pub max_body_bytes: usize,
    /// Largest import upload (all parts together), bytes.
    pub max_upload_bytes: usize,
    /// Most files in one upload (parts or zip entries).
    pub max_upload_files: usize,
    /// Largest total of a zip's unpacked files, bytes.
    pub max_unzipped_bytes: u64,
    /// Largest unpacked/packed size ratio of a zip entry.
    pub max_zip_ratio: u64,
    /// Time an import request may take, seconds.
    pub import_timeout_seconds: u64,
    /// Page size when `limit` is not given.
    pub default_page_size: u64,
    /// Largest `limit`.
    pub max_page_size: u64,
    /// Requests per second per client address.
    pub client_requests_per_second: u64,
    /// Burst per client address.
    pub client_burst: u32,
    /// Requests per second per bearer token.
    pub token_requests_per_second: u64,
    /// Burst per bearer token.
    pub token_burst: u32,
}

/// `[oneroster]`
#[derive(Clone, Deserialize, Serialize)]
pub struct OneRosterConfig {
    /// 64 hex characters (32 bytes) that encrypt stored client secrets; empty refuses to
    /// store or use a connection.
    pub secret_key: String,
    /// Page size of a new connection when none is given.
    pub default_page_size: u64,
    /// Largest page size a connection may ask for.
    pub max_page_size: u64,
    /// Most pages read from one collection before the run stops with an error.
    pub max_pages: u64,
    /// Seconds one HTTP request may take (connect, send, read the whole body).
    pub request_timeout_seconds: u64,
    /// Seconds to establish a connection.
    pub connect_timeout_seconds: u64,
    /// Retries of one request after a 429, a 5xx or a transport error.
    pub max_retries: u32,
    /// First backoff between retries, milliseconds (doubled each time).
    pub retry_base_ms: u64,
    /// Longest wait between retries, milliseconds (also caps `Retry-After`).
    pub retry_max_ms: u64,
    /// Users a delta run may fetch one by one because an `agents` entry names a user the
    /// delta does not hold.
    pub max_delta_lookups: u64,
    /// `serve` runs a sync of every connected tenant every this many hours; 0 = off.
    pub schedule_hours: u64,
    /// The scheduled run is a delta (`true`) or a full sync (`false`).
    pub schedule_delta: bool,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads the configuration from the defaults, the optional file and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::figment()
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }

    /// The compiled-in defaults alone, ignoring files and the environment (for tests).
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .map_err(|e| ConfigError(e.to_string()))
    }

    /// The layered configuration sources, for callers that add their own layer (tests).
    pub fn figment() -> Figment {
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        if let Ok(path) = std::env::var("PARENT_CONNECTION_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("PARENT_CONNECTION__").split("__"));
        for (var, key) in [
            ("DATABASE_URL", "database.url"),
            ("MAIL_URL", "mail.url"),
            ("SMS_URL", "sms.url"),
            ("JWT_SECRET", "auth.jwt_secret"),
        ] {
            if let Ok(value) = std::env::var(var) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        figment
    }
}

/// Replaces the password of a URL (`scheme://user:password@host`) with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

fn secret(value: &str) -> &'static str {
    if value.is_empty() { "(unset)" } else { "***" }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

impl fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailConfig")
            .field("url", &redact_url(&self.url))
            .field("from", &self.from)
            .field("message_id_domain", &self.message_id_domain)
            .field("pool_size", &self.pool_size)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("tls_root_certificate", &self.tls_root_certificate)
            .field("dkim_selector", &self.dkim_selector)
            .field("dkim_domain", &self.dkim_domain)
            .field("dkim_private_key_path", &self.dkim_private_key_path)
            .field("unsubscribe_mailto", &self.unsubscribe_mailto)
            .finish()
    }
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &redact_url(&self.url))
            .field("account_sid", &self.account_sid)
            .field("auth_token", &secret(&self.auth_token))
            .field("from", &self.from)
            .field("sender_name", &self.sender_name)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("webhook_secret", &secret(&self.webhook_secret))
            .finish()
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("jwt_secret", &secret(&self.jwt_secret))
            .field("algorithms", &self.algorithms)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .field("rs256_public_key_paths", &self.rs256_public_key_paths)
            .field("jwks_path", &self.jwks_path)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("signing_key_path", &self.signing_key_path)
            .field("signing_key_id", &self.signing_key_id)
            .field("default_token_ttl", &self.default_token_ttl)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("database", &self.database)
            .field("import", &self.import)
            .field("tenant_defaults", &self.tenant_defaults)
            .field("log", &self.log)
            .field("mail", &self.mail)
            .field("sms", &self.sms)
            .field("invites", &self.invites)
            .field("outbox", &self.outbox)
            .field("digest", &self.digest)
            .field("auth", &self.auth)
            .field("api", &self.api)
            .field("oneroster", &self.oneroster)
            .field("web", &self.web)
            .finish()
    }
}

impl fmt::Debug for OneRosterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneRosterConfig")
            .field("secret_key", &secret(&self.secret_key))
            .field("default_page_size", &self.default_page_size)
            .field("max_page_size", &self.max_page_size)
            .field("max_pages", &self.max_pages)
            .field("request_timeout_seconds", &self.request_timeout_seconds)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("max_retries", &self.max_retries)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("max_delta_lookups", &self.max_delta_lookups)
            .field("schedule_hours", &self.schedule_hours)
            .field("schedule_delta", &self.schedule_delta)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_secrets_are_redacted() {
        let config: Config = Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .unwrap();
        assert_eq!(config.tenant_defaults.deletion_guard_percent, 20);
        let mut with_secret = config.clone();
        with_secret.database.url = "postgres://app:hunter2@db/pc".into();
        with_secret.auth.jwt_secret = "topsecret".into();
        with_secret.oneroster.secret_key = "0badc0ffee".into();
        let shown = format!("{with_secret:?}");
        assert!(
            !shown.contains("hunter2")
                && !shown.contains("topsecret")
                && !shown.contains("0badc0ffee"),
            "{shown}"
        );
    }
}
