//! `GET /teacher/classes` (the teacher's active classes, paginated), `GET
//! /teacher/classes/{id}` (its active students, paginated; its assignments by due date; its
//! digest switch) and `POST /teacher/classes/{id}/digest` (the switch, as `PATCH
//! /api/v1/classes/{id}/digest`).

use super::{Paging, encode, next_link, page_size, student_href, teacher};
use crate::api::AppState;
use crate::assignments::store::{self, ListFilter};
use crate::auth::policy;
use crate::roster;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const LIST: &str = "/teacher/classes";

/// A class in the list.
struct ClassRow {
    title: String,
    school: String,
    href: String,
}

/// The list of the teacher's classes.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/classes.html")]
struct ClassesPage {
    title: String,
    layout: Layout,
    classes: Vec<ClassRow>,
    next: Option<String>,
}

/// `GET /teacher/classes`: the teacher's own active classes.
pub async fn list(
    State(state): State<AppState>,
    session: WebSession,
    Query(paging): Query<Paging>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let scope = policy::class_scope(&me)?;
    let page = roster::classes(
        &state.db,
        session.principal.tenant,
        &scope,
        &paging.request(&state),
    )
    .await?;
    let classes = page
        .items
        .into_iter()
        .map(|c| ClassRow {
            title: c.title.unwrap_or_else(|| c.id.clone()),
            school: c.school_id.unwrap_or_default(),
            href: format!("{LIST}/{}", encode(&c.id)),
        })
        .collect();
    Ok(ClassesPage {
        title: "My classes".into(),
        layout: Layout::new(&session, LIST),
        classes,
        next: next_link(LIST, page.next_cursor),
    }
    .into_response())
}

/// A student of the class.
struct StudentRow {
    name: String,
    href: String,
}

/// An assignment of the class.
struct AssignmentRow {
    title: String,
    due: String,
    points: String,
}

/// `?cursor=` (students) and `?assignments=` (assignments) of a class page, `?saved=1`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ClassQuery {
    cursor: Option<String>,
    assignments: Option<String>,
    saved: Option<String>,
}

/// One class.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/class.html")]
struct ClassPage {
    title: String,
    layout: Layout,
    students: Vec<StudentRow>,
    next_students: Option<String>,
    assignments: Vec<AssignmentRow>,
    next_assignments: Option<String>,
    digest: Form,
    saved: bool,
}

/// The digest switch as a form.
fn digest_form(session: &WebSession, class: &str, on: bool) -> Form {
    let field = Field::new(
        "notify-guardians",
        "Digest for this class",
        Control::Checkboxes(vec![(
            "on".into(),
            "Include this class in the guardians' weekly digest".into(),
        )]),
    )
    .hint("Guardians who get the weekly email see this class's assignments due that week.")
    .value(if on { "on" } else { "" });
    Form {
        action: format!("{LIST}/{}/digest", encode(class)),
        csrf: session.csrf.clone(),
        fields: vec![field],
    }
}

/// `GET /teacher/classes/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Path(class): Path<String>,
    Query(query): Query<ClassQuery>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let tenant = session.principal.tenant;
    let (class_id, active_only) = policy::class(&state.db, &me, &class).await?;
    let students = roster::class_students(
        &state.db,
        tenant,
        class_id,
        active_only,
        &Paging {
            cursor: query.cursor.clone(),
        }
        .request(&state),
    )
    .await?;
    let assignments_class = policy::read_assignments(&state.db, &me, &class).await?;
    let after = match query.assignments.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(raw) => Some(store::parse_cursor(raw).ok_or(PageError::NotFound)?),
    };
    let (assignments, next_assignment) = store::list(
        &state.db,
        tenant,
        assignments_class,
        &class,
        &ListFilter {
            after,
            limit: page_size(&state),
            ..Default::default()
        },
    )
    .await?;
    let digest_class = policy::class_digest(&state.db, &me, &class, false).await?;
    let on = store::notify_guardians(&state.db, tenant, digest_class).await?;
    let path = format!("{LIST}/{}", encode(&class));
    let title = roster::class_title(&state.db, tenant, class_id)
        .await?
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| class.clone());
    Ok(ClassPage {
        title,
        layout: Layout::new(&session, LIST),
        students: students
            .items
            .into_iter()
            .map(|s| StudentRow {
                href: student_href(&s.id),
                name: s.display_name,
            })
            .collect(),
        next_students: next_link(&path, students.next_cursor),
        assignments: assignments
            .into_iter()
            .map(|a| AssignmentRow {
                title: a.title,
                due: a.due_at,
                points: a.points.map(|p| p.to_string()).unwrap_or_default(),
            })
            .collect(),
        next_assignments: next_assignment.map(|c| format!("{path}?assignments={}", encode(&c))),
        digest: digest_form(&session, &class, on),
        saved: query.saved.is_some(),
    }
    .into_response())
}

/// `POST /teacher/classes/{id}/digest`: the switch on (`notify-guardians=on`) or off.
pub async fn set_digest(
    State(state): State<AppState>,
    session: WebSession,
    Path(class): Path<String>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let me = teacher(&session)?;
    let class_id = policy::class_digest(&state.db, &me, &class, true).await?;
    let on = sent.get("notify-guardians").is_some_and(|v| v == "on");
    store::set_notify_guardians(
        &state.db,
        session.principal.tenant,
        class_id,
        &class,
        on,
        &session.principal.actor(),
    )
    .await?;
    Ok(Redirect::to(&format!("{LIST}/{}?saved=1", encode(&class))).into_response())
}
