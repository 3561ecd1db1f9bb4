//! The administrators' pages (`/admin/…`): each asks the policy first, like its API route.

pub mod approvals;
pub mod audit;
pub mod settings;
pub mod students;

use crate::api::AppState;
use axum::Router;
use axum::routing::get;

/// The administrators' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/settings", get(settings::show).post(settings::save))
        .route("/admin/approvals", get(approvals::queue))
        .route(
            "/admin/approvals/{id}",
            get(approvals::show).post(approvals::decide),
        )
        .route("/admin/students/{id}", get(students::show))
        .route(
            "/admin/students/{id}/contacts/{contact}/erase",
            get(students::confirm).post(students::erase),
        )
        .route("/admin/audit", get(audit::show))
}
