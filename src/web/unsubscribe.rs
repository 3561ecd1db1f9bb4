//! The digest's one-click unsubscribe URL (RFC 8058), `/unsubscribe/{token}` with a token
//! signed for one guardian ([`crate::links`]):
//! - `POST` unsubscribes that guardian from the weekly digest at once — what mail
//!   providers send for one-click (`List-Unsubscribe=One-Click`, form-urlencoded or
//!   multipart, no cookies) and what the confirmation page's button sends. The body is not
//!   needed: the signed URL is the whole request. Idempotent, audited.
//! - `GET` shows a confirmation page with the button, and changes nothing (link scanners
//!   and previews open links).
//!
//! A token that does not verify, or whose guardian is gone: 404 page.

use super::{Notice, internal};
use crate::api::AppState;
use crate::db;
use crate::digest::unsubscribe::{self, Source};
use crate::links::{Purpose, SignedToken};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, Value};

/// The confirmation page.
#[derive(Template, WebTemplate)]
#[template(path = "web/unsubscribe.html")]
struct Confirm {
    title: String,
    district: String,
    email: String,
    already: bool,
    action: String,
}

fn unknown() -> Response {
    Notice::new(
        "Link not valid",
        &["This unsubscribe link is not valid. Check that you opened the whole link from the email."],
    )
    .with_status(StatusCode::NOT_FOUND)
}

/// The guardian a token names, when it verifies: (token, district, email).
async fn verified(
    state: &AppState,
    raw: &str,
) -> Result<Option<(SignedToken, String, String)>, DbErr> {
    let Some(token) = SignedToken::parse(raw) else {
        return Ok(None);
    };
    if token.purpose != Purpose::DigestUnsubscribe {
        return Ok(None);
    }
    let Some(secret) = crate::links::tenant_secret(&state.db, token.tenant).await? else {
        return Ok(None);
    };
    if !token.verify(&secret) {
        return Ok(None);
    }
    let rows = db::query(
        &state.db,
        "SELECT t.name, c.email FROM contacts c JOIN tenants t ON t.id = c.tenant_id \
         WHERE c.tenant_id = $1 AND c.id = $2",
        vec![
            Value::BigInt(Some(token.tenant.0)),
            Value::BigInt(Some(token.contact)),
        ],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let district: String = row.try_get("", "name")?;
    let email: Option<String> = row.try_get("", "email")?;
    Ok(Some((
        token,
        district,
        email.unwrap_or_else(|| "your address".into()),
    )))
}

/// The confirmation page (changes nothing).
pub async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let (token, district, email) = match verified(&state, &raw).await {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(),
        Err(e) => return internal(e),
    };
    let already = match unsubscribe::is_unsubscribed(&state.db, token.tenant, token.contact).await {
        Ok(already) => already,
        Err(e) => return internal(e),
    };
    Confirm {
        title: if already {
            "You are unsubscribed".into()
        } else {
            "Unsubscribe from the weekly summary".into()
        },
        district,
        email,
        already,
        action: format!("/unsubscribe/{raw}"),
    }
    .into_response()
}

/// One-click unsubscribe (RFC 8058) and the confirmation page's button.
pub async fn one_click(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let (token, district, email) = match verified(&state, &raw).await {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(),
        Err(e) => return internal(e),
    };
    let actor = format!("contact:{}", token.contact);
    match unsubscribe::unsubscribe(
        &state.db,
        token.tenant,
        token.contact,
        Source::Guardian,
        &actor,
    )
    .await
    {
        Ok(Some(_)) => Notice {
            title: "You are unsubscribed".into(),
            lines: vec![
                format!(
                    "{email} will not receive the weekly assignment summary from {district} any more."
                ),
                "Invitations and messages from teachers are not affected. The school can turn the summary back on for you.".into(),
            ],
            link: None,
        }
        .with_status(StatusCode::OK),
        Ok(None) => unknown(),
        Err(e) => internal(e),
    }
}
