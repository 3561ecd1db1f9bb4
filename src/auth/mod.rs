//! Authentication: who is calling. Bearer JWTs carry a tenant, a subject and either roles
//! (a person) or scopes (an app-only credential). [`keys`] verifies them with keys from the
//! configuration only, [`mint`] signs development tokens for the `token` command, and
//! [`policy`] decides what a verified [`Principal`] may reach.

pub mod claims;
pub mod keys;
pub mod mint;
pub mod policy;

use crate::domain::TenantId;
use axum::http::HeaderValue;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use claims::Claims;
pub use keys::{TokenError, Verifier};

/// A role of a person in a tenant (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Teaches classes; sees the students enrolled in them.
    Teacher,
    /// District administrator: every student, class and import of the tenant.
    GlobalAdmin,
    /// Teams administrator: the same reach as a global admin.
    TeamsAdmin,
    /// Manages tenant settings; may read import runs.
    TenantAdmin,
}

impl Role {
    /// Every role, in the order the documentation lists them.
    pub const ALL: [Role; 4] = [
        Role::Teacher,
        Role::GlobalAdmin,
        Role::TeamsAdmin,
        Role::TenantAdmin,
    ];

    /// The name used in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::GlobalAdmin => "global-admin",
            Role::TeamsAdmin => "teams-admin",
            Role::TenantAdmin => "tenant-admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "unknown role '{raw}': use one of teacher, global-admin, teams-admin, tenant-admin"
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission of an app-only credential, e.g. `EduRoster.Read.All`: 1–100 characters of
/// letters, digits, `.`, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    /// Reads the roster and related contacts of every student of the tenant.
    pub const ROSTER_READ_ALL: &'static str = "EduRoster.Read.All";
    /// Reads and writes the roster; includes [`Scope::ROSTER_READ_ALL`].
    pub const ROSTER_READ_WRITE_ALL: &'static str = "EduRoster.ReadWrite.All";
    /// Reads and writes the assignments of every class of the tenant (integrations that
    /// load assignments for the weekly digest).
    pub const ASSIGNMENTS_READ_WRITE_ALL: &'static str = "EduAssignments.ReadWrite.All";

    /// Parses a scope name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 100
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(format!(
                "'{raw}' is not a valid scope: use letters, digits, '.', '-' and '_'"
            ))
        }
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of caller a verified token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A person of the school (`sub` is their SIS source id), with their roles.
    User {
        /// SIS source id (staff `sourcedId`).
        source_id: String,
        /// Roles the token grants (unknown role names are ignored).
        roles: Vec<Role>,
    },
    /// An app-only credential (`sub` is the app's id), with its scopes.
    App {
        /// The application's id.
        app_id: String,
        /// Scopes the token grants.
        scopes: Vec<Scope>,
    },
    /// A parent or guardian (`sub` is the contact id): the guardian chat routes only.
    Contact {
        /// Contact id.
        contact_id: String,
    },
}

impl Identity {
    /// The kind (`user`, `app` or `contact`) and the token's subject.
    pub fn subject(&self) -> (&'static str, &str) {
        match self {
            Identity::User { source_id, .. } => (claims::KIND_USER, source_id),
            Identity::App { app_id, .. } => (claims::KIND_APP, app_id),
            Identity::Contact { contact_id } => (claims::KIND_CONTACT, contact_id),
        }
    }
}

/// A bearer token that verified: the tenant slug it names (not yet looked up) and the
/// identity it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The `tenant` claim.
    pub tenant_slug: String,
    /// Who the token stands for.
    pub identity: Identity,
}

impl VerifiedToken {
    /// Who the token is for, whichever token it is: tenant, kind and subject. Two tokens
    /// of one person (a refreshed one, one signed with another key) have the same subject.
    pub fn subject(&self) -> (&str, &'static str, &str) {
        let (kind, id) = self.identity.subject();
        (&self.tenant_slug, kind, id)
    }
}

/// What a request's `Authorization` header proves. Read once per request (the API's
/// rate-limit middleware keeps it in the request's extensions) and used by the
/// [`Principal`] extractor, so a token is verified once per request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    NotBearer,
    /// A bearer token that does not verify, or names no identity.
    Refused(TokenError),
    /// A verified bearer token.
    Verified(Arc<VerifiedToken>),
}

impl Credential {
    /// Reads and verifies the `Authorization` header `value`.
    pub fn read(value: Option<&HeaderValue>, verifier: &Verifier) -> Self {
        let Some(value) = value else {
            return Self::Missing;
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Self::NotBearer;
        };
        let verified = verifier.verify(token).and_then(|claims| {
            Ok(VerifiedToken {
                identity: keys::identity(&claims)?,
                tenant_slug: claims.tenant,
            })
        });
        match verified {
            Ok(token) => Self::Verified(Arc::new(token)),
            Err(e) => Self::Refused(e),
        }
    }
}

/// A verified caller, scoped to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant every query of the request is scoped by.
    pub tenant: TenantId,
    /// The tenant's slug (from the token).
    pub tenant_slug: String,
    /// Who the caller is.
    pub identity: Identity,
    /// Where the request came in: the API (a bearer token) or a page (a session).
    pub via: Via,
}

/// Where a caller's request came in; the audit log's actor names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The JSON API, with a bearer token.
    Api,
    /// A page, with a session cookie.
    Web,
}

impl Via {
    /// `api` or `web`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Web => "web",
        }
    }
}

impl Principal {
    /// True when the caller is a person holding `role`.
    pub fn has_role(&self, role: Role) -> bool {
        matches!(&self.identity, Identity::User { roles, .. } if roles.contains(&role))
    }

    /// True when the caller is an app holding scope `name`.
    pub fn has_scope(&self, name: &str) -> bool {
        matches!(&self.identity, Identity::App { scopes, .. } if scopes.iter().any(|s| s.as_str() == name))
    }

    /// A short name for logs and the audit log: `api:user:<id>@<tenant>` (also `app:`,
    /// `contact:`; `web:` for a page session), never the token.
    pub fn actor(&self) -> String {
        let (kind, id) = self.identity.subject();
        format!("{}:{kind}:{id}@{}", self.via.as_str(), self.tenant_slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_parse() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!(Scope::parse("EduRoster.Read.All").is_ok());
        assert!(Scope::parse("a b").is_err());
        assert!(Scope::parse("").is_err());
    }
}
