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
use crate::i18n::{Arg, Locale};
use crate::links::{Purpose, SignedToken};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, Value};

/// The confirmation page, in the guardian's language.
#[derive(Template, WebTemplate)]
#[template(path = "web/unsubscribe.html")]
struct Confirm {
    title: String,
    lang: &'static str,
    skip: String,
    ask: String,
    done: String,
    unaffected: String,
    button: String,
    already: bool,
    action: String,
}

/// A link that does not verify: nothing says whose language to use.
fn unknown() -> Response {
    Notice::new(
        "Link not valid",
        &["This unsubscribe link is not valid. Check that you opened the whole link from the email."],
    )
    .with_status(StatusCode::NOT_FOUND)
}

/// The guardian a verified token names.
struct Guardian {
    token: SignedToken,
    district: String,
    email: String,
    locale: Locale,
}

impl Guardian {
    fn says(&self, id: &str) -> String {
        self.locale.format(
            id,
            &[
                ("district", Arg::Text(&self.district)),
                ("email", Arg::Text(&self.email)),
            ],
        )
    }
}

/// The guardian a token names, when it verifies.
async fn verified(state: &AppState, raw: &str) -> Result<Option<Guardian>, DbErr> {
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
        "SELECT t.name, c.email, c.preferred_language, ts.default_language \
         FROM contacts c JOIN tenants t ON t.id = c.tenant_id \
         JOIN tenant_settings ts ON ts.tenant_id = c.tenant_id \
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
    let text = |column: &str| row.try_get::<Option<String>>("", column);
    let locale = Locale::negotiate(
        text("preferred_language")?.as_deref(),
        text("default_language")?.as_deref(),
    );
    Ok(Some(Guardian {
        token,
        district: row.try_get("", "name")?,
        email: text("email")?.unwrap_or_else(|| locale.text("unsubscribe-your-address")),
        locale,
    }))
}

/// The confirmation page (changes nothing).
pub async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let guardian = match verified(&state, &raw).await {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(),
        Err(e) => return internal(e),
    };
    let token = &guardian.token;
    let already = match unsubscribe::is_unsubscribed(&state.db, token.tenant, token.contact).await {
        Ok(already) => already,
        Err(e) => return internal(e),
    };
    let l = guardian.locale;
    Confirm {
        title: l.text(if already {
            "unsubscribe-title-done"
        } else {
            "unsubscribe-title"
        }),
        lang: l.tag(),
        skip: l.text("skip-to-content"),
        ask: guardian.says("unsubscribe-ask"),
        done: guardian.says("unsubscribe-already"),
        unaffected: l.text("unsubscribe-unaffected"),
        button: l.text("unsubscribe-button"),
        already,
        action: format!("/unsubscribe/{raw}"),
    }
    .into_response()
}

/// One-click unsubscribe (RFC 8058) and the confirmation page's button.
pub async fn one_click(State(state): State<AppState>, Path(raw): Path<String>) -> Response {
    let guardian = match verified(&state, &raw).await {
        Ok(Some(found)) => found,
        Ok(None) => return unknown(),
        Err(e) => return internal(e),
    };
    let token = &guardian.token;
    let actor = format!("contact:{}", token.contact);
    let l = guardian.locale;
    match unsubscribe::unsubscribe(
        &state.db,
        token.tenant,
        token.contact,
        Source::Guardian,
        &actor,
    )
    .await
    {
        Ok(Some(_)) => Notice::new(
            l.text("unsubscribe-title-done"),
            &[
                &guardian.says("unsubscribe-done"),
                &l.text("unsubscribe-undo"),
            ],
        )
        .in_language(l)
        .with_status(StatusCode::OK),
        Ok(None) => unknown(),
        Err(e) => internal(e),
    }
}
