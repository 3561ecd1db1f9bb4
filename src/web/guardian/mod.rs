//! The parents' and guardians' pages: signing in with a one-time code ([`signin`]:
//! `GET|POST /signin/code`, `GET|POST /signin/code/verify`) and their own page ([`page`]:
//! `GET /guardian` — their children and their teachers, their chats, a chat with a teacher,
//! the weekly digest, text messages and their language — with its forms
//! `POST /guardian/chats`, `POST /guardian/digest`, `POST /guardian/sms`,
//! `POST /guardian/language`). The join page (`/join/{token}`) signs a
//! guardian in too ([`super::join`]).

pub mod page;
pub mod signin;

use crate::api::AppState;
use axum::Router;
use axum::routing::{get, post};

/// The guardians' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signin/code", get(signin::ask).post(signin::send))
        .route(
            "/signin/code/verify",
            get(signin::enter).post(signin::check),
        )
        .route("/guardian", get(page::show))
        .route("/guardian/chats", post(page::start_chat))
        .route("/guardian/digest", post(page::digest))
        .route("/guardian/sms", post(page::sms))
        .route("/guardian/language", post(page::language))
}
