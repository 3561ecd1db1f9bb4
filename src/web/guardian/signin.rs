//! Signing in with a one-time code ([`crate::guardians::codes`]), in two steps on two pages:
//!
//! 1. `GET /signin/code?tenant=<slug>` asks for the email address or mobile number on
//!    record; `POST` sends a code when it is on record and answers `303` to step 2 the same
//!    way whether or not it is (no one learns which addresses the school has).
//! 2. `GET /signin/code/verify?tenant=<slug>` asks for the code; `POST` with the right code
//!    opens a page session (`code`) and answers `303` to `/guardian`; any other code comes
//!    back with one message next to the field.
//!
//! The district comes from `?tenant=<slug>` (the sign-in link a school publishes, or the
//! one in its messages); without it, a deployment with a single district uses that one,
//! and one with several asks for the school's link. Before a session exists the forms'
//! CSRF value is the browser's *flow* cookie (`pc_signin`, `__Host-pc_signin` over TLS;
//! HttpOnly, SameSite=Lax, one hour), and a code works only in the browser that asked for
//! it.

use crate::api::AppState;
use crate::auth::{Identity, Principal, Via};
use crate::domain::TenantSlug;
use crate::guardians::codes::{self, Address, CodeRules, Flow, Verified};
use crate::tenants::{self, Tenant, TenantError};
use crate::web::Notice;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::session;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use std::collections::HashMap;

const ASK_PATH: &str = "/signin/code";
const VERIFY_PATH: &str = "/signin/code/verify";
const FLOW_COOKIE: &str = "pc_signin";
const SECURE_FLOW_COOKIE: &str = "__Host-pc_signin";
const FLOW_SECONDS: u32 = 3600;

/// The page asking for an address.
#[derive(Template, WebTemplate)]
#[template(path = "web/guardian/code.html")]
struct AskPage {
    title: String,
    district: String,
    tenant: String,
    form: Form,
}

/// The page asking for the code.
#[derive(Template, WebTemplate)]
#[template(path = "web/guardian/verify.html")]
struct VerifyPage {
    title: String,
    district: String,
    tenant: String,
    minutes: u32,
    form: Form,
}

/// `?tenant=<slug>`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
}

fn flow_cookie_name(state: &AppState) -> &'static str {
    if state.config.web.is_tls() {
        SECURE_FLOW_COOKIE
    } else {
        FLOW_COOKIE
    }
}

/// The browser's flow, from its cookie.
fn read_flow(state: &AppState, headers: &HeaderMap) -> Option<Flow> {
    let name = flow_cookie_name(state);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| Flow::parse(value))
}

/// The `Set-Cookie` header that stores `flow` (or, with `None`, forgets it).
fn flow_cookie(
    state: &AppState,
    flow: Option<&Flow>,
) -> AppendHeaders<[(axum::http::HeaderName, HeaderValue); 1]> {
    let secure = if state.config.web.is_tls() {
        "; Secure"
    } else {
        ""
    };
    let (value, age) = match flow {
        Some(flow) => (flow.as_str(), FLOW_SECONDS),
        None => ("", 0),
    };
    let text = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={age}{secure}",
        flow_cookie_name(state)
    );
    // base64url and ASCII attributes: always a valid header value.
    AppendHeaders([(
        SET_COOKIE,
        HeaderValue::from_str(&text).expect("cookie text is ASCII"),
    )])
}

/// The district of the sign-in link (see the module docs); `None` when it cannot be told.
async fn district(state: &AppState, slug: Option<&str>) -> Result<Option<Tenant>, PageError> {
    let slug = match slug.map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) => slug.to_string(),
        None => match tenants::slugs(&state.db).await?.as_slice() {
            [only] => only.clone(),
            _ => return Ok(None),
        },
    };
    if TenantSlug::parse(&slug).is_err() {
        return Ok(None);
    }
    match tenants::find(&state.db, &slug).await {
        Ok(tenant) => Ok(Some(tenant)),
        Err(TenantError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn which_district() -> Response {
    Notice::new(
        "Which school district?",
        &[
            "This sign-in page serves several school districts. Open the sign-in link on your school's website or in a message from your school: it names your district.",
        ],
    )
    .with_status(StatusCode::NOT_FOUND)
}

fn expired_form(tenant: &str) -> Response {
    Notice::new(
        "Please start again",
        &["This sign-in form has expired or did not come from this site. Ask for a new code."],
    )
    .with_link(&format!("{ASK_PATH}?tenant={tenant}"), "Ask for a code")
    .with_status(StatusCode::FORBIDDEN)
}

fn address_field() -> Field {
    Field::new("address", "Email address or mobile number", Control::Text)
        .hint("The one your school has on record for you.")
}

fn ask_page(tenant: &Tenant, flow: &Flow, field: Field) -> AskPage {
    AskPage {
        title: "Sign in with a code".into(),
        district: tenant.name.clone(),
        tenant: tenant.slug.clone(),
        form: Form {
            action: ASK_PATH.into(),
            csrf: flow.as_str().to_string(),
            fields: vec![field],
        },
    }
}

fn code_field() -> Field {
    Field::new("code", "Code", Control::Text).hint("The 6 digits from the message we sent you.")
}

fn verify_page(state: &AppState, tenant: &Tenant, flow: &Flow, field: Field) -> VerifyPage {
    VerifyPage {
        title: "Enter your code".into(),
        district: tenant.name.clone(),
        tenant: tenant.slug.clone(),
        minutes: CodeRules::from_config(&state.config).minutes,
        form: Form {
            action: VERIFY_PATH.into(),
            csrf: flow.as_str().to_string(),
            fields: vec![field],
        },
    }
}

/// `GET /signin/code`: asks for the address (and gives the browser its flow).
pub async fn ask(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(tenant) = district(&state, query.tenant.as_deref()).await? else {
        return Ok(which_district());
    };
    let flow = read_flow(&state, &headers).unwrap_or_default();
    let page = ask_page(&tenant, &flow, address_field());
    Ok((flow_cookie(&state, Some(&flow)), page).into_response())
}

/// The form's flow, when the cookie and the form's CSRF value agree.
fn checked_flow(
    state: &AppState,
    headers: &HeaderMap,
    sent: &HashMap<String, String>,
) -> Option<Flow> {
    let flow = read_flow(state, headers)?;
    let csrf = sent.get("csrf").map(String::as_str).unwrap_or_default();
    flow.matches(csrf).then_some(flow)
}

/// `POST /signin/code`: sends a code when the address is on record; the same answer either
/// way (`303` to the code page).
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let slug = sent.get("tenant").cloned().unwrap_or_default();
    let Some(flow) = checked_flow(&state, &headers, &sent) else {
        return Ok(expired_form(&slug));
    };
    let Some(tenant) = district(&state, Some(&slug)).await? else {
        return Ok(which_district());
    };
    let raw = sent.get("address").cloned().unwrap_or_default();
    let address = match Address::parse(&raw, tenant.region) {
        Ok(address) => address,
        Err(e) => {
            let mut field = address_field().value(raw);
            field.error = Some(e.to_string());
            let page = ask_page(&tenant, &flow, field);
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
        }
    };
    let rules = CodeRules::from_config(&state.config);
    let sms_enabled = !state.config.sms.url.trim().is_empty();
    let outcome = codes::request(
        &state.db,
        tenant.id,
        &address,
        &flow,
        (rules, sms_enabled),
        chrono::Utc::now(),
    )
    .await?;
    tracing::info!(tenant = %tenant.slug, outcome = ?outcome, "sign-in code asked for");
    Ok(Redirect::to(&format!("{VERIFY_PATH}?tenant={}", tenant.slug)).into_response())
}

/// `GET /signin/code/verify`: asks for the code (without a flow: back to step 1).
pub async fn enter(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(tenant) = district(&state, query.tenant.as_deref()).await? else {
        return Ok(which_district());
    };
    let Some(flow) = read_flow(&state, &headers) else {
        return Ok(Redirect::to(&format!("{ASK_PATH}?tenant={}", tenant.slug)).into_response());
    };
    Ok(verify_page(&state, &tenant, &flow, code_field()).into_response())
}

/// The one answer to a code that does not work, whatever the reason.
const REFUSED: &str = "That code is not right or no longer works. Check the message and try again, or ask for a new code.";

/// `POST /signin/code/verify`: the right code opens a session and goes to `/guardian`.
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let slug = sent.get("tenant").cloned().unwrap_or_default();
    let Some(flow) = checked_flow(&state, &headers, &sent) else {
        return Ok(expired_form(&slug));
    };
    let Some(tenant) = district(&state, Some(&slug)).await? else {
        return Ok(which_district());
    };
    let raw = sent.get("code").cloned().unwrap_or_default();
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let refuse = |why: &str| {
        let mut field = code_field().value(raw.clone());
        field.error = Some(why.to_string());
        let page = verify_page(&state, &tenant, &flow, field);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return refuse("Enter the 6 digits from the message we sent you.");
    }
    let rules = CodeRules::from_config(&state.config);
    let verified = codes::verify(&state.db, &flow, &code, rules, chrono::Utc::now()).await?;
    let (tenant_id, contact) = match verified {
        Verified::SignedIn(tenant_id, contact) if tenant_id == tenant.id => (tenant_id, contact),
        _ => return refuse(REFUSED),
    };
    crate::chats::store::mark_joined(&state.db, tenant_id, contact).await?;
    let principal = Principal {
        tenant: tenant_id,
        tenant_slug: tenant.slug.clone(),
        identity: Identity::Contact {
            contact_id: contact.to_string(),
        },
        via: Via::Web,
    };
    let cookie = session::start(&state, &principal, "code").await?;
    Ok((
        StatusCode::SEE_OTHER,
        cookie,
        flow_cookie(&state, None),
        Redirect::to("/guardian"),
    )
        .into_response())
}
