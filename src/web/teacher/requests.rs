//! `GET /teacher/requests`: the teacher's own contact requests and their status, oldest
//! first, paginated (as `GET /api/v1/contact-requests` gives a teacher).

use super::{Paging, next_link, page_size, student_href, teacher, when};
use crate::api::AppState;
use crate::approvals::requests::{self, ListFilter, RequestItem};
use crate::auth::policy::{self, RequestScope};
use crate::roster;
use crate::web::error::PageError;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

const PATH: &str = "/teacher/requests";

/// One request, for people.
struct RequestRow {
    id: String,
    student: String,
    student_href: String,
    action: &'static str,
    proposed: String,
    status: String,
    requested_at: String,
    decision: String,
}

/// The teacher's requests.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/requests.html")]
struct RequestsPage {
    title: String,
    layout: Layout,
    requests: Vec<RequestRow>,
    next: Option<String>,
    sent: bool,
}

/// `?cursor=` and `?sent=1` (after a proposal).
#[derive(Debug, Default, serde::Deserialize)]
pub struct RequestsQuery {
    cursor: Option<String>,
    sent: Option<String>,
}

/// What the request proposes, in words: `Email address: a@b.example; Family name: (cleared)`.
fn proposed(item: &RequestItem) -> String {
    const NAMES: [(&str, &str); 5] = [
        ("givenName", "Given name"),
        ("familyName", "Family name"),
        ("emailAddress", "Email address"),
        ("mobilePhone", "Mobile phone"),
        ("relationship", "Relationship"),
    ];
    NAMES
        .iter()
        .filter_map(|(key, label)| {
            item.proposed.get(*key).map(|value| match value.as_str() {
                Some(text) => format!("{label}: {text}"),
                None => format!("{label}: (cleared)"),
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn row(item: RequestItem, names: &HashMap<String, String>) -> RequestRow {
    let action = match item.action.as_str() {
        "add" => "Add a contact",
        "update" => "Change a contact",
        _ => "Remove a contact",
    };
    let decision = match (&item.decided_by, &item.decided_at) {
        (Some(_), Some(at)) => match &item.reason {
            Some(reason) => format!("{} — {reason}", when(*at)),
            None => when(*at),
        },
        _ => String::new(),
    };
    RequestRow {
        proposed: proposed(&item),
        student_href: student_href(&item.student_id),
        student: names
            .get(&item.student_id)
            .cloned()
            .unwrap_or(item.student_id),
        id: item.id,
        action,
        status: item.status,
        requested_at: when(item.requested_at),
        decision,
    }
}

/// `GET /teacher/requests`.
pub async fn list(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<RequestsQuery>,
) -> Result<Response, PageError> {
    let me = teacher(&session)?;
    let scope = policy::read_contact_requests(&me)?;
    let paging = Paging {
        cursor: query.cursor,
    };
    let filter = ListFilter {
        requested_by: match scope {
            RequestScope::All => None,
            RequestScope::OwnedBy(teacher) => Some(teacher),
        },
        after: paging.id()?,
        limit: page_size(&state),
        ..Default::default()
    };
    let (items, next) = requests::list(&state.db, session.principal.tenant, &filter).await?;
    let students: Vec<String> = items.iter().map(|i| i.student_id.clone()).collect();
    let names = roster::student_names(&state.db, session.principal.tenant, &students).await?;
    Ok(RequestsPage {
        title: "My requests".into(),
        layout: Layout::new(&session, PATH),
        requests: items.into_iter().map(|item| row(item, &names)).collect(),
        next: next_link(PATH, next),
        sent: query.sent.is_some(),
    }
    .into_response())
}
