//! From OneRoster records to the staging tables the SDS imports fill (SPEC §3.1):
//! orgs → schools; users by `role` → students, staff or contacts; classes; student and
//! teacher enrollments; student–contact links from `agents` on either side, unioned. A
//! record with `status: tobedeleted`, or a user with `enabledUser` false, counts as absent.

use super::client::id_hash;
use super::model::{Class, Enrollment, Item, Org, Pulled, Record, User};
use crate::domain::{
    EmailAddress, EnrollmentKind, PhoneE164, Region, Relationship, RoleGroup, SdsRole,
};
use crate::sync::csv_file::IssueSink;
use crate::sync::fast::{KeyMap, KeySet};
use crate::sync::files::{Channels, ParseCtx};
use crate::sync::hashing::SyncKey;
use crate::sync::report::Issue;
use crate::sync::staging::StageTable;
use std::collections::{HashMap, HashSet};

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
    /// `sync_key`s of the contacts no link names (not part of the run).
    pub unlinked_contacts: Vec<i64>,
    /// Delta runs: the students and contacts the delta holds whole (received or looked
    /// up), whose `agents` lists are therefore known as they are now.
    pub present_users: Vec<String>,
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

/// What a pull hands to the mapping, in the order orgs, users (then, for a delta, the
/// looked-up users), classes, enrollments.
#[derive(Debug)]
pub enum Message {
    /// A page of `/orgs`.
    Orgs(Page<Org>),
    /// A page of `/users`.
    Users(Page<User>),
    /// A page of `/classes`.
    Classes(Page<Class>),
    /// A page of `/enrollments`.
    Enrollments(Page<Enrollment>),
    /// The collection at `src` of [`SOURCES`] is complete; `duplicates` records were
    /// skipped because an earlier page delivered them.
    Done {
        /// Position in [`SOURCES`].
        src: usize,
        /// Records skipped.
        duplicates: u64,
    },
    /// Delta runs: users fetched one by one because an `agents` entry named them.
    Lookups {
        /// The users fetched.
        users: Vec<User>,
    },
}

/// Records of one page with their positions (1-based across pages).
pub type Page<T> = Vec<(u64, Item<T>)>;

impl Snapshot {
    /// The snapshot as the messages a streaming pull would have sent.
    pub fn into_messages(self) -> Vec<Message> {
        vec![
            Message::Orgs(self.orgs.items),
            Message::Done {
                src: ORGS,
                duplicates: self.orgs.duplicates,
            },
            Message::Users(self.users.items),
            Message::Done {
                src: USERS,
                duplicates: self.users.duplicates,
            },
            Message::Lookups {
                users: self.lookups,
            },
            Message::Classes(self.classes.items),
            Message::Done {
                src: CLASSES,
                duplicates: self.classes.duplicates,
            },
            Message::Enrollments(self.enrollments.items),
            Message::Done {
                src: ENROLLMENTS,
                duplicates: self.enrollments.duplicates,
            },
        ]
    }
}

/// A `agents` entry naming a user not received yet.
#[derive(Debug)]
struct Waiting {
    /// Who named it.
    by: String,
    kind: Kind,
    rec: u64,
    /// Order of the mention in the run (issues keep the order of the records).
    seq: u64,
}

/// Issues in the order a whole-snapshot mapping reports them, whatever order the pages
/// come in: each phase has its own capped sink, replayed in order at the end.
struct Phases {
    /// Unreadable records (errors) and duplicates (a warning), per collection.
    unreadable: [IssueSink; 4],
    classify: IssueSink,
    agents: IssueSink,
    classes: IssueSink,
    enrollments: IssueSink,
}

impl Phases {
    fn new(sink: &IssueSink) -> Self {
        let empty = || IssueSink::new(sink.error_cap, sink.warning_cap);
        Self {
            unreadable: [empty(), empty(), empty(), empty()],
            classify: empty(),
            agents: empty(),
            classes: empty(),
            enrollments: empty(),
        }
    }

    fn replay(self, sink: &mut IssueSink) {
        let [a, b, c, d] = self.unreadable;
        for phase in [
            a,
            b,
            c,
            d,
            self.classify,
            self.agents,
            self.classes,
            self.enrollments,
        ] {
            let dropped = phase.warning_count - phase.warnings.len() as u64;
            for error in phase.errors {
                sink.error(error);
            }
            for warning in phase.warnings {
                sink.warning(warning);
            }
            sink.warning_count += dropped;
        }
    }
}

/// Maps pages to staged rows as they come, keeping keys, not records: each user's kind by
/// the hash of its id, the `agents` entries naming users not received yet, the ids of the
/// classes and the keys of the enrollments staged. Contacts are all staged; those no link
/// names are deleted from staging once the links are known.
pub struct Mapper {
    delta: bool,
    staged: Staged,
    watermark: Watermark,
    phases: Phases,
    /// Each user received, by the hash of its id: its kind, and whether a link names it.
    kinds: KeyMap<(Kind, bool)>,
    waiting: HashMap<String, Vec<Waiting>>,
    seq: u64,
    classes: HashSet<String>,
    enrollments: KeySet,
    /// Contacts no link named when they came (id hash, `sync_key`): those still unlinked
    /// at the end are not part of the run.
    unlinked: Vec<(u64, i64)>,
    rejected: [u64; 2],
}

impl Mapper {
    /// A mapping for a full run, or with `delta` for the records of a delta.
    pub fn new(ctx: &ParseCtx<'_>, delta: bool) -> Self {
        Self {
            delta,
            staged: Staged::default(),
            watermark: Watermark::default(),
            phases: Phases::new(&ctx.sink),
            kinds: KeyMap::default(),
            waiting: HashMap::new(),
            seq: 0,
            classes: HashSet::new(),
            enrollments: KeySet::default(),
            unlinked: Vec::new(),
            rejected: [0; 2],
        }
    }

    /// Maps one message.
    pub fn take(&mut self, ctx: &mut ParseCtx<'_>, message: Message) {
        match message {
            Message::Orgs(page) => {
                for (rec, org) in self.readable(ctx, ORGS, StageTable::Schools, page) {
                    self.stage_org(ctx, rec, org);
                }
            }
            Message::Users(page) => {
                for (rec, user) in self.readable(ctx, USERS, StageTable::Students, page) {
                    self.stage_user(ctx, rec, user);
                }
            }
            Message::Lookups { users } => {
                for user in users {
                    self.stage_user(ctx, 0, user);
                }
            }
            Message::Classes(page) => {
                for (rec, class) in self.readable(ctx, CLASSES, StageTable::Classes, page) {
                    self.stage_class(ctx, rec, class);
                }
            }
            Message::Enrollments(page) => {
                for (rec, enrollment) in
                    self.readable(ctx, ENROLLMENTS, StageTable::Enrollments, page)
                {
                    self.stage_enrollment(ctx, rec, enrollment);
                }
            }
            Message::Done { src, duplicates } => {
                if duplicates > 0 {
                    self.phases.unreadable[src].warning(Issue::file(
                        SOURCES[src],
                        "duplicate_record",
                        format!("{duplicates} record(s) came again on a later page (the data changed while it was read); the first copy was kept"),
                    ));
                }
            }
        }
    }

    /// Ends the mapping: the `agents` entries that named no user received, the issues in
    /// order, and what the delta step needs.
    pub fn finish(mut self, ctx: &mut ParseCtx<'_>) -> Staged {
        let mut left: Vec<(String, Waiting)> = std::mem::take(&mut self.waiting)
            .into_iter()
            .flat_map(|(other, waiting)| waiting.into_iter().map(move |w| (other.clone(), w)))
            .collect();
        left.sort_by_key(|(_, w)| w.seq);
        for (other, w) in left {
            // A looked-up user's own agents are not looked up in turn.
            if self.delta && w.rec == 0 {
                continue;
            }
            self.phases.agents.warning(Issue::at(
                SOURCES[USERS],
                w.rec,
                Some("agents"),
                "unknown_agent",
                format!(
                    "agent '{other}' is not a user the provider returned; the link was skipped"
                ),
            ));
        }
        for (table, count) in [
            (StageTable::Classes, self.rejected[0]),
            (StageTable::Enrollments, self.rejected[1]),
        ] {
            if count > 0 {
                ctx.rejected.push((table, count));
            }
        }
        self.phases.replay(&mut ctx.sink);
        self.staged.watermark = self.watermark.best.map(|(_, raw)| raw);
        let kinds = &self.kinds;
        self.staged.unlinked_contacts = self
            .unlinked
            .iter()
            .filter(|(id, _)| kinds.get(id).is_none_or(|(_, linked)| !linked))
            .map(|(_, key)| *key)
            .collect();
        self.staged
    }

    /// The records of a page that parsed; the others are row errors counted against
    /// `table`.
    fn readable<T>(
        &mut self,
        ctx: &mut ParseCtx<'_>,
        src: usize,
        table: StageTable,
        page: Page<T>,
    ) -> Vec<(u64, T)> {
        (ctx.progress)(page.len() as u64);
        let mut bad = 0;
        let mut records = Vec::with_capacity(page.len());
        for (rec, item) in page {
            match item {
                Item::Ok(record) => records.push((rec, record)),
                Item::Bad { message, .. } => {
                    bad += 1;
                    self.phases.unreadable[src].error(Issue::at(
                        SOURCES[src],
                        rec,
                        None,
                        "invalid_record",
                        message,
                    ));
                }
            }
        }
        if bad > 0 {
            ctx.rejected.push((table, bad));
        }
        records
    }

    fn stage_org(&mut self, ctx: &mut ParseCtx<'_>, rec: u64, org: Org) {
        self.watermark.see(&org);
        if org.is_deleted() {
            self.staged.gone_orgs.push(org.sourced_id);
            return;
        }
        ctx.stager.push(
            StageTable::Schools,
            ORGS,
            rec,
            vec![Some(org.sourced_id), org.name],
        );
    }

    /// Classifies a user, stages it as a student, staff or contact, and the links its
    /// `agents` make with users already received (or those that named it before).
    fn stage_user(&mut self, ctx: &mut ParseCtx<'_>, rec: u64, user: User) {
        self.watermark.see(&user);
        let kind = user_kind(&user, rec, &mut self.phases.classify);
        if kind == Kind::Absent {
            self.staged.gone_users.push(user.sourced_id.clone());
        }
        let me = id_hash(&user.sourced_id);
        self.kinds.insert(me, (kind, false));
        if self.delta && matches!(kind, Kind::Student | Kind::Contact(_)) {
            self.staged.present_users.push(user.sourced_id.clone());
        }
        let id = Some(user.sourced_id.clone());
        let names = (user.given_name.clone(), user.family_name.clone());
        match kind {
            Kind::Student => {
                ctx.stager
                    .push(StageTable::Students, USERS, rec, vec![id, names.0, names.1])
            }
            Kind::Staff(role) => {
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
            Kind::Contact(_) => {
                let row = contact_row(&user, ctx.region);
                ctx.stager.push(StageTable::Contacts, USERS, rec, row);
            }
            Kind::Other | Kind::Absent => {}
        }
        self.link(ctx, rec, &user, kind);
        if matches!(kind, Kind::Contact(_))
            && self.kinds.get(&me).is_some_and(|(_, linked)| !linked)
        {
            let key = SyncKey::contact(&user.sourced_id).get();
            self.unlinked.push((me, key));
        }
    }

    /// Links of `user`: first with the users that named it before it came (at their
    /// record), then with the users its own `agents` name that came before it; the
    /// others wait for their user.
    fn link(&mut self, ctx: &mut ParseCtx<'_>, rec: u64, user: &User, kind: Kind) {
        let me = user.sourced_id.as_str();
        let mut linked: HashSet<String> = HashSet::new();
        for w in self.waiting.remove(me).unwrap_or_default() {
            if linked.insert(w.by.clone()) {
                let contact = stage_pair(ctx, (&w.by, w.kind), (me, kind), w.rec);
                self.mark_linked(contact);
            }
        }
        for agent in &user.agents {
            let other = agent.sourced_id.as_str();
            if linked.contains(other) {
                continue;
            }
            match self.kinds.get(&id_hash(other)) {
                Some(&(other_kind, _)) => {
                    linked.insert(other.to_string());
                    let contact = stage_pair(ctx, (me, kind), (other, other_kind), rec);
                    self.mark_linked(contact);
                }
                None if matches!(kind, Kind::Student | Kind::Contact(_)) => {
                    self.seq += 1;
                    self.waiting
                        .entry(other.to_string())
                        .or_default()
                        .push(Waiting {
                            by: me.to_string(),
                            kind,
                            rec,
                            seq: self.seq,
                        });
                }
                None => {}
            }
        }
    }

    /// Notes that a staged link names `contact`.
    fn mark_linked(&mut self, contact: Option<&str>) {
        if let Some(contact) = contact
            && let Some((_, linked)) = self.kinds.get_mut(&id_hash(contact))
        {
            *linked = true;
        }
    }

    fn stage_class(&mut self, ctx: &mut ParseCtx<'_>, rec: u64, class: Class) {
        self.watermark.see(&class);
        if class.is_deleted() {
            self.staged.gone_classes.push(class.sourced_id);
            return;
        }
        let Some(school) = class.school else {
            self.phases.classes.error(Issue::at(
                SOURCES[CLASSES],
                rec,
                Some("school"),
                "missing_value",
                "the class has no school",
            ));
            self.rejected[0] += 1;
            return;
        };
        if !self.delta {
            self.classes.insert(class.sourced_id.clone());
        }
        ctx.stager.push(
            StageTable::Classes,
            CLASSES,
            rec,
            vec![Some(class.sourced_id), Some(school.sourced_id), class.title],
        );
    }

    /// Student and teacher enrollments (other roles are not stored). A full run skips,
    /// with a warning, enrollments of classes or users it did not receive; a delta leaves
    /// them to the live tables.
    fn stage_enrollment(&mut self, ctx: &mut ParseCtx<'_>, rec: u64, enrollment: Enrollment) {
        self.watermark.see(&enrollment);
        let (Some(class), Some(user)) = (enrollment.class.as_ref(), enrollment.user.as_ref())
        else {
            let column = if enrollment.class.is_none() {
                "class"
            } else {
                "user"
            };
            self.phases.enrollments.error(Issue::at(
                SOURCES[ENROLLMENTS],
                rec,
                Some(column),
                "missing_value",
                format!("the enrollment has no {column}"),
            ));
            self.rejected[1] += 1;
            return;
        };
        let (class, user) = (class.sourced_id.as_str(), user.sourced_id.as_str());
        // Every Staff-group role (teacher, aide, administrator, proctor, ...) is stored as
        // `teacher`: staff of the class. Other roles are not stored.
        let Some(kind) = SdsRole::parse(enrollment.role.as_deref().unwrap_or(""))
            .ok()
            .and_then(SdsRole::enrollment_kind)
        else {
            return;
        };
        let role = kind.as_str().to_string();
        let key = SyncKey::enrollment(class, user, &role).get();
        if enrollment.is_deleted() {
            self.staged.gone_enrollments.push(key);
            return;
        }
        if !self.enrollment_resolves(rec, (class, user, &role)) {
            return;
        }
        if self.enrollments.insert(key as u64) {
            ctx.stager.push(
                StageTable::Enrollments,
                ENROLLMENTS,
                rec,
                vec![Some(class.to_string()), Some(user.to_string()), Some(role)],
            );
        }
    }

    /// Whether an enrollment's class and user are ones the run can link (warns otherwise).
    fn enrollment_resolves(&mut self, rec: u64, (class, user, role): (&str, &str, &str)) -> bool {
        let wanted = |kind: Kind| match kind {
            Kind::Student => role == EnrollmentKind::Student.as_str(),
            Kind::Staff(_) => role == EnrollmentKind::Teacher.as_str(),
            _ => false,
        };
        let sink = &mut self.phases.enrollments;
        let mut warn = |column: &str, message: String| {
            sink.warning(Issue::at(
                SOURCES[ENROLLMENTS],
                rec,
                Some(column),
                "unknown_reference",
                format!("{message}; the enrollment was skipped"),
            ));
            false
        };
        match self.kinds.get(&id_hash(user)).map(|(kind, _)| *kind) {
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
            None if !self.delta => {
                return warn(
                    "user",
                    format!("user '{user}' is not a user the provider returned"),
                );
            }
            _ => {}
        }
        if !self.delta && !self.classes.contains(class) {
            return warn(
                "class",
                format!("class '{class}' is not a class the provider returned"),
            );
        }
        true
    }
}

/// Stages the link two users make, if one is a student and the other a contact (its
/// relationship from the contact's role), at record `rec`; returns the contact linked.
fn stage_pair<'a>(
    ctx: &mut ParseCtx<'_>,
    (a, a_kind): (&'a str, Kind),
    (b, b_kind): (&'a str, Kind),
    rec: u64,
) -> Option<&'a str> {
    let (student, contact, relationship) = match (a_kind, b_kind) {
        (Kind::Student, Kind::Contact(r)) => (a, b, r),
        (Kind::Contact(r), Kind::Student) => (b, a, r),
        _ => return None,
    };
    ctx.stager.push(
        StageTable::Links,
        USERS,
        rec,
        vec![
            Some(student.to_string()),
            Some(contact.to_string()),
            Some(relationship.as_str().to_string()),
        ],
    );
    Some(contact)
}

/// Stages the messages of a pull as they arrive on `pages` (the blocking side of a
/// streaming pull) and returns what the delta step needs.
pub fn stage_stream(
    ctx: &mut ParseCtx<'_>,
    delta: bool,
    mut pages: tokio::sync::mpsc::Receiver<Message>,
) -> Staged {
    let mut mapper = Mapper::new(ctx, delta);
    // Once the database side has failed, dropping `pages` stops the pull too.
    while ctx.stager.is_open()
        && let Some(message) = pages.blocking_recv()
    {
        mapper.take(ctx, message);
    }
    mapper.finish(ctx)
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
        // OneRoster's user carries no language.
        None,
        "email",
    )
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
