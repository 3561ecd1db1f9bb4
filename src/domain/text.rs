//! Text both database engines can store: PostgreSQL's `text` holds no U+0000 (SQLite would
//! keep it), so values carrying one are refused where they come in — the CSV readers with
//! `nul_character`, JSON bodies and OneRoster records with this check.

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
    fn a_nul_anywhere_is_found() {
        assert!(json_holds_nul(&serde_json::json!({"a": ["x", "y\u{0}"]})));
        assert!(json_holds_nul(&serde_json::json!({"k\u{0}": 1})));
        assert!(!json_holds_nul(&serde_json::json!({"a": ["x", 1, null]})));
    }
}
