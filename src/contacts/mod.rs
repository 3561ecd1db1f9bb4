//! Reading a student's contacts: what a teacher sees (active parents and guardians only) and
//! what an admin sees (every role and status, with provenance).

use crate::db;
use crate::domain::TenantId;
use crate::roster;
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Value};
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
    /// `sync`, `approved_edit` or `admin`.
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
}

/// Errors of contact reads.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// No such student in the tenant.
    #[error("no student with SIS id '{0}' in this tenant")]
    StudentNotFound(String),
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Display name: "Given Family", else the email, else the phone.
pub fn display_name(
    given: Option<&str>,
    family: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> String {
    let name = [given, family]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if !name.is_empty() {
        return name;
    }
    email.or(phone).unwrap_or("(no name)").to_string()
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
    let rows = db::query(
        conn,
        &format!(
            "SELECT c.id, c.given_name, c.family_name, c.email, c.mobile_phone, l.relationship, l.status, \
               c.given_name_provenance, c.given_name_changed_at, c.family_name_provenance, c.family_name_changed_at, \
               c.email_provenance, c.email_changed_at, c.mobile_phone_provenance, c.mobile_phone_changed_at, \
               l.relationship_provenance, l.relationship_changed_at, l.first_seen_at, l.deactivated_at \
             FROM students s \
             LEFT JOIN student_contacts l ON l.student_id = s.id AND l.tenant_id = s.tenant_id{links} \
             LEFT JOIN contacts c ON c.id = l.contact_id \
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
    rows.iter()
        // The student's own row when it has no contact: no item.
        .filter(|row| !matches!(row.try_get_by_index::<Option<i64>>(0), Ok(None)))
        .map(|row| item(row, view))
        .collect::<Result<_, DbErr>>()
        .map_err(Into::into)
}

fn item(row: &QueryResult, view: View) -> Result<ContactItem, DbErr> {
    let text = |i: usize| row.try_get_by_index::<Option<String>>(i);
    let time = |i: usize| row.try_get_by_index::<Option<chrono::DateTime<chrono::Utc>>>(i);
    let field = |i: usize| -> Result<FieldProvenance, DbErr> {
        Ok(FieldProvenance {
            source: text(i)?,
            changed_at: time(i + 1)?,
        })
    };
    let id: i64 = row.try_get_by_index(0)?;
    let (given, family, email, phone) = (text(1)?, text(2)?, text(3)?, text(4)?);
    let admin = view == View::Admin;
    Ok(ContactItem {
        id: id.to_string(),
        display_name: display_name(
            given.as_deref(),
            family.as_deref(),
            email.as_deref(),
            phone.as_deref(),
        ),
        can_communicate: email.is_some() || phone.is_some(),
        given_name: given,
        family_name: family,
        email_address: email,
        mobile_phone: phone,
        relationship: text(5)?.unwrap_or_default(),
        status: text(6)?.unwrap_or_default(),
        provenance: if admin {
            Some(Provenance {
                given_name: field(7)?,
                family_name: field(9)?,
                email_address: field(11)?,
                mobile_phone: field(13)?,
                relationship: field(15)?,
            })
        } else {
            None
        },
        first_seen_at: if admin { time(17)? } else { None },
        deactivated_at: if admin { time(18)? } else { None },
    })
}
