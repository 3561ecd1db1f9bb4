//! SDS v2.1 CSV: `orgs.csv`, `users.csv`, `roles.csv` required; `classes.csv` and
//! `enrollments.csv` together; `relationships.csv` carries the contacts. File names exact,
//! headers case-sensitive. Users are split into students / staff / contacts later, in SQL,
//! from `roles.csv` and `relationships.csv`.

use super::checks::{
    Collected, Collection, Derive, Equals, GuardedFile, Reference, Rules, UniqueKey, reference,
};
use super::csv_file::{FileSpec, IssueSink, Row};
use super::files::{NameMatch, ParseCtx};
use super::hashing::hash_strs_then_optional;
use super::staging::StageTable::{self, *};
use crate::domain::{AcademicSessionType, OrgType, Relationship, RoleGroup, SdsRole};

/// Every file name of the format, in reading order.
pub const FILES: &[&str] = &[
    "orgs.csv",
    "users.csv",
    "roles.csv",
    "classes.csv",
    "enrollments.csv",
    "relationships.csv",
    "academicSessions.csv",
    "courses.csv",
    "demographics.csv",
    "userFlags.csv",
];

/// How file names are matched: exactly, as SDS v2.1 writes them.
pub(crate) const NAME_MATCH: NameMatch = NameMatch::Exact;

/// The cross-file rules of SDS v2.1 (see [`Rules`]).
pub(crate) const RULES: Rules = Rules {
    keys: KEYS,
    references: REFERENCES,
    derive: Some(Derive {
        reads: &[
            (Roles, "user_id"),
            (Roles, "role_group"),
            (Users, "source_id"),
        ],
        in_memory: split_users,
    }),
    derived_references: ROLE_REFERENCES,
};

/// Optional files whose absence would deactivate rows earlier syncs delivered.
pub(crate) const GUARDED_FILES: &[GuardedFile] = &[
    GuardedFile {
        file: "relationships.csv",
        needed: &["relationships.csv"],
        deactivated: |e| e.links.deactivated,
    },
    GuardedFile {
        file: "classes.csv",
        needed: &["classes.csv", "enrollments.csv"],
        deactivated: |e| e.classes.deactivated + e.enrollments.deactivated,
    },
];

/// Files that must be present.
pub const REQUIRED: &[&str] = &["orgs.csv", "users.csv", "roles.csv"];

const fn spec(required: &'static [&'static str], optional: &'static [&'static str]) -> FileSpec {
    FileSpec {
        required,
        optional,
        case_insensitive: false,
    }
}

/// Columns of the file.
pub const ORGS: FileSpec = spec(&["sourcedId", "name", "type"], &["parentSourcedId"]);
/// Columns of the file.
pub const ROLES: FileSpec = spec(
    &["userSourcedId", "orgSourcedId", "role"],
    &[
        "sessionSourcedId",
        "grade",
        "isPrimary",
        "roleStartDate",
        "roleEndDate",
    ],
);
/// Columns of the file.
pub const USERS: FileSpec = spec(
    &["sourcedId", "username"],
    &[
        "givenName",
        "familyName",
        "email",
        "phone",
        "sms",
        "middleName",
        "activeDirectoryMatchId",
        "language",
    ],
);
/// Columns of the file.
pub const CLASSES: FileSpec = spec(
    &["sourcedId", "orgSourcedId", "title"],
    &["courseSourcedId", "sessionSourcedIds"],
);
/// Columns of the file.
pub const ENROLLMENTS: FileSpec = spec(&["classSourcedId", "userSourcedId", "role"], &[]);
/// Columns of the file.
pub const RELATIONSHIPS: FileSpec = spec(
    &[
        "userSourcedId",
        "relationshipUserSourcedId",
        "relationshipRole",
    ],
    &[],
);

/// Relationship roles accepted in `relationships.csv`.
const RELATIONSHIP_ROLES: [Relationship; 6] = [
    Relationship::Parent,
    Relationship::Guardian,
    Relationship::Relative,
    Relationship::Aide,
    Relationship::Doctor,
    Relationship::Other,
];

/// `sync_hash` of a `users.csv` row: its raw values (before email and phone validation,
/// so an unchanged row can be recognised without validating it again) and the region they
/// are read in. The optional `language` counts only when it holds a value, so files without
/// one hash as they did before the column was read.
pub fn user_hash(row: &Row<'_>, region_code: &str) -> i64 {
    hash_strs_then_optional(
        &[
            "sds-v2.1",
            region_code,
            row.get("givenName"),
            row.get("familyName"),
            row.get("email"),
            row.get("sms"),
            row.get("phone"),
        ],
        row.get("language"),
    )
}

/// Reads the optional files that are only checked (well-formed, keys present, a session
/// `type` SDS documents): nothing in them is stored yet.
pub fn read_well_formed(ctx: &mut ParseCtx<'_>) {
    ctx.read(
        "academicSessions.csv",
        spec(&["sourcedId", "type"], &[]),
        StageTable::Users,
        |_, row, sink, _| {
            row.require(&["sourcedId", "type"], sink) && session_type(row, sink).is_some()
        },
    );
    for (file, key) in [
        ("courses.csv", "sourcedId"),
        ("demographics.csv", "userSourcedId"),
        ("userFlags.csv", "userSourcedId"),
    ] {
        let columns: &'static [&'static str] = match key {
            "sourcedId" => &["sourcedId"],
            _ => &["userSourcedId"],
        };
        ctx.read(
            file,
            spec(columns, &[]),
            StageTable::Users,
            |_, row, sink, _| row.require(&[key], sink),
        );
    }
}

/// Reports a value refused by one of the domain parsers at `column`.
fn invalid(row: &Row<'_>, column: &str, sink: &mut IssueSink, message: String) {
    sink.error(row.issue(column, "invalid_value", message));
}

/// The `type` of an `orgs.csv` row; reports a value SDS does not document.
pub fn org_type(row: &Row<'_>, sink: &mut IssueSink) -> Option<OrgType> {
    OrgType::parse(row.get("type"))
        .map_err(|e| invalid(row, "type", sink, e.0))
        .ok()
}

/// The `type` of an `academicSessions.csv` row; reports a value SDS does not document.
pub fn session_type(row: &Row<'_>, sink: &mut IssueSink) -> Option<AcademicSessionType> {
    AcademicSessionType::parse(row.get("type"))
        .map_err(|e| invalid(row, "type", sink, e.0))
        .ok()
}

/// A `roles.csv` role: one SDS documents, or a OneRoster contact role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRole {
    /// A role SDS documents.
    Sds(SdsRole),
    /// `parent`, `guardian` or `relative` (OneRoster's contact roles, which earlier versions
    /// of this service accepted here): neither student nor staff.
    Contact(Relationship),
}

impl OrgRole {
    /// Contact roles accepted in `roles.csv` besides the SDS list.
    pub const CONTACT_ROLES: [Relationship; 3] = [
        Relationship::Parent,
        Relationship::Guardian,
        Relationship::Relative,
    ];

    /// The role as SDS (or OneRoster) writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sds(role) => role.as_str(),
            Self::Contact(relationship) => relationship.as_str(),
        }
    }

    /// The role group.
    pub fn group(self) -> RoleGroup {
        match self {
            Self::Sds(role) => role.group(),
            Self::Contact(_) => RoleGroup::None,
        }
    }

    /// The group as collected in `StageTable::Roles`'s `role_group`.
    pub fn group_name(self) -> &'static str {
        match self.group() {
            RoleGroup::Staff => "staff",
            RoleGroup::Student => "student",
            RoleGroup::None => "none",
        }
    }
}

/// The `role` of a `roles.csv` row; reports a value that is not accepted.
pub fn org_role(row: &Row<'_>, sink: &mut IssueSink) -> Option<OrgRole> {
    let raw = row.get("role");
    if let Ok(role) = SdsRole::parse(raw) {
        return Some(OrgRole::Sds(role));
    }
    if let Some(contact) = Relationship::parse(raw)
        .ok()
        .filter(|r| OrgRole::CONTACT_ROLES.contains(r))
    {
        return Some(OrgRole::Contact(contact));
    }
    let contacts = OrgRole::CONTACT_ROLES.map(|r| r.as_str()).join(", ");
    invalid(
        row,
        "role",
        sink,
        format!(
            "'{raw}' is not a role; expected one of {}, or for a contact {contacts} (any case)",
            SdsRole::accepted()
        ),
    );
    None
}

/// The `role` of an enrollment row (any role SDS documents); reports others.
pub fn enrollment_role(row: &Row<'_>, sink: &mut IssueSink) -> Option<SdsRole> {
    SdsRole::parse(row.get("role"))
        .map_err(|e| {
            let message =
                e.0.replacen("is not a role", "is not an enrollment role", 1);
            invalid(row, "role", sink, message)
        })
        .ok()
}

/// Code of the warning for an enrollment that is not stored (see [`skip_enrollment`]).
pub const ENROLLMENT_SKIPPED: &str = "enrollment_skipped";

/// Warns that an enrollment whose role has no role group (`other`) is not stored.
pub fn skip_enrollment(row: &Row<'_>, role: SdsRole, sink: &mut IssueSink) {
    sink.warning(row.issue(
        "role",
        ENROLLMENT_SKIPPED,
        format!("'{role}' is neither a student nor a staff role: the enrollment was skipped"),
    ));
}

/// The `relationshipRole` of a relationship row; reports one that is not accepted.
pub fn relationship_role(row: &Row<'_>, sink: &mut IssueSink) -> Option<Relationship> {
    let raw = row.get("relationshipRole");
    let relationship = Relationship::parse(raw)
        .ok()
        .filter(|r| RELATIONSHIP_ROLES.contains(r));
    if relationship.is_none() {
        let valid = RELATIONSHIP_ROLES.map(|r| r.as_str()).join(", ");
        sink.error(row.issue(
            "relationshipRole",
            "invalid_value",
            format!("'{raw}' is not a relationship role; expected one of {valid}"),
        ));
    }
    relationship
}

/// Whole-set problems found before parsing (missing files, files that only make sense
/// together).
pub fn check_set(files: &super::files::FileSet, sink: &mut super::csv_file::IssueSink) {
    files.require(REQUIRED, "an SDS v2.1 file set", sink);
    files.require_together("classes.csv", "enrollments.csv", sink);
}

/// Keys unique within the file set.
const KEYS: &[UniqueKey] = &[
    UniqueKey {
        table: Schools,
        columns: &["source_id"],
        header: "sourcedId",
        what: "org sourcedId",
    },
    UniqueKey {
        table: Users,
        columns: &["source_id"],
        header: "sourcedId",
        what: "user sourcedId",
    },
    UniqueKey {
        table: Roles,
        columns: &["user_id", "org_id", "role"],
        header: "userSourcedId",
        what: "role (user / org / role)",
    },
    UniqueKey {
        table: Classes,
        columns: &["source_id"],
        header: "sourcedId",
        what: "class sourcedId",
    },
    UniqueKey {
        table: Enrollments,
        columns: &["class_id", "person_id", "role"],
        header: "userSourcedId",
        what: "enrollment (class / user / role; every staff role counts as teacher)",
    },
    UniqueKey {
        table: Links,
        columns: &["student_id", "contact_key"],
        header: "relationshipUserSourcedId",
        what: "relationship (student / contact)",
    },
];

/// References between the files.
const REFERENCES: &[Reference] = &[
    reference(
        Roles,
        "user_id",
        Users,
        "source_id",
        "userSourcedId",
        "is not a user in users.csv",
    ),
    reference(
        Roles,
        "org_id",
        Schools,
        "source_id",
        "orgSourcedId",
        "is not an org in orgs.csv",
    ),
    reference(
        Classes,
        "school_source_id",
        Schools,
        "source_id",
        "orgSourcedId",
        "is not an org in orgs.csv",
    ),
    reference(
        Enrollments,
        "class_id",
        Classes,
        "source_id",
        "classSourcedId",
        "is not a class in classes.csv",
    ),
    reference(
        Enrollments,
        "person_id",
        Users,
        "source_id",
        "userSourcedId",
        "is not a user in users.csv",
    ),
    reference(
        Links,
        "student_id",
        Users,
        "source_id",
        "userSourcedId",
        "is not a user in users.csv",
    ),
    reference(
        Links,
        "contact_key",
        Users,
        "source_id",
        "relationshipUserSourcedId",
        "is not a user in users.csv",
    ),
];

/// Run after [`split_users`]: references that need the users' kinds.
const ROLE_REFERENCES: &[Reference] = &[
    reference(
        Links,
        "student_id",
        Students,
        "source_id",
        "userSourcedId",
        "is not a student (no student role in roles.csv)",
    ),
    Reference {
        when: Some(Equals {
            column: "role",
            value: "student",
        }),
        ..reference(
            Enrollments,
            "person_id",
            Students,
            "source_id",
            "userSourcedId",
            "is enrolled as a student but has no student role in roles.csv",
        )
    },
    Reference {
        when: Some(Equals {
            column: "role",
            value: "teacher",
        }),
        ..reference(
            Enrollments,
            "person_id",
            Staff,
            "source_id",
            "userSourcedId",
            "is enrolled in a staff role but is not staff in roles.csv (a staff role and no student role)",
        )
    },
];

/// Splits `users.csv`, for the rule columns in memory, into students (a Student-group role)
/// and staff (a Staff-group role and no student role); roles without a group (`other`,
/// contact roles) make a user neither, and contacts are named by no rule.
fn split_users(collected: &mut Collected) {
    const STUDENT: u8 = 1;
    const STAFF: u8 = 2;
    let mut groups: std::collections::HashMap<&str, u8> = std::collections::HashMap::new();
    if let Some(roles) = collected.table(Roles) {
        for row in 0..roles.len() {
            let bit = match roles.get(row, "role_group") {
                Some("student") => STUDENT,
                Some("staff") => STAFF,
                _ => continue,
            };
            if let Some(user) = roles.get(row, "user_id") {
                *groups.entry(user).or_default() |= bit;
            }
        }
    }
    let mut students = Collection::new(Students, &["source_id"]);
    let mut staff = Collection::new(Staff, &["source_id"]);
    if let Some(users) = collected.table(Users) {
        for row in 0..users.len() {
            let Some(id) = users.get(row, "source_id") else {
                continue;
            };
            let bits = groups.get(id).copied().unwrap_or(0);
            if bits & STUDENT != 0 {
                students.push(users.place(row), [Some(id)]);
            } else if bits & STAFF != 0 {
                staff.push(users.place(row), [Some(id)]);
            }
        }
    }
    drop(groups);
    collected.replace(students);
    collected.replace(staff);
}
