//! The invitation messages, rendered at send time from askama templates
//! (`templates/email/invitation.txt`, `templates/sms/invitation.txt`): plain text only —
//! `.txt` templates are not HTML-escaped, and no HTML part is ever built. SMS bodies name
//! the sender and how to opt out, and names are shortened so a message stays within a few
//! segments.

use crate::contacts::display_name;
use crate::db;
use crate::outbox::store::Claimed;
use crate::outbox::{Channel, Outgoing};
use askama::Template;
use sea_orm::{ConnectionTrait, DbErr, Value};

/// The email body.
#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationEmail<'a> {
    guardian: &'a str,
    teacher: &'a str,
    student: &'a str,
    district: &'a str,
    link: &'a str,
}

/// The SMS body.
#[derive(Template)]
#[template(path = "sms/invitation.txt")]
struct InvitationSms<'a> {
    sender: &'a str,
    teacher: &'a str,
    student: &'a str,
    link: &'a str,
}

/// What rendering needs from the configuration.
#[derive(Debug, Clone)]
pub struct RenderConfig {
    /// Join link base (`invites.join_url`).
    pub join_url: String,
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

/// Renders the invitation behind outbox row `claimed`; `None` when the invitation or its
/// guardian no longer exists (e.g. erased), so there is nothing to send.
pub async fn render<C: ConnectionTrait>(
    conn: &C,
    config: &RenderConfig,
    claimed: &Claimed,
) -> Result<Option<Outgoing>, DbErr> {
    let rows = db::query(
        conn,
        "SELECT c.given_name, c.family_name, t.given_name, t.family_name, ch.owner_source_id, s.given_name, s.family_name, \
           tn.name, i.join_token \
         FROM invitations i \
         JOIN contacts c ON c.id = i.contact_id \
         JOIN chats ch ON ch.id = i.chat_id \
         JOIN students s ON s.id = ch.student_id \
         JOIN tenants tn ON tn.id = i.tenant_id \
         LEFT JOIN staff t ON t.tenant_id = i.tenant_id AND t.source_id = ch.owner_source_id \
         WHERE i.tenant_id = $1 AND i.id = $2",
        vec![
            Value::BigInt(Some(claimed.tenant_id)),
            Value::BigInt(Some(claimed.ref_id)),
        ],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let text = |i: usize| row.try_get_by_index::<Option<String>>(i);
    let guardian = display_name(
        text(0)?.as_deref(),
        text(1)?.as_deref(),
        None,
        Some("there"),
    );
    let owner = text(4)?.unwrap_or_default();
    let teacher = display_name(text(2)?.as_deref(), text(3)?.as_deref(), None, Some(&owner));
    let student = display_name(text(5)?.as_deref(), None, None, Some("your child"));
    let district = text(7)?.unwrap_or_default();
    let link = format!("{}{}", config.join_url, text(8)?.unwrap_or_default());
    let message_id = crate::outbox::message_id(claimed.id, &config.message_id_domain);
    let rendered = match Channel::parse(&claimed.channel) {
        Some(Channel::Sms) => InvitationSms {
            sender: &short(&config.sms_sender, 30),
            teacher: &short(&teacher, 30),
            student: &short(&student, 20),
            link: &link,
        }
        .render()
        .map(|body| Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: None,
            body: body.trim_end().to_string(),
        }),
        _ => InvitationEmail {
            guardian: &short(&guardian, 80),
            teacher: &short(&teacher, 80),
            student: &short(&student, 80),
            district: &short(&district, 120),
            link: &link,
        }
        .render()
        .map(|body| Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: Some(format!(
                "{} invited you to Parent Connection",
                short(&teacher, 60)
            )),
            body,
        }),
    };
    rendered
        .map(Some)
        .map_err(|e| DbErr::Custom(format!("cannot render the invitation: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_plain_text_and_sms_stays_short() {
        let email = InvitationEmail {
            guardian: "Linda <b>Ng</b>",
            teacher: "Sam Lee",
            student: "Ava",
            district: "NYC & Co",
            link: "https://x.example/join/abc",
        }
        .render()
        .unwrap();
        assert!(
            email.contains("Linda <b>Ng</b>"),
            "not HTML-escaped: {email}"
        );
        assert!(email.contains("NYC & Co"));
        let sms = InvitationSms {
            sender: "Parent Connection",
            teacher: &short("Alexandra Konstantinopoulou-Papadopoulou", 30),
            student: &short("Maximiliana Bartholomew", 20),
            link: "https://pc.example/join/0123456789abcdef0123456789abcdef",
        }
        .render()
        .unwrap();
        assert!(sms.contains("Reply STOP to opt out"));
        assert!(sms.starts_with("Parent Connection:"));
        assert!(
            sms.chars().count() <= 306,
            "two segments at most: {}",
            sms.chars().count()
        );
    }
}
