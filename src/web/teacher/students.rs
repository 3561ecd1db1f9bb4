//! `GET /teacher/students/{id}`: a student's active parents and guardians (exactly the
//! teacher view of `GET /api/v1/students/{id}/contacts`), the links to propose a change,
//! a removal or a new contact (when the tenant's "teacher edits" setting is on), and "Start
//! a chat"; `POST /teacher/students/{id}/chats` starts it (as `POST /api/v1/chats`) and
//! opens the chat's page.

use super::{encode, student_href, teacher};
use crate::api::AppState;
use crate::auth::policy;
use crate::chats::ChatError;
use crate::chats::store::{self, StartChat};
use crate::contacts::{self, ContactItem};
use crate::domain::display_name;
use crate::roster;
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

/// One parent or guardian of the student.
struct ContactRow {
    name: String,
    relationship: String,
    email: String,
    phone: String,
    change_href: String,
}

/// The student's page.
#[derive(Template, WebTemplate)]
#[template(path = "web/teacher/student.html")]
struct StudentPage {
    title: String,
    layout: Layout,
    contacts: Vec<ContactRow>,
    edits_on: bool,
    edits_off: &'static str,
    add_href: String,
    chat: Form,
}

/// The student's name to show.
pub(super) async fn student_name(
    state: &AppState,
    session: &WebSession,
    student: &str,
) -> Result<String, PageError> {
    let (given, family) = roster::find_student(&state.db, session.principal.tenant, student)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(display_name(
        given.as_deref(),
        family.as_deref(),
        Some(student),
        None,
    ))
}

/// The student's parents and guardians as the teacher sees them (404 when out of reach).
pub(super) async fn visible_contacts(
    state: &AppState,
    session: &WebSession,
    student: &str,
) -> Result<Vec<ContactItem>, PageError> {
    let me = teacher(session)?;
    let scope = policy::student_contacts(&me)?;
    Ok(contacts::for_student(&state.db, session.principal.tenant, student, &scope).await?)
}

/// True when the tenant lets teachers propose contact edits.
pub(super) async fn edits_on(state: &AppState, session: &WebSession) -> Result<bool, PageError> {
    let tenant = tenants::find_by_id(&state.db, session.principal.tenant).await?;
    Ok(tenant.settings.update_parent_information)
}

/// The "Start a chat" form: a checkbox per parent or guardian.
fn chat_form(session: &WebSession, student: &str, contacts: &[ContactItem]) -> Form {
    let field = Field::new(
        "contact",
        "Start a chat with",
        Control::Checkboxes(
            contacts
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        format!("{} ({})", c.display_name, c.relationship),
                    )
                })
                .collect(),
        ),
    )
    .hint("Each one you choose gets an invitation by email or text message.");
    Form {
        action: format!("{}/chats", student_href(student)),
        csrf: session.csrf.clone(),
        fields: vec![field],
    }
}

/// The page, with the chat form as given (its choices and error kept).
async fn page(
    state: &AppState,
    session: &WebSession,
    student: &str,
    chat: Option<Field>,
) -> Result<StudentPage, PageError> {
    teacher(session)?;
    let contacts = visible_contacts(state, session, student).await?;
    let mut form = chat_form(session, student, &contacts);
    if let Some(field) = chat {
        form.fields[0].value = field.value;
        form.fields[0].error = field.error;
    }
    let href = student_href(student);
    Ok(StudentPage {
        title: student_name(state, session, student).await?,
        layout: Layout::new(session, "/teacher/classes"),
        edits_on: edits_on(state, session).await?,
        edits_off: EDITS_OFF,
        add_href: format!("{href}/proposals/new"),
        contacts: contacts
            .into_iter()
            .map(|c| ContactRow {
                change_href: format!("{href}/contacts/{}/change", encode(&c.id)),
                name: c.display_name,
                relationship: c.relationship,
                email: c.email_address.unwrap_or_default(),
                phone: c.mobile_phone.unwrap_or_default(),
            })
            .collect(),
        chat: form,
    })
}

/// `GET /teacher/students/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Path(student): Path<String>,
) -> Result<Response, PageError> {
    Ok(page(&state, &session, &student, None)
        .await?
        .into_response())
}

/// Why the chosen guardians cannot start a chat, for the person who chose them.
fn chat_problem(error: ChatError) -> Result<String, PageError> {
    Ok(match error {
        ChatError::NoMembers => "Choose at least one parent or guardian.".into(),
        ChatError::InvalidMembers(invalid) => format!(
            "These cannot be in a chat about this student: {}.",
            invalid
                .iter()
                .map(|m| format!("contact {} ({})", m.contact_id, m.reason.replace('_', " ")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ChatError::ContactBlocked(_) => {
            "A parent or guardian you chose is on your block list. Unblock them on My blocks first."
                .into()
        }
        other => return Err(other.into()),
    })
}

/// `POST /teacher/students/{id}/chats`: starts (or re-enters) the teacher's chat with the
/// chosen guardians and opens it; a choice that cannot work comes back next to the boxes.
pub async fn start_chat(
    State(state): State<AppState>,
    session: WebSession,
    Path(student): Path<String>,
    axum::Form(sent): axum::Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let csrf = sent
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    session.check_csrf(csrf.unwrap_or(""))?;
    let me = teacher(&session)?;
    let owner = policy::start_chat(&state.db, &me, &student).await?;
    let chosen: Vec<String> = sent
        .iter()
        .filter(|(k, _)| k == "contact")
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let started = store::start(
        &state.db,
        StartChat {
            sms: crate::outbox::consent::OptOuts::texting(&state.config, &state.privacy),
            tenant: session.principal.tenant,
            owner: &owner,
            student_source_id: &student,
            contact_ids: &chosen,
            teacher_ids: &[],
        },
    )
    .await;
    match started {
        Ok(chat) => {
            Ok(Redirect::to(&format!("/teacher/chats/{}?started=1", chat.id)).into_response())
        }
        Err(error) => {
            let mut field = Field::new("contact", "", Control::Text).value(chosen.join(" "));
            field.error = Some(chat_problem(error)?);
            let page = page(&state, &session, &student, Some(field)).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}
