//! `/admin/oneroster`: the tenant's OneRoster 1.1 connection (base URL, token URL, client
//! id, page size; the secret is stored encrypted and never shown), **Test the connection**
//! (a token and the provider's schools, nothing changed) and **Run a sync now** (full, or a
//! delta since the last applied run) — the same policy, services and audit as
//! `/api/v1/oneroster/connection` and `/api/v1/oneroster/runs`. A run's report is the
//! imports page's (`/admin/imports/{id}`).

use crate::api::AppState;
use crate::auth::policy;
use crate::sync::oneroster::connection::{
    self, ConnectionError, ConnectionView, NewConnection, Secret,
};
use crate::sync::oneroster::{self, OneRosterError, SyncRequest};
use crate::tenants;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::layout::Layout;
use crate::web::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;

const PATH: &str = "/admin/oneroster";

/// The OneRoster page.
#[derive(Template, WebTemplate)]
#[template(path = "web/admin/oneroster.html")]
struct OneRosterPage {
    title: String,
    layout: Layout,
    connection: Option<ConnectionView>,
    form: Form,
    run_form: Form,
    /// The outcome of a test or a run: (worked, text).
    outcome: Option<(bool, String)>,
}

fn connection_form(session: &WebSession, view: Option<&ConnectionView>) -> Form {
    let value = |f: fn(&ConnectionView) -> String| view.map(f).unwrap_or_default();
    let secret_hint = if view.is_some() {
        "A secret is stored (encrypted). Leave this empty to keep it."
    } else {
        "The OAuth2 client secret the provider gave you. It is stored encrypted and never shown."
    };
    Form {
        action: PATH.into(),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new("base_url", "Base URL", Control::Text)
                .hint("The OneRoster API, e.g. https://sis.example.org/ims/oneroster/v1p1")
                .value(value(|v| v.base_url.clone())),
            Field::new("token_url", "Token URL", Control::Text)
                .hint("The OAuth2 token endpoint of the provider.")
                .value(value(|v| v.token_url.clone())),
            Field::new("client_id", "Client ID", Control::Text)
                .value(value(|v| v.client_id.clone())),
            Field::new("client_secret", "Client secret", Control::Secret).hint(secret_hint),
            Field::new(
                "page_size",
                "Page size",
                Control::Number {
                    min: 1,
                    max: 10_000,
                },
            )
            .hint("Records asked for per request.")
            .value(value(|v| v.page_size.to_string())),
        ],
    }
}

fn run_form(session: &WebSession) -> Form {
    Form {
        action: format!("{PATH}/run"),
        csrf: session.csrf.clone(),
        fields: vec![
            Field::new(
                "mode",
                "Kind of sync",
                Control::Select(vec![
                    ("full".into(), "Full: the whole roster".into()),
                    (
                        "delta".into(),
                        "Delta: changes since the last applied run".into(),
                    ),
                ]),
            )
            .value("full"),
        ],
    }
}

async fn page(
    state: &AppState,
    session: &WebSession,
    form: Option<Form>,
    outcome: Option<(bool, String)>,
) -> Result<OneRosterPage, PageError> {
    let connection = connection::view(&state.db, session.principal.tenant).await?;
    Ok(OneRosterPage {
        title: "OneRoster".into(),
        layout: Layout::new(session, PATH),
        form: form.unwrap_or_else(|| connection_form(session, connection.as_ref())),
        run_form: run_form(session),
        connection,
        outcome,
    })
}

/// Shows the connection and the actions.
pub async fn show(
    State(state): State<AppState>,
    session: WebSession,
) -> Result<Response, PageError> {
    policy::run_oneroster(&session.principal)?;
    Ok(page(&state, &session, None, None).await?.into_response())
}

/// The field a connection error belongs next to.
fn field_of(message: &str) -> &'static str {
    if message.starts_with("the base URL") {
        "base_url"
    } else if message.starts_with("the token URL") {
        "token_url"
    } else if message.starts_with("the client id") {
        "client_id"
    } else if message.starts_with("the page size") {
        "page_size"
    } else {
        "client_secret"
    }
}

/// Saves the connection (a blank secret keeps the stored one).
pub async fn save(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    session.check_csrf(sent.get("csrf").map(String::as_str).unwrap_or(""))?;
    policy::run_oneroster(&session.principal)?;
    let text = |name: &str| {
        sent.get(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let mut form = connection_form(&session, None);
    for field in form.fields.iter_mut() {
        if !field.hides_value() {
            field.value = text(&field.name);
        }
    }
    let page_size = match text("page_size") {
        empty if empty.is_empty() => None,
        raw => match raw.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return refuse(
                    &state,
                    &session,
                    form,
                    "page_size",
                    "the page size must be a whole number".into(),
                )
                .await;
            }
        },
    };
    let secret = match text("client_secret") {
        given if !given.is_empty() => Secret::new(given),
        _ => match connection::load(&state.db, &state.config, session.principal.tenant).await {
            Ok(Some(stored)) => stored.client_secret,
            Ok(None) => {
                return refuse(
                    &state,
                    &session,
                    form,
                    "client_secret",
                    "enter the client secret".into(),
                )
                .await;
            }
            Err(e) => return connection_refused(&state, &session, form, e).await,
        },
    };
    let new = NewConnection {
        base_url: text("base_url"),
        token_url: text("token_url"),
        client_id: text("client_id"),
        client_secret: secret,
        page_size,
    };
    let actor = session.principal.actor();
    match connection::save(
        &state.db,
        &state.config,
        session.principal.tenant,
        &new,
        &actor,
    )
    .await
    {
        Ok(_) => Ok(Redirect::to(PATH).into_response()),
        Err(e) => connection_refused(&state, &session, form, e).await,
    }
}

async fn connection_refused(
    state: &AppState,
    session: &WebSession,
    form: Form,
    error: ConnectionError,
) -> Result<Response, PageError> {
    match error {
        ConnectionError::Db(e) => Err(e.into()),
        other => {
            let message = other.to_string();
            refuse(state, session, form, field_of(&message), message).await
        }
    }
}

async fn refuse(
    state: &AppState,
    session: &WebSession,
    mut form: Form,
    field: &str,
    message: String,
) -> Result<Response, PageError> {
    if let Some(field) = form.field_mut(field) {
        field.error = Some(message);
    }
    let page = page(state, session, Some(form), None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The form of the test and run buttons.
#[derive(Debug, serde::Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mode: String,
}

fn outcome_of(error: OneRosterError) -> Result<(bool, String), PageError> {
    match error {
        OneRosterError::Sync(crate::sync::SyncError::Db(e)) => Err(e.into()),
        OneRosterError::Connection(ConnectionError::Db(e)) => Err(e.into()),
        other => Ok((false, other.to_string())),
    }
}

/// Tries the stored connection and shows what happened.
pub async fn test(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::run_oneroster(&session.principal)?;
    let tenant = tenants::find_by_id(&state.db, session.principal.tenant)
        .await
        .map_err(|e| PageError::Internal(e.to_string()))?;
    let outcome = match oneroster::test_connection(&state.db, &state.config, &tenant).await {
        Ok(Ok(orgs)) => (
            true,
            format!("The connection works: the provider lists {orgs} schools and organisations."),
        ),
        Ok(Err(why)) => (false, format!("The connection does not work: {why}")),
        Err(e) => outcome_of(e)?,
    };
    Ok(page(&state, &session, None, Some(outcome))
        .await?
        .into_response())
}

/// Runs a sync now; its report is the imports page's.
pub async fn run(
    State(state): State<AppState>,
    session: WebSession,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    session.check_csrf(&form.csrf)?;
    policy::run_oneroster(&session.principal)?;
    let request = SyncRequest {
        tenant: session.principal.tenant_slug.clone(),
        delta: form.mode == "delta",
        force: false,
        actor: session.principal.actor(),
    };
    // The run goes on to its end even if the browser goes away.
    let (db, config) = (state.jobs.clone(), state.config.clone());
    let result = tokio::spawn(async move { oneroster::sync(&db, &config, &request).await })
        .await
        .map_err(|e| PageError::Internal(format!("OneRoster task: {e}")))?;
    match result {
        Ok(report) => match report.run_id {
            Some(id) => Ok(Redirect::to(&format!("/admin/imports/{id}")).into_response()),
            None => Err(PageError::Internal("a OneRoster run kept no run".into())),
        },
        Err(e) => {
            let outcome = outcome_of(e)?;
            Ok(page(&state, &session, None, Some(outcome))
                .await?
                .into_response())
        }
    }
}
