//! `GET /admin/audit`: the tenant's audit log, newest first, for those the API lets read it
//! (global, teams and tenant admins: [`policy::read_audit`]). A GET form filters by action
//! (exact, or a prefix ending in `.`), actor (exact) and dates (`from`, `to`: whole days,
//! UTC, both included); the list is keyset-paginated like `GET /api/v1/audit` ("Next
//! page"), through the same [`audit::list`].

use super::students::encode;
use crate::api::AppState;
use crate::audit::{self, AuditFilter, AuditItem};
use crate::auth::policy;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};

const PATH: &str = "/admin/audit";
/// Entries per page.
const PAGE_SIZE: u64 = 50;
/// Longest action or actor filter, in characters.
const MAX_FILTER_CHARS: usize = 200;

/// `?action=&actor=&from=&to=&cursor=`.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
}

/// One entry as the page shows it.
#[derive(Debug, Clone)]
struct Entry {
    at: String,
    actor: String,
    action: String,
    target: String,
    before: String,
    after: String,
}

impl From<AuditItem> for Entry {
    fn from(item: AuditItem) -> Self {
        let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
        Entry {
            at: item.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: item.actor,
            action: item.action,
            target: item.target.unwrap_or_default(),
            before: json(item.before),
            after: json(item.after),
        }
    }
}

/// The audit log page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/audit.html")]
struct AuditPage {
    title: String,
    layout: Layout,
    form: Form,
    entries: Vec<Entry>,
    next: Option<String>,
}

fn filter_form(session: &WebSession, query: &AuditQuery) -> Form {
    let date_hint = "A date as YYYY-MM-DD (UTC).";
    Form {
        action: PATH.into(),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new("action", "Action", Control::Text)
                .hint("For example contact_request.approve, or contact_request. for every contact request action.")
                .value(query.action.clone()),
            Field::new("actor", "Actor", Control::Text)
                .hint("Exactly as listed, for example web:user:admin-1@nyc.")
                .value(query.actor.clone()),
            Field::new("from", "From", Control::Text)
                .hint(date_hint)
                .value(query.from.clone()),
            Field::new("to", "To (included)", Control::Text)
                .hint(date_hint)
                .value(query.to.clone()),
        ],
    }
}

/// A text filter: `None` when empty.
fn text_filter(raw: &str) -> Result<Option<String>, String> {
    let text = raw.trim();
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(format!("At most {MAX_FILTER_CHARS} characters."));
    }
    Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
}

/// A day as `YYYY-MM-DD`: `None` when empty.
fn day(raw: &str) -> Result<Option<NaiveDate>, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| "Enter a date as YYYY-MM-DD, for example 2026-12-05.".into())
}

fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

/// The filter the form asks for, or the form with its errors.
fn parse(query: &AuditQuery, form: &mut Form) -> Option<AuditFilter> {
    let mut set = |name: &str, error: String| {
        if let Some(field) = form.field_mut(name) {
            field.error = Some(error);
        }
    };
    let action = text_filter(&query.action).map_err(|e| set("action", e));
    let actor = text_filter(&query.actor).map_err(|e| set("actor", e));
    let from = day(&query.from).map_err(|e| set("from", e));
    let to = day(&query.to).map_err(|e| set("to", e));
    let (Ok(action), Ok(actor), Ok(from), Ok(to)) = (action, actor, from, to) else {
        return None;
    };
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        set("to", "The end date is before the start date.".into());
        return None;
    }
    Some(AuditFilter {
        action,
        actor,
        target: None,
        since: from.map(start_of),
        until: to.and_then(|d| d.succ_opt()).map(start_of),
        before_id: query.cursor.as_deref().and_then(|c| c.parse().ok()),
        limit: PAGE_SIZE,
    })
}

/// The link to the page after the one ending at `cursor`, with the same filters.
fn next_href(query: &AuditQuery, cursor: &str) -> String {
    format!(
        "{PATH}?action={}&actor={}&from={}&to={}&cursor={}",
        encode(query.action.trim()),
        encode(query.actor.trim()),
        encode(query.from.trim()),
        encode(query.to.trim()),
        encode(cursor)
    )
}

/// Shows the audit log with the filters of the query.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    policy::read_audit(&session.principal)?;
    let mut form = filter_form(&session, &query);
    let Some(filter) = parse(&query, &mut form) else {
        let page = AuditPage {
            title: "Audit log".into(),
            layout: Layout::new(&session, PATH),
            form,
            entries: Vec::new(),
            next: None,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let (items, next) = audit::list(&state.db, session.principal.tenant, &filter).await?;
    Ok(AuditPage {
        title: "Audit log".into(),
        layout: Layout::new(&session, PATH),
        form,
        entries: crate::api::audit::seen(&session.principal, items)
            .into_iter()
            .map(Entry::from)
            .collect(),
        next: next.map(|cursor| next_href(&query, &cursor)),
    }
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_days() {
        assert_eq!(day(""), Ok(None));
        assert!(day("05/12/2026").is_err());
        let d = day("2026-12-05").unwrap().unwrap();
        assert_eq!(start_of(d).to_rfc3339(), "2026-12-05T00:00:00+00:00");
    }
}
