//! SDS v1 (classic) CSV: six roster files (`School.csv`, `Section.csv`, `Student.csv`,
//! `Teacher.csv`, `StudentEnrollment.csv`, `TeacherRoster.csv`, possibly header-only) and the
//! parent files `User.csv` (`Email,First Name,Last Name,Phone,SIS ID`) and
//! `Guardianrelationship.csv` (`SIS ID,Email,Role`, where SIS ID is the *student's*).
//! File names and headers are matched regardless of case; a contact's key is its email.

use super::checks::{Equals, GuardedFile, Reference, Rules, UniqueKey, reference};
use super::csv_file::FileSpec;
use super::files::{Channels, FileSet, NameMatch, ParseCtx, copy_columns, read_language};
use super::hashing::hash_strs_then_optional;
use super::staging::StageTable::{self, *};
use crate::domain::{EnrollmentKind, Relationship};

/// Every file name of the format, in reading order.
pub const FILES: &[&str] = &[
    "School.csv",
    "Section.csv",
    "Student.csv",
    "Teacher.csv",
    "StudentEnrollment.csv",
    "TeacherRoster.csv",
    "User.csv",
    "Guardianrelationship.csv",
];

/// How file names are matched: regardless of case.
pub(crate) const NAME_MATCH: NameMatch = NameMatch::CaseInsensitive;

/// The cross-file rules of SDS v1 (see [`Rules`]).
pub(crate) const RULES: Rules = Rules {
    keys: KEYS,
    references: REFERENCES,
    derive: None,
    derived_references: &[],
};

/// Optional files whose absence would deactivate rows earlier syncs delivered.
pub(crate) const GUARDED_FILES: &[GuardedFile] = &[GuardedFile {
    file: "Guardianrelationship.csv",
    needed: &["User.csv", "Guardianrelationship.csv"],
    deactivated: |e| e.links.deactivated,
}];

/// The six roster files: required, but they may hold only a header.
pub const ROSTER: &[&str] = &[
    "School.csv",
    "Section.csv",
    "Student.csv",
    "Teacher.csv",
    "StudentEnrollment.csv",
    "TeacherRoster.csv",
];

const fn spec(required: &'static [&'static str], optional: &'static [&'static str]) -> FileSpec {
    FileSpec {
        required,
        optional,
        case_insensitive: true,
    }
}

/// The key of a v1 contact: its email, lower-cased.
pub fn contact_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Parses every present file of the set into staging.
pub fn parse(ctx: &mut ParseCtx<'_>) {
    let region = ctx.region;
    let region_code = region.code();
    ctx.read(
        "School.csv",
        spec(&["SIS ID", "Name"], &[]),
        StageTable::Schools,
        copy_columns(StageTable::Schools, &["SIS ID"], &["SIS ID", "Name"]),
    );
    ctx.read(
        "Section.csv",
        spec(&["SIS ID", "School SIS ID", "Section Name"], &[]),
        StageTable::Classes,
        copy_columns(
            StageTable::Classes,
            &["SIS ID", "School SIS ID"],
            &["SIS ID", "School SIS ID", "Section Name"],
        ),
    );
    ctx.read(
        "Student.csv",
        spec(
            &["SIS ID", "School SIS ID", "Username"],
            &["First Name", "Last Name"],
        ),
        StageTable::Students,
        copy_columns(
            StageTable::Students,
            &["SIS ID", "School SIS ID"],
            &["SIS ID", "First Name", "Last Name"],
        ),
    );
    ctx.read(
        "Teacher.csv",
        spec(
            &["SIS ID", "School SIS ID", "Username"],
            &["First Name", "Last Name", "Email"],
        ),
        StageTable::Staff,
        |src, row, sink, stage| {
            if !row.require(&["SIS ID", "School SIS ID"], sink) {
                return false;
            }
            let email = row.opt("Email").or_else(|| row.opt("Username"));
            stage.push(
                StageTable::Staff,
                src,
                row.record,
                vec![
                    row.opt("SIS ID"),
                    row.opt("First Name"),
                    row.opt("Last Name"),
                    email,
                    Some("teacher".into()),
                ],
            );
            true
        },
    );
    for (file, role) in [
        ("StudentEnrollment.csv", EnrollmentKind::Student),
        ("TeacherRoster.csv", EnrollmentKind::Teacher),
    ] {
        ctx.read(
            file,
            spec(&["Section SIS ID", "SIS ID"], &[]),
            StageTable::Enrollments,
            |src, row, sink, stage| {
                if !row.require(&["Section SIS ID", "SIS ID"], sink) {
                    return false;
                }
                stage.push(
                    StageTable::Enrollments,
                    src,
                    row.record,
                    vec![
                        row.opt("Section SIS ID"),
                        row.opt("SIS ID"),
                        Some(role.as_str().into()),
                    ],
                );
                true
            },
        );
    }
    ctx.read(
        "User.csv",
        spec(
            &["Email", "First Name", "Last Name", "Phone", "SIS ID"],
            &["Language"],
        ),
        StageTable::Contacts,
        |src, row, sink, stage| {
            if !row.require(&["Email"], sink) {
                return false;
            }
            let channels = Channels::read(row, "Email", &["Phone"], region);
            let language = read_language(row, "Language", sink);
            let raw = hash_strs_then_optional(
                &[
                    "sds-v1",
                    &region_code,
                    row.get("Email"),
                    row.get("First Name"),
                    row.get("Last Name"),
                    row.get("Phone"),
                    row.get("SIS ID"),
                ],
                row.get("Language"),
            );
            stage.push_hashed(
                StageTable::Contacts,
                src,
                row.record,
                Some(raw),
                channels.into_contact_row(
                    contact_key(row.get("Email")),
                    row.opt("SIS ID"),
                    (row.opt("First Name"), row.opt("Last Name")),
                    language,
                    "Email",
                ),
            );
            true
        },
    );
    ctx.read("Guardianrelationship.csv", spec(&["SIS ID", "Email", "Role"], &[]), StageTable::Links, |src, row, sink, stage| {
        if !row.require(&["SIS ID", "Email"], sink) {
            return false;
        }
        let raw = row.get("Role");
        let relationship = if raw.is_empty() { Ok(Relationship::Other) } else { Relationship::parse(raw) };
        match relationship {
            Ok(relationship) => {
                stage.push(
                    StageTable::Links,
                    src,
                    row.record,
                    vec![row.opt("SIS ID"), Some(contact_key(row.get("Email"))), Some(relationship.as_str().into())],
                );
                true
            }
            Err(_) => {
                sink.error(row.issue(
                    "Role",
                    "invalid_value",
                    format!("'{raw}' is not a role; expected Parent, Relative, Aide, Doctor, Guardian, Child, Administrator, Other or blank"),
                ));
                false
            }
        }
    });
}

/// Whole-set problems found before parsing.
pub fn check_set(files: &FileSet, sink: &mut super::csv_file::IssueSink) {
    files.require(
        ROSTER,
        "an SDS v1 file set (it may hold only the header)",
        sink,
    );
    files.require_together("User.csv", "Guardianrelationship.csv", sink);
}

/// Keys unique within the file set.
const KEYS: &[UniqueKey] = &[
    UniqueKey {
        table: Schools,
        columns: &["source_id"],
        header: "SIS ID",
        what: "school SIS ID",
    },
    UniqueKey {
        table: Classes,
        columns: &["source_id"],
        header: "SIS ID",
        what: "section SIS ID",
    },
    UniqueKey {
        table: Students,
        columns: &["source_id"],
        header: "SIS ID",
        what: "student SIS ID",
    },
    UniqueKey {
        table: Staff,
        columns: &["source_id"],
        header: "SIS ID",
        what: "teacher SIS ID",
    },
    UniqueKey {
        table: Enrollments,
        columns: &["class_id", "person_id", "role"],
        header: "SIS ID",
        what: "enrollment (section / SIS ID)",
    },
    UniqueKey {
        table: Contacts,
        columns: &["source_key"],
        header: "Email",
        what: "user Email",
    },
    UniqueKey {
        table: Links,
        columns: &["student_id", "contact_key"],
        header: "Email",
        what: "guardian relationship (student SIS ID / Email)",
    },
];

/// References between the files.
const REFERENCES: &[Reference] = &[
    reference(
        Classes,
        "school_source_id",
        Schools,
        "source_id",
        "School SIS ID",
        "is not a school in School.csv",
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
            "SIS ID",
            "is not a student in Student.csv",
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
            "SIS ID",
            "is not a teacher in Teacher.csv",
        )
    },
    reference(
        Enrollments,
        "class_id",
        Classes,
        "source_id",
        "Section SIS ID",
        "is not a section in Section.csv",
    ),
    reference(
        Links,
        "student_id",
        Students,
        "source_id",
        "SIS ID",
        "is not a student in Student.csv (Guardianrelationship's SIS ID is the student's)",
    ),
    reference(
        Links,
        "contact_key",
        Contacts,
        "source_key",
        "Email",
        "is not a user in User.csv",
    ),
];
