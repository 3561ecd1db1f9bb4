//! `GET /`: the start page of a signed-in person — who they are and the pages they may open.

use super::error::PageError;
use super::layout::{self, Layout};
use super::session::WebSession;
use askama::Template;
use askama_web::WebTemplate;

/// The start page.
#[derive(Template, WebTemplate)]
#[template(path = "web/home.html")]
struct HomePage {
    title: String,
    layout: Layout,
    pages: Vec<(&'static str, &'static str)>,
}

/// Shows the start page (without a session: the sign-in page).
pub async fn show(session: WebSession) -> Result<impl axum::response::IntoResponse, PageError> {
    Ok(HomePage {
        title: "Start".into(),
        pages: layout::reachable(&session.principal),
        layout: Layout::new(&session, "/"),
    })
}
