//! Parse-don't-validate newtypes: once a value has one of these types it is known to be
//! well-formed, so the rest of the code never re-checks it.

mod chat;
mod digest_day;
mod email;
mod invitation;
mod language;
mod link;
mod names;
mod phone;
mod quiet_hours;
mod relationship;
mod request;
mod roster_status;
mod sds;
mod tenant;
mod text;
mod time_zone;
pub mod visibility;

pub use chat::{BannerCause, ChatStarter};
pub use digest_day::{DEFAULT_DIGEST_HOUR, DEFAULT_DIGEST_TIME_ZONE, DigestDay, parse_digest_hour};
pub use email::EmailAddress;
pub use invitation::{DEFAULT_VALIDITY_DAYS, InvitationState, StateInputs, expires_at};
pub use language::LanguageTag;
pub use link::{LinkStatus, Provenance};
pub use names::display_name;
pub use phone::{PhoneE164, Region};
pub use quiet_hours::{LocalTime, QuietHours};
pub use relationship::Relationship;
pub use request::{RequestAction, RequestStatus};
pub use roster_status::{RosterStatus, RunStatus};
pub use sds::{AcademicSessionType, EnrollmentKind, OrgType, RoleGroup, SdsRole};
pub use tenant::{TenantId, TenantSlug};
pub use text::{MAX_REASON_CHARS, Reason, ReasonError, json_holds_nul};
pub use time_zone::TimeZoneName;

/// Why a raw value was refused by one of the newtypes' parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
