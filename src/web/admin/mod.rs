//! The administrators' pages (`/admin/…`): each asks the policy first, like its API route.

pub mod approvals;
pub mod audit;
pub mod digest;
pub mod disclosures;
pub mod imports;
pub mod oneroster;
pub mod outbox;
pub mod restrictions;
pub mod settings;
pub mod students;

use crate::api::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

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
            "/admin/oneroster",
            get(oneroster::show).post(oneroster::save),
        )
        .route("/admin/digest", get(digest::show))
        .route("/admin/oneroster/test", post(oneroster::test))
        .route("/admin/oneroster/run", post(oneroster::run))
        .route("/admin/outbox", get(outbox::show))
        .route("/admin/outbox/{id}/requeue", post(outbox::requeue))
        .route(
            "/admin/outbox/invitations/{id}/urgent",
            post(outbox::urgent),
        )
        .route(
            "/admin/outbox/suppressions/{id}/lift",
            post(outbox::lift_suppression),
        )
        .route(
            "/admin/outbox/unsubscribes/{id}/lift",
            post(outbox::resubscribe),
        )
        .route(
            "/admin/imports/{id}/errors.csv",
            get(imports::errors_download),
        )
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
        .route(
            "/admin/students/{id}/contacts/{contact}/restrict",
            get(restrictions::confirm).post(restrictions::restrict),
        )
        .route(
            "/admin/students/{id}/contacts/{contact}/restriction/lift",
            post(restrictions::lift),
        )
        .route("/admin/audit", get(audit::show))
        .route("/admin/disclosures", get(disclosures::show))
}
