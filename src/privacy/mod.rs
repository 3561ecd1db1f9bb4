//! Privacy: what the service keeps of personal data it was asked to forget. An erased
//! contact's SIS keys and an SMS opt-out must outlive the person's data (so a sync does not
//! re-create them, so a number that said STOP is not texted), but only as **keyed hashes**
//! (HMAC-SHA256 under [`PrivacyKey`]): equal inputs give equal hashes, and without the key
//! nobody can test a guessed email or phone against the stored value. `docs/privacy.md`
//! lists what is kept, where, for how long and why.

pub mod redact;

use crate::config::Config;
use crate::secrets::{DataFolder, KEY_BYTES};
use ring::hmac;

/// Name of the generated key in the data folder (`privacy.key`).
pub const KEY_FILE: &str = "privacy";

/// Why the privacy key could not be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PrivacyError(String);

/// What a keyed hash stands for: the same value hashed for two purposes gives two unrelated
/// hashes, so one table's hashes cannot be joined with another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The SIS key of an erased student–contact pair.
    ErasureKey,
    /// A mobile number that opted out of texts from one sending number.
    SmsOptOut,
    /// An email address the mail server refused for good, of an erased contact.
    EmailSuppression,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::ErasureKey => b"erasure-key",
            Purpose::SmsOptOut => b"sms-opt-out",
            Purpose::EmailSuppression => b"email-suppression",
        }
    }
}

/// The key of the keyed hashes. `Debug` never shows it.
#[derive(Clone)]
pub struct PrivacyKey(hmac::Key);

impl std::fmt::Debug for PrivacyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivacyKey(***)")
    }
}

impl PrivacyKey {
    /// The key configured in `privacy.hash_key` (64 hex characters); when none is
    /// configured on SQLite, the key file `privacy.key` of the data folder, generated on
    /// first need (see [`crate::secrets`]). On PostgreSQL a key must be configured.
    pub fn from_config(config: &Config) -> Result<Self, PrivacyError> {
        let raw = config.privacy.hash_key.trim();
        if !raw.is_empty() {
            return Self::from_hex(raw);
        }
        match DataFolder::of(&config.database) {
            Some(folder) => folder
                .key(KEY_FILE, "the keyed hashes of erased personal data")
                .map(|bytes| Self::from_bytes(&bytes))
                .map_err(|e| PrivacyError(e.to_string())),
            None => Err(PrivacyError(
                "no privacy key: set PARENT_CONNECTION__PRIVACY__HASH_KEY to 64 hex characters (e.g. `openssl rand -hex 32`), the same on every instance; on PostgreSQL it is required".into(),
            )),
        }
    }

    /// A key given as 64 hex characters.
    pub fn from_hex(raw: &str) -> Result<Self, PrivacyError> {
        crate::secrets::from_hex(raw.trim())
            .filter(|b| b.len() == KEY_BYTES)
            .map(|bytes| Self::from_bytes(&bytes))
            .ok_or_else(|| {
                PrivacyError(
                    "privacy.hash_key must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`".into(),
                )
            })
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The keyed hash of `value` for `purpose`: 64 lowercase hex characters. Callers
    /// normalise the value first (an email lowercased, a phone in E.164), so that equal
    /// people give equal hashes.
    pub fn hash(&self, purpose: Purpose, value: &str) -> String {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(purpose.label());
        context.update(&[0]);
        context.update(value.as_bytes());
        crate::secrets::to_hex(context.sign().as_ref())
    }

    /// The stored form of a value kept only as its keyed hash in a column that otherwise
    /// holds plain values (`hmac:` and the hash), so a reader can tell the two apart.
    pub fn marked(&self, purpose: Purpose, value: &str) -> String {
        format!("{HASH_PREFIX}{}", self.hash(purpose, value))
    }
}

/// What starts a keyed hash stored where plain values also live ([`PrivacyKey::marked`]).
pub const HASH_PREFIX: &str = "hmac:";

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PrivacyKey {
        PrivacyKey::from_bytes(&[byte; KEY_BYTES])
    }

    #[test]
    fn equal_inputs_equal_hashes_and_nothing_else_matches() {
        let a = key(1);
        let h = a.hash(Purpose::SmsOptOut, "+15551234567");
        assert_eq!(h.len(), 64);
        assert_eq!(h, a.hash(Purpose::SmsOptOut, "+15551234567"));
        assert_ne!(h, a.hash(Purpose::SmsOptOut, "+15551234568"));
        assert_ne!(h, a.hash(Purpose::ErasureKey, "+15551234567"));
        assert_ne!(h, key(2).hash(Purpose::SmsOptOut, "+15551234567"));
        assert!(!h.contains("5551234567"));
    }

    #[test]
    fn hex_keys_are_checked() {
        assert!(PrivacyKey::from_hex(&"ab".repeat(32)).is_ok());
        let short = PrivacyKey::from_hex("abcd").unwrap_err().to_string();
        assert!(short.contains("64 hex"), "{short}");
        assert!(PrivacyKey::from_hex(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{:?}", key(3)), "PrivacyKey(***)");
    }

    #[test]
    fn postgres_needs_a_configured_key() {
        let mut config = Config::defaults().unwrap();
        config.database.url = "postgres://u:p@localhost/db".into();
        let error = PrivacyKey::from_config(&config).unwrap_err().to_string();
        assert!(
            error.contains("PARENT_CONNECTION__PRIVACY__HASH_KEY"),
            "{error}"
        );
        config.privacy.hash_key = "cd".repeat(32);
        assert!(PrivacyKey::from_config(&config).is_ok());
    }
}
