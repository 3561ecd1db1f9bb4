//! The diffed import of SDS v2.1 (docs/performance.md): the tenant's live rows are known in
//! memory by `sync_key` / `sync_hash`, every cross-file rule is checked in memory on hashed
//! keys, and only new and changed rows are staged; an unchanged row costs one hash and one
//! lookup (no email or phone validation, no database write). Live rows the snapshot no
//! longer holds are staged as keys to deactivate.
//!
//! This pass never reports errors itself: at the first sign of any problem (a row error, a
//! duplicate key, a dangling reference) it gives up, and the files are read once more to
//! check every rule exactly and report every problem precisely (`report_problems` in the
//! parent module). Keys are 64-bit hashes, so a collision can at worst make a clean run end
//! with an error that says so (`SyncError::KeyCollision`).

use super::checks::{Reference, Rules, UniqueKey};
use super::csv_file::{IssueSink, Row};
use super::files::{Channels, ParseCtx, read_language};
use super::hashing::SyncKey;
use super::report::Issue;
use super::sds_v21::{self, user_hash};
use super::staging::{StageTable, Stager};
use crate::db::ImportConn;
use crate::domain::{EnrollmentKind, RoleGroup, TenantId};
use sea_orm::{DbErr, Value};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Bit of a [`Live`] value: the row is active.
const ACTIVE: u64 = 1 << 63;
/// Bit of a [`Live`] value: the snapshot holds the row.
const SEEN: u64 = 1 << 62;
/// Bit of a [`Live`] value: the contact has no synced email.
const NO_EMAIL: u64 = 1 << 61;
/// Bit of a [`Live`] value: the contact has no synced mobile phone.
const NO_PHONE: u64 = 1 << 60;
/// The bits of a [`Live`] value that hold the row's `sync_hash`.
const HASH: u64 = (1 << 60) - 1;

/// A sorted table of 64-bit keys with a radix directory: a lookup is one directory read
/// and a scan of the few keys sharing the top bits. Each key sits next to its value, so a
/// lookup that finds its key has the value in the same cache line.
pub struct KeyIndex<V> {
    entries: Vec<(u64, V)>,
    directory: Vec<u32>,
    shift: u32,
}

impl<V> KeyIndex<V> {
    /// Builds the index; for repeated keys the first entry wins lookups.
    pub fn new(mut entries: Vec<(u64, V)>) -> Self {
        entries.sort_unstable_by_key(|(key, _)| *key);
        entries.shrink_to_fit();
        // About four keys per directory slot: small directory, short scans.
        let bits = (usize::BITS - entries.len().leading_zeros())
            .saturating_sub(2)
            .clamp(1, 24);
        let shift = 64 - bits;
        let mut directory = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0usize;
        for bucket in 0..=(1u64 << bits) {
            while at < entries.len() && (entries[at].0 >> shift) < bucket {
                at += 1;
            }
            directory.push(at as u32);
        }
        Self {
            entries,
            directory,
            shift,
        }
    }

    /// Position of `key`.
    pub fn find(&self, key: u64) -> Option<usize> {
        let bucket = (key >> self.shift) as usize;
        let (low, high) = (
            self.directory[bucket] as usize,
            self.directory[bucket + 1] as usize,
        );
        self.entries[low..high]
            .iter()
            .position(|(k, _)| *k == key)
            .map(|i| low + i)
    }

    /// The value at a position found by [`KeyIndex::find`].
    pub fn value(&self, at: usize) -> &V {
        &self.entries[at].1
    }

    /// The value at a position found by [`KeyIndex::find`], to change.
    pub fn value_mut(&mut self, at: usize) -> &mut V {
        &mut self.entries[at].1
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A list built by pushing, with no reallocation: a growing `Vec` is copied each time it
/// doubles and holds the old buffer and the doubled one at once while it does (for the
/// million-row key lists of a district, tens of MiB for that moment; mimalloc copies where
/// glibc remaps). Its rows are moved into one exact `Vec` at the end, chunk by chunk, so
/// that `Vec`'s pages fill as the chunks are freed. Its share of the import's peak RSS was
/// not measured apart from the allocator's purge setting, which was the measured fix
/// (docs/performance.md).
struct Chunked<T> {
    full: Vec<Vec<T>>,
    current: Vec<T>,
    len: usize,
}

impl<T> Chunked<T> {
    /// Rows per chunk (1 MiB of 16-byte rows).
    const CHUNK: usize = 1 << 16;

    fn new() -> Self {
        Self {
            full: Vec::new(),
            current: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, row: T) {
        if self.current.len() == self.current.capacity() {
            let full = std::mem::replace(&mut self.current, Vec::with_capacity(Self::CHUNK));
            if !full.is_empty() {
                self.full.push(full);
            }
        }
        self.current.push(row);
        self.len += 1;
    }

    /// Every row in push order, in a `Vec` of exactly their number.
    fn into_vec(self) -> Vec<T> {
        let mut rows = Vec::with_capacity(self.len);
        for chunk in self.full.into_iter().chain([self.current]) {
            rows.extend(chunk);
        }
        rows
    }
}

/// Live rows of one table: `sync_key` → `sync_hash` and the bits above.
pub type Live = KeyIndex<u64>;

/// The keys are already uniform hashes: hashing them again would only cost time.
#[derive(Default)]
pub(crate) struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of hashed keys.
pub(crate) type KeySet = HashSet<u64, BuildHasherDefault<Identity>>;

/// A map keyed by hashed keys (no second hashing).
pub(crate) type KeyMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<Identity>>;

/// An in-memory identity of a row that is not stored (an org, a class, a role); stored
/// keys are [`SyncKey`]s.
fn key(values: &[&str]) -> u64 {
    super::hashing::hash_strs(values) as u64
}

/// One live table as seen by the snapshot: what was there, and the keys new in this run.
struct Diffed {
    live: Live,
    /// Rows without a `sync_key`.
    legacy: Legacy,
    /// Keys absent from the live rows, checked for repeats once reading is done (a sort
    /// costs less memory than a hash set).
    new: Vec<u64>,
    /// Whether `new` is kept: a provider's pull stages repeats as they come, so it needs
    /// no list of its new keys (at district scale they are most of the memory).
    track_new: bool,
    unchanged: u64,
}

/// What to do with a snapshot row of a diffed table.
enum Verdict {
    /// Same values as the active live row: nothing to write.
    Unchanged {
        /// The live row's bits (the contact flags).
        bits: u64,
    },
    /// New, changed or to reactivate: stage it.
    Stage,
    /// The key of a live row appeared before in this snapshot (repeats among new keys are
    /// found by [`Diffed::repeats_new_key`]).
    Duplicate,
}

impl Diffed {
    fn new((live, legacy): (Live, Legacy)) -> Self {
        Self {
            live,
            legacy,
            new: Vec::new(),
            track_new: true,
            unchanged: 0,
        }
    }

    /// The same without the list of new keys (see `track_new`).
    fn untracked(live: (Live, Legacy)) -> Self {
        Self {
            track_new: false,
            ..Self::new(live)
        }
    }

    /// True when a new key was delivered twice.
    fn repeats_new_key(&mut self) -> bool {
        self.new.sort_unstable();
        self.new.windows(2).any(|w| w[0] == w[1])
    }

    fn judge(&mut self, key: u64, hash: i64) -> Verdict {
        match self.live.find(key) {
            Some(at) => {
                let bits = self.live.value_mut(at);
                if *bits & SEEN != 0 {
                    return Verdict::Duplicate;
                }
                *bits |= SEEN;
                if *bits & ACTIVE != 0 && *bits & HASH == (hash as u64) & HASH {
                    self.unchanged += 1;
                    Verdict::Unchanged { bits: *bits }
                } else {
                    Verdict::Stage
                }
            }
            None => {
                if self.track_new {
                    self.new.push(key);
                }
                Verdict::Stage
            }
        }
    }

    fn summary(&self) -> TableDiff {
        TableDiff {
            unchanged: self.unchanged,
            insert_only: self.live.is_empty() && !self.legacy.any,
        }
    }

    /// Keys of active live rows the snapshot did not hold.
    fn gone(&self) -> Vec<i64> {
        self.live
            .iter()
            .filter(|(_, bits)| *bits & ACTIVE != 0 && *bits & SEEN == 0)
            .map(|(key, _)| key as i64)
            .collect()
    }
}

/// The tenant's live rows of the diffed tables, and their rows without a `sync_key`.
pub struct Existing {
    students: (Live, Legacy),
    contacts: (Live, Legacy),
    enrollments: (Live, Legacy),
    links: (Live, Legacy),
    /// A hash of every row read, in order: equal fingerprints of two loads mean the diff
    /// made against the first holds for the second.
    pub fingerprint: u64,
}

/// Whether a live table holds rows without a `sync_key`.
#[derive(Debug, Default, Clone, Copy)]
struct Legacy {
    /// Some row has none: a staged row may match one, so inserts must check.
    any: bool,
    /// An active row with a status has none: if absent it could not be found by key.
    active: bool,
}

/// Loads the live rows of the diffed tables (keys, hashes, status) into memory.
pub async fn load(conn: &mut ImportConn, tenant: TenantId) -> Result<Existing, DbErr> {
    let active = "CASE WHEN status = 'active' THEN 1 ELSE 0 END";
    // FNV-1a over the values of every row, table after table.
    let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
    let mut load_table = async |table: &str, flags: &str| -> Result<(Live, Legacy), DbErr> {
        let mut entries: Chunked<(u64, u64)> = Chunked::new();
        let mut legacy = Legacy::default();
        // Contacts have no status: absent ones need no key to be found.
        let has_status = table != "contacts";
        conn.for_each_int3(
            &format!(
                // `+tenant_id`: a plain scan; SQLite would otherwise walk an index on
                // tenant_id and fetch each row at random.
                "SELECT sync_key, sync_hash, CAST({flags} AS BIGINT) FROM {table} WHERE +tenant_id = $1"
            ),
            vec![Value::BigInt(Some(tenant.0))],
            |[k, hash, flags]| {
                for value in [k, hash, flags] {
                    fingerprint = (fingerprint ^ value as u64).wrapping_mul(0x0100_0000_01b3);
                }
                if k == 0 {
                    // No sync_key (NULL reads as 0): stored before keys existed, or by other
                    // means.
                    legacy.any = true;
                    legacy.active |= has_status && flags & 1 != 0;
                    return;
                }
                let mut bits = (hash as u64) & HASH;
                if flags & 1 != 0 {
                    bits |= ACTIVE;
                }
                if flags & 2 != 0 {
                    bits |= NO_EMAIL;
                }
                if flags & 4 != 0 {
                    bits |= NO_PHONE;
                }
                entries.push((k as u64, bits));
            },
        )
        .await?;
        Ok((KeyIndex::new(entries.into_vec()), legacy))
    };
    let students = load_table("students", active).await?;
    let contacts = load_table(
        "contacts",
        "1 + CASE WHEN email_sync IS NULL THEN 2 ELSE 0 END + CASE WHEN mobile_phone_sync IS NULL THEN 4 ELSE 0 END",
    )
    .await?;
    let enrollments = load_table("enrollments", active).await?;
    // A link the SIS never delivered (only an approved edit made it) counts as not
    // active here, so its absence deactivates nothing; a link held by an admin's
    // removal counts as active, so an unchanged row leaves it alone and its absence
    // releases the hold (see reconcile::links).
    let links = load_table(
        "student_contacts",
        "CASE WHEN (status = 'active' AND relationship_sync IS NOT NULL) OR held_by IS NOT NULL THEN 1 ELSE 0 END",
    )
    .await?;
    Ok(Existing {
        students,
        contacts,
        enrollments,
        links,
        fingerprint,
    })
}

/// For each diffed live table: the rows of the tenant stored without a `sync_key` (before
/// keys existed), with their natural key as columns `a`, `b`, `c`.
const KEYLESS: [(&str, &str); 4] = [
    (
        "students",
        "SELECT id, source_id AS a, '' AS b, '' AS c FROM students \
         WHERE tenant_id = $1 AND sync_key IS NULL",
    ),
    (
        "contacts",
        "SELECT id, source_key AS a, '' AS b, '' AS c FROM contacts \
         WHERE tenant_id = $1 AND sync_key IS NULL",
    ),
    (
        "enrollments",
        "SELECT e.id, c.source_id AS a, COALESCE(st.source_id, sf.source_id) AS b, e.role AS c \
         FROM enrollments e JOIN classes c ON c.id = e.class_id \
         LEFT JOIN students st ON e.role = 'student' AND st.id = e.person_id \
         LEFT JOIN staff sf ON e.role = 'teacher' AND sf.id = e.person_id \
         WHERE e.tenant_id = $1 AND e.sync_key IS NULL",
    ),
    (
        "student_contacts",
        "SELECT l.id, s.source_id AS a, c.source_key AS b, '' AS c \
         FROM student_contacts l JOIN students s ON s.id = l.student_id \
         JOIN contacts c ON c.id = l.contact_id \
         WHERE l.tenant_id = $1 AND l.sync_key IS NULL",
    ),
];

/// Stores the `sync_key` of the tenant's live rows stored without one, computed from their
/// natural keys as a sync computes them, so the diffed pass finds every live row by key
/// (their `sync_hash` stays empty: the next run stages them as changed and stores it).
/// Returns how many rows got a key.
pub async fn store_missing_keys(conn: &mut ImportConn, tenant: TenantId) -> Result<u64, DbErr> {
    let mut stored = 0;
    for (table, sql) in KEYLESS {
        let rows = conn.query(sql, vec![Value::BigInt(Some(tenant.0))]).await?;
        for row in rows {
            let id: i64 = row.get("id")?;
            let part = |column: &str| -> Result<Option<String>, DbErr> { row.get(column) };
            let (Some(a), b, c) = (part("a")?, part("b")?, part("c")?) else {
                continue;
            };
            let key = match table {
                "students" => SyncKey::person(&a),
                "contacts" => SyncKey::contact(&a),
                "enrollments" => match (b, c) {
                    (Some(b), Some(c)) => SyncKey::enrollment(&a, &b, &c),
                    _ => continue,
                },
                _ => match b {
                    Some(b) => SyncKey::link(&a, &b),
                    None => continue,
                },
            };
            stored += conn
                .exec(
                    &format!("UPDATE {table} SET sync_key = $1 WHERE id = $2"),
                    vec![key.into(), Value::BigInt(Some(id))],
                )
                .await?;
        }
    }
    Ok(stored)
}

/// Per diffed live table, how many of the tenant's active rows (as [`load`] counts them
/// active) have no `sync_key`: after [`store_missing_keys`], those whose natural key cannot
/// be read.
pub async fn unkeyed_rows(
    conn: &mut ImportConn,
    tenant: TenantId,
) -> Result<Vec<(&'static str, u64)>, DbErr> {
    // Contacts have no status: absent ones need no key (see `load`).
    const ACTIVE: [(&str, &str); 3] = [
        ("students", "status = 'active'"),
        ("enrollments", "status = 'active'"),
        (
            "student_contacts",
            "((status = 'active' AND relationship_sync IS NOT NULL) OR held_by IS NOT NULL)",
        ),
    ];
    let mut counts = Vec::with_capacity(ACTIVE.len());
    for (table, active) in ACTIVE {
        let rows = conn
            .count(
                &format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE tenant_id = $1 AND sync_key IS NULL AND {active}"
                ),
                vec![Value::BigInt(Some(tenant.0))],
            )
            .await?;
        counts.push((table, rows.max(0) as u64));
    }
    Ok(counts)
}

/// What the diff found for one live table.
#[derive(Debug, Default, Clone, Copy)]
pub struct TableDiff {
    /// Rows of the snapshot found unchanged in memory.
    pub unchanged: u64,
    /// The tenant had no rows in the table: every staged row is new.
    pub insert_only: bool,
}

/// What the diff found, per diffed table.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unchanged {
    /// Students.
    pub students: TableDiff,
    /// Contacts.
    pub contacts: TableDiff,
    /// Enrollments.
    pub enrollments: TableDiff,
    /// Student–contact links.
    pub links: TableDiff,
}

/// The result of a diffed parse.
pub struct Diff {
    /// Why nothing can be applied from this pass (`None`: the snapshot is clean).
    pub problem: Option<String>,
    /// The problem is no fault of the files: active live rows have no `sync_key`, so the
    /// absent ones cannot be found by key.
    pub needs_keys: bool,
    /// Keys of contacts that no link names (a OneRoster pull, as its mapping found them):
    /// not part of the run.
    pub unlinked_contacts: Vec<i64>,
    /// Unchanged rows per table.
    pub unchanged: Unchanged,
    /// Keys of live rows to deactivate, by live table name.
    pub gone: Vec<(&'static str, Vec<i64>)>,
}

/// Role bits of a user from `roles.csv`.
const STUDENT: u8 = 1;
const STAFF: u8 = 2;
/// The user appeared in `users.csv`.
const IN_USERS: u8 = 4;

struct State {
    region: crate::domain::Region,
    region_code: String,
    students: Diffed,
    contacts: Diffed,
    enrollments: Diffed,
    links: Diffed,
    orgs: KeySet,
    classes: KeySet,
    staff: KeySet,
    other_users: KeySet,
    roles: KeyIndex<u8>,
    staff_roles: std::collections::HashMap<u64, &'static str, BuildHasherDefault<Identity>>,
    contact_refs: KeyIndex<bool>,
    problem: Option<String>,
    needs_keys: bool,
    /// The report pass ([`collect_v21`]): every well-formed row is staged in the shape the
    /// exact rules read, and nothing is judged in memory.
    collect: bool,
}

impl State {
    fn new(region: crate::domain::Region, collect: bool) -> Self {
        Self {
            region,
            region_code: region.code(),
            students: Diffed::new(none_yet()),
            contacts: Diffed::new(none_yet()),
            enrollments: Diffed::new(none_yet()),
            links: Diffed::new(none_yet()),
            orgs: KeySet::default(),
            classes: KeySet::default(),
            staff: KeySet::default(),
            other_users: KeySet::default(),
            roles: KeyIndex::new(Vec::new()),
            staff_roles: Default::default(),
            contact_refs: KeyIndex::new(Vec::new()),
            problem: None,
            needs_keys: false,
            collect,
        }
    }

    fn fail(&mut self, why: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(why());
        }
    }

    /// Takes the loaded live rows (before `relationships.csv`, the first file judged
    /// against them).
    fn receive(&mut self, existing: Existing) {
        self.students = Diffed::new(existing.students);
        self.contacts = Diffed::new(existing.contacts);
        self.enrollments = Diffed::new(existing.enrollments);
        self.links = Diffed::new(existing.links);
        if [
            &self.students,
            &self.contacts,
            &self.enrollments,
            &self.links,
        ]
        .iter()
        .any(|table| table.legacy.active)
        {
            // Absent rows are found by key: active rows without one need one full run,
            // which stores the keys of every row the snapshot holds.
            self.fail(|| "active rows without a sync_key".into());
            self.needs_keys = true;
        }
    }

    fn role_bits(&self, user: u64) -> u8 {
        self.roles
            .find(user)
            .map(|at| *self.roles.value(at))
            .unwrap_or(0)
    }
}

/// No live rows (until they arrive).
fn none_yet() -> (Live, Legacy) {
    (KeyIndex::new(Vec::new()), Legacy::default())
}

/// Parses an SDS v2.1 set against the live rows, staging only what changed. The live rows
/// come from `existing` once loaded: `orgs.csv` and `roles.csv` are read meanwhile.
pub fn parse_v21(ctx: &mut ParseCtx<'_>, existing: std::sync::mpsc::Receiver<Existing>) -> Diff {
    let mut state = State::new(ctx.region, false);
    let steps: [fn(&mut ParseCtx<'_>, &mut State); 7] = [
        read_orgs,
        read_roles,
        read_relationships,
        read_users,
        read_classes,
        read_enrollments,
        |ctx, _| sds_v21::read_well_formed(ctx),
    ];
    for (i, step) in steps.into_iter().enumerate() {
        if i == 2 && state.problem.is_none() {
            match existing.recv() {
                Ok(existing) => state.receive(existing),
                Err(_) => state.fail(|| "the live rows could not be read".into()),
            }
        }
        if state.problem.is_some() || !ctx.sink.errors.is_empty() {
            break;
        }
        step(ctx, &mut state);
    }
    if state.problem.is_none() && !ctx.sink.errors.is_empty() {
        state.problem = Some(format!("{} row error(s)", ctx.sink.errors.len()));
    }
    if state.problem.is_none() {
        check_users_seen(&mut state);
    }
    for (what, table) in [
        ("student", &mut state.students),
        ("contact", &mut state.contacts),
        ("enrollment", &mut state.enrollments),
        ("relationship", &mut state.links),
    ] {
        if state.problem.is_none() && table.repeats_new_key() {
            state.problem = Some(format!("a new {what} is delivered twice"));
        }
    }
    Diff {
        unchanged: Unchanged {
            students: state.students.summary(),
            contacts: state.contacts.summary(),
            enrollments: state.enrollments.summary(),
            links: state.links.summary(),
        },
        gone: vec![
            ("students", state.students.gone()),
            ("enrollments", state.enrollments.gone()),
            ("student_contacts", state.links.gone()),
        ],
        problem: state.problem,
        needs_keys: state.needs_keys,
        unlinked_contacts: Vec::new(),
    }
}

/// The report pass of an SDS v2.1 set that the diffed pass found problems in: the same
/// readers, every file read to the end, every well-formed row staged in the shape the exact
/// rules (`sds_v21::RULES`) read, in the files' documented order.
pub fn collect_v21(ctx: &mut ParseCtx<'_>) {
    let mut state = State::new(ctx.region, true);
    let steps: [fn(&mut ParseCtx<'_>, &mut State); 7] = [
        read_orgs,
        read_roles,
        read_users,
        read_classes,
        read_enrollments,
        read_relationships,
        |ctx, _| sds_v21::read_well_formed(ctx),
    ];
    for step in steps {
        step(ctx, &mut state);
    }
}

fn read_orgs(ctx: &mut ParseCtx<'_>, state: &mut State) {
    ctx.read(
        "orgs.csv",
        sds_v21::ORGS,
        StageTable::Schools,
        |src, row, sink, stage| {
            if !row.require(&["sourcedId", "type"], sink) || sds_v21::org_type(row, sink).is_none()
            {
                return false;
            }
            if !state.collect && !state.orgs.insert(key(&[row.get("sourcedId")])) {
                state.fail(|| format!("duplicate org {}", row.get("sourcedId")));
                return false;
            }
            stage.push(
                StageTable::Schools,
                src,
                row.record,
                vec![row.opt("sourcedId"), row.opt("name")],
            );
            true
        },
    );
}

fn read_roles(ctx: &mut ParseCtx<'_>, state: &mut State) {
    let mut roles: Chunked<(u64, u8)> = Chunked::new();
    let mut role_keys: Chunked<u64> = Chunked::new();
    ctx.read(
        "roles.csv",
        sds_v21::ROLES,
        StageTable::Roles,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "orgSourcedId", "role"], sink) {
                return false;
            }
            let Some(role) = sds_v21::org_role(row, sink) else {
                return false;
            };
            if state.collect {
                stage.push(
                    StageTable::Roles,
                    src,
                    row.record,
                    vec![
                        row.opt("userSourcedId"),
                        row.opt("orgSourcedId"),
                        Some(role.name().to_string()),
                        Some(role.group_name().to_string()),
                    ],
                );
                return true;
            }
            let (user, org) = (row.get("userSourcedId"), row.get("orgSourcedId"));
            if !state.orgs.contains(&key(&[org])) {
                state.fail(|| format!("role of {user} names unknown org {org}"));
                return false;
            }
            let user_key = SyncKey::person(user).bits();
            role_keys.push(key(&[user, org, role.name()]));
            let bits = match role.group() {
                RoleGroup::Student => STUDENT,
                RoleGroup::Staff => {
                    // The choice SDS makes (`sds_v21::split_users`): the first staff role
                    // in alphabetical order, regardless of case.
                    let first = state.staff_roles.entry(user_key).or_insert(role.name());
                    if role.name().to_ascii_lowercase() < first.to_ascii_lowercase() {
                        *first = role.name();
                    }
                    STAFF
                }
                RoleGroup::None => 0,
            };
            roles.push((user_key, bits));
            true
        },
    );
    let mut role_keys = role_keys.into_vec();
    role_keys.sort_unstable();
    if role_keys.windows(2).any(|w| w[0] == w[1]) {
        state.fail(|| "duplicate role".into());
    }
    drop(role_keys);
    let mut roles = roles.into_vec();
    roles.sort_unstable_by_key(|(k, _)| *k);
    // One entry per user with the bits of all their roles, merged in place.
    roles.dedup_by(|(user, bits), (kept, kept_bits)| {
        let same = user == kept;
        if same {
            *kept_bits |= *bits;
        }
        same
    });
    state.roles = KeyIndex::new(roles);
}

fn read_relationships(ctx: &mut ParseCtx<'_>, state: &mut State) {
    let mut contacts: Chunked<(u64, bool)> = Chunked::new();
    ctx.read(
        "relationships.csv",
        sds_v21::RELATIONSHIPS,
        StageTable::Links,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "relationshipUserSourcedId"], sink) {
                return false;
            }
            let Some(relationship) = sds_v21::relationship_role(row, sink) else {
                return false;
            };
            let (student, contact) = (
                row.get("userSourcedId"),
                row.get("relationshipUserSourcedId"),
            );
            let link = |stage: &mut Stager| {
                stage.push(
                    StageTable::Links,
                    src,
                    row.record,
                    vec![
                        Some(student.to_string()),
                        Some(contact.to_string()),
                        Some(relationship.as_str().to_string()),
                    ],
                )
            };
            if state.collect {
                link(stage);
                return true;
            }
            if state.role_bits(SyncKey::person(student).bits()) & STUDENT == 0 {
                state.fail(|| format!("relationship of {student}, who is not a student"));
                return false;
            }
            contacts.push((SyncKey::contact(contact).bits(), false));
            let hash = super::hashing::hash_strs(&[relationship.as_str()]);
            match state
                .links
                .judge(SyncKey::link(student, contact).bits(), hash)
            {
                Verdict::Unchanged { .. } => {}
                Verdict::Stage => link(stage),
                Verdict::Duplicate => {
                    state.fail(|| format!("duplicate relationship {student} / {contact}"));
                    return false;
                }
            }
            true
        },
    );
    let mut contacts = contacts.into_vec();
    contacts.sort_unstable_by_key(|(k, _)| *k);
    contacts.dedup_by_key(|(k, _)| *k);
    state.contact_refs = KeyIndex::new(contacts);
}

fn read_users(ctx: &mut ParseCtx<'_>, state: &mut State) {
    ctx.read(
        "users.csv",
        sds_v21::USERS,
        StageTable::Users,
        |src, row, sink, stage| {
            if !row.require(&["sourcedId"], sink) {
                return false;
            }
            if state.collect {
                // The rules read only the user's id; its channels are not parsed.
                stage.push(
                    StageTable::Users,
                    src,
                    row.record,
                    vec![row.opt("sourcedId")],
                );
                return true;
            }
            let id = row.get("sourcedId");
            let user = SyncKey::person(id).bits();
            let raw = user_hash(row, &state.region_code);
            let roles = match state.roles.find(user) {
                Some(at) => {
                    let bits = state.roles.value_mut(at);
                    *bits |= IN_USERS;
                    *bits
                }
                None => 0,
            };
            let contact = match state.contact_refs.find(user) {
                Some(at) => {
                    *state.contact_refs.value_mut(at) = true;
                    true
                }
                None => false,
            };
            let mut fine = true;
            if roles & STUDENT != 0 {
                fine &= stage_student(state, stage, src, row, user, raw);
            } else if roles & STAFF != 0 {
                fine &= stage_staff(state, stage, src, row, user);
            } else if !contact && !state.other_users.insert(user) {
                state.fail(|| format!("duplicate user {id}"));
                fine = false;
            }
            if contact {
                fine &= stage_contact(state, stage, sink, src, row, user, raw);
            }
            fine
        },
    );
}

fn stage_student(
    state: &mut State,
    stage: &mut Stager,
    src: usize,
    row: &Row<'_>,
    user: u64,
    raw: i64,
) -> bool {
    match state.students.judge(user, raw) {
        Verdict::Unchanged { .. } => true,
        Verdict::Stage => {
            stage.push_hashed(
                StageTable::Students,
                src,
                row.record,
                Some(raw),
                vec![
                    row.opt("sourcedId"),
                    row.opt("givenName"),
                    row.opt("familyName"),
                ],
            );
            true
        }
        Verdict::Duplicate => {
            state.fail(|| format!("duplicate student {}", row.get("sourcedId")));
            false
        }
    }
}

fn stage_staff(
    state: &mut State,
    stage: &mut Stager,
    src: usize,
    row: &Row<'_>,
    user: u64,
) -> bool {
    if !state.staff.insert(user) {
        state.fail(|| format!("duplicate staff {}", row.get("sourcedId")));
        return false;
    }
    let email = Channels::read(row, "email", &[], state.region).email;
    let role = state.staff_roles.get(&user).map(|r| r.to_string());
    stage.push(
        StageTable::Staff,
        src,
        row.record,
        vec![
            row.opt("sourcedId"),
            row.opt("givenName"),
            row.opt("familyName"),
            email,
            role,
        ],
    );
    true
}

fn stage_contact(
    state: &mut State,
    stage: &mut Stager,
    sink: &mut IssueSink,
    src: usize,
    row: &Row<'_>,
    user: u64,
    raw: i64,
) -> bool {
    match state.contacts.judge(user, raw) {
        Verdict::Unchanged { bits } => {
            if bits & (NO_EMAIL | NO_PHONE) != 0 {
                for issue in unchanged_channel_warnings(row, bits, state.region) {
                    sink.warning(issue);
                }
            }
            // Warned again each run, like a dropped email (a tag check is cheap).
            read_language(row, "language", sink);
            true
        }
        Verdict::Stage => {
            let channels = Channels::read(row, "email", &["sms", "phone"], state.region);
            let language = read_language(row, "language", sink);
            stage.push_hashed(
                StageTable::Contacts,
                src,
                row.record,
                Some(raw),
                channels.into_contact_row(
                    row.get("sourcedId").to_string(),
                    row.opt("sourcedId"),
                    (row.opt("givenName"), row.opt("familyName")),
                    language,
                    "email",
                ),
            );
            true
        }
        Verdict::Duplicate => {
            state.fail(|| format!("duplicate contact {}", row.get("sourcedId")));
            false
        }
    }
}

/// The warnings of a contact found unchanged whose live row lacks a synced email or phone
/// (`bits`). Only a missing channel is read again: a synced one was valid for these same
/// values (the row's hash covers them and the region), and parsing a phone is the dearest
/// step of a re-sync.
fn unchanged_channel_warnings(
    row: &Row<'_>,
    bits: u64,
    region: crate::domain::Region,
) -> Vec<Issue> {
    // "" names no column: that channel is not read.
    let email_column = if bits & NO_EMAIL != 0 { "email" } else { "" };
    let phone_columns: &[&str] = if bits & NO_PHONE != 0 {
        &["sms", "phone"]
    } else {
        &[]
    };
    let channels = Channels::read(row, email_column, phone_columns, region);
    let synced = (bits & NO_EMAIL == 0) || (bits & NO_PHONE == 0);
    channel_warnings(row, &channels, synced)
}

/// The warnings reported for a staged contact row (`checks::contact_warnings`), for a row
/// found unchanged in memory; `synced_channel`: a channel not in `channels` is known valid.
fn channel_warnings(row: &Row<'_>, channels: &Channels, synced_channel: bool) -> Vec<Issue> {
    let mut issues = Vec::new();
    if let Some(message) = &channels.email_warning {
        issues.push(row.issue("email", "invalid_email", message.clone()));
    }
    if let Some(message) = &channels.phone_warning {
        let column = channels.phone_column.as_deref().unwrap_or("phone");
        issues.push(row.issue(column, "invalid_phone", message.clone()));
    }
    if channels.email.is_none() && channels.phone.is_none() && !synced_channel {
        issues.push(row.issue(
            "email",
            "unreachable_contact",
            super::checks::UNREACHABLE_CONTACT,
        ));
    }
    issues
}

fn read_classes(ctx: &mut ParseCtx<'_>, state: &mut State) {
    ctx.read(
        "classes.csv",
        sds_v21::CLASSES,
        StageTable::Classes,
        |src, row, sink, stage| {
            if !row.require(&["sourcedId", "orgSourcedId"], sink) {
                return false;
            }
            let (id, org) = (row.get("sourcedId"), row.get("orgSourcedId"));
            if !state.collect && !state.orgs.contains(&key(&[org])) {
                state.fail(|| format!("class {id} names unknown org {org}"));
                return false;
            }
            if !state.collect && !state.classes.insert(key(&[id])) {
                state.fail(|| format!("duplicate class {id}"));
                return false;
            }
            stage.push(
                StageTable::Classes,
                src,
                row.record,
                vec![
                    row.opt("sourcedId"),
                    row.opt("orgSourcedId"),
                    row.opt("title"),
                ],
            );
            true
        },
    );
}

fn read_enrollments(ctx: &mut ParseCtx<'_>, state: &mut State) {
    ctx.read(
        "enrollments.csv",
        sds_v21::ENROLLMENTS,
        StageTable::Enrollments,
        |src, row, sink, stage| {
            if !row.require(&["classSourcedId", "userSourcedId", "role"], sink) {
                return false;
            }
            let Some(role) = sds_v21::enrollment_role(row, sink) else {
                return false;
            };
            let Some(kind) = role.enrollment_kind() else {
                sds_v21::skip_enrollment(row, role, sink);
                return true;
            };
            let role = kind.as_str();
            let (class, person) = (row.get("classSourcedId"), row.get("userSourcedId"));
            let enrollment = |stage: &mut Stager| {
                stage.push(
                    StageTable::Enrollments,
                    src,
                    row.record,
                    vec![
                        Some(class.to_string()),
                        Some(person.to_string()),
                        Some(role.to_string()),
                    ],
                )
            };
            if state.collect {
                enrollment(stage);
                return true;
            }
            if !state.classes.contains(&key(&[class])) {
                state.fail(|| format!("enrollment in unknown class {class}"));
                return false;
            }
            let bits = state.role_bits(SyncKey::person(person).bits());
            let fits = bits & IN_USERS != 0
                && if kind == EnrollmentKind::Student {
                    bits & STUDENT != 0
                } else {
                    bits & STAFF != 0 && bits & STUDENT == 0
                };
            if !fits {
                state.fail(|| format!("enrollment of {person} as {role} does not fit their roles"));
                return false;
            }
            let hash = super::hashing::hash_values([]);
            match state
                .enrollments
                .judge(SyncKey::enrollment(class, person, role).bits(), hash)
            {
                Verdict::Unchanged { .. } => true,
                Verdict::Stage => {
                    enrollment(stage);
                    true
                }
                Verdict::Duplicate => {
                    state.fail(|| format!("duplicate enrollment {class} / {person}"));
                    false
                }
            }
        },
    );
}

/// Every user named by `roles.csv` or `relationships.csv` must be in `users.csv`.
fn check_users_seen(state: &mut State) {
    if state.roles.iter().any(|(_, bits)| *bits & IN_USERS == 0) {
        state.fail(|| "roles.csv names a user missing from users.csv".into());
    }
    if state.contact_refs.iter().any(|(_, seen)| !*seen) {
        state.fail(|| "relationships.csv names a user missing from users.csv".into());
    }
}

/// The diffed pass of a reader that stages every row it parses (SDS v1): it sits in the
/// [`Stager`], judges each row of a diffed table against the live rows (only new and
/// changed rows go on to staging), and checks the format's [`Rules`] on hashed values. Like
/// the SDS v2.1 pass it only detects problems; the exact report is made by reading again.
pub struct Differ {
    live: Option<std::sync::mpsc::Receiver<Existing>>,
    students: Diffed,
    contacts: Diffed,
    enrollments: Diffed,
    links: Diffed,
    /// Per unique key: the hash of each row's key.
    keys: Vec<(&'static UniqueKey, Vec<usize>, Vec<u64>)>,
    /// Per reference: the hashes of the values that must name a target.
    references: Vec<Pending>,
    /// Per referenced column: the hashes of its values.
    targets: Vec<(StageTable, usize, Vec<u64>)>,
    /// Files' names, for warnings.
    names: Vec<String>,
    /// Warnings of contacts found unchanged.
    warnings: Vec<Issue>,
    problem: Option<String>,
    needs_keys: bool,
    /// A provider's pull ([`Differ::for_provider`]), else a file set.
    provider: Option<Provider>,
}

/// What the diffed pass of a OneRoster pull keeps besides: the warnings of contacts found
/// unchanged, held until the mapping tells which contacts no link names (those are not
/// part of the run, [`Differ::finish_provider`]).
#[derive(Default)]
struct Provider {
    /// Warnings of contacts found unchanged, with their keys.
    held: Vec<(u64, Issue)>,
}

/// No cross-file rule: a provider's records are checked by the mapping.
const NO_RULES: Rules = Rules {
    keys: &[],
    references: &[],
    derive: None,
    derived_references: &[],
};

/// The values of one reference that must name a target: the reference, the position of
/// its column, its condition (position and value) and the hashes of the values.
type Pending = (
    &'static Reference,
    usize,
    Option<(usize, &'static str)>,
    Vec<u64>,
);

/// Position of `column` among the staged values of `table`.
fn position(table: StageTable, column: &str) -> usize {
    table
        .columns()
        .iter()
        .position(|c| *c == column)
        .unwrap_or(usize::MAX)
}

impl Differ {
    /// A pass checking `rules`; the live rows come from `live` when the first row of a
    /// diffed table arrives (the files before it are read while they load).
    pub fn new(
        rules: &'static Rules,
        live: std::sync::mpsc::Receiver<Existing>,
        names: Vec<String>,
    ) -> Self {
        let mut targets: Vec<(StageTable, usize, Vec<u64>)> = Vec::new();
        let references = rules
            .references
            .iter()
            .map(|r| {
                let target = (r.target, position(r.target, r.target_column));
                if !targets.iter().any(|(t, c, _)| (*t, *c) == target) {
                    targets.push((target.0, target.1, Vec::new()));
                }
                let when = r.when.map(|w| (position(r.table, w.column), w.value));
                (r, position(r.table, r.column), when, Vec::new())
            })
            .collect();
        Self {
            live: Some(live),
            students: Diffed::new(none_yet()),
            contacts: Diffed::new(none_yet()),
            enrollments: Diffed::new(none_yet()),
            links: Diffed::new(none_yet()),
            keys: rules
                .keys
                .iter()
                .map(|k| {
                    let at = k.columns.iter().map(|c| position(k.table, c)).collect();
                    (k, at, Vec::new())
                })
                .collect(),
            references,
            targets,
            names,
            warnings: Vec::new(),
            problem: None,
            needs_keys: false,
            provider: None,
        }
    }

    /// The pass of a OneRoster full pull: no rules; a record delivered twice is staged
    /// twice, as when everything is staged; unchanged contacts warn only when linked (see
    /// [`Differ::finish_provider`]).
    pub fn for_provider(live: std::sync::mpsc::Receiver<Existing>, names: Vec<String>) -> Self {
        Self {
            provider: Some(Provider::default()),
            ..Self::new(&NO_RULES, live, names)
        }
    }

    fn fail(&mut self, why: impl FnOnce() -> String) {
        if self.problem.is_none() {
            self.problem = Some(why());
        }
    }

    /// Waits for the live rows, once.
    fn receive(&mut self) {
        let Some(live) = self.live.take() else {
            return;
        };
        match live.recv() {
            Ok(existing) => {
                let diffed = match self.provider {
                    Some(_) => Diffed::untracked,
                    None => Diffed::new,
                };
                self.students = diffed(existing.students);
                self.contacts = diffed(existing.contacts);
                self.enrollments = diffed(existing.enrollments);
                self.links = diffed(existing.links);
                let tables = [
                    &self.students,
                    &self.contacts,
                    &self.enrollments,
                    &self.links,
                ];
                if tables.iter().any(|table| table.legacy.active) {
                    self.fail(|| "active rows without a sync_key".into());
                    self.needs_keys = true;
                }
            }
            Err(_) => self.fail(|| "the live rows could not be read".into()),
        }
    }

    /// Records a staged row of `table` for the rules, and judges it when the table is
    /// diffed: true when it must be staged.
    pub fn admit(
        &mut self,
        table: StageTable,
        src: usize,
        rec: u64,
        key: Option<u64>,
        hash: Option<i64>,
        values: &[Option<String>],
    ) -> bool {
        let value = |at: usize| values.get(at).and_then(|v| v.as_deref());
        for (unique, at, hashes) in &mut self.keys {
            if unique.table == table {
                let cells: Option<Vec<&str>> = at.iter().map(|i| value(*i)).collect();
                if let Some(cells) = cells {
                    hashes.push(super::hashing::hash_strs(&cells) as u64);
                }
            }
        }
        for (reference, at, when, hashes) in &mut self.references {
            if reference.table != table {
                continue;
            }
            if let Some((column, wanted)) = when
                && value(*column) != Some(*wanted)
            {
                continue;
            }
            if let Some(text) = value(*at) {
                hashes.push(self::key(&[text]));
            }
        }
        for (target, at, hashes) in &mut self.targets {
            if *target == table
                && let Some(text) = value(*at)
            {
                hashes.push(self::key(&[text]));
            }
        }
        if !matches!(
            table,
            StageTable::Students
                | StageTable::Contacts
                | StageTable::Enrollments
                | StageTable::Links
        ) {
            return true;
        }
        let (Some(key), Some(hash)) = (key, hash) else {
            return true;
        };
        self.receive();
        let diffed = match table {
            StageTable::Students => &mut self.students,
            StageTable::Contacts => &mut self.contacts,
            StageTable::Enrollments => &mut self.enrollments,
            _ => &mut self.links,
        };
        let verdict = diffed.judge(key, hash);
        let name = self.names.get(src).map_or("", String::as_str);
        match (verdict, &mut self.provider) {
            (Verdict::Stage | Verdict::Duplicate, Some(_)) | (Verdict::Stage, None) => true,
            (Verdict::Duplicate, None) => {
                // The key rules find it too; the report is made from them.
                self.fail(|| format!("a repeated key in {}", table.name()));
                false
            }
            (Verdict::Unchanged { .. }, provider) => {
                if table == StageTable::Contacts {
                    let warnings = staged_contact_warnings(name, rec, values);
                    match provider {
                        Some(provider) => {
                            provider.held.extend(warnings.into_iter().map(|w| (key, w)))
                        }
                        None => self.warnings.extend(warnings),
                    }
                }
                false
            }
        }
    }

    /// Ends the pass of a provider's pull ([`Differ::for_provider`]), given the keys of
    /// the contacts no link names (the mapping knows them): what is gone, and the
    /// warnings of the unchanged contacts some link names, to `sink`.
    pub fn finish_provider(mut self, sink: &mut IssueSink, mut unlinked: Vec<i64>) -> Diff {
        self.receive();
        unlinked.sort_unstable();
        if let Some(provider) = self.provider.take() {
            for (key, warning) in provider.held {
                if unlinked.binary_search(&(key as i64)).is_err() {
                    sink.warning(warning);
                }
            }
        }
        // Repeated records are staged as they came (see `for_provider`).
        self.diff(unlinked)
    }

    /// Ends the pass: the rules over the hashes, the new keys delivered twice, and what
    /// is gone. The warnings of unchanged contacts go to `sink`.
    pub fn finish(mut self, sink: &mut IssueSink) -> Diff {
        if self.provider.is_some() {
            return self.finish_provider(sink, Vec::new());
        }
        // A file set without rows of the diffed tables never waited for the live rows.
        self.receive();
        for warning in std::mem::take(&mut self.warnings) {
            sink.warning(warning);
        }
        for (unique, _, hashes) in &mut self.keys {
            hashes.sort_unstable();
            if hashes.windows(2).any(|w| w[0] == w[1]) {
                let what = unique.what;
                if self.problem.is_none() {
                    self.problem = Some(format!("a repeated {what}"));
                }
            }
        }
        for (_, _, hashes) in &mut self.targets {
            hashes.sort_unstable();
        }
        for (reference, _, _, hashes) in &self.references {
            let at = (
                reference.target,
                position(reference.target, reference.target_column),
            );
            let targets = self
                .targets
                .iter()
                .find(|(t, c, _)| (*t, *c) == at)
                .map_or(&[][..], |(_, _, h)| &h[..]);
            if hashes.iter().any(|h| targets.binary_search(h).is_err()) && self.problem.is_none() {
                self.problem = Some(format!("a value {}", reference.problem));
            }
        }
        for (what, table) in [
            ("student", &mut self.students),
            ("contact", &mut self.contacts),
            ("enrollment", &mut self.enrollments),
            ("relationship", &mut self.links),
        ] {
            if self.problem.is_none() && table.repeats_new_key() {
                self.problem = Some(format!("a new {what} is delivered twice"));
            }
        }
        self.diff(Vec::new())
    }

    fn diff(self, unlinked_contacts: Vec<i64>) -> Diff {
        Diff {
            unchanged: Unchanged {
                students: self.students.summary(),
                contacts: self.contacts.summary(),
                enrollments: self.enrollments.summary(),
                links: self.links.summary(),
            },
            gone: vec![
                ("students", self.students.gone()),
                ("enrollments", self.enrollments.gone()),
                ("student_contacts", self.links.gone()),
            ],
            problem: self.problem,
            needs_keys: self.needs_keys,
            unlinked_contacts,
        }
    }
}

/// The diffed pass of a format whose reader stages every row (`parse`), with a [`Differ`]
/// in the stager.
pub fn parse_staged(
    ctx: &mut ParseCtx<'_>,
    rules: &'static Rules,
    existing: std::sync::mpsc::Receiver<Existing>,
    parse: fn(&mut ParseCtx<'_>),
) -> Diff {
    let names = (0..ctx.files.files.len())
        .map(|src| ctx.files.name(src).to_string())
        .collect();
    ctx.stager.differ = Some(Differ::new(rules, existing, names));
    parse(ctx);
    let differ = ctx.stager.differ.take();
    let errors = ctx.sink.errors.len();
    let mut diff = match differ {
        Some(differ) => differ.finish(&mut ctx.sink),
        None => Diff {
            problem: Some("the pass lost its differ".into()),
            needs_keys: false,
            unlinked_contacts: Vec::new(),
            unchanged: Unchanged::default(),
            gone: Vec::new(),
        },
    };
    if errors > 0 && !diff.needs_keys {
        diff.problem = Some(format!("{errors} row error(s)"));
    }
    diff
}

/// The warnings of a staged contact row (`StageTable::Contacts` values) that is not staged
/// because it is unchanged: what `checks::contact_warnings` lists for staged ones.
fn staged_contact_warnings(file: &str, rec: u64, values: &[Option<String>]) -> Vec<Issue> {
    let value = |column: &str| values[position(StageTable::Contacts, column)].as_deref();
    let mut issues = Vec::new();
    if let Some(message) = value("email_warning") {
        issues.push(Issue::at(
            file,
            rec,
            value("email_column"),
            "invalid_email",
            message,
        ));
    }
    if let Some(message) = value("phone_warning") {
        issues.push(Issue::at(
            file,
            rec,
            value("phone_column"),
            "invalid_phone",
            message,
        ));
    }
    if value("email").is_none() && value("mobile_phone").is_none() {
        issues.push(Issue::at(
            file,
            rec,
            value("email_column"),
            "unreachable_contact",
            super::checks::UNREACHABLE_CONTACT,
        ));
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_keeps_every_row_in_push_order_in_an_exact_vec() {
        for n in [
            0,
            1,
            Chunked::<u64>::CHUNK - 1,
            Chunked::<u64>::CHUNK,
            3 * Chunked::<u64>::CHUNK + 7,
        ] {
            let mut chunked = Chunked::new();
            for i in 0..n as u64 {
                chunked.push(i * 3);
            }
            let rows = chunked.into_vec();
            assert_eq!(rows.len(), n);
            assert_eq!(rows.capacity(), n);
            assert!(rows.iter().enumerate().all(|(i, v)| *v == i as u64 * 3));
        }
    }

    #[test]
    fn key_index_finds_every_key_and_nothing_else() {
        let keys: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let index = KeyIndex::new(keys.iter().map(|k| (*k, *k ^ 1)).collect());
        for k in &keys {
            let at = index.find(*k).expect("present");
            assert_eq!(*index.value(at), *k ^ 1);
        }
        assert!(index.find(12345).is_none());
        assert!(KeyIndex::<u8>::new(Vec::new()).find(7).is_none());
        let single = KeyIndex::new(vec![(u64::MAX, ())]);
        assert!(single.find(u64::MAX).is_some());
        assert!(single.find(0).is_none());
    }

    #[test]
    fn judging_tells_unchanged_changed_new_duplicate_and_gone() {
        let live = KeyIndex::new(vec![
            (1, ACTIVE | 10),
            (2, ACTIVE | 20),
            (3, 30),
            (4, ACTIVE | 40),
        ]);
        let mut diffed = Diffed::new((live, Legacy::default()));
        assert!(matches!(diffed.judge(1, 10), Verdict::Unchanged { .. }));
        assert!(matches!(diffed.judge(2, 21), Verdict::Stage));
        assert!(
            matches!(diffed.judge(3, 30), Verdict::Stage),
            "inactive: reactivate"
        );
        assert!(matches!(diffed.judge(5, 50), Verdict::Stage));
        assert!(matches!(diffed.judge(1, 10), Verdict::Duplicate));
        assert!(!diffed.repeats_new_key());
        assert!(matches!(diffed.judge(5, 50), Verdict::Stage));
        assert!(diffed.repeats_new_key());
        assert_eq!(diffed.unchanged, 1);
        assert_eq!(diffed.gone(), vec![4]);
    }
}
