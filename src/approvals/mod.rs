//! Teacher-proposed contact edits that wait for an admin's decision (SPEC §4), and admin
//! erasures of contacts (SPEC §3.3).
//!
//! - [`proposal`] parses a submission (parse, don't validate: a [`Proposal`] is known good);
//! - [`requests`] stores pending requests (with `Idempotency-Key` replays) and lists them
//!   with the current and proposed values side by side;
//! - [`decide`] approves or rejects: approval applies the change atomically as provenance
//!   `approved_edit`, with the approval time as its change time;
//! - [`erase`] erases a contact from a student, and lifts an erasure.
//!
//! Nothing here decides who may act: the handlers ask [`crate::auth::policy`] first.

pub(crate) mod decide;
pub(crate) mod erase;
pub(crate) mod proposal;
pub(crate) mod requests;

pub use decide::{Decision, OnMatch};
pub use erase::{EraseRequest, Erasure, ErasureFilter};
pub use proposal::{Action, ContactBody, ContactFields, Proposal, RequestBody};
pub use requests::{
    ListFilter, MAX_IDEMPOTENCY_KEY, MatchedContact, RequestItem, Status, Submission,
};

use sea_orm::DbErr;

/// Why an approvals operation failed. Each variant maps to one API error code.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// A field of the submission is not valid (`field` is the JSON field name).
    #[error("{field}: {message}")]
    InvalidField {
        /// JSON field name, e.g. `contact.emailAddress`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The tenant switched teacher edits off (`update_parent_information`).
    #[error("teacher edits of parent information are turned off for this tenant")]
    EditsDisabled,
    /// The proposal changes nothing.
    #[error("the proposal is the same as the current values")]
    NoChange,
    /// The same `Idempotency-Key` was sent with a different body.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// No such request, student, contact or erasure (within the tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request was decided already (by someone else, or before).
    #[error("the request was already {0}")]
    AlreadyDecided(String),
    /// The contact changed after the request was made; approve again with `confirmStale`.
    #[error(
        "the contact changed after the request was made; review the current values and approve with confirmStale: true"
    )]
    Stale(Box<serde_json::Value>),
    /// The contact or its link to the student no longer exists (erased).
    #[error("the contact is no longer linked to the student (erased)")]
    ContactGone,
    /// The approver made this request: another approver decides it.
    #[error("you made this request: another approver decides it")]
    OwnRequest,
    /// The added contact's email is an existing contact's: approve again with `onMatch`
    /// (`link` it, or `create` a new contact). The details show the match.
    #[error(
        "a contact of the district already has this email; review it and approve with onMatch: \"link\" (link that contact) or \"create\" (a new contact)"
    )]
    MatchToConfirm(Box<serde_json::Value>),
    /// The erasure was lifted already.
    #[error("the erasure was already lifted")]
    AlreadyLifted,
    /// Database failure; nothing was changed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// The contact values a request is about, as the API shows them (camelCase).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ContactValues {
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email.
    pub email_address: Option<String>,
    /// E.164 mobile.
    pub mobile_phone: Option<String>,
    /// Relationship to the student.
    pub relationship: Option<String>,
    /// Link status (`active` / `inactive`), when there is a link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
