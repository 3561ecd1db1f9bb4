//! `GET /signin?next=…`: the sign-in page. Staff sign in with their district account
//! (OpenID Connect: [`super::oidc`]) when `web.oidc.issuer` is set; otherwise the page says
//! staff sign-in is not configured. With `web.token_signin` it also has the development
//! sign-in form (a token, posted to `POST /web/session`: [`super::session::token_sign_in`]).
//! A marked `<section>` holds the guardians' sign-in.

use super::oidc::Settings;
use crate::api::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};

/// The sign-in page.
#[derive(Template, WebTemplate)]
#[template(path = "web/signin.html")]
struct SignInPage {
    title: String,
    /// The link that starts the staff sign-in; `None` when OIDC is not configured.
    staff: Option<String>,
    /// Where the development sign-in form posts; `None` without `web.token_signin`.
    token_action: Option<String>,
    /// The guardians' code sign-in (`/signin/code`, with the page's `?tenant=`).
    code_href: String,
}

/// `GET /signin` parameters.
#[derive(Debug, serde::Deserialize)]
pub struct SignInQuery {
    /// Where to go once signed in (a local path).
    pub next: Option<String>,
    /// The district, for the guardians' code sign-in (needed when there are several).
    pub tenant: Option<String>,
}

/// `path` with the query `next=…` when `next` is not `/`.
fn with_next(path: &str, next: &str) -> String {
    if next == "/" {
        return path.to_string();
    }
    let mut url = reqwest::Url::parse("http://localhost").expect("a URL");
    url.set_path(path);
    url.query_pairs_mut().append_pair("next", next);
    format!("{path}?{}", url.query().unwrap_or_default())
}

/// Shows the sign-in page.
pub async fn show(State(state): State<AppState>, Query(query): Query<SignInQuery>) -> Response {
    let next = super::session::local_path(query.next.as_deref());
    let configured = matches!(Settings::from_config(&state.config.web), Ok(Some(_)));
    SignInPage {
        title: "Sign in".into(),
        staff: configured.then(|| with_next("/web/oidc/start", &next)),
        token_action: state
            .config
            .web
            .token_signin
            .then(|| with_next("/web/session", &next)),
        code_href: match query
            .tenant
            .as_deref()
            .map(crate::domain::TenantSlug::parse)
        {
            Some(Ok(slug)) => format!("/signin/code?tenant={}", slug.as_str()),
            _ => "/signin/code".into(),
        },
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_carried_encoded() {
        assert_eq!(with_next("/web/oidc/start", "/"), "/web/oidc/start");
        assert_eq!(
            with_next("/web/oidc/start", "/admin/settings?tab=a&b=c"),
            "/web/oidc/start?next=%2Fadmin%2Fsettings%3Ftab%3Da%26b%3Dc"
        );
    }
}
