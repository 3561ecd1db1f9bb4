//! The administrators' pages (`/admin/…`): each asks the policy first, like its API route.

pub mod settings;

use crate::api::AppState;
use axum::Router;
use axum::routing::get;

/// The administrators' routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/admin/settings", get(settings::show).post(settings::save))
}
