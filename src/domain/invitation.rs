//! The state of an invitation as guardians and staff see it, derived (never stored) from
//! the invitation row, its outbox row, the tenant's validity and the guardian's link.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Days a join link stays valid when the tenant did not choose (`invitationValidityDays`).
pub const DEFAULT_VALIDITY_DAYS: i32 = 14;

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationState {
    /// Queued or being sent.
    Pending,
    /// Delivered to the mail server or the SMS gateway; waiting for the guardian.
    Sent,
    /// The guardian accepted it on the join page.
    Accepted,
    /// Older than the tenant's `invitationValidityDays` and not accepted.
    Expired,
    /// The guardian is no longer an active contact of the child.
    Cancelled,
    /// Delivery failed for good (refused, out of attempts, or suppressed).
    Failed,
}

/// What the state is derived from.
#[derive(Debug, Clone, Copy)]
pub struct StateInputs<'a> {
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was accepted.
    pub accepted_at: Option<DateTime<Utc>>,
    /// The tenant's validity in days.
    pub validity_days: i64,
    /// The guardian is an active contact of the chat's student.
    pub link_active: bool,
    /// The outbox status (`queued`, `sending`, `sent`, `failed`, `dead`, `suppressed`).
    pub delivery: Option<&'a str>,
}

impl InvitationState {
    /// The state at `now`: accepted wins, then cancelled, expired, failed, sent, pending.
    pub fn derive(inputs: StateInputs<'_>, now: DateTime<Utc>) -> Self {
        if inputs.accepted_at.is_some() {
            InvitationState::Accepted
        } else if !inputs.link_active {
            InvitationState::Cancelled
        } else if now >= expires_at(inputs.created_at, inputs.validity_days) {
            InvitationState::Expired
        } else {
            match inputs.delivery {
                Some("failed" | "dead" | "suppressed") => InvitationState::Failed,
                Some("sent") => InvitationState::Sent,
                _ => InvitationState::Pending,
            }
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Sent => "sent",
            InvitationState::Accepted => "accepted",
            InvitationState::Expired => "expired",
            InvitationState::Cancelled => "cancelled",
            InvitationState::Failed => "failed",
        }
    }
}

/// When an invitation created at `created_at` stops being valid.
pub fn expires_at(created_at: DateTime<Utc>, validity_days: i64) -> DateTime<Utc> {
    created_at + Duration::days(validity_days.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_their_precedence() {
        let now = Utc::now();
        let base = StateInputs {
            created_at: now - Duration::days(1),
            accepted_at: None,
            validity_days: 14,
            link_active: true,
            delivery: Some("sent"),
        };
        let state = |inputs| InvitationState::derive(inputs, now);
        assert_eq!(state(base), InvitationState::Sent);
        assert_eq!(
            state(StateInputs {
                delivery: Some("queued"),
                ..base
            }),
            InvitationState::Pending
        );
        assert_eq!(
            state(StateInputs {
                delivery: Some("dead"),
                ..base
            }),
            InvitationState::Failed
        );
        assert_eq!(
            state(StateInputs {
                validity_days: 1,
                ..base
            }),
            InvitationState::Expired
        );
        assert_eq!(
            state(StateInputs {
                link_active: false,
                validity_days: 1,
                ..base
            }),
            InvitationState::Cancelled
        );
        assert_eq!(
            state(StateInputs {
                accepted_at: Some(now),
                link_active: false,
                ..base
            }),
            InvitationState::Accepted
        );
    }
}
