//! `GET|POST /admin/settings`: every tenant setting on one form (tenant admins change them;
//! global and teams admins read them). A value that is not valid comes back with the error
//! next to its field and nothing saved; a valid form saves every change in one audited
//! transaction ([`settings::update`], as `PATCH /api/v1/settings`) and shows the page again
//! with "Settings saved".

use crate::api::AppState;
use crate::auth::policy;
use crate::tenants::settings::{self, Key, Settings};
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const PATH: &str = "/admin/settings";

/// The settings page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/settings.html")]
struct SettingsPage {
    title: String,
    layout: Layout,
    form: Form,
    may_change: bool,
    saved: bool,
}

fn on_off() -> Control {
    Control::Select(vec![
        ("true".into(), "On".into()),
        ("false".into(), "Off".into()),
    ])
}

/// The label, hint and control of each setting.
fn field(key: Key) -> Field {
    let number = |min, max| Control::Number { min, max };
    let (label, hint, control) = match key {
        Key::PreferredInviteChannel => (
            "Preferred invite channel",
            "How guardians get their invitation when they have both an email address and a mobile number.",
            Control::Select(vec![
                ("email".into(), "Email".into()),
                ("sms".into(), "SMS".into()),
            ]),
        ),
        Key::UpdateParentInformation => (
            "Teacher edits",
            "On: teachers may propose adding, changing or removing a guardian; an approver decides.",
            on_off(),
        ),
        Key::DigestEnabled => (
            "Weekly assignment digest",
            "On: guardians get the weekly email of their children's assignments.",
            on_off(),
        ),
        Key::DigestDay => (
            "Digest day",
            "The day of the week the digest is sent.",
            Control::Select(
                crate::domain::DigestDay::names()
                    .iter()
                    .map(|d| (d.to_string(), capitalised(d)))
                    .collect(),
            ),
        ),
        Key::DigestHour => (
            "Digest hour",
            "The hour of the day (0 to 23) the digest is sent, in the digest time zone.",
            number(0, 23),
        ),
        Key::DigestTimeZone => (
            "Digest time zone",
            "An IANA time zone name, for example America/New_York, or UTC.",
            Control::Text,
        ),
        Key::InviteLimitPerGuardian => (
            "Invitations per guardian",
            "How many invitations one guardian may get within the window below (0 to 1000).",
            number(0, 1000),
        ),
        Key::InviteWindowDays => (
            "Invitation limit window (days)",
            "The days the per-guardian limit counts over (1 to 365).",
            number(1, 365),
        ),
        Key::InviteLimitPerTenantPerDay => (
            "Invitations per day for the district",
            "The most invitations sent in one day (0 to 10000000).",
            number(0, 10_000_000),
        ),
        Key::InvitationValidityDays => (
            "Invitations valid for (days)",
            "How long an invitation link works (1 to 365 days).",
            number(1, 365),
        ),
        Key::DeletionGuardPercent => (
            "Deletion guard (percent)",
            "An import that would remove more than this share of the district's contacts stops and changes nothing (0 to 100).",
            number(0, 100),
        ),
        Key::AutoRemoveInactiveGuardians => (
            "Remove inactive guardians from chats",
            "On: a guardian who becomes inactive leaves their chats automatically.",
            on_off(),
        ),
        Key::QuietHoursStart => (
            "Quiet hours start",
            "Text messages due from this time (HH:MM, the guardian's local time) wait until the quiet hours end. Email is not held. Empty: no quiet hours.",
            Control::Time,
        ),
        Key::DefaultLanguage => (
            "Default language",
            "The language of invitations, digests and guardians' pages when a guardian's own language has no translation.",
            Control::Select(vec![
                ("en".into(), "English".into()),
                ("es".into(), "Español (Spanish)".into()),
            ]),
        ),
        Key::QuietHoursEnd => (
            "Quiet hours end",
            "The time (HH:MM) held text messages go. The quiet hours may cross midnight, e.g. 21:00 to 08:00. Empty: no quiet hours.",
            Control::Time,
        ),
    };
    Field::new(key.kebab(), label, control).hint(hint)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The settings as a form, in the order people look for them.
fn form(session: &WebSession, current: &Settings) -> Form {
    const ORDER: [Key; 15] = [
        Key::PreferredInviteChannel,
        Key::UpdateParentInformation,
        Key::DigestEnabled,
        Key::DigestDay,
        Key::DigestHour,
        Key::DigestTimeZone,
        Key::InviteLimitPerGuardian,
        Key::InviteWindowDays,
        Key::InviteLimitPerTenantPerDay,
        Key::InvitationValidityDays,
        Key::DeletionGuardPercent,
        Key::AutoRemoveInactiveGuardians,
        Key::QuietHoursStart,
        Key::QuietHoursEnd,
        Key::DefaultLanguage,
    ];
    Form {
        action: PATH.into(),
        csrf: session.csrf.clone(),
        fields: ORDER
            .into_iter()
            .map(|key| field(key).value(key.show(current)))
            .collect(),
    }
}

/// `?saved=1` after a successful save.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

fn page(session: &WebSession, form: Form, saved: bool) -> SettingsPage {
    SettingsPage {
        title: "Settings".into(),
        layout: Layout::new(session, PATH),
        may_change: policy::update_settings(&session.principal).is_ok(),
        form,
        saved,
    }
}

/// Shows the settings.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
    Query(query): Query<Saved>,
) -> Result<Response, PageError> {
    policy::read_settings(&session.principal)?;
    let current = settings::get(&state.db, session.principal.tenant).await?;
    let form = form(&session, &current);
    Ok(page(&session, form, query.saved.is_some()).into_response())
}

/// Saves the settings form.
pub async fn save(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    policy::update_settings(&session.principal)?;
    let current = settings::get(&state.db, session.principal.tenant).await?;
    let mut form = form(&session, &current);
    let mut changes = Vec::new();
    for field in form.fields.iter_mut() {
        let Some(raw) = sent.get(&field.name) else {
            continue;
        };
        let key = Key::parse(&field.name).map_err(|e| PageError::Internal(e.to_string()))?;
        match key.parse_text(raw) {
            Ok(value) => {
                if key.show(&current) != raw.trim() {
                    changes.push((key, value));
                }
            }
            Err(e) => field.error = Some(e.message),
        }
        field.value = raw.clone();
    }
    if form.has_errors() {
        let page = page(&session, form, false);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    if !changes.is_empty() {
        let actor = session.principal.actor();
        settings::update(&state.db, session.principal.tenant, &changes, &actor).await?;
    }
    Ok(Redirect::to(&format!("{PATH}?saved=1")).into_response())
}
