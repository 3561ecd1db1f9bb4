//! The links messages carry, and the signed tokens in them.
//!
//! - Join links: `{invites.join_url}{token}`, the invitation's stored random token (default
//!   base `{web.public_url}/join/`).
//! - Digest unsubscribe links: `{web.public_url}/unsubscribe/{token}`, where the token is
//!   signed rather than stored: base64url of `purpose (1 byte) ‖ tenant id (8) ‖ contact id
//!   (8) ‖ HMAC-SHA256 of those 17 bytes (32)`, keyed with the tenant's own random secret
//!   (`tenants.link_secret`). Any instance on the same database verifies it, on SQLite and
//!   PostgreSQL, without configuration; a token names one guardian of one tenant for one
//!   purpose and cannot be altered to name another.

use crate::config::Config;
use crate::db;
use crate::domain::TenantId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sea_orm::{ConnectionTrait, DbErr, Value};

/// What a signed link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Unsubscribe one guardian from the weekly digest.
    DigestUnsubscribe,
}

impl Purpose {
    fn byte(self) -> u8 {
        match self {
            Purpose::DigestUnsubscribe => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Purpose::DigestUnsubscribe),
            _ => None,
        }
    }
}

/// A signed link token, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    /// What it is for.
    pub purpose: Purpose,
    /// The tenant.
    pub tenant: TenantId,
    /// The guardian.
    pub contact: i64,
    mac: Vec<u8>,
}

const HEAD: usize = 17;
const MAC: usize = 32;

fn head(purpose: Purpose, tenant: TenantId, contact: i64) -> [u8; HEAD] {
    let mut out = [0u8; HEAD];
    out[0] = purpose.byte();
    out[1..9].copy_from_slice(&tenant.0.to_be_bytes());
    out[9..17].copy_from_slice(&contact.to_be_bytes());
    out
}

fn key(secret: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
}

/// A new tenant secret: 32 random bytes as 64 hex characters.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    // The system generator only fails when the OS has no randomness at all.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator failed");
    crate::secrets::to_hex(&bytes)
}

/// Signs a token for `contact` of `tenant` with the tenant's `secret`.
pub fn sign(secret: &str, purpose: Purpose, tenant: TenantId, contact: i64) -> String {
    let head = head(purpose, tenant, contact);
    let tag = hmac::sign(&key(secret), &head);
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(tag.as_ref());
    URL_SAFE_NO_PAD.encode(bytes)
}

impl SignedToken {
    /// Reads a token's fields (`None`: not a token of ours). Verify it with
    /// [`SignedToken::verify`] before acting on it.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() > 128 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
        if bytes.len() != HEAD + MAC {
            return None;
        }
        let number = |range: std::ops::Range<usize>| {
            Some(i64::from_be_bytes(bytes.get(range)?.try_into().ok()?))
        };
        Some(Self {
            purpose: Purpose::from_byte(bytes[0])?,
            tenant: TenantId(number(1..9)?),
            contact: number(9..17)?,
            mac: bytes[HEAD..].to_vec(),
        })
    }

    /// True when the tenant's `secret` signed this token (constant-time comparison).
    pub fn verify(&self, secret: &str) -> bool {
        hmac::verify(
            &key(secret),
            &head(self.purpose, self.tenant, self.contact),
            &self.mac,
        )
        .is_ok()
    }
}

/// The tenant's link secret as stored; `None` for an unknown tenant or one without a
/// secret yet. Only reads: links are verified by people without a session.
pub async fn tenant_secret<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> Result<Option<String>, DbErr> {
    let rows = db::query(
        conn,
        "SELECT link_secret FROM tenants WHERE id = $1",
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?;
    match rows.first() {
        Some(row) => row.try_get::<Option<String>>("", "link_secret"),
        None => Ok(None),
    }
}

/// The tenant's link secret for signing links, created for a tenant that has none yet
/// (every tenant gets one at creation and in the migration; this covers anything older).
pub async fn signing_secret<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
) -> Result<Option<String>, DbErr> {
    if let Some(secret) = tenant_secret(conn, tenant).await? {
        return Ok(Some(secret));
    }
    db::exec(
        conn,
        "UPDATE tenants SET link_secret = $1 WHERE id = $2 AND link_secret IS NULL",
        vec![new_secret().into(), Value::BigInt(Some(tenant.0))],
    )
    .await?;
    tenant_secret(conn, tenant).await
}

/// Where the links in messages point (from the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// Public base URL of the pages, without a trailing slash.
    pub public_url: String,
    /// Join link base (the token is appended).
    pub join_url: String,
    /// Mailbox for unsubscribe requests by email (empty: none).
    pub unsubscribe_mailto: String,
}

impl Links {
    /// The links of `config` (`web.public_url`, `invites.join_url`, `mail.unsubscribe_mailto`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            public_url: config
                .web
                .public_url
                .trim()
                .trim_end_matches('/')
                .to_string(),
            join_url: config.join_url(),
            unsubscribe_mailto: config.mail.unsubscribe_mailto.trim().to_string(),
        }
    }

    /// The join link of an invitation token.
    pub fn join(&self, token: &str) -> String {
        format!("{}{token}", self.join_url)
    }

    /// The one-click unsubscribe link of a signed token.
    pub fn unsubscribe(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.public_url)
    }

    /// The `mailto:` unsubscribe address of a signed token, when a mailbox is configured.
    pub fn unsubscribe_mailto(&self, token: &str) -> Option<String> {
        (!self.unsubscribe_mailto.is_empty()).then(|| {
            format!(
                "mailto:{}?subject=unsubscribe%20{token}",
                self.unsubscribe_mailto
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_secret_and_fields() {
        let secret = new_secret();
        assert_eq!(secret.len(), 64);
        let token = sign(&secret, Purpose::DigestUnsubscribe, TenantId(7), 42);
        let parsed = SignedToken::parse(&token).unwrap();
        assert_eq!((parsed.tenant, parsed.contact), (TenantId(7), 42));
        assert!(parsed.verify(&secret));
        assert!(!parsed.verify(&new_secret()));
        // Another contact with the same MAC does not verify.
        let mut forged = parsed.clone();
        forged.contact = 43;
        assert!(!forged.verify(&secret));
        assert!(SignedToken::parse("not-a-token").is_none());
        assert!(SignedToken::parse(&token[..token.len() - 2]).is_none());
    }
}
