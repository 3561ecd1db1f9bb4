//! Applying a staged snapshot to the live tables with set-based SQL (one statement per
//! kind of change, never one per row), for SQLite and PostgreSQL alike:
//! present rows are created, updated or reactivated; active rows absent from the snapshot
//! become inactive; nothing is deleted. Contacts and link relationships follow the
//! per-field latest-change-wins rule of SPEC §3.3.

use super::report::Counts;
use crate::db::ImportConn;
use crate::db::engine::temp;
use crate::domain::TenantId;
use chrono::{DateTime, Utc};
use sea_orm::{DbErr, Value};

/// A roster table reconciled by `source_id` with plain (sync-only) fields.
pub struct Roster {
    /// Live table.
    pub table: &'static str,
    /// Staging table.
    pub staging: &'static str,
    /// Fields copied from staging.
    pub fields: &'static [&'static str],
    /// Whether rows carry `sync_key` / `sync_hash` (tables diffed in memory).
    pub hashed: bool,
}

/// The roster tables, in dependency order.
pub const ROSTERS: [Roster; 4] = [
    Roster {
        table: "schools",
        staging: "s_schools",
        fields: &["name"],
        hashed: false,
    },
    Roster {
        table: "students",
        staging: "s_students",
        fields: &["given_name", "family_name"],
        hashed: true,
    },
    Roster {
        table: "staff",
        staging: "s_staff",
        fields: &["given_name", "family_name", "email", "role"],
        hashed: false,
    },
    Roster {
        table: "classes",
        staging: "s_classes",
        fields: &["school_source_id", "title"],
        hashed: false,
    },
];

/// Contact fields that carry provenance (same list as the migration).
/// `preferred_language` joined them in migration 27 (a file's `language` column).
pub const CONTACT_FIELDS: [&str; 5] = [
    "given_name",
    "family_name",
    "email",
    "mobile_phone",
    "preferred_language",
];

fn params(tenant: TenantId, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        Value::BigInt(Some(tenant.0)),
        Value::ChronoDateTimeUtc(Some(now)),
    ]
}

/// What the staging table of a live table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Every row of the snapshot: live rows with no staged match are absent.
    Snapshot,
    /// Only new and changed rows; `unchanged` more rows were matched in memory, and the
    /// keys of absent rows are in [`staging::GONE`](super::staging::GONE).
    Changes {
        /// Rows of the snapshot found unchanged in memory.
        unchanged: u64,
        /// The live table holds no row of the tenant: staged rows are only inserted.
        insert_only: bool,
    },
}

/// How one live table with an active/inactive status is reconciled from a staging table
/// aliased `s`. Every SQL fragment may use `$1` (tenant) and `$2` (run time).
struct StatusSync<'a> {
    /// Live table.
    table: &'a str,
    /// Staging table (rows of the snapshot).
    staged: &'a str,
    /// Condition pairing a live row (by table name) with a staged row `s`.
    matches: &'a str,
    /// Extra `SET` items applying staged values on reactivation and update (may be empty).
    set: &'a str,
    /// Condition under which an active row counts as updated (`None`: rows never update).
    differs: Option<&'a str>,
    /// Extra condition an inactive staged row must meet to be reactivated (may be empty).
    reactivate_when: &'a str,
    /// Extra condition an active absent row must meet to be deactivated (may be empty).
    absent_when: &'a str,
    /// Insert column list, the matching `SELECT` list over `s`, and the order to insert
    /// in (the live table's natural key, so its unique index grows in order).
    insert: (&'a str, &'a str, &'a str),
    /// Extra `SET` items on deactivation (may be empty), and values for their `$3`, `$4`…
    on_deactivate: (&'a str, Vec<Value>),
    /// Whether rows carry `sync_key` / `sync_hash`.
    hashed: bool,
    /// What the staging table holds.
    presence: Presence,
}

impl Presence {
    /// True when staged rows can only be new (the tenant had no live row in the table).
    fn insert_only(self) -> bool {
        matches!(
            self,
            Presence::Changes {
                insert_only: true,
                ..
            }
        )
    }
}

/// Runs the four statements of a status table: reactivate, update, insert, deactivate (only
/// the insert when the table held nothing of the tenant).
async fn sync_status(
    conn: &mut ImportConn,
    spec: StatusSync<'_>,
    values: Vec<Value>,
) -> Result<Counts, DbErr> {
    let StatusSync {
        table,
        staged,
        matches,
        set,
        differs,
        reactivate_when,
        absent_when,
        insert,
        on_deactivate,
        hashed,
        presence,
    } = spec;
    let and = |condition: &str| {
        if condition.is_empty() {
            String::new()
        } else {
            format!(" AND ({condition})")
        }
    };
    let (reactivate_when, absent_when) = (and(reactivate_when), and(absent_when));
    let (columns, selected, order) = insert;
    let (columns, selected) = if hashed {
        (
            format!("{columns}, sync_key, sync_hash"),
            format!("{selected}, s.sync_key, s.sync_hash"),
        )
    } else {
        (columns.to_string(), selected.to_string())
    };
    let insert = |only_new: &str| {
        format!(
            "INSERT INTO {table} (tenant_id, {columns}, status, updated_at) SELECT $1, {selected}, 'active', $2 FROM {staged} s \
             {only_new} ORDER BY {order}"
        )
    };
    let staged_count = staged_rows(conn, staged).await?;
    let mut counts = Counts::default();
    if presence.insert_only() {
        counts.created = conn.exec(&insert(""), values).await?;
        return Ok(with_unchanged(staged_count, presence, counts));
    }
    // Nothing staged (a diffed run without changes here): only absent rows remain to do.
    if staged_count > 0 {
        let set = if set.is_empty() {
            String::new()
        } else {
            format!("{set}, ")
        };
        counts.reactivated = conn.exec(&format!("UPDATE {table} SET {set}status = 'active', deactivated_at = NULL, updated_at = $2 FROM {staged} s WHERE {table}.tenant_id = $1 AND {matches} AND {table}.status <> 'active'{reactivate_when}"),
            values.clone(),
        )
        .await?;
        if let Some(differs) = differs {
            counts.updated = conn.exec(&format!("UPDATE {table} SET {set}updated_at = $2 FROM {staged} s WHERE {table}.tenant_id = $1 AND {matches} AND {table}.status = 'active' AND ({differs})"),
                values.clone(),
            )
            .await?;
        }
        // Before the insert, so the rows it adds are not visited again.
        if hashed {
            refresh_hashes(conn, table, staged, matches, values[0].clone()).await?;
        }
        counts.created = conn
            .exec(
                &insert(&format!(
                    "WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.tenant_id = $1 AND {matches})"
                )),
                values.clone(),
            )
            .await?;
    }
    // `+tenant_id` on the diffed path: a plain scan probing the (few) absent keys beats
    // SQLite walking an index on tenant_id and fetching every row at random.
    let absent = match presence {
        Presence::Snapshot => {
            format!("tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM {staged} s WHERE {matches})")
        }
        Presence::Changes { .. } => format!(
            "+tenant_id = $1 AND sync_key IN (SELECT k FROM {} WHERE tbl = '{table}')",
            super::staging::GONE
        ),
    };
    let (on_deactivate, extra) = on_deactivate;
    counts.deactivated = conn.exec(&format!(
            "UPDATE {table} SET status = 'inactive', deactivated_at = $2, updated_at = $2{on_deactivate} \
             WHERE status = 'active' AND {absent}{absent_when}"
        ),
        [values, extra].concat(),
    )
    .await?;
    Ok(with_unchanged(staged_count, presence, counts))
}

/// Stores the staged `sync_key` / `sync_hash` on the matching live rows where they differ
/// (not counted as an update: only the bookkeeping changes).
async fn refresh_hashes(
    conn: &mut ImportConn,
    table: &str,
    staged: &str,
    matches: &str,
    tenant: Value,
) -> Result<u64, DbErr> {
    conn.exec(
        &format!(
            "UPDATE {table} SET sync_key = s.sync_key, sync_hash = s.sync_hash FROM {staged} s \
             WHERE {table}.tenant_id = $1 AND {matches} \
               AND ({table}.sync_hash IS DISTINCT FROM s.sync_hash OR {table}.sync_key IS DISTINCT FROM s.sync_key)"
        ),
        vec![tenant],
    )
    .await
}

/// Reconciles one roster table.
pub async fn roster(
    conn: &mut ImportConn,
    tenant: TenantId,
    now: DateTime<Utc>,
    roster: &Roster,
    presence: Presence,
) -> Result<Counts, DbErr> {
    let Roster {
        table,
        staging,
        fields,
        hashed,
    } = roster;
    let set = fields
        .iter()
        .map(|f| format!("{f} = s.{f}"))
        .collect::<Vec<_>>()
        .join(", ");
    let differs = fields
        .iter()
        .map(|f| format!("{table}.{f} IS DISTINCT FROM s.{f}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let columns = format!("source_id, {}, created_at", fields.join(", "));
    let selected = format!(
        "s.source_id, {}, $2",
        fields
            .iter()
            .map(|f| format!("s.{f}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let matches = format!("{table}.source_id = s.source_id");
    let spec = StatusSync {
        table,
        staged: staging,
        matches: &matches,
        set: &set,
        differs: Some(&differs),
        reactivate_when: "",
        absent_when: "",
        insert: (&columns, &selected, "s.source_id"),
        on_deactivate: ("", vec![]),
        hashed: *hashed,
        presence,
    };
    sync_status(conn, spec, params(tenant, now)).await
}

/// Rows in a staging table.
async fn staged_rows(conn: &mut ImportConn, staging: &str) -> Result<u64, DbErr> {
    Ok(conn
        .count(&format!("SELECT COUNT(*) AS n FROM {staging}"), vec![])
        .await? as u64)
}

/// Completes `counts` with the unchanged rows: staged rows that were not created, updated
/// or reactivated, plus those matched in memory.
fn with_unchanged(staged: u64, presence: Presence, counts: Counts) -> Counts {
    let in_memory = match presence {
        Presence::Snapshot => 0,
        Presence::Changes { unchanged, .. } => unchanged,
    };
    let unchanged =
        staged.saturating_sub(counts.created + counts.updated + counts.reactivated) + in_memory;
    Counts {
        unchanged,
        ..counts
    }
}

/// The SET list that applies a sync value under latest-change-wins: the value counts as a
/// change only when it differs from what the previous sync delivered (`<field>_sync`); then
/// it becomes current with provenance `sync` and this run's time. The `_sync` column always
/// records what this sync delivered.
fn latest_wins_set(table: &str, field: &str, staged: &str) -> String {
    let changed = sync_changed(table, field, staged);
    let delivered = if KEPT_WHEN_BLANK.contains(&field) {
        format!("COALESCE({staged}, {table}.{field}_sync)")
    } else {
        staged.to_string()
    };
    format!(
        "{field} = CASE WHEN {changed} THEN {staged} ELSE {table}.{field} END, \
         {field}_provenance = CASE WHEN {changed} THEN 'sync' ELSE {table}.{field}_provenance END, \
         {field}_changed_at = CASE WHEN {changed} THEN $2 ELSE {table}.{field}_changed_at END, \
         {field}_sync = {delivered}"
    )
}

/// Contact fields a blank (or absent) file value leaves as they are: the `language`
/// column is optional, and an export that stops carrying it must not erase the languages
/// guardians and admins chose.
const KEPT_WHEN_BLANK: [&str; 1] = ["preferred_language"];

/// SQL true when this sync delivers a new value of `field` (see [`latest_wins_set`]).
fn sync_changed(table: &str, field: &str, staged: &str) -> String {
    if KEPT_WHEN_BLANK.contains(&field) {
        format!("({staged} IS NOT NULL AND {staged} IS DISTINCT FROM {table}.{field}_sync)")
    } else {
        format!("{staged} IS DISTINCT FROM {table}.{field}_sync")
    }
}

/// Reconciles contacts (no status of their own: the links carry it).
pub async fn contacts(
    conn: &mut ImportConn,
    tenant: TenantId,
    now: DateTime<Utc>,
    presence: Presence,
) -> Result<Counts, DbErr> {
    let sets: Vec<String> = CONTACT_FIELDS
        .iter()
        .map(|f| latest_wins_set("contacts", f, &format!("s.{f}")))
        .collect();
    let differs: Vec<String> = CONTACT_FIELDS
        .iter()
        .map(|f| sync_changed("contacts", f, &format!("s.{f}")))
        .collect();
    let staged_count = staged_rows(conn, "s_contacts").await?;
    if staged_count == 0 {
        return Ok(with_unchanged(0, presence, Counts::default()));
    }
    let insert_only = presence.insert_only();
    let updated = if insert_only {
        0
    } else {
        conn.exec(&format!(
            "UPDATE contacts SET {}, source_id = s.source_id, updated_at = $2 FROM s_contacts s \
             WHERE contacts.tenant_id = $1 AND contacts.source_key = s.source_key \
               AND ({} OR s.source_id IS DISTINCT FROM contacts.source_id)",
            sets.join(", "),
            differs.join(" OR ")
        ),
        params(tenant, now),
    )
    .await?
    };
    if !insert_only {
        // Before the insert, so the rows it adds are not visited again.
        refresh_hashes(
            conn,
            "contacts",
            "s_contacts",
            "contacts.source_key = s.source_key",
            Value::BigInt(Some(tenant.0)),
        )
        .await?;
    }
    let only_new = if insert_only {
        ""
    } else {
        "WHERE NOT EXISTS (SELECT 1 FROM contacts x WHERE x.tenant_id = $1 AND x.source_key = s.source_key)"
    };
    let mut columns = vec![
        "tenant_id".to_string(),
        "source_key".into(),
        "source_id".into(),
        "sync_key".into(),
        "sync_hash".into(),
    ];
    let mut values = vec![
        "$1".to_string(),
        "s.source_key".into(),
        "s.source_id".into(),
        "s.sync_key".into(),
        "s.sync_hash".into(),
    ];
    for f in CONTACT_FIELDS {
        columns.extend([
            f.to_string(),
            format!("{f}_provenance"),
            format!("{f}_changed_at"),
            format!("{f}_sync"),
        ]);
        values.extend([
            format!("s.{f}"),
            format!("CASE WHEN s.{f} IS NULL THEN NULL ELSE 'sync' END"),
            format!("CASE WHEN s.{f} IS NULL THEN NULL ELSE $2 END"),
            format!("s.{f}"),
        ]);
    }
    let created = conn.exec(&format!(
            "INSERT INTO contacts ({}, created_at, updated_at) SELECT {}, $2, $2 FROM s_contacts s \
             {only_new} ORDER BY s.source_key",
            columns.join(", "),
            values.join(", ")
        ),
        params(tenant, now),
    )
    .await?;
    Ok(with_unchanged(
        staged_count,
        presence,
        Counts {
            updated,
            created,
            ..Counts::default()
        },
    ))
}

/// Creates the temporary table `name` from `select` (staged rows resolved to live ids).
///
/// The selects resolve with `CROSS JOIN`, because SQLite keeps the
/// written order of a `CROSS JOIN` (PostgreSQL plans it as any inner join), so every staged
/// row is read once and its live ids looked up by index. Left to itself, SQLite planned the
/// live tables first whenever its statistics came from an earlier, smaller tenant (a few
/// rows per `tenant_id`): a product of the new tenant's students and contacts with a scan
/// of the staged links inside — a first import of 1,000 students into a database where the
/// test fixtures had been imported ran for over ten minutes; now a second.
async fn create_resolved(
    conn: &mut ImportConn,
    name: &str,
    columns: &str,
    select: &str,
    tenant: TenantId,
) -> Result<(), DbErr> {
    temp::create(conn, name, columns).await?;
    conn.exec(
        &format!("INSERT INTO {name} {select}"),
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?;
    Ok(())
}

/// Refreshes the statistics of a resolved table once indexed, so the planner drives the
/// reconcile from it when it is small.
async fn analyze_resolved(conn: &mut ImportConn, name: &str) -> Result<(), DbErr> {
    temp::analyze(conn, [name]).await
}

/// Drops the resolved-id tables (see [`temp::drop`]).
pub async fn drop_resolved(conn: &mut ImportConn) -> Result<(), DbErr> {
    temp::drop(conn, ["r_links", "r_enrollments"]).await
}

/// Reconciles class enrollments (students and teachers).
pub async fn enrollments(
    conn: &mut ImportConn,
    tenant: TenantId,
    now: DateTime<Utc>,
    presence: Presence,
) -> Result<Counts, DbErr> {
    create_resolved(conn, "r_enrollments",
        "class_id BIGINT NOT NULL, role TEXT NOT NULL, person_id BIGINT NOT NULL, sync_key BIGINT, sync_hash BIGINT",
        // CROSS JOIN: see create_resolved.
        "SELECT c.id, e.role, COALESCE(st.id, sf.id), e.sync_key, e.sync_hash FROM s_enrollments e \
         CROSS JOIN classes c \
         LEFT JOIN students st ON e.role = 'student' AND st.tenant_id = $1 AND st.source_id = e.person_id \
         LEFT JOIN staff sf ON e.role = 'teacher' AND sf.tenant_id = $1 AND sf.source_id = e.person_id \
         WHERE c.tenant_id = $1 AND c.source_id = e.class_id AND COALESCE(st.id, sf.id) IS NOT NULL",
        tenant,
    )
    .await?;
    conn.exec(
        "CREATE INDEX r_enrollments_ix ON r_enrollments (class_id, role, person_id)",
        vec![],
    )
    .await?;
    analyze_resolved(conn, "r_enrollments").await?;
    let spec = StatusSync {
        table: "enrollments",
        staged: "r_enrollments",
        matches: "enrollments.class_id = s.class_id AND enrollments.role = s.role AND enrollments.person_id = s.person_id",
        set: "",
        differs: None,
        reactivate_when: "",
        absent_when: "",
        insert: (
            "class_id, role, person_id, created_at",
            "s.class_id, s.role, s.person_id, $2",
            "s.class_id, s.role, s.person_id",
        ),
        on_deactivate: ("", vec![]),
        hashed: true,
        presence,
    };
    sync_status(conn, spec, params(tenant, now)).await
}

/// Reconciles student–contact links. `previous_run` is when the tenant's previous applied
/// sync started: the last time a link that disappears now was seen.
pub async fn links(
    conn: &mut ImportConn,
    tenant: TenantId,
    now: DateTime<Utc>,
    previous_run: Option<DateTime<Utc>>,
    presence: Presence,
) -> Result<Counts, DbErr> {
    create_resolved(
        conn,
        "r_links",
        "student_id BIGINT NOT NULL, contact_id BIGINT NOT NULL, relationship TEXT NOT NULL, sync_key BIGINT, sync_hash BIGINT",
        // CROSS JOIN: see create_resolved.
        "SELECT st.id, c.id, l.relationship, l.sync_key, l.sync_hash FROM s_links l \
         CROSS JOIN students st CROSS JOIN contacts c \
         WHERE st.tenant_id = $1 AND st.source_id = l.student_id \
           AND c.tenant_id = $1 AND c.source_key = l.contact_key",
        tenant,
    )
    .await?;
    conn.exec(
        "CREATE INDEX r_links_ix ON r_links (student_id, contact_id)",
        vec![],
    )
    .await?;
    analyze_resolved(conn, "r_links").await?;
    let relationship = latest_wins_set("student_contacts", "relationship", "s.relationship");
    let spec = StatusSync {
        table: "student_contacts",
        staged: "r_links",
        matches: "student_contacts.student_id = s.student_id AND student_contacts.contact_id = s.contact_id",
        set: &format!(
            "{relationship}, last_seen_at = CASE WHEN student_contacts.status = 'active' THEN student_contacts.last_seen_at ELSE $2 END, held_by = NULL, held_at = NULL"
        ),
        differs: Some("s.relationship IS DISTINCT FROM student_contacts.relationship_sync"),
        // A link an admin removed stays removed while the SIS sends it unchanged.
        reactivate_when: "student_contacts.held_by IS NULL OR s.relationship IS DISTINCT FROM student_contacts.relationship_sync",
        // A link only an approved edit created was never the SIS's to take away.
        absent_when: "relationship_sync IS NOT NULL",
        insert: (
            "student_id, contact_id, relationship, relationship_provenance, relationship_changed_at, relationship_sync, first_seen_at, last_seen_at",
            "s.student_id, s.contact_id, s.relationship, 'sync', $2, s.relationship, $2, $2",
            "s.student_id, s.contact_id",
        ),
        on_deactivate: (
            ", last_seen_at = COALESCE($3, last_seen_at)",
            vec![Value::ChronoDateTimeUtc(previous_run)],
        ),
        hashed: true,
        presence,
    };
    let counts = sync_status(conn, spec, params(tenant, now)).await?;
    release_absent_holds(conn, tenant, presence).await?;
    Ok(counts)
}

/// A removed link the SIS no longer sends loses its hold: the SIS has changed it (to
/// absent), so the next time it sends the link again, that change re-adds it.
async fn release_absent_holds(
    conn: &mut ImportConn,
    tenant: TenantId,
    presence: Presence,
) -> Result<u64, DbErr> {
    let absent = match presence {
        Presence::Snapshot => "tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM r_links s WHERE student_contacts.student_id = s.student_id AND student_contacts.contact_id = s.contact_id)".to_string(),
        Presence::Changes { .. } => format!(
            "tenant_id = $1 AND sync_key IN (SELECT k FROM {} WHERE tbl = 'student_contacts')",
            super::staging::GONE
        ),
    };
    // `held_by IS NOT NULL` lets both engines walk the partial index of held links.
    conn.exec(
        &format!("UPDATE student_contacts SET held_by = NULL, held_at = NULL WHERE held_by IS NOT NULL AND {absent}"),
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await
}

/// Live tables a sync writes, in the order it fills them.
pub const LIVE_TABLES: [&str; 7] = [
    "schools",
    "students",
    "staff",
    "classes",
    "contacts",
    "enrollments",
    "student_contacts",
];

/// Refreshes the planner statistics of live `tables` after a large load, so the next
/// statements and runs join small change sets against them with index lookups instead of
/// full scans (a bulk-loaded table has none until autovacuum or `ANALYZE` runs).
pub async fn refresh_statistics(conn: &mut ImportConn, tables: &[&str]) -> Result<(), DbErr> {
    temp::analyze_live(conn, tables).await
}

/// Active links of the tenant (the base of the deletion guard).
pub async fn active_links(conn: &mut ImportConn, tenant: TenantId) -> Result<u64, DbErr> {
    Ok(conn
        .count(
            "SELECT COUNT(*) AS n FROM student_contacts WHERE tenant_id = $1 AND status = 'active'",
            vec![Value::BigInt(Some(tenant.0))],
        )
        .await? as u64)
}
