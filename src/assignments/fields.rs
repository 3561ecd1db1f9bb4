//! Parsing an assignment's fields, shared by the API (JSON) and the CSV import (text), so
//! both refuse the same values with the same messages, each naming its field.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// Longest external id, in characters.
pub const MAX_EXTERNAL_ID: usize = 200;
/// Longest title, in characters.
pub const MAX_TITLE: usize = 300;
/// Longest instructions ("short instructions"), in characters.
pub const MAX_INSTRUCTIONS: usize = 2000;
/// Largest number of points.
pub const MAX_POINTS: f64 = 1_000_000.0;

/// A field that is not valid: its JSON / CSV name and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// `externalId`, `title`, `dueAt`, `points` or `instructions`.
    pub field: &'static str,
    /// What is wrong and what would be valid.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// A checked assignment, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAssignment {
    /// The caller's id of the assignment, unique per class.
    pub external_id: String,
    /// Title, 1–300 characters.
    pub title: String,
    /// Due date-time with the offset it was given in.
    pub due_at: DateTime<FixedOffset>,
    /// Points, 0 or more.
    pub points: Option<f64>,
    /// Short instructions.
    pub instructions: Option<String>,
}

/// Trimmed single-line text of 1..=`max` characters.
fn line(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(invalid(field, "is required and is blank"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            "must be one line without control characters",
        ));
    }
    Ok(value.to_string())
}

/// An external id: 1–200 characters, one line.
pub fn external_id(raw: &str) -> Result<String, FieldError> {
    line("externalId", raw, MAX_EXTERNAL_ID)
}

/// A title: 1–300 characters, one line.
pub fn title(raw: &str) -> Result<String, FieldError> {
    line("title", raw, MAX_TITLE)
}

/// An RFC 3339 date-time **with** an offset (`Z` or `±hh:mm`); a naive time is refused
/// because its instant would depend on a guess.
pub fn due_at(raw: &str) -> Result<DateTime<FixedOffset>, FieldError> {
    let value = raw.trim();
    let example = "e.g. 2026-11-20T23:59:00-05:00 or 2026-11-21T04:59:00Z";
    if value.is_empty() {
        return Err(invalid(
            "dueAt",
            format!("is required and is blank ({example})"),
        ));
    }
    let parsed = DateTime::parse_from_rfc3339(value).map_err(|_| {
        let naive = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").is_ok()
            || chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M").is_ok()
            || chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok();
        let why = if naive {
            "has no offset: add one (Z or ±hh:mm)"
        } else {
            "is not an RFC 3339 date-time with an offset"
        };
        invalid("dueAt", format!("'{value}' {why}, {example}"))
    })?;
    if !(2000..=2200).contains(&parsed.naive_utc().year()) {
        return Err(invalid("dueAt", "must be between the years 2000 and 2200"));
    }
    // Whole seconds: list cursors and comparisons stay exact on both engines.
    Ok(parsed.with_nanosecond(0).unwrap_or(parsed))
}

fn points_value(value: f64) -> Result<f64, FieldError> {
    if value.is_finite() && (0.0..=MAX_POINTS).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            "points",
            format!("must be a number from 0 to {MAX_POINTS}"),
        ))
    }
}

/// Points from text: blank is none; otherwise a number ≥ 0.
pub fn points_text(raw: &str) -> Result<Option<f64>, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let number = value
        .parse::<f64>()
        .map_err(|_| invalid("points", format!("'{value}' is not a number")))?;
    points_value(number).map(Some)
}

/// Points from JSON: null or absent is none; otherwise a number ≥ 0 (not a string).
pub fn points_json(value: Option<&serde_json::Value>) -> Result<Option<f64>, FieldError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| invalid("points", "is not a number"))
            .and_then(points_value)
            .map(Some),
        Some(_) => Err(invalid("points", "must be a number (or null)")),
    }
}

/// Instructions: blank is none; at most 2,000 characters; line breaks and tabs allowed.
pub fn instructions(raw: &str) -> Result<Option<String>, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > MAX_INSTRUCTIONS {
        return Err(invalid(
            "instructions",
            format!("at most {MAX_INSTRUCTIONS} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(invalid("instructions", "must not hold control characters"));
    }
    Ok(Some(value.to_string()))
}

/// A JSON string field: absent or null is `""` (then refused if required), another type
/// is refused.
pub fn json_text<'a>(
    field: &'static str,
    value: Option<&'a serde_json::Value>,
) -> Result<&'a str, FieldError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(""),
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_needs_an_offset() {
        assert_eq!(
            due_at("2026-11-20T23:59:00-05:00").unwrap().to_rfc3339(),
            "2026-11-20T23:59:00-05:00"
        );
        assert!(due_at("2026-11-21T04:59:00Z").is_ok());
        let naive = due_at("2026-11-20T23:59:00").unwrap_err();
        assert_eq!(naive.field, "dueAt");
        assert!(naive.message.contains("no offset"), "{}", naive.message);
        assert!(
            due_at("2026-11-20")
                .unwrap_err()
                .message
                .contains("no offset")
        );
        assert!(
            due_at("next friday")
                .unwrap_err()
                .message
                .contains("RFC 3339")
        );
        assert!(due_at("1066-10-14T09:00:00Z").is_err());
    }

    #[test]
    fn fields_are_bounded() {
        assert!(title(&"x".repeat(300)).is_ok());
        assert_eq!(title(&"x".repeat(301)).unwrap_err().field, "title");
        assert!(title("  ").is_err());
        assert!(title("a\nb").is_err());
        assert!(external_id(&"e".repeat(201)).is_err());
        assert_eq!(points_text("12.5").unwrap(), Some(12.5));
        assert_eq!(points_text("").unwrap(), None);
        assert!(points_text("-1").is_err());
        assert!(points_text("NaN").is_err());
        assert!(points_json(Some(&serde_json::json!("10"))).is_err());
        assert_eq!(points_json(Some(&serde_json::json!(0))).unwrap(), Some(0.0));
        assert!(instructions(&"i".repeat(2001)).is_err());
        assert_eq!(
            instructions("line 1\nline 2").unwrap().unwrap(),
            "line 1\nline 2"
        );
    }
}
