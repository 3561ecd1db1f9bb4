//! Redaction of an erased person's values wherever they were copied (audit entries,
//! requests, import reports, delivery rows): the field names stay, the values become
//! [`MARKER`].

use serde_json::Value as Json;

/// What replaces an erased value.
pub const MARKER: &str = "[erased]";

/// Keys whose values describe no person (ids, actions, flags): kept when a whole JSON
/// document about an erased contact is redacted ([`Scope::Everything`]).
const NOT_PERSONAL: &[&str] = &[
    "action",
    "studentId",
    "contactId",
    "relationship",
    "status",
    "stale",
    "erasureId",
    "contactDeleted",
    "optedOut",
    "at",
    "method",
];

/// The forms in which one person's values may have been copied: whole emails and their
/// local parts, phone digits, names as whole words. Matching ignores case.
#[derive(Debug, Clone, Default)]
pub struct Needles {
    substrings: Vec<String>,
    words: Vec<String>,
    digits: Vec<String>,
}

/// Phone digits shorter than this match too much to be searched for.
const MIN_DIGITS: usize = 7;

impl Needles {
    /// Adds an email address (and its local part).
    pub fn email(&mut self, value: Option<&str>) -> &mut Self {
        if let Some(email) = value.map(str::trim).filter(|v| !v.is_empty()) {
            let email = email.to_lowercase();
            if let Some((local, _)) = email.split_once('@').filter(|(l, _)| l.len() >= 3) {
                self.substrings.push(local.to_string());
            }
            self.substrings.push(email);
        }
        self
    }

    /// Adds a phone number (its digits, and the last seven of them).
    pub fn phone(&mut self, value: Option<&str>) -> &mut Self {
        let digits: String = value
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if digits.len() >= MIN_DIGITS {
            self.digits
                .push(digits[digits.len() - MIN_DIGITS..].to_string());
        }
        self
    }

    /// Adds an identifier, matched anywhere (when at least three characters long).
    pub fn text(&mut self, value: Option<&str>) -> &mut Self {
        if let Some(text) = value.map(str::trim).filter(|v| v.chars().count() >= 3) {
            self.substrings.push(text.to_lowercase());
        }
        self
    }

    /// Adds a name, matched as whole words (those with a letter).
    pub fn words(&mut self, value: Option<&str>) -> &mut Self {
        let named = words(value.unwrap_or_default()).filter(|w| w.chars().any(char::is_alphabetic));
        for word in named {
            if !self.words.contains(&word) {
                self.words.push(word);
            }
        }
        self
    }

    /// Whether `text` holds any of the values.
    pub fn matches(&self, text: &str) -> bool {
        let lower = text.to_lowercase();
        if self.substrings.iter().any(|s| lower.contains(s.as_str())) {
            return true;
        }
        if !self.digits.is_empty() {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            if self.digits.iter().any(|d| digits.contains(d.as_str())) {
                return true;
            }
        }
        words(&lower).any(|w| self.words.contains(&w))
    }
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Which values of a JSON document are redacted.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every value except those of [`NOT_PERSONAL`] keys: the document is about the person.
    Everything,
    /// Only strings that hold one of the person's values.
    Matching(&'a Needles),
}

/// Redacts `value` in place; returns whether anything changed.
pub fn json(value: &mut Json, scope: Scope<'_>) -> bool {
    match value {
        Json::Object(map) => {
            let mut changed = false;
            for (key, item) in map.iter_mut() {
                if matches!(scope, Scope::Everything) && NOT_PERSONAL.contains(&key.as_str()) {
                    continue;
                }
                changed |= json(item, scope);
            }
            changed
        }
        Json::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| json(item, scope) | changed),
        Json::String(text) if text != MARKER => {
            let hit = match scope {
                Scope::Everything => true,
                Scope::Matching(needles) => needles.matches(text),
            };
            if hit {
                *text = MARKER.to_string();
            }
            hit
        }
        Json::Number(_) | Json::Bool(_) if matches!(scope, Scope::Everything) => false,
        _ => false,
    }
}

/// Redacts a stored text that should hold JSON; text that does not parse is redacted whole
/// when it holds one of the values. `None` when nothing changed.
pub fn stored(text: &str, scope: Scope<'_>) -> Option<String> {
    match serde_json::from_str::<Json>(text) {
        Ok(mut value) => json(&mut value, scope).then(|| value.to_string()),
        Err(_) => {
            let hit = match scope {
                Scope::Everything => text != MARKER,
                Scope::Matching(needles) => needles.matches(text),
            };
            hit.then(|| MARKER.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    fn zelda() -> Needles {
        let mut n = Needles::default();
        n.email(Some("Zelda.Quill@Example.com"))
            .phone(Some("+12025550177"))
            .words(Some("Zelda"))
            .words(Some("Quill"));
        n
    }

    #[test]
    fn needles_match_copies_in_any_case_and_spelling() {
        let n = zelda();
        for hit in [
            "zelda.quill@example.com",
            "550 <ZELDA.QUILL@EXAMPLE.COM>",
            "zelda.quill",
            "'(202) 555-0177x' is not a valid phone",
            "Dear Zelda,",
            "quill",
        ] {
            assert!(n.matches(hit), "{hit}");
        }
        for miss in ["quilled", "linda.ng@example.com", "555-0143", "zeldas"] {
            assert!(!n.matches(miss), "{miss}");
        }
    }

    #[test]
    fn json_keeps_field_names_and_ids() {
        let mut doc = j!({"action": "update", "contactId": "7", "proposed":
            {"givenName": "Zelda", "emailAddress": null, "relationship": "parent"}});
        assert!(json(&mut doc, Scope::Everything));
        assert_eq!(
            doc,
            j!({"action": "update", "contactId": "7", "proposed":
                {"givenName": MARKER, "emailAddress": null, "relationship": "parent"}})
        );
        let mut report = j!({"warnings": [{"message": "'zelda.quill@' bad"}, {"message": "ok"}]});
        assert!(json(&mut report, Scope::Matching(&zelda())));
        assert_eq!(report["warnings"][0]["message"], MARKER);
        assert_eq!(report["warnings"][1]["message"], "ok");
        assert_eq!(
            stored("not json zelda", Scope::Matching(&zelda())).as_deref(),
            Some(MARKER)
        );
        assert_eq!(stored("{\"a\":\"b\"}", Scope::Matching(&zelda())), None);
    }
}
