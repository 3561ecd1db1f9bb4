//! Text both database engines can store: PostgreSQL's `text` holds no U+0000 (SQLite would
//! keep it), so values carrying one are refused where they come in — the CSV readers with
//! `nul_character`, JSON bodies and OneRoster records with this check.

/// The longest reason an admin may give (for a rejection, an erasure, a restriction).
pub const MAX_REASON_CHARS: usize = 1000;

/// An admin's reason for a decision: trimmed, not empty, at most [`MAX_REASON_CHARS`]
/// characters, no U+0000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

/// Why a reason was refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    /// Nothing but white space.
    #[error("give a reason")]
    Empty,
    /// Longer than [`MAX_REASON_CHARS`].
    #[error("at most {MAX_REASON_CHARS} characters")]
    TooLong,
    /// Holds U+0000, which PostgreSQL cannot store.
    #[error("must not contain U+0000")]
    Nul,
}

impl Reason {
    /// Parses what an admin typed.
    pub fn parse(raw: &str) -> Result<Self, ReasonError> {
        let reason = raw.trim();
        if reason.is_empty() {
            Err(ReasonError::Empty)
        } else if reason.chars().count() > MAX_REASON_CHARS {
            Err(ReasonError::TooLong)
        } else if reason.contains('\0') {
            Err(ReasonError::Nul)
        } else {
            Ok(Reason(reason.to_string()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// True when a JSON value holds U+0000 in any string or key, at any depth.
pub fn json_holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(json_holds_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || json_holds_nul(value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_required_and_bounded() {
        assert_eq!(
            Reason::parse("  court order ").unwrap().as_str(),
            "court order"
        );
        assert_eq!(Reason::parse(" \n "), Err(ReasonError::Empty));
        assert_eq!(Reason::parse(&"x".repeat(1001)), Err(ReasonError::TooLong));
        assert!(Reason::parse(&"é".repeat(1000)).is_ok());
        assert_eq!(Reason::parse("a\0b"), Err(ReasonError::Nul));
    }

    #[test]
    fn a_nul_anywhere_is_found() {
        assert!(json_holds_nul(&serde_json::json!({"a": ["x", "y\u{0}"]})));
        assert!(json_holds_nul(&serde_json::json!({"k\u{0}": 1})));
        assert!(!json_holds_nul(&serde_json::json!({"a": ["x", 1, null]})));
    }
}
