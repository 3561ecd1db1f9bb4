//! `GET /admin/students/{id}`: a student's contacts for approvers (global and teams admins,
//! as the admin view of `GET /api/v1/students/{id}/contacts`) — every role and status, where
//! each value came from (the SIS sync, an approved edit, an admin) and when — and the
//! student's history: the teachers' requests about them and the erasures.
//!
//! Restricting a contact about this student (custody, a court order) is in
//! [`super::restrictions`]; the page shows a restriction in force on its contact, with the
//! button that lifts it, and every restriction of the student in its history.
//!
//! Erasing a contact takes two pages and no script: `GET
//! /admin/students/{id}/contacts/{contact}/erase` asks "Erase X? This cannot be undone" with
//! a required **Reason**; its `POST` erases through the same service as `POST
//! /api/v1/students/{s}/contacts/{c}/erase` (audited by it) and answers `303` to the student.

use crate::api::AppState;
use crate::approvals::erase::{self, EraseRequest, ErasureFilter};
use crate::approvals::requests::{self, ListFilter};
use crate::auth::policy;
use crate::contacts::{self, ContactItem, FieldProvenance};
use crate::roster;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use crate::web::when;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

/// History entries per page.
const HISTORY_PAGE: u64 = 20;
const APPROVALS: &str = "/admin/approvals";

/// `text` as one URL path segment or query value (RFC 3986 unreserved characters kept).
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The page of the student with SIS source id `student`.
pub fn student_href(student: &str) -> String {
    format!("/admin/students/{}", encode(student))
}

fn erase_href(student: &str, contact: &str) -> String {
    format!(
        "{}/contacts/{}/erase",
        student_href(student),
        encode(contact)
    )
}

fn source_text(source: Option<&str>) -> &'static str {
    match source {
        Some("sync") => "SIS sync",
        Some("approved_edit") => "approved edit",
        Some("admin") => "admin",
        Some("guardian") => "the guardian",
        _ => "unknown",
    }
}

/// One value of a contact with where it came from.
#[derive(Debug, Clone)]
struct Value {
    label: &'static str,
    value: String,
    source: String,
}

fn value(label: &'static str, text: Option<&str>, from: Option<&FieldProvenance>) -> Value {
    // A value never set has no source to show.
    let source = match from {
        Some(FieldProvenance {
            source: Some(source),
            changed_at,
        }) => match changed_at {
            Some(at) => format!("{}, {}", source_text(Some(source)), when(*at)),
            None => source_text(Some(source)).to_string(),
        },
        _ => String::new(),
    };
    Value {
        label,
        value: text.filter(|t| !t.is_empty()).unwrap_or("—").to_string(),
        source,
    }
}

/// A contact of the student as the page shows it.
#[derive(Debug, Clone)]
struct ContactCard {
    id: String,
    name: String,
    relationship: String,
    status: String,
    values: Vec<Value>,
    linked: String,
    erase_href: String,
    /// The restriction in force, in words, or empty.
    restriction: String,
    restrict_href: String,
    lift_href: String,
}

fn restriction_text(r: &crate::contacts::LinkRestriction) -> String {
    let until = r
        .until
        .map(|at| format!(", until {}", when(at)))
        .unwrap_or_else(|| ", no end date".to_string());
    format!(
        "Restricted since {} by {}{until}: {}",
        when(r.restricted_at),
        r.restricted_by,
        r.reason
    )
}

fn contact_card(student: &str, c: ContactItem) -> ContactCard {
    let p = c.provenance.as_ref();
    let mut linked = c
        .first_seen_at
        .map(|at| format!("Linked since {}", when(at)))
        .unwrap_or_default();
    if let Some(at) = c.deactivated_at {
        linked.push_str(&format!("; inactive since {}", when(at)));
    }
    ContactCard {
        values: vec![
            value(
                "Given name",
                c.given_name.as_deref(),
                p.map(|p| &p.given_name),
            ),
            value(
                "Family name",
                c.family_name.as_deref(),
                p.map(|p| &p.family_name),
            ),
            value(
                "Email",
                c.email_address.as_deref(),
                p.map(|p| &p.email_address),
            ),
            value(
                "Mobile",
                c.mobile_phone.as_deref(),
                p.map(|p| &p.mobile_phone),
            ),
            value(
                "Relationship",
                Some(&c.relationship),
                p.map(|p| &p.relationship),
            ),
            value(
                "Language",
                c.preferred_language.as_deref(),
                p.map(|p| &p.preferred_language),
            ),
        ],
        erase_href: erase_href(student, &c.id),
        restriction: c
            .restriction
            .as_ref()
            .map(restriction_text)
            .unwrap_or_default(),
        restrict_href: super::restrictions::restrict_href(student, &c.id),
        lift_href: super::restrictions::lift_href(student, &c.id),
        name: c.display_name,
        relationship: c.relationship,
        status: c.status,
        linked,
        id: c.id,
    }
}

/// A line of the student's history.
#[derive(Debug, Clone)]
struct Event {
    when: String,
    text: String,
    href: Option<String>,
}

/// The student page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/student.html")]
struct StudentPage {
    title: String,
    layout: Layout,
    contacts: Vec<ContactCard>,
    requests: Vec<Event>,
    requests_next: Option<String>,
    erasures: Vec<Event>,
    erasures_next: Option<String>,
    restrictions: Vec<Event>,
    restrictions_next: Option<String>,
    csrf: String,
    done: Option<String>,
}

/// `?erased=&restricted=&lifted=&requests=&erasures=&restrictions=` of the student page
/// (the last three: history cursors).
#[derive(Debug, Default, serde::Deserialize)]
pub struct StudentQuery {
    erased: Option<String>,
    restricted: Option<String>,
    lifted: Option<String>,
    requests: Option<String>,
    erasures: Option<String>,
    restrictions: Option<String>,
}

impl StudentQuery {
    /// What the action that led here did.
    fn done(&self) -> Option<String> {
        let said = [
            (&self.erased, "The contact was erased from the student."),
            (
                &self.restricted,
                "The contact is restricted for this student.",
            ),
            (&self.lifted, "The restriction was lifted."),
        ];
        said.into_iter()
            .find(|(flag, _)| flag.is_some())
            .map(|(_, text)| text.to_string())
    }
}

fn cursor(raw: &Option<String>) -> Option<i64> {
    raw.as_deref().and_then(|c| c.parse().ok())
}

/// The student's name, or not found.
async fn student_name(
    state: &AppState,
    session: &WebSession,
    student: &str,
) -> Result<String, PageError> {
    let (given, family) = roster::find_student(&state.db, session.principal.tenant, student)
        .await?
        .ok_or(PageError::NotFound)?;
    let name = [given, family]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    Ok(if name.is_empty() {
        student.to_string()
    } else {
        format!("{name} ({student})")
    })
}

/// The student's contacts in the admin view (the same policy as the API's read).
async fn student_contacts(
    state: &AppState,
    session: &WebSession,
    student: &str,
) -> Result<Vec<ContactItem>, PageError> {
    policy::administer_contacts(&session.principal)?;
    let scope = policy::student_contacts(&session.principal)?;
    Ok(contacts::for_student(&state.db, session.principal.tenant, student, &scope).await?)
}

async fn request_history(
    state: &AppState,
    session: &WebSession,
    student: &str,
    after: Option<i64>,
) -> Result<(Vec<Event>, Option<String>), PageError> {
    let filter = ListFilter {
        student_source_id: Some(student.to_string()),
        after,
        limit: HISTORY_PAGE,
        ..Default::default()
    };
    let (items, next) = requests::list(&state.db, session.principal.tenant, &filter).await?;
    let events = items
        .into_iter()
        .map(|r| {
            let contact = r
                .contact_id
                .as_deref()
                .map(|c| format!(" of contact {c}"))
                .unwrap_or_default();
            let mut text = format!(
                "Request {}: {}{contact}, by {}: {}",
                r.id, r.action, r.requested_by, r.status
            );
            if let (Some(by), Some(at)) = (&r.decided_by, r.decided_at) {
                text.push_str(&format!(" by {by} on {}", when(at)));
            }
            if let Some(reason) = &r.reason {
                text.push_str(&format!(" ({reason})"));
            }
            Event {
                when: when(r.requested_at),
                text,
                href: Some(format!("{APPROVALS}/{}", r.id)),
            }
        })
        .collect();
    Ok((events, next))
}

async fn erasure_history(
    state: &AppState,
    session: &WebSession,
    student: &str,
    before: Option<i64>,
) -> Result<(Vec<Event>, Option<String>), PageError> {
    let filter = ErasureFilter {
        student_source_id: Some(student),
        active_only: false,
    };
    let (items, next) = erase::list(
        &state.db,
        session.principal.tenant,
        filter,
        before,
        HISTORY_PAGE,
    )
    .await?;
    let events = items
        .into_iter()
        .map(|e| {
            let contact = e.contact_id.as_deref().unwrap_or("?");
            let mut text = format!("Contact {contact} erased by {}", e.erased_by);
            if let Some(reason) = &e.reason {
                text.push_str(&format!(" ({reason})"));
            }
            if let (Some(by), Some(at)) = (&e.lifted_by, e.lifted_at) {
                text.push_str(&format!("; lifted by {by} on {}", when(at)));
            }
            Event {
                when: when(e.erased_at),
                text,
                href: None,
            }
        })
        .collect();
    Ok((events, next))
}

async fn restriction_history(
    state: &AppState,
    session: &WebSession,
    student: &str,
    before: Option<i64>,
) -> Result<(Vec<Event>, Option<String>), PageError> {
    let (items, next) = crate::restrictions::history(
        &state.db,
        session.principal.tenant,
        student,
        before,
        HISTORY_PAGE,
    )
    .await?;
    let events = items
        .into_iter()
        .map(|r| {
            let mut text = format!(
                "Contact {} restricted by {}: {}",
                r.contact_id, r.restricted_by, r.reason
            );
            if let Some(until) = r.until {
                text.push_str(&format!(" (until {})", when(until)));
            }
            match (&r.ended_by, r.ended_at) {
                (Some(by), Some(at)) if by == crate::restrictions::EXPIRED => {
                    text.push_str(&format!("; ended on its end date, {}", when(at)))
                }
                (Some(by), Some(at)) => text.push_str(&format!("; lifted by {by} on {}", when(at))),
                _ => text.push_str("; in force"),
            }
            Event {
                when: when(r.restricted_at),
                text,
                href: None,
            }
        })
        .collect();
    Ok((events, next))
}

/// Shows the student's contacts and history.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Path(student): Path<String>,
    Query(query): Query<StudentQuery>,
) -> Result<Response, PageError> {
    let contacts = student_contacts(&state, &session, &student).await?;
    let name = student_name(&state, &session, &student).await?;
    let (requests, requests_next) =
        request_history(&state, &session, &student, cursor(&query.requests)).await?;
    let (erasures, erasures_next) =
        erasure_history(&state, &session, &student, cursor(&query.erasures)).await?;
    let (restrictions, restrictions_next) =
        restriction_history(&state, &session, &student, cursor(&query.restrictions)).await?;
    let href = student_href(&student);
    Ok(StudentPage {
        title: format!("Student {name}"),
        layout: Layout::new(&session, &href),
        contacts: contacts
            .into_iter()
            .map(|c| contact_card(&student, c))
            .collect(),
        requests,
        requests_next: requests_next.map(|c| format!("{href}?requests={c}")),
        erasures,
        erasures_next: erasures_next.map(|c| format!("{href}?erasures={c}")),
        restrictions,
        restrictions_next: restrictions_next.map(|c| format!("{href}?restrictions={c}")),
        csrf: session.csrf.clone(),
        done: query.done(),
    }
    .into_response())
}

/// The erase confirmation page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/erase.html")]
struct ErasePage {
    title: String,
    layout: Layout,
    name: String,
    student: String,
    student_href: String,
    form: Form,
}

const REASON: &str = "reason";

fn erase_form(session: &WebSession, student: &str, contact: &str) -> Form {
    Form {
        action: erase_href(student, contact),
        csrf: session.csrf.clone(),
        fields: vec![Field::new(REASON, "Reason", Control::TextArea).hint(
            "Why this contact is erased (required; kept with the erasure and in the audit log).",
        )],
    }
}

/// The student's contact `contact` in the admin view, or not found.
pub(super) async fn linked_contact(
    state: &AppState,
    session: &WebSession,
    student: &str,
    contact: &str,
) -> Result<ContactItem, PageError> {
    student_contacts(state, session, student)
        .await?
        .into_iter()
        .find(|c| c.id == contact)
        .ok_or(PageError::NotFound)
}

fn erase_page(session: &WebSession, student: &str, contact: &ContactItem, form: Form) -> ErasePage {
    ErasePage {
        title: format!("Erase {}?", contact.display_name),
        layout: Layout::new(session, &student_href(student)),
        name: contact.display_name.clone(),
        student: student.to_string(),
        student_href: student_href(student),
        form,
    }
}

/// Asks to confirm erasing a contact, with the reason.
pub async fn confirm(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let item = linked_contact(&state, &session, &student, &contact).await?;
    let form = erase_form(&session, &student, &contact);
    Ok(erase_page(&session, &student, &item, form).into_response())
}

/// The reason to erase: required, at most the API's length.
fn erase_reason(raw: &str) -> Result<String, String> {
    let reason = raw.trim();
    let max = crate::api::extract::MAX_REASON_CHARS;
    if reason.is_empty() {
        Err("Give a reason: it is kept with the erasure.".into())
    } else if reason.chars().count() > max {
        Err(format!("The reason is too long: at most {max} characters."))
    } else {
        Ok(reason.to_string())
    }
}

/// Erases the contact from the student (the confirmation page's form).
pub async fn erase(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let item = linked_contact(&state, &session, &student, &contact).await?;
    let raw = sent.get(REASON).cloned().unwrap_or_default();
    let reason = match erase_reason(&raw) {
        Ok(reason) => reason,
        Err(why) => {
            let mut form = erase_form(&session, &student, &contact);
            if let Some(field) = form.field_mut(REASON) {
                field.value = raw;
                field.error = Some(why);
            }
            let page = erase_page(&session, &student, &item, form);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let contact_id = crate::web::id_param(&contact)?;
    let actor = session.principal.actor();
    erase::erase(
        &state.db,
        EraseRequest {
            tenant: session.principal.tenant,
            student_source_id: &student,
            contact_id: Some(contact_id),
            actor: &actor,
            reason: Some(reason),
            privacy: &state.privacy,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("{}?erased=1", student_href(&student))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_the_source_id() {
        assert_eq!(student_href("stu-1"), "/admin/students/stu-1");
        assert_eq!(student_href("a/b c"), "/admin/students/a%2Fb%20c");
        assert_eq!(
            erase_href("stu 1", "7"),
            "/admin/students/stu%201/contacts/7/erase"
        );
    }

    #[test]
    fn an_erase_needs_a_reason() {
        assert!(erase_reason("   ").is_err());
        assert_eq!(erase_reason(" moved away "), Ok("moved away".into()));
        assert!(erase_reason(&"x".repeat(1001)).is_err());
    }
}
