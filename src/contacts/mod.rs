//! Reading a student's contacts: what a teacher sees (active parents and guardians only) and
//! what an admin sees (every role and status, with provenance); and the guardian's
//! preferences an admin sets ([`preferences`]: language, time zone).

pub mod preferences;

use crate::db;
use crate::domain::{LinkStatus, Provenance as Source, Relationship, TenantId};
use crate::roster;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Value};
use serde::Serialize;

/// Which view of a student's contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Active `parent` / `guardian` links only.
    Teacher,
    /// Every link, every role and status, with provenance.
    Admin,
}

/// Whose students' contacts a caller reads, as the policy decided
/// ([`crate::auth::policy::student_contacts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Any student of the tenant, every link ([`View::Admin`]).
    Admin,
    /// Any student of the tenant, active parents and guardians only ([`View::Teacher`]; the
    /// `contacts` command without `--all`).
    Guardians,
    /// The students the teacher with this SIS source id teaches ([`View::Teacher`]).
    TaughtBy(String),
}

impl Scope {
    /// The view this scope reads.
    pub fn view(&self) -> View {
        match self {
            Scope::Admin => View::Admin,
            Scope::Guardians | Scope::TaughtBy(_) => View::Teacher,
        }
    }
}

/// Where a contact's fields came from and when they last changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldProvenance {
    /// `sync`, `approved_edit` or `admin`; for `preferredLanguage` also `guardian` (chosen
    /// by the guardian on their page).
    pub source: Option<String>,
    /// Time of the change that set the value (UTC).
    pub changed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Provenance of each field (admin view only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// Given name.
    pub given_name: FieldProvenance,
    /// Family name.
    pub family_name: FieldProvenance,
    /// Email.
    pub email_address: FieldProvenance,
    /// Mobile phone.
    pub mobile_phone: FieldProvenance,
    /// Relationship (on the link).
    pub relationship: FieldProvenance,
    /// Preferred language (a file's `language` column, an admin, or the guardian).
    pub preferred_language: FieldProvenance,
}

/// One contact of a student (SPEC §10 field names).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactItem {
    /// Contact id.
    pub id: String,
    /// Name to show.
    pub display_name: String,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Valid email, if any.
    pub email_address: Option<String>,
    /// E.164 mobile, if any.
    pub mobile_phone: Option<String>,
    /// Relationship to the student.
    pub relationship: String,
    /// `active` or `inactive`.
    pub status: String,
    /// The language the guardian reads (BCP 47, e.g. `es`), when known: invitations,
    /// digests and their pages are in it when a translation exists.
    pub preferred_language: Option<String>,
    /// The guardian's IANA time zone, when known (quiet hours are read in it).
    pub time_zone: Option<String>,
    /// False when the contact has neither a valid email nor an E.164 mobile.
    pub can_communicate: bool,
    /// Admin view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// Admin view only: when the link was first seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Admin view only: when the link was deactivated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Admin view only: the restriction in force on this link (custody, a court order),
    /// which hides the contact from teachers about this student. Never shown to teachers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<LinkRestriction>,
}

/// The restriction in force on a link, as an admin sees it with the contact.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkRestriction {
    /// Restriction id.
    pub id: String,
    /// Why.
    pub reason: String,
    /// When it ends by itself (UTC), or null for no end.
    pub until: Option<DateTime<Utc>>,
    /// Who restricted.
    pub restricted_by: String,
    /// When (UTC).
    pub restricted_at: DateTime<Utc>,
}

/// Errors of contact reads.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// No such student in the tenant.
    #[error("no student with SIS id '{0}' in this tenant")]
    StudentNotFound(String),
    /// No such contact linked to the student.
    #[error("the contact is not linked to this student")]
    ContactNotFound,
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A contact's name columns (`given_name`, `family_name`, `email`, `mobile_phone`), read by
/// name, for showing the contact.
#[derive(Debug, Clone, Default, sea_orm::FromQueryResult)]
pub(crate) struct ContactName {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
}

impl ContactName {
    /// [`display_name`] of these columns.
    pub fn display(&self) -> String {
        display_name(
            self.given_name.as_deref(),
            self.family_name.as_deref(),
            self.email.as_deref(),
            self.mobile_phone.as_deref(),
        )
    }
}

pub use crate::domain::display_name;

/// Whether `contact` is a contact of `tenant` (one primary-key probe).
pub async fn exists<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    contact: i64,
) -> Result<bool, DbErr> {
    db::exists(
        conn,
        "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1 AND id = $2",
        vec![Value::BigInt(Some(tenant.0)), Value::BigInt(Some(contact))],
    )
    .await
}

/// The contacts of student `student_source_id` in `tenant` within `scope`: one statement, the
/// student by its key (for a teacher, only when the teacher teaches it:
/// [`roster::teaches_student`]) and its links through `student_contacts (student_id,
/// contact_id)`. The student comes back once with no contact when it has none, so "not found
/// or not yours" and "no contacts" stay apart.
pub async fn for_student<C: ConnectionTrait>(
    conn: &C,
    tenant: TenantId,
    student_source_id: &str,
    scope: &Scope,
) -> Result<Vec<ContactItem>, ContactsError> {
    let view = scope.view();
    let mut values = vec![
        Value::BigInt(Some(tenant.0)),
        Value::String(Some(student_source_id.to_string())),
    ];
    let links = match view {
        View::Teacher => concat!(" AND ", crate::visible_link!("l")),
        View::Admin => "",
    };
    let reach = match scope {
        Scope::TaughtBy(teacher) => {
            values.push(Value::String(Some(teacher.clone())));
            format!(" AND {}", roster::teaches_student(3))
        }
        Scope::Admin | Scope::Guardians => String::new(),
    };
    let rows = db::rows::query_as::<ContactRow, _>(
        conn,
        &format!(
            "SELECT c.id, c.given_name, c.family_name, c.email, c.mobile_phone, l.relationship, l.status, \
               c.given_name_provenance, c.given_name_changed_at, c.family_name_provenance, c.family_name_changed_at, \
               c.email_provenance, c.email_changed_at, c.mobile_phone_provenance, c.mobile_phone_changed_at, \
               c.preferred_language_provenance, c.preferred_language_changed_at, \
               l.relationship_provenance, l.relationship_changed_at, l.first_seen_at, l.deactivated_at, \
               r.id AS restriction_id, r.reason AS restriction_reason, r.until AS restriction_until, \
               r.restricted_by AS restriction_by, r.restricted_at AS restriction_at, \
               c.preferred_language, c.time_zone \
             FROM students s \
             LEFT JOIN student_contacts l ON l.student_id = s.id AND l.tenant_id = s.tenant_id{links} \
             LEFT JOIN contacts c ON c.id = l.contact_id \
             LEFT JOIN link_restrictions r ON r.id = l.restriction_id \
             WHERE s.tenant_id = $1 AND s.source_id = $2{reach} \
             ORDER BY l.status, c.family_name, c.given_name, c.id"
        ),
        values,
    )
    .await?;
    if rows.is_empty() {
        return Err(ContactsError::StudentNotFound(
            student_source_id.to_string(),
        ));
    }
    Ok(rows
        .into_iter()
        // The student's own row when it has no contact: no item.
        .filter_map(|row| item(row, view))
        .collect())
}

/// Where one field's value came from and when it changed (`{field}_provenance`,
/// `{field}_changed_at`).
#[derive(FromQueryResult)]
struct FieldRow {
    provenance: Option<Source>,
    changed_at: Option<DateTime<Utc>>,
}

impl From<FieldRow> for FieldProvenance {
    fn from(f: FieldRow) -> Self {
        FieldProvenance {
            source: f.provenance.map(|p| p.as_str().to_string()),
            changed_at: f.changed_at,
        }
    }
}

/// One link of the student with its contact; `id` is null on the student's own row when it
/// has no contact.
#[derive(FromQueryResult)]
struct ContactRow {
    id: Option<i64>,
    #[sea_orm(nested)]
    name: ContactName,
    relationship: Option<Relationship>,
    status: Option<LinkStatus>,
    #[sea_orm(nested(prefix = "given_name_"))]
    given_name_field: FieldRow,
    #[sea_orm(nested(prefix = "family_name_"))]
    family_name_field: FieldRow,
    #[sea_orm(nested(prefix = "email_"))]
    email_field: FieldRow,
    #[sea_orm(nested(prefix = "mobile_phone_"))]
    mobile_phone_field: FieldRow,
    #[sea_orm(nested(prefix = "relationship_"))]
    relationship_field: FieldRow,
    #[sea_orm(nested(prefix = "preferred_language_"))]
    preferred_language_field: FieldRow,
    first_seen_at: Option<DateTime<Utc>>,
    deactivated_at: Option<DateTime<Utc>>,
    #[sea_orm(nested(prefix = "restriction_"))]
    restriction: RestrictionRow,
    preferred_language: Option<String>,
    time_zone: Option<String>,
}

/// The link's restriction in force, if any (`restriction_*`, admin view).
#[derive(FromQueryResult)]
struct RestrictionRow {
    id: Option<i64>,
    reason: Option<String>,
    until: Option<DateTime<Utc>>,
    by: Option<String>,
    at: Option<DateTime<Utc>>,
}

impl RestrictionRow {
    fn item(self) -> Option<LinkRestriction> {
        Some(LinkRestriction {
            id: self.id?.to_string(),
            reason: self.reason.unwrap_or_default(),
            until: self.until,
            restricted_by: self.by.unwrap_or_default(),
            restricted_at: self.at?,
        })
    }
}

fn item(row: ContactRow, view: View) -> Option<ContactItem> {
    let id = row.id?;
    let admin = view == View::Admin;
    let name = row.name;
    Some(ContactItem {
        id: id.to_string(),
        display_name: name.display(),
        can_communicate: name.email.is_some() || name.mobile_phone.is_some(),
        given_name: name.given_name,
        family_name: name.family_name,
        email_address: name.email,
        mobile_phone: name.mobile_phone,
        relationship: row
            .relationship
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        status: row
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        preferred_language: row.preferred_language,
        time_zone: row.time_zone,
        provenance: admin.then(|| Provenance {
            given_name: row.given_name_field.into(),
            family_name: row.family_name_field.into(),
            email_address: row.email_field.into(),
            mobile_phone: row.mobile_phone_field.into(),
            relationship: row.relationship_field.into(),
            preferred_language: row.preferred_language_field.into(),
        }),
        first_seen_at: if admin { row.first_seen_at } else { None },
        deactivated_at: if admin { row.deactivated_at } else { None },
        restriction: if admin { row.restriction.item() } else { None },
    })
}
