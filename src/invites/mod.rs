//! Invitations to guardians who have not joined Parent Connection (SPEC §5): when, on which
//! channel, within which limits, and the message they receive ([`render`]).
//!
//! - An invitation is queued when a teacher starts a chat (new, or re-entered from Parent
//!   Connection) with a guardian who has not joined, or asks to resend one.
//! - Limits are tenant settings: `invite_limit_per_guardian` per `invite_window_days`
//!   (rolling), and `invite_limit_per_tenant_per_day` (UTC day). Over a limit the chat
//!   still starts; the answer says no invitation was sent and why. The count and the insert
//!   happen under the tenant's invitation lock, so concurrent chat starts (any instance)
//!   never exceed them.
//! - The channel is the tenant's `preferred_invite_channel`. SMS goes only to a valid E.164
//!   mobile that has not opted out, and only when SMS is configured; otherwise email is the
//!   fallback (the reason is stored); with neither, nothing is sent and the reason says so.
//! - The invitation and its outbox row commit in the caller's transaction.

pub(crate) mod join;
pub(crate) mod quiet;
pub(crate) mod render;

pub use quiet::{UrgentError, send_urgent};

pub use render::{InvitationMessages, RenderConfig};

use crate::db;
use crate::domain::{InvitationState, QuietHours, StateInputs, TenantId, TimeZoneName, expires_at};
use crate::outbox::consent::OptOuts;
use crate::outbox::store as outbox;
use crate::outbox::{Channel, MessageKind};
use crate::tenants::{self, settings::TenantSettings};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, QueryResult, Value};
use serde::Serialize;

pub use crate::domain::DEFAULT_VALIDITY_DAYS;

/// What triggered an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A new chat started from Parent Connection.
    NewChat,
    /// An existing chat re-entered from Parent Connection.
    Reentered,
    /// The owner asked to send it again.
    Resend,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::NewChat => "new_chat",
            Trigger::Reentered => "reentered",
            Trigger::Resend => "resend",
        }
    }
}

/// An invitation as the API shows it (also one that was not sent, with the reason).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvitationItem {
    /// Invitation id (none when nothing was sent).
    pub id: Option<String>,
    /// The guardian.
    pub contact_id: String,
    /// `email` or `sms` (none when nothing was sent).
    pub channel: Option<String>,
    /// Delivery status: `queued`, `sent`, `failed`, `dead`, `suppressed`, or `not_sent`.
    pub status: String,
    /// Where the invitation stands: `pending`, `sent`, `accepted`, `expired`, `cancelled`,
    /// `failed` (none when nothing was sent).
    pub state: Option<InvitationState>,
    /// Why SMS fell back to email, or why nothing was sent: `sms_disabled`, `no_mobile`,
    /// `sms_opted_out`, `no_email`, `email_suppressed`, `unreachable`, `already_joined`,
    /// `guardian_limit`, `tenant_daily_limit`.
    pub reason: Option<String>,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// When it was queued (UTC).
    pub created_at: Option<DateTime<Utc>>,
    /// When its join link stops working (UTC), unless accepted before.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the guardian accepted it (UTC).
    pub accepted_at: Option<DateTime<Utc>>,
    /// A text message waiting for the recipient's quiet hours to end: when it goes (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
    /// When an admin sent it as urgent (it goes at once, even in quiet hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urgent_at: Option<DateTime<Utc>>,
}

impl InvitationItem {
    fn not_sent(contact: i64, reason: &str) -> Self {
        Self {
            id: None,
            contact_id: contact.to_string(),
            channel: None,
            status: "not_sent".into(),
            state: None,
            reason: Some(reason.into()),
            last_error: None,
            created_at: None,
            expires_at: None,
            accepted_at: None,
            held_until: None,
            urgent_at: None,
        }
    }
}

/// What an invitation needs to know beyond the database.
#[derive(Debug, Clone)]
pub struct InviteContext<'a> {
    /// Tenant.
    pub tenant: TenantId,
    /// The opt-outs of the sending number when SMS is configured (`SMS_URL`), else `None`.
    pub sms: Option<&'a OptOuts>,
    /// Who invites (the owner's SIS source id).
    pub invited_by: &'a str,
    /// Why.
    pub trigger: Trigger,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The tenant's invite settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `email` preferred (else `sms`).
    pub prefer_sms: bool,
    /// Per guardian per window.
    pub per_guardian: i64,
    /// The window, days.
    pub window_days: i64,
    /// Per tenant per UTC day.
    pub per_tenant_per_day: i64,
    /// Days a join link stays valid.
    pub validity_days: i64,
    /// The quiet hours, if any, and the tenant's time zone they are read in unless the
    /// guardian's is known.
    pub quiet: Option<(QuietHours, TimeZoneName)>,
}

impl From<&TenantSettings> for Policy {
    fn from(s: &TenantSettings) -> Self {
        Policy {
            prefer_sms: s.preferred_invite_channel == Channel::Sms,
            per_guardian: i64::from(s.invite_limit_per_guardian),
            window_days: i64::from(s.invite_window_days),
            per_tenant_per_day: i64::from(s.invite_limit_per_tenant_per_day),
            validity_days: i64::from(s.invitation_validity_days),
            quiet: s.quiet_hours().map(|q| (q, s.digest_time_zone)),
        }
    }
}

/// Reads the tenant's invite settings (from its [`TenantSettings`]).
pub async fn policy<C: ConnectionTrait>(conn: &C, tenant: TenantId) -> Result<Policy, DbErr> {
    let settings = tenants::settings::load(conn, tenant)
        .await?
        .ok_or_else(|| DbErr::Custom("the tenant has no settings".into()))?;
    Ok(Policy::from(&settings))
}

/// Start of the UTC day of `now`.
fn utc_day(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or(now)
}

/// One limit's counter.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counter {
    /// Invitations counted.
    pub used: i64,
    /// The limit.
    pub limit: i64,
    /// When the count next goes down (UTC): the end of the day, or when the oldest
    /// counted invitation leaves the window.
    pub resets_at: DateTime<Utc>,
}

/// The tenant's daily counter.
pub async fn tenant_counter<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Counter, DbErr> {
    let day = utc_day(now);
    let used = db::count(
        conn,
        "SELECT COUNT(*) FROM invitations WHERE tenant_id = $1 AND created_at >= $2",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::ChronoDateTimeUtc(Some(day)),
        ],
    )
    .await?;
    Ok(Counter {
        used,
        limit: policy.per_tenant_per_day,
        resets_at: day + Duration::days(1),
    })
}

/// One guardian's counter over the rolling window.
pub async fn guardian_counter<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Counter, DbErr> {
    let since = now - Duration::days(policy.window_days.max(1));
    let rows = db::query(
        conn,
        "SELECT COUNT(*) AS used, MIN(created_at) AS oldest FROM invitations \
         WHERE tenant_id = $1 AND contact_id = $2 AND created_at > $3",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(contact)),
            Value::ChronoDateTimeUtc(Some(since)),
        ],
    )
    .await?;
    let window = rows
        .first()
        .map(|row| Window::from_query_result(row, ""))
        .transpose()?;
    let (used, oldest) = window.map_or((0, None), |w| (w.used, w.oldest));
    Ok(Counter {
        used,
        limit: policy.per_guardian,
        resets_at: oldest.unwrap_or(now) + Duration::days(policy.window_days.max(1)),
    })
}

/// A guardian's invitations in the window: how many, and the oldest.
#[derive(Debug, FromQueryResult)]
struct Window {
    used: i64,
    oldest: Option<DateTime<Utc>>,
}

/// What inviting needs to know of a guardian.
#[derive(Debug, FromQueryResult)]
struct Reach {
    email: Option<String>,
    mobile_phone: Option<String>,
    joined_at: Option<DateTime<Utc>>,
    time_zone: Option<String>,
    email_suppressed: i64,
}

/// The channel and address for a guardian, or why there is none: `Ok((channel, address,
/// fallback reason))`, `Err(reason)`.
fn choose(
    policy: &Policy,
    sms_enabled: bool,
    email: Option<String>,
    mobile: Option<(String, bool)>,
) -> Result<(Channel, String, Option<&'static str>), &'static str> {
    // `mobile` is the E.164 number and whether it opted out.
    let sms = match (&mobile, sms_enabled) {
        (_, false) => Err("sms_disabled"),
        (None, true) => Err("no_mobile"),
        (Some((_, true)), true) => Err("sms_opted_out"),
        (Some((number, false)), true) => Ok(number.clone()),
    };
    match (policy.prefer_sms, sms, email) {
        (true, Ok(number), _) => Ok((Channel::Sms, number, None)),
        (true, Err(why), Some(email)) => Ok((Channel::Email, email, Some(why))),
        (true, Err(_), None) => Err("unreachable"),
        (false, _, Some(email)) => Ok((Channel::Email, email, None)),
        (false, Ok(number), None) => Ok((Channel::Sms, number, Some("no_email"))),
        (false, Err(_), None) => Err("unreachable"),
    }
}

/// Queues an invitation for guardian `contact` of chat `chat` (with its outbox row), in
/// the caller's transaction — or says why none was sent.
pub async fn invite<C: ConnectionTrait>(
    conn: &C,
    context: &InviteContext<'_>,
    chat: i64,
    contact: i64,
) -> Result<InvitationItem, DbErr> {
    let tenant = context.tenant;
    let rows = db::query(
        conn,
        "SELECT c.email, c.mobile_phone, c.joined_at, c.time_zone, \
           (SELECT COUNT(*) FROM email_suppressions x WHERE x.tenant_id = c.tenant_id AND x.email = LOWER(c.email)) AS email_suppressed \
         FROM contacts c WHERE c.tenant_id = $1 AND c.id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(InvitationItem::not_sent(contact, "unreachable"));
    };
    let reach = Reach::from_query_result(row, "")?;
    let (email, mobile, joined) = (reach.email, reach.mobile_phone, reach.joined_at);
    let guardian_zone = reach.time_zone;
    let opted_out = match (context.sms, &mobile) {
        (Some(opt_outs), Some(number)) => opt_outs.opted_out(conn, number).await?,
        _ => false,
    };
    // An address the mail server refused for good is no address.
    let email_suppressed = reach.email_suppressed > 0;
    let email = email.filter(|_| !email_suppressed);
    if joined.is_some() {
        return Ok(InvitationItem::not_sent(contact, "already_joined"));
    }
    let policy = policy(conn, tenant).await?;
    // Counted and inserted under the tenant's invitation lock until the caller commits
    // (PostgreSQL; SQLite's write transaction is exclusive already): concurrent chat starts
    // would otherwise each count the same total and all insert past the limits.
    db::engine::claim::serialise(conn, db::TenantLock::Invitations.key(tenant)).await?;
    if tenant_counter(conn, tenant, &policy, context.now)
        .await?
        .used
        >= policy.per_tenant_per_day
    {
        return Ok(InvitationItem::not_sent(contact, "tenant_daily_limit"));
    }
    if guardian_counter(conn, tenant, contact, &policy, context.now)
        .await?
        .used
        >= policy.per_guardian
    {
        return Ok(InvitationItem::not_sent(contact, "guardian_limit"));
    }
    let (channel, address, fallback) = match choose(
        &policy,
        context.sms.is_some(),
        email,
        mobile.map(|m| (m, opted_out)),
    ) {
        Ok((channel, address, Some("no_email"))) if email_suppressed => {
            (channel, address, Some("email_suppressed"))
        }
        Ok(choice) => choice,
        Err("unreachable") if email_suppressed => {
            return Ok(InvitationItem::not_sent(contact, "email_suppressed"));
        }
        Err(reason) => return Ok(InvitationItem::not_sent(contact, reason)),
    };
    let id = record_invitation(
        conn,
        context,
        (chat, contact),
        (channel, &address),
        fallback,
    )
    .await?;
    // A text message in the guardian's quiet hours waits in the outbox until they end.
    let held_until = match (channel, policy.quiet) {
        (Channel::Sms, Some((quiet, zone))) => {
            quiet::until(quiet, zone, guardian_zone.as_deref(), context.now)
        }
        _ => None,
    };
    match held_until {
        Some(until) => {
            outbox::enqueue_held(
                conn,
                tenant,
                (MessageKind::Invitation, id),
                (channel, &address),
                context.now,
                (until, outbox::QUIET_HOURS),
            )
            .await?
        }
        None => {
            outbox::enqueue(
                conn,
                tenant,
                MessageKind::Invitation,
                id,
                (channel, &address),
                context.now,
            )
            .await?
        }
    };
    if let Some(reason) = fallback {
        tracing::info!(invitation = id, reason, "invitation falls back to email");
    }
    Ok(InvitationItem {
        id: Some(id.to_string()),
        contact_id: contact.to_string(),
        channel: Some(channel.as_str().into()),
        status: "queued".into(),
        state: Some(InvitationState::Pending),
        reason: fallback.map(str::to_string),
        last_error: None,
        created_at: Some(context.now),
        expires_at: Some(expires_at(context.now, policy.validity_days)),
        accepted_at: None,
        held_until,
        urgent_at: None,
    })
}

/// Inserts the invitation row; returns its id.
async fn record_invitation<C: ConnectionTrait>(
    conn: &C,
    context: &InviteContext<'_>,
    (chat, contact): (i64, i64),
    (channel, address): (Channel, &str),
    fallback: Option<&str>,
) -> Result<i64, DbErr> {
    use crate::entities::invitations as entity;
    use sea_orm::{ActiveValue::NotSet, EntityTrait, Set};
    let row = entity::ActiveModel {
        id: NotSet,
        tenant_id: Set(context.tenant.0),
        chat_id: Set(chat),
        contact_id: Set(contact),
        channel: Set(channel),
        recipient: Set(address.to_string()),
        fallback_reason: Set(fallback.map(str::to_string)),
        trigger: Set(context.trigger.as_str().to_string()),
        invited_by: Set(context.invited_by.to_string()),
        join_token: Set(uuid::Uuid::new_v4().simple().to_string()),
        created_at: Set(context.now),
        accepted_at: Set(None),
        urgent_by: Set(None),
        urgent_at: Set(None),
    };
    Ok(entity::Entity::insert(row).exec(conn).await?.last_insert_id)
}

/// The invitation columns the API shows, from `invitations i` with its outbox row `o`,
/// chat `ch`, the tenant's settings `ts` and the guardian's link `l` to the chat's student.
const SELECT: &str = concat!(
    "SELECT i.id, i.contact_id, i.channel, o.status, i.fallback_reason, o.last_error, i.created_at, \
       i.accepted_at, i.urgent_at, o.held_for, o.next_attempt_at, ts.invitation_validity_days, CASE WHEN ",
    crate::visible_link!("l"),
    " THEN 'active' ELSE 'inactive' END AS link_status, ch.owner_source_id \
     FROM invitations i LEFT JOIN outbox o ON o.kind = ",
    crate::outbox_kind!(Invitation),
    " AND o.ref_id = i.id \
     JOIN chats ch ON ch.id = i.chat_id \
     JOIN tenant_settings ts ON ts.tenant_id = i.tenant_id \
     LEFT JOIN student_contacts l ON l.student_id = ch.student_id AND l.contact_id = i.contact_id"
);

/// One row of [`SELECT`].
#[derive(Debug, FromQueryResult)]
struct ItemRow {
    id: i64,
    contact_id: i64,
    channel: Option<String>,
    status: Option<String>,
    fallback_reason: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    urgent_at: Option<DateTime<Utc>>,
    held_for: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    invitation_validity_days: i32,
    link_status: Option<String>,
    owner_source_id: String,
}

impl ItemRow {
    fn read(row: &QueryResult) -> Result<Self, DbErr> {
        Self::from_query_result(row, "")
    }

    fn item(self, now: DateTime<Utc>) -> InvitationItem {
        let validity = i64::from(self.invitation_validity_days);
        let state = InvitationState::derive(
            StateInputs {
                created_at: self.created_at,
                accepted_at: self.accepted_at,
                validity_days: validity,
                link_active: self.link_status.as_deref() == Some("active"),
                delivery: self.status.as_deref(),
            },
            now,
        );
        InvitationItem {
            id: Some(self.id.to_string()),
            contact_id: self.contact_id.to_string(),
            channel: self.channel,
            // A message being sent right now is still queued as far as anyone can tell.
            status: match self.status.as_deref() {
                Some("sending") | None => "queued".into(),
                Some(other) => other.into(),
            },
            state: Some(state),
            reason: self.fallback_reason,
            last_error: self.last_error,
            created_at: Some(self.created_at),
            expires_at: Some(expires_at(self.created_at, validity)),
            accepted_at: self.accepted_at,
            held_until: self
                .next_attempt_at
                .filter(|_| self.held_for.is_some() && self.status.as_deref() == Some("queued")),
            urgent_at: self.urgent_at,
        }
    }
}

/// The invitations of a chat, oldest first, with their delivery status.
pub async fn for_chat<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
) -> Result<Vec<InvitationItem>, DbErr> {
    let now = Utc::now();
    db::query(
        conn,
        &format!("{SELECT} WHERE i.chat_id = $1 AND i.tenant_id = $2 ORDER BY i.id"),
        vec![Value::BigInt(Some(chat)), Value::BigInt(Some(tenant.0))],
    )
    .await?
    .iter()
    .map(|row| ItemRow::read(row).map(|row| row.item(now)))
    .collect()
}

/// A page of a chat's invitations, oldest first: those with an id above `after` (the
/// cursor), at most `limit`, and the cursor of the next page (through the (chat, id)
/// index).
pub async fn page_for_chat<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    after: Option<i64>,
    limit: u64,
) -> Result<(Vec<InvitationItem>, Option<String>), DbErr> {
    let rows = db::query(
        conn,
        &format!(
            "{SELECT} WHERE i.chat_id = $1 AND i.tenant_id = $2 AND i.id > $3 ORDER BY i.id LIMIT {}",
            limit.saturating_add(1)
        ),
        vec![
            Value::BigInt(Some(chat)),
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(after.unwrap_or(0))),
        ],
    )
    .await?;
    paged(&rows, limit)
}

/// A page of the invitations of guardian `contact` of the tenant, newest first: those with
/// an id below `before` (the cursor), at most `limit`, and the cursor of the next page
/// (through the (tenant, contact, id) index).
pub async fn for_contact<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<InvitationItem>, Option<String>), DbErr> {
    let rows = db::query(
        conn,
        &format!(
            "{SELECT} WHERE i.tenant_id = $1 AND i.contact_id = $2 AND i.id < $3 ORDER BY i.id DESC LIMIT {}",
            limit.saturating_add(1)
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(contact)),
            Value::BigInt(Some(before.unwrap_or(i64::MAX))),
        ],
    )
    .await?;
    paged(&rows, limit)
}

/// Rows fetched with `LIMIT limit + 1` as a page of items and the next page's cursor (the
/// last item's id).
fn paged(rows: &[QueryResult], limit: u64) -> Result<(Vec<InvitationItem>, Option<String>), DbErr> {
    let now = Utc::now();
    let items = rows
        .iter()
        .map(|row| ItemRow::read(row).map(|row| (row.id, row.item(now))))
        .collect::<Result<Vec<_>, DbErr>>()?;
    let (items, next_cursor) = db::page(items, limit, |(id, _)| id.to_string());
    Ok((
        items.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    ))
}

/// One invitation of the tenant, with the owner of its chat.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    id: i64,
) -> Result<Option<(InvitationItem, String)>, DbErr> {
    let rows = db::query(
        conn,
        &format!("{SELECT} WHERE i.tenant_id = $1 AND i.id = $2"),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(id))],
    )
    .await?;
    rows.first()
        .map(|row| {
            let row = ItemRow::read(row)?;
            let owner = row.owner_source_id.clone();
            Ok((row.item(Utc::now()), owner))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(prefer_sms: bool) -> Policy {
        Policy {
            prefer_sms,
            per_guardian: 3,
            window_days: 7,
            per_tenant_per_day: 100,
            validity_days: 14,
            quiet: None,
        }
    }

    #[test]
    fn the_channel_follows_the_preference_and_falls_back() {
        let email = || Some("a@example.com".to_string());
        let mobile = |opted: bool| Some(("+12025550143".to_string(), opted));
        let sms = policy(true);
        assert_eq!(
            choose(&sms, true, email(), mobile(false)).unwrap().0,
            Channel::Sms
        );
        assert_eq!(
            choose(&sms, true, email(), None).unwrap(),
            (Channel::Email, "a@example.com".into(), Some("no_mobile"))
        );
        assert_eq!(
            choose(&sms, true, email(), mobile(true)).unwrap().2,
            Some("sms_opted_out")
        );
        assert_eq!(
            choose(&sms, false, email(), mobile(false)).unwrap().2,
            Some("sms_disabled")
        );
        assert_eq!(choose(&sms, true, None, None), Err("unreachable"));
        let mail = policy(false);
        assert_eq!(
            choose(&mail, true, email(), mobile(false)).unwrap().0,
            Channel::Email
        );
        assert_eq!(
            choose(&mail, true, None, mobile(false)).unwrap().2,
            Some("no_email")
        );
        assert_eq!(choose(&mail, true, None, mobile(true)), Err("unreachable"));
    }
}
