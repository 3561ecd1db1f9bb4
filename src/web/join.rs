//! `GET /join/{token}`: who invited the guardian, about which child, and an **Accept**
//! button; `POST /join/{token}` accepts ([`crate::invites::join`]). Unknown token: 404;
//! expired or cancelled invitation: 410 Gone; accepted already: 200 with a note.

use super::{Notice, internal};
use crate::api::AppState;
use crate::domain::InvitationState;
use crate::invites::join::{self, Accepted, JoinView};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The invitation page.
#[derive(Template, WebTemplate)]
#[template(path = "web/join.html")]
struct JoinPage {
    title: String,
    guardian: String,
    teacher: String,
    student: String,
    district: String,
    expires: String,
    action: String,
}

fn unknown() -> Response {
    Notice::new(
        "Invitation not found",
        &[
            "This invitation link is not valid. Check that you opened the whole link from the message, or ask the teacher to invite you again.",
        ],
    )
    .with_status(StatusCode::NOT_FOUND)
}

fn gone(view: &JoinView) -> Response {
    let line = if view.state == InvitationState::Cancelled {
        "This invitation was cancelled: the school's records no longer list you as a contact of this student. If you think this is a mistake, contact the school."
    } else {
        "This invitation has expired. Ask the teacher to send you a new one."
    };
    let title = if view.state == InvitationState::Cancelled {
        "Invitation cancelled"
    } else {
        "Invitation expired"
    };
    Notice::new(title, &[line]).with_status(StatusCode::GONE)
}

fn accepted(view: &JoinView, now: bool) -> Response {
    let first = format!(
        "You accepted {}'s invitation to chat about {}.",
        view.teacher, view.student
    );
    let title = if now {
        "You joined Parent Connection"
    } else {
        "Invitation already accepted"
    };
    Notice {
        title: title.into(),
        lines: vec![
            first,
            "The teacher can now reach you in Parent Connection.".into(),
        ],
        link: None,
    }
    .with_status(StatusCode::OK)
}

/// Shows the invitation behind `token`.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match join::find(&state.db, &token, chrono::Utc::now()).await {
        Ok(None) => unknown(),
        Ok(Some(view)) => match view.state {
            InvitationState::Accepted => accepted(&view, false),
            InvitationState::Expired | InvitationState::Cancelled => gone(&view),
            _ => JoinPage {
                title: "Join Parent Connection".into(),
                guardian: view.guardian.clone(),
                teacher: view.teacher.clone(),
                student: view.student.clone(),
                district: view.district.clone(),
                expires: view.expires_at.format("%B %-d, %Y").to_string(),
                action: format!("/join/{token}"),
            }
            .into_response(),
        },
        Err(e) => internal(e),
    }
}

/// Accepts the invitation behind `token`.
pub async fn accept(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match join::accept(&state.db, &token).await {
        Ok(Accepted::Now(view)) => accepted(&view, true),
        Ok(Accepted::Already(view)) => accepted(&view, false),
        Ok(Accepted::Gone(view)) => gone(&view),
        Ok(Accepted::Unknown) => unknown(),
        Err(e) => internal(e),
    }
}
