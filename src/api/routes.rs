//! The route table: the one declaration of every API route. [`super::router`] serves it
//! (adding each group's limits) and [`super::openapi`] describes it, so a route cannot be
//! served without being documented, or documented without being served.
//!
//! A route's method and path are those of its handler's `#[utoipa::path]`; registering the
//! handler here with [`routes!`] is all it takes to add it to both. One [`routes!`] call
//! holds the handlers of one path only (utoipa-axum registers a call's handlers on each of
//! its paths). The pages under `/join`, `/unsubscribe` and `/static` are not part of the
//! API or its document: [`crate::web::router`] declares them.

use super::{
    AppState, assignments, audit, chats, classes, contact_requests, contacts, digest, disclosures,
    erasures, graph, health, imports, invitations, oneroster, openapi, restrictions, settings,
};
use axum::http::Method;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The API's routes, grouped by the limits they share ([`super::router`] applies them).
pub(crate) struct Table {
    /// The probes, `/openapi.json` and the SMS gateway's webhook: no token, no per-client
    /// rate limit; the request body limit and timeout.
    pub probes: OpenApiRouter<AppState>,
    /// The routes with a bearer token: the request body limit and timeout.
    pub requests: OpenApiRouter<AppState>,
    /// Import uploads: the upload body limit and the import timeout.
    pub uploads: OpenApiRouter<AppState>,
    /// OneRoster runs: the request body limit and the import timeout.
    pub runs: OpenApiRouter<AppState>,
}

impl Table {
    /// Every route, by group.
    pub fn new() -> Self {
        Self {
            probes: probes(),
            requests: requests(),
            uploads: OpenApiRouter::default().routes(routes!(imports::list, imports::create)),
            runs: OpenApiRouter::default().routes(routes!(oneroster::run)),
        }
    }

    /// `base` (the document's info, shared components, tags) with the paths of every route
    /// and the schemas they use.
    pub fn openapi(self, base: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
        OpenApiRouter::with_openapi(base)
            .merge(self.probes)
            .merge(self.requests)
            .merge(self.uploads)
            .merge(self.runs)
            .into_openapi()
    }
}

fn probes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::document))
        // The gateway's few addresses send every STOP of a district: never 429 them.
        .routes(routes!(invitations::inbound_sms))
}

fn requests() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(contacts::student_contacts))
        .routes(routes!(contacts::update))
        .routes(routes!(classes::list))
        .routes(routes!(classes::students))
        .routes(routes!(assignments::list, assignments::create))
        .routes(routes!(assignments::replace, assignments::remove))
        .routes(routes!(assignments::get_digest, assignments::set_digest))
        .routes(routes!(graph::user))
        .routes(routes!(imports::get))
        .routes(routes!(contact_requests::submit))
        .routes(routes!(contact_requests::list))
        .routes(routes!(contact_requests::get))
        .routes(routes!(contact_requests::approve))
        .routes(routes!(contact_requests::reject))
        .routes(routes!(erasures::erase_one))
        .routes(routes!(erasures::erase_all))
        .routes(routes!(erasures::list))
        .routes(routes!(erasures::lift))
        .routes(routes!(restrictions::restrict, restrictions::lift))
        .routes(routes!(restrictions::list))
        .routes(routes!(settings::get, settings::update))
        .routes(routes!(audit::list))
        .routes(routes!(chats::list, chats::start))
        .routes(routes!(chats::get))
        .routes(routes!(chats::add_member))
        .routes(routes!(chats::remove_member))
        .routes(routes!(chats::list_blocks, chats::block))
        .routes(routes!(chats::unblock))
        .routes(routes!(chats::guardian_list, chats::guardian_start))
        .routes(routes!(invitations::for_chat, invitations::resend))
        .routes(routes!(invitations::for_contact))
        .routes(routes!(digest::unsubscribes, digest::add_unsubscribe))
        .routes(routes!(digest::lift_unsubscribe))
        .routes(routes!(invitations::limits))
        .routes(routes!(invitations::get))
        .routes(routes!(digest::deliveries))
        .routes(routes!(disclosures::list))
        .routes(routes!(invitations::outbox_view))
        .routes(routes!(invitations::requeue))
        .routes(routes!(invitations::urgent))
        .routes(routes!(invitations::suppressions))
        .routes(routes!(invitations::lift_suppression))
        .routes(routes!(
            oneroster::get_connection,
            oneroster::put_connection
        ))
}

/// Every route of the API as `(method, path)`, the path as the OpenAPI document writes it
/// (`/api/v1/chats/{id}`), from the route table.
pub fn list() -> Vec<(Method, String)> {
    let document = Table::new().openapi(utoipa::openapi::OpenApi::default());
    document
        .paths
        .paths
        .iter()
        .flat_map(|(path, item)| {
            methods(item)
                .into_iter()
                .map(move |method| (method, path.clone()))
        })
        .collect()
}

/// The methods a path item has an operation for.
fn methods(item: &PathItem) -> Vec<Method> {
    [
        (Method::GET, item.get.is_some()),
        (Method::PUT, item.put.is_some()),
        (Method::POST, item.post.is_some()),
        (Method::DELETE, item.delete.is_some()),
        (Method::OPTIONS, item.options.is_some()),
        (Method::HEAD, item.head.is_some()),
        (Method::PATCH, item.patch.is_some()),
        (Method::TRACE, item.trace.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, present)| present.then_some(method))
    .collect()
}
