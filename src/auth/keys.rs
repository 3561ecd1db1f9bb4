//! Token verification with keys from the configuration only: RS256 public keys in PEM files
//! and in a JWKS file, and, only with `auth.development = true`, the HS256 development
//! secret (`JWT_SECRET`). The accepted algorithms are `auth.algorithms` (default RS256),
//! plus HS256 under development; HS256 listed without development, and a development
//! secret published in our documentation, stop start-up. `none` is never accepted; `exp`,
//! `nbf`, `aud` and `iss` are checked.

use super::claims::{Claims, KIND_APP, KIND_CONTACT, KIND_USER};
use super::{Identity, Role, Scope};
use crate::config::AuthConfig;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// Shortest accepted HS256 secret, bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Development secrets that appear in our documentation and scripts: anyone can sign with
/// them, so they are refused even under development.
pub const KNOWN_EXAMPLE_SECRETS: [&str; 2] = [
    "dev-only-secret-change-me-0123456789abcdef",
    "schemathesis-only-secret-0123456789abcdef",
];

/// Checks a development secret: long enough and not a published example.
pub fn check_development_secret(secret: &str) -> Result<(), SetupError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(SetupError(format!(
            "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (make one with `openssl rand -hex 32`)"
        )));
    }
    if KNOWN_EXAMPLE_SECRETS.contains(&secret.trim()) {
        return Err(SetupError(
            "JWT_SECRET is an example secret published in our documentation, so anyone can sign tokens with it: make your own with `openssl rand -hex 32`".into(),
        ));
    }
    Ok(())
}

/// The algorithms `[auth]` accepts: `algorithms`, plus HS256 when `development` is on.
/// HS256 listed without `development` is refused.
pub fn accepted_algorithms(config: &AuthConfig) -> Result<Vec<Algorithm>, SetupError> {
    let mut algorithms = config
        .algorithms
        .iter()
        .map(|name| parse_algorithm(name))
        .collect::<Result<Vec<_>, _>>()?;
    if algorithms.contains(&Algorithm::HS256) && !config.development {
        return Err(SetupError(
            "auth.algorithms lists HS256, which is accepted only in development: set PARENT_CONNECTION__AUTH__DEVELOPMENT=true, or remove HS256".into(),
        ));
    }
    if config.development && !algorithms.contains(&Algorithm::HS256) {
        algorithms.push(Algorithm::HS256);
    }
    if algorithms.is_empty() {
        return Err(SetupError("auth.algorithms is empty".into()));
    }
    Ok(algorithms)
}

/// What `serve` warns about at start: development mode on, or a `JWT_SECRET` that is
/// ignored because it is off.
pub fn warnings(config: &AuthConfig) -> Vec<String> {
    match (config.development, config.jwt_secret.is_empty()) {
        (true, _) => vec![
            "auth.development is on: HS256 development tokens are accepted; never run a production deployment like this".into(),
        ],
        (false, false) => vec![
            "JWT_SECRET is set but auth.development is off: HS256 tokens are refused".into(),
        ],
        (false, true) => Vec::new(),
    }
}

/// Why the configured keys cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("authentication setup: {0}")]
pub struct SetupError(pub String);

/// Why a token was refused. The message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or an unreadable header or payload (including `alg: none`).
    #[error("the token is malformed")]
    Malformed,
    /// The algorithm is not in the allow-list.
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// No configured key matches the token's algorithm and key id.
    #[error("no key to verify the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// `exp` is past.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Wrong `aud`.
    #[error("the token is not meant for this service (audience)")]
    WrongAudience,
    /// Wrong `iss`.
    #[error("the token's issuer is not trusted")]
    WrongIssuer,
    /// A required claim is missing or has the wrong type.
    #[error("the token lacks a required claim: {0}")]
    MissingClaim(String),
    /// `exp` is further from `iat` (or now) than `auth.max_token_lifetime`.
    #[error("the token lives longer than this service accepts (auth.max_token_lifetime)")]
    LifetimeTooLong,
}

impl TokenError {
    /// Stable error code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::LifetimeTooLong => "token_lifetime_too_long",
            _ => "invalid_token",
        }
    }
}

struct VerifyKey {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens against the configured keys.
pub struct Verifier {
    keys: Vec<VerifyKey>,
    algorithms: Vec<Algorithm>,
    audience: String,
    issuer: String,
    leeway: u64,
    max_lifetime: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("algorithms", &self.algorithms)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Parses an algorithm name of the allow-list. Only HS256 and RS256 are supported.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, SetupError> {
    match name {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        other => Err(SetupError(format!(
            "auth.algorithms: '{other}' is not supported (use HS256 and/or RS256)"
        ))),
    }
}

impl Verifier {
    /// Builds the verifier from `[auth]`, reading the key files it names.
    pub fn from_config(config: &AuthConfig) -> Result<Self, SetupError> {
        let algorithms = accepted_algorithms(config)?;
        let mut keys = Vec::new();
        if config.development && !config.jwt_secret.is_empty() {
            check_development_secret(&config.jwt_secret)?;
            keys.push(VerifyKey {
                kid: None,
                alg: Algorithm::HS256,
                key: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            });
        }
        if algorithms.contains(&Algorithm::RS256) {
            for path in &config.rs256_public_key_paths {
                let pem = std::fs::read(path).map_err(|e| {
                    SetupError(format!("cannot read the RS256 public key {path}: {e}"))
                })?;
                let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    SetupError(format!("{path} is not an RSA public key in PEM form: {e}"))
                })?;
                keys.push(VerifyKey {
                    kid: None,
                    alg: Algorithm::RS256,
                    key,
                });
            }
            if !config.jwks_path.is_empty() {
                keys.extend(read_jwks(&config.jwks_path)?);
            }
        }
        Ok(Self {
            keys,
            algorithms,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            leeway: config.leeway_seconds,
            max_lifetime: crate::auth::mint::parse_max_lifetime(&config.max_token_lifetime)
                .map_err(SetupError)?
                .as_secs() as i64,
        })
    }

    /// True when at least one key is configured (otherwise every token is refused).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Verifies `token` and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway;
        let candidates = self.keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(have)) => wanted == have,
                    _ => true,
                }
        });
        let mut tried = false;
        for candidate in candidates {
            tried = true;
            match jsonwebtoken::decode::<Claims>(token, &candidate.key, &validation) {
                Ok(data)
                    if data.claims.lifetime(chrono::Utc::now().timestamp()) > self.max_lifetime =>
                {
                    return Err(TokenError::LifetimeTooLong);
                }
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature => continue,
                    kind => return Err(map_kind(kind)),
                },
            }
        }
        Err(if tried {
            TokenError::BadSignature
        } else {
            TokenError::UnknownKey
        })
    }
}

fn map_kind(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::MissingClaim(claim.clone())
        }
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        _ => TokenError::Malformed,
    }
}

fn read_jwks(path: &str) -> Result<Vec<VerifyKey>, SetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SetupError(format!("cannot read the JWKS file {path}: {e}")))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| SetupError(format!("{path} is not a JWKS document: {e}")))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            continue;
        }
        if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
            continue;
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| SetupError(format!("{path}: a key cannot be used: {e}")))?;
        keys.push(VerifyKey {
            kid: jwk.common.key_id.clone(),
            alg: Algorithm::RS256,
            key,
        });
    }
    if keys.is_empty() {
        return Err(SetupError(format!("{path} holds no RS256 signing key")));
    }
    Ok(keys)
}

/// The identity a verified token stands for. Unknown role names are ignored; a token with
/// an unknown `idtyp`, an empty subject or an unreadable scope is refused.
pub fn identity(claims: &Claims) -> Result<Identity, TokenError> {
    if claims.sub.trim().is_empty() {
        return Err(TokenError::MissingClaim("sub".into()));
    }
    match claims.idtyp.as_deref().unwrap_or(KIND_USER) {
        KIND_USER => Ok(Identity::User {
            source_id: claims.sub.clone(),
            roles: claims
                .roles
                .iter()
                .filter_map(|r| r.parse::<Role>().ok())
                .collect(),
        }),
        KIND_APP => Ok(Identity::App {
            app_id: claims.sub.clone(),
            scopes: claims
                .scp
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(Scope::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| TokenError::MissingClaim("scp".into()))?,
        }),
        KIND_CONTACT => Ok(Identity::Contact {
            contact_id: claims.sub.clone(),
        }),
        _ => Err(TokenError::MissingClaim("idtyp".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(development: bool, algorithms: &[&str], secret: &str) -> AuthConfig {
        let mut config = crate::config::Config::defaults().unwrap().auth;
        config.development = development;
        config.algorithms = algorithms.iter().map(|a| a.to_string()).collect();
        config.jwt_secret = secret.into();
        config
    }

    const OWN: &str = "an-own-development-secret-0123456789abcdef";

    #[test]
    fn hs256_is_accepted_only_in_development() {
        let off = Verifier::from_config(&auth(false, &["RS256"], OWN)).unwrap();
        assert_eq!(off.algorithms, [Algorithm::RS256]);
        assert!(!off.has_keys(), "the secret is ignored outside development");
        let on = Verifier::from_config(&auth(true, &["RS256"], OWN)).unwrap();
        assert_eq!(on.algorithms, [Algorithm::RS256, Algorithm::HS256]);
        assert!(on.has_keys());
        let listed = Verifier::from_config(&auth(false, &["HS256", "RS256"], OWN)).unwrap_err();
        assert!(
            listed
                .to_string()
                .contains("PARENT_CONNECTION__AUTH__DEVELOPMENT=true"),
            "{listed}"
        );
        assert_eq!(warnings(&auth(true, &["RS256"], OWN)).len(), 1);
        assert_eq!(warnings(&auth(false, &["RS256"], OWN)).len(), 1);
        assert!(warnings(&auth(false, &["RS256"], "")).is_empty());
    }

    #[test]
    fn published_example_secrets_are_refused() {
        for secret in KNOWN_EXAMPLE_SECRETS {
            let refused = Verifier::from_config(&auth(true, &["RS256"], secret)).unwrap_err();
            assert!(
                refused.to_string().contains("openssl rand -hex 32"),
                "{refused}"
            );
        }
        // Every JWT_SECRET our documentation shows is on the list (or made at random).
        let root = env!("CARGO_MANIFEST_DIR");
        let mut docs = vec![format!("{root}/README.md")];
        for entry in std::fs::read_dir(format!("{root}/docs")).unwrap() {
            docs.push(entry.unwrap().path().display().to_string());
        }
        for doc in docs {
            let text = std::fs::read_to_string(&doc).unwrap_or_default();
            for (_, rest) in text
                .match_indices("JWT_SECRET=")
                .map(|(i, _)| text.split_at(i + 11))
            {
                let value: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '`')
                    .collect();
                if value.is_empty() || value.starts_with('$') || value.len() < MIN_SECRET_BYTES {
                    continue;
                }
                assert!(
                    KNOWN_EXAMPLE_SECRETS.contains(&value.as_str()),
                    "{doc} shows JWT_SECRET={value}: add it to KNOWN_EXAMPLE_SECRETS"
                );
            }
        }
    }
}
