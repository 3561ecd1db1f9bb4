//! `/admin/digest`: the weekly digest as admins check it — one guardian's digest of a week
//! previewed exactly as it would be sent (nothing queued), the latest runs, and the
//! disclosure log (which guardian received a digest about which students, when; filtered by
//! week or guardian, a page at a time) — the same policy and data as
//! `GET /api/v1/digest/deliveries` and `parent-connection digest run --dry-run`.

use crate::api::AppState;
use crate::auth::policy;
use crate::digest::{self, Delivery, IsoWeek};
use crate::tenants;
use crate::web::error::PageError;
use crate::web::form::{Control, Field};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

const PATH: &str = "/admin/digest";
/// Entries per page of the disclosure log; runs shown.
const PER_PAGE: u64 = 25;

/// A run as listed.
struct RunLine {
    week: String,
    started: String,
    state: &'static str,
}

/// A previewed digest.
struct Preview {
    to: String,
    subject: String,
    body: String,
}

/// The digest page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/digest.html")]
struct DigestPage {
    title: String,
    layout: Layout,
    preview_fields: Vec<Field>,
    preview: Option<Preview>,
    /// Said when a preview was asked for and there is none.
    no_preview: Option<String>,
    runs: Vec<RunLine>,
    filter_fields: Vec<Field>,
    deliveries: Vec<Delivery>,
    next: Option<String>,
}

/// The page's GET parameters: the preview (`guardian`, `week`) and the log's filters
/// (`logWeek`, `logGuardian`, `cursor`).
#[derive(Debug, Default, Deserialize)]
pub struct DigestQuery {
    guardian: Option<String>,
    week: Option<String>,
    #[serde(rename = "logWeek")]
    log_week: Option<String>,
    #[serde(rename = "logGuardian")]
    log_guardian: Option<String>,
    cursor: Option<String>,
}

fn filled(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn week_field(name: &str, label: &str, value: Option<&str>) -> Field {
    Field::new(name, label, Control::Text)
        .hint("An ISO week such as 2026-W48; empty: this week.")
        .value(value.unwrap_or_default())
}

fn guardian_field(name: &str, label: &str, value: Option<&str>) -> Field {
    Field::new(name, label, Control::Text)
        .hint("The guardian's contact id, as a student's page shows it.")
        .value(value.unwrap_or_default())
}

/// Shows the preview (when asked), the runs and the disclosure log.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<DigestQuery>,
) -> Result<Response, PageError> {
    policy::read_audit(&session.principal)?;
    let tenant = session.principal.tenant;
    let mut preview_fields = vec![
        guardian_field("guardian", "Guardian", filled(&query.guardian)),
        week_field("week", "Week", filled(&query.week)),
    ];
    let (mut preview, mut no_preview) = (None, None);
    if let Some(raw) = filled(&query.guardian) {
        match preview_of(&state, &session, raw, filled(&query.week)).await? {
            Ok(Some(found)) => preview = Some(found),
            Ok(None) => {
                no_preview = Some(format!(
                    "Guardian {raw} gets no digest that week: nothing due for their children, no email address, or not an active guardian."
                ))
            }
            Err((field, message)) => {
                let index = usize::from(field == "week");
                preview_fields[index].error = Some(message);
            }
        }
    }
    let mut filter_fields = vec![
        week_field("logWeek", "Week", filled(&query.log_week)),
        guardian_field("logGuardian", "Guardian", filled(&query.log_guardian)),
    ];
    let week = match filled(&query.log_week) {
        Some(raw) => match IsoWeek::parse(raw) {
            Ok(week) => Some(week.to_string()),
            Err(e) => {
                filter_fields[0].error = Some(e.to_string());
                None
            }
        },
        None => None,
    };
    let contact = match filled(&query.log_guardian) {
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                filter_fields[1].error = Some(format!("'{raw}' is not a contact id (a number)"));
                None
            }
        },
        None => None,
    };
    let before = crate::web::id_cursor(query.cursor.as_deref())?;
    let (deliveries, next_cursor) = digest::deliver::list(
        &state.db,
        tenant,
        (week.as_deref(), contact),
        before,
        PER_PAGE,
    )
    .await?;
    let next = next_cursor.map(|c| {
        let mut url = format!("{PATH}?cursor={c}");
        if let Some(week) = &week {
            url.push_str(&format!("&logWeek={week}"));
        }
        if let Some(contact) = contact {
            url.push_str(&format!("&logGuardian={contact}"));
        }
        url
    });
    let runs = digest::recent_runs(&state.db, tenant, 10)
        .await?
        .into_iter()
        .map(|run| RunLine {
            week: run.week,
            started: crate::web::when(run.created_at),
            state: if run.handed_through >= run.last_id {
                "handed to the outbox"
            } else {
                "handing to the outbox"
            },
        })
        .collect();
    let errors = preview_fields
        .iter()
        .chain(&filter_fields)
        .any(|f| f.error.is_some());
    let page = DigestPage {
        title: "Weekly digest".into(),
        layout: Layout::new(&session, PATH),
        preview_fields,
        preview,
        no_preview,
        runs,
        filter_fields,
        deliveries,
        next,
    };
    let status = if errors {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, page).into_response())
}

/// The preview of guardian `raw` in `week`, or the field and message of what is wrong.
async fn preview_of(
    state: &AppState,
    session: &WebSession,
    raw: &str,
    week: Option<&str>,
) -> Result<Result<Option<Preview>, (&'static str, String)>, PageError> {
    let Ok(contact) = raw.parse::<i64>() else {
        return Ok(Err((
            "guardian",
            format!("'{raw}' is not a contact id (a number)"),
        )));
    };
    let week = match week.map(IsoWeek::parse).transpose() {
        Ok(week) => week,
        Err(e) => return Ok(Err(("week", e.to_string()))),
    };
    let tenant = tenants::find_by_id(&state.db, session.principal.tenant)
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let links = crate::links::Links::from_config(&state.config);
    match digest::preview(&state.db, &tenant, contact, week, &links).await {
        Ok(found) => Ok(Ok(found.map(|r| Preview {
            to: r.to,
            subject: r.subject,
            body: r.body,
        }))),
        Err(digest::DigestError::Db(e)) => Err(e.into()),
        Err(digest::DigestError::Calendar(e)) => Ok(Err(("week", e.to_string()))),
        Err(e) => Err(PageError::Internal(e.to_string())),
    }
}
