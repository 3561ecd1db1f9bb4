//! Reading the roster: classes, the students enrolled in them, and which teacher reaches
//! which student. Every query is scoped by tenant; "active" means the class, the enrollment
//! and the person are all active.

use crate::db;
use crate::domain::TenantId;
use crate::domain::display_name;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::Serialize;

/// Which classes a caller may list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassScope {
    /// Every class of the tenant, any status (admins).
    All,
    /// The active classes the teacher with this SIS source id actively teaches.
    TaughtBy(String),
}

/// One class.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassItem {
    /// The class's SIS source id.
    pub id: String,
    /// Title.
    pub title: Option<String>,
    /// The school's SIS source id.
    pub school_id: Option<String>,
    /// `active` or `inactive`.
    pub status: String,
}

/// One student of a class.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentItem {
    /// The student's SIS source id.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// `active` or `inactive`: the enrollment in this class (inactive when either the
    /// enrollment or the student is inactive).
    pub status: String,
}

/// A page of a list ordered by SIS source id.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Source id to pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Items after this source id.
    pub after: Option<String>,
    /// Items per page (at least 1).
    pub limit: u64,
}

fn page<T>(mut items: Vec<T>, limit: u64, key: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() as u64 > limit;
    if more {
        items.truncate(limit as usize);
    }
    let next_cursor = if more { items.last().map(key) } else { None };
    Page { items, next_cursor }
}

fn limit_value(request: &PageRequest) -> Value {
    Value::BigInt(Some(
        i64::try_from(request.limit.saturating_add(1)).unwrap_or(i64::MAX),
    ))
}

/// Classes of `tenant` visible in `scope`, ordered by source id. A teacher's classes are
/// read from the teacher's own enrollments (a few rows through an index), never by walking
/// the tenant's classes: the cost does not grow with the district.
pub async fn classes<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    scope: &ClassScope,
    request: &PageRequest,
) -> Result<Page<ClassItem>, DbErr> {
    let mut values = vec![
        Value::BigInt(Some(tenant.0)),
        Value::String(Some(request.after.clone().unwrap_or_default())),
        limit_value(request),
    ];
    let sql = match scope {
        ClassScope::All => {
            "SELECT c.source_id, c.title, c.school_source_id, c.status FROM classes c \
             WHERE c.tenant_id = $1 AND c.source_id > $2 ORDER BY c.source_id LIMIT $3"
        }
        ClassScope::TaughtBy(teacher) => {
            values.push(Value::String(Some(teacher.clone())));
            // CROSS JOIN fixes the order on SQLite (PostgreSQL plans it the same way from
            // its statistics): the teacher, their enrollments, then each class by id.
            "SELECT c.source_id, c.title, c.school_source_id, c.status FROM staff t \
             CROSS JOIN enrollments te CROSS JOIN classes c \
             WHERE t.tenant_id = $1 AND t.source_id = $4 AND t.status = 'active' \
               AND te.tenant_id = $1 AND te.role = 'teacher' AND te.person_id = t.id \
               AND te.status = 'active' AND c.id = te.class_id AND c.status = 'active' \
               AND c.source_id > $2 ORDER BY c.source_id LIMIT $3"
        }
    };
    let rows = db::query(conn, sql, values).await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(ClassItem {
                id: row.try_get("", "source_id")?,
                title: row.try_get("", "title")?,
                school_id: row.try_get("", "school_source_id")?,
                status: row.try_get("", "status")?,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(page(items, request.limit, |c| c.id.clone()))
}

/// `EXISTS` clause: the teacher whose source id is placeholder `$n` actively teaches
/// class `c` (the tenant is `$1`).
fn teaches_class(n: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM enrollments te JOIN staff t ON t.id = te.person_id \
         WHERE te.class_id = c.id AND te.role = 'teacher' AND te.status = 'active' \
         AND t.tenant_id = $1 AND t.source_id = ${n} AND t.status = 'active')"
    )
}

/// The database id of class `class_source_id` when it is visible in `scope`.
pub async fn find_class<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    scope: &ClassScope,
    class_source_id: &str,
) -> Result<Option<i64>, DbErr> {
    let mut values = vec![
        Value::BigInt(Some(tenant.0)),
        Value::String(Some(class_source_id.to_string())),
    ];
    let filter = match scope {
        ClassScope::All => String::new(),
        ClassScope::TaughtBy(teacher) => {
            values.push(Value::String(Some(teacher.clone())));
            format!(" AND c.status = 'active' AND {}", teaches_class(3))
        }
    };
    let rows = db::query(
        conn,
        &format!("SELECT c.id FROM classes c WHERE c.tenant_id = $1 AND c.source_id = $2{filter}"),
        values,
    )
    .await?;
    rows.first().map(|r| r.try_get("", "id")).transpose()
}

/// The names to show of the students `source_ids` of `tenant` (any status), by source id:
/// one statement through the (tenant, source id) key, for a page of a list.
pub async fn student_names<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    source_ids: &[String],
) -> Result<std::collections::HashMap<String, String>, DbErr> {
    let mut wanted: Vec<&String> = source_ids.iter().collect();
    wanted.sort();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(Default::default());
    }
    let placeholders = (2..wanted.len() + 2)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values = vec![Value::BigInt(Some(tenant.0))];
    values.extend(wanted.iter().map(|id| Value::String(Some((*id).clone()))));
    let rows = db::query(
        conn,
        &format!(
            "SELECT source_id, given_name, family_name FROM students \
             WHERE tenant_id = $1 AND source_id IN ({placeholders})"
        ),
        values,
    )
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("", "source_id")?;
            let given: Option<String> = row.try_get("", "given_name")?;
            let family: Option<String> = row.try_get("", "family_name")?;
            let name = display_name(given.as_deref(), family.as_deref(), Some(&id), None);
            Ok((id, name))
        })
        .collect()
}

/// The title of class `class_id` of `tenant` (by key; the caller found the class first).
pub async fn class_title<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
) -> Result<Option<String>, DbErr> {
    let rows = db::query(
        conn,
        "SELECT title FROM classes WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(class_id))],
    )
    .await?;
    Ok(rows
        .first()
        .map(|r| r.try_get::<Option<String>>("", "title"))
        .transpose()?
        .flatten())
}

/// Students of class `class_id` (of `tenant`), ordered by source id. With `active_only`
/// (teachers) only active students with an active enrollment are listed.
pub async fn class_students<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    class_id: i64,
    active_only: bool,
    request: &PageRequest,
) -> Result<Page<StudentItem>, DbErr> {
    let filter = if active_only {
        " AND e.status = 'active' AND s.status = 'active'"
    } else {
        ""
    };
    let rows = db::query(
        conn,
        &format!(
            "SELECT s.source_id, s.given_name, s.family_name, \
               CASE WHEN e.status = 'active' AND s.status = 'active' THEN 'active' ELSE 'inactive' END AS status \
             FROM enrollments e JOIN students s ON s.id = e.person_id \
             WHERE e.tenant_id = $1 AND s.tenant_id = $1 AND e.class_id = $2 AND e.role = 'student' \
               AND s.source_id > $3{filter} ORDER BY s.source_id LIMIT $4"
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::BigInt(Some(class_id)),
            Value::String(Some(request.after.clone().unwrap_or_default())),
            limit_value(request),
        ],
    )
    .await?;
    let items = rows
        .iter()
        .map(|row| {
            let row = ClassStudentRow::from_query_result(row, "")?;
            Ok(StudentItem {
                display_name: student_name(
                    row.given_name.as_deref(),
                    row.family_name.as_deref(),
                    &row.source_id,
                ),
                id: row.source_id,
                given_name: row.given_name,
                family_name: row.family_name,
                status: row.status,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(page(items, request.limit, |s| s.id.clone()))
}

/// A student of a class as [`class_students`] reads it.
#[derive(FromQueryResult)]
struct ClassStudentRow {
    source_id: String,
    given_name: Option<String>,
    family_name: Option<String>,
    status: String,
}

fn student_name(given: Option<&str>, family: Option<&str>, id: &str) -> String {
    let name = display_name(given, family, None, None);
    if name == "(no name)" {
        id.to_string()
    } else {
        name
    }
}

/// `EXISTS` clause: the teacher whose source id is placeholder `$n` actively teaches an
/// active class in which the active student row `s` is actively enrolled (the tenant is
/// `$1`). `CROSS JOIN` fixes the order on SQLite (PostgreSQL plans the same from its
/// statistics): the teacher by key, the teacher's own enrollments, each class by id, then one
/// lookup of the student in each of those classes. Nothing here grows with the district.
pub fn teaches_student(n: usize) -> String {
    format!(
        "s.status = 'active' AND EXISTS (SELECT 1 FROM staff t CROSS JOIN enrollments te \
           CROSS JOIN classes c CROSS JOIN enrollments se \
         WHERE t.tenant_id = $1 AND t.source_id = ${n} AND t.status = 'active' \
           AND te.tenant_id = $1 AND te.role = 'teacher' AND te.person_id = t.id \
           AND te.status = 'active' AND c.id = te.class_id AND c.status = 'active' \
           AND se.class_id = te.class_id AND se.role = 'student' AND se.person_id = s.id \
           AND se.status = 'active')"
    )
}

/// True when the teacher `teacher_source_id` actively teaches an active class in which the
/// active student `student_source_id` is actively enrolled.
pub async fn teacher_reaches_student<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    teacher_source_id: &str,
    student_source_id: &str,
) -> Result<bool, DbErr> {
    db::exists(
        conn,
        &format!(
            "SELECT COUNT(*) FROM students s WHERE s.tenant_id = $1 AND s.source_id = $3 AND {}",
            teaches_student(2)
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::String(Some(teacher_source_id.to_string())),
            Value::String(Some(student_source_id.to_string())),
        ],
    )
    .await
}

/// True when the teacher `teacher_source_id` may see contact `contact_id`: an active
/// parent or guardian link of it to a student the teacher reaches
/// ([`teacher_reaches_student`]). One indexed probe per link of the contact.
pub async fn teacher_reaches_contact<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    teacher_source_id: &str,
    contact_id: i64,
) -> Result<bool, DbErr> {
    db::exists(
        conn,
        &format!(
            "SELECT COUNT(*) FROM student_contacts l JOIN students s ON s.id = l.student_id \
             WHERE l.tenant_id = $1 AND l.contact_id = $3 AND {} AND {}",
            crate::visible_link!("l"),
            teaches_student(2)
        ),
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::String(Some(teacher_source_id.to_string())),
            Value::BigInt(Some(contact_id)),
        ],
    )
    .await
}

/// A student of the tenant (any status): `(given name, family name)`.
pub async fn find_student<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_source_id: &str,
) -> Result<Option<(Option<String>, Option<String>)>, DbErr> {
    let rows = db::query(
        conn,
        "SELECT given_name, family_name FROM students WHERE tenant_id = $1 AND source_id = $2",
        vec![
            Value::BigInt(Some(tenant.0)),
            Value::String(Some(student_source_id.to_string())),
        ],
    )
    .await?;
    rows.first()
        .map(|r| Ok((r.try_get("", "given_name")?, r.try_get("", "family_name")?)))
        .transpose()
}
