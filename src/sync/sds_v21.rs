//! SDS v2.1 CSV: `orgs.csv`, `users.csv`, `roles.csv` required; `classes.csv` and
//! `enrollments.csv` together; `relationships.csv` carries the contacts. File names exact,
//! headers case-sensitive. Users are split into students / staff / contacts later, in SQL,
//! from `roles.csv` and `relationships.csv`.

use super::csv_file::{FileSpec, IssueSink, Row};
use super::files::{Channels, ParseCtx, copy_columns};
use super::hashing::hash_strs;
use super::staging::StageTable;
use crate::domain::Relationship;

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
/// are read in.
pub fn user_hash(row: &Row<'_>, region_code: &str) -> i64 {
    hash_strs(&[
        "sds-v2.1",
        region_code,
        row.get("givenName"),
        row.get("familyName"),
        row.get("email"),
        row.get("sms"),
        row.get("phone"),
    ])
}

/// Parses every present file of the set into staging.
pub fn parse(ctx: &mut ParseCtx<'_>) {
    let region = ctx.region;
    let region_code = region.code();
    ctx.read(
        "orgs.csv",
        ORGS,
        StageTable::Schools,
        copy_columns(StageTable::Schools, &["sourcedId"], &["sourcedId", "name"]),
    );
    ctx.read(
        "roles.csv",
        ROLES,
        StageTable::Roles,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "orgSourcedId", "role"], sink) {
                return false;
            }
            let role = row.get("role").to_ascii_lowercase();
            stage.push(
                StageTable::Roles,
                src,
                row.record,
                vec![
                    row.opt("userSourcedId"),
                    row.opt("orgSourcedId"),
                    Some(role),
                ],
            );
            true
        },
    );
    ctx.read(
        "users.csv",
        USERS,
        StageTable::Users,
        |src, row, sink, stage| {
            if !row.require(&["sourcedId"], sink) {
                return false;
            }
            let channels = Channels::read(row, "email", &["sms", "phone"], region);
            stage.push_hashed(
                StageTable::Users,
                src,
                row.record,
                Some(user_hash(row, &region_code)),
                vec![
                    row.opt("sourcedId"),
                    row.opt("givenName"),
                    row.opt("familyName"),
                    channels.email,
                    channels.phone,
                    channels.email_warning,
                    channels.phone_column,
                    channels.phone_warning,
                ],
            );
            true
        },
    );
    ctx.read(
        "classes.csv",
        CLASSES,
        StageTable::Classes,
        copy_columns(
            StageTable::Classes,
            &["sourcedId", "orgSourcedId"],
            &["sourcedId", "orgSourcedId", "title"],
        ),
    );
    ctx.read(
        "enrollments.csv",
        ENROLLMENTS,
        StageTable::Enrollments,
        |src, row, sink, stage| {
            if !row.require(&["classSourcedId", "userSourcedId"], sink) {
                return false;
            }
            let Some(role) = enrollment_role(row, sink) else {
                return false;
            };
            stage.push(
                StageTable::Enrollments,
                src,
                row.record,
                vec![
                    row.opt("classSourcedId"),
                    row.opt("userSourcedId"),
                    Some(role),
                ],
            );
            true
        },
    );
    ctx.read(
        "relationships.csv",
        RELATIONSHIPS,
        StageTable::Links,
        |src, row, sink, stage| {
            if !row.require(&["userSourcedId", "relationshipUserSourcedId"], sink) {
                return false;
            }
            let Some(relationship) = relationship_role(row, sink) else {
                return false;
            };
            stage.push(
                StageTable::Links,
                src,
                row.record,
                vec![
                    row.opt("userSourcedId"),
                    row.opt("relationshipUserSourcedId"),
                    Some(relationship.as_str().to_string()),
                ],
            );
            true
        },
    );
    read_well_formed(ctx);
}

/// Reads the optional files that are only checked for well-formedness: nothing in them is
/// stored yet.
pub fn read_well_formed(ctx: &mut ParseCtx<'_>) {
    for (file, key) in [
        ("academicSessions.csv", "sourcedId"),
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

/// The `role` of an enrollment row, lower-cased (`student` or `teacher`); reports others.
pub fn enrollment_role(row: &Row<'_>, sink: &mut IssueSink) -> Option<String> {
    let role = row.get("role").to_ascii_lowercase();
    if role != "student" && role != "teacher" {
        sink.error(row.issue(
            "role",
            "invalid_value",
            format!(
                "'{}' is not an enrollment role; expected student or teacher",
                row.get("role")
            ),
        ));
        return None;
    }
    Some(role)
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
