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
//! and one with several asks for the school's link.
//!
//! The pages speak the language chosen with their language links (`?lang=`, carried by
//! their forms), else the browser's (`Accept-Language`), else the district's default
//! (docs/languages.md): nobody is known yet. Before a session exists the forms'
//! CSRF value is the browser's *flow* cookie (`pc_signin`, `__Host-pc_signin` over TLS;
//! HttpOnly, SameSite=Lax, one hour), and a code works only in the browser that asked for
//! it.

use crate::api::AppState;
use crate::auth::{Identity, Principal, Via};
use crate::domain::TenantSlug;
use crate::guardians::codes::{self, Address, CodeRules, Flow, Verified};
use crate::i18n::{Arg, Locale};
use crate::tenants::{self, Tenant, TenantError};
use crate::web::Notice;
use crate::web::error::PageError;
use crate::web::form::{Control, Field, Form};
use crate::web::session;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use std::collections::HashMap;

const ASK_PATH: &str = "/signin/code";
const VERIFY_PATH: &str = "/signin/code/verify";
const FLOW_COOKIE: &str = "pc_signin";
const SECURE_FLOW_COOKIE: &str = "__Host-pc_signin";
const FLOW_SECONDS: u32 = 3600;

/// What every sign-in page shows in its language: `<html lang>`, the skip link and the
/// language links.
struct PageLanguage {
    lang: &'static str,
    skip: String,
    /// The language links' label.
    language: String,
    links: Vec<LanguageLink>,
}

/// A link to the same page in another shipped language.
struct LanguageLink {
    href: String,
    tag: &'static str,
    name: String,
    current: bool,
}

impl PageLanguage {
    /// The frame of the page at `path` (for `tenant`) in `locale`.
    fn new(locale: Locale, path: &str, tenant: &str) -> Self {
        Self {
            lang: locale.tag(),
            skip: locale.text("skip-to-content"),
            language: locale.text("signin-language"),
            links: Locale::all()
                .map(|other| LanguageLink {
                    href: format!("{path}?tenant={tenant}&lang={}", other.tag()),
                    tag: other.tag(),
                    name: other.text("language-name"),
                    current: other == locale,
                })
                .collect(),
        }
    }
}

/// The page asking for an address.
#[derive(Template, WebTemplate)]
#[template(path = "web/guardian/code.html")]
struct AskPage {
    t: PageLanguage,
    title: String,
    intro: String,
    send: String,
    staff: String,
    staff_link: String,
    tenant: String,
    form: Form,
}

/// The page asking for the code.
#[derive(Template, WebTemplate)]
#[template(path = "web/guardian/verify.html")]
struct VerifyPage {
    t: PageLanguage,
    title: String,
    sent: String,
    submit: String,
    none: String,
    again: String,
    tenant: String,
    form: Form,
}

/// `?tenant=<slug>&lang=<tag>`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
    lang: Option<String>,
}

/// The language of a sign-in page, before anyone is known: the one chosen with the page's
/// language links (`lang`, carried by its forms), else the browser's (`Accept-Language`),
/// else the district's default language, else English.
async fn page_locale(
    state: &AppState,
    chosen: Option<&str>,
    headers: &HeaderMap,
    tenant: Option<&Tenant>,
) -> Result<Locale, PageError> {
    if let Some(locale) = chosen.and_then(Locale::find) {
        return Ok(locale);
    }
    let browser = headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Locale::from_accept_language);
    if let Some(locale) = browser {
        return Ok(locale);
    }
    Ok(match tenant {
        Some(tenant) => tenants::settings::load(&state.db, tenant.id)
            .await?
            .map_or(Locale::ENGLISH, |s| s.default_language),
        None => Locale::ENGLISH,
    })
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

fn which_district(l: Locale) -> Response {
    Notice::new(l.text("signin-which-title"), &[&l.text("signin-which")])
        .in_language(l)
        .with_status(StatusCode::NOT_FOUND)
}

fn expired_form(tenant: &str, l: Locale) -> Response {
    Notice::new(l.text("signin-expired-title"), &[&l.text("signin-expired")])
        .in_language(l)
        .with_link(
            &format!("{ASK_PATH}?tenant={tenant}&lang={}", l.tag()),
            &l.text("signin-expired-link"),
        )
        .with_status(StatusCode::FORBIDDEN)
}

fn address_field(l: Locale) -> Field {
    Field::new("address", &l.text("signin-code-address"), Control::Text)
        .hint(&l.text("signin-code-address-hint"))
        .in_language(l)
}

fn ask_page(l: Locale, tenant: &Tenant, flow: &Flow, field: Field) -> AskPage {
    AskPage {
        t: PageLanguage::new(l, ASK_PATH, &tenant.slug),
        title: l.text("signin-code-title"),
        intro: l.format(
            "signin-code-intro",
            &[("district", Arg::Text(&tenant.name))],
        ),
        send: l.text("signin-code-send"),
        staff: l.text("signin-code-staff"),
        staff_link: l.text("signin-code-staff-link"),
        tenant: tenant.slug.clone(),
        form: Form {
            action: ASK_PATH.into(),
            csrf: flow.as_str().to_string(),
            fields: vec![field],
        },
    }
}

fn code_field(l: Locale) -> Field {
    Field::new("code", &l.text("signin-verify-code"), Control::Text)
        .hint(&l.text("signin-verify-code-hint"))
        .in_language(l)
}

fn verify_page(
    state: &AppState,
    l: Locale,
    tenant: &Tenant,
    flow: &Flow,
    field: Field,
) -> VerifyPage {
    let minutes = CodeRules::from_config(&state.config).minutes;
    VerifyPage {
        t: PageLanguage::new(l, VERIFY_PATH, &tenant.slug),
        title: l.text("signin-verify-title"),
        sent: l.format(
            "signin-verify-sent",
            &[
                ("district", Arg::Text(&tenant.name)),
                ("minutes", Arg::Number(f64::from(minutes))),
            ],
        ),
        submit: l.text("signin-verify-submit"),
        none: l.text("signin-verify-none"),
        again: l.text("signin-verify-again"),
        tenant: tenant.slug.clone(),
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
    let tenant = district(&state, query.tenant.as_deref()).await?;
    let l = page_locale(&state, query.lang.as_deref(), &headers, tenant.as_ref()).await?;
    let Some(tenant) = tenant else {
        return Ok(which_district(l));
    };
    let flow = read_flow(&state, &headers).unwrap_or_default();
    let page = ask_page(l, &tenant, &flow, address_field(l));
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

/// A posted sign-in form: its flow, district and language, or the page that answers it.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    sent: &HashMap<String, String>,
) -> Result<Result<(Flow, Tenant, Locale), Response>, PageError> {
    let slug = sent.get("tenant").cloned().unwrap_or_default();
    let tenant = district(state, Some(&slug)).await?;
    let chosen = sent.get("lang").map(String::as_str);
    let l = page_locale(state, chosen, headers, tenant.as_ref()).await?;
    let Some(flow) = checked_flow(state, headers, sent) else {
        return Ok(Err(expired_form(&slug, l)));
    };
    Ok(match tenant {
        Some(tenant) => Ok((flow, tenant, l)),
        None => Err(which_district(l)),
    })
}

/// `POST /signin/code`: sends a code when the address is on record; the same answer either
/// way (`303` to the code page).
pub async fn send(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let (flow, tenant, l) = match posted(&state, &headers, &sent).await? {
        Ok(posted) => posted,
        Err(page) => return Ok(page),
    };
    let raw = sent.get("address").cloned().unwrap_or_default();
    let address = match Address::parse(&raw, tenant.region) {
        Ok(address) => address,
        Err(_) => {
            let mut field = address_field(l).value(raw);
            field.error = Some(l.text("signin-code-address-invalid"));
            let page = ask_page(l, &tenant, &flow, field);
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
    Ok(Redirect::to(&format!(
        "{VERIFY_PATH}?tenant={}&lang={}",
        tenant.slug,
        l.tag()
    ))
    .into_response())
}

/// `GET /signin/code/verify`: asks for the code (without a flow: back to step 1).
pub async fn enter(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let tenant = district(&state, query.tenant.as_deref()).await?;
    let l = page_locale(&state, query.lang.as_deref(), &headers, tenant.as_ref()).await?;
    let Some(tenant) = tenant else {
        return Ok(which_district(l));
    };
    let Some(flow) = read_flow(&state, &headers) else {
        let ask = format!("{ASK_PATH}?tenant={}&lang={}", tenant.slug, l.tag());
        return Ok(Redirect::to(&ask).into_response());
    };
    Ok(verify_page(&state, l, &tenant, &flow, code_field(l)).into_response())
}

/// `POST /signin/code/verify`: the right code opens a session and goes to `/guardian`.
pub async fn check(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(sent): axum::Form<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let (flow, tenant, l) = match posted(&state, &headers, &sent).await? {
        Ok(posted) => posted,
        Err(page) => return Ok(page),
    };
    let raw = sent.get("code").cloned().unwrap_or_default();
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    // The one answer to a code that does not work, whatever the reason.
    let refuse = |why: &str| {
        let mut field = code_field(l).value(raw.clone());
        field.error = Some(l.text(why));
        let page = verify_page(&state, l, &tenant, &flow, field);
        Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
    };
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return refuse("signin-verify-six-digits");
    }
    let rules = CodeRules::from_config(&state.config);
    let verified = codes::verify(&state.db, &flow, &code, rules, chrono::Utc::now()).await?;
    let (tenant_id, contact) = match verified {
        Verified::SignedIn(tenant_id, contact) if tenant_id == tenant.id => (tenant_id, contact),
        _ => return refuse("signin-verify-refused"),
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
