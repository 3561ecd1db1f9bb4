//! A guardian's children (students they are an active parent or guardian of, themselves
//! active) and each child's teachers (active teachers of the child's active classes) — the
//! teachers a guardian may start a chat with ([`crate::auth::policy::guardian_start_chat`]
//! asks the same of the roster). Read from the guardian's own links and the children's
//! own enrollments through their indexes; a family is a handful of rows.

use crate::contacts::display_name;
use crate::db;
use crate::domain::TenantId;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};

/// At most this many children are listed (a family, not a school).
const MAX_CHILDREN: u64 = 50;
/// At most this many (child, class, teacher) rows are listed.
const MAX_TEACHERS: u64 = 500;

/// One child and their teachers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The student's SIS source id.
    pub source_id: String,
    /// Their name.
    pub name: String,
    /// Their teachers, by name.
    pub teachers: Vec<Teacher>,
}

/// A teacher of a child, with the child's classes they teach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teacher {
    /// The teacher's SIS source id.
    pub source_id: String,
    /// Their name.
    pub name: String,
    /// The classes' titles (or SIS ids).
    pub classes: Vec<String>,
}

#[derive(Debug, FromQueryResult)]
struct ChildRow {
    id: i64,
    source_id: String,
    given_name: Option<String>,
    family_name: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct TeacherRow {
    student_id: i64,
    class_source_id: String,
    title: Option<String>,
    teacher_source_id: String,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// The children of guardian `contact` of `tenant`, by name, each with their teachers.
pub async fn children<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<Vec<Child>, DbErr> {
    let rows: Vec<ChildRow> = db::rows::query_as(
        conn,
        &format!(
            "SELECT s.id, s.source_id, s.given_name, s.family_name FROM student_contacts l \
             JOIN students s ON s.id = l.student_id \
             WHERE l.tenant_id = $1 AND l.contact_id = $2 AND {} AND s.tenant_id = $1 AND {} \
             ORDER BY s.given_name, s.family_name, s.id LIMIT {MAX_CHILDREN}",
            crate::visible_link!("l"),
            crate::visible_student!("s"),
        ),
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let teachers: Vec<TeacherRow> = db::rows::query_as(
        conn,
        &format!(
            "SELECT se.person_id AS student_id, c.source_id AS class_source_id, c.title, \
               t.source_id AS teacher_source_id, t.given_name, t.family_name \
             FROM enrollments se \
             JOIN classes c ON c.id = se.class_id \
             JOIN enrollments te ON te.class_id = se.class_id \
             JOIN staff t ON t.id = te.person_id \
             WHERE se.tenant_id = $1 AND se.role = 'student' AND se.person_id IN ({}) AND se.status = 'active' \
               AND c.status = 'active' AND te.role = 'teacher' AND te.status = 'active' \
               AND t.tenant_id = $1 AND t.status = 'active' \
             ORDER BY t.family_name, t.given_name, t.source_id, c.title LIMIT {MAX_TEACHERS}",
            db::id_list(rows.iter().map(|r| r.id))
        ),
        vec![Value::BigInt(Some(tenant.0))],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Child {
            name: display_name(
                row.given_name.as_deref(),
                row.family_name.as_deref(),
                None,
                Some(&row.source_id),
            ),
            teachers: teachers_of(&teachers, row.id),
            source_id: row.source_id,
        })
        .collect())
}

/// The teachers of student `student` among `rows`, one entry per teacher, in order.
fn teachers_of(rows: &[TeacherRow], student: i64) -> Vec<Teacher> {
    let mut out: Vec<Teacher> = Vec::new();
    for row in rows.iter().filter(|t| t.student_id == student) {
        let class = row
            .title
            .clone()
            .unwrap_or_else(|| row.class_source_id.clone());
        match out
            .iter_mut()
            .find(|t| t.source_id == row.teacher_source_id)
        {
            Some(teacher) => teacher.classes.push(class),
            None => out.push(Teacher {
                source_id: row.teacher_source_id.clone(),
                name: display_name(
                    row.given_name.as_deref(),
                    row.family_name.as_deref(),
                    None,
                    Some(&row.teacher_source_id),
                ),
                classes: vec![class],
            }),
        }
    }
    out
}
