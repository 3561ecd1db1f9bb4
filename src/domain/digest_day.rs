//! When a tenant's weekly digest goes out, as its settings hold it: the day (`monday` …
//! `sunday`), the local hour and the defaults a new tenant starts with. The calendar that
//! turns them into send instants and windows is `digest::week`.

use super::ParseError;
use chrono::Weekday;

/// Default digest hour (local time).
pub const DEFAULT_DIGEST_HOUR: i32 = 8;
/// Default digest time zone.
pub const DEFAULT_DIGEST_TIME_ZONE: &str = "America/New_York";

/// The day of the week the digest goes out (`monday` … `sunday`; default `saturday`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestDay(pub Weekday);

impl DigestDay {
    /// The default: the weekend's first day.
    pub const DEFAULT: DigestDay = DigestDay(Weekday::Sat);

    const NAMES: [(&'static str, Weekday); 7] = [
        ("monday", Weekday::Mon),
        ("tuesday", Weekday::Tue),
        ("wednesday", Weekday::Wed),
        ("thursday", Weekday::Thu),
        ("friday", Weekday::Fri),
        ("saturday", Weekday::Sat),
        ("sunday", Weekday::Sun),
    ];

    /// Parses a day name, any case.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let lower = raw.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == lower)
            .map(|(_, day)| DigestDay(*day))
            .ok_or_else(|| {
                ParseError(format!(
                    "'{}' is not a day; valid values are monday, tuesday, wednesday, thursday, friday, saturday, sunday",
                    raw.trim()
                ))
            })
    }

    /// Every day's name, Monday first, as stored and shown.
    pub fn names() -> [&'static str; 7] {
        Self::NAMES.map(|(name, _)| name)
    }

    /// The lower-case name stored and shown.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, day)| *day == self.0)
            .map(|(name, _)| *name)
            .unwrap_or("saturday")
    }
}

/// Parses a digest hour, 0–23.
pub fn parse_digest_hour(raw: &str) -> Result<u32, ParseError> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|h| *h < 24)
        .ok_or_else(|| {
            ParseError(format!(
                "'{}' is not an hour; valid values are whole numbers from 0 to 23",
                raw.trim()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_hours_parse_with_clear_errors() {
        assert_eq!(DigestDay::parse("Sunday").unwrap().0, Weekday::Sun);
        assert_eq!(DigestDay::DEFAULT.as_str(), "saturday");
        assert!(
            DigestDay::parse("weekend")
                .unwrap_err()
                .0
                .contains("saturday, sunday")
        );
        assert_eq!(parse_digest_hour("23").unwrap(), 23);
        assert!(parse_digest_hour("24").is_err());
        assert!(parse_digest_hour("-1").is_err());
    }
}
