//! Rendering a [`Digest`] as a plain-text email (subject and body) from
//! `templates/email/digest.txt`. The `.txt` extension turns askama's HTML escaping off:
//! titles appear exactly as given, and the output never holds HTML.

use super::compose::{Digest, DueItem};
use super::unsubscribe::UnsubscribeLink;
use super::week::Windows;
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
    greeting: &'a str,
    children: String,
    tenant: &'a str,
    zone: &'a str,
    view_children: Vec<ChildView>,
    unsubscribe: &'a str,
}

/// "Ava", "Ava and Ben", "Ava, Ben and Cy".
fn names(digest: &Digest) -> String {
    let names: Vec<&str> = digest.children.iter().map(|c| c.name.as_str()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Due times as the digests of one zone show them, each formatted once: the digests of a
/// batch list the same classes' assignments again and again, and formatting a date (its
/// pattern parsed, the zone looked up) cost more than the rest of a line.
#[derive(Debug)]
pub struct DueTimes {
    zone: Tz,
    formatted: HashMap<DateTime<Utc>, String>,
}

impl DueTimes {
    /// No times formatted yet, for `zone`.
    pub fn new(zone: Tz) -> Self {
        Self {
            zone,
            formatted: HashMap::new(),
        }
    }

    /// `due` in the zone, as a digest line shows it ("Mon Nov 23, 8:00 AM").
    fn format(&mut self, due: DateTime<Utc>) -> String {
        let zone = self.zone;
        self.formatted
            .entry(due)
            .or_insert_with(|| {
                due.with_timezone(&zone)
                    .format("%a %b %-d, %-I:%M %p")
                    .to_string()
            })
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

fn item(item: &DueItem, times: &mut DueTimes) -> ItemView {
    ItemView {
        due: times.format(item.due_at),
        title: item.title.clone(),
        points: match item.points {
            Some(p) => format!(" ({} points)", points(p)),
            None => String::new(),
        },
    }
}

/// Subject line: the tenant, the children and the date of the send instant.
pub fn subject(digest: &Digest, tenant: &str, windows: &Windows, zone: Tz) -> String {
    let day = windows.send_at.with_timezone(&zone).format("%b %-d, %Y");
    format!(
        "{tenant}: assignments for {} (week of {day})",
        names(digest)
    )
}

/// Renders `digest` for the tenant named `tenant` in `zone`, with the guardian's
/// `unsubscribe` link.
pub fn render(
    digest: &Digest,
    tenant: &str,
    windows: &Windows,
    zone: Tz,
    unsubscribe: UnsubscribeLink,
) -> Result<Rendered, askama::Error> {
    render_with(
        digest,
        (tenant, windows),
        &mut DueTimes::new(zone),
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
                    previous: class.previous.iter().map(|i| item(i, times)).collect(),
                    upcoming: class.upcoming.iter().map(|i| item(i, times)).collect(),
                })
                .collect(),
        })
        .collect();
    let body = Body {
        greeting: &digest.display_name,
        children: names(digest),
        tenant,
        zone: zone.name(),
        view_children,
        unsubscribe: &unsubscribe.url,
    }
    .render()?;
    Ok(Rendered {
        to: digest.email.clone(),
        subject: subject(digest, tenant, windows, zone),
        body: format!("{}\n", body.trim_end()),
        unsubscribe,
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
