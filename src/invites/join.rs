//! The guardian's side of an invitation: what the join page shows for a token, and
//! accepting it (SPEC §5). Accepting records `invitations.accepted_at` and
//! `contacts.joined_at` (the guardian then gets no more invitations) and an audit entry,
//! in one transaction; accepting again changes nothing. A token whose guardian is no
//! longer an active parent or guardian of the child (cancelled: the link is inactive,
//! erased, or now of another relationship) or that is older than the tenant's
//! `invitationValidityDays` (expired) cannot be accepted.

use crate::audit::{self, AuditEntry};
use crate::contacts::display_name;
use crate::db;
use crate::domain::{InvitationState, StateInputs, TenantId, expires_at};
use crate::i18n::Locale;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, QueryResult, Value};

/// What the join page says about an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinView {
    /// Invitation id.
    pub invitation: i64,
    /// Tenant id.
    pub tenant: TenantId,
    /// The guardian.
    pub contact: i64,
    /// The guardian's name.
    pub guardian: String,
    /// Who invited (the chat owner's name, or their SIS id).
    pub teacher: String,
    /// The child the chat is about (first name).
    pub student: String,
    /// The language the page is in: the guardian's, else the tenant's default.
    pub locale: Locale,
    /// The district (tenant name).
    pub district: String,
    /// Its state now.
    pub state: InvitationState,
    /// When the link stops working (UTC).
    pub expires_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
}

/// Everything about the invitation with `token`, through the unique token index.
const SELECT: &str = concat!(
    "SELECT i.id, i.tenant_id, i.contact_id, i.created_at, i.accepted_at, \
       ts.invitation_validity_days, CASE WHEN ",
    crate::visible_link!("l"),
    " THEN 'active' ELSE 'inactive' END AS link_status, o.status AS delivery, ch.owner_source_id, \
       t.given_name AS teacher_given, t.family_name AS teacher_family, \
       s.given_name AS student_given, tn.name AS district, \
       c.given_name AS guardian_given, c.family_name AS guardian_family, \
       c.preferred_language, ts.default_language \
     FROM invitations i \
     JOIN chats ch ON ch.id = i.chat_id \
     JOIN students s ON s.id = ch.student_id \
     JOIN tenants tn ON tn.id = i.tenant_id \
     JOIN tenant_settings ts ON ts.tenant_id = i.tenant_id \
     LEFT JOIN contacts c ON c.id = i.contact_id AND c.tenant_id = i.tenant_id \
     LEFT JOIN staff t ON t.tenant_id = i.tenant_id AND t.source_id = ch.owner_source_id \
     LEFT JOIN student_contacts l ON l.student_id = ch.student_id AND l.contact_id = i.contact_id \
     LEFT JOIN outbox o ON o.kind = ",
    crate::outbox_kind!(Invitation),
    " AND o.ref_id = i.id \
     WHERE i.join_token = $1"
);

fn view(row: &QueryResult, now: DateTime<Utc>) -> Result<JoinView, DbErr> {
    let text = |column: &str| row.try_get::<Option<String>>("", column);
    let created_at: DateTime<Utc> = row.try_get("", "created_at")?;
    let accepted_at: Option<DateTime<Utc>> = row.try_get("", "accepted_at")?;
    let validity = i64::from(row.try_get::<i32>("", "invitation_validity_days")?);
    let link: Option<String> = text("link_status")?;
    let delivery: Option<String> = text("delivery")?;
    let owner = text("owner_source_id")?.unwrap_or_default();
    let locale = Locale::negotiate(
        text("preferred_language")?.as_deref(),
        text("default_language")?.as_deref(),
    );
    Ok(JoinView {
        invitation: row.try_get("", "id")?,
        tenant: TenantId(row.try_get("", "tenant_id")?),
        contact: row.try_get("", "contact_id")?,
        guardian: display_name(
            text("guardian_given")?.as_deref(),
            text("guardian_family")?.as_deref(),
            None,
            Some(&locale.text("invitation-guardian-fallback")),
        ),
        teacher: display_name(
            text("teacher_given")?.as_deref(),
            text("teacher_family")?.as_deref(),
            None,
            Some(&owner),
        ),
        student: display_name(
            text("student_given")?.as_deref(),
            None,
            None,
            Some(&locale.text("invitation-student-fallback")),
        ),
        locale,
        district: text("district")?.unwrap_or_default(),
        state: InvitationState::derive(
            StateInputs {
                created_at,
                accepted_at,
                validity_days: validity,
                link_active: link.as_deref() == Some("active"),
                delivery: delivery.as_deref(),
            },
            now,
        ),
        expires_at: expires_at(created_at, validity),
        accepted_at,
    })
}

/// Tokens are 32 hex characters; anything else is unknown without a query.
fn plausible(token: &str) -> bool {
    !token.is_empty() && token.len() <= 64 && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The invitation behind `token` as it stands at `now` (`None`: no such token).
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<JoinView>, DbErr> {
    if !plausible(token) {
        return Ok(None);
    }
    db::query(conn, SELECT, vec![token.into()])
        .await?
        .first()
        .map(|row| view(row, now))
        .transpose()
}

/// What accepting did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Accepted now.
    Now(JoinView),
    /// It was accepted before; nothing changed.
    Already(JoinView),
    /// It can no longer be accepted (expired or cancelled).
    Gone(JoinView),
    /// No such token.
    Unknown,
}

/// Accepts the invitation behind `token` (see the module docs), audited as
/// `invitation.accept`.
pub async fn accept(db_conn: &DatabaseConnection, token: &str) -> Result<Accepted, DbErr> {
    if !plausible(token) {
        return Ok(Accepted::Unknown);
    }
    let now = Utc::now();
    let txn = db::begin_write(db_conn).await?;
    let Some(mut found) = find(&txn, token, now).await? else {
        txn.commit().await?;
        return Ok(Accepted::Unknown);
    };
    match found.state {
        InvitationState::Accepted => {
            txn.commit().await?;
            return Ok(Accepted::Already(found));
        }
        InvitationState::Expired | InvitationState::Cancelled => {
            txn.commit().await?;
            return Ok(Accepted::Gone(found));
        }
        _ => {}
    }
    let changed = db::exec(
        &txn,
        "UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL",
        vec![
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(found.invitation)),
        ],
    )
    .await?
    .rows_affected();
    db::exec(
        &txn,
        "UPDATE contacts SET joined_at = $1 WHERE tenant_id = $2 AND id = $3 AND joined_at IS NULL",
        vec![
            Value::ChronoDateTimeUtc(Some(now)),
            Value::BigInt(Some(found.tenant.0)),
            Value::BigInt(Some(found.contact)),
        ],
    )
    .await?;
    if changed == 0 {
        // Another request accepted it between the read and the update.
        txn.commit().await?;
        return Ok(Accepted::Already(found));
    }
    let before = found.state.as_str();
    found.state = InvitationState::Accepted;
    found.accepted_at = Some(now);
    audit::record(
        &txn,
        AuditEntry {
            tenant_id: Some(found.tenant),
            actor: &format!("contact:{}", found.contact),
            action: "invitation.accept",
            target: Some(format!("invitation:{}", found.invitation)),
            before: Some(serde_json::json!({ "state": before })),
            after: Some(serde_json::json!({ "state": "accepted", "acceptedAt": now })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Accepted::Now(found))
}
