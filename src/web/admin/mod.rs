//! The administrators' pages (`/admin/…`): each asks the policy first, like its API route.

pub mod imports;
pub mod settings;

use crate::api::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

/// The administrators' routes (`max_upload_bytes`: `api.max_upload_bytes`, the body limit of
/// the import upload, as on the API).
pub fn routes(max_upload_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/admin/settings", get(settings::show).post(settings::save))
        .route(
            "/admin/imports",
            get(imports::show)
                .post(imports::upload)
                .layer(DefaultBodyLimit::max(max_upload_bytes)),
        )
        .route("/admin/imports/{id}", get(imports::run))
        .route(
            "/admin/imports/{id}/errors.csv",
            get(imports::errors_download),
        )
}
