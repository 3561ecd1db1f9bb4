//! Restricting one contact about one student from the admin pages (docs/restrictions.md),
//! with no script: `GET /admin/students/{id}/contacts/{contact}/restrict` asks for the
//! required **Reason** and an optional **Restricted until** date; its `POST` restricts
//! through the same service as `POST /api/v1/students/{s}/contacts/{c}/restriction`
//! (audited by it) and answers `303` to the student's page, which shows the restriction on
//! the contact with a **Lift restriction** button (`POST
//! /admin/students/{id}/contacts/{contact}/restriction/lift`) and in its history.

use super::students::{encode, linked_contact, student_href};
use crate::api::AppState;
use crate::contacts::ContactItem;
use crate::domain::{Reason, TimeZoneName};
use crate::restrictions::{self, RestrictRequest};
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

const REASON: &str = "reason";
const UNTIL: &str = "until";

/// The restrict page of `contact` about `student`.
pub fn restrict_href(student: &str, contact: &str) -> String {
    format!(
        "{}/contacts/{}/restrict",
        student_href(student),
        encode(contact)
    )
}

/// Where the student page's **Lift restriction** button posts.
pub fn lift_href(student: &str, contact: &str) -> String {
    format!(
        "{}/contacts/{}/restriction/lift",
        student_href(student),
        encode(contact)
    )
}

/// The restrict page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/restrict.html")]
struct RestrictPage {
    title: String,
    layout: Layout,
    name: String,
    student: String,
    student_href: String,
    form: Form,
}

fn restrict_form(session: &WebSession, student: &str, contact: &str, zone: TimeZoneName) -> Form {
    Form {
        action: restrict_href(student, contact),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new(REASON, "Reason", Control::TextArea).hint(
                "Why, e.g. the court order or custody arrangement (required; seen by administrators only, kept with the restriction and in the audit log).",
            ),
            Field::new(UNTIL, "Restricted until (optional)", Control::Date).hint(&format!(
                "The restriction ends at the start of this day ({}). Leave empty for no end date.",
                zone.name()
            )),
        ],
    }
}

fn restrict_page(
    session: &WebSession,
    student: &str,
    contact: &ContactItem,
    form: Form,
) -> RestrictPage {
    RestrictPage {
        title: format!("Restrict {}?", contact.display_name),
        layout: Layout::new(session, &student_href(student)),
        name: contact.display_name.clone(),
        student: student.to_string(),
        student_href: student_href(student),
        form,
    }
}

/// The tenant's time zone (restriction dates are its days).
async fn zone(state: &AppState, session: &WebSession) -> Result<TimeZoneName, PageError> {
    let settings = crate::tenants::settings::load(&state.db, session.principal.tenant)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(settings.digest_time_zone)
}

/// Asks for the reason and the optional end of a restriction.
pub async fn confirm(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let item = linked_contact(&state, &session, &student, &contact).await?;
    let form = restrict_form(&session, &student, &contact, zone(&state, &session).await?);
    Ok(restrict_page(&session, &student, &item, form).into_response())
}

/// The form's fields as the service takes them, or the form with each error by its field.
fn read(
    mut form: Form,
    sent: &HashMap<String, String>,
    zone: TimeZoneName,
) -> Result<(Reason, Option<chrono::DateTime<chrono::Utc>>), Form> {
    let raw_reason = sent.get(REASON).cloned().unwrap_or_default();
    let raw_until = sent.get(UNTIL).cloned().unwrap_or_default();
    let reason = Reason::parse(&raw_reason).map_err(|e| match e {
        crate::domain::ReasonError::Empty => {
            "Give a reason: it is kept with the restriction.".to_string()
        }
        other => format!("The reason {other}."),
    });
    let until = restrictions::parse_until(&raw_until, zone).and_then(|until| match until {
        Some(at) if at <= chrono::Utc::now() => Err("Choose a day after today.".to_string()),
        other => Ok(other),
    });
    if let Some(field) = form.field_mut(REASON) {
        field.value = raw_reason;
        field.error = reason.as_ref().err().cloned();
    }
    if let Some(field) = form.field_mut(UNTIL) {
        field.value = raw_until;
        field.error = until.as_ref().err().cloned();
    }
    match (reason, until) {
        (Ok(reason), Ok(until)) => Ok((reason, until)),
        _ => Err(form),
    }
}

/// Restricts the contact about the student (the restrict page's form).
pub async fn restrict(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    let item = linked_contact(&state, &session, &student, &contact).await?;
    let zone = zone(&state, &session).await?;
    let form = restrict_form(&session, &student, &contact, zone);
    let (reason, until) = match read(form, &sent, zone) {
        Ok(fields) => fields,
        Err(form) => {
            let page = restrict_page(&session, &student, &item, form);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let actor = session.principal.actor();
    restrictions::restrict(
        &state.db,
        RestrictRequest {
            tenant: session.principal.tenant,
            student_source_id: &student,
            contact_id: crate::web::id_param(&contact)?,
            actor: &actor,
            reason,
            until,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("{}?restricted=1", student_href(&student))).into_response())
}

/// Lifts the contact's restriction about the student (the student page's button).
pub async fn lift(
    State(state): State<AppState>,
    session: WebSession,
    Path((student, contact)): Path<(String, String)>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    linked_contact(&state, &session, &student, &contact).await?;
    let actor = session.principal.actor();
    restrictions::lift(
        &state.db,
        session.principal.tenant,
        &student,
        crate::web::id_param(&contact)?,
        &actor,
    )
    .await?;
    Ok(Redirect::to(&format!("{}?lifted=1", student_href(&student))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_the_ids() {
        assert_eq!(
            restrict_href("stu 1", "7"),
            "/admin/students/stu%201/contacts/7/restrict"
        );
        assert_eq!(
            lift_href("stu-1", "7"),
            "/admin/students/stu-1/contacts/7/restriction/lift"
        );
    }
}
