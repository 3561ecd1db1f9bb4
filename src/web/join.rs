//! `GET /join/{token}`: who invited the guardian, about which child, and an **Accept**
//! button; `POST /join/{token}` accepts ([`crate::invites::join`]). Unknown token: 404;
//! expired or cancelled invitation: 410 Gone; accepted already: 200 with a note and a
//! **Go to your page** button.
//!
//! Accepting signs the guardian in (the token is their credential): `POST` of an invitation
//! accepted now or before opens a page session (`join`) and the answer links to
//! `/guardian`. A post another site made the browser send (`Sec-Fetch-Site: cross-site` or
//! `same-site`) still accepts, but opens no session: no site can sign a visitor in as
//! someone else.

use super::session::{self, SessionCookie};
use super::{Notice, internal};
use crate::api::AppState;
use crate::auth::{Identity, Principal, Via};
use crate::domain::InvitationState;
use crate::invites::join::{self, Accepted, JoinView};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;

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
    /// Accepted before: the page offers to go to the guardian's page instead.
    already: bool,
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

fn accepted(view: &JoinView, now: bool, signed_in: Option<SessionCookie>) -> Response {
    let first = format!(
        "You accepted {}'s invitation to chat about {}.",
        view.teacher, view.student
    );
    let title = if now {
        "You joined Parent Connection"
    } else {
        "Invitation already accepted"
    };
    let notice = Notice {
        title: title.into(),
        lines: vec![
            first,
            "The teacher can now reach you in Parent Connection.".into(),
        ],
        link: None,
    };
    match signed_in {
        Some(cookie) => (
            StatusCode::OK,
            cookie,
            notice.with_link("/guardian", "Go to your page"),
        )
            .into_response(),
        None => notice.with_status(StatusCode::OK),
    }
}

/// True when another site made the browser send this request (Fetch Metadata).
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| {
            site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
        })
}

/// Opens a page session for the invitation's guardian (see the module docs).
async fn sign_in(state: &AppState, view: &JoinView) -> Result<SessionCookie, DbErr> {
    let tenant = crate::tenants::find_by_id(&state.db, view.tenant)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let principal = Principal {
        tenant: view.tenant,
        tenant_slug: tenant.slug,
        identity: Identity::Contact {
            contact_id: view.contact.to_string(),
        },
        via: Via::Web,
    };
    session::start(state, &principal, "join").await
}

/// Shows the invitation behind `token`.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match join::find(&state.db, &token, chrono::Utc::now()).await {
        Ok(None) => unknown(),
        Ok(Some(view)) => match view.state {
            InvitationState::Expired | InvitationState::Cancelled => gone(&view),
            state => JoinPage {
                title: if state == InvitationState::Accepted {
                    "Invitation already accepted".into()
                } else {
                    "Join Parent Connection".into()
                },
                guardian: view.guardian.clone(),
                teacher: view.teacher.clone(),
                student: view.student.clone(),
                district: view.district.clone(),
                expires: view.expires_at.format("%B %-d, %Y").to_string(),
                action: format!("/join/{token}"),
                already: state == InvitationState::Accepted,
            }
            .into_response(),
        },
        Err(e) => internal(e),
    }
}

/// Accepts the invitation behind `token` and signs its guardian in.
pub async fn accept(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (view, now) = match join::accept(&state.db, &token).await {
        Ok(Accepted::Now(view)) => (view, true),
        Ok(Accepted::Already(view)) => (view, false),
        Ok(Accepted::Gone(view)) => return gone(&view),
        Ok(Accepted::Unknown) => return unknown(),
        Err(e) => return internal(e),
    };
    if from_another_site(&headers) {
        return accepted(&view, now, None);
    }
    match sign_in(&state, &view).await {
        Ok(cookie) => accepted(&view, now, Some(cookie)),
        Err(e) => internal(e),
    }
}
