//! Configuration: the defaults in `config/default.toml` (compiled in, so the binary works
//! from any directory), then an optional file named by `PARENT_CONNECTION_CONFIG`, then
//! environment variables `PARENT_CONNECTION__<SECTION>__<KEY>` and the shortcuts
//! `DATABASE_URL`, `MAIL_URL`, `SMS_URL`, `JWT_SECRET`.

use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
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
    /// What is kept of erased personal data, and the key that hashes it.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// Outbound HTTP requests (OneRoster, the SMS gateway).
    #[serde(default)]
    pub outbound: OutboundConfig,
}

/// `[outbound]`: what outbound HTTP requests may reach, read by
/// [`crate::outbound::Policy`].
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct OutboundConfig {
    /// Allow OneRoster and SMS gateway URLs that are, or resolve to, loopback, private,
    /// link-local or other internal addresses (an on-premises provider; tests).
    pub allow_private: bool,
    /// Largest response body read from a OneRoster provider or the SMS gateway, bytes.
    pub max_response_bytes: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_response_bytes: 128 * 1024 * 1024,
        }
    }
}

/// `[privacy]`
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PrivacyConfig {
    /// 64 hex characters (32 bytes): the key of the keyed hashes that stand in for erased
    /// personal data (erasure keys, SMS opt-outs). Empty on SQLite = the key file
    /// `privacy.key` of the data folder; required on PostgreSQL.
    pub hash_key: String,
}

impl fmt::Debug for PrivacyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivacyConfig")
            .field("hash_key", &secret(&self.hash_key))
            .finish()
    }
}

/// `[web]`
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WebConfig {
    /// Public base URL of the pages, as guardians reach them (links in messages). An
    /// `https://` URL also marks the session cookie `Secure`.
    pub public_url: String,
    /// `POST /web/session` with a bearer token opens a page session (integrations, tests).
    pub token_signin: bool,
    /// Minutes without a request after which a page session ends.
    pub session_idle_minutes: u32,
    /// Hours after sign-in after which a page session ends, however active.
    pub session_absolute_hours: u32,
    /// Minutes a guardian's one-time sign-in code works.
    pub code_minutes: u32,
    /// Wrong tries after which a sign-in code stops working.
    pub code_attempts: u32,
    /// Sign-in codes sent to one email address or mobile number within 15 minutes, at most.
    pub codes_per_address_per_15_minutes: u32,
    /// Staff sign-in with the district's OpenID Connect provider.
    pub oidc: OidcConfig,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
            token_signin: false,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            code_minutes: 10,
            code_attempts: 5,
            codes_per_address_per_15_minutes: 3,
            oidc: OidcConfig::default(),
        }
    }
}

impl WebConfig {
    /// True when the pages are served over TLS (`public_url` is `https://`): cookies are
    /// then `Secure`.
    pub fn is_tls(&self) -> bool {
        self.public_url
            .trim()
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
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
    /// Pool size; 0 (the default) is [`DatabaseConfig::pool_size`]'s automatic size.
    pub max_connections: u32,
    /// How long jobs and commands (imports, digest runs, the dispatcher, the CLI) wait for
    /// the SQLite write lock before failing, milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// How long an API request or page waits for a lock (the SQLite write lock, a
    /// PostgreSQL row lock) and for a pooled connection before it is answered `503
    /// database_busy` with `Retry-After`, milliseconds.
    pub request_busy_timeout_ms: u64,
    /// Migrate when `serve` starts.
    pub migrate_on_start: bool,
    /// Seconds the first connection may take before start-up fails with the cause.
    pub connect_timeout_seconds: u64,
    /// A request connection idle at least this long is pinged before use, within the
    /// connection wait, so a database that stopped answering is found in that time (503)
    /// rather than by a statement that hangs; milliseconds (0: before every use).
    pub request_ping_idle_ms: u64,
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
    /// PEM file of the DKIM private key (RSA, PKCS#1).
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
    /// The inbound webhook's public URL as the gateway calls it, the base of its
    /// `X-Twilio-Signature`; empty: `web.public_url` + the request's path.
    pub webhook_url: String,
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
    /// Seconds the sends in flight get to finish when a dispatcher stops.
    pub shutdown_grace_seconds: u64,
    /// Days the disclosure log keeps the text of what was sent (then only its hash).
    pub disclosure_text_days: u64,
}

/// `[auth]`
#[derive(Clone, Deserialize, Serialize)]
pub struct AuthConfig {
    /// Development mode: HS256 tokens signed with `jwt_secret` are accepted (besides
    /// `algorithms`) and `parent-connection token` mints them. Off by default.
    #[serde(default)]
    pub development: bool,
    /// HS256 development key (used only with `development`).
    pub jwt_secret: String,
    /// Accepted signature algorithms of production tokens (`RS256`; `HS256` only with
    /// `development`).
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
    /// Longest lifetime of a bearer token (`exp - iat`, or `exp - now` without `iat`);
    /// longer ones are refused, and `token --ttl` mints none longer.
    pub max_token_lifetime: String,
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
    /// Requests per second per client address (IPv6: per /64).
    pub client_requests_per_second: u64,
    /// Burst per client address.
    pub client_burst: u32,
    /// Requests per second per verified token subject (tenant + subject).
    pub token_requests_per_second: u64,
    /// Burst per verified token subject.
    pub token_burst: u32,
    /// Reverse proxies (addresses and CIDR ranges) whose forwarding header names the
    /// client; parsed by [`crate::api::limits::client::TrustedProxies`].
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies name the client in: `x-forwarded-for` or `forwarded`.
    pub client_address_header: String,
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

/// Why the configuration could not be loaded: one line naming the variable or key and what
/// it takes.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// A configuration as loaded, with what the operator should hear about it at start.
#[derive(Debug)]
pub struct Loaded {
    /// The settings.
    pub config: Config,
    /// One line per `PARENT_CONNECTION__…` variable that names no key (a misspelling), with
    /// the key it probably meant when one is close. Not fatal: logged at start.
    pub warnings: Vec<String>,
}

/// Prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "PARENT_CONNECTION__";

/// The shortcut variables and the key each sets.
pub const SHORTCUTS: [(&str, &str); 4] = [
    ("DATABASE_URL", "database.url"),
    ("MAIL_URL", "mail.url"),
    ("SMS_URL", "sms.url"),
    ("JWT_SECRET", "auth.jwt_secret"),
];

/// The type a key is declared with in `config/default.toml`, which decides how an
/// environment variable's text is read (figment's own `Env` provider guesses the type from
/// the text, so `+12025550199` became a number and a string key failed to load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Any text, taken exactly as given (also `0123`, `true`, `1e5`, empty).
    Text,
    /// A whole number.
    Whole,
    /// A number that may have a fraction.
    Decimal,
    /// `true` or `false` (any case; also `1`, `0`).
    Flag,
    /// A list of texts: `a,b`, `[a, b]` or `["a", "b"]`; empty for none.
    List,
}

/// A value read from the environment with its key's type.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
enum EnvValue {
    Text(String),
    Signed(i64),
    Unsigned(u64),
    Decimal(f64),
    Flag(bool),
    List(Vec<String>),
}

impl KeyType {
    /// What the type takes, for error lines.
    pub fn expected(self) -> &'static str {
        match self {
            KeyType::Text => "text",
            KeyType::Whole => "a whole number",
            KeyType::Decimal => "a number",
            KeyType::Flag => "true or false",
            KeyType::List => "a list (a,b or [a, b]; empty for none)",
        }
    }

    fn read(self, raw: &str) -> Option<EnvValue> {
        let trimmed = raw.trim();
        match self {
            KeyType::Text => Some(EnvValue::Text(raw.to_string())),
            KeyType::Whole => trimmed
                .parse::<u64>()
                .map(EnvValue::Unsigned)
                .or_else(|_| trimmed.parse::<i64>().map(EnvValue::Signed))
                .ok(),
            KeyType::Decimal => trimmed
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(EnvValue::Decimal),
            KeyType::Flag => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "1" => Some(EnvValue::Flag(true)),
                "false" | "0" => Some(EnvValue::Flag(false)),
                _ => None,
            },
            KeyType::List => {
                let inner = trimmed
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(trimmed);
                Some(EnvValue::List(
                    inner
                        .split(',')
                        .map(|item| {
                            let item = item.trim();
                            item.strip_prefix('"')
                                .and_then(|i| i.strip_suffix('"'))
                                .unwrap_or(item)
                                .to_string()
                        })
                        .filter(|item| !item.is_empty())
                        .collect(),
                ))
            }
        }
    }
}

/// Every key of `config/default.toml` (`section.key`) with its declared type.
pub fn key_types() -> std::collections::BTreeMap<String, KeyType> {
    use figment::value::{Num, Value};
    fn walk(prefix: &str, value: &Value, out: &mut std::collections::BTreeMap<String, KeyType>) {
        let kind = match value {
            Value::Dict(_, dict) => {
                for (name, value) in dict {
                    let path = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}.{name}")
                    };
                    walk(&path, value, out);
                }
                return;
            }
            Value::String(..) | Value::Char(..) | Value::Empty(..) => KeyType::Text,
            Value::Bool(..) => KeyType::Flag,
            Value::Num(_, Num::F32(_) | Num::F64(_)) => KeyType::Decimal,
            Value::Num(..) => KeyType::Whole,
            Value::Array(..) => KeyType::List,
        };
        out.insert(prefix.to_string(), kind);
    }
    let mut out = std::collections::BTreeMap::new();
    if let Ok(value) = Figment::new()
        .merge(Toml::string(DEFAULTS))
        .extract::<figment::value::Value>()
    {
        walk("", &value, &mut out);
    }
    out
}

/// The environment variable that sets `path` (`import.error_cap` →
/// `PARENT_CONNECTION__IMPORT__ERROR_CAP`).
pub fn variable_of(path: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        path.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join("__")
    )
}

/// One environment variable as a figment layer, named after the variable so an error names
/// it.
struct EnvVar {
    var: String,
    path: String,
    value: EnvValue,
}

impl figment::Provider for EnvVar {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(format!("environment variable {}", self.var))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::default(&self.path, &self.value).data()
    }
}

/// Edit distance (Levenshtein) of two short names.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

fn unknown_variable(var: &str, types: &std::collections::BTreeMap<String, KeyType>) -> String {
    let best = types
        .keys()
        .map(|path| variable_of(path))
        .map(|known| (distance(var, &known), known))
        .min();
    match best {
        Some((d, known)) if d <= 4.max(var.len() / 6) => {
            format!("{var} names no configuration key and is ignored; did you mean {known}?")
        }
        _ => format!(
            "{var} names no configuration key and is ignored (the keys are in config/default.toml)"
        ),
    }
}

/// One line per figment error, naming where the value came from.
fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e
                .path
                .iter()
                .filter(|p| p.as_str() != "default")
                .cloned()
                .collect::<Vec<_>>()
                .join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_default();
            match source.strip_prefix("environment variable ") {
                Some(var) => format!("{var} ({key}): {}", e.kind),
                None if source.is_empty() => format!("{key}: {}", e.kind),
                None => format!("{key}: {} (in {source})", e.kind),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Config {
    /// Loads the configuration from the defaults, the optional file and the environment.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(process_env()).map(|loaded| loaded.config)
    }

    /// As [`Config::load`], from the given environment variables, with the warnings to log.
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let figment = Self::layered(vars, &mut warnings)?;
        let config = figment.extract().map_err(|e| ConfigError(describe(e)))?;
        Ok(Loaded { config, warnings })
    }

    /// The compiled-in defaults alone, ignoring files and the environment (for tests).
    pub fn defaults() -> Result<Self, ConfigError> {
        Figment::new()
            .merge(Toml::string(DEFAULTS))
            .extract()
            .map_err(|e| ConfigError(describe(e)))
    }

    /// The layered configuration sources, for callers that add their own layer (tests).
    /// Environment values that do not fit their key's type are left out here; [`Config::load`]
    /// reports them.
    pub fn figment() -> Figment {
        Self::layered(process_env(), &mut Vec::new())
            .unwrap_or_else(|_| Figment::new().merge(Toml::string(DEFAULTS)))
    }

    fn layered(
        vars: impl IntoIterator<Item = (String, String)>,
        warnings: &mut Vec<String>,
    ) -> Result<Figment, ConfigError> {
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        vars.sort();
        let types = key_types();
        let mut figment = Figment::new().merge(Toml::string(DEFAULTS));
        if let Some((_, path)) = vars.iter().find(|(k, _)| k == "PARENT_CONNECTION_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut errors = Vec::new();
        let mut layer = |var: &str, path: &str, kind: KeyType, raw: &str| match kind.read(raw) {
            Some(value) => Some(EnvVar {
                var: var.to_string(),
                path: path.to_string(),
                value,
            }),
            None => {
                let shown: String = raw.chars().take(40).collect();
                errors.push(format!("{var}={shown:?}: {path} takes {}", kind.expected()));
                None
            }
        };
        let mut layers = Vec::new();
        for (var, raw) in &vars {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path = rest
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            match types.get(&path) {
                Some(kind) => layers.extend(layer(var, &path, *kind, raw)),
                None => warnings.push(unknown_variable(var, &types)),
            }
        }
        // The shortcuts win over the long names.
        for (var, path) in SHORTCUTS {
            if let Some((_, raw)) = vars.iter().find(|(k, _)| k == var) {
                layers.extend(layer(var, path, KeyType::Text, raw));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors.join("; ")));
        }
        for provider in layers {
            figment = figment.merge(provider);
        }
        Ok(figment)
    }
}

/// The process environment (variables whose name or value is not Unicode are skipped;
/// none of ours can be).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// A URL as it may be logged: the password of `scheme://user:password@host` replaced with `***`, parsed with the `url` crate as the
/// mail and HTTP clients parse it (so `smtp://u:p@ss@host` hides all of `p@ss`). A text
/// that is not a URL but holds an `@` is shown as its scheme only.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) if raw.contains('@') => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://***"),
            None => "***".to_string(),
        },
        Err(_) => raw.to_string(),
    }
}

fn secret(value: &str) -> &'static str {
    if value.is_empty() { "(unset)" } else { "***" }
}

impl DatabaseConfig {
    /// Connections of each pool: `max_connections`, or when it is 0, twice the CPUs this
    /// process may use. The database works on the same CPUs as the requests (SQLite in the
    /// process; PostgreSQL, as measured, usually on the same or a like-sized machine):
    /// beyond about two statements per CPU, more connections only add context switches
    /// (measured on 2 CPUs at 1,000,000 students: 8 connections served 9,500 teacher reads
    /// a second on SQLite, 4 served 11,300; PostgreSQL 7,700 and 9,600).
    pub fn pool_size(&self) -> u32 {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        u32::try_from(cpus.saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(2)
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("request_busy_timeout_ms", &self.request_busy_timeout_ms)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("request_ping_idle_ms", &self.request_ping_idle_ms)
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
            .field("webhook_url", &self.webhook_url)
            .finish()
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("development", &self.development)
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
            .field("max_token_lifetime", &self.max_token_lifetime)
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
            .field("privacy", &self.privacy)
            .field("outbound", &self.outbound)
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

/// `[web.oidc]`: staff sign-in with the district's OpenID Connect provider (authorization
/// code flow with PKCE; the redirect URI is `{web.public_url}/web/oidc/callback`). Read by
/// [`crate::web::oidc::Settings`].
#[derive(Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct OidcConfig {
    /// The provider's issuer URL (discovery at `{issuer}/.well-known/openid-configuration`);
    /// empty: staff OIDC sign-in is off.
    pub issuer: String,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret at the provider (secret: set it from the environment).
    pub client_secret: String,
    /// Scopes asked for (`openid` is always asked for).
    pub scopes: Vec<String>,
    /// A fixed tenant slug for every sign-in (a district's own provider); empty: the tenant
    /// is the value of `tenant_claim`.
    pub tenant: String,
    /// The ID token claim holding the tenant slug (when `tenant` is empty).
    pub tenant_claim: String,
    /// The ID token claim holding the staff member's SIS `sourcedId`.
    pub user_claim: String,
    /// The ID token claim holding the roles (a list, or one text).
    pub roles_claim: String,
    /// The provider's role values and the role each stands for (`teacher`, `global-admin`,
    /// `teams-admin`, `tenant-admin`); values not listed grant nothing.
    pub roles: std::collections::BTreeMap<String, String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            tenant: String::new(),
            tenant_claim: "tenant".into(),
            user_claim: "sub".into(),
            roles_claim: "roles".into(),
            // Our own role names (crate::auth::Role) map to themselves.
            roles: ["teacher", "global-admin", "teams-admin", "tenant-admin"]
                .into_iter()
                .map(|role| (role.to_string(), role.to_string()))
                .collect(),
        }
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &secret(&self.client_secret))
            .field("scopes", &self.scopes)
            .field("tenant", &self.tenant)
            .field("tenant_claim", &self.tenant_claim)
            .field("user_claim", &self.user_claim)
            .field("roles_claim", &self.roles_claim)
            .field("roles", &self.roles)
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
        with_secret.web.oidc.client_secret = "idp-s3cret".into();
        let shown = format!("{with_secret:?}");
        assert!(
            !shown.contains("hunter2")
                && !shown.contains("topsecret")
                && !shown.contains("0badc0ffee")
                && !shown.contains("idp-s3cret"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn urls_are_redacted_as_the_url_crate_parses_them() {
        for (raw, hidden, shown) in [
            (
                "smtp://u:p@ss@mail.example:587?tls=required",
                "ss",
                "mail.example:587",
            ),
            (
                "postgres://app:hunter2@db/pc",
                "hunter2",
                "postgres://app:***@db/pc",
            ),
            ("https://sid:tok%40en@gw.example/x", "tok", "gw.example/x"),
            ("not a url: user:pw@host", "pw", "***"),
        ] {
            let redacted = redact_url(raw);
            assert!(
                !redacted.contains(hidden) && redacted.contains(shown),
                "{raw} → {redacted}"
            );
        }
        assert_eq!(redact_url("file://data/mail"), "file://data/mail");
        assert_eq!(
            redact_url("sqlite://data/pc.db?mode=rwc"),
            "sqlite://data/pc.db?mode=rwc"
        );
    }

    #[test]
    fn the_outbound_and_development_switches_are_off_by_default() {
        let config = Config::defaults().unwrap();
        assert!(!config.outbound.allow_private && !config.auth.development);
        assert_eq!(config.auth.algorithms, ["RS256"]);
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        Config::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn value_at(config: &Config, path: &str) -> serde_json::Value {
        let json = serde_json::to_value(config).unwrap();
        json.pointer(&format!("/{}", path.replace('.', "/")))
            .cloned()
            .unwrap_or_else(|| panic!("{path} is not in the serialized config"))
    }

    /// Drives every string-typed key of the defaults (so a new key is covered) with texts
    /// figment's own Env provider would have turned into numbers or booleans.
    #[test]
    fn every_string_key_keeps_its_text_from_the_environment() {
        let text_keys: Vec<String> = key_types()
            .into_iter()
            .filter(|(_, kind)| *kind == KeyType::Text)
            .map(|(path, _)| path)
            .collect();
        assert!(text_keys.len() > 20, "{text_keys:?}");
        assert!(text_keys.contains(&"sms.from".to_string()));
        for raw in ["+12025550199", "0123", "true", "1e5", "", "-7", "[a]"] {
            let vars: Vec<(String, String)> = text_keys
                .iter()
                .map(|path| (variable_of(path), raw.to_string()))
                .collect();
            let loaded = Config::load_from(vars)
                .unwrap_or_else(|e| panic!("{raw:?} for every string key: {e}"));
            assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
            for path in &text_keys {
                assert_eq!(
                    value_at(&loaded.config, path),
                    serde_json::Value::String(raw.to_string()),
                    "{path} from {raw:?}"
                );
            }
        }
    }

    #[test]
    fn shortcuts_keep_their_text() {
        for (var, path) in SHORTCUTS {
            for raw in ["0123", "true", "1e5", "+12025550199"] {
                let loaded = load(&[(var, raw)]).unwrap();
                assert_eq!(value_at(&loaded.config, path), raw, "{var}={raw}");
            }
        }
    }

    #[test]
    fn numbers_and_switches_are_checked_with_one_line_naming_the_variable() {
        let loaded = load(&[
            ("PARENT_CONNECTION__IMPORT__ERROR_CAP", " 50 "),
            ("PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE", "FALSE"),
            ("PARENT_CONNECTION__OUTBOX__DISPATCH_IN_SERVE", "0"),
        ])
        .unwrap();
        assert_eq!(loaded.config.import.error_cap, 50);
        assert!(!loaded.config.digest.schedule_in_serve);
        assert!(!loaded.config.outbox.dispatch_in_serve);
        for (var, raw, expect) in [
            (
                "PARENT_CONNECTION__IMPORT__ERROR_CAP",
                "lots",
                "a whole number",
            ),
            (
                "PARENT_CONNECTION__IMPORT__ERROR_CAP",
                "1e5",
                "a whole number",
            ),
            ("PARENT_CONNECTION__IMPORT__ERROR_CAP", "-5", "u"),
            (
                "PARENT_CONNECTION__DATABASE__MIGRATE_ON_START",
                "yes",
                "true or false",
            ),
            (
                "PARENT_CONNECTION__SERVER__SHUTDOWN_GRACE_SECONDS",
                "",
                "a whole number",
            ),
        ] {
            let error = load(&[(var, raw)]).unwrap_err().to_string();
            assert!(
                error.contains(var) && error.contains(expect) && !error.contains('\n'),
                "{var}={raw}: {error}"
            );
        }
    }

    #[test]
    fn lists_are_read_in_three_spellings() {
        for (raw, expect) in [
            ("RS256", vec!["RS256"]),
            ("HS256, RS256", vec!["HS256", "RS256"]),
            ("[HS256, RS256]", vec!["HS256", "RS256"]),
            (r#"["RS256"]"#, vec!["RS256"]),
            ("", vec![]),
            ("[]", vec![]),
        ] {
            let loaded = load(&[("PARENT_CONNECTION__AUTH__ALGORITHMS", raw)]).unwrap();
            assert_eq!(loaded.config.auth.algorithms, expect, "{raw}");
        }
        let loaded = load(&[(
            "PARENT_CONNECTION__AUTH__RS256_PUBLIC_KEY_PATHS",
            "/k/a.pem,/k/0123.pem",
        )])
        .unwrap();
        assert_eq!(
            loaded.config.auth.rs256_public_key_paths,
            vec!["/k/a.pem", "/k/0123.pem"]
        );
    }

    #[test]
    fn the_oidc_keys_come_from_the_environment_and_the_secret_is_redacted() {
        let loaded = load(&[
            (
                "PARENT_CONNECTION__WEB__OIDC__ISSUER",
                "https://idp.example.org",
            ),
            ("PARENT_CONNECTION__WEB__OIDC__CLIENT_SECRET", "0123-s3cret"),
            (
                "PARENT_CONNECTION__WEB__OIDC__SCOPES",
                "openid,profile,roles",
            ),
            ("PARENT_CONNECTION__WEB__OIDC__TENANT", "nyc"),
        ])
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let oidc = &loaded.config.web.oidc;
        assert_eq!(oidc.issuer, "https://idp.example.org");
        assert_eq!(oidc.client_secret, "0123-s3cret");
        assert_eq!(oidc.scopes, ["openid", "profile", "roles"]);
        assert_eq!(oidc.tenant, "nyc");
        assert_eq!(
            (
                oidc.tenant_claim.as_str(),
                oidc.user_claim.as_str(),
                oidc.roles_claim.as_str()
            ),
            ("tenant", "sub", "roles")
        );
        assert_eq!(oidc.roles.len(), 4, "our role names map to themselves");
        assert_eq!(oidc.roles["global-admin"], "global-admin");
        let shown = format!("{:?}", loaded.config);
        assert!(
            !shown.contains("0123-s3cret") && shown.contains("client_secret: \"***\""),
            "{shown}"
        );
    }

    #[test]
    fn misspelled_variables_are_reported_with_the_likely_key() {
        let loaded = load(&[
            ("PARENT_CONNECTION__ONEROSTER__SECRETKEY", "x"),
            ("PARENT_CONNECTION__ONEROSTER_SECRET_KEY", "x"),
            ("PARENT_CONNECTION__import__error_cap", "7"),
            ("PARENT_CONNECTION__COMPLETELY__DIFFERENT_THING", "x"),
        ])
        .unwrap();
        assert_eq!(
            loaded.config.import.error_cap, 7,
            "keys are case-insensitive"
        );
        assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
        let all = loaded.warnings.join("\n");
        assert!(
            all.contains("PARENT_CONNECTION__ONEROSTER__SECRETKEY names no configuration key")
                && all.matches("did you mean PARENT_CONNECTION__ONEROSTER__SECRET_KEY?").count() == 2
                && all.contains("PARENT_CONNECTION__COMPLETELY__DIFFERENT_THING names no configuration key and is ignored (the keys"),
            "{all}"
        );
    }
}
