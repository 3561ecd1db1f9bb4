//! The digest's calendar: ISO weeks (`2026-W48`), the configured day, hour and IANA time
//! zone, and the two windows a digest covers.
//!
//! The rule (docs/digest.md): the digest of ISO week W is due at the tenant's digest day
//! and hour of week W, in the tenant's zone (the *send instant*). "Previous" covers the
//! 7 days before it, "upcoming" the 7 days from it, as half-open ranges
//! `[start, end)`. The 7 days are counted on the local wall clock, so across a DST change
//! a window is 167 or 169 hours long and always starts and ends at the digest hour.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

pub use crate::domain::DigestDay;

/// A value of the digest calendar that does not parse; the message says what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CalendarError(pub String);

impl From<crate::domain::ParseError> for CalendarError {
    fn from(e: crate::domain::ParseError) -> Self {
        CalendarError(e.0)
    }
}

/// An ISO 8601 week, e.g. `2026-W48` (weeks start on Monday; week 1 holds the year's
/// first Thursday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    year: i32,
    week: u32,
}

impl IsoWeek {
    /// Parses `YYYY-Www` (e.g. `2026-W48`; `w` is accepted too).
    pub fn parse(raw: &str) -> Result<Self, CalendarError> {
        let raw = raw.trim();
        let shape = || {
            CalendarError(format!(
                "'{raw}' is not an ISO week: use YYYY-Www, e.g. 2026-W48"
            ))
        };
        let (year, week) = raw.split_once('-').ok_or_else(shape)?;
        let week = week
            .strip_prefix('W')
            .or_else(|| week.strip_prefix('w'))
            .ok_or_else(shape)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(week, 2) {
            return Err(shape());
        }
        let (year, week) = (
            year.parse::<i32>().map_err(|_| shape())?,
            week.parse::<u32>().map_err(|_| shape())?,
        );
        if NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).is_none() {
            let last = Self::weeks_in(year);
            return Err(CalendarError(format!(
                "'{raw}' is not an ISO week: {year} has weeks 01 to {last:02}"
            )));
        }
        Ok(Self { year, week })
    }

    /// The number of ISO weeks of `year` (52 or 53).
    pub fn weeks_in(year: i32) -> u32 {
        NaiveDate::from_ymd_opt(year, 12, 28)
            .map(|d| d.iso_week().week())
            .unwrap_or(52)
    }

    /// The ISO week of `date`.
    pub fn of(date: NaiveDate) -> Self {
        let iso = date.iso_week();
        Self {
            year: iso.year(),
            week: iso.week(),
        }
    }

    /// The ISO week it is now in `zone`.
    pub fn current(zone: Tz, now: DateTime<Utc>) -> Self {
        Self::of(now.with_timezone(&zone).date_naive())
    }

    /// The ISO year (may differ from the calendar year at the ends of the year).
    pub fn year(self) -> i32 {
        self.year
    }

    /// The week number, 1–53.
    pub fn week(self) -> u32 {
        self.week
    }

    /// The date of `day` in this week.
    pub fn day(self, day: Weekday) -> NaiveDate {
        NaiveDate::from_isoywd_opt(self.year, self.week, day)
            .expect("an IsoWeek is always a valid week")
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

impl FromStr for IsoWeek {
    type Err = CalendarError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// Parses a digest hour, 0–23 ([`crate::domain::parse_digest_hour`]).
pub fn parse_hour(raw: &str) -> Result<u32, CalendarError> {
    Ok(crate::domain::parse_digest_hour(raw)?)
}

/// Parses an IANA time zone name such as `America/New_York` or `Australia/Sydney`.
pub fn parse_zone(raw: &str) -> Result<Tz, CalendarError> {
    raw.trim().parse::<Tz>().map_err(|_| {
        CalendarError(format!(
            "'{}' is not an IANA time zone; use a name such as America/New_York, America/Chicago, Europe/London or Australia/Sydney",
            raw.trim()
        ))
    })
}

/// When a tenant's digest goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Day of the week.
    pub day: DigestDay,
    /// Hour, 0–23, local.
    pub hour: u32,
    /// The tenant's zone.
    pub zone: Tz,
}

impl Schedule {
    /// The schedule stored in a tenant's settings.
    pub fn from_settings(day: &str, hour: i32, zone: &str) -> Result<Self, CalendarError> {
        Ok(Self {
            day: DigestDay::parse(day)?,
            hour: parse_hour(&hour.to_string())?,
            zone: parse_zone(zone)?,
        })
    }

    /// The send instant and the two windows of `week`.
    pub fn windows(&self, week: IsoWeek) -> Windows {
        let local = week
            .day(self.day.0)
            .and_hms_opt(self.hour, 0, 0)
            .expect("hour < 24");
        let at = |naive: NaiveDateTime| resolve(self.zone, naive);
        let send_at = at(local);
        Windows {
            week,
            send_at,
            previous: Window {
                start: at(local - Duration::days(7)),
                end: send_at,
            },
            upcoming: Window {
                start: send_at,
                end: at(local + Duration::days(7)),
            },
        }
    }
}

/// The instant of local time `naive` in `zone`: the earlier one when the clock is set back
/// (the hour happens twice), the first instant after the gap when it is set forward.
fn resolve(zone: Tz, naive: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = naive;
    for _ in 0..8 {
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(30);
    }
    // No zone has a gap of four hours; keep a defined answer anyway.
    Utc.from_utc_datetime(&naive)
}

/// A half-open range of instants `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// First instant inside.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
}

impl Window {
    /// True when `t` falls inside.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// The send instant and windows of one week's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// The week.
    pub week: IsoWeek,
    /// When the digest is due.
    pub send_at: DateTime<Utc>,
    /// Assignments due in the 7 days before `send_at`.
    pub previous: Window,
    /// Assignments due in the 7 days from `send_at`.
    pub upcoming: Window,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weeks_parse_and_print() {
        let w = IsoWeek::parse("2026-W48").unwrap();
        assert_eq!((w.year(), w.week()), (2026, 48));
        assert_eq!(w.to_string(), "2026-W48");
        assert_eq!(IsoWeek::parse("2026-w01").unwrap().to_string(), "2026-W01");
        assert_eq!(
            w.day(Weekday::Mon),
            NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
        );
        // 2026 has 53 ISO weeks, 2027 has 52.
        assert!(IsoWeek::parse("2026-W53").is_ok());
        let e = IsoWeek::parse("2027-W53").unwrap_err();
        assert!(e.0.contains("2027 has weeks 01 to 52"), "{e}");
        for bad in [
            "2026-48",
            "2026W48",
            "26-W48",
            "2026-W4",
            "2026-W00",
            "2026-W480",
            "",
            "x",
        ] {
            let e = IsoWeek::parse(bad).unwrap_err();
            assert!(e.0.contains("ISO week"), "{bad}: {e}");
        }
        assert!(
            IsoWeek::parse("2026-W00")
                .unwrap_err()
                .0
                .contains("weeks 01 to 53")
        );
    }

    #[test]
    fn the_week_of_a_date_follows_iso_years() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(IsoWeek::of(d(2027, 1, 1)).to_string(), "2026-W53");
        assert_eq!(IsoWeek::of(d(2024, 12, 30)).to_string(), "2025-W01");
        let ny: Tz = "America/New_York".parse().unwrap();
        // Monday 03:00 UTC is still Sunday evening in New York.
        assert_eq!(
            IsoWeek::current(ny, utc("2026-11-30T03:00:00Z")).to_string(),
            "2026-W48"
        );
    }

    #[test]
    fn hours_and_zones_parse_with_clear_errors() {
        assert_eq!(parse_hour("23").unwrap(), 23);
        assert!(parse_hour("24").is_err());
        assert!(parse_hour("-1").is_err());
        assert!(parse_zone("Australia/Sydney").is_ok());
        assert!(parse_zone("Mars/Olympus").unwrap_err().0.contains("IANA"));
        assert!(parse_zone(crate::domain::DEFAULT_DIGEST_TIME_ZONE).is_ok());
    }

    fn schedule(day: &str, hour: i32, zone: &str) -> Schedule {
        Schedule::from_settings(day, hour, zone).unwrap()
    }

    #[test]
    fn the_default_week_window() {
        let w = schedule("saturday", 8, "America/New_York").windows("2026-W48".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-11-28T13:00:00Z"));
        assert_eq!(w.previous.start, utc("2026-11-21T13:00:00Z"));
        assert_eq!(w.upcoming.end, utc("2026-12-05T13:00:00Z"));
        assert!(w.previous.contains(utc("2026-11-28T12:59:59Z")));
        assert!(!w.previous.contains(w.send_at));
        assert!(w.upcoming.contains(w.send_at));
    }

    #[test]
    fn windows_keep_the_wall_clock_across_dst() {
        let ny = schedule("saturday", 8, "America/New_York");
        // Spring forward on Sunday 2026-03-08: the upcoming window is 167 hours.
        let w = ny.windows("2026-W10".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-03-07T13:00:00Z"));
        assert_eq!(w.upcoming.end, utc("2026-03-14T12:00:00Z"));
        assert_eq!(w.upcoming.end - w.upcoming.start, Duration::hours(167));
        // Fall back on Sunday 2026-11-01: 169 hours.
        let w = ny.windows("2026-W44".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-10-31T12:00:00Z"));
        assert_eq!(w.upcoming.end, utc("2026-11-07T13:00:00Z"));
        assert_eq!(w.upcoming.end - w.upcoming.start, Duration::hours(169));
        // Sydney leaves DST on Sunday 2026-04-05 (UTC+11 to UTC+10).
        let syd = schedule("saturday", 8, "Australia/Sydney");
        let w = syd.windows("2026-W14".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-04-03T21:00:00Z"));
        assert_eq!(w.upcoming.end, utc("2026-04-10T22:00:00Z"));
        // ... and enters it on Sunday 2026-10-04.
        let w = syd.windows("2026-W40".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-10-02T22:00:00Z"));
        assert_eq!(w.upcoming.end, utc("2026-10-09T21:00:00Z"));
    }

    #[test]
    fn an_hour_in_a_gap_or_an_overlap_resolves() {
        // 02:00 does not exist in New York on 2026-03-08: the first instant after the gap.
        let w = schedule("sunday", 2, "America/New_York").windows("2026-W10".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-03-08T07:00:00Z"));
        // 01:00 happens twice on 2026-11-01: the earlier one (EDT).
        let w = schedule("sunday", 1, "America/New_York").windows("2026-W44".parse().unwrap());
        assert_eq!(w.send_at, utc("2026-11-01T05:00:00Z"));
    }
}
