//! What turns a staged delta into something the snapshot reconcile applies without
//! deactivating what the delta does not mention:
//! - the diffed tables (students, enrollments, links) are reconciled as change sets
//!   ([`Presence::Changes`](crate::sync::reconcile::Presence)): only the keys put in
//!   [`GONE`](crate::sync::staging::GONE) are deactivated, here the live rows of records the delta marks gone (and the
//!   links and enrollments of gone users and classes), and the links between two users
//!   the delta holds whole that neither one's `agents` names any more;
//! - the small tables always reconciled as whole snapshots (schools, staff, classes) get
//!   every active live row the delta does not mention copied into their staging table, so
//!   only what the delta marks gone is absent.

use super::mapping::Staged;
use crate::db::ImportConn;
use crate::db::engine::temp;
use crate::domain::TenantId;
use crate::sync::report::EntityCounts;
use crate::sync::staging;
use sea_orm::{DbErr, Value};

/// Ids of records the delta marks gone, by kind (`users`, `orgs`, `classes`), and of the
/// students and contacts it holds whole (kind `present`).
const DELETED: &str = "o_deleted";

/// Rows copied from the live tables into staging, per roster table.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    schools: u64,
    staff: u64,
    classes: u64,
}

impl Copied {
    /// Takes the copied rows out of the `unchanged` counts: the delta did not deliver them.
    pub fn discount(self, entities: &mut EntityCounts) {
        let less = |n: &mut u64, by: u64| *n = n.saturating_sub(by);
        less(&mut entities.schools.unchanged, self.schools);
        less(&mut entities.staff.unchanged, self.staff);
        less(&mut entities.classes.unchanged, self.classes);
    }
}

/// Stages the delta's gone records and completes the whole-snapshot tables.
pub async fn prepare(
    conn: &mut ImportConn,
    tenant_id: TenantId,
    staged: &Staged,
) -> Result<Copied, DbErr> {
    create_deleted(conn).await?;
    for (kind, ids) in [
        ("users", &staged.gone_users),
        ("orgs", &staged.gone_orgs),
        ("classes", &staged.gone_classes),
        ("present", &staged.present_users),
    ] {
        let rows: Vec<Vec<Value>> = ids
            .iter()
            .map(|id| vec![kind.into(), id.clone().into()])
            .collect();
        for chunk in rows.chunks(10_000) {
            conn.bulk_insert(DELETED, &["kind", "source_id"], chunk)
                .await?;
        }
    }
    staging::insert_gone(conn, "enrollments", &staged.gone_enrollments).await?;
    let tenant = || vec![Value::BigInt(Some(tenant_id.0))];
    for sql in GONE_ROWS {
        conn.exec(sql, tenant()).await?;
    }
    let mut copied = Copied::default();
    for (sql, count) in [
        (COPY_SCHOOLS, &mut copied.schools),
        (COPY_STAFF, &mut copied.staff),
        (COPY_CLASSES, &mut copied.classes),
    ] {
        *count = conn.exec(sql, tenant()).await?;
    }
    staging::analyze(conn).await?;
    Ok(copied)
}

async fn create_deleted(conn: &mut ImportConn) -> Result<(), DbErr> {
    temp::create(conn, DELETED, "kind TEXT NOT NULL, source_id TEXT NOT NULL").await?;
    conn.exec(
        &format!("CREATE INDEX {DELETED}_ix ON {DELETED} (kind, source_id)"),
        vec![],
    )
    .await
    .map(|_| ())
}

/// Drops the delta's own temporary table (see [`temp::drop`]).
pub async fn drop_tables(conn: &mut ImportConn) -> Result<(), DbErr> {
    temp::drop(conn, [DELETED]).await
}

/// Keys of the live rows to deactivate: gone students, the links and enrollments of gone
/// users and classes, and the links between a student and a contact the delta both holds
/// whole that it did not stage (neither `agents` list names the other any more; links are
/// the union of both lists). A link counts as live as a full run counts it
/// (`fast::load`): delivered by the SIS, or held by an admin's removal.
const GONE_ROWS: [&str; 4] = [
    "INSERT INTO s_gone (tbl, k) SELECT 'students', s.sync_key FROM students s \
     WHERE s.tenant_id = $1 AND s.status = 'active' AND s.sync_key IS NOT NULL \
       AND s.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'users')",
    "INSERT INTO s_gone (tbl, k) SELECT 'student_contacts', l.sync_key FROM student_contacts l \
     JOIN students s ON s.id = l.student_id JOIN contacts c ON c.id = l.contact_id \
     WHERE l.tenant_id = $1 AND l.status = 'active' AND l.sync_key IS NOT NULL \
       AND (s.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'users') \
         OR c.source_key IN (SELECT source_id FROM o_deleted WHERE kind = 'users'))",
    "INSERT INTO s_gone (tbl, k) SELECT 'student_contacts', l.sync_key FROM student_contacts l \
     JOIN students s ON s.id = l.student_id JOIN contacts c ON c.id = l.contact_id \
     WHERE l.tenant_id = $1 AND l.sync_key IS NOT NULL \
       AND ((l.status = 'active' AND l.relationship_sync IS NOT NULL) OR l.held_by IS NOT NULL) \
       AND s.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'present') \
       AND c.source_key IN (SELECT source_id FROM o_deleted WHERE kind = 'present') \
       AND NOT EXISTS (SELECT 1 FROM s_links x \
         WHERE x.student_id = s.source_id AND x.contact_key = c.source_key)",
    "INSERT INTO s_gone (tbl, k) SELECT 'enrollments', e.sync_key FROM enrollments e \
     JOIN classes c ON c.id = e.class_id \
     LEFT JOIN students s ON e.role = 'student' AND s.id = e.person_id \
     LEFT JOIN staff f ON e.role = 'teacher' AND f.id = e.person_id \
     WHERE e.tenant_id = $1 AND e.status = 'active' AND e.sync_key IS NOT NULL \
       AND (c.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'classes') \
         OR s.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'users') \
         OR f.source_id IN (SELECT source_id FROM o_deleted WHERE kind = 'users'))",
];

const COPY_SCHOOLS: &str = "INSERT INTO s_schools (src, rec, source_id, name) \
     SELECT -1, 0, x.source_id, x.name FROM schools x \
     WHERE x.tenant_id = $1 AND x.status = 'active' \
       AND NOT EXISTS (SELECT 1 FROM s_schools s WHERE s.source_id = x.source_id) \
       AND NOT EXISTS (SELECT 1 FROM o_deleted d WHERE d.kind = 'orgs' AND d.source_id = x.source_id)";

const COPY_STAFF: &str = "INSERT INTO s_staff (src, rec, source_id, given_name, family_name, email, role) \
     SELECT -1, 0, x.source_id, x.given_name, x.family_name, x.email, x.role FROM staff x \
     WHERE x.tenant_id = $1 AND x.status = 'active' \
       AND NOT EXISTS (SELECT 1 FROM s_staff s WHERE s.source_id = x.source_id) \
       AND NOT EXISTS (SELECT 1 FROM o_deleted d WHERE d.kind = 'users' AND d.source_id = x.source_id)";

const COPY_CLASSES: &str = "INSERT INTO s_classes (src, rec, source_id, school_source_id, title) \
     SELECT -1, 0, x.source_id, x.school_source_id, x.title FROM classes x \
     WHERE x.tenant_id = $1 AND x.status = 'active' \
       AND NOT EXISTS (SELECT 1 FROM s_classes s WHERE s.source_id = x.source_id) \
       AND NOT EXISTS (SELECT 1 FROM o_deleted d WHERE d.kind = 'classes' AND d.source_id = x.source_id)";
