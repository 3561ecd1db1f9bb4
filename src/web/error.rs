//! The pages' one error type, mapped to an HTML page once ([`PageError::into_response`]):
//! the status page of [`super::status_page`], a sign-in redirect, or the 503 page of a busy
//! database. A form's own mistakes are not errors: the form comes back with the message
//! next to its field ([`super::form`]).

use super::{Notice, busy_page, status_page};
use crate::approvals::ApprovalError;
use crate::auth::policy::Denied;
use crate::chats::ChatError;
use crate::contacts::ContactsError;
use crate::tenants::TenantError;
use crate::tenants::settings::SettingsError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sea_orm::DbErr;

/// Why a page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session on a page that needs one: go to `/signin?next=<path>`.
    #[error("sign in first")]
    SignIn(String),
    /// No session on a form post (or a refused token): the 401 page.
    #[error("not signed in")]
    Unauthenticated,
    /// Not this person's to see or do (the message says why).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No such thing, or out of the caller's reach.
    #[error("not found")]
    NotFound,
    /// The database failed (busy: the 503 page).
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The database is busy (an import holds it): the 503 page with `Retry-After`.
    #[error("the database is busy")]
    Busy,
    /// A fault of ours, logged.
    #[error("{0}")]
    Internal(String),
}

impl From<Denied> for PageError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::NotFound => PageError::NotFound,
            Denied::Forbidden(why) => PageError::Forbidden(why),
            Denied::Db(e) => PageError::Db(e),
        }
    }
}

// The capabilities' errors as pages: what a person caused is its page (404, 403), a
// database failure stays `Db` (a busy database is the 503 page), the rest is ours (500).

impl From<TenantError> for PageError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound(_) => PageError::NotFound,
            TenantError::Db(e) => PageError::Db(e),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<ChatError> for PageError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::NotFound(_) => PageError::NotFound,
            ChatError::Db(e) => PageError::Db(e),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<ContactsError> for PageError {
    fn from(e: ContactsError) -> Self {
        match e {
            ContactsError::StudentNotFound(_) | ContactsError::ContactNotFound => {
                PageError::NotFound
            }
            ContactsError::Db(e) => PageError::Db(e),
        }
    }
}

/// Shown when the tenant turned teacher edits off.
pub(crate) const EDITS_OFF: &str = "Your district has turned off teacher edits of parent and guardian information. Ask the school office to make the change.";

impl From<ApprovalError> for PageError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::NotFound(_) => PageError::NotFound,
            ApprovalError::EditsDisabled => PageError::Forbidden(EDITS_OFF),
            ApprovalError::Db(e) => PageError::Db(e),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<crate::restrictions::RestrictionError> for PageError {
    fn from(e: crate::restrictions::RestrictionError) -> Self {
        use crate::restrictions::RestrictionError as E;
        match e {
            E::NotFound(_) => PageError::NotFound,
            E::Db(e) => PageError::Db(e),
            // The form checks its fields first: one refused here is ours.
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<SettingsError> for PageError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::NotFound => PageError::NotFound,
            SettingsError::Db(e) => PageError::Db(e),
            SettingsError::Invalid(e) => PageError::Internal(e.to_string()),
        }
    }
}

/// The `/signin` URL that comes back to `next`.
pub fn sign_in_url(next: &str) -> String {
    let mut url = String::from("/signin?next=");
    url.extend(next.bytes().map(|b| match b {
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
            (b as char).to_string()
        }
        _ => format!("%{b:02X}"),
    }));
    url
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::SignIn(next) => Redirect::to(&sign_in_url(&next)).into_response(),
            PageError::Unauthenticated => Notice::new(
                "Please sign in",
                &["Your session has ended or you are not signed in. Sign in again and repeat what you were doing."],
            )
            .with_link("/signin", "Sign in")
            .with_status(StatusCode::UNAUTHORIZED),
            PageError::Forbidden(why) => Notice::new("Not allowed", &[why])
                .with_link("/", "Back to the start page")
                .with_status(StatusCode::FORBIDDEN),
            PageError::NotFound => status_page(StatusCode::NOT_FOUND),
            PageError::Db(e) => {
                if crate::db::busy::caused_outage(&e).is_some() {
                    tracing::warn!(error = %e, "page answered busy");
                    return busy_page();
                }
                tracing::error!(error = %e, "page failed");
                status_page(StatusCode::INTERNAL_SERVER_ERROR)
            }
            PageError::Busy => busy_page(),
            PageError::Internal(why) => {
                tracing::error!(error = %why, "page failed");
                status_page(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_url_encodes_next() {
        assert_eq!(
            sign_in_url("/admin/settings?a=1&b=2"),
            "/signin?next=/admin/settings%3Fa%3D1%26b%3D2"
        );
    }
}
