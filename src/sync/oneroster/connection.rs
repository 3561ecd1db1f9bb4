//! Stored OneRoster connections: one per tenant, in `oneroster_connections`. The client
//! secret is encrypted at rest with AES-256-GCM under `oneroster.secret_key` (the tenant id
//! is the associated data, so a ciphertext copied to another tenant's row does not open);
//! it is never logged, audited or returned.

use crate::audit::{self, AuditEntry};
use crate::config::{Config, OneRosterConfig};
use crate::db::{self, ImportConn};
use crate::domain::TenantId;
use crate::secrets::DataFolder;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult, QueryResult, Value};
use serde::Serialize;
use std::fmt;

/// Errors of connection storage.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// No key is configured, or it is not 64 hex characters.
    #[error("{0}")]
    Key(String),
    /// The stored secret does not open with the configured key.
    #[error(
        "the stored client secret cannot be decrypted with oneroster.secret_key (was the key changed?); run `oneroster connect` again"
    )]
    Undecryptable,
    /// A value given for the connection is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A client secret in memory: its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself (for the token request only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The key that encrypts stored secrets.
pub struct SecretKey(LessSafeKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

const CIPHER_PREFIX: &str = "v1:";

/// Name of the generated key in the data folder (`oneroster-secret.key`).
pub const KEY_FILE: &str = "oneroster-secret";

impl SecretKey {
    /// The key configured in `oneroster.secret_key` (64 hex characters); when none is
    /// configured on SQLite, the key file `oneroster-secret.key` of the data folder,
    /// generated on first need (see [`crate::secrets`]). On PostgreSQL a key must be
    /// configured.
    pub fn from_config(config: &Config) -> Result<Self, ConnectionError> {
        let raw = config.oneroster.secret_key.trim();
        if !raw.is_empty() {
            return Self::from_hex(raw);
        }
        match DataFolder::of(&config.database) {
            Some(folder) => {
                let bytes = folder
                    .key(KEY_FILE, "stored OneRoster client secrets")
                    .map_err(|e| ConnectionError::Key(e.to_string()))?;
                Self::from_bytes(&bytes)
            }
            None => Err(ConnectionError::Key(
                "no key to encrypt OneRoster client secrets: set PARENT_CONNECTION__ONEROSTER__SECRET_KEY to 64 hex characters (e.g. `openssl rand -hex 32`); on PostgreSQL it is required".into(),
            )),
        }
    }

    /// The key that sealed the stored secrets: the configured one, or the existing key file
    /// on SQLite. A missing key file is an error, never replaced by a new key (which would
    /// make every stored secret unreadable and leave no place to restore the backup to).
    pub fn existing(config: &Config) -> Result<Self, ConnectionError> {
        if !config.oneroster.secret_key.trim().is_empty() {
            return Self::from_config(config);
        }
        let Some(folder) = DataFolder::of(&config.database) else {
            return Self::from_config(config);
        };
        match folder
            .existing_key(KEY_FILE)
            .map_err(|e| ConnectionError::Key(e.to_string()))?
        {
            Some(bytes) => Self::from_bytes(&bytes),
            None => Err(ConnectionError::Key(format!(
                "the key file {} that encrypts the stored OneRoster secrets is missing: restore it from the backup of the data folder, or store the connection again with `parent-connection oneroster connect`",
                folder.key_path(KEY_FILE).display()
            ))),
        }
    }

    /// A key given as 64 hex characters.
    pub fn from_hex(raw: &str) -> Result<Self, ConnectionError> {
        let bytes = crate::secrets::from_hex(raw.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                ConnectionError::Key(
                    "oneroster.secret_key must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`".into(),
                )
            })?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, ConnectionError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| ConnectionError::Key("oneroster.secret_key is not usable".into()))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Encrypts `secret` for `tenant_id`: `v1:` + hex(nonce || ciphertext || tag).
    pub fn seal(&self, tenant_id: TenantId, secret: &Secret) -> Result<String, ConnectionError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ConnectionError::Key("no system randomness for the nonce".into()))?;
        let mut sealed = secret.expose().as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(tenant_id.0.to_be_bytes()),
                &mut sealed,
            )
            .map_err(|_| ConnectionError::Key("encryption failed".into()))?;
        Ok(format!(
            "{CIPHER_PREFIX}{}{}",
            crate::secrets::to_hex(&nonce),
            crate::secrets::to_hex(&sealed)
        ))
    }

    /// Decrypts what [`SecretKey::seal`] produced for `tenant_id`.
    pub fn open(&self, tenant_id: TenantId, stored: &str) -> Result<Secret, ConnectionError> {
        let bytes = stored
            .strip_prefix(CIPHER_PREFIX)
            .and_then(crate::secrets::from_hex)
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(ConnectionError::Undecryptable)?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| ConnectionError::Undecryptable)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(tenant_id.0.to_be_bytes()), &mut sealed)
            .map_err(|_| ConnectionError::Undecryptable)?;
        String::from_utf8(plain.to_vec())
            .map(Secret)
            .map_err(|_| ConnectionError::Undecryptable)
    }
}

/// What `oneroster connect` (or `PUT /api/v1/oneroster/connection`) stores.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Base URL of the OneRoster API, ending in `/ims/oneroster/v1p1`.
    pub base_url: String,
    /// OAuth2 token endpoint.
    pub token_url: String,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Secret,
    /// Rows asked per page (`None`: `oneroster.default_page_size`).
    pub page_size: Option<u64>,
}

/// A stored connection with its secret decrypted (never serialised).
#[derive(Debug, Clone)]
pub struct Connection {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Rows asked per page.
    pub page_size: u64,
    /// `dateLastModified` watermark of the last applied run.
    pub watermark: Option<String>,
}

/// A connection as the API and CLI show it: never the secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    /// Base URL of the OneRoster API.
    pub base_url: String,
    /// OAuth2 token endpoint.
    pub token_url: String,
    /// OAuth2 client id.
    pub client_id: String,
    /// Rows asked per page.
    pub page_size: u64,
    /// Always true: a secret is stored (encrypted); it is never shown.
    pub secret_stored: bool,
    /// `dateLastModified` watermark the next delta run filters on.
    pub watermark: Option<String>,
    /// When a OneRoster run was last applied.
    pub last_applied_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Last change of the connection.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Checks the values of a connection; returns the normalised base URL, token URL and page
/// size.
fn validate(
    new: &NewConnection,
    config: &OneRosterConfig,
) -> Result<(String, String, u64), ConnectionError> {
    let checked = check_values(new, config)?;
    if new.client_secret.expose().is_empty() {
        return Err(ConnectionError::Invalid(
            "the client secret is empty (give it in ONEROSTER_CLIENT_SECRET or on standard input)"
                .into(),
        ));
    }
    Ok(checked)
}

/// Checks the values of a connection other than its secret (so `oneroster connect` can
/// refuse a malformed URL before it asks for the secret); returns the normalised base URL,
/// token URL and page size.
pub fn check_values(
    new: &NewConnection,
    config: &OneRosterConfig,
) -> Result<(String, String, u64), ConnectionError> {
    let url = |name: &str, value: &str| -> Result<String, ConnectionError> {
        let parsed = reqwest::Url::parse(value.trim())
            .map_err(|e| ConnectionError::Invalid(format!("{name} '{value}' is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConnectionError::Invalid(format!(
                "{name} must be an http or https URL, not '{value}'"
            )));
        }
        Ok(value.trim().to_string())
    };
    let base_url = url("the base URL", &new.base_url)?
        .trim_end_matches('/')
        .to_string();
    let token_url = url("the token URL", &new.token_url)?;
    if new.client_id.trim().is_empty() {
        return Err(ConnectionError::Invalid("the client id is empty".into()));
    }
    let page_size = new.page_size.unwrap_or(config.default_page_size);
    if page_size == 0 || page_size > config.max_page_size {
        return Err(ConnectionError::Invalid(format!(
            "the page size must be between 1 and {}, not {page_size}",
            config.max_page_size
        )));
    }
    Ok((base_url, token_url, page_size))
}

/// Refuses URLs that are, or resolve to, internal addresses unless `outbound.allow_private`
/// (each request is checked again when it is made).
async fn check_reachable(config: &Config, urls: &[&str]) -> Result<(), ConnectionError> {
    let policy = crate::outbound::Policy::from_config(&config.outbound);
    for raw in urls {
        let url = reqwest::Url::parse(raw)
            .map_err(|e| ConnectionError::Invalid(format!("'{raw}' is not a URL: {e}")))?;
        match policy.check_resolved(&url).await {
            // A name that does not resolve now may later; each request is checked then.
            Ok(()) | Err(crate::outbound::OutboundError::Unresolved { .. }) => {}
            Err(e) => return Err(ConnectionError::Invalid(e.to_string())),
        }
    }
    Ok(())
}

/// Stores (creates or replaces) the tenant's connection, audited without the secret. A
/// changed base URL clears the delta watermark (it belonged to another provider).
pub async fn save(
    db: &DatabaseConnection,
    config: &Config,
    tenant_id: TenantId,
    new: &NewConnection,
    actor: &str,
) -> Result<ConnectionView, ConnectionError> {
    let (base_url, token_url, page_size) = validate(new, &config.oneroster)?;
    check_reachable(config, &[&base_url, &token_url]).await?;
    let key = SecretKey::from_config(config)?;
    let sealed = key.seal(tenant_id, &new.client_secret)?;
    let now = chrono::Utc::now();
    let txn = db::begin_write(db).await?;
    let before = view(&txn, tenant_id).await?;
    let watermark = before
        .as_ref()
        .filter(|b| b.base_url == base_url)
        .and_then(|b| b.watermark.clone());
    let values = vec![
        Value::BigInt(Some(tenant_id.0)),
        base_url.clone().into(),
        token_url.clone().into(),
        new.client_id.trim().to_string().into(),
        sealed.into(),
        Value::BigInt(Some(page_size as i64)),
        Value::String(watermark),
        Value::ChronoDateTimeUtc(Some(now)),
    ];
    if before.is_some() {
        db::exec(&txn,
            "UPDATE oneroster_connections SET base_url = $2, token_url = $3, client_id = $4, client_secret_encrypted = $5, \
             page_size = $6, watermark = $7, updated_at = $8 WHERE tenant_id = $1",
            values,
        )
        .await?;
    } else {
        db::exec(&txn,
            "INSERT INTO oneroster_connections (tenant_id, base_url, token_url, client_id, client_secret_encrypted, page_size, watermark, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            values,
        )
        .await?;
    }
    let after = view(&txn, tenant_id)
        .await?
        .ok_or_else(|| DbErr::Custom("the connection was not stored".into()))?;
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(tenant_id),
            actor,
            action: "oneroster.connect",
            target: Some(format!("oneroster_connection:{}", tenant_id.0)),
            before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
            after: Some(serde_json::to_value(&after).unwrap_or_default()),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(after)
}

const COLUMNS: &str = "base_url, token_url, client_id, page_size, watermark, last_applied_at, updated_at, client_secret_encrypted";

/// The stored connection as [`COLUMNS`] reads it.
#[derive(FromQueryResult)]
struct ConnectionRow {
    base_url: String,
    token_url: String,
    client_id: String,
    page_size: i64,
    watermark: Option<String>,
    last_applied_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_at: chrono::DateTime<chrono::Utc>,
    client_secret_encrypted: String,
}

impl ConnectionRow {
    fn view(&self) -> ConnectionView {
        ConnectionView {
            base_url: self.base_url.clone(),
            token_url: self.token_url.clone(),
            client_id: self.client_id.clone(),
            page_size: self.page_size.max(1) as u64,
            secret_stored: true,
            watermark: self.watermark.clone(),
            last_applied_at: self.last_applied_at,
            updated_at: self.updated_at,
        }
    }
}

fn view_of(row: &QueryResult) -> Result<ConnectionView, DbErr> {
    Ok(ConnectionRow::from_query_result(row, "")?.view())
}

/// The tenant's connection without its secret, if any.
pub async fn view<C: ConnectionTrait>(
    conn: &C,
    tenant_id: TenantId,
) -> Result<Option<ConnectionView>, DbErr> {
    let rows = db::query(
        conn,
        &format!("SELECT {COLUMNS} FROM oneroster_connections WHERE tenant_id = $1"),
        vec![Value::BigInt(Some(tenant_id.0))],
    )
    .await?;
    rows.first().map(view_of).transpose()
}

/// The tenant's connection with its secret decrypted, if any.
pub async fn load(
    db: &DatabaseConnection,
    config: &Config,
    tenant_id: TenantId,
) -> Result<Option<Connection>, ConnectionError> {
    let rows = db::query(
        db,
        &format!("SELECT {COLUMNS} FROM oneroster_connections WHERE tenant_id = $1"),
        vec![Value::BigInt(Some(tenant_id.0))],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let stored = ConnectionRow::from_query_result(row, "")?;
    let (view, sealed) = (stored.view(), stored.client_secret_encrypted);
    let key = SecretKey::existing(config)?;
    Ok(Some(Connection {
        tenant_id,
        base_url: view.base_url,
        token_url: view.token_url,
        client_id: view.client_id,
        client_secret: key.open(tenant_id, &sealed)?,
        page_size: view.page_size,
        watermark: view.watermark,
    }))
}

/// Slugs of the tenants that have a connection (for the scheduler).
pub async fn connected_tenants(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let rows = db::query(
        db,
        "SELECT t.slug FROM oneroster_connections c JOIN tenants t ON t.id = c.tenant_id ORDER BY t.slug",
        vec![],
    )
    .await?;
    rows.iter().map(|r| r.try_get("", "slug")).collect()
}

/// Records an applied run on the connection inside the run's transaction: its time and
/// the new watermark (kept as it was when the run saw no `dateLastModified`).
pub async fn mark_applied(
    conn: &mut ImportConn,
    tenant_id: TenantId,
    watermark: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    conn.exec(
        "UPDATE oneroster_connections SET watermark = COALESCE($2, watermark), last_applied_at = $3 WHERE tenant_id = $1",
        vec![
            Value::BigInt(Some(tenant_id.0)),
            Value::String(watermark.map(str::to_string)),
            Value::ChronoDateTimeUtc(Some(at)),
        ],
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretKey {
        let mut config = crate::config::Config::defaults().unwrap();
        config.oneroster.secret_key =
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into();
        SecretKey::from_config(&config).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_tenant() {
        let key = key();
        let sealed = key.seal(TenantId(7), &Secret::new("s3cret")).unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.open(TenantId(7), &sealed).unwrap().expose(), "s3cret");
        assert!(key.open(TenantId(8), &sealed).is_err());
        assert!(key.open(TenantId(7), "v1:00").is_err());
    }

    #[test]
    fn a_missing_key_file_is_never_replaced_when_secrets_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::defaults().unwrap();
        config.database.url = format!("sqlite://{}?mode=rwc", dir.path().join("pc.db").display());
        let error = SecretKey::existing(&config).unwrap_err().to_string();
        assert!(
            error.contains("missing") && error.contains("restore"),
            "{error}"
        );
        assert!(
            !dir.path().join("oneroster-secret.key").exists(),
            "no key was made"
        );
        let made = SecretKey::from_config(&config).unwrap();
        let sealed = made.seal(TenantId(1), &Secret::new("s")).unwrap();
        let read = SecretKey::existing(&config).unwrap();
        assert_eq!(read.open(TenantId(1), &sealed).unwrap().expose(), "s");
    }

    #[test]
    fn secrets_are_redacted_and_a_missing_key_is_explained() {
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "Secret(***)");
        let mut config = crate::config::Config::defaults().unwrap();
        config.database.url = "postgres://u:p@127.0.0.1:1/pc".into();
        let error = SecretKey::from_config(&config).unwrap_err().to_string();
        assert!(
            error.contains("PARENT_CONNECTION__ONEROSTER__SECRET_KEY"),
            "{error}"
        );
    }
}
