//! Teacher–guardian chats started from Parent Connection (SPEC §7): the records of who is
//! in which chat about which student ([`store`]), the owners' block lists ([`blocks`]),
//! and the removal banners shown to a chat's owner when a guardian stops being an active
//! contact of the student ([`banners`]).
//!
//! Who may call what is decided in [`crate::auth::policy`]; this module enforces the rules
//! about the data: members are active parents/guardians of the chat's student, a blocked
//! guardian starts no chat with the owner who blocked them, banners are the owner's alone.

pub(crate) mod banners;
pub(crate) mod blocks;
pub(crate) mod store;

pub use banners::Cause;
pub use blocks::BlockItem;
pub use store::{ChatPage, StartChat, Viewer};

use sea_orm::DbErr;
use serde::Serialize;

/// Why a chat operation failed. Each variant maps to one API error code.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No such chat, student, contact or block within the caller's reach.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Some proposed members cannot be in a chat about this student.
    #[error("these contacts cannot be in a chat about this student: {}", .0.iter().map(|m| format!("{} ({})", m.contact_id, m.reason)).collect::<Vec<_>>().join(", "))]
    InvalidMembers(Vec<InvalidMember>),
    /// The request names more ids in `field` than [`store::MAX_MEMBERS`].
    #[error("{field}: at most {max} ids")]
    TooMany {
        /// `contactIds` or `teacherIds`.
        field: &'static str,
        /// The cap.
        max: usize,
    },
    /// The request names no guardian.
    #[error("name at least one guardian in contactIds")]
    NoMembers,
    /// The owner blocked this guardian (the owner's side: lift the block first).
    #[error("contact {0} is on your block list; lift the block to chat with them")]
    ContactBlocked(String),
    /// The owner blocked this guardian (the guardian's side).
    #[error("this teacher does not accept chats from you")]
    Blocked,
    /// Database failure; nothing was changed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A contact that cannot be a member, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvalidMember {
    /// The contact id as given.
    pub contact_id: String,
    /// `not_a_contact_of_student`, `inactive`, `not_parent_or_guardian` or `blocked`.
    pub reason: &'static str,
}

/// One member of a chat.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// `guardian` or `teacher`.
    pub kind: String,
    /// Contact id (guardians) or SIS source id (teachers).
    pub id: String,
    /// Name to show (`(erased contact)` once a guardian's data was erased).
    pub display_name: String,
    /// A guardian's relationship to the student.
    pub relationship: Option<String>,
    /// A guardian's link to the student: `active`, `inactive` or `erased`.
    pub link_status: Option<String>,
    /// When the member was added (UTC).
    pub added_at: chrono::DateTime<chrono::Utc>,
}

/// A removal banner (shown to the chat's owner only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Banner {
    /// The guardian to remove.
    pub contact_id: String,
    /// `sync`, `approved_edit` or `erased`.
    pub cause: String,
    /// What the owner reads.
    pub message: String,
    /// When the guardian stopped being an active contact (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A chat as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatItem {
    /// Chat id.
    pub id: String,
    /// The owner's SIS source id (a teacher).
    pub owner_id: String,
    /// The student's SIS source id.
    pub student_id: String,
    /// `owner` (started by the teacher) or `guardian`.
    pub started_by: String,
    /// Current members (the owner is not listed).
    pub members: Vec<Member>,
    /// Removal banners: only in the owner's view; empty for everyone else.
    pub banners: Vec<Banner>,
    /// Invitations of guardians who have not joined, with their delivery status (the
    /// owner's view only; on a start, also those not sent, with the reason).
    pub invitations: Vec<crate::invites::InvitationItem>,
    /// True when an existing chat was re-entered instead of a new one started.
    pub reentered: bool,
    /// When the chat was started (UTC).
    pub created_at: chrono::DateTime<chrono::Utc>,
}
