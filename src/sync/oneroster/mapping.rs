//! From OneRoster records to the staging tables the SDS imports fill (SPEC §3.1):
//! orgs → schools; users by `role` → students, staff or contacts; classes; student and
//! teacher enrollments; student–contact links from `agents` on either side, unioned. A
//! record with `status: tobedeleted`, or a user with `enabledUser` false, counts as absent.

use super::model::{Class, Enrollment, Item, Org, Pulled, Record, User};
use crate::domain::{
    EmailAddress, EnrollmentKind, PhoneE164, Region, Relationship, RoleGroup, SdsRole,
};
use crate::sync::csv_file::IssueSink;
use crate::sync::files::{Channels, ParseCtx};
use crate::sync::hashing::SyncKey;
use crate::sync::report::Issue;
use crate::sync::staging::StageTable;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Position of each collection in the run's source list (the `src` of staged rows).
pub const SOURCES: [&str; 4] = ["/orgs", "/users", "/classes", "/enrollments"];
const ORGS: usize = 0;
const USERS: usize = 1;
const CLASSES: usize = 2;
const ENROLLMENTS: usize = 3;

/// Everything pulled from the provider for one run.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `/orgs`.
    pub orgs: Pulled<Org>,
    /// `/users`.
    pub users: Pulled<User>,
    /// `/classes`.
    pub classes: Pulled<Class>,
    /// `/enrollments`.
    pub enrollments: Pulled<Enrollment>,
    /// Delta runs: users fetched one by one because an `agents` entry named them.
    pub lookups: Vec<User>,
    /// Delta runs: `agents` entries that could not be looked up (over the limit).
    pub unresolved: Vec<String>,
}

/// Ids of records a delta run found gone, and what the run saw.
#[derive(Debug, Default)]
pub struct Staged {
    /// Users (`tobedeleted` or disabled).
    pub gone_users: Vec<String>,
    /// Orgs.
    pub gone_orgs: Vec<String>,
    /// Classes.
    pub gone_classes: Vec<String>,
    /// `sync_key`s of enrollments marked `tobedeleted`.
    pub gone_enrollments: Vec<i64>,
    /// The greatest `dateLastModified` seen, as written by the provider.
    pub watermark: Option<String>,
}

/// What a user is to the sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Student,
    /// Staff, with their role as SDS writes it.
    Staff(SdsRole),
    Contact(Relationship),
    /// A role the sync does not store.
    Other,
    /// Gone: `tobedeleted` or disabled.
    Absent,
}

/// The greatest `dateLastModified` seen.
#[derive(Default)]
struct Watermark {
    best: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

impl Watermark {
    fn see(&mut self, record: &impl Record) {
        let Some(raw) = record.date_last_modified() else {
            return;
        };
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw.trim()) else {
            return;
        };
        let at = at.with_timezone(&chrono::Utc);
        if self.best.as_ref().is_none_or(|(best, _)| at > *best) {
            self.best = Some((at, raw.trim().to_string()));
        }
    }
}

/// Stages a snapshot (or, with `delta`, the records of a delta) and returns what the
/// delta step needs.
pub fn stage(ctx: &mut ParseCtx<'_>, snapshot: Snapshot, delta: bool) -> Staged {
    let mut staged = Staged::default();
    let mut watermark = Watermark::default();
    report_unreadable(ctx, &snapshot);
    stage_orgs(ctx, &snapshot.orgs, &mut staged, &mut watermark);
    let kinds = classify(ctx, &snapshot, &mut staged, &mut watermark);
    stage_people(ctx, &snapshot, &kinds);
    stage_links(ctx, &snapshot, &kinds, delta);
    let classes = stage_classes(ctx, &snapshot.classes, &mut staged, &mut watermark);
    stage_enrollments(
        ctx,
        &snapshot.enrollments,
        &kinds,
        &classes,
        delta,
        &mut staged,
        &mut watermark,
    );
    staged.watermark = watermark.best.map(|(_, raw)| raw);
    staged
}

/// Row errors for records that did not parse, and a warning for duplicates.
fn report_unreadable(ctx: &mut ParseCtx<'_>, snapshot: &Snapshot) {
    let tables = [
        (ORGS, StageTable::Schools),
        (USERS, StageTable::Students),
        (CLASSES, StageTable::Classes),
        (ENROLLMENTS, StageTable::Enrollments),
    ];
    let bad: [Vec<(u64, String)>; 4] = [
        bad_items(&snapshot.orgs),
        bad_items(&snapshot.users),
        bad_items(&snapshot.classes),
        bad_items(&snapshot.enrollments),
    ];
    let duplicates = [
        snapshot.orgs.duplicates,
        snapshot.users.duplicates,
        snapshot.classes.duplicates,
        snapshot.enrollments.duplicates,
    ];
    for ((src, table), (bad, duplicates)) in tables.into_iter().zip(bad.into_iter().zip(duplicates))
    {
        if !bad.is_empty() {
            ctx.rejected.push((table, bad.len() as u64));
        }
        for (rec, message) in bad {
            ctx.sink.error(Issue::at(
                SOURCES[src],
                rec,
                None,
                "invalid_record",
                message,
            ));
        }
        if duplicates > 0 {
            ctx.sink.warning(Issue::file(
                SOURCES[src],
                "duplicate_record",
                format!("{duplicates} record(s) came again on a later page (the data changed while it was read); the first copy was kept"),
            ));
        }
    }
}

fn bad_items<T>(pulled: &Pulled<T>) -> Vec<(u64, String)> {
    pulled
        .items
        .iter()
        .filter_map(|(rec, item)| match item {
            Item::Bad { message, .. } => Some((*rec, message.clone())),
            Item::Ok(_) => None,
        })
        .collect()
}

fn stage_orgs(
    ctx: &mut ParseCtx<'_>,
    orgs: &Pulled<Org>,
    staged: &mut Staged,
    watermark: &mut Watermark,
) {
    for (rec, org) in orgs.records() {
        watermark.see(org);
        if org.is_deleted() {
            staged.gone_orgs.push(org.sourced_id.clone());
            continue;
        }
        ctx.stager.push(
            StageTable::Schools,
            ORGS,
            rec,
            vec![Some(org.sourced_id.clone()), org.name.clone()],
        );
    }
}

/// Every user (pulled or looked up) by id with its kind and position.
fn classify<'a>(
    ctx: &mut ParseCtx<'_>,
    snapshot: &'a Snapshot,
    staged: &mut Staged,
    watermark: &mut Watermark,
) -> HashMap<&'a str, (Kind, u64)> {
    let lookups = snapshot.lookups.iter().map(|u| (0u64, u));
    let mut kinds = HashMap::new();
    for (rec, user) in snapshot.users.records().chain(lookups) {
        watermark.see(user);
        let kind = user_kind(user, rec, &mut ctx.sink);
        if kind == Kind::Absent {
            staged.gone_users.push(user.sourced_id.clone());
        }
        kinds.insert(user.sourced_id.as_str(), (kind, rec));
    }
    kinds
}

fn user_kind(user: &User, rec: u64, sink: &mut IssueSink) -> Kind {
    let enabled = match user.enabled_user.as_ref().map(|f| (f, f.value())) {
        None => true,
        Some((_, Some(value))) => value,
        Some((raw, None)) => {
            sink.warning(Issue::at(
                SOURCES[USERS],
                rec,
                Some("enabledUser"),
                "invalid_value",
                format!(
                    "enabledUser {raw:?} is not true, false, 1 or 0; the user is taken as enabled"
                ),
            ));
            true
        }
    };
    if user.is_deleted() || !enabled {
        return Kind::Absent;
    }
    let role = user
        .role
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    // OneRoster's staff roles (teacher, administrator, aide, proctor) and every other
    // Staff-group role SDS documents make a user staff.
    if let Ok(sds) = SdsRole::parse(&role) {
        return match sds.group() {
            RoleGroup::Student => Kind::Student,
            RoleGroup::Staff => Kind::Staff(sds),
            RoleGroup::None => Kind::Other,
        };
    }
    match role.as_str() {
        "parent" => Kind::Contact(Relationship::Parent),
        "guardian" => Kind::Contact(Relationship::Guardian),
        "relative" => Kind::Contact(Relationship::Relative),
        _ => {
            sink.warning(Issue::at(
                SOURCES[USERS],
                rec,
                Some("role"),
                "unknown_role",
                format!("role '{role}' is not a OneRoster 1.1 user role; the user was skipped"),
            ));
            Kind::Other
        }
    }
}

fn all_users(snapshot: &Snapshot) -> impl Iterator<Item = (u64, &User)> {
    snapshot
        .users
        .records()
        .chain(snapshot.lookups.iter().map(|u| (0u64, u)))
}

/// Students and staff.
fn stage_people(ctx: &mut ParseCtx<'_>, snapshot: &Snapshot, kinds: &HashMap<&str, (Kind, u64)>) {
    for (rec, user) in all_users(snapshot) {
        let id = Some(user.sourced_id.clone());
        let names = (user.given_name.clone(), user.family_name.clone());
        match kinds.get(user.sourced_id.as_str()).map(|(k, _)| *k) {
            Some(Kind::Student) => {
                ctx.stager
                    .push(StageTable::Students, USERS, rec, vec![id, names.0, names.1])
            }
            Some(Kind::Staff(role)) => {
                let email = user
                    .email
                    .as_deref()
                    .and_then(|e| EmailAddress::parse(e).ok())
                    .map(|e| e.as_str().to_string());
                ctx.stager.push(
                    StageTable::Staff,
                    USERS,
                    rec,
                    vec![id, names.0, names.1, email, Some(role.as_str().to_string())],
                );
            }
            _ => {}
        }
    }
}

/// Links from `agents` on both sides, unioned (a pair named by both sides is one link),
/// and the contacts that have at least one.
fn stage_links(
    ctx: &mut ParseCtx<'_>,
    snapshot: &Snapshot,
    kinds: &HashMap<&str, (Kind, u64)>,
    delta: bool,
) {
    let unresolved: HashSet<&str> = snapshot.unresolved.iter().map(String::as_str).collect();
    // (student, contact) → (relationship, position of the record that named it first)
    let mut links: BTreeMap<(String, String), (Relationship, u64)> = BTreeMap::new();
    for (rec, user) in all_users(snapshot) {
        let Some((kind, _)) = kinds.get(user.sourced_id.as_str()).copied() else {
            continue;
        };
        for agent in &user.agents {
            let other = agent.sourced_id.as_str();
            let pair = match (kind, kinds.get(other).map(|(k, _)| *k)) {
                (Kind::Student, Some(Kind::Contact(r))) => {
                    Some((user.sourced_id.as_str(), other, r))
                }
                (Kind::Contact(r), Some(Kind::Student)) => {
                    Some((other, user.sourced_id.as_str(), r))
                }
                (Kind::Absent, _) | (_, Some(Kind::Absent)) => None,
                // A looked-up user's own agents are not looked up in turn.
                (Kind::Student | Kind::Contact(_), None) if delta && rec == 0 => None,
                (Kind::Student | Kind::Contact(_), None) => {
                    let why = if delta && unresolved.contains(other) {
                        "could not be looked up (oneroster.max_delta_lookups reached)"
                    } else {
                        "is not a user the provider returned"
                    };
                    ctx.sink.warning(Issue::at(
                        SOURCES[USERS],
                        rec,
                        Some("agents"),
                        "unknown_agent",
                        format!("agent '{other}' {why}; the link was skipped"),
                    ));
                    None
                }
                _ => None,
            };
            if let Some((student, contact, relationship)) = pair {
                links
                    .entry((student.to_string(), contact.to_string()))
                    .or_insert((relationship, rec));
            }
        }
    }
    let linked: HashSet<&str> = links.keys().map(|(_, c)| c.as_str()).collect();
    for (rec, user) in all_users(snapshot) {
        if linked.contains(user.sourced_id.as_str()) {
            let row = contact_row(user, ctx.region);
            ctx.stager.push(StageTable::Contacts, USERS, rec, row);
        }
    }
    for ((student, contact), (relationship, rec)) in links {
        ctx.stager.push(
            StageTable::Links,
            USERS,
            rec,
            vec![
                Some(student),
                Some(contact),
                Some(relationship.as_str().to_string()),
            ],
        );
    }
}

/// The staged contact row: the email validated, the mobile from `sms`, else `phone`.
fn contact_row(user: &User, region: Region) -> Vec<Option<String>> {
    let mut channels = Channels::default();
    let email = user.email.as_deref().map(str::trim).unwrap_or("");
    if !email.is_empty() {
        match EmailAddress::parse(email) {
            Ok(valid) => channels.email = Some(valid.as_str().to_string()),
            Err(e) => {
                channels.email_warning = Some(format!("{e}; the contact is kept without an email"))
            }
        }
    }
    let phone = [("sms", &user.sms), ("phone", &user.phone)]
        .into_iter()
        .find_map(|(column, value)| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| (column, v))
        });
    if let Some((column, raw)) = phone {
        channels.phone_column = Some(column.to_string());
        match PhoneE164::parse(raw, region) {
            Ok(valid) => channels.phone = Some(valid.as_str().to_string()),
            Err(e) => {
                channels.phone_warning = Some(format!(
                    "{e}; it is kept out of SMS and the contact still syncs by email"
                ))
            }
        }
    }
    channels.into_contact_row(
        user.sourced_id.clone(),
        Some(user.sourced_id.clone()),
        (user.given_name.clone(), user.family_name.clone()),
        "email",
    )
}

/// Classes; returns the ids staged.
fn stage_classes(
    ctx: &mut ParseCtx<'_>,
    classes: &Pulled<Class>,
    staged: &mut Staged,
    watermark: &mut Watermark,
) -> HashSet<String> {
    let mut present = HashSet::new();
    let mut rejected = 0;
    for (rec, class) in classes.records() {
        watermark.see(class);
        if class.is_deleted() {
            staged.gone_classes.push(class.sourced_id.clone());
            continue;
        }
        let Some(school) = class.school.as_ref() else {
            ctx.sink.error(Issue::at(
                SOURCES[CLASSES],
                rec,
                Some("school"),
                "missing_value",
                "the class has no school",
            ));
            rejected += 1;
            continue;
        };
        present.insert(class.sourced_id.clone());
        ctx.stager.push(
            StageTable::Classes,
            CLASSES,
            rec,
            vec![
                Some(class.sourced_id.clone()),
                Some(school.sourced_id.clone()),
                class.title.clone(),
            ],
        );
    }
    if rejected > 0 {
        ctx.rejected.push((StageTable::Classes, rejected));
    }
    present
}

/// Student and teacher enrollments (other roles are not stored). A full run skips, with a
/// warning, enrollments of classes or users it did not receive; a delta leaves them to the
/// live tables.
fn stage_enrollments(
    ctx: &mut ParseCtx<'_>,
    enrollments: &Pulled<Enrollment>,
    kinds: &HashMap<&str, (Kind, u64)>,
    classes: &HashSet<String>,
    delta: bool,
    staged: &mut Staged,
    watermark: &mut Watermark,
) {
    let mut seen: HashSet<(String, String, String)> = HashSet::new();
    let mut rejected = 0;
    for (rec, enrollment) in enrollments.records() {
        watermark.see(enrollment);
        let (Some(class), Some(user)) = (enrollment.class.as_ref(), enrollment.user.as_ref())
        else {
            let column = if enrollment.class.is_none() {
                "class"
            } else {
                "user"
            };
            ctx.sink.error(Issue::at(
                SOURCES[ENROLLMENTS],
                rec,
                Some(column),
                "missing_value",
                format!("the enrollment has no {column}"),
            ));
            rejected += 1;
            continue;
        };
        let (class, user) = (class.sourced_id.as_str(), user.sourced_id.as_str());
        // Every Staff-group role (teacher, aide, administrator, proctor, ...) is stored as
        // `teacher`: staff of the class. Other roles are not stored.
        let Some(kind) = SdsRole::parse(enrollment.role.as_deref().unwrap_or(""))
            .ok()
            .and_then(SdsRole::enrollment_kind)
        else {
            continue;
        };
        let role = kind.as_str().to_string();
        if enrollment.is_deleted() {
            staged
                .gone_enrollments
                .push(SyncKey::enrollment(class, user, &role).get());
            continue;
        }
        if !enrollment_resolves(ctx, rec, (class, user, &role), kinds, classes, delta) {
            continue;
        }
        if seen.insert((class.to_string(), user.to_string(), role.clone())) {
            ctx.stager.push(
                StageTable::Enrollments,
                ENROLLMENTS,
                rec,
                vec![Some(class.to_string()), Some(user.to_string()), Some(role)],
            );
        }
    }
    if rejected > 0 {
        ctx.rejected.push((StageTable::Enrollments, rejected));
    }
}

/// Whether an enrollment's class and user are ones the run can link (warns otherwise).
fn enrollment_resolves(
    ctx: &mut ParseCtx<'_>,
    rec: u64,
    (class, user, role): (&str, &str, &str),
    kinds: &HashMap<&str, (Kind, u64)>,
    classes: &HashSet<String>,
    delta: bool,
) -> bool {
    let wanted = |kind: Kind| match kind {
        Kind::Student => role == EnrollmentKind::Student.as_str(),
        Kind::Staff(_) => role == EnrollmentKind::Teacher.as_str(),
        _ => false,
    };
    let mut warn = |column: &str, message: String| {
        ctx.sink.warning(Issue::at(
            SOURCES[ENROLLMENTS],
            rec,
            Some(column),
            "unknown_reference",
            format!("{message}; the enrollment was skipped"),
        ));
        false
    };
    match kinds.get(user).map(|(k, _)| *k) {
        Some(Kind::Absent) => return false,
        Some(kind) if !wanted(kind) => {
            return warn(
                "user",
                format!(
                    "user '{user}' is enrolled as {} but is not one",
                    if role == EnrollmentKind::Student.as_str() {
                        "a student"
                    } else {
                        "staff"
                    }
                ),
            );
        }
        None if !delta => {
            return warn(
                "user",
                format!("user '{user}' is not a user the provider returned"),
            );
        }
        _ => {}
    }
    if !delta && !classes.contains(class) {
        return warn(
            "class",
            format!("class '{class}' is not a class the provider returned"),
        );
    }
    true
}

/// Ids named in `agents` of the delta's present users that the delta does not hold.
pub fn missing_agents(users: &Pulled<User>) -> Vec<String> {
    let known: HashSet<&str> = users
        .records()
        .map(|(_, u)| u.sourced_id.as_str())
        .collect();
    let mut missing: Vec<String> = users
        .records()
        .filter(|(_, u)| !u.is_deleted())
        .flat_map(|(_, u)| u.agents.iter().map(|a| a.sourced_id.as_str()))
        .filter(|id| !known.contains(id))
        .map(str::to_string)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    missing.sort();
    missing
}
