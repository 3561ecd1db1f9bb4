//! The invitation messages, rendered at send time in the guardian's language (their
//! `preferred_language` when a translation exists, else the tenant's `default_language`:
//! [`crate::i18n`]) from the locale's Fluent messages, laid out by
//! `templates/email/invitation.txt`: plain text only — `.txt` templates are not
//! HTML-escaped, and no HTML part is ever built. The email carries `Content-Language`. SMS
//! bodies name the sender and how to opt out, and names are shortened so a message stays
//! within a few segments.

use crate::contacts::display_name;
use crate::db;
use crate::db::WriteTxn;
use crate::domain::{LocalTime, QuietHours, TenantId, TimeZoneName};
use crate::i18n::{Arg, Locale};
use crate::outbox::disclosures::{About, about_claims};
use crate::outbox::port::{MessageKindHandler, Rendered};
use crate::outbox::store::Claimed;
use crate::outbox::{Channel, MessageKind, Outgoing};
use askama::Template;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use std::collections::HashMap;

/// The email body: the locale's sentences, in the layout of the template.
#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationEmail<'a> {
    hello: &'a str,
    invited: &'a str,
    join_here: &'a str,
    link: &'a str,
    ignore: &'a str,
    district: &'a str,
}

/// What rendering needs from the configuration.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Where links point (`web.public_url`, `invites.join_url`, `mail.unsubscribe_mailto`).
    pub links: crate::links::Links,
    /// Name opening every SMS (`sms.sender_name`).
    pub sms_sender: String,
    /// Message-ID domain (`mail.message_id_domain`).
    pub message_id_domain: String,
}

/// A name for a message: control characters dropped, at most `max` characters.
fn short(name: &str, max: usize) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.chars().count() <= max {
        clean.to_string()
    } else {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The columns rendering needs, for invitations `i` whose guardian a teacher may still see
/// about the chat's student (`domain::visibility`): one whose link became inactive or
/// restricted after the invitation was queued has nothing to send.
const SELECT: &str = concat!(
    "SELECT i.id, i.tenant_id, c.given_name AS guardian_given, c.family_name AS guardian_family, \
       t.given_name AS teacher_given, t.family_name AS teacher_family, ch.owner_source_id, \
       s.given_name AS student_given, tn.name AS district, i.join_token, i.urgent_at, c.time_zone, \
       c.preferred_language, ts.default_language, \
       ts.quiet_hours_start, ts.quiet_hours_end, ts.digest_time_zone \
     FROM invitations i \
     JOIN tenant_settings ts ON ts.tenant_id = i.tenant_id \
     JOIN contacts c ON c.id = i.contact_id \
     JOIN chats ch ON ch.id = i.chat_id \
     JOIN students s ON s.id = ch.student_id \
     JOIN student_contacts l ON l.student_id = ch.student_id AND l.contact_id = i.contact_id AND ",
    crate::visible_link!("l"),
    " JOIN tenants tn ON tn.id = i.tenant_id \
     LEFT JOIN staff t ON t.tenant_id = i.tenant_id AND t.source_id = ch.owner_source_id"
);

/// One invitation's people, as [`SELECT`] reads them.
#[derive(Debug, FromQueryResult)]
struct InvitationRow {
    id: i64,
    tenant_id: i64,
    guardian_given: Option<String>,
    guardian_family: Option<String>,
    teacher_given: Option<String>,
    teacher_family: Option<String>,
    owner_source_id: Option<String>,
    student_given: Option<String>,
    district: Option<String>,
    join_token: Option<String>,
    urgent_at: Option<chrono::DateTime<chrono::Utc>>,
    time_zone: Option<String>,
    quiet_hours_start: Option<String>,
    quiet_hours_end: Option<String>,
    digest_time_zone: String,
    preferred_language: Option<String>,
    default_language: String,
}

impl InvitationRow {
    /// When a text message of this row may go, if the quiet hours hold it now (never an
    /// urgent one).
    fn held_until(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.urgent_at.is_some() {
            return None;
        }
        let time = |raw: &Option<String>| raw.as_deref().and_then(|t| LocalTime::parse(t).ok());
        let quiet = QuietHours::of(time(&self.quiet_hours_start), time(&self.quiet_hours_end))?;
        let tenant_zone = TimeZoneName::parse(&self.digest_time_zone).ok()?;
        super::quiet::until(quiet, tenant_zone, self.time_zone.as_deref(), now)
    }
}

impl InvitationRow {
    fn names(self, config: &RenderConfig) -> Names {
        let owner = self.owner_source_id.unwrap_or_default();
        let locale = Locale::negotiate(
            self.preferred_language.as_deref(),
            Some(&self.default_language),
        );
        Names {
            guardian: display_name(
                self.guardian_given.as_deref(),
                self.guardian_family.as_deref(),
                None,
                Some(&locale.text("invitation-guardian-fallback")),
            ),
            teacher: display_name(
                self.teacher_given.as_deref(),
                self.teacher_family.as_deref(),
                None,
                Some(&owner),
            ),
            student: display_name(
                self.student_given.as_deref(),
                None,
                None,
                Some(&locale.text("invitation-student-fallback")),
            ),
            district: self.district.unwrap_or_default(),
            link: config.links.join(&self.join_token.unwrap_or_default()),
            locale,
        }
    }
}

/// The invitation kind of outbox message, as the dispatcher sees it: rendered at send time,
/// kept as `sent` once sent.
#[derive(Debug, Clone)]
pub struct InvitationMessages {
    config: RenderConfig,
}

impl InvitationMessages {
    /// Invitations rendered with `config`.
    pub fn new(config: RenderConfig) -> Self {
        Self { config }
    }
}

#[async_trait::async_trait]
impl MessageKindHandler for InvitationMessages {
    fn kind(&self) -> MessageKind {
        MessageKind::Invitation
    }

    async fn render(
        &self,
        db: &DatabaseConnection,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, Rendered>, DbErr> {
        render_many(db, &self.config, claimed).await
    }

    async fn disclosed(
        &self,
        txn: &WriteTxn,
        claimed: &[&Claimed],
    ) -> Result<HashMap<i64, About>, DbErr> {
        disclosed(txn, claimed).await
    }
}

/// An invitation's guardian and student.
#[derive(Debug, FromQueryResult)]
struct Subject {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    student: String,
}

/// The guardian and student of each sent invitation of `claimed` (the disclosure log).
async fn disclosed<C: ConnectionTrait>(
    conn: &C,
    claimed: &[&Claimed],
) -> Result<HashMap<i64, About>, DbErr> {
    if claimed.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Subject> = db::rows::query_as(
        conn,
        &format!(
            "SELECT i.id, i.tenant_id, i.contact_id, s.source_id AS student FROM invitations i \
             JOIN chats ch ON ch.id = i.chat_id JOIN students s ON s.id = ch.student_id \
             WHERE i.id IN ({})",
            db::id_list(claimed.iter().map(|c| c.ref_id))
        ),
        vec![],
    )
    .await?;
    Ok(about_claims(
        claimed,
        rows.into_iter().map(|row| {
            let about = About {
                contact_id: row.contact_id,
                students: vec![row.student],
            };
            (row.id, TenantId(row.tenant_id), about)
        }),
    ))
}

/// Renders the invitations behind outbox rows `claimed` (all of one tenant or not) in one
/// query; a row whose invitation or guardian no longer exists (e.g. erased), or whose
/// guardian a teacher may no longer see about the student (inactive, restricted), is
/// [`Rendered::Gone`], as there is nothing to send, and one whose template fails is
/// [`Rendered::Failed`] alone.
async fn render_many<C: ConnectionTrait>(
    conn: &C,
    config: &RenderConfig,
    claimed: &[&Claimed],
) -> Result<HashMap<i64, Rendered>, DbErr> {
    let mut out: HashMap<i64, Rendered> = claimed.iter().map(|c| (c.id, Rendered::Gone)).collect();
    if claimed.is_empty() {
        return Ok(out);
    }
    let by_invitation: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
    let list = db::id_list(by_invitation.keys().copied());
    let rows = db::query(conn, &format!("{SELECT} WHERE i.id IN ({list})"), vec![]).await?;
    for row in &rows {
        let row = InvitationRow::from_query_result(row, "")?;
        let Some(claimed) = by_invitation.get(&row.id) else {
            continue;
        };
        // Never cross tenants, even on a corrupt reference.
        if TenantId(row.tenant_id) != claimed.tenant_id {
            continue;
        }
        if claimed.channel == Channel::Sms
            && let Some(until) = row.held_until(chrono::Utc::now())
        {
            let reason = crate::outbox::store::QUIET_HOURS.to_string();
            out.insert(claimed.id, Rendered::Held { until, reason });
            continue;
        }
        let names = row.names(config);
        let rendered = match compose(config, claimed, &names) {
            Ok(message) => Rendered::Ready(message),
            Err(e) => Rendered::Failed(format!("cannot render the invitation: {e}")),
        };
        out.insert(claimed.id, rendered);
    }
    Ok(out)
}

/// Everything a message says about the people involved, and the language it is in.
struct Names {
    guardian: String,
    teacher: String,
    student: String,
    district: String,
    link: String,
    locale: Locale,
}

/// The SMS body: the sender, who invites, about whom, the link and how to opt out.
fn sms_body(locale: Locale, sender: &str, names: &Names) -> String {
    locale.format(
        "invitation-sms",
        &[
            ("sender", Arg::Text(&short(sender, 30))),
            ("teacher", Arg::Text(&short(&names.teacher, 30))),
            ("student", Arg::Text(&short(&names.student, 20))),
            ("link", Arg::Text(&names.link)),
        ],
    )
}

/// The email body.
fn email_body(names: &Names) -> Result<String, askama::Error> {
    let locale = names.locale;
    let text = |name: &str, limit: usize| short(name, limit);
    InvitationEmail {
        hello: &locale.format(
            "invitation-hello",
            &[("guardian", Arg::Text(&text(&names.guardian, 80)))],
        ),
        invited: &locale.format(
            "invitation-invited",
            &[
                ("teacher", Arg::Text(&text(&names.teacher, 80))),
                ("student", Arg::Text(&text(&names.student, 80))),
                ("district", Arg::Text(&text(&names.district, 120))),
            ],
        ),
        join_here: &locale.text("invitation-join-here"),
        link: &names.link,
        ignore: &locale.text("invitation-ignore"),
        district: &text(&names.district, 120),
    }
    .render()
}

fn compose(
    config: &RenderConfig,
    claimed: &Claimed,
    names: &Names,
) -> Result<Outgoing, askama::Error> {
    let message_id = crate::outbox::message_id(claimed.id, &config.message_id_domain);
    let locale = names.locale;
    match claimed.channel {
        Channel::Sms => Ok(Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: None,
            body: sms_body(locale, &config.sms_sender, names),
            list_unsubscribe: None,
            language: None,
        }),
        Channel::Email => email_body(names).map(|body| Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: Some(locale.format(
                "invitation-subject",
                &[("teacher", Arg::Text(&short(&names.teacher, 60)))],
            )),
            body,
            list_unsubscribe: None,
            language: Some(locale.tag()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(locale: Locale) -> Names {
        Names {
            guardian: "Linda <b>Ng</b>".into(),
            teacher: "Alexandra Konstantinopoulou-Papadopoulou".into(),
            student: "Maximiliana Bartholomew".into(),
            district: "NYC & Co".into(),
            link: "https://pc.example/join/0123456789abcdef0123456789abcdef".into(),
            locale,
        }
    }

    #[test]
    fn bodies_are_plain_text_in_the_guardians_language_and_sms_stays_short() {
        let english = email_body(&names(Locale::ENGLISH)).unwrap();
        assert!(
            english.starts_with("Hello Linda <b>Ng</b>,"),
            "not escaped: {english}"
        );
        assert!(english.contains("NYC & Co"));
        assert!(english.contains("Join here:\nhttps://pc.example/join/"));
        let spanish = email_body(&names(Locale::find("es").unwrap())).unwrap();
        assert!(spanish.starts_with("Hola, Linda <b>Ng</b>:"), "{spanish}");
        assert!(spanish.contains("le invitó a conversar sobre"), "{spanish}");
        for locale in [Locale::ENGLISH, Locale::find("es").unwrap()] {
            let sms = sms_body(locale, "Parent Connection", &names(locale));
            assert!(sms.starts_with("Parent Connection:"), "{sms}");
            assert!(sms.contains("STOP"), "{sms}");
            assert!(
                sms.chars().count() <= 306,
                "two segments at most: {} {sms}",
                sms.chars().count()
            );
        }
    }
}
