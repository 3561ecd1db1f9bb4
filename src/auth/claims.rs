//! The JWT claims this service issues and accepts.

use serde::{Deserialize, Serialize};

/// `idtyp` of a person's token.
pub const KIND_USER: &str = "user";
/// `idtyp` of an app-only token.
pub const KIND_APP: &str = "app";
/// `idtyp` of a parent/guardian token.
pub const KIND_CONTACT: &str = "contact";

/// `aud` may be one string or a list (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// The claims of a bearer token.
///
/// `iss`, `aud`, `exp` and `sub` are required; `nbf` is checked when present. The tenant is
/// the tenant's slug; a person's token lists `roles`, an app-only token lists `scp`
/// (space-separated, as Microsoft identity tokens do) and has `idtyp: "app"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: Audience,
    /// Subject: a SIS source id (person), an app id, or a contact id.
    pub sub: String,
    /// Tenant slug.
    pub tenant: String,
    /// `user` (default), `app` or `contact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    /// Roles of a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Scopes of an app, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    /// Issued at (seconds since the epoch).
    #[serde(default)]
    pub iat: i64,
    /// Not before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Claims {
    /// How long the token is valid, in seconds: `exp - iat`, or `exp - now` when it has no
    /// `iat` (an `iat` in the future counts from now).
    pub fn lifetime(&self, now: i64) -> i64 {
        let from = if self.iat > 0 { self.iat.min(now) } else { now };
        self.exp.saturating_sub(from)
    }
}
