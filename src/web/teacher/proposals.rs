//! Proposals of a change to a student's parents and guardians, as `POST
//! /api/v1/students/{id}/contact-requests` makes them (same policy, same parser, same
//! service; nothing changes until an administrator approves):
//! - `GET|POST /teacher/students/{id}/proposals/new`: a new parent or guardian;
//! - `GET|POST /teacher/students/{id}/contacts/{contact}/change`: a change (the form holds
//!   the current values; only the fields that differ are proposed, an emptied field is
//!   proposed cleared), with the removal form under it;
//! - `POST /teacher/students/{id}/contacts/{contact}/removal`: a removal.
//!
//! Every field is read with the domain's parser (email, E.164 phone for the tenant's
//! region, relationship from SDS's list); each bad field comes back with its error next to
//! it and nothing stored. A stored proposal leads to `/teacher/requests?sent=1`.

use super::students::{student_name, visible_contacts};
use super::{encode, student_href, teacher};
use crate::api::AppState;
use crate::approvals::requests::{self, Submission};
use crate::approvals::{ApprovalError, ContactBody, Proposal, RequestBody};
use crate::auth::policy;
use crate::contacts::ContactItem;
use crate::domain::{Region, Relationship};
use crate::tenants;
use crate::web::error::EDITS_OFF;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

/// Where a stored proposal leads.
const SENT: &str = "/teacher/requests?sent=1";

/// The form fields and the proposal fields they fill.
const FIELDS: [(&str, &str); 5] = [
    ("given-name", "contact.givenName"),
    ("family-name", "contact.familyName"),
    ("email", "contact.emailAddress"),
    ("mobile-phone", "contact.mobilePhone"),
    ("relationship", "contact.relationship"),
];

/// The removal form under a change form.
struct Removal {
    action: String,
    name: String,
}

/// A proposal form.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/proposal.html")]
struct ProposalPage {
    title: String,
    layout: Layout,
    student: String,
    student_href: String,
    intro: String,
    form: Form,
    problem: Option<String>,
    submit: &'static str,
    removal: Option<Removal>,
    /// The retry key of the form.
    key: String,
    /// The retry key of the removal form.
    removal_key: String,
}

/// The contact form's fields, empty.
fn fields() -> Vec<Field> {
    let relationships = Relationship::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), capitalised(r.as_str())))
        .collect();
    vec![
        Field::new("given-name", "Given name", Control::Text),
        Field::new("family-name", "Family name", Control::Text),
        Field::new("email", "Email address", Control::Text).hint("For example name@example.com."),
        Field::new("mobile-phone", "Mobile phone", Control::Text).hint(
            "A national number of the district's country, or an international one starting with +.",
        ),
        Field::new(
            "relationship",
            "Relationship",
            Control::Select(relationships),
        )
        .hint("Only parents and guardians appear on the teacher pages."),
    ]
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The current values of `contact`, in form order.
fn current_values(contact: &ContactItem) -> [String; 5] {
    [
        contact.given_name.clone().unwrap_or_default(),
        contact.family_name.clone().unwrap_or_default(),
        contact.email_address.clone().unwrap_or_default(),
        contact.mobile_phone.clone().unwrap_or_default(),
        contact.relationship.clone(),
    ]
}

/// A form for `action` filled with `values` (form order).
fn form(session: &WebSession, action: String, values: &[String; 5]) -> Form {
    Form {
        action,
        csrf: session.csrf.clone(),
        fields: fields()
            .into_iter()
            .zip(values.iter())
            .map(|(field, value)| field.value(value.clone()))
            .collect(),
    }
}

/// The values a form sent, in form order (missing ones empty).
fn sent_values(sent: &HashMap<String, String>) -> [String; 5] {
    FIELDS.map(|(name, _)| sent.get(name).cloned().unwrap_or_default())
}

/// Puts `value` into the proposal field named `field` of `contact`.
fn set(contact: &mut ContactBody, field: &str, value: Option<String>) {
    match field {
        "contact.givenName" => contact.given_name = value,
        "contact.familyName" => contact.family_name = value,
        "contact.emailAddress" => contact.email_address = value,
        "contact.mobilePhone" => contact.mobile_phone = value,
        _ => contact.relationship = value,
    }
}

/// What a form's values propose: for an add every filled field; for a change (`current`)
/// only the fields that differ from the current values, an emptied one as `""` (clear).
fn contact_body(values: &[String; 5], current: Option<&[String; 5]>) -> ContactBody {
    let mut contact = ContactBody::default();
    for (i, (_, field)) in FIELDS.iter().enumerate() {
        let value = values[i].trim();
        let proposed = match current {
            None => (!value.is_empty()).then(|| value.to_string()),
            Some(now) => (value != now[i].trim()).then(|| value.to_string()),
        };
        set(&mut contact, field, proposed);
    }
    contact
}

/// Why a proposal cannot be stored: errors for form fields, or one for the whole form.
#[derive(Debug, Default)]
struct Problems {
    fields: Vec<(&'static str, String)>,
    form: Option<String>,
}

/// Parses `body` with the domain's parser and collects every bad field: the parser stops
/// at the first, so each bad field is noted and left out and the rest parsed again.
fn parse_all(mut body: RequestBody, region: Region) -> Result<Proposal, Problems> {
    let mut problems = Problems::default();
    loop {
        match Proposal::parse(&body, region) {
            Ok(proposal) if problems.fields.is_empty() => return Ok(proposal),
            Ok(_) => return Err(problems),
            Err(ApprovalError::InvalidField { field, message }) => {
                let known = FIELDS.iter().find(|(_, f)| *f == field);
                match known {
                    Some((name, _)) if !problems.fields.iter().any(|(n, _)| n == name) => {
                        problems.fields.push((name, sentence(&message)));
                        if let Some(contact) = body.contact.as_mut() {
                            set(contact, &field, None);
                        }
                    }
                    Some(_) => return Err(problems),
                    None if problems.fields.is_empty() => {
                        problems.form = Some(match field.as_str() {
                            "contact" => {
                                "Change at least one field, or go back to the student.".into()
                            }
                            _ => sentence(&message),
                        });
                        return Err(problems);
                    }
                    None => return Err(problems),
                }
            }
            Err(other) => {
                problems.form = Some(other.to_string());
                return Err(problems);
            }
        }
    }
}

/// A parser message as a sentence.
fn sentence(message: &str) -> String {
    let mut text = capitalised(message.trim());
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// The tenant's phone region, or the 403 page when teacher edits are off.
async fn region_if_allowed(state: &AppState, session: &WebSession) -> Result<Region, PageError> {
    let tenant = tenants::find_by_id(&state.db, session.principal.tenant).await?;
    if !tenant.settings.update_parent_information {
        return Err(PageError::Forbidden(EDITS_OFF));
    }
    Ok(tenant.region)
}

/// The teacher may propose for `student` (404 when out of reach, 403 with edits off).
async fn allowed(
    state: &AppState,
    session: &WebSession,
    student: &str,
) -> Result<(String, Region), PageError> {
    let me = teacher(session)?;
    let teacher = policy::submit_contact_request(&state.db, &me, student).await?;
    Ok((teacher, region_if_allowed(state, session).await?))
}

/// The contact `contact` of `student` as the teacher sees it (404 otherwise).
async fn visible_contact(
    state: &AppState,
    session: &WebSession,
    student: &str,
    contact: &str,
) -> Result<ContactItem, PageError> {
    visible_contacts(state, session, student)
        .await?
        .into_iter()
        .find(|c| c.id == contact)
        .ok_or(PageError::NotFound)
}

/// The page around `form`.
async fn page(
    state: &AppState,
    session: &WebSession,
    student: &str,
    form: Form,
    contact: Option<&ContactItem>,
) -> Result<ProposalPage, PageError> {
    let name = student_name(state, session, student).await?;
    let href = student_href(student);
    let (title, intro, submit, removal) = match contact {
        None => (
            format!("Propose a new parent or guardian for {name}"),
            "Give an email address or a mobile phone. An administrator reviews the proposal before anything changes.".to_string(),
            "Send proposal",
            None,
        ),
        Some(c) => (
            format!("Propose a change to {}", c.display_name),
            format!(
                "Change the fields that are wrong; empty a field to propose removing its value. An administrator reviews the proposal before anything changes for {name}."
            ),
            "Send proposal",
            Some(Removal {
                action: format!("{href}/contacts/{}/removal", encode(&c.id)),
                name: c.display_name.clone(),
            }),
        ),
    };
    Ok(ProposalPage {
        title,
        layout: Layout::new(session, "/teacher/classes"),
        student: name,
        student_href: href,
        intro,
        form,
        problem: None,
        submit,
        removal,
        key: fresh_key(),
        removal_key: fresh_key(),
    })
}

/// A sent proposal form: whose, the form as sent, and its retry key.
struct Attempt<'a> {
    student: &'a str,
    form: Form,
    contact: Option<&'a ContactItem>,
    /// The form's `key` (the submission's idempotency key): a second press of the button,
    /// or the page sent again, stores nothing new.
    key: Option<String>,
}

/// Stores `body` as the teacher's proposal, or shows the form again with its problems.
async fn submit(
    state: &AppState,
    session: &WebSession,
    (teacher, region): (String, Region),
    body: RequestBody,
    mut attempt: Attempt<'_>,
) -> Result<Response, PageError> {
    let proposal = match parse_all(body, region) {
        Ok(proposal) => proposal,
        Err(problems) => return again(state, session, attempt, problems).await,
    };
    let actor = session.principal.actor();
    let stored = requests::submit(
        &state.db,
        Submission {
            tenant: session.principal.tenant,
            student_source_id: attempt.student,
            requested_by: &teacher,
            actor: &actor,
            idempotency_key: attempt.key.as_deref(),
            proposal,
        },
    )
    .await;
    let problem = match stored {
        Ok(_) => return Ok(Redirect::to(SENT).into_response()),
        Err(ApprovalError::NoChange) => {
            "This proposal changes nothing: the values are the same as now."
        }
        Err(ApprovalError::IdempotencyKeyReused) => {
            attempt.key = None;
            "This form was sent already. Check My requests; to propose something else, send this form again."
        }
        Err(e) => return Err(e.into()),
    };
    attempt.form.fields.iter_mut().for_each(|f| f.error = None);
    let problems = Problems {
        form: Some(problem.into()),
        ..Default::default()
    };
    again(state, session, attempt, problems).await
}

/// The form again, 422, with its problems next to the fields (and its key, when it was not
/// used yet).
async fn again(
    state: &AppState,
    session: &WebSession,
    attempt: Attempt<'_>,
    problems: Problems,
) -> Result<Response, PageError> {
    let Attempt {
        student,
        mut form,
        contact,
        key,
    } = attempt;
    for (name, message) in problems.fields {
        if let Some(field) = form.field_mut(name) {
            field.error = Some(message);
        }
    }
    let mut page = page(state, session, student, form, contact).await?;
    page.problem = problems.form;
    if let Some(key) = key {
        page.key = key;
    }
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The `key` a form sent, when it is one a page made.
fn sent_key(sent: &HashMap<String, String>, name: &str) -> Option<String> {
    sent.get(name)
        .map(|k| k.trim())
        .filter(|k| !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
}

/// A fresh retry key for a form.
fn fresh_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn csrf(sent: &HashMap<String, String>) -> &str {
    sent.get("csrf").map(String::as_str).unwrap_or("")
}

/// `GET /teacher/students/{id}/proposals/new`.
pub async fn new_contact(
    State(state): State<AppState>,
    session: WebSession,
    Path(student): Path<String>,
) -> Result<Response, PageError> {
    allowed(&state, &session, &student).await?;
    let mut values: [String; 5] = Default::default();
    values[4] = Relationship::Parent.as_str().into();
    let action = format!("{}/proposals/new", student_href(&student));
    let form = form(&session, action, &values);
    Ok(page(&state, &session, &student, form, None)
        .await?
        .into_response())
}

/// `POST /teacher/students/{id}/proposals/new`.
pub async fn propose_add(
    State(state): State<AppState>,
    session: WebSession,
    Path(student): Path<String>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(csrf(&sent))?;
    let allowed = allowed(&state, &session, &student).await?;
    let values = sent_values(&sent);
    let body = RequestBody {
        action: "add".into(),
        contact_id: None,
        contact: Some(contact_body(&values, None)),
    };
    let action = format!("{}/proposals/new", student_href(&student));
    let attempt = Attempt {
        student: &student,
        form: form(&session, action, &values),
        contact: None,
        key: sent_key(&sent, "key"),
    };
    submit(&state, &session, allowed, body, attempt).await
}

/// `GET /teacher/students/{id}/contacts/{contact}/change`.
pub async fn change(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
) -> Result<Response, PageError> {
    allowed(&state, &session, &student).await?;
    let item = visible_contact(&state, &session, &student, &contact).await?;
    let action = format!(
        "{}/contacts/{}/change",
        student_href(&student),
        encode(&item.id)
    );
    let form = form(&session, action, &current_values(&item));
    Ok(page(&state, &session, &student, form, Some(&item))
        .await?
        .into_response())
}

/// `POST /teacher/students/{id}/contacts/{contact}/change`.
pub async fn propose_change(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(csrf(&sent))?;
    let allowed = allowed(&state, &session, &student).await?;
    let item = visible_contact(&state, &session, &student, &contact).await?;
    let values = sent_values(&sent);
    let body = RequestBody {
        action: "update".into(),
        contact_id: Some(item.id.clone()),
        contact: Some(contact_body(&values, Some(&current_values(&item)))),
    };
    let action = format!(
        "{}/contacts/{}/change",
        student_href(&student),
        encode(&item.id)
    );
    let attempt = Attempt {
        student: &student,
        form: form(&session, action, &values),
        contact: Some(&item),
        key: sent_key(&sent, "key"),
    };
    submit(&state, &session, allowed, body, attempt).await
}

/// `POST /teacher/students/{id}/contacts/{contact}/removal`.
pub async fn propose_removal(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(csrf(&sent))?;
    let allowed = allowed(&state, &session, &student).await?;
    let item = visible_contact(&state, &session, &student, &contact).await?;
    let body = RequestBody {
        action: "remove".into(),
        contact_id: Some(item.id.clone()),
        contact: None,
    };
    let action = format!(
        "{}/contacts/{}/change",
        student_href(&student),
        encode(&item.id)
    );
    let attempt = Attempt {
        student: &student,
        form: form(&session, action, &current_values(&item)),
        contact: Some(&item),
        key: sent_key(&sent, "key"),
    };
    submit(&state, &session, allowed, body, attempt).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(values: [&str; 5]) -> RequestBody {
        RequestBody {
            action: "add".into(),
            contact_id: None,
            contact: Some(contact_body(&values.map(String::from), None)),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let problems = parse_all(
            add(["Ana", "", "not-an-email", "555-12", "uncle"]),
            Region::default(),
        )
        .unwrap_err();
        let names: Vec<_> = problems.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["relationship", "email", "mobile-phone"]);
        assert!(problems.fields[0].1.ends_with('.'));
    }

    #[test]
    fn a_new_contact_needs_a_way_to_reach_them() {
        let problems =
            parse_all(add(["Ana", "", "", "", "parent"]), Region::default()).unwrap_err();
        assert_eq!(problems.fields.len(), 1);
        assert_eq!(problems.fields[0].0, "email");
    }

    #[test]
    fn a_change_proposes_only_what_differs() {
        let now = ["Ana", "Ng", "a@example.com", "+12025550143", "parent"].map(String::from);
        let sent = ["Ana", "", "b@example.com", "+12025550143", "parent"].map(String::from);
        let body = contact_body(&sent, Some(&now));
        assert_eq!(body.given_name, None);
        assert_eq!(body.family_name.as_deref(), Some(""));
        assert_eq!(body.email_address.as_deref(), Some("b@example.com"));
        assert_eq!(body.mobile_phone, None);
        let unchanged = RequestBody {
            action: "update".into(),
            contact_id: Some("1".into()),
            contact: Some(contact_body(&now, Some(&now))),
        };
        let problems = parse_all(unchanged, Region::default()).unwrap_err();
        assert!(problems.fields.is_empty());
        assert!(
            problems
                .form
                .unwrap()
                .starts_with("Change at least one field")
        );
    }
}
