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
use sea_orm::{ConnectionTrait, DbErr};
use std::collections::HashMap;

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
    /// Where links point (`web.public_url`, `invites.join_url`, `mail.unsubscribe_mailto`).
    pub links: crate::web::links::Links,
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

/// The columns rendering needs, for invitations `i` of the tenant `$1`.
const SELECT: &str = "SELECT i.id, c.given_name, c.family_name, t.given_name, t.family_name, ch.owner_source_id, \
       s.given_name, tn.name, i.join_token, i.tenant_id \
     FROM invitations i \
     JOIN contacts c ON c.id = i.contact_id \
     JOIN chats ch ON ch.id = i.chat_id \
     JOIN students s ON s.id = ch.student_id \
     JOIN tenants tn ON tn.id = i.tenant_id \
     LEFT JOIN staff t ON t.tenant_id = i.tenant_id AND t.source_id = ch.owner_source_id";

/// Renders the invitations behind outbox rows `claimed` (all of one tenant or not) in one
/// query; a row whose invitation or guardian no longer exists (e.g. erased) maps to `None`,
/// as there is nothing to send.
pub async fn render_many<C: ConnectionTrait>(
    conn: &C,
    config: &RenderConfig,
    claimed: &[&Claimed],
) -> Result<HashMap<i64, Option<Outgoing>>, DbErr> {
    let mut out: HashMap<i64, Option<Outgoing>> = claimed.iter().map(|c| (c.id, None)).collect();
    if claimed.is_empty() {
        return Ok(out);
    }
    let by_invitation: HashMap<i64, &Claimed> = claimed.iter().map(|c| (c.ref_id, *c)).collect();
    let list = db::id_list(by_invitation.keys().copied());
    let rows = db::query(conn, &format!("{SELECT} WHERE i.id IN ({list})"), vec![]).await?;
    for row in &rows {
        let invitation: i64 = row.try_get_by_index(0)?;
        let Some(claimed) = by_invitation.get(&invitation) else {
            continue;
        };
        let text = |i: usize| row.try_get_by_index::<Option<String>>(i);
        // Never cross tenants, even on a corrupt reference.
        if row.try_get_by_index::<i64>(9)? != claimed.tenant_id {
            continue;
        }
        let names = Names {
            guardian: display_name(
                text(1)?.as_deref(),
                text(2)?.as_deref(),
                None,
                Some("there"),
            ),
            teacher: {
                let owner = text(5)?.unwrap_or_default();
                display_name(text(3)?.as_deref(), text(4)?.as_deref(), None, Some(&owner))
            },
            student: display_name(text(6)?.as_deref(), None, None, Some("your child")),
            district: text(7)?.unwrap_or_default(),
            link: config.links.join(&text(8)?.unwrap_or_default()),
        };
        let message = compose(config, claimed, &names)
            .map_err(|e| DbErr::Custom(format!("cannot render the invitation: {e}")))?;
        out.insert(claimed.id, Some(message));
    }
    Ok(out)
}

/// Everything a message says about the people involved.
struct Names {
    guardian: String,
    teacher: String,
    student: String,
    district: String,
    link: String,
}

fn compose(
    config: &RenderConfig,
    claimed: &Claimed,
    names: &Names,
) -> Result<Outgoing, askama::Error> {
    let message_id = crate::outbox::message_id(claimed.id, &config.message_id_domain);
    match Channel::parse(&claimed.channel) {
        Some(Channel::Sms) => InvitationSms {
            sender: &short(&config.sms_sender, 30),
            teacher: &short(&names.teacher, 30),
            student: &short(&names.student, 20),
            link: &names.link,
        }
        .render()
        .map(|body| Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: None,
            body: body.trim_end().to_string(),
            list_unsubscribe: None,
        }),
        _ => InvitationEmail {
            guardian: &short(&names.guardian, 80),
            teacher: &short(&names.teacher, 80),
            student: &short(&names.student, 80),
            district: &short(&names.district, 120),
            link: &names.link,
        }
        .render()
        .map(|body| Outgoing {
            message_id,
            to: claimed.recipient.clone(),
            subject: Some(format!(
                "{} invited you to Parent Connection",
                short(&names.teacher, 60)
            )),
            body,
            list_unsubscribe: None,
        }),
    }
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
