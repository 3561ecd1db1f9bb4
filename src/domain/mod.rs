//! Parse-don't-validate newtypes: once a value has one of these types it is known to be
//! well-formed, so the rest of the code never re-checks it.

mod chat;
mod email;
mod invitation;
mod link;
mod names;
mod phone;
mod relationship;
mod request;
mod sds;
mod tenant;
mod time_zone;
pub mod visibility;

pub use chat::{BannerCause, ChatStarter};
pub use email::EmailAddress;
pub use invitation::{InvitationState, StateInputs, expires_at};
pub use link::{LinkStatus, Provenance};
pub use names::display_name;
pub use phone::{PhoneE164, Region};
pub use relationship::Relationship;
pub use request::{RequestAction, RequestStatus};
pub use sds::{AcademicSessionType, EnrollmentKind, OrgType, RoleGroup, SdsRole};
pub use tenant::{TenantId, TenantSlug};
pub use time_zone::TimeZoneName;

/// Why a raw value was refused by one of the newtypes' parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
