//! Chat records: starting a chat (by its owner, or by a guardian), re-entering an existing
//! one, reading chats as the owner, another teacher, an admin or a guardian sees them, and
//! adding or removing guardian members.

use super::blocks;
use super::{Banner, ChatError, ChatItem, InvalidMember, Member};
use crate::contacts::{ContactName, display_name};
use crate::db;
use crate::domain::visibility::{Hidden, LinkFacts, teacher_may_see};
use crate::domain::{BannerCause, ChatStarter, LinkStatus, Relationship, TenantId};
use crate::entities::{chat_banners, chat_members, contacts};
use crate::invites::{self, InvitationItem, InviteContext, Trigger};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, Set, Value,
};
use std::collections::BTreeSet;

/// Who is looking at chats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// A teacher: the chats they own (with banners) or are a member of.
    Teacher(String),
    /// An admin: every chat of the tenant, read-only, without banners.
    Admin,
    /// A guardian: the chats they are a member of, without banners.
    Guardian(i64),
}

/// What starting a chat needs.
pub struct StartChat<'a> {
    /// The sender's SMS opt-outs when SMS is configured (`SMS_URL`), for the invitations'
    /// channel choice.
    pub sms: Option<crate::outbox::consent::OptOuts>,
    /// Tenant.
    pub tenant: TenantId,
    /// The owner's SIS source id.
    pub owner: &'a str,
    /// The student's SIS source id.
    pub student_source_id: &'a str,
    /// Guardian contact ids.
    pub contact_ids: &'a [String],
    /// Other teachers to add (SIS source ids of active staff).
    pub teacher_ids: &'a [String],
}

fn id(value: i64) -> Value {
    Value::BigInt(Some(value))
}

/// A row's id.
#[derive(FromQueryResult)]
struct Id {
    id: i64,
}

/// A guardian member's contact id.
#[derive(FromQueryResult)]
struct ContactId {
    contact_id: i64,
}

/// A chat, as [`CHAT_COLUMNS`] reads it.
#[derive(FromQueryResult)]
struct ChatRow {
    id: i64,
    owner_source_id: String,
    student_source_id: String,
    started_by: ChatStarter,
    created_at: DateTime<Utc>,
    student_id: i64,
}

/// A current member: a guardian (`contact_id`, with the contact's name unless erased —
/// `found` is null then — and the link to the chat's student) or a teacher.
#[derive(FromQueryResult)]
struct MemberRow {
    contact_id: Option<i64>,
    teacher_source_id: Option<String>,
    added_at: DateTime<Utc>,
    #[sea_orm(nested)]
    name: ContactName,
    relationship: Option<Relationship>,
    link_status: Option<LinkStatus>,
    staff_given_name: Option<String>,
    staff_family_name: Option<String>,
    found: Option<i64>,
}

/// An open banner.
#[derive(FromQueryResult)]
struct BannerRow {
    contact_id: i64,
    cause: BannerCause,
    created_at: DateTime<Utc>,
}

/// The chat's owner.
#[derive(FromQueryResult)]
struct Owner {
    owner_source_id: String,
}

/// The chat's student.
#[derive(FromQueryResult)]
struct ChatStudent {
    student_id: i64,
}

/// The student's id, if the student exists in the tenant.
async fn student_id<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    source_id: &str,
) -> Result<i64, ChatError> {
    db::rows::query_one::<Id, _>(
        conn,
        "SELECT id FROM students WHERE tenant_id = $1 AND source_id = $2",
        vec![id(tenant.0), source_id.into()],
    )
    .await?
    .map(|row| row.id)
    .ok_or(ChatError::NotFound("student"))
}

/// Most guardians (`contactIds`) and most other teachers (`teacherIds`) one request may
/// name (before duplicates are removed): a chat is a conversation, not a mailing list.
pub const MAX_MEMBERS: usize = 20;

/// The ids as given, trimmed, each once, in order; refused past [`MAX_MEMBERS`].
fn distinct(raw: &[String], field: &'static str) -> Result<Vec<String>, ChatError> {
    if raw.len() > MAX_MEMBERS {
        return Err(ChatError::TooMany {
            field,
            max: MAX_MEMBERS,
        });
    }
    let mut seen = Vec::with_capacity(raw.len());
    for id in raw.iter().map(|id| id.trim().to_string()) {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    Ok(seen)
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A named contact's link to the student and whether the owner blocked it.
#[derive(FromQueryResult)]
struct Candidate {
    contact_id: i64,
    status: LinkStatus,
    relationship: Option<Relationship>,
    restriction_id: Option<i64>,
    blocked: Option<i64>,
}

/// Checks that every contact is an active parent/guardian of the student and not blocked by
/// `owner` (one query for all of them); returns their ids, deduplicated, in order.
async fn valid_members<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student: i64,
    owner: &str,
    contact_ids: &[String],
) -> Result<Vec<i64>, ChatError> {
    let wanted = distinct(contact_ids, "contactIds")?;
    let parsed: Vec<(String, Option<i64>)> = wanted
        .into_iter()
        .map(|raw| {
            let id = raw.parse::<i64>().ok();
            (raw, id)
        })
        .collect();
    let ids: Vec<i64> = parsed.iter().filter_map(|(_, id)| *id).collect();
    let found: Vec<Candidate> = if ids.is_empty() {
        Vec::new()
    } else {
        let mut values = vec![id(tenant.0), id(student), owner.into()];
        values.extend(ids.iter().map(|c| id(*c)));
        db::rows::query_as::<Candidate, _>(
            conn,
            &format!(
                "SELECT l.contact_id, l.status, l.relationship, l.restriction_id, b.id AS blocked FROM student_contacts l \
                 LEFT JOIN chat_blocks b ON b.tenant_id = l.tenant_id AND b.owner_source_id = $3 AND b.contact_id = l.contact_id \
                 WHERE l.tenant_id = $1 AND l.student_id = $2 AND l.contact_id IN ({})",
                placeholders(4, ids.len())
            ),
            values,
        )
        .await?
    };
    let mut invalid = Vec::new();
    let mut members = Vec::new();
    for (raw, contact) in parsed {
        let link = contact.and_then(|c| found.iter().find(|f| f.contact_id == c));
        let reason = match link {
            None => Some("not_a_contact_of_student"),
            Some(link) => {
                match teacher_may_see(LinkFacts {
                    active: link.status == LinkStatus::Active,
                    relationship: link.relationship,
                    restricted: link.restriction_id.is_some(),
                }) {
                    // A restriction is not the teacher's to see: as if there were no link.
                    Err(Hidden::Restricted) => Some("not_a_contact_of_student"),
                    Err(Hidden::Inactive) => Some("inactive"),
                    Err(Hidden::NotParentOrGuardian) => Some("not_parent_or_guardian"),
                    Ok(()) if link.blocked.is_some() => Some("blocked"),
                    Ok(()) => {
                        members.push(link.contact_id);
                        None
                    }
                }
            }
        };
        if let Some(reason) = reason {
            invalid.push(InvalidMember {
                contact_id: raw,
                reason,
            });
        }
    }
    match invalid.as_slice() {
        [] if members.is_empty() => Err(ChatError::NoMembers),
        [] => Ok(members),
        [only] if only.reason == "blocked" => {
            Err(ChatError::ContactBlocked(only.contact_id.clone()))
        }
        _ => Err(ChatError::InvalidMembers(invalid)),
    }
}

/// A staff member's source id.
#[derive(FromQueryResult)]
struct StaffId {
    source_id: String,
}

/// Checks that every teacher id names active staff of the tenant (one query); returns them
/// deduplicated, without the owner.
async fn valid_teachers<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
    teacher_ids: &[String],
) -> Result<Vec<String>, ChatError> {
    let wanted = distinct(teacher_ids, "teacherIds")?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut values = vec![id(tenant.0)];
    values.extend(wanted.iter().map(|t| Value::from(t.as_str())));
    let active: BTreeSet<String> = db::rows::query_as::<StaffId, _>(
        conn,
        &format!(
            "SELECT source_id FROM staff WHERE tenant_id = $1 AND status = 'active' AND source_id IN ({})",
            placeholders(2, wanted.len())
        ),
        values,
    )
    .await?
    .into_iter()
    .map(|row| row.source_id)
    .collect();
    let (teachers, invalid): (Vec<String>, Vec<String>) =
        wanted.into_iter().partition(|t| active.contains(t));
    if !invalid.is_empty() {
        return Err(ChatError::InvalidMembers(
            invalid
                .into_iter()
                .map(|contact_id| InvalidMember {
                    contact_id,
                    reason: "not_active_staff",
                })
                .collect(),
        ));
    }
    Ok(teachers.into_iter().filter(|t| t != owner).collect())
}

/// Active guardian members of a chat.
async fn guardian_set<C: ConnectionTrait>(conn: &C, chat: i64) -> Result<BTreeSet<i64>, DbErr> {
    Ok(db::rows::query_as::<ContactId, _>(
        conn,
        "SELECT contact_id FROM chat_members WHERE chat_id = $1 AND removed_at IS NULL AND contact_id IS NOT NULL",
        vec![id(chat)],
    )
    .await?
    .into_iter()
    .map(|row| row.contact_id)
    .collect())
}

/// The owner's existing chat about the student whose guardians are exactly `guardians`.
async fn existing_chat<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
    student: i64,
    matches: impl Fn(&BTreeSet<i64>) -> bool,
) -> Result<Option<i64>, DbErr> {
    let chats = db::rows::query_as::<Id, _>(
        conn,
        "SELECT id FROM chats WHERE tenant_id = $1 AND owner_source_id = $2 AND student_id = $3 ORDER BY id",
        vec![id(tenant.0), owner.into(), id(student)],
    )
    .await?;
    for Id { id: chat } in chats {
        if matches(&guardian_set(conn, chat).await?) {
            return Ok(Some(chat));
        }
    }
    Ok(None)
}

async fn insert_chat<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    owner: &str,
    (student, student_source_id): (i64, &str),
    started_by: ChatStarter,
    now: DateTime<Utc>,
) -> Result<i64, DbErr> {
    db::rows::query_one::<Id, _>(
        conn,
        "INSERT INTO chats (tenant_id, owner_source_id, student_id, student_source_id, started_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        vec![
            id(tenant.0),
            owner.into(),
            id(student),
            student_source_id.into(),
            started_by.as_str().into(),
            Value::ChronoDateTimeUtc(Some(now)),
        ],
    )
    .await?
    .map(|row| row.id)
    .ok_or_else(|| DbErr::Custom("INSERT … RETURNING returned no row".into()))
}

async fn insert_member<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    member: (Option<i64>, Option<&str>),
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = chat_members::ActiveModel {
        tenant_id: Set(tenant.0),
        chat_id: Set(chat),
        contact_id: Set(member.0),
        teacher_source_id: Set(member.1.map(str::to_string)),
        added_at: Set(now),
        ..Default::default()
    };
    db::rows::exec(conn, &chat_members::Entity::insert(row))
        .await
        .map(|_| ())
}

/// Starts a chat owned by a teacher, or re-enters the owner's chat about the student with
/// exactly these guardians, inviting the guardians who have not joined. Returns the chat
/// (owner's view).
pub async fn start(
    db_conn: &DatabaseConnection,
    request: StartChat<'_>,
) -> Result<ChatItem, ChatError> {
    let tenant = request.tenant;
    // Every check before the write transaction: one query for the guardians, one for the
    // teachers, so the write lock is held for the writes only.
    let student = student_id(db_conn, tenant, request.student_source_id).await?;
    let guardians =
        valid_members(db_conn, tenant, student, request.owner, request.contact_ids).await?;
    let teachers = valid_teachers(db_conn, tenant, request.owner, request.teacher_ids).await?;
    let txn = db::begin_write(db_conn).await?;
    let wanted: BTreeSet<i64> = guardians.iter().copied().collect();
    let viewer = Viewer::Teacher(request.owner.to_string());
    let now = Utc::now();
    let existing =
        existing_chat(&txn, tenant, request.owner, student, |set| *set == wanted).await?;
    let (chat, trigger) = match existing {
        Some(chat) => {
            for teacher in &teachers {
                if !has_teacher(&txn, chat, teacher).await? {
                    insert_member(&txn, tenant, chat, (None, Some(teacher)), now).await?;
                }
            }
            (chat, Trigger::Reentered)
        }
        None => {
            let chat = insert_chat(
                &txn,
                tenant,
                request.owner,
                (student, request.student_source_id),
                ChatStarter::Owner,
                now,
            )
            .await?;
            for contact in &guardians {
                insert_member(&txn, tenant, chat, (Some(*contact), None), now).await?;
            }
            for teacher in &teachers {
                insert_member(&txn, tenant, chat, (None, Some(teacher)), now).await?;
            }
            (chat, Trigger::NewChat)
        }
    };
    let not_sent = invite_all(&txn, &request, chat, &guardians, trigger, now).await?;
    let mut item = read(&txn, tenant, chat, &viewer)
        .await?
        .ok_or(ChatError::NotFound("chat"))?;
    item.reentered = trigger == Trigger::Reentered;
    item.invitations.extend(not_sent);
    txn.commit().await?;
    Ok(item)
}

/// Invites the guardians who have not joined, in the chat's transaction; returns the
/// answers for those not invited (the queued ones are read back with the chat).
async fn invite_all<C: ConnectionTrait>(
    conn: &C,
    request: &StartChat<'_>,
    chat: i64,
    guardians: &[i64],
    trigger: Trigger,
    now: DateTime<Utc>,
) -> Result<Vec<InvitationItem>, DbErr> {
    let context = InviteContext {
        tenant: request.tenant,
        sms: request.sms.as_ref(),
        invited_by: request.owner,
        trigger,
        now,
    };
    let mut not_sent = Vec::new();
    for contact in guardians {
        let outcome = invites::invite(conn, &context, chat, *contact).await?;
        if outcome.id.is_none() && outcome.reason.as_deref() != Some("already_joined") {
            not_sent.push(outcome);
        }
    }
    Ok(not_sent)
}

/// Sends the invitation of `contact` (a guardian member of the owner's chat) again, within
/// the limits.
pub async fn resend_invitation(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    (chat, owner): (i64, &str),
    contact: i64,
    sms: Option<&crate::outbox::consent::OptOuts>,
) -> Result<InvitationItem, ChatError> {
    let txn = db::begin_write(db_conn).await?;
    owned(&txn, tenant, chat, owner).await?;
    if !guardian_set(&txn, chat).await?.contains(&contact) {
        return Err(ChatError::NotFound("member"));
    }
    let context = InviteContext {
        tenant,
        sms,
        invited_by: owner,
        trigger: Trigger::Resend,
        now: Utc::now(),
    };
    let outcome = invites::invite(&txn, &context, chat, contact).await?;
    txn.commit().await?;
    Ok(outcome)
}

/// Records that a guardian used Parent Connection (their first guardian request): they
/// get no more invitations.
pub async fn mark_joined<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<(), DbErr> {
    let update = contacts::Entity::update_many()
        .col_expr(contacts::Column::JoinedAt, Expr::value(Utc::now()))
        .filter(contacts::Column::TenantId.eq(tenant.0))
        .filter(contacts::Column::Id.eq(contact))
        .filter(contacts::Column::JoinedAt.is_null());
    db::rows::exec(conn, &update).await.map(|_| ())
}

async fn has_teacher<C: ConnectionTrait>(
    conn: &C,
    chat: i64,
    teacher: &str,
) -> Result<bool, DbErr> {
    db::exists(
        conn,
        "SELECT COUNT(*) FROM chat_members WHERE chat_id = $1 AND teacher_source_id = $2 AND removed_at IS NULL",
        vec![id(chat), teacher.into()],
    )
    .await
}

/// A guardian starts (or re-enters) a chat with a teacher of their child (the policy has
/// checked that the teacher teaches the student): refused with [`ChatError::Blocked`] when
/// that teacher blocked them.
pub async fn guardian_start(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    contact: i64,
    owner: &str,
    student_source_id: &str,
) -> Result<ChatItem, ChatError> {
    let txn = db::begin_write(db_conn).await?;
    let student = student_id(&txn, tenant, student_source_id).await?;
    if blocks::blocked_by(&txn, tenant, owner)
        .await?
        .contains(&contact)
    {
        return Err(ChatError::Blocked);
    }
    // The guardian must be an active parent/guardian of the student (else: not found, so
    // nothing about other families is revealed).
    valid_members(&txn, tenant, student, owner, &[contact.to_string()])
        .await
        .map_err(|e| match e {
            ChatError::Db(e) => ChatError::Db(e),
            _ => ChatError::NotFound("student"),
        })?;
    let viewer = Viewer::Guardian(contact);
    let existing =
        existing_chat(&txn, tenant, owner, student, |set| set.contains(&contact)).await?;
    let (chat, reentered) = match existing {
        Some(chat) => (chat, true),
        None => {
            let now = Utc::now();
            let chat = insert_chat(
                &txn,
                tenant,
                owner,
                (student, student_source_id),
                ChatStarter::Guardian,
                now,
            )
            .await?;
            insert_member(&txn, tenant, chat, (Some(contact), None), now).await?;
            (chat, false)
        }
    };
    let mut item = read(&txn, tenant, chat, &viewer)
        .await?
        .ok_or(ChatError::NotFound("chat"))?;
    item.reentered = reentered;
    txn.commit().await?;
    Ok(item)
}

/// The condition (binding `$n`) under which `viewer` sees chat `c`, and its value.
fn visible(viewer: &Viewer, n: usize) -> (String, Vec<Value>) {
    match viewer {
        Viewer::Admin => (String::new(), vec![]),
        Viewer::Teacher(teacher) => (
            format!(
                " AND (c.owner_source_id = ${n} OR EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.teacher_source_id = ${n} AND m.removed_at IS NULL))"
            ),
            vec![teacher.as_str().into()],
        ),
        Viewer::Guardian(contact) => (
            format!(
                " AND EXISTS (SELECT 1 FROM chat_members m WHERE m.chat_id = c.id AND m.contact_id = ${n} AND m.removed_at IS NULL)"
            ),
            vec![id(*contact)],
        ),
    }
}

const CHAT_COLUMNS: &str = "SELECT c.id, c.owner_source_id, c.student_source_id, c.started_by, c.created_at, c.student_id FROM chats c";

/// One chat, if `viewer` may see it.
pub async fn read<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    viewer: &Viewer,
) -> Result<Option<ChatItem>, DbErr> {
    let (condition, extra) = visible(viewer, 3);
    let row = db::rows::query_one::<ChatRow, _>(
        conn,
        &format!("{CHAT_COLUMNS} WHERE c.tenant_id = $1 AND c.id = $2{condition}"),
        [vec![id(tenant.0), id(chat)], extra].concat(),
    )
    .await?;
    match row {
        None => Ok(None),
        Some(row) => item(conn, tenant, row, viewer).await.map(Some),
    }
}

/// The owner (SIS source id) of a chat, if `viewer` may see the chat.
pub async fn owner<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    viewer: &Viewer,
) -> Result<Option<String>, DbErr> {
    let (condition, extra) = visible(viewer, 3);
    Ok(db::rows::query_one::<Owner, _>(
        conn,
        &format!(
            "SELECT c.owner_source_id FROM chats c WHERE c.tenant_id = $1 AND c.id = $2{condition}"
        ),
        [vec![id(tenant.0), id(chat)], extra].concat(),
    )
    .await?
    .map(|row| row.owner_source_id))
}

/// Where a page of chats starts and how long it is.
#[derive(Debug, Clone, Copy)]
pub struct ChatPage<'a> {
    /// Only chats about this student (SIS source id).
    pub student_source_id: Option<&'a str>,
    /// Chats with an id below this one (the cursor).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u64,
}

/// A page of the chats `viewer` may see, newest first, and the cursor of the next page.
///
/// Each page walks an index that ends with the chat id, from the cursor down: an admin's
/// on (tenant, id), a guardian's on their memberships (tenant, contact, chat), a teacher's
/// on the chats they own (tenant, owner, id) merged with those they are a member of
/// (tenant, teacher, chat), each cut at the page size before the merge. A student's chats
/// (a handful) are read through (tenant, student, id).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    viewer: &Viewer,
    page: ChatPage<'_>,
) -> Result<(Vec<ChatItem>, Option<String>), DbErr> {
    let take = page.limit.saturating_add(1);
    let base = vec![id(tenant.0), id(page.before.unwrap_or(i64::MAX))];
    let (sql, values) = match (page.student_source_id, viewer) {
        (Some(student), _) => {
            let (condition, extra) = visible(viewer, 4);
            (
                format!(
                    "{CHAT_COLUMNS} WHERE c.tenant_id = $1 AND c.id < $2 \
                     AND c.student_id = (SELECT s.id FROM students s WHERE s.tenant_id = $1 AND s.source_id = $3){condition} \
                     ORDER BY c.id DESC LIMIT {take}"
                ),
                [base, vec![student.into()], extra].concat(),
            )
        }
        (None, Viewer::Admin) => (
            format!(
                "{CHAT_COLUMNS} WHERE c.tenant_id = $1 AND c.id < $2 ORDER BY c.id DESC LIMIT {take}"
            ),
            base,
        ),
        (None, Viewer::Guardian(contact)) => (
            format!(
                "{CHAT_COLUMNS} JOIN chat_members m ON m.chat_id = c.id \
                 WHERE m.tenant_id = $1 AND m.chat_id < $2 AND m.contact_id = $3 AND m.removed_at IS NULL \
                 AND c.tenant_id = $1 ORDER BY m.chat_id DESC LIMIT {take}"
            ),
            [base, vec![id(*contact)]].concat(),
        ),
        // Subqueries in FROM: both engines take ORDER BY … LIMIT on a UNION's parts there.
        (None, Viewer::Teacher(teacher)) => (
            format!(
                "{CHAT_COLUMNS} WHERE c.tenant_id = $1 AND c.id IN (\
                   SELECT o.id FROM (SELECT id FROM chats WHERE tenant_id = $1 AND owner_source_id = $3 AND id < $2 \
                     ORDER BY id DESC LIMIT {take}) o \
                   UNION SELECT t.chat_id FROM (SELECT chat_id FROM chat_members WHERE tenant_id = $1 AND teacher_source_id = $3 \
                     AND removed_at IS NULL AND chat_id < $2 ORDER BY chat_id DESC LIMIT {take}) t) \
                 ORDER BY c.id DESC LIMIT {take}"
            ),
            [base, vec![teacher.as_str().into()]].concat(),
        ),
    };
    let mut items = Vec::new();
    for row in db::rows::query_as::<ChatRow, _>(conn, &sql, values).await? {
        items.push(item(conn, tenant, row, viewer).await?);
    }
    Ok(db::page(items, page.limit, |chat| chat.id.clone()))
}

async fn item<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    row: ChatRow,
    viewer: &Viewer,
) -> Result<ChatItem, DbErr> {
    let chat = row.id;
    let owner = row.owner_source_id;
    let student = row.student_id;
    let members = db::rows::query_as::<MemberRow, _>(
        conn,
        "SELECT m.contact_id, m.teacher_source_id, m.added_at, c.given_name, c.family_name, c.email, c.mobile_phone, \
           l.relationship, l.status AS link_status, s.given_name AS staff_given_name, s.family_name AS staff_family_name, \
           c.id AS found \
         FROM chat_members m \
         LEFT JOIN contacts c ON c.id = m.contact_id \
         LEFT JOIN student_contacts l ON l.contact_id = m.contact_id AND l.student_id = $2 \
         LEFT JOIN staff s ON s.tenant_id = m.tenant_id AND s.source_id = m.teacher_source_id \
         WHERE m.chat_id = $1 AND m.removed_at IS NULL ORDER BY m.id",
        vec![id(chat), id(student)],
    )
    .await?
    .into_iter()
    .map(member)
    .collect();
    let owner_view = matches!(viewer, Viewer::Teacher(t) if *t == owner);
    let (banners, invitations) = if owner_view {
        (
            open_banners(conn, chat).await?,
            crate::invites::for_chat(conn, tenant, chat).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ChatItem {
        id: chat.to_string(),
        owner_id: owner,
        student_id: row.student_source_id,
        started_by: row.started_by.as_str().to_string(),
        members,
        banners,
        invitations,
        reentered: false,
        created_at: row.created_at,
    })
}

fn member(row: MemberRow) -> Member {
    match row.contact_id {
        Some(contact) => Member {
            kind: "guardian".into(),
            id: contact.to_string(),
            display_name: match row.found {
                Some(_) => row.name.display(),
                None => "(erased contact)".into(),
            },
            relationship: row.relationship.map(|r| r.as_str().to_string()),
            link_status: Some(
                row.link_status
                    .map_or("erased", LinkStatus::as_str)
                    .to_string(),
            ),
            added_at: row.added_at,
        },
        None => {
            let teacher = row.teacher_source_id.unwrap_or_default();
            Member {
                kind: "teacher".into(),
                display_name: display_name(
                    row.staff_given_name.as_deref(),
                    row.staff_family_name.as_deref(),
                    None,
                    Some(&teacher),
                ),
                id: teacher,
                relationship: None,
                link_status: None,
                added_at: row.added_at,
            }
        }
    }
}

async fn open_banners<C: ConnectionTrait>(conn: &C, chat: i64) -> Result<Vec<Banner>, DbErr> {
    Ok(db::rows::query_as::<BannerRow, _>(
        conn,
        "SELECT contact_id, cause, created_at FROM chat_banners WHERE chat_id = $1 AND cleared_at IS NULL ORDER BY id",
        vec![id(chat)],
    )
    .await?
    .into_iter()
    .map(|row| Banner {
        contact_id: row.contact_id.to_string(),
        message: row.cause.message().to_string(),
        cause: row.cause.as_str().to_string(),
        created_at: row.created_at,
    })
    .collect())
}

/// The chat `chat` if `owner` owns it: `(student id)`.
async fn owned<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    owner: &str,
) -> Result<i64, ChatError> {
    db::rows::query_one::<ChatStudent, _>(
        conn,
        "SELECT student_id FROM chats WHERE tenant_id = $1 AND id = $2 AND owner_source_id = $3",
        vec![id(tenant.0), id(chat), owner.into()],
    )
    .await?
    .map(|row| row.student_id)
    .ok_or(ChatError::NotFound("chat"))
}

/// Adds a guardian to the owner's chat (an active parent/guardian of its student, not
/// blocked); adding a current member changes nothing.
pub async fn add_member(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    chat: i64,
    owner: &str,
    contact_id: &str,
) -> Result<ChatItem, ChatError> {
    let txn = db::begin_write(db_conn).await?;
    let student = owned(&txn, tenant, chat, owner).await?;
    let contact = valid_members(&txn, tenant, student, owner, &[contact_id.to_string()]).await?[0];
    if !guardian_set(&txn, chat).await?.contains(&contact) {
        insert_member(&txn, tenant, chat, (Some(contact), None), Utc::now()).await?;
    }
    let item = read(&txn, tenant, chat, &Viewer::Teacher(owner.to_string()))
        .await?
        .ok_or(ChatError::NotFound("chat"))?;
    txn.commit().await?;
    Ok(item)
}

/// Removes a guardian from the owner's chat and clears the banner about them.
pub async fn remove_member<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    chat: i64,
    owner: &str,
    contact: i64,
) -> Result<(), ChatError> {
    owned(conn, tenant, chat, owner).await?;
    let now = Utc::now();
    let removal = chat_members::Entity::update_many()
        .col_expr(chat_members::Column::RemovedAt, Expr::value(now))
        .col_expr(chat_members::Column::RemovedBy, Expr::value("owner"))
        .filter(chat_members::Column::ChatId.eq(chat))
        .filter(chat_members::Column::ContactId.eq(contact))
        .filter(chat_members::Column::RemovedAt.is_null());
    if db::rows::exec(conn, &removal).await? == 0 {
        return Err(ChatError::NotFound("member"));
    }
    let cleared = chat_banners::Entity::update_many()
        .col_expr(chat_banners::Column::ClearedAt, Expr::value(now))
        .col_expr(chat_banners::Column::ClearedBy, Expr::value("owner"))
        .filter(chat_banners::Column::ChatId.eq(chat))
        .filter(chat_banners::Column::ContactId.eq(contact))
        .filter(chat_banners::Column::ClearedAt.is_null());
    db::rows::exec(conn, &cleared).await?;
    Ok(())
}

/// [`remove_member`] in a transaction of its own, returning the chat as the owner sees it.
pub async fn remove_member_now(
    db_conn: &DatabaseConnection,
    tenant: TenantId,
    chat: i64,
    owner: &str,
    contact: i64,
) -> Result<ChatItem, ChatError> {
    let txn = db::begin_write(db_conn).await?;
    remove_member(&txn, tenant, chat, owner, contact).await?;
    let item = read(&txn, tenant, chat, &Viewer::Teacher(owner.to_string()))
        .await?
        .ok_or(ChatError::NotFound("chat"))?;
    txn.commit().await?;
    Ok(item)
}
