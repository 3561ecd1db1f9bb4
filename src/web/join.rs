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
use crate::i18n::Arg;
use crate::invites::join::{self, Accepted, JoinView};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;

/// The invitation page, in the guardian's language.
#[derive(Template, WebTemplate)]
#[template(path = "web/join.html")]
struct JoinPage {
    title: String,
    lang: &'static str,
    skip: String,
    hello: String,
    invited: String,
    valid_until: String,
    accept: String,
    go: String,
    ignore: String,
    action: String,
    /// Accepted before: the page offers to go to the guardian's page instead.
    already: bool,
}

impl JoinPage {
    fn new(view: &JoinView, token: &str) -> Self {
        let l = view.locale;
        let already = view.state == InvitationState::Accepted;
        let about = [
            ("teacher", Arg::Text(&view.teacher)),
            ("student", Arg::Text(&view.student)),
            ("district", Arg::Text(&view.district)),
        ];
        let zone = chrono_tz::UTC;
        Self {
            title: l.text(if already {
                "join-title-accepted"
            } else {
                "join-title"
            }),
            lang: l.tag(),
            skip: l.text("skip-to-content"),
            hello: l.format("join-hello", &[("guardian", Arg::Text(&view.guardian))]),
            invited: l.format(
                if already {
                    "join-already"
                } else {
                    "join-invited"
                },
                &about,
            ),
            valid_until: l.format(
                "join-valid-until",
                &[("date", Arg::Text(&l.long_date(view.expires_at, zone)))],
            ),
            accept: l.text("join-accept"),
            go: l.text("join-go"),
            ignore: l.text("join-ignore"),
            action: format!("/join/{token}"),
            already,
        }
    }
}

/// A token no invitation has: nothing says whose language to use.
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
    let l = view.locale;
    let (title, line) = if view.state == InvitationState::Cancelled {
        ("join-cancelled-title", "join-cancelled")
    } else {
        ("join-expired-title", "join-expired")
    };
    Notice::new(l.text(title), &[&l.text(line)])
        .in_language(l)
        .with_status(StatusCode::GONE)
}

fn accepted(view: &JoinView, now: bool, signed_in: Option<SessionCookie>) -> Response {
    let l = view.locale;
    let first = l.format(
        "join-accepted",
        &[
            ("teacher", Arg::Text(&view.teacher)),
            ("student", Arg::Text(&view.student)),
        ],
    );
    let title = l.text(if now {
        "join-joined-title"
    } else {
        "join-title-accepted"
    });
    let notice = Notice::new(title, &[&first, &l.text("join-reachable")]).in_language(l);
    match signed_in {
        Some(cookie) => (
            StatusCode::OK,
            cookie,
            notice.with_link("/guardian", &l.text("join-go")),
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
            _ => JoinPage::new(&view, &token).into_response(),
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
