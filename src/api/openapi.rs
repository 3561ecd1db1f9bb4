//! `/openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use super::error::{ErrorBody, ErrorDetail};
use super::{
    assignments, audit, chats, classes, contact_requests, contacts, digest, erasures, graph,
    health, imports, invitations, oneroster, settings,
};
use crate::contacts::{ContactItem, FieldProvenance, Provenance};
use crate::roster::{ClassItem, StudentItem};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parent Connection API",
        description = "Connects teachers with the parents and guardians of their students. \
            Every route but the probes and this document needs `Authorization: Bearer <jwt>`; \
            every failure is `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        health::healthz,
        health::readyz,
        contacts::student_contacts,
        classes::list,
        classes::students,
        graph::user,
        imports::create,
        imports::list,
        imports::get,
        contact_requests::submit,
        contact_requests::list,
        contact_requests::get,
        contact_requests::approve,
        contact_requests::reject,
        erasures::erase_one,
        erasures::erase_all,
        erasures::list,
        erasures::lift,
        settings::get,
        settings::update,
        audit::list,
        chats::start,
        chats::list,
        chats::get,
        chats::add_member,
        chats::remove_member,
        chats::block,
        chats::list_blocks,
        chats::unblock,
        chats::guardian_start,
        chats::guardian_list,
        invitations::resend,
        digest::deliveries,
        digest::unsubscribes,
        digest::add_unsubscribe,
        digest::lift_unsubscribe,
        invitations::for_chat,
        invitations::for_contact,
        invitations::get,
        invitations::limits,
        invitations::outbox_view,
        invitations::requeue,
        invitations::inbound_sms,
        invitations::suppressions,
        invitations::lift_suppression,
        oneroster::run,
        oneroster::get_connection,
        oneroster::put_connection,
        assignments::create,
        assignments::list,
        assignments::replace,
        assignments::remove,
        assignments::get_digest,
        assignments::set_digest,
        document,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, ContactItem, Provenance, FieldProvenance, ClassItem, StudentItem,
        contacts::ContactList, classes::ClassPage, classes::StudentPage, graph::EducationUser,
        graph::RelatedContact, imports::ImportRun, imports::ImportRunPage, crate::sync::report::Counts,
        imports::ImportUpload, health::Status,
        crate::approvals::proposal::RequestBody, crate::approvals::proposal::ContactBody,
        crate::approvals::ContactValues, crate::approvals::requests::RequestItem,
        crate::approvals::requests::Status, contact_requests::RequestPage,
        contact_requests::DecisionBody, crate::approvals::erase::Erasure, erasures::EraseBody,
        erasures::Erased, erasures::ErasureList, crate::tenants::settings::Settings,
        crate::audit::AuditItem, audit::AuditPage, chats::StartBody, chats::ChatList,
        chats::MemberBody, chats::BlockBody, chats::BlockList, chats::GuardianStartBody,
        crate::chats::ChatItem, crate::chats::Member, crate::chats::Banner,
        crate::chats::InvalidMember, crate::chats::blocks::BlockItem,
        crate::invites::InvitationItem, crate::invites::Counter, invitations::ResendBody,
        invitations::Limits, invitations::OutboxView, crate::outbox::store::DeadLetter,
        digest::DeliveryPage, crate::digest::deliver::Delivery, invitations::SuppressionList,
        digest::UnsubscribePage, digest::UnsubscribeBody, crate::digest::unsubscribe::Unsubscribe,
        invitations::InvitationList, crate::domain::InvitationState,
        crate::outbox::store::Suppression,
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
        (name = "settings", description = "Tenant settings"),
        (name = "audit", description = "The audit log"),
        (name = "digest", description = "The weekly digest: disclosure log, unsubscribes"),
        (name = "invitations", description = "Invitations, their delivery through the outbox, and SMS replies"),
        (name = "chats", description = "Teacher–guardian chats, block lists and removal banners"),
        (name = "oneroster", description = "OneRoster 1.1 REST sync"),
        (name = "assignments", description = "Class assignments and the weekly digest switch"),
        (name = "probes", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

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

/// Serves the document.
#[utoipa::path(get, path = "/openapi.json", tag = "probes",
    responses((status = 200, description = "This document", body = Object)))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
