//! `/admin/outbox`: what the outbox holds (counts per status, capped like the API's), the
//! dead and failed messages with their last error and a **Requeue** button, the suppressed
//! email addresses (a bounce) with **Lift**, and the guardians unsubscribed from the digest
//! with **Lift**, and the text messages waiting for the quiet hours to end with the time each
//! goes and **Send now (urgent)** for an invitation — the same policy, services and audit as
//! `/api/v1/outbox`, `/api/v1/email-suppressions`, `/api/v1/digest/unsubscribes` and
//! `/api/v1/invitations/{id}/urgent`.

use crate::api::AppState;
use crate::auth::policy;
use crate::digest::unsubscribe::{self, Unsubscribe};
use crate::outbox::store::{self as outbox, DeadLetter, HeldMessage, Suppression};
use crate::web::error::PageError;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use crate::web::{id_cursor as cursor, id_param as id};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

const PATH: &str = "/admin/outbox";
/// Rows per page of each list.
const PER_PAGE: u64 = 25;

/// The outbox page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/outbox.html")]
struct OutboxPage {
    title: String,
    layout: Layout,
    counts: Vec<(String, String)>,
    dead_letters: Vec<DeadLetter>,
    held: Vec<HeldMessage>,
    /// `None` when the caller may not manage suppressions.
    suppressions: Option<Vec<Suppression>>,
    more_suppressions: Option<String>,
    unsubscribes: Option<Vec<Unsubscribe>>,
    more_unsubscribes: Option<String>,
    done: Option<&'static str>,
}

/// `?suppressions=&unsubscribes=` (the cursors of the two lists) and `?done=`.
#[derive(Debug, Default, Deserialize)]
pub struct OutboxQuery {
    suppressions: Option<String>,
    unsubscribes: Option<String>,
    done: Option<String>,
}

fn done_text(raw: Option<&str>) -> Option<&'static str> {
    match raw? {
        "requeued" => Some("The message is queued again."),
        "lifted" => Some("The address receives messages again."),
        "resubscribed" => Some("The guardian gets the weekly digest again."),
        "urgent" => Some("The invitation goes now, as urgent."),
        "not_waiting" => Some("That invitation is no longer waiting: it was sent, or it failed."),
        _ => None,
    }
}

/// Shows the outbox.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<OutboxQuery>,
) -> Result<Response, PageError> {
    let principal = &session.principal;
    let admin = policy::administer_contacts(principal);
    let digest = policy::digest_unsubscribes(principal);
    if let (Err(e), Err(_)) = (&admin, &digest) {
        return Err(match e {
            policy::Denied::Forbidden(why) => PageError::Forbidden(why),
            _ => PageError::NotFound,
        });
    }
    let (mut counts, mut dead_letters, mut suppressions, mut more_suppressions) =
        (Vec::new(), Vec::new(), None, None);
    let mut held = Vec::new();
    if admin.is_ok() {
        let (by_status, dead) =
            outbox::overview(&state.db, &state.message_kinds, principal.tenant).await?;
        counts = by_status
            .into_iter()
            .map(|(status, n)| {
                let shown = if n >= outbox::COUNT_CAP {
                    format!("{n} or more")
                } else {
                    n.to_string()
                };
                (status, shown)
            })
            .collect();
        dead_letters = dead;
        held = outbox::held(&state.db, principal.tenant, PER_PAGE).await?;
        let before = cursor(query.suppressions.as_deref())?;
        let (items, next) =
            outbox::suppressions(&state.db, principal.tenant, before, PER_PAGE).await?;
        more_suppressions = next.map(|c| format!("{PATH}?suppressions={c}"));
        suppressions = Some(items);
    }
    let (mut unsubscribes, mut more_unsubscribes) = (None, None);
    if digest.is_ok() {
        let after = cursor(query.unsubscribes.as_deref())?;
        let (items, next) = unsubscribe::list(&state.db, principal.tenant, after, PER_PAGE).await?;
        more_unsubscribes = next.map(|c| format!("{PATH}?unsubscribes={c}"));
        unsubscribes = Some(items);
    }
    Ok(OutboxPage {
        title: "Outbox".into(),
        layout: Layout::new(&session, PATH),
        counts,
        dead_letters,
        held,
        suppressions,
        more_suppressions,
        unsubscribes,
        more_unsubscribes,
        done: done_text(query.done.as_deref()),
    }
    .into_response())
}

/// The form of the outbox's buttons.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("{PATH}?done={done}")).into_response()
}

/// Puts a dead or failed message back in the queue.
pub async fn requeue(
    State(state): State<AppState>,
    session: WebSession,
    Path(message): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::administer_contacts(&session.principal)?;
    let actor = session.principal.actor();
    if outbox::requeue(&state.db, session.principal.tenant, id(&message)?, &actor).await? {
        Ok(back("requeued"))
    } else {
        Err(PageError::NotFound)
    }
}

/// Lifts an email suppression.
pub async fn lift_suppression(
    State(state): State<AppState>,
    session: WebSession,
    Path(suppression): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::administer_contacts(&session.principal)?;
    let actor = session.principal.actor();
    let tenant = session.principal.tenant;
    if outbox::lift_suppression(&state.db, tenant, id(&suppression)?, &actor).await? {
        Ok(back("lifted"))
    } else {
        Err(PageError::NotFound)
    }
}

/// Lifts a guardian's digest unsubscribe.
pub async fn resubscribe(
    State(state): State<AppState>,
    session: WebSession,
    Path(contact): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::digest_unsubscribes(&session.principal)?;
    let actor = session.principal.actor();
    let tenant = session.principal.tenant;
    if unsubscribe::resubscribe(&state.db, tenant, id(&contact)?, &actor).await? {
        Ok(back("resubscribed"))
    } else {
        Err(PageError::NotFound)
    }
}

/// Sends a held invitation at once, as urgent.
pub async fn urgent(
    State(state): State<AppState>,
    session: WebSession,
    Path(invitation): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::administer_contacts(&session.principal)?;
    let actor = session.principal.actor();
    let tenant = session.principal.tenant;
    match crate::invites::send_urgent(&state.db, tenant, id(&invitation)?, &actor).await {
        Ok(_) => Ok(back("urgent")),
        // Sent (or failed) meanwhile: the page says so and shows what is left.
        Err(crate::invites::UrgentError::NotWaiting(_)) => Ok(back("not_waiting")),
        Err(crate::invites::UrgentError::NotFound) => Err(PageError::NotFound),
        Err(crate::invites::UrgentError::Db(e)) => Err(PageError::Db(e)),
    }
}
