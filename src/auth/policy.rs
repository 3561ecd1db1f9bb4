//! The access policy: the one place that decides what a verified [`Principal`] may reach.
//! Every handler asks here before it reads or writes anything, and uses the scope it gets
//! back for its queries.
//!
//! | capability | teacher | global-admin, teams-admin | tenant-admin | app (`EduRoster.Read.All`) |
//! |---|---|---|---|---|
//! | a student's contacts | active parents/guardians of students in classes they teach | every contact, with provenance | – | – |
//! | classes, class students | their own active classes | every class | – | – |
//! | run an import | – | yes | – | – |
//! | run a OneRoster sync, read or store its connection | – | yes | – | – |
//! | read import runs | – | yes | yes | – |
//! | Graph `relatedContacts` | – | – | – | active contacts of any student |
//! | propose a contact edit | for students in classes they teach | – | – | – |
//! | read contact requests | their own | every request | – | – |
//! | approve / reject, erase, lift an erasure | – | yes | – | – |
//! | read settings | – | yes | yes | – |
//! | change settings | – | – | yes | – |
//! | read the audit log | – | yes | yes | – |
//! | list, add and lift digest unsubscribes | – | yes | yes | – |
//! | a guardian's invitations | own chats' | every one | – | – |
//! | start a chat, manage its members, block guardians | for students they teach / their own chats | – | – | – |
//! | read chats | own chats (with banners) and chats they are in | every chat, no banners | – | – |
//! | write a class's assignments | classes they own | – | – | app with `EduAssignments.ReadWrite.All`: any class |
//! | read a class's assignments | classes they own | every class | – | app with `EduAssignments.ReadWrite.All`: any class |
//! | a class's digest switch (`notifyGuardians`) | change and read for classes they own | read | – | – |
//!
//! Views that cover every student of the tenant (the audit log, import reports) show contact
//! values (names, email addresses, phone numbers, relationships, rejected input) only to the
//! callers who read every student's contacts ([`contact_values`]); the others (tenant admins)
//! see which fields changed and where a problem is, never the values.
//!
//! Nobody decides their own contact request, whatever roles they hold: the decision compares
//! the request's author with the caller ([`person`]).
//!
//! Contact (guardian) tokens reach only the guardian routes: their own chats, and starting
//! a chat with a teacher of their child unless that teacher blocked them.
//!
//! Everything is scoped by the token's tenant. A resource the caller may not reach inside
//! its tenant, and any resource of another tenant, is reported as not found, exactly like
//! one that does not exist.

use super::{Identity, Principal, Role, Scope};
use crate::contacts::Scope as ContactScope;
use crate::db;
use crate::roster::{self, ClassScope};
use sea_orm::{ConnectionTrait, DbErr, Value};
use std::collections::BTreeSet;

/// Why access was refused.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No such resource for this caller (also: exists but out of reach, or another tenant's).
    #[error("not found")]
    NotFound,
    /// The caller's kind or roles never allow this action.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The decision needed the database, which failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Administrators of the tenant's data: global admins and teams admins.
pub fn is_admin(principal: &Principal) -> bool {
    principal.has_role(Role::GlobalAdmin) || principal.has_role(Role::TeamsAdmin)
}

fn user_only(principal: &Principal) -> Result<(), Denied> {
    match principal.identity {
        Identity::User { .. } => Ok(()),
        Identity::App { .. } => Err(Denied::Forbidden(
            "app-only tokens may use the Graph-compatible read and the assignment routes only",
        )),
        Identity::Contact { .. } => Err(Denied::Forbidden(
            "this route is for school staff, not for parents and guardians",
        )),
    }
}

/// The caller's SIS source id when the caller is a person (any roles).
pub fn person(principal: &Principal) -> Option<&str> {
    match &principal.identity {
        Identity::User { source_id, .. } => Some(source_id),
        _ => None,
    }
}

/// The caller's SIS source id when they hold the teacher role.
fn teacher_id(principal: &Principal) -> Option<&str> {
    match &principal.identity {
        Identity::User { source_id, roles } if roles.contains(&Role::Teacher) => Some(source_id),
        _ => None,
    }
}

/// The teacher's SIS source id if they teach `student_source_id`; not found otherwise;
/// `forbidden` for callers without the teacher role.
async fn teacher_of<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    student_source_id: &str,
    forbidden: &'static str,
) -> Result<String, Denied> {
    let teacher = teacher_id(principal).ok_or(Denied::Forbidden(forbidden))?;
    if roster::teacher_reaches_student(conn, principal.tenant, teacher, student_source_id).await? {
        Ok(teacher.to_string())
    } else {
        Err(Denied::NotFound)
    }
}

/// Whose students' contacts the caller reads: every student (admins), or the students the
/// teacher teaches (applied by the contacts query itself, so a student out of reach reads
/// as not found).
pub fn student_contacts(principal: &Principal) -> Result<ContactScope, Denied> {
    user_only(principal)?;
    if is_admin(principal) {
        return Ok(ContactScope::Admin);
    }
    teacher_id(principal)
        .map(|teacher| ContactScope::TaughtBy(teacher.to_string()))
        .ok_or(Denied::Forbidden(
            "reading contacts needs the teacher, global-admin or teams-admin role",
        ))
}

/// Which classes the caller may list.
pub fn class_scope(principal: &Principal) -> Result<ClassScope, Denied> {
    user_only(principal)?;
    if is_admin(principal) {
        return Ok(ClassScope::All);
    }
    teacher_id(principal)
        .map(|teacher| ClassScope::TaughtBy(teacher.to_string()))
        .ok_or(Denied::Forbidden(
            "classes need the teacher, global-admin or teams-admin role",
        ))
}

/// A class the caller may open: its database id, and whether only active students and
/// enrollments are shown (teachers).
pub async fn class<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
) -> Result<(i64, bool), Denied> {
    let scope = class_scope(principal)?;
    let active_only = scope != ClassScope::All;
    roster::find_class(conn, principal.tenant, &scope, class_source_id)
        .await?
        .map(|id| (id, active_only))
        .ok_or(Denied::NotFound)
}

/// Global admins and teams admins only; `why` explains the refusal to everyone else.
fn admins_only(principal: &Principal, why: &'static str) -> Result<(), Denied> {
    user_only(principal)?;
    if is_admin(principal) {
        Ok(())
    } else {
        Err(Denied::Forbidden(why))
    }
}

/// Running an import (uploading a snapshot).
pub fn run_import(principal: &Principal) -> Result<(), Denied> {
    admins_only(
        principal,
        "imports need the global-admin or teams-admin role",
    )
}

/// Running a OneRoster sync and reading or storing the tenant's OneRoster connection.
pub fn run_oneroster(principal: &Principal) -> Result<(), Denied> {
    admins_only(
        principal,
        "OneRoster syncs and connections need the global-admin or teams-admin role",
    )
}

/// Reading import runs and their reports.
pub fn read_imports(principal: &Principal) -> Result<(), Denied> {
    user_only(principal)?;
    if is_admin(principal) || principal.has_role(Role::TenantAdmin) {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "import runs need the global-admin, teams-admin or tenant-admin role",
        ))
    }
}

/// The Graph-compatible read of a student's related contacts: app-only tokens with
/// `EduRoster.Read.All` (or `EduRoster.ReadWrite.All`).
pub fn graph_read(principal: &Principal) -> Result<(), Denied> {
    match principal.identity {
        Identity::App { .. }
            if principal.has_scope(Scope::ROSTER_READ_ALL)
                || principal.has_scope(Scope::ROSTER_READ_WRITE_ALL) =>
        {
            Ok(())
        }
        Identity::App { .. } => Err(Denied::Forbidden(
            "this read needs the EduRoster.Read.All scope",
        )),
        _ => Err(Denied::Forbidden(
            "this Graph-compatible read needs an app-only token",
        )),
    }
}

/// Whose contact requests the caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestScope {
    /// Every request of the tenant (approvers).
    All,
    /// The requests this teacher made.
    OwnedBy(String),
}

/// Proposing a contact edit for `student_source_id`: a teacher of one of the student's
/// active classes. Returns the teacher's SIS source id.
pub async fn submit_contact_request<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    student_source_id: &str,
) -> Result<String, Denied> {
    user_only(principal)?;
    teacher_of(
        conn,
        principal,
        student_source_id,
        "proposing contact edits needs the teacher role",
    )
    .await
}

/// Reading contact requests: approvers read every request, teachers their own.
pub fn read_contact_requests(principal: &Principal) -> Result<RequestScope, Denied> {
    user_only(principal)?;
    if is_admin(principal) {
        return Ok(RequestScope::All);
    }
    teacher_id(principal)
        .map(|teacher| RequestScope::OwnedBy(teacher.to_string()))
        .ok_or(Denied::Forbidden(
            "contact requests need the teacher, global-admin or teams-admin role",
        ))
}

/// Whose contact values the caller reads in contact requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestValues {
    /// Every request's, with the candidate match of an "add" (approvers).
    All,
    /// A teacher: the values of requests about the students they still teach (these source
    /// ids); never a candidate match (another person's stored data).
    Reached(BTreeSet<String>),
}

impl RequestValues {
    /// True when a request about `student_source_id` shows contact values.
    pub fn shows_values(&self, student_source_id: &str) -> bool {
        match self {
            RequestValues::All => true,
            RequestValues::Reached(students) => students.contains(student_source_id),
        }
    }

    /// True when the candidate match of an "add" is shown.
    pub fn shows_match(&self) -> bool {
        *self == RequestValues::All
    }
}

/// Which of `students` (source ids of the requests being shown) the caller reads contact
/// values about: approvers all; a teacher those they still teach (an active class they
/// actively teach, with the student actively enrolled), found in one query that starts from
/// these students and the teacher's own enrollments.
pub async fn request_values<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    scope: &RequestScope,
    students: &[&str],
) -> Result<RequestValues, Denied> {
    let teacher = match scope {
        RequestScope::All => return Ok(RequestValues::All),
        RequestScope::OwnedBy(teacher) => teacher,
    };
    let wanted: BTreeSet<&str> = students.iter().copied().collect();
    if wanted.is_empty() {
        return Ok(RequestValues::Reached(BTreeSet::new()));
    }
    let mut values = vec![
        Value::BigInt(Some(principal.tenant.0)),
        Value::String(Some(teacher.clone())),
    ];
    let placeholders: Vec<String> = wanted
        .iter()
        .map(|student| {
            values.push(Value::String(Some((*student).to_string())));
            format!("${}", values.len())
        })
        .collect();
    let sql = format!(
        "SELECT s.source_id FROM students s WHERE s.tenant_id = $1 AND s.source_id IN ({}) AND {}",
        placeholders.join(", "),
        roster::teaches_student(2)
    );
    let rows = db::query(conn, &sql, values).await?;
    let reached = rows
        .iter()
        .map(|row| row.try_get::<String>("", "source_id"))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(RequestValues::Reached(reached))
}

/// Approving or rejecting contact requests, and erasing contacts: approvers only.
pub fn administer_contacts(principal: &Principal) -> Result<(), Denied> {
    admins_only(principal, "this needs the global-admin or teams-admin role")
}

/// Whether a view covering every student of the tenant shows contact values to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactValues {
    /// Names, email addresses, phone numbers and rejected input are shown.
    Shown,
    /// Only field names ("changed") and locations (file, record, column, code) are shown.
    Hidden,
}

/// The one rule for contact values in the audit log and in import reports: shown to those
/// who read every student's contacts ([`student_contacts`] gives them
/// [`ContactScope::Admin`]), hidden from everyone else (tenant admins get 403 on contacts,
/// so they get no values here either; a teacher reads only their own students').
pub fn contact_values(principal: &Principal) -> ContactValues {
    match student_contacts(principal) {
        Ok(ContactScope::Admin) => ContactValues::Shown,
        _ => ContactValues::Hidden,
    }
}

/// Reading tenant settings: tenant admins and approvers.
pub fn read_settings(principal: &Principal) -> Result<(), Denied> {
    user_only(principal)?;
    if principal.has_role(Role::TenantAdmin) || is_admin(principal) {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "settings need the tenant-admin, global-admin or teams-admin role",
        ))
    }
}

/// Changing tenant settings: tenant admins.
pub fn update_settings(principal: &Principal) -> Result<(), Denied> {
    user_only(principal)?;
    if principal.has_role(Role::TenantAdmin) {
        Ok(())
    } else {
        Err(Denied::Forbidden(
            "changing settings needs the tenant-admin role",
        ))
    }
}

/// Listing, adding and lifting digest unsubscribes: approvers and tenant admins.
pub fn digest_unsubscribes(principal: &Principal) -> Result<(), Denied> {
    read_settings(principal).map_err(|_| {
        Denied::Forbidden(
            "digest unsubscribes need the global-admin, teams-admin or tenant-admin role",
        )
    })
}

/// Reading the audit log: approvers and tenant admins.
pub fn read_audit(principal: &Principal) -> Result<(), Denied> {
    read_settings(principal).map_err(|_| {
        Denied::Forbidden("the audit log needs the global-admin, teams-admin or tenant-admin role")
    })
}

/// Starting a chat about `student_source_id` (or managing one's chats and blocks): a
/// teacher who teaches the student. Returns the teacher's SIS source id.
pub async fn start_chat<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    student_source_id: &str,
) -> Result<String, Denied> {
    user_only(principal)?;
    teacher_of(
        conn,
        principal,
        student_source_id,
        "chats and block lists are for teachers",
    )
    .await
}

/// Managing one's own chats and block list: teachers. Returns their SIS source id.
pub fn chat_owner(principal: &Principal) -> Result<String, Denied> {
    user_only(principal)?;
    teacher_id(principal)
        .map(str::to_string)
        .ok_or(Denied::Forbidden("chats and block lists are for teachers"))
}

/// The teacher pages (`/teacher/…`): a person with the teacher role. Returns their SIS
/// source id. Each page then asks the same question as its API route.
pub fn teacher_pages(principal: &Principal) -> Result<String, Denied> {
    user_only(principal)?;
    teacher_id(principal)
        .map(str::to_string)
        .ok_or(Denied::Forbidden("the teacher pages need the teacher role"))
}

/// Whose view of chats the caller gets on the staff routes: a teacher sees the chats they
/// own (with banners) or are in; an admin every chat, read-only, without banners.
pub fn chat_viewer(principal: &Principal) -> Result<crate::chats::store::Viewer, Denied> {
    use crate::chats::store::Viewer;
    user_only(principal)?;
    match teacher_id(principal) {
        Some(teacher) => Ok(Viewer::Teacher(teacher.to_string())),
        None if is_admin(principal) => Ok(Viewer::Admin),
        None => Err(Denied::Forbidden(
            "chats need the teacher, global-admin or teams-admin role",
        )),
    }
}

/// A contact's invitation records and counters: admins reach every contact of the tenant,
/// teachers the parents and guardians of students they teach; any other contact (another
/// tenant's, or none) is not found.
pub async fn contact_invitations<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    contact_id: i64,
) -> Result<(), Denied> {
    let reached = match chat_viewer(principal)? {
        crate::chats::store::Viewer::Admin => {
            crate::contacts::exists(conn, principal.tenant, contact_id).await?
        }
        crate::chats::store::Viewer::Teacher(teacher) => {
            roster::teacher_reaches_contact(conn, principal.tenant, &teacher, contact_id).await?
        }
        crate::chats::store::Viewer::Guardian(_) => false,
    };
    if reached {
        Ok(())
    } else {
        Err(Denied::NotFound)
    }
}

/// The guardian routes: a parent or guardian (contact token). Returns the contact id.
pub fn guardian(principal: &Principal) -> Result<i64, Denied> {
    match &principal.identity {
        Identity::Contact { contact_id } => contact_id
            .parse::<i64>()
            .map_err(|_| Denied::Forbidden("the token's contact id is not valid")),
        _ => Err(Denied::Forbidden(
            "this route is for parents and guardians (a contact token)",
        )),
    }
}

/// A guardian starting a chat with `owner`: the owner must teach the student.
pub async fn guardian_start_chat<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    owner: &str,
    student_source_id: &str,
) -> Result<i64, Denied> {
    let contact = guardian(principal)?;
    if roster::teacher_reaches_student(conn, principal.tenant, owner, student_source_id).await? {
        Ok(contact)
    } else {
        Err(Denied::NotFound)
    }
}

/// A class owner: a teacher with an active teacher enrollment in the active class. Returns
/// the class id; `None` when the caller is not a teacher at all.
async fn owned_class<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
) -> Result<Option<Option<i64>>, Denied> {
    let Some(teacher) = teacher_id(principal) else {
        return Ok(None);
    };
    let scope = ClassScope::TaughtBy(teacher.to_string());
    Ok(Some(
        roster::find_class(conn, principal.tenant, &scope, class_source_id).await?,
    ))
}

/// An app holding `EduAssignments.ReadWrite.All` reaches every class of its tenant (any
/// status). `Ok(None)`: the caller is not an app.
async fn assignments_app<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
) -> Result<Option<i64>, Denied> {
    match principal.identity {
        Identity::App { .. } if principal.has_scope(Scope::ASSIGNMENTS_READ_WRITE_ALL) => {
            roster::find_class(conn, principal.tenant, &ClassScope::All, class_source_id)
                .await?
                .map(Some)
                .ok_or(Denied::NotFound)
        }
        Identity::App { .. } => Err(Denied::Forbidden(
            "assignments need the EduAssignments.ReadWrite.All scope",
        )),
        _ => Ok(None),
    }
}

/// Writing (creating, replacing, deleting) a class's assignments: the class owner, or an
/// app with `EduAssignments.ReadWrite.All`. Returns the class id.
pub async fn write_assignments<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
) -> Result<i64, Denied> {
    if let Some(class) = assignments_app(conn, principal, class_source_id).await? {
        return Ok(class);
    }
    user_only(principal)?;
    match owned_class(conn, principal, class_source_id).await? {
        Some(Some(class)) => Ok(class),
        Some(None) if !is_admin(principal) => Err(Denied::NotFound),
        _ => Err(Denied::Forbidden(
            "assignments are written by the class owner or an integration with EduAssignments.ReadWrite.All",
        )),
    }
}

/// Reading a class's assignments: the class owner, an app with
/// `EduAssignments.ReadWrite.All`, or an admin (any class). Returns the class id.
pub async fn read_assignments<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
) -> Result<i64, Denied> {
    if let Some(class) = assignments_app(conn, principal, class_source_id).await? {
        return Ok(class);
    }
    user_only(principal)?;
    if let Some(Some(class)) = owned_class(conn, principal, class_source_id).await? {
        return Ok(class);
    }
    if is_admin(principal) {
        return roster::find_class(conn, principal.tenant, &ClassScope::All, class_source_id)
            .await?
            .ok_or(Denied::NotFound);
    }
    if principal.has_role(Role::Teacher) {
        return Err(Denied::NotFound);
    }
    Err(Denied::Forbidden(
        "assignments need the teacher (class owner), global-admin or teams-admin role",
    ))
}

/// The class's digest switch: the class owner changes it (`change`); the owner and admins
/// read it. Returns the class id.
pub async fn class_digest<C: ConnectionTrait>(
    conn: &C,
    principal: &Principal,
    class_source_id: &str,
    change: bool,
) -> Result<i64, Denied> {
    user_only(principal)?;
    match owned_class(conn, principal, class_source_id).await? {
        Some(Some(class)) => return Ok(class),
        Some(None) if !is_admin(principal) => return Err(Denied::NotFound),
        _ => {}
    }
    if is_admin(principal) && !change {
        return roster::find_class(conn, principal.tenant, &ClassScope::All, class_source_id)
            .await?
            .ok_or(Denied::NotFound);
    }
    Err(Denied::Forbidden(
        "the class's digest switch is changed by the class owner",
    ))
}
