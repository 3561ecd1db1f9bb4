//! Quiet hours (issue 22): a window of local time, e.g. 21:00–08:00, during which no text
//! message goes to a family's phone. The window is read in the recipient's time zone; it may
//! cross midnight (the usual case); start and end equal means no window.

use super::ParseError;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A time of day, `HH:MM` (24-hour clock), as a person sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(NaiveTime);

impl LocalTime {
    /// Parses `HH:MM` or `H:MM`, 00:00 to 23:59.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let invalid = || {
            ParseError(format!(
                "'{raw}' is not a time of day; give HH:MM on a 24-hour clock, e.g. 21:00 or 07:30"
            ))
        };
        let (hours, minutes) = raw.split_once(':').ok_or_else(invalid)?;
        let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
            len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(hours, 1..=2) || !digits(minutes, 2..=2) {
            return Err(invalid());
        }
        let (h, m) = (
            hours.parse::<u32>().map_err(|_| invalid())?,
            minutes.parse::<u32>().map_err(|_| invalid())?,
        );
        NaiveTime::from_hms_opt(h, m, 0)
            .map(LocalTime)
            .ok_or_else(invalid)
    }

    /// `HH:MM`.
    pub fn as_string(self) -> String {
        self.0.format("%H:%M").to_string()
    }
}

/// A window of quiet hours, in whichever time zone it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    /// When it begins.
    pub start: LocalTime,
    /// When it ends (the first minute messages may go again).
    pub end: LocalTime,
}

impl QuietHours {
    /// The window of a tenant's two settings: none unless both are set and differ.
    pub fn of(start: Option<LocalTime>, end: Option<LocalTime>) -> Option<Self> {
        match (start, end) {
            (Some(start), Some(end)) if start != end => Some(Self { start, end }),
            _ => None,
        }
    }

    /// When a message due at `now` for a recipient in `zone` may go: `None` when `now` is
    /// outside the window, else the end of the window (in UTC).
    pub fn ends_after(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&zone);
        let (time, date) = (local.time(), local.date_naive());
        let (start, end) = (self.start.0, self.end.0);
        let end_date = if start < end {
            (start <= time && time < end).then_some(date)?
        } else if time >= start {
            date.succ_opt()?
        } else if time < end {
            date
        } else {
            return None;
        };
        Some(first_instant_from(end_date, end, zone).max(now))
    }
}

/// The first instant at or after `date` `time` in `zone` (a time a DST gap skips is the
/// end of the gap).
fn first_instant_from(date: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let mut local = date.and_time(time);
    // Gaps are at most a few hours; step a quarter hour at a time through one.
    for _ in 0..16 {
        if let Some(at) = zone.from_local_datetime(&local).earliest() {
            return at.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(15);
    }
    local.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(raw: &str) -> LocalTime {
        LocalTime::parse(raw).unwrap()
    }

    fn at(raw: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(raw)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn times_of_day_parse_strictly() {
        assert_eq!(t("21:00").as_string(), "21:00");
        assert_eq!(t(" 7:30 ").as_string(), "07:30");
        for bad in [
            "24:00", "21", "21:0", "21:60", "9pm", "-1:00", "21:00:00", "", "+9:00",
        ] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_needs_both_ends_and_two_times() {
        assert!(QuietHours::of(Some(t("21:00")), None).is_none());
        assert!(QuietHours::of(None, Some(t("08:00"))).is_none());
        assert!(QuietHours::of(Some(t("08:00")), Some(t("08:00"))).is_none());
    }

    #[test]
    fn a_window_across_midnight_holds_until_the_morning_in_the_recipients_zone() {
        let quiet = QuietHours::of(Some(t("21:00")), Some(t("08:00"))).unwrap();
        let ny = chrono_tz::America::New_York;
        // 02:00 in New York (EST, UTC-5): held until 08:00 the same day.
        assert_eq!(
            quiet.ends_after(at("2026-12-07T07:00:00Z"), ny),
            Some(at("2026-12-07T13:00:00Z"))
        );
        // 22:30 the evening before: until 08:00 the next day.
        assert_eq!(
            quiet.ends_after(at("2026-12-07T03:30:00Z"), ny),
            Some(at("2026-12-07T13:00:00Z"))
        );
        // 08:00 and 20:59 are outside.
        assert_eq!(quiet.ends_after(at("2026-12-07T13:00:00Z"), ny), None);
        assert_eq!(quiet.ends_after(at("2026-12-08T01:59:00Z"), ny), None);
        // 21:00 is inside. The same instant in Los Angeles (18:00) is not.
        assert!(quiet.ends_after(at("2026-12-08T02:00:00Z"), ny).is_some());
        let la = chrono_tz::America::Los_Angeles;
        assert_eq!(quiet.ends_after(at("2026-12-08T02:00:00Z"), la), None);
    }

    #[test]
    fn a_daytime_window_and_daylight_saving() {
        let quiet = QuietHours::of(Some(t("12:00")), Some(t("13:00"))).unwrap();
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            quiet.ends_after(at("2026-07-01T16:30:00Z"), ny),
            Some(at("2026-07-01T17:00:00Z")),
            "12:30 EDT: until 13:00 EDT"
        );
        assert_eq!(quiet.ends_after(at("2026-07-01T15:59:00Z"), ny), None);
        // A window ending at 02:30 on the night clocks spring forward ends at 03:00.
        let night = QuietHours::of(Some(t("22:00")), Some(t("02:30"))).unwrap();
        assert_eq!(
            night.ends_after(at("2027-03-14T05:00:00Z"), ny),
            Some(at("2027-03-14T07:00:00Z"))
        );
    }
}
