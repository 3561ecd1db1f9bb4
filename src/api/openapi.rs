//! `/openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use super::AppState;
use super::error::{ErrorBody, ErrorDetail};
use super::{
    assignments, audit, chats, classes, contact_requests, contacts, digest, disclosures, erasures,
    graph, health, imports, invitations, oneroster, restrictions, routes, settings,
};
use crate::config::Config;
use crate::contacts::{ContactItem, FieldProvenance, Provenance};
use crate::roster::{ClassItem, StudentItem};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's OpenAPI description but its paths: the info, the shared schemas, the security
/// scheme and the tags. The paths, and the schemas they use, come from the route table
/// ([`routes::Table::openapi`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parent Connection API",
        description = "Connects teachers with the parents and guardians of their students. \
            Every route but the probes and this document needs `Authorization: Bearer <jwt>`; \
            every failure is `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    components(schemas(
        ErrorBody, ErrorDetail, ContactItem, Provenance, FieldProvenance, ClassItem, StudentItem,
        contacts::ContactList, contacts::ContactPatch, classes::ClassPage, classes::StudentPage, graph::EducationUser,
        graph::RelatedContact, imports::ImportRun, imports::ImportRunPage, crate::sync::report::Counts,
        imports::ImportUpload, health::Status,
        crate::approvals::proposal::RequestBody, crate::approvals::proposal::ContactBody,
        crate::approvals::ContactValues, crate::approvals::requests::RequestItem,
        crate::approvals::requests::Status, contact_requests::RequestPage,
        contact_requests::DecisionBody, crate::approvals::erase::Erasure, erasures::EraseBody,
        erasures::Erased, erasures::ErasureList, restrictions::RestrictBody,
        restrictions::RestrictionList, crate::restrictions::Restriction,
        crate::contacts::LinkRestriction, crate::tenants::settings::Settings, settings::SettingsPatch,
        crate::audit::AuditItem, audit::AuditPage, chats::StartBody, chats::ChatList,
        chats::MemberBody, chats::BlockBody, chats::BlockList, chats::GuardianStartBody,
        crate::chats::ChatItem, crate::chats::Member, crate::chats::Banner,
        crate::chats::InvalidMember, crate::chats::blocks::BlockItem,
        crate::invites::InvitationItem, crate::invites::Counter, invitations::ResendBody,
        invitations::Limits, invitations::OutboxView, crate::outbox::store::DeadLetter,
        digest::DeliveryPage, crate::digest::deliver::Delivery, invitations::SuppressionList,
        digest::UnsubscribePage, digest::UnsubscribeBody, crate::digest::unsubscribe::Unsubscribe,
        invitations::InvitationList, crate::domain::InvitationState,
        crate::outbox::store::Suppression, crate::outbox::store::HeldMessage,
        disclosures::DisclosurePage, crate::outbox::disclosures::Disclosure,
        imports::ImportUpload, health::Status, oneroster::RunOptions, oneroster::ConnectionInput,
        crate::sync::oneroster::connection::ConnectionView,
        assignments::AssignmentBody, assignments::AssignmentPage, assignments::ClassDigest,
        assignments::ClassDigestBody, crate::assignments::AssignmentItem,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "contacts", description = "A student's contacts"),
        (name = "classes", description = "Classes and their students"),
        (name = "graph", description = "Microsoft Graph-compatible reads for app-only tokens"),
        (name = "imports", description = "SDS file imports"),
        (name = "contact-requests", description = "Teacher contact edits and admin approval"),
        (name = "erasures", description = "Admin erasure of contacts"),
        (name = "restrictions", description = "Per-child restrictions of a contact (custody, court orders)"),
        (name = "settings", description = "Tenant settings"),
        (name = "audit", description = "The audit log"),
        (name = "digest", description = "The weekly digest: disclosure log, unsubscribes"),
        (name = "disclosures", description = "The disclosure log: each invitation and digest sent, to whom, when, what"),
        (name = "invitations", description = "Invitations, their delivery through the outbox, and SMS replies"),
        (name = "chats", description = "Teacher–guardian chats, block lists and removal banners"),
        (name = "oneroster", description = "OneRoster 1.1 REST sync"),
        (name = "assignments", description = "Class assignments and the weekly digest switch"),
        (name = "probes", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Serves the document ([`document_json`] for this server's configuration, built once).
#[utoipa::path(get, path = "/openapi.json", tag = "probes",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn document(State(state): State<AppState>) -> Response {
    let document = state.openapi.get_or_init(|| document_json(&state.config));
    Json(document).into_response()
}

/// The OpenAPI document as served: the annotations of the route table's handlers
/// ([`routes::Table`]), plus what every route shares and the bounds that come from the
/// configuration, so that the document lists every status a route can answer
/// ([`add_shared_responses`]) and every bound it enforces.
pub fn document_json(config: &Config) -> Value {
    let described = routes::Table::new().openapi(ApiDoc::openapi());
    let mut document = serde_json::to_value(described).unwrap_or(Value::Null);
    if let Some(page_size) =
        document.pointer_mut("/components/schemas/ConnectionInput/properties/pageSize")
    {
        page_size["maximum"] = json!(config.oneroster.max_page_size);
    }
    // The zones a guardian's time zone may be (as `digestTimeZone`'s), and null.
    if let Some(zone) = document.pointer_mut("/components/schemas/ContactPatch/properties/timeZone")
    {
        let mut names: Vec<Value> = crate::domain::TimeZoneName::all()
            .map(Value::from)
            .collect();
        names.push(Value::Null);
        zone["enum"] = Value::Array(names);
    }
    if let Some(patch) = document.pointer_mut("/components/schemas/ContactPatch") {
        patch["minProperties"] = json!(1);
    }
    if let Some(schemas) = document.pointer_mut("/components/schemas") {
        forbid_nul_in_text(schemas);
    }
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                bound_page_parameters(operation, config.api.max_page_size);
                if let Some(parameters) = operation.get_mut("parameters") {
                    forbid_nul_in_text(parameters);
                }
                add_shared_responses(path, operation);
            }
        }
    }
    document
}

/// Text is refused when it holds U+0000 (PostgreSQL cannot store it; `api::extract`), so
/// every free-text string schema (no enum, pattern or format of its own) says so.
fn forbid_nul_in_text(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let text = match map.get("type") {
                Some(Value::String(kind)) => kind == "string",
                Some(Value::Array(kinds)) => kinds.contains(&json!("string")),
                _ => false,
            };
            let free_text = text
                && !["enum", "pattern", "format", "const"]
                    .iter()
                    .any(|k| map.contains_key(*k));
            if free_text {
                map.insert("pattern".into(), json!(NO_NUL));
            }
            map.values_mut().for_each(forbid_nul_in_text);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_nul_in_text),
        _ => {}
    }
}

/// A pattern that any text without U+0000 matches.
const NO_NUL: &str = "^[^\\u0000]*$";

/// The HTTP methods of a path item (its other keys are not operations).
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// `limit` is accepted from 1 to `api.max_page_size` on every list route.
fn bound_page_parameters(operation: &mut Value, max_page_size: u64) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters {
        if parameter["name"] != "limit" || parameter["in"] != "query" {
            continue;
        }
        if let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) {
            schema.insert("minimum".into(), json!(1));
            schema.insert("maximum".into(), json!(max_page_size));
        }
    }
}

/// Adds the answers every route of a kind can give, where its annotation does not already
/// describe them:
/// - routes with a bearer token: 401 (no, bad or expired token), 403 (role or scope), 429
///   (rate limit);
/// - routes with query parameters or a body: 400 (malformed query or JSON, an unknown
///   parameter) and 422 (a well-formed value that is not allowed);
/// - routes with a body: 413 (too large) and 415 (not `application/json`, or the form type
///   the route takes);
/// - routes with path parameters: 404 (nothing there within the caller's reach);
/// - every route under `/api` and `/education`: 408 (the request took longer than
///   `server.request_timeout_seconds`) and 503 `database_busy` (a lock or a pooled
///   connection was not had within `database.request_busy_timeout_ms`, e.g. while an
///   import holds SQLite's write lock), `database_unavailable` (unreachable) or
///   `storage_full` (no room to write), each with `Retry-After`.
fn add_shared_responses(path: &str, operation: &mut Value) {
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let parameters: Vec<Value> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_query = parameters.iter().any(|p| p["in"] == "query");
    let has_path = parameters.iter().any(|p| p["in"] == "path");
    let has_body = operation.get("requestBody").is_some();
    let routed = path.starts_with("/api/") || path.starts_with("/education/");
    let mut shared: Vec<(&str, &str)> = Vec::new();
    if secured {
        shared.extend([
            ("401", "Missing, malformed, expired or unknown token (`unauthenticated`, `invalid_token`, `token_expired`)"),
            ("403", "The caller's role or scope does not allow this route (`forbidden`)"),
            ("429", "Rate limited (`rate_limited`, with `Retry-After`)"),
        ]);
    }
    if has_query || has_body {
        shared.extend([
            ("400", "A malformed query string or body, or an unknown parameter (`invalid_query`, `invalid_body`, `invalid_path`)"),
            ("422", "A well-formed value that is not allowed (the code names the field)"),
        ]);
    }
    if has_body {
        shared.extend([
            (
                "413",
                "The body is larger than the route accepts (`payload_too_large`)",
            ),
            (
                "415",
                "The body is not of the media type the route takes (`unsupported_media_type`)",
            ),
        ]);
    }
    if has_path {
        shared.push((
            "404",
            "Nothing there within the caller's reach (`not_found`)",
        ));
    }
    if routed {
        shared.push((
            "408",
            "The request took longer than the server allows (`request_timeout`)",
        ));
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if routed {
        match responses.get_mut("503") {
            Some(own) => {
                if let Some(text) = own.get("description").and_then(Value::as_str) {
                    own["description"] = json!(format!("{text}; or {BUSY}"));
                }
            }
            None => {
                responses.insert("503".into(), error_response(&capitalised(BUSY)));
            }
        }
    }
    for (status, description) in shared {
        responses
            .entry(status)
            .or_insert_with(|| error_response(description));
    }
}

/// The 503 every routed operation can answer.
const BUSY: &str = "the database is busy: a lock or a pooled connection was not had within `database.request_busy_timeout_ms`, e.g. while an import holds SQLite's write lock (`database_busy`); or it cannot be reached (`database_unavailable`); or it has no room to write (`storage_full`). Each with `Retry-After`; nothing was changed";

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A response whose body is the shared error shape.
fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        let mut config = Config::defaults().unwrap();
        config.api.max_page_size = 321;
        config.oneroster.max_page_size = 77;
        document_json(&config)
    }

    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_parameters_are_scalars() {
        let document = document();
        let mut all = Vec::new();
        refs(&document, &mut all);
        let schemas = &document["components"]["schemas"];
        for target in &all {
            let name = target.trim_start_matches("#/components/schemas/");
            assert!(schemas.get(name).is_some(), "{target} resolves");
        }
        for (path, item) in document["paths"].as_object().unwrap() {
            for operation in item.as_object().unwrap().values() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let schema = &parameter["schema"];
                    let schema = match schema["$ref"].as_str() {
                        Some(target) => {
                            &schemas[target.trim_start_matches("#/components/schemas/")]
                        }
                        None => schema,
                    };
                    assert_ne!(
                        schema["type"], "object",
                        "{path} {}: a query or path parameter is a scalar (two types with one schema name?)",
                        parameter["name"]
                    );
                }
            }
        }
        let status = &document["paths"]["/api/v1/contact-requests"]["get"]["parameters"][0];
        let target = status["schema"]["$ref"].as_str().unwrap();
        let schema = &schemas[target.trim_start_matches("#/components/schemas/")];
        assert_eq!(schema["enum"], json!(["pending", "approved", "rejected"]));
    }

    #[test]
    fn limits_follow_the_configuration_and_shared_answers_are_declared() {
        let document = document();
        let list = &document["paths"]["/api/v1/audit"]["get"];
        let limit = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["minimum"], 1);
        assert_eq!(limit["schema"]["maximum"], 321);
        for status in ["400", "401", "403", "408", "422", "429"] {
            assert!(
                list["responses"].get(status).is_some(),
                "audit list: {status}"
            );
        }
        let start = &document["paths"]["/api/v1/chats"]["post"]["responses"];
        for status in ["413", "415", "503"] {
            assert!(start.get(status).is_some(), "chat start: {status}");
        }
        let settings = &document["paths"]["/api/v1/settings"]["patch"]["responses"]["503"];
        assert!(
            settings["description"]
                .as_str()
                .unwrap()
                .contains("database_busy"),
            "{settings}"
        );
        let page_size =
            &document["components"]["schemas"]["ConnectionInput"]["properties"]["pageSize"];
        assert_eq!(page_size["minimum"], 1);
        assert_eq!(page_size["maximum"], 77);
        let actor = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "actor")
            .unwrap();
        assert_eq!(actor["schema"]["pattern"], NO_NUL, "free text is NUL-free");
        let reason = &document["components"]["schemas"]["DecisionBody"]["properties"]["reason"];
        assert_eq!(reason["pattern"], NO_NUL, "{reason}");
        let probe = &document["paths"]["/healthz"]["get"]["responses"];
        assert!(probe.get("401").is_none(), "probes need no token");
    }
}
