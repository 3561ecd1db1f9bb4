//! A time zone a tenant may choose: `UTC` or an IANA `Area/Location` name
//! (`America/New_York`). The tz database also keeps legacy names (`EST`, `MST`, `HST`,
//! `EST5EDT`, `PST8PDT`, `US/Eastern`, `Etc/GMT+5`, `GMT`, …) for old systems; several
//! have no daylight saving or reversed signs, so a school choosing them would get the wrong
//! local time half the year. They are refused, with the name to use instead when it is
//! obvious.

use super::ParseError;
use chrono_tz::Tz;

/// The geographic areas of the tz database's `Area/Location` names.
const AREAS: [&str; 10] = [
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
];

/// Legacy names and the `Area/Location` (or `UTC`) to use instead.
const INSTEAD: [(&str, &str); 40] = [
    (
        "EST",
        "America/New_York (Eastern time, with daylight saving)",
    ),
    ("EDT", "America/New_York"),
    ("EST5EDT", "America/New_York"),
    ("US/Eastern", "America/New_York"),
    (
        "CST",
        "America/Chicago (Central time, with daylight saving)",
    ),
    ("CDT", "America/Chicago"),
    ("CST6CDT", "America/Chicago"),
    ("US/Central", "America/Chicago"),
    (
        "MST",
        "America/Denver (Mountain time, with daylight saving) or America/Phoenix (Arizona, without)",
    ),
    ("MDT", "America/Denver"),
    ("MST7MDT", "America/Denver"),
    ("US/Mountain", "America/Denver"),
    ("US/Arizona", "America/Phoenix"),
    (
        "PST",
        "America/Los_Angeles (Pacific time, with daylight saving)",
    ),
    ("PDT", "America/Los_Angeles"),
    ("PST8PDT", "America/Los_Angeles"),
    ("US/Pacific", "America/Los_Angeles"),
    ("AKST", "America/Anchorage"),
    ("US/Alaska", "America/Anchorage"),
    ("HST", "Pacific/Honolulu"),
    ("US/Hawaii", "Pacific/Honolulu"),
    ("US/Aleutian", "America/Adak"),
    ("US/East-Indiana", "America/Indiana/Indianapolis"),
    ("US/Michigan", "America/Detroit"),
    ("US/Samoa", "Pacific/Pago_Pago"),
    ("Canada/Eastern", "America/Toronto"),
    ("Canada/Central", "America/Winnipeg"),
    ("Canada/Mountain", "America/Edmonton"),
    ("Canada/Pacific", "America/Vancouver"),
    ("Canada/Atlantic", "America/Halifax"),
    ("GMT", "UTC, or Europe/London for the UK's local time"),
    ("GMT0", "UTC"),
    ("GMT+0", "UTC"),
    ("GMT-0", "UTC"),
    ("Greenwich", "UTC"),
    ("UCT", "UTC"),
    ("Universal", "UTC"),
    ("Zulu", "UTC"),
    ("Etc/UTC", "UTC"),
    ("Etc/GMT", "UTC"),
];

/// `UTC` or an IANA `Area/Location` time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    /// Parses a zone name a person typed; legacy abbreviation zones are refused.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let name = raw.trim();
        if let Some((_, instead)) = INSTEAD
            .iter()
            .find(|(legacy, _)| legacy.eq_ignore_ascii_case(name))
        {
            return Err(ParseError(format!(
                "'{name}' is a legacy zone name, not an IANA Area/Location name; use {instead}"
            )));
        }
        let area_name = name
            .split_once('/')
            .is_some_and(|(area, place)| AREAS.contains(&area) && !place.is_empty());
        match name.parse::<Tz>() {
            Ok(zone) if name == "UTC" || area_name => Ok(Self(zone)),
            Ok(_) if name.starts_with("Etc/") => Err(ParseError(format!(
                "'{name}' is a fixed offset (its sign is reversed: Etc/GMT+5 is UTC-5) without daylight saving; use the Area/Location of the place, e.g. America/New_York, or UTC"
            ))),
            Ok(_) => Err(ParseError(format!(
                "'{name}' is a legacy zone name, not an IANA Area/Location name; use the Area/Location of the place, e.g. America/New_York, Europe/London, or UTC"
            ))),
            Err(_) => Err(ParseError(format!(
                "'{name}' is not an IANA time zone; use an Area/Location name such as America/New_York, America/Chicago, Europe/London or Australia/Sydney, or UTC"
            ))),
        }
    }

    /// Every name [`TimeZoneName::parse`] accepts, in the tz database's order.
    pub fn all() -> impl Iterator<Item = &'static str> {
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|zone| zone.name())
            .filter(|name| Self::parse(name).is_ok())
    }

    /// The zone.
    pub fn zone(self) -> Tz {
        self.0
    }

    /// The name, as stored.
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_location_names_and_utc_are_accepted() {
        for name in [
            "UTC",
            "America/New_York",
            "America/Indiana/Indianapolis",
            "America/Phoenix",
            "Pacific/Honolulu",
            "Europe/London",
            "Australia/Sydney",
            "Asia/Kolkata",
            " America/Chicago ",
        ] {
            let zone = TimeZoneName::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(zone.name(), name.trim());
        }
    }

    #[test]
    fn legacy_names_are_refused_with_the_name_to_use() {
        for (name, instead) in [
            ("EST", "America/New_York"),
            ("est", "America/New_York"),
            ("MST", "America/Phoenix"),
            ("HST", "Pacific/Honolulu"),
            ("EST5EDT", "America/New_York"),
            ("PST8PDT", "America/Los_Angeles"),
            ("US/Eastern", "America/New_York"),
            ("GMT", "UTC"),
            ("Etc/UTC", "UTC"),
            ("Etc/GMT+5", "reversed"),
            ("GMT+5", "IANA"),
            ("Cuba", "Area/Location"),
            ("CET", "Area/Location"),
            ("Eastern Time", "IANA"),
            ("Mars/Olympus", "IANA"),
        ] {
            let error = TimeZoneName::parse(name).unwrap_err().0;
            assert!(error.contains(instead), "{name}: {error}");
        }
    }

    /// Every name chrono-tz knows is either accepted as Area/Location or UTC, or refused
    /// with a message: none slips through as a bare legacy name.
    #[test]
    fn every_known_name_is_classified() {
        for zone in chrono_tz::TZ_VARIANTS {
            let name = zone.name();
            match TimeZoneName::parse(name) {
                Ok(_) => assert!(
                    name == "UTC" || AREAS.iter().any(|a| name.starts_with(&format!("{a}/"))),
                    "{name} accepted"
                ),
                Err(e) => assert!(!e.0.is_empty()),
            }
        }
    }
}
