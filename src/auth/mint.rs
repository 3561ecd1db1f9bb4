//! Development tokens for `parent-connection token`. They are signed with the configured
//! development key (the HS256 `JWT_SECRET`, with `auth.development = true`); signing with
//! anything else (an RS256 private key in `auth.signing_key_path`, or a secret the service
//! does not accept because development is off) is refused unless forced. A secret published
//! in our documentation is refused even when forced.

use super::Scope;
use super::claims::{Audience, Claims, KIND_APP, KIND_CONTACT, KIND_USER};
use super::keys::{MIN_SECRET_BYTES, check_development_secret};
use crate::config::AuthConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;

/// Why no token was made.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// There is no key to sign with.
    #[error(
        "no signing key: set JWT_SECRET (at least {MIN_SECRET_BYTES} bytes) for development tokens"
    )]
    NoKey,
    /// The key is not a development key and `--force` was not given.
    #[error("refusing to mint: {0} (pass --force to sign anyway)")]
    NotDevelopment(String),
    /// The key cannot be used.
    #[error("cannot sign: {0}")]
    Key(String),
    /// A bad request (ttl, subject).
    #[error("{0}")]
    Invalid(String),
}

/// The key `token` signs with.
pub struct SigningKey {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
    /// True for the HS256 development secret the service accepts.
    pub development: bool,
    /// Why the key is not a development key.
    pub reason: Option<String>,
}

impl SigningKey {
    /// The signing key `[auth]` selects.
    pub fn from_config(config: &AuthConfig) -> Result<Self, MintError> {
        if !config.signing_key_path.is_empty() {
            let pem = std::fs::read(&config.signing_key_path).map_err(|e| {
                MintError::Key(format!("cannot read {}: {e}", config.signing_key_path))
            })?;
            let key = EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                MintError::Key(format!(
                    "{} is not an RSA private key in PEM form: {e}",
                    config.signing_key_path
                ))
            })?;
            return Ok(Self {
                alg: Algorithm::RS256,
                kid: (!config.signing_key_id.is_empty()).then(|| config.signing_key_id.clone()),
                key,
                development: false,
                reason: Some(format!(
                    "auth.signing_key_path names an RS256 private key ({}), which is a production key",
                    config.signing_key_path
                )),
            });
        }
        if config.jwt_secret.is_empty() {
            return Err(MintError::NoKey);
        }
        check_development_secret(&config.jwt_secret).map_err(|e| MintError::Key(e.0))?;
        let accepted = config.development;
        Ok(Self {
            alg: Algorithm::HS256,
            kid: None,
            key: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
            development: accepted,
            reason: (!accepted).then(|| {
                "auth.development is off, so this deployment does not accept development tokens (set PARENT_CONNECTION__AUTH__DEVELOPMENT=true)"
                    .to_string()
            }),
        })
    }

    /// Fails with [`MintError::NotDevelopment`] unless this is a development key or `force`.
    pub fn check(&self, force: bool) -> Result<(), MintError> {
        match (&self.reason, force) {
            (Some(reason), false) => Err(MintError::NotDevelopment(reason.clone())),
            _ => Ok(()),
        }
    }
}

/// Who the token is for: the same kinds of caller a verified token stands for.
pub use super::Identity as Subject;

/// Claims for `subject` in `tenant`, valid from now for `ttl`.
pub fn claims(config: &AuthConfig, tenant: &str, subject: &Subject, ttl: Duration) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let (sub, idtyp, roles, scp) = match subject {
        Subject::User { source_id, roles } => (
            source_id.clone(),
            KIND_USER,
            roles.iter().map(|r| r.as_str().to_string()).collect(),
            None,
        ),
        Subject::App { app_id, scopes } => (
            app_id.clone(),
            KIND_APP,
            Vec::new(),
            Some(
                scopes
                    .iter()
                    .map(Scope::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ),
        Subject::Contact { contact_id } => (contact_id.clone(), KIND_CONTACT, Vec::new(), None),
    };
    Claims {
        iss: config.issuer.clone(),
        aud: Audience::One(config.audience.clone()),
        sub,
        tenant: tenant.to_string(),
        idtyp: Some(idtyp.to_string()),
        roles,
        scp,
        iat: now,
        nbf: Some(now),
        exp: now.saturating_add(ttl),
        jti: Some(uuid::Uuid::new_v4().to_string()),
    }
}

/// Signs `claims` with `key`.
pub fn sign(key: &SigningKey, claims: &Claims) -> Result<String, MintError> {
    let mut header = Header::new(key.alg);
    header.kid = key.kid.clone();
    jsonwebtoken::encode(&header, claims, &key.key).map_err(|e| MintError::Key(e.to_string()))
}

/// Parses a lifetime: `90s`, `15m`, `1h`, `7d`, or plain seconds. At most 30 days.
pub fn parse_ttl(raw: &str) -> Result<Duration, String> {
    parse_duration(raw, 30)
}

/// Parses `auth.max_token_lifetime`: a duration as [`parse_ttl`] reads it, at most 365 days.
pub fn parse_max_lifetime(raw: &str) -> Result<Duration, String> {
    parse_duration(raw, 365).map_err(|e| format!("auth.max_token_lifetime: {e}"))
}

/// A duration of 1 second to `max_days` days.
fn parse_duration(raw: &str, max_days: u64) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{raw}' is not a duration: use e.g. 90s, 15m, 1h or 7d"))?;
    let seconds = match unit {
        "s" => Some(value),
        "m" => value.checked_mul(60),
        "h" => value.checked_mul(3600),
        "d" => value.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("'{raw}' is not a duration: use e.g. 90s, 15m, 1h or 7d"))?;
    if seconds == 0 || seconds > max_days * 86_400 {
        return Err(format!(
            "'{raw}': a token lives between 1 second and {max_days} days"
        ));
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("31d").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("99999999999999999999d").is_err());
    }
}
