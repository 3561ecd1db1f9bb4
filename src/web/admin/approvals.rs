//! `GET /admin/approvals`: the approvers' queue of teacher contact requests (global and
//! teams admins, as `GET /api/v1/contact-requests`). Each pending request shows the
//! contact's values when it was requested, now, and as proposed side by side, the stale
//! flag, a **Reason** field and **Approve** / **Reject** buttons (one form per request).
//! `?status=approved|rejected` lists decided requests; every list is keyset-paginated
//! (`?cursor=`, "Next page").
//!
//! `POST /admin/approvals/{id}` decides through the same services as
//! `POST /api/v1/contact-requests/{id}/approve|reject` (all or nothing, audited by them) and
//! answers `303` to the queue. A decision that fails (already decided, a reason missing to
//! reject, the contact changed or was erased) comes back as `GET /admin/approvals/{id}`
//! would show the request, with the error next to its Reason field (422).

use crate::api::AppState;
use crate::approvals::decide::{self, Decision};
use crate::approvals::requests::{self, ListFilter, RequestItem, Status};
use crate::approvals::{ApprovalError, ContactValues, OnMatch};
use crate::auth::policy;
use crate::tenants;
use crate::web::error::PageError;
use crate::web::form::{Control, Field};
use crate::web::id_param as request_id;
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use crate::web::when;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const PATH: &str = "/admin/approvals";
/// Requests per page: each is a card with its own form.
const PAGE_SIZE: u64 = 20;
/// Longest reason, in characters (as the API's `reason`).
const MAX_REASON_CHARS: usize = crate::api::extract::MAX_REASON_CHARS;

/// One field of the contact in the side-by-side table.
#[derive(Debug, Clone)]
struct CompareRow {
    label: &'static str,
    submitted: String,
    current: String,
    proposed: String,
    /// True when the request changes this field.
    changes: bool,
}

/// A request as a card of the queue.
#[derive(Debug, Clone)]
struct Card {
    id: String,
    heading: String,
    status: String,
    student_id: String,
    student_href: String,
    requested_by: String,
    requested_at: String,
    stale: bool,
    rows: Vec<CompareRow>,
    /// "Approved by … on …" once decided.
    decided: Option<String>,
    /// The decision's reason, once decided.
    decided_reason: Option<String>,
    /// The Reason field of the decision form (pending requests, or a failed decision).
    reason: Option<Field>,
    /// An "add" whose email is an existing contact's: that contact, in words. The form then
    /// asks to link it or create a new contact instead of a plain Approve.
    matched: Option<String>,
}

impl Card {
    fn action(&self) -> String {
        format!("{PATH}/{}", self.id)
    }
}

/// The queue page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/approvals.html")]
struct QueuePage {
    title: String,
    layout: Layout,
    csrf: String,
    filter: Field,
    cards: Vec<Card>,
    showing: &'static str,
    next: Option<String>,
    done: Option<String>,
}

/// One request, alone (a failed decision comes back here).
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/approval.html")]
struct RequestPage {
    title: String,
    layout: Layout,
    csrf: String,
    card: Card,
}

/// `?status=&cursor=&approved=&rejected=` of the queue.
#[derive(Debug, Default, serde::Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
    cursor: Option<String>,
    approved: Option<String>,
    rejected: Option<String>,
}

/// A contact field's text, `—` when empty.
fn shown(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("—").to_string()
}

/// The proposal's value of `key`: "(no change)", "(removed)" or the value.
fn proposed_value(proposed: &serde_json::Value, key: &str) -> (String, bool) {
    match proposed.get(key) {
        None => ("(no change)".into(), false),
        Some(serde_json::Value::Null) => ("(removed)".into(), true),
        Some(serde_json::Value::String(s)) => (s.clone(), true),
        Some(other) => (other.to_string(), true),
    }
}

fn compare_rows(item: &RequestItem) -> Vec<CompareRow> {
    type Pick = fn(&ContactValues) -> Option<&str>;
    const FIELDS: [(&str, &str, Pick); 5] = [
        ("Given name", "givenName", |v| v.given_name.as_deref()),
        ("Family name", "familyName", |v| v.family_name.as_deref()),
        ("Email", "emailAddress", |v| v.email_address.as_deref()),
        ("Mobile", "mobilePhone", |v| v.mobile_phone.as_deref()),
        ("Relationship", "relationship", |v| {
            v.relationship.as_deref()
        }),
    ];
    let added = item.action == "add";
    FIELDS
        .iter()
        .map(|(label, key, pick)| {
            let (proposed, changes) = if item.action == "remove" {
                ("(removed from the student)".to_string(), true)
            } else {
                proposed_value(&item.proposed, key)
            };
            let value = |values: &Option<ContactValues>| match values {
                Some(v) => shown(pick(v)),
                None if added => "(new contact)".into(),
                None => "(erased)".into(),
            };
            CompareRow {
                label,
                submitted: value(&item.submitted),
                current: value(&item.current),
                proposed,
                changes,
            }
        })
        .collect()
}

fn action_text(action: &str) -> &'static str {
    match action {
        "add" => "Add a contact",
        "remove" => "Remove a contact",
        _ => "Change a contact",
    }
}

/// The Reason field of request `id`.
fn reason_field(id: &str) -> Field {
    Field::new(&format!("reason-{id}"), "Reason", Control::TextArea)
        .hint("Required to reject, optional to approve. The teacher sees it.")
}

fn card(item: RequestItem) -> Card {
    let rows = compare_rows(&item);
    let pending = item.status == Status::Pending.as_str();
    let decided = item.decided_at.map(|at| {
        let verb = if item.status == Status::Approved.as_str() {
            "Approved"
        } else {
            "Rejected"
        };
        let by = item.decided_by.clone().unwrap_or_default();
        format!("{verb} by {by} on {}", when(at))
    });
    Card {
        heading: format!(
            "Request {}: {}",
            item.id,
            action_text(&item.action).to_lowercase()
        ),
        status: item.status.clone(),
        student_href: super::students::student_href(&item.student_id),
        student_id: item.student_id.clone(),
        requested_by: item.requested_by.clone(),
        requested_at: when(item.requested_at),
        stale: item.stale,
        rows,
        decided,
        decided_reason: item.reason.clone(),
        reason: pending.then(|| reason_field(&item.id)),
        matched: item.matched_contact.as_ref().map(|m| {
            let name = [m.given_name.as_deref(), m.family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            format!(
                "contact {}: {}, {}, {}",
                m.contact_id,
                shown(Some(name.as_str()).filter(|n| !n.is_empty())),
                shown(m.email_address.as_deref()),
                shown(m.mobile_phone.as_deref())
            )
        }),
        id: item.id,
    }
}

/// The status a `?status=` asks for (pending without one); `Err` with the field's error.
fn status_of(raw: Option<&str>) -> Result<Status, String> {
    match raw.map(str::trim).unwrap_or("") {
        "" | "pending" => Ok(Status::Pending),
        "approved" => Ok(Status::Approved),
        "rejected" => Ok(Status::Rejected),
        _ => Err("Choose pending, approved or rejected.".into()),
    }
}

fn filter_field(value: &str) -> Field {
    Field::new(
        "status",
        "Show",
        Control::Select(vec![
            ("pending".into(), "Waiting for a decision".into()),
            ("approved".into(), "Approved".into()),
            ("rejected".into(), "Rejected".into()),
        ]),
    )
    .value(value)
}

/// Shows the queue (pending requests, or decided ones with `?status=`).
pub async fn queue(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<QueueQuery>,
) -> Result<Response, PageError> {
    policy::administer_contacts(&session.principal)?;
    let mut filter = filter_field(query.status.as_deref().unwrap_or("pending"));
    let status = match status_of(query.status.as_deref()) {
        Ok(status) => status,
        Err(why) => {
            filter.error = Some(why);
            let page = queue_page(&session, filter, Vec::new(), Status::Pending, None, None);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let after = query.cursor.as_deref().and_then(|c| c.parse::<i64>().ok());
    let list = ListFilter {
        status: Some(status),
        after,
        limit: PAGE_SIZE,
        ..Default::default()
    };
    let (items, next) = requests::list(&state.db, session.principal.tenant, &list).await?;
    let done = match (&query.approved, &query.rejected) {
        (Some(id), _) => Some(format!(
            "Request {} approved: the contact was changed.",
            digits(id)
        )),
        (None, Some(id)) => Some(format!(
            "Request {} rejected: nothing was changed.",
            digits(id)
        )),
        _ => None,
    };
    let cards = items.into_iter().map(card).collect();
    let next = next.map(|cursor| format!("{PATH}?status={}&cursor={cursor}", status.as_str()));
    Ok(queue_page(&session, filter, cards, status, next, done).into_response())
}

/// Only the digits of `text` (an id echoed from the query).
fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).take(18).collect()
}

fn queue_page(
    session: &WebSession,
    filter: Field,
    cards: Vec<Card>,
    status: Status,
    next: Option<String>,
    done: Option<String>,
) -> QueuePage {
    QueuePage {
        title: "Approvals".into(),
        layout: Layout::new(session, PATH),
        csrf: session.csrf.clone(),
        filter,
        cards,
        showing: match status {
            Status::Pending => "Waiting for a decision",
            Status::Approved => "Approved",
            Status::Rejected => "Rejected",
        },
        next,
        done,
    }
}

async fn find(state: &AppState, session: &WebSession, id: &str) -> Result<Card, PageError> {
    let item = requests::get(&state.db, session.principal.tenant, request_id(id)?)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(card(item))
}

fn request_page(session: &WebSession, card: Card) -> RequestPage {
    RequestPage {
        title: format!("Request {}", card.id),
        layout: Layout::new(session, PATH),
        csrf: session.csrf.clone(),
        card,
    }
}

/// Shows one request (with its form while it is pending).
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    policy::administer_contacts(&session.principal)?;
    let card = find(&state, &session, &id).await?;
    Ok(request_page(&session, card).into_response())
}

/// What the approver pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Approve,
    /// Approve a stale request: the approver saw the current values.
    ApproveStale,
    /// Approve an "add" by linking the existing contact with its email.
    ApproveLink,
    /// Approve an "add" by creating a new contact although one has its email.
    ApproveCreate,
    Reject,
}

impl Verdict {
    fn parse(raw: Option<&str>) -> Option<Self> {
        match raw? {
            "approve" => Some(Self::Approve),
            "approve-stale" => Some(Self::ApproveStale),
            "approve-link" => Some(Self::ApproveLink),
            "approve-create" => Some(Self::ApproveCreate),
            "reject" => Some(Self::Reject),
            _ => None,
        }
    }
}

/// The reason as sent: trimmed, `None` when empty; `Err` when too long, or missing to reject.
fn parse_reason(raw: &str, verdict: Verdict) -> Result<Option<String>, String> {
    let reason = Some(raw.trim().to_string()).filter(|r| !r.is_empty());
    match &reason {
        None if verdict == Verdict::Reject => {
            Err("Give a reason to reject: the teacher sees it.".into())
        }
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(format!(
            "The reason is too long: at most {MAX_REASON_CHARS} characters."
        )),
        _ => Ok(reason),
    }
}

/// The message next to the Reason field for a decision the service refused, or the error
/// page for the rest.
fn refusal(error: ApprovalError) -> Result<String, PageError> {
    Ok(match error {
        ApprovalError::AlreadyDecided(status) => {
            format!("This request was already {status}: nothing was changed.")
        }
        ApprovalError::Stale(_) => "The contact changed since the request was made. Check the values now shown, then press Approve anyway or Reject.".into(),
        ApprovalError::ContactGone => "The contact is no longer linked to the student (erased): this request cannot be approved. Reject it instead.".into(),
        ApprovalError::InvalidField { message, .. } => message,
        ApprovalError::OwnRequest => {
            "You made this request: another approver decides it. Nothing was changed.".into()
        }
        ApprovalError::MatchToConfirm(_) => "A contact of the district already has this email (shown above). Press Link that contact or Create a new contact.".into(),
        other => return Err(other.into()),
    })
}

/// Decides a request from its card's form.
pub async fn decide(
    State(state): State<AppState>,
    session: WebSession,
    Path(id): Path<String>,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    policy::administer_contacts(&session.principal)?;
    let request_id = request_id(&id)?;
    let field_name = format!("reason-{request_id}");
    let raw_reason = sent.get(&field_name).cloned().unwrap_or_default();
    let verdict = Verdict::parse(sent.get("decision").map(String::as_str));
    let outcome = match verdict {
        None => Err("Press Approve or Reject.".to_string()),
        Some(verdict) => match parse_reason(&raw_reason, verdict) {
            Err(why) => Err(why),
            Ok(reason) => apply(&state, &session, request_id, verdict, reason).await?,
        },
    };
    match outcome {
        Ok(verdict) => {
            let key = if verdict == Verdict::Reject {
                "rejected"
            } else {
                "approved"
            };
            Ok(Redirect::to(&format!("{PATH}?{key}={request_id}")).into_response())
        }
        Err(why) => {
            let mut card = find(&state, &session, &id).await?;
            let mut field = reason_field(&card.id).value(raw_reason);
            field.error = Some(why);
            card.reason = Some(field);
            let page = request_page(&session, card);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Runs the decision through the approvals service: `Ok(Err(message))` when it was refused
/// for a reason the approver can act on.
async fn apply(
    state: &AppState,
    session: &WebSession,
    request_id: i64,
    verdict: Verdict,
    reason: Option<String>,
) -> Result<Result<Verdict, String>, PageError> {
    let principal = &session.principal;
    let tenant = tenants::find(&state.db, &principal.tenant_slug)
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let actor = principal.actor();
    let decision = Decision {
        tenant: principal.tenant,
        region: tenant.region,
        request_id,
        actor: &actor,
        reason,
        confirm_stale: verdict == Verdict::ApproveStale,
        approver: policy::person(principal),
        on_match: match verdict {
            Verdict::ApproveLink => Some(OnMatch::Link),
            Verdict::ApproveCreate => Some(OnMatch::Create),
            _ => None,
        },
    };
    let result = match verdict {
        Verdict::Reject => decide::reject(&state.db, decision).await,
        Verdict::Approve
        | Verdict::ApproveStale
        | Verdict::ApproveLink
        | Verdict::ApproveCreate => decide::approve(&state.db, decision).await,
    };
    match result {
        Ok(_) => Ok(Ok(verdict)),
        Err(error) => refusal(error).map(Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_needed_to_reject_only() {
        assert!(parse_reason("  ", Verdict::Reject).is_err());
        assert_eq!(parse_reason("  ", Verdict::Approve), Ok(None));
        assert_eq!(
            parse_reason(" wrong number ", Verdict::Reject),
            Ok(Some("wrong number".into()))
        );
        assert!(parse_reason(&"x".repeat(1001), Verdict::Approve).is_err());
    }

    #[test]
    fn the_status_filter_knows_three_values() {
        assert_eq!(status_of(None), Ok(Status::Pending));
        assert_eq!(status_of(Some("approved")), Ok(Status::Approved));
        assert!(status_of(Some("everything")).is_err());
    }
}
