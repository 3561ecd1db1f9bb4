//! The languages families read (issue 22, item 3; docs/languages.md): every message to a
//! guardian lives in a Project Fluent file per locale (`locales/{tag}/messages.ftl`, built
//! into the binary), with the plural rules and date formats of that locale. A guardian's
//! messages are in their preferred language when a translation exists, in the tenant's
//! default language otherwise ([`Locale::negotiate`]). English is the reference: every
//! message exists in every shipped locale (a test fails otherwise).
//!
//! Names, assignment titles and teacher text are arguments, never translated.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::OnceLock;
use unic_langid::LanguageIdentifier;

/// The locales shipped, English (the reference and last resort) first.
pub const SHIPPED: [&str; 2] = ["en", "es"];

/// The Fluent sources, by locale, in [`SHIPPED`]'s order.
const SOURCES: [&str; 2] = [
    include_str!("../../locales/en/messages.ftl"),
    include_str!("../../locales/es/messages.ftl"),
];

/// One bundle per shipped locale.
struct Catalog {
    bundles: Vec<FluentBundle<FluentResource>>,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog {
        bundles: SHIPPED
            .iter()
            .zip(SOURCES)
            .map(|(tag, source)| bundle(tag, source))
            .collect(),
    })
}

fn bundle(tag: &str, source: &str) -> FluentBundle<FluentResource> {
    // The sources are part of the binary and parsed by a test: an error is a build defect.
    let resource = FluentResource::try_new(source.to_string())
        .unwrap_or_else(|(_, errors)| panic!("locales/{tag}/messages.ftl: {errors:?}"));
    let id: LanguageIdentifier = tag.parse().expect("a shipped tag");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // Plain text (email, SMS): no Unicode isolation marks around the arguments.
    bundle.set_use_isolating(false);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("locales/{tag}/messages.ftl: {errors:?}"));
    bundle
}

/// An argument of a message.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// Text, shown as it is (a name, a title).
    Text(&'a str),
    /// A number: formatted, and chooses the plural form.
    Number(f64),
}

/// A shipped locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Locale(usize);

impl Locale {
    /// English, the last resort.
    pub const ENGLISH: Locale = Locale(0);

    /// The shipped locale for a BCP 47 tag: the tag itself, or its language alone
    /// (`es-MX` → `es`); `None` when no translation exists.
    pub fn find(tag: &str) -> Option<Locale> {
        let language = tag.split(['-', '_']).next().unwrap_or(tag);
        SHIPPED
            .iter()
            .position(|s| s.eq_ignore_ascii_case(tag))
            .or_else(|| {
                SHIPPED
                    .iter()
                    .position(|s| s.eq_ignore_ascii_case(language))
            })
            .map(Locale)
    }

    /// The locale a guardian's messages are in: their `preferred` language when a
    /// translation exists, else the tenant's `default`, else English.
    pub fn negotiate(preferred: Option<&str>, default: Option<&str>) -> Locale {
        preferred
            .and_then(Locale::find)
            .or_else(|| default.and_then(Locale::find))
            .unwrap_or(Locale::ENGLISH)
    }

    /// The first shipped locale of a browser's `Accept-Language` header, by its weights
    /// (`es-MX,es;q=0.9,en;q=0.8` → Spanish); `None` when it names none (or only `*`).
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut ranges: Vec<(f32, usize, &str)> = header
            .split(',')
            .enumerate()
            .filter_map(|(position, item)| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let weight = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (!tag.is_empty() && tag != "*" && weight > 0.0).then_some((weight, position, tag))
            })
            .collect();
        // Highest weight first; equal weights keep the header's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.into_iter().find_map(|(_, _, tag)| Locale::find(tag))
    }

    /// Every shipped locale, English first.
    pub fn all() -> impl Iterator<Item = Locale> {
        (0..SHIPPED.len()).map(Locale)
    }

    /// The locale's tag (`Content-Language`, `<html lang>`).
    pub fn tag(self) -> &'static str {
        SHIPPED[self.0]
    }

    /// Message `id` without arguments.
    pub fn text(self, id: &str) -> String {
        self.format(id, &[])
    }

    /// Message `id` with `args`. A message missing from the locale (a defect the tests
    /// catch) is its English text, or its id.
    pub fn format(self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let catalog = catalog();
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(text) => fluent_args.set(*name, FluentValue::from(*text)),
                Arg::Number(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        for bundle in [&catalog.bundles[self.0], &catalog.bundles[0]] {
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                return text.into_owned();
            }
        }
        id.to_string()
    }

    /// "Ava", "Ava and Ben", "Ava, Ben and Cy" in this locale.
    pub fn list(self, names: &[&str]) -> String {
        match names {
            [] => String::new(),
            [one] => (*one).to_string(),
            [rest @ .., last] => {
                let first = rest.join(&self.text("list-separator"));
                self.format(
                    "list-and",
                    &[("first", Arg::Text(&first)), ("last", Arg::Text(last))],
                )
            }
        }
    }

    /// `at` in `zone` as a digest line shows it: "Mon Nov 23, 8:00 AM", "lun 23 nov, 8:00".
    pub fn due_time(self, at: DateTime<chrono::Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        let (pm, hour12) = local.hour12();
        let clock = self.format(
            "clock",
            &[
                ("hour12", Arg::Text(&hour12.to_string())),
                ("hour24", Arg::Text(&local.hour().to_string())),
                ("minute", Arg::Text(&format!("{:02}", local.minute()))),
                ("ampm", Arg::Text(if pm { "PM" } else { "AM" })),
            ],
        );
        self.format(
            "due-time",
            &[
                ("weekday", Arg::Text(&self.weekday(&local))),
                ("month", Arg::Text(&self.month(&local))),
                ("day", Arg::Text(&local.day().to_string())),
                ("time", Arg::Text(&clock)),
            ],
        )
    }

    /// `at` in `zone` as a date: "Nov 23, 2026", "23 nov 2026".
    pub fn date(self, at: DateTime<chrono::Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        self.format(
            "subject-date",
            &[
                ("month", Arg::Text(&self.month(&local))),
                ("day", Arg::Text(&local.day().to_string())),
                ("year", Arg::Text(&local.year().to_string())),
            ],
        )
    }

    /// `at` in `zone` as a sentence says it: "December 20, 2026", "20 de diciembre de 2026".
    pub fn long_date(self, at: DateTime<chrono::Utc>, zone: Tz) -> String {
        let local = at.with_timezone(&zone);
        self.format(
            "long-date",
            &[
                (
                    "month",
                    Arg::Text(&self.text(&format!("month-long-{}", local.month()))),
                ),
                ("day", Arg::Text(&local.day().to_string())),
                ("year", Arg::Text(&local.year().to_string())),
            ],
        )
    }

    fn weekday(self, local: &DateTime<Tz>) -> String {
        self.text(&format!("weekday-{}", local.weekday().number_from_monday()))
    }

    fn month(self, local: &DateTime<Tz>) -> String {
        self.text(&format!("month-{}", local.month()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fluent_syntax::ast;
    use std::collections::BTreeSet;

    /// Every message id and attribute of a Fluent source.
    fn ids(source: &str) -> BTreeSet<String> {
        let resource = fluent_syntax::parser::parse(source).expect("the file parses");
        let mut ids = BTreeSet::new();
        for entry in resource.body {
            if let ast::Entry::Message(message) = entry {
                ids.insert(message.id.name.to_string());
                for attribute in message.attributes {
                    ids.insert(format!("{}.{}", message.id.name, attribute.id.name));
                }
            }
        }
        ids
    }

    #[test]
    fn the_browsers_languages_choose_by_weight() {
        let spanish = Locale::find("es");
        for (header, expected) in [
            ("es-MX,es;q=0.9,en;q=0.8", spanish),
            ("en-US,en;q=0.9,es;q=0.8", Some(Locale::ENGLISH)),
            ("fr-FR, es;q=0.5, en;q=0.4", spanish),
            ("en;q=0.2, es;q=0.7", spanish),
            ("fr, de", None),
            ("*", None),
            ("es;q=0, en;q=0.1", Some(Locale::ENGLISH)),
            ("", None),
            ("es;q=abc", spanish),
        ] {
            assert_eq!(Locale::from_accept_language(header), expected, "{header}");
        }
    }

    #[test]
    fn every_message_exists_in_every_locale() {
        let english = ids(SOURCES[0]);
        assert!(english.len() > 30, "{english:?}");
        for (tag, source) in SHIPPED.iter().zip(SOURCES).skip(1) {
            let other = ids(source);
            let missing: Vec<_> = english.difference(&other).collect();
            let extra: Vec<_> = other.difference(&english).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "locales/{tag}: missing {missing:?}, not in English {extra:?}"
            );
        }
    }

    #[test]
    fn every_message_formats_without_errors_in_every_locale() {
        for (index, tag) in SHIPPED.iter().enumerate() {
            let bundle = &catalog().bundles[index];
            for id in ids(SOURCES[0]).iter().filter(|id| !id.contains('.')) {
                let pattern = bundle.get_message(id).and_then(|m| m.value()).unwrap();
                let mut args = FluentArgs::new();
                for name in [
                    "first", "last", "weekday", "month", "day", "time", "year", "hour12", "hour24",
                    "minute", "ampm", "teacher", "guardian", "student", "district", "sender",
                    "link", "tenant", "children", "date", "zone", "email", "child", "name",
                    "mobile", "code", "minutes",
                ] {
                    args.set(name, FluentValue::from("x"));
                }
                args.set("points", FluentValue::from("2"));
                args.set("count", FluentValue::from(2));
                let mut errors = Vec::new();
                bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{tag} {id}: {errors:?}");
            }
        }
    }

    #[test]
    fn a_guardians_language_then_the_tenants_then_english() {
        assert_eq!(Locale::negotiate(Some("es-MX"), Some("en")).tag(), "es");
        assert_eq!(Locale::negotiate(Some("ES"), None).tag(), "es");
        assert_eq!(Locale::negotiate(Some("fr"), Some("es")).tag(), "es");
        assert_eq!(Locale::negotiate(Some("fr"), Some("de")).tag(), "en");
        assert_eq!(Locale::negotiate(None, None).tag(), "en");
    }

    #[test]
    fn plurals_lists_and_dates_follow_the_locale() {
        let (en, es) = (Locale::ENGLISH, Locale::find("es").unwrap());
        let points = |l: Locale, n: f64| {
            let text = n.to_string();
            l.format(
                "digest-points",
                &[("count", Arg::Number(n)), ("points", Arg::Text(&text))],
            )
        };
        assert_eq!(points(en, 1.0), "(1 point)");
        assert_eq!(points(en, 10.0), "(10 points)");
        assert_eq!(points(en, 2.5), "(2.5 points)");
        assert_eq!(points(es, 1.0), "(1 punto)");
        assert_eq!(points(es, 3.0), "(3 puntos)");
        assert_eq!(en.list(&["Ava", "Ben", "Cy"]), "Ava, Ben and Cy");
        assert_eq!(es.list(&["Ava", "Ben"]), "Ava y Ben");
        let ny = chrono_tz::America::New_York;
        let at = DateTime::parse_from_rfc3339("2026-11-23T13:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(en.due_time(at, ny), "Mon Nov 23, 8:00 AM");
        assert_eq!(es.due_time(at, ny), "lun 23 nov, 8:00");
        assert_eq!(en.date(at, ny), "Nov 23, 2026");
        assert_eq!(es.date(at, ny), "23 nov 2026");
        assert_eq!(en.long_date(at, ny), "November 23, 2026");
        assert_eq!(es.long_date(at, ny), "23 de noviembre de 2026");
        // No isolation marks in plain text.
        let sms = es.format("invitation-sms", &[("teacher", Arg::Text("Sam Lee"))]);
        assert!(!sms.contains('\u{2068}'), "{sms:?}");
    }
}
