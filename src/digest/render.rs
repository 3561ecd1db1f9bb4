//! Rendering a [`Digest`] as a plain-text email (subject and body) in the guardian's
//! language (their preferred language when a translation exists, else the tenant's default:
//! [`crate::i18n`]), the locale's sentences, dates and plurals laid out by
//! `templates/email/digest.txt`. The `.txt` extension turns askama's HTML escaping off:
//! titles appear exactly as given (never translated), and the output never holds HTML.

use super::compose::{Digest, DueItem};
use super::unsubscribe::UnsubscribeLink;
use super::week::Windows;
use crate::i18n::{Arg, Locale};
use askama::Template;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Where the guardian unsubscribes (the `List-Unsubscribe` header and the body's last
    /// lines).
    pub unsubscribe: UnsubscribeLink,
    /// The language it is written in (`Content-Language`).
    pub language: &'static str,
}

/// One assignment line.
struct ItemView {
    due: String,
    title: String,
    points: String,
}

/// One class block.
struct ClassView {
    title: String,
    previous: Vec<ItemView>,
    upcoming: Vec<ItemView>,
}

/// One child section.
struct ChildView {
    name: String,
    underline: String,
    classes: Vec<ClassView>,
}

/// The body template.
#[derive(Template)]
#[template(path = "email/digest.txt")]
struct Body<'a> {
    hello: &'a str,
    intro: &'a str,
    due_past: &'a str,
    due_coming: &'a str,
    why: &'a str,
    stop: &'a str,
    view_children: Vec<ChildView>,
    unsubscribe: &'a str,
}

/// "Ava", "Ava and Ben", "Ava, Ben and Cy" (in the locale's words).
fn names(digest: &Digest, locale: Locale) -> String {
    let names: Vec<&str> = digest.children.iter().map(|c| c.name.as_str()).collect();
    locale.list(&names)
}

/// Due times and points as the digests of one zone show them in each language, each
/// formatted once: the digests of a batch list the same classes' assignments again and
/// again, and formatting a date (its pattern, the zone, the locale's names) cost more than
/// the rest of a line. Also the tenant's default language.
#[derive(Debug)]
pub struct DueTimes {
    zone: Tz,
    default: Locale,
    formatted: HashMap<(Locale, DateTime<Utc>), String>,
    points: HashMap<(Locale, u64), String>,
    fixed: HashMap<(Locale, &'static str), String>,
}

impl DueTimes {
    /// Nothing formatted yet, for `zone`, with `default` the tenant's language.
    pub fn new(zone: Tz, default: Locale) -> Self {
        Self {
            zone,
            default,
            formatted: HashMap::new(),
            points: HashMap::new(),
            fixed: HashMap::new(),
        }
    }

    /// `due` in the zone, as a digest line shows it ("Mon Nov 23, 8:00 AM").
    fn format(&mut self, locale: Locale, due: DateTime<Utc>) -> String {
        let zone = self.zone;
        self.formatted
            .entry((locale, due))
            .or_insert_with(|| locale.due_time(due, zone))
            .clone()
    }

    /// " (10 points)".
    fn points(&mut self, locale: Locale, p: f64) -> String {
        self.points
            .entry((locale, p.to_bits()))
            .or_insert_with(|| {
                let text = points(p);
                format!(
                    " {}",
                    locale.format(
                        "digest-points",
                        &[("count", Arg::Number(p)), ("points", Arg::Text(&text))],
                    )
                )
            })
            .clone()
    }

    /// A message without arguments.
    fn text(&mut self, locale: Locale, id: &'static str) -> String {
        self.fixed
            .entry((locale, id))
            .or_insert_with(|| locale.text(id))
            .clone()
    }
}

/// Points as a line shows them: whole numbers without decimals ("10"), others as they are
/// ("2.5"). Whole numbers go through an integer: `{:.0}` on a float takes the exact
/// (slow) float formatting path, once per line of every digest.
fn points(p: f64) -> String {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if p.fract() != 0.0 {
        return p.to_string();
    }
    if p.abs() < EXACT && !(p == 0.0 && p.is_sign_negative()) {
        return (p as i64).to_string();
    }
    format!("{p:.0}")
}

fn item(item: &DueItem, locale: Locale, times: &mut DueTimes) -> ItemView {
    ItemView {
        due: times.format(locale, item.due_at),
        title: item.title.clone(),
        points: match item.points {
            Some(p) => times.points(locale, p),
            None => String::new(),
        },
    }
}

/// Subject line: the tenant, the children and the date of the send instant.
fn subject(digest: &Digest, tenant: &str, windows: &Windows, zone: Tz, locale: Locale) -> String {
    locale.format(
        "digest-subject",
        &[
            ("tenant", Arg::Text(tenant)),
            ("children", Arg::Text(&names(digest, locale))),
            ("date", Arg::Text(&locale.date(windows.send_at, zone))),
        ],
    )
}

/// Renders `digest` for the tenant named `tenant` in `zone` (`default`: its language),
/// with the guardian's `unsubscribe` link.
pub fn render(
    digest: &Digest,
    (tenant, windows): (&str, &Windows),
    (zone, default): (Tz, Locale),
    unsubscribe: UnsubscribeLink,
) -> Result<Rendered, askama::Error> {
    render_with(
        digest,
        (tenant, windows),
        &mut DueTimes::new(zone, default),
        unsubscribe,
    )
}

/// [`render`], reusing the due times already formatted in `times` (in its zone): for the
/// many digests of one tenant and week rendered together.
pub fn render_with(
    digest: &Digest,
    (tenant, windows): (&str, &Windows),
    times: &mut DueTimes,
    unsubscribe: UnsubscribeLink,
) -> Result<Rendered, askama::Error> {
    let zone = times.zone;
    let locale = Locale::negotiate(digest.language.as_deref(), Some(times.default.tag()));
    let view_children = digest
        .children
        .iter()
        .map(|child| ChildView {
            underline: "-".repeat(child.name.chars().count().max(1)),
            name: child.name.clone(),
            classes: child
                .classes
                .iter()
                .map(|class| ClassView {
                    title: class.title.clone(),
                    previous: class
                        .previous
                        .iter()
                        .map(|i| item(i, locale, times))
                        .collect(),
                    upcoming: class
                        .upcoming
                        .iter()
                        .map(|i| item(i, locale, times))
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let children = names(digest, locale);
    let body = Body {
        hello: &locale.format(
            "digest-hello",
            &[("guardian", Arg::Text(&digest.display_name))],
        ),
        intro: &locale.format(
            "digest-intro",
            &[
                ("children", Arg::Text(&children)),
                ("tenant", Arg::Text(tenant)),
                ("zone", Arg::Text(zone.name())),
            ],
        ),
        due_past: &times.text(locale, "digest-due-past"),
        due_coming: &times.text(locale, "digest-due-coming"),
        why: &locale.format(
            "digest-why",
            &[
                ("children", Arg::Text(&children)),
                ("tenant", Arg::Text(tenant)),
            ],
        ),
        stop: &times.text(locale, "digest-stop"),
        view_children,
        unsubscribe: &unsubscribe.url,
    }
    .render()?;
    Ok(Rendered {
        to: digest.email.clone(),
        subject: subject(digest, tenant, windows, zone, locale),
        body: format!("{}\n", body.trim_end()),
        unsubscribe,
        language: locale.tag(),
    })
}

#[cfg(test)]
mod tests {
    use super::points;

    #[test]
    fn points_read_as_before() {
        for p in [
            0.0_f64,
            -0.0,
            1.0,
            10.0,
            100.0,
            -3.0,
            2.5,
            0.1,
            1e15,
            1e300,
            -1e20,
            123_456_789.0,
        ] {
            let before = if p.fract() == 0.0 {
                format!("{p:.0}")
            } else {
                format!("{p}")
            };
            assert_eq!(points(p), before, "{p}");
        }
    }
}
