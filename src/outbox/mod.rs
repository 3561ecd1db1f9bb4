//! The transactional outbox (SPEC §5): a message to send is a row written in the same
//! transaction as the thing it announces (an invitation; later the weekly digest), and a
//! dispatcher delivers it afterwards — claiming due rows so that several dispatchers on one
//! PostgreSQL never send the same row twice, sending through [`email`] or [`sms`], and
//! recording the outcome: sent, retried with capped exponential backoff and jitter
//! ([`backoff`]), failed for good, dead-lettered after `outbox.max_attempts`, or suppressed
//! (an opted-out number). Bodies are rendered at send time from the row's reference, so the
//! table stays small.

pub(crate) mod backoff;
pub mod consent;
pub mod disclosures;
pub mod dispatcher;
pub mod email;
pub mod port;
pub mod sms;
pub(crate) mod store;
pub mod suppressions;

use std::time::Duration;

pub use crate::entities::outbox::{Channel, MessageKind, Status};
/// The store's public surface: what a message kind receives ([`Claimed`]), and the claim,
/// outcome and suppression steps a test of crash recovery or bounces drives directly.
pub use store::{Claimed, Hold, Outcome, claim, record, release, renew, suppress_email};

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// Parses the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

impl MessageKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Invitation => "invitation",
            MessageKind::Digest => "digest",
            MessageKind::SignInCode => "sign_in_code",
        }
    }

    /// Parses the stored name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "invitation" => Some(MessageKind::Invitation),
            "digest" => Some(MessageKind::Digest),
            "sign_in_code" => Some(MessageKind::SignInCode),
            _ => None,
        }
    }
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Dead => "dead",
            Status::Suppressed => "suppressed",
        }
    }
}

/// A rendered message, ready for a transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Stable id of the message (`<outbox.ID@DOMAIN>`): the email Message-ID and the SMS
    /// idempotency key, the same on every attempt.
    pub message_id: String,
    /// Email address or E.164 number.
    pub to: String,
    /// Email subject (none for SMS).
    pub subject: Option<String>,
    /// Plain-text body.
    pub body: String,
    /// Unsubscribe addresses of a bulk message (the weekly digest): sent as
    /// `List-Unsubscribe` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
    pub list_unsubscribe: Option<ListUnsubscribe>,
    /// The language the body is written in (a BCP 47 tag): the email's `Content-Language`.
    pub language: Option<&'static str>,
}

/// Where the recipient of a bulk message unsubscribes (RFC 2369 `List-Unsubscribe`, with
/// RFC 8058 one-click on the HTTPS URL).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListUnsubscribe {
    /// The HTTPS one-click URL: a POST of `List-Unsubscribe=One-Click` unsubscribes.
    pub url: String,
    /// A `mailto:` address, when a mailbox is configured.
    pub mailto: Option<String>,
}

/// Why a send did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// Worth retrying (SMTP 4xx, HTTP 429/5xx, timeouts, connection errors).
    pub transient: bool,
    /// What happened (stored as the row's last error; never holds secrets).
    pub reason: String,
    /// The server's `Retry-After`, if any.
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// A failure worth retrying.
    pub fn transient(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        Self {
            transient: true,
            reason: reason.into(),
            retry_after,
        }
    }

    /// A final failure.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            transient: false,
            reason: reason.into(),
            retry_after: None,
        }
    }
}

/// The stable Message-ID of outbox row `id`.
pub fn message_id(id: i64, domain: &str) -> String {
    format!("<outbox.{id}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_names_are_the_active_enum_values() {
        for kind in MessageKind::iter() {
            assert_eq!(kind.to_value(), kind.as_str());
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        for channel in Channel::iter() {
            assert_eq!(channel.to_value(), channel.as_str());
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        for status in Status::iter() {
            assert_eq!(status.to_value(), status.as_str());
        }
        assert_eq!(MessageKind::parse("fax"), None);
    }
}
