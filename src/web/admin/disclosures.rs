//! `GET /admin/disclosures`: the disclosure log (FERPA §99.32) — each invitation and digest
//! sent, to whom, at which address, when, about which students, and the text sent (until
//! `outbox.disclosure_text_days`) — for those the API lets read it
//! ([`policy::administer_contacts`]). A GET form narrows it to one student (SIS id); the
//! list is keyset-paginated like `GET /api/v1/disclosures`, through the same
//! [`disclosures::list`].

use super::students::encode;
use crate::api::AppState;
use crate::auth::policy;
use crate::outbox::disclosures::{self, Disclosure, Filter};
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

const PATH: &str = "/admin/disclosures";
/// Entries per page.
const PAGE_SIZE: u64 = 50;
/// Longest student id, in characters.
const MAX_STUDENT_CHARS: usize = 255;

/// `?student=&cursor=`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct DisclosureQuery {
    #[serde(default)]
    student: String,
    cursor: Option<String>,
}

/// One entry as the page shows it.
#[derive(Debug, Clone)]
struct Entry {
    at: String,
    kind: String,
    channel: String,
    recipient: String,
    students: String,
    subject: String,
    body: String,
    hash: String,
}

impl From<Disclosure> for Entry {
    fn from(item: Disclosure) -> Self {
        Entry {
            at: crate::web::when(item.accepted_at),
            kind: item.kind,
            channel: item.channel,
            recipient: item.recipient.unwrap_or_else(|| "(erased)".into()),
            students: item.students.join(", "),
            subject: item.subject.unwrap_or_default(),
            body: item.body.unwrap_or_default(),
            hash: item.content_sha256,
        }
    }
}

/// The disclosure log page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/disclosures.html")]
struct DisclosuresPage {
    title: String,
    layout: Layout,
    form: Form,
    entries: Vec<Entry>,
    next: Option<String>,
}

fn filter_form(session: &WebSession, query: &DisclosureQuery) -> Form {
    Form {
        action: PATH.into(),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new("student", "Student", Control::Text)
                .hint("The student's SIS id, for example stu-1. Empty: every student.")
                .value(query.student.clone()),
        ],
    }
}

/// Shows the log, of one student when the query names one.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<DisclosureQuery>,
) -> Result<Response, PageError> {
    policy::administer_contacts(&session.principal)?;
    let mut form = filter_form(&session, &query);
    let student = query.student.trim();
    let page = |form, entries, next| DisclosuresPage {
        title: "Disclosure log".into(),
        layout: Layout::new(&session, PATH),
        form,
        entries,
        next,
    };
    if student.chars().count() > MAX_STUDENT_CHARS {
        if let Some(field) = form.field_mut("student") {
            field.error = Some(format!("At most {MAX_STUDENT_CHARS} characters."));
        }
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            page(form, Vec::new(), None),
        )
            .into_response());
    }
    let filter = Filter {
        student: Some(student).filter(|s| !s.is_empty()),
        contact: None,
    };
    let before = crate::web::id_cursor(query.cursor.as_deref())?;
    let (items, next) = disclosures::list(
        &state.db,
        session.principal.tenant,
        filter,
        before,
        PAGE_SIZE,
    )
    .await?;
    let next = next.map(|cursor| {
        format!(
            "{PATH}?student={}&cursor={}",
            encode(student),
            encode(&cursor)
        )
    });
    Ok(page(form, items.into_iter().map(Entry::from).collect(), next).into_response())
}
